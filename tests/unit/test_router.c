/*
 * The router's routes and problem answers and the /v1/jobs handlers,
 * driven with hand-made requests against a real queue in a temporary
 * directory (router-harness.h).  The caller's token, webhook deliveries
 * and log followers are tested in test_router_io.c.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "daemon/db/queue.h"
#include "qsync.h"
#include "unit.h"
#include "router-harness.h"

static void
test_unknown_path_is_404(void)
{
	struct api_req req;

	if (!setup())
		return;
	CHECK_INT(run(&req, "GET", "/v1/nope"), API_DONE);
	check_problem(&req, 404, "/v1/nope");
	CHECK_INT(req.nheaders, 0);
	api_req_release(&req);
	CHECK(req.resp_body == NULL);

	static const char *const paths[] = {
		"/ui", "/ui/", "", "/v1", "/v1/jobs/", "/v1/jobs/1/", "/v1/jobs/1/x",
		"/v1/jobs//cancel", "/v1/jobs/1/cancel/x", "/healthz/",
		"/v1/JOBS", "/v2/jobs",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		run(&req, "GET", paths[i]);
		if (req.status != 404)
			fprintf(stderr, "  GET '%s' -> %u\n", paths[i],
			    req.status);
		CHECK_INT(req.status, 404);
		api_req_release(&req);
	}
	teardown();
}

static void
test_wrong_method_is_405_with_allow(void)
{
	struct api_req req;

	if (!setup())
		return;
	CHECK_INT(run(&req, "DELETE", "/v1/jobs/1"), API_DONE);
	check_problem(&req, 405, "DELETE");
	CHECK_STR(header(&req, "Allow"), "GET, HEAD, PATCH");
	api_req_release(&req);

	run(&req, "GET", "/v1/jobs/1/cancel");
	check_problem(&req, 405, NULL);
	CHECK_STR(header(&req, "Allow"), "POST");
	api_req_release(&req);

	run(&req, "PUT", "/v1/jobs");
	check_problem(&req, 405, NULL);
	CHECK_STR(header(&req, "Allow"), "POST, GET, HEAD");
	api_req_release(&req);

	run(&req, "POST", "/healthz");
	check_problem(&req, 405, NULL);
	CHECK_STR(header(&req, "Allow"), "GET, HEAD");
	api_req_release(&req);

	/* Nothing was submitted by any of these. */
	CHECK_INT(submits, 0);
	teardown();
}

static void
test_post_needs_json_content_type(void)
{
	struct api_req req;
	int64_t n = -1;

	if (!setup())
		return;
	CHECK_INT(post(&req, "/v1/jobs", NULL, JOB_BODY), API_DONE);
	check_problem(&req, 415, "(none)");
	api_req_release(&req);
	CHECK_INT(post(&req, "/v1/jobs", "text/plain", JOB_BODY), API_DONE);
	check_problem(&req, 415, "text/plain");
	api_req_release(&req);
	post(&req, "/v1/jobs", "application/jsonx", JOB_BODY);
	check_problem(&req, 415, NULL);
	api_req_release(&req);
	post(&req, "/v1/jobs", "application/x-www-form-urlencoded", JOB_BODY);
	check_problem(&req, 415, NULL);
	api_req_release(&req);
	CHECK_INT(submits, 0);
	CHECK_INT(queue_count_jobs(queue, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);

	CHECK_INT(post(&req, "/v1/jobs", "application/json; charset=utf-8",
	    JOB_BODY), API_PENDING);
	CHECK_INT(req.status, 201);
	api_req_release(&req);
	CHECK_INT(post(&req, "/v1/jobs", "Application/JSON", JOB_BODY),
	    API_PENDING);
	CHECK_INT(req.status, 201);
	api_req_release(&req);
	CHECK_INT(submits, 2);
	CHECK_INT(completions, 2);
	CHECK_INT(queue_count_jobs(queue, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 2);
	teardown();
}

static void
test_post_invalid_body(void)
{
	struct api_req req;

	if (!setup())
		return;
	CHECK_INT(post(&req, "/v1/jobs", "application/json", "{"), API_DONE);
	check_problem(&req, 400, "malformed JSON");
	api_req_release(&req);
	post(&req, "/v1/jobs", "application/json", "{\"repo\": \"x\", "
	    "\"ref\": \"main\", \"targets\": [\"linux/amd64\"]}");
	check_problem(&req, 422, "repo");
	api_req_release(&req);
	post(&req, "/v1/jobs", "application/json", "{\"repo\": \"/x\", "
	    "\"ref\": \"main\", \"targets\": [\"linux/foo\"]}");
	check_problem(&req, 422, "targets[0]");
	api_req_release(&req);
	CHECK_INT(submits, 0);
	CHECK_INT(completions, 0);
	teardown();
}

static void
test_post_when_full_or_stopping_is_503(void)
{
	struct api_req req;

	if (!setup())
		return;
	submit_result = API_EFULL;
	CHECK_INT(post(&req, "/v1/jobs", "application/json", JOB_BODY),
	    API_DONE);
	check_problem(&req, 503, "full");
	CHECK(header(&req, "Retry-After") != NULL);
	api_req_release(&req);
	submit_result = API_ESTOPPING;
	post(&req, "/v1/jobs", "application/json", JOB_BODY);
	check_problem(&req, 503, "shutting down");
	CHECK(header(&req, "Retry-After") != NULL);
	api_req_release(&req);
	CHECK_INT(completions, 0);
	teardown();
}

static void
test_get_job_after_post(void)
{
	struct api_req req;
	json_t *j, *targets;
	int64_t id;
	char path[64];
	int before;

	if (!setup())
		return;
	id = post_job();
	snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
	/* A read completes later, never inside the handler's call. */
	init_req(&req, "GET", path);
	before = completions;
	CHECK_INT(api_handle(&req), API_PENDING);
	CHECK_INT(completions, before);
	while (completions == before)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(completions, before + 1);
	CHECK_INT(req.status, 200);
	CHECK_STR(req.resp_type, "application/json");
	if ((j = body_json(&req)) != NULL) {
		CHECK_INT(json_integer_value(json_object_get(j, "id")), id);
		CHECK_STR(json_string_value(json_object_get(j, "url")), path);
		CHECK_STR(json_string_value(json_object_get(j, "repo")),
		    "https://example.com/x.git");
		CHECK_STR(json_string_value(json_object_get(j, "ref")), "main");
		CHECK_STR(json_string_value(json_object_get(j, "state")),
		    "queued");
		CHECK(json_is_null(json_object_get(j, "commit")));
		CHECK(json_is_null(json_object_get(j, "recipe")));
		CHECK(json_is_string(json_object_get(j, "created_at")));
		targets = json_object_get(j, "targets");
		CHECK_INT(json_array_size(targets), 2);
		CHECK_STR(json_string_value(json_object_get(
		    json_array_get(targets, 0), "target")), "linux/amd64");
		CHECK_STR(json_string_value(json_object_get(
		    json_array_get(targets, 1), "target")), "linux/arm/v7");
		json_decref(j);
	}
	api_req_release(&req);

	/* HEAD is served as GET. */
	run(&req, "HEAD", path);
	CHECK_INT(req.status, 200);
	api_req_release(&req);

	static const char *const bad[] = {
		"/v1/jobs/abc", "/v1/jobs/0", "/v1/jobs/-1", "/v1/jobs/1x",
		"/v1/jobs/+1", "/v1/jobs/99999999999999999999",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(run(&req, "GET", bad[i]), API_DONE);
		check_problem(&req, 404, NULL);
		api_req_release(&req);
	}
	snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id + 1);
	run(&req, "GET", path);
	check_problem(&req, 404, "no job");
	api_req_release(&req);
	teardown();
}

static void
test_list_jobs(void)
{
	struct api_req req;
	json_t *j, *jobs;
	int64_t a, b, c;

	if (!setup())
		return;
	a = post_job();
	b = post_job();
	c = post_job();

	CHECK_INT(run(&req, "GET", "/v1/jobs"), API_PENDING);
	CHECK_INT(req.status, 200);
	if ((j = body_json(&req)) != NULL) {
		jobs = json_object_get(j, "jobs");
		CHECK_INT(json_array_size(jobs), 3);
		CHECK_INT(json_integer_value(json_object_get(
		    json_array_get(jobs, 0), "id")), c);
		CHECK_INT(json_integer_value(json_object_get(
		    json_array_get(jobs, 2), "id")), a);
		CHECK(json_is_null(json_object_get(j, "next")));
		json_decref(j);
	}
	api_req_release(&req);

	set_query("limit", "2");
	run(&req, "GET", "/v1/jobs");
	CHECK_INT(req.status, 200);
	if ((j = body_json(&req)) != NULL) {
		char cur[24];
		jobs = json_object_get(j, "jobs");
		CHECK_INT(json_array_size(jobs), 2);
		snprintf(cur, sizeof cur, "%lld", (long long)b);
		CHECK_STR(json_string_value(json_object_get(j, "next")), cur);
		json_decref(j);
	}
	api_req_release(&req);

	clear_query();
	set_query("limit", "2");
	{
		char cur[24];
		snprintf(cur, sizeof cur, "%lld", (long long)b);
		set_query("after", cur);
		run(&req, "GET", "/v1/jobs");
	}
	CHECK_INT(req.status, 200);
	if ((j = body_json(&req)) != NULL) {
		jobs = json_object_get(j, "jobs");
		CHECK_INT(json_array_size(jobs), 1);
		CHECK_INT(json_integer_value(json_object_get(
		    json_array_get(jobs, 0), "id")), a);
		CHECK(json_is_null(json_object_get(j, "next")));
		json_decref(j);
	}
	api_req_release(&req);

	clear_query();
	set_query("state", "running");
	run(&req, "GET", "/v1/jobs");
	CHECK_INT(req.status, 200);
	if ((j = body_json(&req)) != NULL) {
		CHECK_INT(json_array_size(json_object_get(j, "jobs")), 0);
		json_decref(j);
	}
	api_req_release(&req);
	teardown();
}

static void
test_list_bad_query_is_422(void)
{
	struct api_req req;
	static const char *const cases[][3] = {
		{ "limit", "0", "limit" },
		{ "limit", "1001", "limit" },
		{ "limit", "-1", "limit" },
		{ "limit", "ten", "limit" },
		{ "state", "bogus", "state" },
		{ "state", "QUEUED", "state" },
		{ "after", "0", "after" },
		{ "after", "x", "after" },
	};

	if (!setup())
		return;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		clear_query();
		set_query(cases[i][0], cases[i][1]);
		CHECK_INT(run(&req, "GET", "/v1/jobs"), API_DONE);
		if (req.status != 422)
			fprintf(stderr, "  ?%s=%s -> %u\n", cases[i][0],
			    cases[i][1], req.status);
		check_problem(&req, 422, cases[i][2]);
		api_req_release(&req);
	}
	teardown();
}

static void
test_cancel_route(void)
{
	struct api_req req;
	json_t *j;
	int64_t id;
	char path[64];

	if (!setup())
		return;
	id = post_job();
	snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)id);
	/* It waits for the queue's writer, then completes. */
	CHECK_INT(run(&req, "POST", path), API_PENDING);
	CHECK_INT(completions, 2);	/* the submission's, and this one */
	CHECK_INT(req.status, 200);
	if ((j = body_json(&req)) != NULL) {
		CHECK_INT(json_integer_value(json_object_get(j, "id")), id);
		CHECK_STR(json_string_value(json_object_get(j, "state")),
		    "canceled");
		json_decref(j);
	}
	api_req_release(&req);
	/* Twice is fine. */
	run(&req, "POST", path);
	CHECK_INT(req.status, 200);
	api_req_release(&req);

	snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)id + 1);
	run(&req, "POST", path);
	check_problem(&req, 404, "no job");
	api_req_release(&req);
	run(&req, "POST", "/v1/jobs/abc/cancel");
	check_problem(&req, 404, NULL);
	api_req_release(&req);

	/* An ended job: 409. */
	{
		struct queue_claim c;
		int64_t id2 = post_job();
		CHECK_INT(qs_claim(queue, &c), 0);
		CHECK_INT(c.job_id, id2);
		CHECK_INT(qs_finish(queue, c.target_id, c.attempt,
		    TARGET_SUCCEEDED, 0,
		    NULL, NULL, 0), 0);
		CHECK_INT(qs_claim(queue, &c), 0);
		CHECK_INT(qs_finish(queue, c.target_id, c.attempt,
		    TARGET_SUCCEEDED, 0,
		    NULL, NULL, 0), 0);
		snprintf(path, sizeof path, "/v1/jobs/%lld/cancel",
		    (long long)id2);
		run(&req, "POST", path);
		check_problem(&req, 409, "succeeded");
		api_req_release(&req);
	}
	teardown();
}

static void
test_healthz(void)
{
	struct api_req req;
	json_t *j;

	if (!setup())
		return;
	post_job();
	CHECK_INT(run(&req, "GET", "/healthz"), API_DONE);
	CHECK_INT(req.status, 200);
	CHECK_STR(req.resp_type, "application/json");
	if ((j = body_json(&req)) != NULL) {
		CHECK_STR(json_string_value(json_object_get(j, "status")), "ok");
		CHECK_INT(json_integer_value(json_object_get(j, "jobs_queued")),
		    1);
		CHECK_INT(json_integer_value(json_object_get(j,
		    "jobs_running")), 0);
		json_decref(j);
	}
	api_req_release(&req);
	teardown();
}

static void
test_route_table(void)
{
	const struct api_route *r;
	size_t n = 0;
	bool seen_post_jobs = false, seen_get_job = false;

	for (size_t i = 0; (r = api_route_at(i)) != NULL; i++) {
		n++;
		CHECK(r->method != NULL);
		CHECK(r->pattern != NULL && r->pattern[0] == '/');
		CHECK(r->handler != NULL);
		if (r->method == NULL || r->pattern == NULL)
			continue;
		CHECK(strcmp(r->method, "GET") == 0 ||
		    strcmp(r->method, "POST") == 0 ||
		    strcmp(r->method, "PUT") == 0 ||
		    strcmp(r->method, "PATCH") == 0 ||
		    strcmp(r->method, "DELETE") == 0);
		if (strcmp(r->method, "POST") == 0 &&
		    strcmp(r->pattern, "/v1/jobs") == 0)
			seen_post_jobs = true;
		if (strcmp(r->method, "GET") == 0 &&
		    strcmp(r->pattern, "/v1/jobs/{id}") == 0)
			seen_get_job = true;
		/* No two routes share method and pattern. */
		for (size_t k = 0; k < i; k++) {
			const struct api_route *o = api_route_at(k);
			CHECK(strcmp(o->method, r->method) != 0 ||
			    strcmp(o->pattern, r->pattern) != 0);
		}
	}
	CHECK(n >= 5);
	CHECK(seen_post_jobs);
	CHECK(seen_get_job);
	CHECK(api_route_at(n) == NULL);
	CHECK(api_route_at(n + 100) == NULL);
}

/* An answer json_pack() could not build (bytes that are not UTF-8)
 * becomes a 500 problem, not an abort of kilnd. */
static void
test_unbuildable_answer_is_500(void)
{
	struct api_req req;
	json_t *j;

	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/x";
	req.resp_fd = -1;
	api_reply_json(&req, 200, json_pack("{s:s}", "k", "\xc8\xc8"));
	CHECK_INT(req.status, 500);
	CHECK_STR(req.resp_type, "application/problem+json");
	if ((j = body_json(&req)) != NULL) {
		CHECK_INT(json_integer_value(json_object_get(j, "status")), 500);
		json_decref(j);
	}
	api_req_release(&req);
}

/* A problem's detail quoting a request cut in the middle of a character
 * ("%.64s") keeps its text: the cut character and invalid bytes become
 * U+FFFD, and the answer is not "the request contains invalid UTF-8". */
static void
test_problem_detail_cut_mid_character_keeps_its_text(void)
{
	struct api_req req;
	char name[80] = "a";
	json_t *j;

	for (int i = 0; i < 33; i++)
		strcat(name, "\xc3\xa9");
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/x";
	req.resp_fd = -1;
	api_reply_problem(&req, 404, "no job '%.64s' \xff", name);
	CHECK_INT(req.status, 404);
	if ((j = body_json(&req)) != NULL) {
		const char *d = json_string_value(json_object_get(j, "detail"));

		CHECK(d != NULL && strncmp(d, "no job 'a\xc3\xa9", 11) == 0);
		CHECK(d != NULL && strstr(d, "\xc3\xa9\xef\xbf\xbd' \xef\xbf\xbd") !=
		    NULL);
		json_decref(j);
	}
	api_req_release(&req);
}

UNIT_MAIN(
	TEST(test_problem_detail_cut_mid_character_keeps_its_text),
	TEST(test_unknown_path_is_404),
	TEST(test_wrong_method_is_405_with_allow),
	TEST(test_post_needs_json_content_type),
	TEST(test_post_invalid_body),
	TEST(test_post_when_full_or_stopping_is_503),
	TEST(test_get_job_after_post),
	TEST(test_list_jobs),
	TEST(test_list_bad_query_is_422),
	TEST(test_cancel_route),
	TEST(test_healthz),
	TEST(test_route_table),
	TEST(test_unbuildable_answer_is_500)
)
