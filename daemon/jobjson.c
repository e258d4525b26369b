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

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jobjson.h"
#include "utf8.h"
#include "util.h"

/*
 * Numbers and times are written by hand: snprintf and gmtime_r (which
 * takes glibc's time zone lock even for UTC) were a fifth of the
 * rendering, and this rendering runs for every GET of a job and every
 * 201.
 */
static void
add_int(struct sbuf *b, int64_t v)
{
	char buf[24], *p = buf + sizeof buf;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	sbuf_add(b, p, (size_t)(buf + sizeof buf - p));
}

static char *
put_digits(char *p, unsigned v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

/* Before 1970 or after 9999: not a time kiln wrote. */
#define TIME_FAST_MAX INT64_C(253402300800000)

static void
add_time(struct sbuf *b, int64_t ms)
{
	char buf[32], *p = buf;
	int64_t days, secs;
	unsigned era_day, yoe, doy, mp, y, m, d;

	if (ms == 0) {
		sbuf_add(b, "null", 4);
		return;
	}
	if (ms < 0 || ms >= TIME_FAST_MAX) {
		util_format_time(buf, sizeof buf, ms);
		sbuf_addc(b, '"');
		sbuf_adds(b, buf);
		sbuf_addc(b, '"');
		return;
	}
	days = ms / 86400000;
	secs = ms / 1000 % 86400;
	/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
	 * civil_from_days), shifted to start from 0000-03-01. */
	days += 719468;
	era_day = (unsigned)(days % 146097);
	yoe = (era_day - era_day / 1460 + era_day / 36524 -
	    era_day / 146096) / 365;
	doy = era_day - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + (unsigned)(days / 146097) * 400 + (m <= 2);
	*p++ = '"';
	p = put_digits(p, y, 4);
	*p++ = '-';
	p = put_digits(p, m, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned)(secs / 3600), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(secs / 60 % 60), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)(secs % 60), 2);
	*p++ = '.';
	p = put_digits(p, (unsigned)(ms % 1000), 3);
	*p++ = 'Z';
	*p++ = '"';
	sbuf_add(b, buf, (size_t)(p - buf));
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

/*
 * A verifying rebuild's result: "reproducible": true|false|null, and
 * when false the differing paths (stored as kilnd wrote them from the
 * worker's status, schema/015_outputs.sql).
 */
static void
add_verified(struct sbuf *b, const char *verified)
{
	json_t *v = verified ? json_loads(verified, 0, NULL) : NULL;
	json_t *r = json_object_get(v, "reproducible");
	json_t *d = json_object_get(v, "differences");
	json_t *m = json_object_get(v, "more_differences");
	char *text;

	KEY(b, ",\"reproducible\":");
	sbuf_adds(b, json_is_boolean(r) ? (json_is_true(r) ? "true" :
	    "false") : "null");
	if (json_is_array(d)) {
		text = json_dumps(d, JSON_COMPACT);
		KEY(b, ",\"differences\":");
		add_embedded(b, text);
		free(text);
		/* The differing paths not named, so that a short list is
		 * not read as the whole. */
		KEY(b, ",\"more_differences\":");
		sbuf_addi(b, json_is_integer(m) && json_integer_value(m) > 0 ?
		    json_integer_value(m) : 0);
	}
	json_decref(v);
}

void
job_render_json(struct sbuf *b, const struct job *job)
{
	KEY(b, "{\"id\":");
	add_int(b, job->id);
	KEY(b, ",\"url\":\"/v1/jobs/");
	add_int(b, job->id);
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
	/* The same holds of the outputs (lib/outputs.h); null: none. */
	KEY(b, ",\"outputs\":");
	add_embedded(b, job->outputs);
	KEY(b, ",\"priority\":");
	add_int(b, job->priority);
	KEY(b, ",\"timeout\":");
	if (job->timeout > 0)
		add_int(b, job->timeout);
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
	/* The job this one retries; null: none. */
	KEY(b, ",\"retry_of\":");
	if (job->retry_of > 0)
		add_int(b, job->retry_of);
	else
		sbuf_add(b, "null", 4);
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
		add_int(b, job->notify_attempts);
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
		add_int(b, t->attempt);
		KEY(b, ",\"exit_status\":");
		if (t->has_exit_status)
			add_int(b, t->exit_status);
		else
			sbuf_add(b, "null", 4);
		KEY(b, ",\"cached\":");
		sbuf_adds(b, t->cached ? "true" : "false");
		KEY(b, ",\"toolchain\":");
		utf8_json_string(b, t->toolchain);
		KEY(b, ",\"host\":");
		utf8_json_string(b, t->host);
		KEY(b, ",\"cached_from\":");
		if (t->cached && t->cached_from > 0)
			add_int(b, t->cached_from);
		else
			sbuf_add(b, "null", 4);
		add_verified(b, t->verified);
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
			add_int(b, t->artifacts[a].size);
			KEY(b, ",\"sha256\":");
			utf8_json_string(b, t->artifacts[a].sha256);
			sbuf_addc(b, '}');
		}
		KEY(b, "]}");
	}
	KEY(b, "]}");
}
