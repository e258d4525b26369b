/*
 * Jobs as the API shows them (kiln-api(7)), written
 * straight into a buffer: GET /v1/jobs/{id} is the hottest route, and
 * building a jansson tree only to serialize it cost a third of it.
 */
#include "config.h"

#include <stdlib.h>

#include "api.h"
#include "../daemon/util.h"

static void
add_time(struct sbuf *b, int64_t ms)
{
	char buf[32];

	if (ms == 0) {
		sbuf_add(b, "null", 4);
		return;
	}
	util_format_time(buf, sizeof buf, ms);
	sbuf_addc(b, '"');
	sbuf_adds(b, buf);
	sbuf_addc(b, '"');
}

#define KEY(b, k) sbuf_add((b), k, sizeof(k) - 1)

void
api_job_render(struct sbuf *b, const struct job *job)
{
	KEY(b, "{\"id\":");
	sbuf_addi(b, job->id);
	KEY(b, ",\"url\":\"/v1/jobs/");
	sbuf_addi(b, job->id);
	KEY(b, "\",\"state\":\"");
	sbuf_adds(b, job_state_name(job->state));
	KEY(b, "\",\"repo\":");
	sbuf_add_json_string(b, job->repo);
	KEY(b, ",\"ref\":");
	sbuf_add_json_string(b, job->ref);
	KEY(b, ",\"commit\":");
	sbuf_add_json_string(b, job->commit);
	/* The recipe is stored as compact JSON made by jansson from a
	 * validated request: it is embedded as it is. */
	KEY(b, ",\"recipe\":");
	sbuf_adds(b, job->recipe ? job->recipe : "null");
	KEY(b, ",\"priority\":");
	sbuf_addi(b, job->priority);
	KEY(b, ",\"timeout\":");
	if (job->timeout > 0)
		sbuf_addi(b, job->timeout);
	else
		sbuf_add(b, "null", 4);
	KEY(b, ",\"cache\":");
	sbuf_adds(b, job->cache ? "true" : "false");
	KEY(b, ",\"signed\":");
	sbuf_adds(b, job->sums_sha256 ? "true" : "false");
	KEY(b, ",\"expired_at\":");
	add_time(b, job->expired_at);
	KEY(b, ",\"project\":");
	sbuf_add_json_string(b, job->project);
	KEY(b, ",\"network\":");
	sbuf_adds(b, job->network ? "true" : "false");
	KEY(b, ",\"trust\":");
	sbuf_add_json_string(b, job_trust_name(job->trust));
	KEY(b, ",\"notify\":");
	if (job->notify_url == NULL)
		sbuf_add(b, "null", 4);
	else {
		KEY(b, "{\"url\":");
		sbuf_add_json_string(b, job->notify_url);
		KEY(b, ",\"state\":");
		sbuf_add_json_string(b, job->notify_state);
		KEY(b, ",\"attempts\":");
		sbuf_addi(b, job->notify_attempts);
		KEY(b, ",\"error\":");
		sbuf_add_json_string(b, job->notify_error);
		sbuf_addc(b, '}');
	}
	KEY(b, ",\"error\":");
	sbuf_add_json_string(b, job->error);
	KEY(b, ",\"created_at\":");
	add_time(b, job->created_at);
	KEY(b, ",\"started_at\":");
	add_time(b, job->started_at);
	KEY(b, ",\"finished_at\":");
	add_time(b, job->finished_at);
	KEY(b, ",\"targets\":[");
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *t = &job->targets[i];

		if (i > 0)
			sbuf_addc(b, ',');
		KEY(b, "{\"target\":\"");
		sbuf_adds(b, t->target);
		KEY(b, "\",\"state\":\"");
		sbuf_adds(b, target_state_name(t->state));
		KEY(b, "\",\"attempt\":");
		sbuf_addi(b, t->attempt);
		KEY(b, ",\"exit_status\":");
		if (t->has_exit_status)
			sbuf_addi(b, t->exit_status);
		else
			sbuf_add(b, "null", 4);
		KEY(b, ",\"cached\":");
		sbuf_adds(b, t->cached ? "true" : "false");
		KEY(b, ",\"toolchain\":");
		sbuf_add_json_string(b, t->toolchain);
		KEY(b, ",\"cached_from\":");
		if (t->cached && t->cached_from > 0)
			sbuf_addi(b, t->cached_from);
		else
			sbuf_add(b, "null", 4);
		KEY(b, ",\"error\":");
		sbuf_add_json_string(b, t->error);
		KEY(b, ",\"started_at\":");
		add_time(b, t->started_at);
		KEY(b, ",\"finished_at\":");
		add_time(b, t->finished_at);
		KEY(b, ",\"artifacts\":[");
		for (size_t a = 0; a < t->nartifacts; a++) {
			if (a > 0)
				sbuf_addc(b, ',');
			KEY(b, "{\"name\":");
			sbuf_add_json_string(b, t->artifacts[a].name);
			KEY(b, ",\"size\":");
			sbuf_addi(b, t->artifacts[a].size);
			KEY(b, ",\"sha256\":");
			sbuf_add_json_string(b, t->artifacts[a].sha256);
			sbuf_addc(b, '}');
		}
		KEY(b, "]}");
	}
	KEY(b, "]}");
}
