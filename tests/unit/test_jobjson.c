/*
 * daemon/jobjson.c writes numbers and times by hand (it is the hot path
 * of GET /v1/jobs/{id} and of every 201): the times must read exactly as
 * util_format_time writes them, the numbers as printf's, and the whole
 * must stay JSON that jansson reads back.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/job.h"
#include "daemon/jobjson.h"
#include "lib/sbuf.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "unit.h"

/* The job rendered and parsed back, or NULL (a failed check). */
static json_t *
render(const struct job *j)
{
	struct sbuf b = { 0 };
	json_error_t jerr;
	json_t *doc;

	job_render_json(&b, j);
	doc = json_loadb(b.p, b.len, 0, &jerr);
	if (doc == NULL)
		fprintf(stderr, "  not JSON (%s): %.*s\n", jerr.text,
		    (int)b.len, b.p);
	CHECK(doc != NULL);
	sbuf_free(&b);
	return doc;
}

static struct job *
new_job(void)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->id = 42;
	j->repo = xstrdup("https://git.example.com/app.git");
	j->ref = xstrdup("main");
	j->state = JOB_QUEUED;
	j->ntargets = 1;
	j->targets = xcalloc(1, sizeof *j->targets);
	snprintf(j->targets[0].target, TARGET_NAME_MAX, "linux/amd64");
	return j;
}

static void
times_read_as_util_format_time(void)
{
	/* Epoch edges, leap days, century rules, the end of the range the
	 * fast path takes, and what falls back to gmtime_r. */
	static const int64_t ms[] = {
		1, 999, 1000, 86399999, 86400000,
		951782400000,		/* 2000-02-29 */
		951868799999,		/* 2000-02-29T23:59:59.999 */
		4107542400000,		/* 2100-03-01 */
		1798675200123,		/* 2026-12-31 */
		1700000000000, 1764509443747,
		INT64_C(253402300799999),	/* 9999-12-31T23:59:59.999 */
		INT64_C(253402300800000),	/* 10000: the fallback */
		-1, -86400001,		/* before 1970: the fallback */
	};
	char want[32];

	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		struct job *j = new_job();
		json_t *doc;

		j->created_at = ms[i];
		j->targets[0].finished_at = ms[i];
		doc = render(j);
		util_format_time(want, sizeof want, ms[i]);
		if (doc != NULL) {
			json_t *t = json_array_get(json_object_get(doc,
			    "targets"), 0);
			CHECK_STR(json_string_value(json_object_get(doc,
			    "created_at")), want);
			CHECK_STR(json_string_value(json_object_get(t,
			    "finished_at")), want);
			CHECK(json_is_null(json_object_get(doc, "started_at")));
		}
		json_decref(doc);
		job_free(j);
	}
	/* Every day of four centuries, at one moment of the day. */
	for (int64_t day = 0; day < 146097; day++) {
		int64_t t = day * 86400000 + 45296789;	/* 12:34:56.789 */
		struct sbuf b = { 0 };
		struct job *j = new_job();
		char *p;

		j->created_at = t;
		job_render_json(&b, j);
		util_format_time(want, sizeof want, t);
		sbuf_addc(&b, '\0');
		p = strstr(b.p, "\"created_at\":\"");
		CHECK(p != NULL);
		if (p == NULL || strncmp(p + 14, want, strlen(want)) != 0 ||
		    p[14 + strlen(want)] != '"') {
			fprintf(stderr, "  day %" PRId64 ": want %s in %s\n",
			    day, want, b.p);
			unit_failed_checks++;
			sbuf_free(&b);
			job_free(j);
			break;
		}
		sbuf_free(&b);
		job_free(j);
	}
}

static void
numbers_read_as_printf(void)
{
	static const int64_t v[] = {
		0, 1, -1, 9, 10, 99, 100, 2147483647, -2147483647 - 1,
		INT64_MAX, INT64_MIN, 1234567890123,
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct job *j = new_job();
		struct sbuf b = { 0 };
		char want[64];

		/* size is int64_t: the whole range goes through it. */
		j->targets[0].state = TARGET_SUCCEEDED;
		j->targets[0].nartifacts = 1;
		j->targets[0].artifacts = xcalloc(1,
		    sizeof *j->targets[0].artifacts);
		j->targets[0].artifacts[0].name = xstrdup("app");
		j->targets[0].artifacts[0].size = v[i];
		j->targets[0].has_exit_status = 1;
		j->targets[0].exit_status = (int)(v[i] % 1000);
		j->priority = (int)(v[i] % 100000);
		job_render_json(&b, j);
		sbuf_addc(&b, '\0');
		snprintf(want, sizeof want, "\"size\":%" PRId64 ",", v[i]);
		CHECK(strstr(b.p, want) != NULL);
		snprintf(want, sizeof want, "\"exit_status\":%d,",
		    (int)(v[i] % 1000));
		CHECK(strstr(b.p, want) != NULL);
		snprintf(want, sizeof want, "\"priority\":%d,",
		    (int)(v[i] % 100000));
		CHECK(strstr(b.p, want) != NULL);
		sbuf_free(&b);
		job_free(j);
	}
	{
		struct job *j = new_job();
		json_t *doc = render(j);

		if (doc != NULL) {
			CHECK_INT(json_integer_value(json_object_get(doc, "id")),
			    42);
			CHECK_STR(json_string_value(json_object_get(doc, "url")),
			    "/v1/jobs/42");
		}
		json_decref(doc);
		job_free(j);
	}
}

/* retry_of: the retried job's id, null for any other job. */
static void
retry_of_is_a_number_or_null(void)
{
	static const int64_t ids[] = { 0, 1, 7, INT64_MAX };

	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		struct job *j = new_job();
		json_t *doc, *v;

		j->retry_of = ids[i];
		if ((doc = render(j)) != NULL) {
			v = json_object_get(doc, "retry_of");
			CHECK(v != NULL);
			if (ids[i] == 0)
				CHECK(json_is_null(v));
			else
				CHECK_INT(json_integer_value(v), ids[i]);
			json_decref(doc);
		}
		job_free(j);
	}
}

UNIT_MAIN(
	TEST(times_read_as_util_format_time),
	TEST(numbers_read_as_printf),
	TEST(retry_of_is_a_number_or_null),
)
