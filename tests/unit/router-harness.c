/*
 * The router tests' shared world, the part of it that checks nothing:
 * the globals one test's requests run against, the query arguments, the
 * submit hook, and the calls that make and serve a request.
 * router-harness.h says what the harness is and holds the rest.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <git2.h>

#define ROUTER_HARNESS_NO_CHECKS
#include "router-harness.h"

/* One test's world: the conf, a queue, the env the handlers see. */
struct kiln_config conf;
struct queue *queue;
struct api_env env;
int completions;
int submits;
int submit_result;	/* what the submit hook returns */

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

void
set_query(const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < 7 && query_table[i][0] != NULL; i++)
		;
	query_table[i][0] = name;
	query_table[i][1] = value;
	query_table[i + 1][0] = NULL;
}

void
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
int
submit_now(void *ctx, struct job *job, api_submit_done done, void *data)
{
	struct queue *q = ctx;

	submits++;
	if (submit_result != 0)
		return submit_result;
	done(job, qs_submit(q, &job, 1), data);
	return 0;
}

void
teardown(void)
{
	qs_close(queue);
	queue = NULL;
	conf_free(&conf);
	git_libgit2_shutdown();
}

/* The HTTP layer always gives handlers a header lookup: none here. */
static const char *
no_headers(struct api_req *req, const char *name)
{
	(void)req;
	(void)name;
	return NULL;
}

void
init_req(struct api_req *req, const char *method, const char *path)
{
	memset(req, 0, sizeof *req);
	req->env = &env;
	req->method = method;
	req->path = path;
	req->query = query_lookup;
	req->header = no_headers;
	req->complete = complete;
}

/* api_handle(), and for an answer that waits on the queue's writer,
 * the loop until it completed. */
enum api_result
handle(struct api_req *req)
{
	int before = completions;
	enum api_result r = api_handle(req);

	while (r == API_PENDING && completions == before)
		uv_run(qs_loop(), UV_RUN_ONCE);
	return r;
}

enum api_result
run(struct api_req *req, const char *method, const char *path)
{
	init_req(req, method, path);
	return handle(req);
}

enum api_result
post(struct api_req *req, const char *path, const char *ctype,
    const char *body)
{
	init_req(req, "POST", path);
	req->content_type = ctype;
	req->body = body;
	req->body_len = strlen(body);
	return handle(req);
}

const char *
header(const struct api_req *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}
