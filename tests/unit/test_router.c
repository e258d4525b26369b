/*
 * The router and the /v1/jobs handlers, driven with hand-made requests
 * against a real queue in a temporary directory.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <git2.h>
#include <jansson.h>
#include <sodium.h>

#include "api/api.h"
#include "daemon/db/queue.h"
#include "qsync.h"
#include "unit.h"

/* One test's world: the conf, a queue, the env the handlers see. */
static struct kiln_config conf;
static struct queue *queue;
static struct api_env env;
static int completions;
static int submits;
static int submit_result;	/* what the submit hook returns */

/* Query arguments of the current request: name, value pairs. */
static const char *query_table[8][2];

static const char *
query_lookup(struct api_req *req, const char *name)
{
	(void)req;
	for (size_t i = 0; i < 8 && query_table[i][0] != NULL; i++)
		if (strcmp(query_table[i][0], name) == 0)
			return query_table[i][1];
	return NULL;
}

static void
set_query(const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < 7 && query_table[i][0] != NULL; i++)
		;
	query_table[i][0] = name;
	query_table[i][1] = value;
	query_table[i + 1][0] = NULL;
}

static void
clear_query(void)
{
	memset(query_table, 0, sizeof query_table);
}

static void
complete(struct api_req *req)
{
	(void)req;
	completions++;
}

/* The submit hook: a synchronous group commit of one job. */
static int
submit_now(void *ctx, struct job *job, api_submit_done done, void *data)
{
	struct queue *q = ctx;

	submits++;
	if (submit_result != 0)
		return submit_result;
	done(job, qs_submit(q, &job, 1), data);
	return 0;
}

static bool
setup(void)
{
	char path[512], err[512] = "";

	git_libgit2_init();
	conf_defaults(&conf);
	snprintf(path, sizeof path, "%s/kiln.db", unit_tmpdir());
	queue = NULL;
	if (queue_open(&queue, path, err, sizeof err) != 0) {
		fprintf(stderr, "  queue_open: %s\n", err);
		CHECK(0);
		conf_free(&conf);
		return false;
	}
	qs_attach(queue);
	memset(&env, 0, sizeof env);
	env.queue = queue;
	env.conf = &conf;
	env.started_at = 1;
	env.submit = submit_now;
	env.submit_ctx = queue;
	completions = submits = submit_result = 0;
	clear_query();
	return true;
}

static void
teardown(void)
{
	qs_close(queue);
	queue = NULL;
	conf_free(&conf);
	git_libgit2_shutdown();
}

static void
init_req(struct api_req *req, const char *method, const char *path)
{
	memset(req, 0, sizeof *req);
	req->env = &env;
	req->method = method;
	req->path = path;
	req->query = query_lookup;
	req->complete = complete;
}

/* api_handle(), and for an answer that waits on the queue's writer,
 * the loop until it completed. */
static enum api_result
handle(struct api_req *req)
{
	int before = completions;
	enum api_result r = api_handle(req);

	while (r == API_PENDING && completions == before)
		uv_run(qs_loop(), UV_RUN_ONCE);
	return r;
}

static enum api_result
run(struct api_req *req, const char *method, const char *path)
{
	init_req(req, method, path);
	return handle(req);
}

static enum api_result
post(struct api_req *req, const char *path, const char *ctype,
    const char *body)
{
	init_req(req, "POST", path);
	req->content_type = ctype;
	req->body = body;
	req->body_len = strlen(body);
	return handle(req);
}

/* The answer's body as JSON (caller decrefs), or NULL after a failure. */
static json_t *
body_json(const struct api_req *req)
{
	json_error_t e;
	json_t *j;

	if (req->resp_body == NULL) {
		CHECK(req->resp_body != NULL);
		return NULL;
	}
	/* Counted, not NUL-terminated; one JSON text and a newline. */
	CHECK(req->resp_len > 1 && req->resp_body[req->resp_len - 1] == '\n');
	j = json_loadb(req->resp_body, req->resp_len, 0, &e);
	if (j == NULL) {
		fprintf(stderr, "  bad JSON body (%s): %.*s\n", e.text,
		    (int)req->resp_len, req->resp_body);
		CHECK(0);
	}
	return j;
}

static const char *
header(const struct api_req *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* Expect a problem+json answer with `status` and a detail holding `in`. */
static void
check_problem_at(const char *file, int line, const struct api_req *req,
    unsigned status, const char *in)
{
	json_t *j;
	const char *detail;

	if (req->status != status) {
		fprintf(stderr, "  %s:%d: status %u, expected %u: %.*s\n", file,
		    line, req->status, status, (int)req->resp_len,
		    req->resp_body ? req->resp_body : "");
		unit_failed_checks++;
	}
	CHECK_STR(req->resp_type, "application/problem+json");
	if ((j = body_json(req)) == NULL)
		return;
	CHECK_STR(json_string_value(json_object_get(j, "type")),
	    "about:blank");
	CHECK_STR(json_string_value(json_object_get(j, "title")),
	    api_status_title(status));
	CHECK(json_is_integer(json_object_get(j, "status")));
	CHECK_INT(json_integer_value(json_object_get(j, "status")), status);
	detail = json_string_value(json_object_get(j, "detail"));
	CHECK(detail != NULL && *detail != '\0');
	if (detail != NULL && in != NULL && strstr(detail, in) == NULL) {
		fprintf(stderr, "  %s:%d: detail \"%s\" lacks \"%s\"\n", file,
		    line, detail, in);
		unit_failed_checks++;
	}
	json_decref(j);
}
#define check_problem(r, s, in) check_problem_at(__FILE__, __LINE__, r, s, in)

#define JOB_BODY "{\"repo\": \"https://example.com/x.git\", \"ref\": " \
	"\"main\", \"targets\": [\"linux/amd64\", \"linux/arm\"]}"

/* POST a job through the router; its id, or 0 after a failed check. */
static int64_t
post_job(void)
{
	struct api_req req;
	json_t *j;
	int64_t id = 0;
	int before = completions;

	CHECK_INT(post(&req, "/v1/jobs", "application/json", JOB_BODY),
	    API_PENDING);
	CHECK_INT(completions, before + 1);
	CHECK_INT(req.status, 201);
	CHECK_STR(req.resp_type, "application/json");
	if ((j = body_json(&req)) != NULL) {
		char loc[64];
		id = json_integer_value(json_object_get(j, "id"));
		CHECK(id > 0);
		snprintf(loc, sizeof loc, "/v1/jobs/%lld", (long long)id);
		CHECK_STR(header(&req, "Location"), loc);
		CHECK_STR(json_string_value(json_object_get(j, "state")),
		    "queued");
		json_decref(j);
	}
	api_req_release(&req);
	return id;
}

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
		"/", "", "/v1", "/v1/jobs/", "/v1/jobs/1/", "/v1/jobs/1/x",
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

/* The Authorization header of the current request. */
static const char *bearer;

static const char *
header_lookup(struct api_req *req, const char *name)
{
	(void)req;
	return strcasecmp(name, "Authorization") == 0 ? bearer : NULL;
}

/* [tokens] line NAME = SCOPE sha256(token). */
static void
token_line(char *buf, size_t size, const char *name, const char *scope,
    const char *token)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof h + 1];
	size_t n = strlen(buf);

	crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	snprintf(buf + n, size - n, "%s = %s %s\n", name, scope, hex);
}

/* The caller's token name: the entry its token matches, whichever its
 * position; none for a wrong token, no token, or a farm without any. */
static void
test_caller_token(void)
{
	char text[1024] = "[tokens]\n", err[256] = "";
	struct api_req req;
	FILE *f;

	if (!setup())
		return;
	init_req(&req, "GET", "/healthz");
	req.header = header_lookup;
	bearer = "Bearer the-admin-token-0123";
	CHECK(api_caller_token(&req) == NULL);
	CHECK(api_caller_is_admin(&req));	/* no tokens: loopback only */
	token_line(text, sizeof text, "dash", "read", "the-read-token-0123");
	token_line(text, sizeof text, "ops", "admin", "the-admin-token-0123");
	token_line(text, sizeof text, "ci", "submit", "the-ci-token-0123");
	f = fmemopen(text, strlen(text), "r");
	CHECK(f != NULL);
	if (f == NULL) {
		teardown();
		return;
	}
	CHECK_INT(conf_load_stream(&conf, f, "test.conf", err, sizeof err), 0);
	fclose(f);
	CHECK_STR(api_caller_token(&req), "ops");
	CHECK(api_caller_is_admin(&req));
	bearer = "Bearer the-ci-token-0123";
	CHECK_STR(api_caller_token(&req), "ci");
	CHECK(!api_caller_is_admin(&req));
	bearer = "Bearer the-read-token-0123";
	CHECK_STR(api_caller_token(&req), "dash");
	bearer = "Bearer the-ci-token-012";
	CHECK(api_caller_token(&req) == NULL);
	bearer = NULL;
	CHECK(api_caller_token(&req) == NULL);

	/* One secret under two names is refused. */
	text[0] = '\0';
	snprintf(text, sizeof text, "[tokens]\n");
	token_line(text, sizeof text, "again", "admin", "the-ci-token-0123");
	f = fmemopen(text, strlen(text), "r");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK_INT(conf_load_stream(&conf, f, "test.conf", err,
		    sizeof err), -1);
		CHECK(strstr(err, "same hash as ci") != NULL);
		fclose(f);
	}
	api_req_release(&req);
	teardown();
}

/* A GitHub push delivery to project app: its headers. */
#define HOOK_SECRET "app-hook-secret-0123456789"
#define HOOK_COMMIT "0123456789abcdef0123456789abcdef01234567"
#define HOOK_PUSH "{\"ref\": \"refs/heads/main\", \"after\": \"" \
	HOOK_COMMIT "\", \"repository\": {\"clone_url\": " \
	"\"https://example.com/app.git\"}}"
static const char *hook_delivery;
static char hook_sig[80];

static const char *
hook_header(struct api_req *req, const char *name)
{
	(void)req;
	if (strcasecmp(name, "X-GitHub-Event") == 0)
		return "push";
	if (strcasecmp(name, "X-GitHub-Delivery") == 0)
		return hook_delivery;
	if (strcasecmp(name, "X-Hub-Signature-256") == 0)
		return hook_sig;
	return NULL;
}

/* Start a delivery of HOOK_PUSH with delivery id `id`; the loop is not
 * run. */
static enum api_result
deliver(struct api_req *req, const char *id)
{
	init_req(req, "POST", "/v1/hooks/github/app");
	req->header = hook_header;
	req->content_type = "application/json";
	req->body = HOOK_PUSH;
	req->body_len = strlen(HOOK_PUSH);
	hook_delivery = id;
	return api_handle(req);
}

/* The loop, until the request in flight completed. */
static void
finish(int before)
{
	while (completions == before)
		if (uv_run(qs_loop(), UV_RUN_ONCE) == 0 &&
		    completions == before) {
			CHECK(!"a request in flight never completed");
			return;
		}
}

/*
 * A webhook's redelivery lookups complete later: a second delivery of
 * the same push that arrives meanwhile must wait (409), not find nothing
 * and build the push twice; once the first is committed, any delivery of
 * it answers with its job.
 */
static void
test_hook_delivery_while_looked_up(void)
{
	static const char text[] = "[project app]\n"
	    "repo = https://example.com/app.git\n"
	    "secret = " HOOK_SECRET "\n"
	    "targets = linux/amd64\n"
	    "refs = refs/heads/main\n";
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	struct api_req a, b, c;
	char err[256] = "", hex[2 * sizeof mac + 1];
	json_t *j;
	int64_t id = 0, n = -1;
	int before;
	FILE *f;

	if (!setup())
		return;
	f = fmemopen((void *)text, strlen(text), "r");
	CHECK(f != NULL);
	if (f == NULL) {
		teardown();
		return;
	}
	CHECK_INT(conf_load_stream(&conf, f, "test.conf", err, sizeof err), 0);
	fclose(f);
	/* The key is the secret's bytes, of its own length (the one-shot
	 * crypto_auth_hmacsha256() would read a 32-byte key). */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)HOOK_SECRET,
	    strlen(HOOK_SECRET));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)HOOK_PUSH,
	    strlen(HOOK_PUSH));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
	snprintf(hook_sig, sizeof hook_sig, "sha256=%s", hex);

	before = completions;
	CHECK_INT(deliver(&a, "d-1"), API_PENDING);
	CHECK_INT(completions, before);
	/* Another id, the same push; and the same id: both wait. */
	CHECK_INT(deliver(&b, "d-2"), API_DONE);
	check_problem(&b, 409, "is being committed");
	api_req_release(&b);
	CHECK_INT(deliver(&b, "d-1"), API_DONE);
	check_problem(&b, 409, "is being committed");
	api_req_release(&b);
	finish(before);
	CHECK_INT(a.status, 201);
	if ((j = body_json(&a)) != NULL) {
		id = json_integer_value(json_object_get(j, "id"));
		CHECK_STR(json_string_value(json_object_get(j, "project")),
		    "app");
		json_decref(j);
	}
	CHECK(id > 0);
	api_req_release(&a);

	/* Found by its push under a new id, then by its delivery id. */
	for (int i = 0; i < 2; i++) {
		before = completions;
		CHECK_INT(deliver(&c, i == 0 ? "d-3" : "d-1"), API_PENDING);
		finish(before);
		CHECK_INT(c.status, 200);
		if ((j = body_json(&c)) != NULL) {
			CHECK_INT(json_integer_value(json_object_get(j, "id")),
			    id);
			json_decref(j);
		}
		api_req_release(&c);
	}
	CHECK_INT(queue_count_jobs(queue, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(submits, 1);
	teardown();
}

/* The build hooks of a follower whose target has not started. */
static int log_wakes;
static int log_watches;

static int
no_log(void *ctx, int64_t job_id, const char *target, int *fd)
{
	(void)ctx, (void)job_id, (void)target;
	*fd = -1;
	return -1;
}

static bool
not_live(void *ctx, int64_t job_id, const char *target)
{
	(void)ctx, (void)job_id, (void)target;
	return false;
}

static void *
watch_log(void *ctx, int64_t job_id, const char *target,
    void (*wake)(void *), void *data)
{
	(void)ctx, (void)job_id, (void)target, (void)wake, (void)data;
	log_watches++;
	return &log_watches;
}

static void
unwatch_log(void *ctx, void *handle)
{
	(void)ctx, (void)handle;
	log_watches--;
}

static void
count_wake(void *waker)
{
	CHECK(waker == &log_wakes);
	log_wakes++;
}

/* Run the loop a bounded number of times, until *n reaches want. */
static void
run_until(const int *n, int want)
{
	for (int i = 0; i < 1000 && *n < want; i++)
		uv_run(qs_loop(), UV_RUN_NOWAIT);
}

static long
follow_once(struct api_req *req, char *buf, size_t size)
{
	return req->stream.read(req->stream.cls, buf, size, count_wake,
	    &log_wakes);
}

/*
 * A follower of a target that has not started asks the queue about its
 * job on each wake-up: one read at a time, the answer wakes the stream,
 * and a follower closed while its read is in flight is freed by the
 * read's completion (ASan: no use after free, no leak).
 */
static void
test_log_follower_waits_on_reads(void)
{
	struct api_req req, c;
	char path[96], buf[512];
	int64_t id;
	long n;

	if (!setup())
		return;
	env.log_open = no_log;
	env.log_live = not_live;
	env.log_watch = watch_log;
	env.log_unwatch = unwatch_log;
	log_wakes = log_watches = 0;
	id = post_job();
	snprintf(path, sizeof path, "/v1/jobs/%lld/targets/linux_amd64/log",
	    (long long)id);
	set_query("follow", "1");
	CHECK_INT(run(&req, "GET", path), API_PENDING);
	CHECK_INT(req.status, 200);
	CHECK(req.stream.read != NULL);
	if (req.stream.read == NULL) {
		api_req_release(&req);
		teardown();
		return;
	}
	/* A read starts; a second call while it is in flight waits. */
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	CHECK_INT(log_wakes, 0);
	run_until(&log_wakes, 1);
	CHECK_INT(log_wakes, 1);
	/* Its answer: still queued, so the follower watches and waits. */
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	CHECK_INT(log_watches, 1);
	run_until(&log_wakes, 2);
	CHECK_INT(log_wakes, 1);	/* nothing owed */

	/* Canceled meanwhile: the next look ends the stream and says why. */
	clear_query();
	snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)id);
	CHECK_INT(run(&c, "POST", path), API_PENDING);
	CHECK_INT(c.status, 200);
	api_req_release(&c);
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	run_until(&log_wakes, 2);
	CHECK_INT(log_wakes, 2);
	n = follow_once(&req, buf, sizeof buf);
	CHECK(n > 0);
	if (n > 0) {
		buf[n < (long)sizeof buf ? n : (long)sizeof buf - 1] = '\0';
		CHECK(strstr(buf, "was canceled before it started") != NULL);
	}
	CHECK_INT(follow_once(&req, buf, sizeof buf), API_STREAM_END);
	api_req_release(&req);
	CHECK_INT(log_watches, 0);

	/* Closed while its read is in flight. */
	snprintf(path, sizeof path, "/v1/jobs/%lld/targets/linux_amd64/log",
	    (long long)post_job());
	set_query("follow", "1");
	CHECK_INT(run(&req, "GET", path), API_PENDING);
	CHECK(req.stream.read != NULL);
	if (req.stream.read != NULL)
		CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	api_req_release(&req);
	for (int i = 0; i < 10; i++)
		uv_run(qs_loop(), UV_RUN_NOWAIT);
	CHECK_INT(log_wakes, 2);	/* the freed follower was not woken */
	clear_query();
	teardown();
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
	TEST(test_caller_token),
	TEST(test_hook_delivery_while_looked_up),
	TEST(test_log_follower_waits_on_reads),
	TEST(test_healthz),
	TEST(test_route_table),
	TEST(test_unbuildable_answer_is_500)
)
