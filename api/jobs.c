/* /v1/jobs: submit, get, list, cancel. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "../daemon/log.h"
#include "../daemon/util.h"
#include "../daemon/xmalloc.h"

#define LIST_DEFAULT 50

/* "application/json", optionally with parameters ("; charset=utf-8"). */
bool
api_is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Path ids are positive decimal integers; anything else is not a job. */
static int
path_id(struct api_req *req, int64_t *id)
{
	if (util_parse_int64(req->params[0], 1, INT64_MAX, id) != 0) {
		api_reply_problem(req, 404, "no job '%.64s': job ids are "
		    "positive integers", req->params[0]);
		return -1;
	}
	return 0;
}

static void
reply_queue_error(struct api_req *req, int rc, int64_t id)
{
	if (rc == QUEUE_ENOTFOUND)
		api_reply_problem(req, 404, "no job %lld", (long long)id);
	else
		api_reply_problem(req, 500, "the job queue failed; see kilnd's "
		    "log");
}

static void
reply_job(struct api_req *req, const struct job *job)
{
	struct sbuf b = { 0 };

	api_job_render(&b, job);
	api_reply_sbuf(req, 200, &b);
}

/* In-flight webhook deliveries: a redelivery that arrives before the
 * first one's commit waits (409) instead of making a second job. */
struct pending {
	char *key;
	struct pending *next;
};
static struct pending *pending;

static char *
delivery_key(const struct job *job)
{
	return xasprintf("%s\n%s", job->delivery_forge, job->delivery_id);
}

bool
api_delivery_pending(const char *forge, const char *id)
{
	char *k = xasprintf("%s\n%s", forge, id);
	bool found = false;

	for (struct pending *p = pending; p && !found; p = p->next)
		found = strcmp(p->key, k) == 0;
	free(k);
	return found;
}

static void
pending_drop(const struct job *job)
{
	char *k;

	if (job->delivery_id == NULL)
		return;
	k = delivery_key(job);
	for (struct pending **pp = &pending; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, k) == 0) {
			struct pending *p = *pp;
			*pp = p->next;
			free(p->key);
			free(p);
			break;
		}
	}
	free(k);
}

static void
submitted(struct job *job, int rc, void *data)
{
	struct api_req *req = data;

	pending_drop(job);
	if (rc == 0) {
		struct sbuf b = { 0 };
		api_job_render(&b, job);
		api_reply_sbuf(req, 201, &b);
		api_add_header(req, "Location", "/v1/jobs/%lld",
		    (long long)job->id);
		log_info("job %lld: accepted %s %s (%zu targets)",
		    (long long)job->id, job->repo, job->ref, job->ntargets);
	} else
		api_reply_problem(req, 500, "the job could not be stored; "
		    "nothing was queued (see kilnd's log)");
	job_free(job);
	req->complete(req);
}

static enum api_result
submit_job(struct api_req *req)
{
	const struct kiln_config *c = req->env->conf;
	const struct conf_project *p;
	struct job *job = NULL;
	char detail[512];
	unsigned status;

	if (!api_is_json_type(req->content_type)) {
		api_reply_problem(req, 415, "Content-Type must be "
		    "application/json, not '%.64s'",
		    req->content_type ? req->content_type : "(none)");
		return API_DONE;
	}
	if (api_parse_job_request(req->body, req->body_len, &job, &status,
	    detail, sizeof detail) != 0) {
		api_reply_problem(req, status, "%s", detail);
		return API_DONE;
	}
	/* With projects, only their repositories are built (unless
	 * open_submissions); a project's job gets its settings. */
	p = conf_project_by_repo(c, job->repo);
	if (p == NULL && c->nprojects > 0 && !c->open_submissions) {
		api_reply_problem(req, 403, "repo: '%.200s' is not the repo of "
		    "a project in kilnd.conf, and open_submissions is off",
		    job->repo);
		job_free(job);
		return API_DONE;
	}
	if (p != NULL)
		api_apply_project(job, p);
	/* Only an admin's submission may build with the protected caches
	 * (and then only of a protected ref, decided once it is fetched). */
	if (!api_caller_is_admin(req))
		job->trust = TRUST_UNPROTECTED;
	return api_submit_job(req, job);
}

void
api_apply_project(struct job *job, const struct conf_project *p)
{
	free(job->project);
	job->project = xstrdup(p->name);
	job->network = p->network;
	if (job->notify_url == NULL && p->notify_url != NULL)
		job->notify_url = xstrdup(p->notify_url);
	if (job->timeout == 0 && p->timeout > 0)
		job->timeout = (int)p->timeout;
}

enum api_result
api_submit_job(struct api_req *req, struct job *job)
{
	int rc;

	job->created_at = util_now_ms();
	/* Listed before the submission: its callback may run at once. */
	if (job->delivery_id != NULL) {
		struct pending *p = xcalloc(1, sizeof *p);
		p->key = delivery_key(job);
		p->next = pending;
		pending = p;
	}
	rc = req->env->submit(req->env->submit_ctx, job, submitted, req);
	if (rc == 0)
		return API_PENDING;
	pending_drop(job);
	job_free(job);
	if (rc == API_EFULL) {
		api_reply_problem(req, 503, "the queue is full (max_queued = "
		    "%u queued targets); try again later",
		    req->env->conf->max_queued);
		api_add_header(req, "Retry-After", "5");
	} else if (rc == API_ESTOPPING) {
		api_reply_problem(req, 503, "kilnd is shutting down");
		api_add_header(req, "Retry-After", "10");
	} else
		api_reply_problem(req, 500, "the job could not be queued");
	return API_DONE;
}

static enum api_result
get_job(struct api_req *req)
{
	struct job *job = NULL;
	int64_t id;
	int rc;

	if (path_id(req, &id) != 0)
		return API_DONE;
	if ((rc = queue_get(req->env->queue, id, &job)) != 0) {
		reply_queue_error(req, rc, id);
		return API_DONE;
	}
	reply_job(req, job);
	job_free(job);
	return API_DONE;
}

static enum api_result
list_jobs(struct api_req *req)
{
	struct queue_filter f = { .limit = LIST_DEFAULT };
	const char *state = req->query(req, "state");
	const char *limit = req->query(req, "limit");
	const char *after = req->query(req, "after");
	struct job **jobs = NULL;
	struct sbuf b = { 0 };
	int64_t next = 0, v;
	size_t n = 0;

	if (state != NULL && *state != '\0') {
		if (job_state_parse(state, &f.state) != 0) {
			api_reply_problem(req, 422, "state: '%.64s' is not one of "
			    "queued, running, succeeded, failed, canceled",
			    state);
			return API_DONE;
		}
		f.has_state = true;
	}
	if (limit != NULL) {
		if (util_parse_int64(limit, 1, QUEUE_LIST_MAX, &v) != 0) {
			api_reply_problem(req, 422, "limit: '%.64s' is not an "
			    "integer from 1 to %d", limit, QUEUE_LIST_MAX);
			return API_DONE;
		}
		f.limit = (size_t)v;
	}
	if (after != NULL) {
		if (util_parse_int64(after, 1, INT64_MAX, &v) != 0) {
			api_reply_problem(req, 422, "after: '%.64s' is not a "
			    "cursor from a previous page's \"next\"", after);
			return API_DONE;
		}
		f.after = v;
	}
	if (queue_list(req->env->queue, &f, &jobs, &n, &next) != 0) {
		api_reply_problem(req, 500, "the job queue failed; see kilnd's "
		    "log");
		return API_DONE;
	}
	sbuf_add(&b, "{\"jobs\":[", 9);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			sbuf_addc(&b, ',');
		api_job_render(&b, jobs[i]);
	}
	job_free_array(jobs, n);
	sbuf_adds(&b, "],\"next\":");
	if (next != 0) {
		/* The cursor is opaque to clients: a string. */
		sbuf_addc(&b, '"');
		sbuf_addi(&b, next);
		sbuf_addc(&b, '"');
	} else
		sbuf_adds(&b, "null");
	sbuf_addc(&b, '}');
	api_reply_sbuf(req, 200, &b);
	return API_DONE;
}

static enum api_result
cancel_job(struct api_req *req)
{
	struct job *job = NULL;
	size_t running = 0;
	int64_t id;
	int rc;

	if (path_id(req, &id) != 0)
		return API_DONE;
	rc = queue_cancel(req->env->queue, id, &running);
	if (rc == QUEUE_ECONFLICT) {
		if (queue_get(req->env->queue, id, &job) == 0) {
			api_reply_problem(req, 409, "job %lld already %s; only "
			    "queued or running jobs can be canceled",
			    (long long)id, job_state_name(job->state));
			job_free(job);
		} else
			api_reply_problem(req, 409, "job %lld already ended",
			    (long long)id);
		return API_DONE;
	}
	if (rc != 0 || (rc = queue_get(req->env->queue, id, &job)) != 0) {
		reply_queue_error(req, rc, id);
		return API_DONE;
	}
	log_info("job %lld: canceled (%zu targets still running)",
	    (long long)id, running);
	/* Running builds are stopped; they end as canceled. */
	if (running > 0 && req->env->cancel != NULL)
		req->env->cancel(req->env->build_ctx, id);
	reply_job(req, job);
	job_free(job);
	return API_DONE;
}

const struct api_route api_jobs_routes[] = {
	{ "POST", "/v1/jobs", API_SCOPE_SUBMIT, submit_job },
	{ "GET", "/v1/jobs", API_SCOPE_READ, list_jobs },
	{ "GET", "/v1/jobs/{id}", API_SCOPE_READ, get_job },
	{ "POST", "/v1/jobs/{id}/cancel", API_SCOPE_SUBMIT, cancel_job },
	{ NULL, NULL, 0, NULL },
};
