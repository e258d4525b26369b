/*
 * Jobs as the API shows them (kiln-api(7)), written
 * straight into a buffer: GET /v1/jobs/{id} is the hottest route, and
 * building a jansson tree only to serialize it cost a third of it.
 *
 * Every string is written as valid UTF-8 whatever the row holds
 * (utf8_json_string): errors carry text from fetches, builds and remote
 * servers, and one invalid byte in one job once made GET /v1/jobs
 * unparseable for every client.  Checking here, not only where text is
 * stored, keeps rows written before that rule answerable too.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "jobjson.h"
#include "utf8.h"
#include "util.h"

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

static void
add_embedded(struct sbuf *b, const char *json)
{
	size_t n;

	if (json == NULL)
		sbuf_add(b, "null", 4);
	else if (utf8_valid(json, (n = strlen(json))))
		sbuf_add(b, json, n);
	else
		utf8_sanitize(b, json, n);
}

#define KEY(b, k) sbuf_add((b), k, sizeof(k) - 1)

void
job_render_json(struct sbuf *b, const struct job *job)
{
	KEY(b, "{\"id\":");
	sbuf_addi(b, job->id);
	KEY(b, ",\"url\":\"/v1/jobs/");
	sbuf_addi(b, job->id);
	KEY(b, "\",\"state\":\"");
	sbuf_adds(b, job_state_name(job->state));
	KEY(b, "\",\"repo\":");
	utf8_json_string(b, job->repo);
	KEY(b, ",\"ref\":");
	utf8_json_string(b, job->ref);
	KEY(b, ",\"commit\":");
	utf8_json_string(b, job->commit);
	/* The recipe is stored as compact JSON made by jansson from a
	 * validated request: it is embedded as it is.  Bytes of an invalid
	 * sequence are all >= 0x80, never JSON syntax: replacing them
	 * keeps the document's structure. */
	KEY(b, ",\"recipe\":");
	add_embedded(b, job->recipe);
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
	utf8_json_string(b, job->project);
	KEY(b, ",\"submitted_by\":");
	utf8_json_string(b, job->submitted_by);
	KEY(b, ",\"network\":");
	sbuf_adds(b, job->network ? "true" : "false");
	KEY(b, ",\"trust\":");
	utf8_json_string(b, job_trust_name(job->trust));
	KEY(b, ",\"notify\":");
	if (job->notify_url == NULL)
		sbuf_add(b, "null", 4);
	else {
		KEY(b, "{\"url\":");
		utf8_json_string(b, job->notify_url);
		KEY(b, ",\"state\":");
		utf8_json_string(b, job->notify_state);
		KEY(b, ",\"attempts\":");
		sbuf_addi(b, job->notify_attempts);
		KEY(b, ",\"error\":");
		utf8_json_string(b, job->notify_error);
		sbuf_addc(b, '}');
	}
	KEY(b, ",\"error\":");
	utf8_json_string(b, job->error);
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
		KEY(b, "{\"target\":");
		utf8_json_string(b, t->target);
		KEY(b, ",\"state\":\"");
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
		utf8_json_string(b, t->toolchain);
		KEY(b, ",\"cached_from\":");
		if (t->cached && t->cached_from > 0)
			sbuf_addi(b, t->cached_from);
		else
			sbuf_add(b, "null", 4);
		KEY(b, ",\"error\":");
		utf8_json_string(b, t->error);
		KEY(b, ",\"started_at\":");
		add_time(b, t->started_at);
		KEY(b, ",\"finished_at\":");
		add_time(b, t->finished_at);
		KEY(b, ",\"artifacts\":[");
		for (size_t a = 0; a < t->nartifacts; a++) {
			if (a > 0)
				sbuf_addc(b, ',');
			KEY(b, "{\"name\":");
			utf8_json_string(b, t->artifacts[a].name);
			KEY(b, ",\"size\":");
			sbuf_addi(b, t->artifacts[a].size);
			KEY(b, ",\"sha256\":");
			utf8_json_string(b, t->artifacts[a].sha256);
			sbuf_addc(b, '}');
		}
		KEY(b, "]}");
	}
	KEY(b, "]}");
}
