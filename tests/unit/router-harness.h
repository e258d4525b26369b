/*
 * The harness of the router tests (test_router.c, test_router_io.c): one
 * test's world -- a conf, a real queue in a temporary directory, the env
 * the handlers see -- and the calls that make a request by hand, serve it
 * through api_handle() and run the loop until it completed, then read its
 * answer.  A test calls setup() first and teardown() last.
 *
 * unit.h keeps its count of failed checks and its temporary directory in
 * each file that includes it, and a test fails only on its own file's
 * count; so the helpers that check (setup, body_json, check_problem,
 * post_job) are static functions here, compiled into each test file,
 * while the rest, which checks nothing, is in router-harness.c (which
 * defines ROUTER_HARNESS_NO_CHECKS and so sees only the declarations).
 */
#ifndef KILN_TEST_ROUTER_HARNESS_H
#define KILN_TEST_ROUTER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "daemon/db/queue.h"
#include "qsync.h"

/* One test's world: the conf, a queue, the env the handlers see. */
extern struct kiln_config conf;
extern struct queue *queue;
extern struct api_env env;
extern int completions;
extern int submits;
extern int submit_result;	/* what the submit hook returns */

/* The query arguments the next request sees: one more, or none. */
void set_query(const char *name, const char *value);
void clear_query(void);
/* The submit hook setup() installs: a synchronous group commit of one job
 * (none, and submit_result returned, when that is not 0). */
int submit_now(void *ctx, struct job *job, api_submit_done done, void *data);
void teardown(void);
void init_req(struct api_req *req, const char *method, const char *path);
/* api_handle(), and for an answer that waits on the queue's writer,
 * the loop until it completed. */
enum api_result handle(struct api_req *req);
enum api_result run(struct api_req *req, const char *method,
    const char *path);
enum api_result post(struct api_req *req, const char *path,
    const char *ctype, const char *body);
/* The answer's header `name`, or NULL. */
const char *header(const struct api_req *req, const char *name);

#endif

#ifndef ROUTER_HARNESS_NO_CHECKS
#ifndef KILN_TEST_ROUTER_HARNESS_CHECKS
#define KILN_TEST_ROUTER_HARNESS_CHECKS

#include <stdio.h>
#include <string.h>

#include <git2.h>
#include <jansson.h>

#include "unit.h"

__attribute__((unused)) static bool
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

/* The answer's body as JSON (caller decrefs), or NULL after a failure. */
__attribute__((unused)) static json_t *
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

/* Expect a problem+json answer with `status` and a detail holding `in`. */
__attribute__((unused)) static void
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
__attribute__((unused)) static int64_t
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

#endif
#endif
