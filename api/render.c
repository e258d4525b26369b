/* Jobs as the API shows them (DESIGN.md, "The HTTP surface"). */
#include "config.h"

#include <stdlib.h>

#include "api.h"
#include "../daemon/util.h"

static json_t *
time_or_null(int64_t ms)
{
	char buf[32];

	if (ms == 0)
		return json_null();
	util_format_time(buf, sizeof buf, ms);
	return json_string(buf);
}

static json_t *
string_or_null(const char *s)
{
	json_t *v;

	if (s == NULL)
		return json_null();
	/* Stored text came through validation; guard anyway. */
	v = json_string(s);
	return v ? v : json_string("(invalid UTF-8)");
}

json_t *
api_job_json(const struct job *job)
{
	json_t *j = json_object(), *targets = json_array(), *recipe = NULL;
	char url[64];

	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *t = &job->targets[i];
		json_t *o = json_object();

		json_object_set_new(o, "target", json_string(t->target));
		json_object_set_new(o, "state",
		    json_string(target_state_name(t->state)));
		json_object_set_new(o, "attempt", json_integer(t->attempt));
		json_object_set_new(o, "exit_status", t->has_exit_status ?
		    json_integer(t->exit_status) : json_null());
		json_object_set_new(o, "error", string_or_null(t->error));
		json_object_set_new(o, "started_at", time_or_null(t->started_at));
		json_object_set_new(o, "finished_at",
		    time_or_null(t->finished_at));
		json_array_append_new(targets, o);
	}
	if (job->recipe != NULL)
		recipe = json_loads(job->recipe, 0, NULL);
	snprintf(url, sizeof url, "/v1/jobs/%lld", (long long)job->id);
	json_object_set_new(j, "id", json_integer(job->id));
	json_object_set_new(j, "url", json_string(url));
	json_object_set_new(j, "state", json_string(job_state_name(job->state)));
	json_object_set_new(j, "repo", string_or_null(job->repo));
	json_object_set_new(j, "ref", string_or_null(job->ref));
	json_object_set_new(j, "commit", string_or_null(job->commit));
	json_object_set_new(j, "recipe", recipe ? recipe : json_null());
	json_object_set_new(j, "priority", json_integer(job->priority));
	json_object_set_new(j, "error", string_or_null(job->error));
	json_object_set_new(j, "created_at", time_or_null(job->created_at));
	json_object_set_new(j, "started_at", time_or_null(job->started_at));
	json_object_set_new(j, "finished_at", time_or_null(job->finished_at));
	json_object_set_new(j, "targets", targets);
	return j;
}
