/*
 * /v1/jobs: submit, get, list, cancel, reprioritise.  Every call into the
 * queue completes later (queue.h): a handler checks what it can at once,
 * returns API_PENDING and answers from the last completion of its steps
 * (struct step, kept with the request).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api.h"
#include "../daemon/callback-url.h"
#include "../daemon/events.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "../lib/validate.h"
#include "../lib/xmalloc.h"

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
		api_reply_queue_failed(req, rc, "the job queue failed");
}

static void
reply_job(struct api_req *req, const struct job *job)
{
	struct sbuf b = { 0 };

	job_render_json(&b, job);
	api_reply_sbuf(req, 200, &b);
}

/* A submission on its way to the group commit. */
struct submission {
	struct api_req *req;
	struct api_pending *hold;	/* its delivery, if it has one */
};

static void
submitted(struct job *job, int rc, void *data)
{
	struct submission *s = data;
	struct api_req *req = s->req;

	api_pending_release(s->hold);
	free(s);
	if (rc == 0) {
		struct sbuf b = { 0 };
		job_render_json(&b, job);
		api_reply_sbuf(req, 201, &b);
		api_add_header(req, "Location", "/v1/jobs/%lld",
		    (long long)job->id);
		log_info("job %lld: accepted %s %s (%zu targets)",
		    (long long)job->id, job->repo, job->ref, job->ntargets);
	} else if (rc == QUEUE_ECONFLICT) {
		/* A webhook delivery of this batch made a job on another host
		 * of the farm meanwhile; the batch is one transaction, so its
		 * other jobs were refused with it.  Made again, a delivery
		 * finds the first job, and any other job is simply stored. */
		api_reply_problem(req, 409, "a webhook delivery committed in "
		    "the same batch was already made a job by another host; "
		    "nothing was queued: try again");
		api_add_header(req, "Retry-After", "1");
	} else if (rc == QUEUE_EDOWN)
		api_reply_queue_failed(req, rc, "the job could not be stored");
	else
		api_reply_problem(req, 500, "the job could not be stored; "
		    "nothing was queued (see kilnd's log)");
	job_free(job);
	req->complete(req);
}

/*
 * Priorities above max_priority need the admin scope: otherwise every
 * submitter would ask for the top one and the order would mean nothing.
 * Returns false after answering 403.
 */
static bool
priority_allowed(struct api_req *req, int priority, bool admin)
{
	unsigned cap = req->env->conf->max_priority;

	if (priority <= 0 || (unsigned)priority <= cap || admin)
		return true;
	api_reply_problem(req, 403, "priority: %d is above max_priority (%u); "
	    "a higher priority needs the admin scope", priority, cap);
	return false;
}

static bool
is_commit_id(const char *ref)
{
	return strlen(ref) == 40 &&
	    strspn(ref, "0123456789abcdefABCDEF") == 40;
}

/* The project's refs patterns, space-separated, for a detail. */
static void
refs_list(char *buf, size_t size, const struct conf_project *p)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->nrefs && n < size; i++) {
		int w = snprintf(buf + n, size - n, "%s%s", i ? " " : "",
		    p->refs[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

/*
 * A job of a project's repository builds only the refs the project's
 * `refs` names, whoever submits it.  The worker resolves a short name X
 * as refs/tags/X, else refs/heads/X: when only one of the two is within
 * the project's refs, the job is given that full name, so that a branch
 * can never stand in for a tag of the same name (or the other way
 * round).  A commit id cannot be checked against patterns of refs: only
 * the admin scope may submit one for a project.  Returns false after
 * answering 403.
 */
static bool
project_ref(struct api_req *req, struct job *job, const struct conf_project *p)
{
	char refs[512];
	bool tag, head;
	char *t, *h;

	refs_list(refs, sizeof refs, p);
	if (is_commit_id(job->ref)) {
		if (api_caller_is_admin(req))
			return true;
		api_reply_problem(req, 403, "ref: a commit id cannot be checked "
		    "against the refs of project %s (%s): name a branch or tag "
		    "there, or submit with the admin scope", p->name, refs);
		return false;
	}
	if (strncmp(job->ref, "refs/", 5) == 0) {
		if (conf_project_wants_ref(p, job->ref))
			return true;
		goto refuse;
	}
	t = xasprintf("refs/tags/%s", job->ref);
	h = xasprintf("refs/heads/%s", job->ref);
	tag = conf_project_wants_ref(p, t);
	head = conf_project_wants_ref(p, h);
	if (tag != head) {
		free(job->ref);
		job->ref = tag ? t : h;
		free(tag ? h : t);
		return true;
	}
	free(t);
	free(h);
	if (tag)
		return true;
refuse:
	api_reply_problem(req, 403, "ref: '%.255s' is not within the refs of "
	    "project %s (%s)", job->ref, p->name, refs);
	return false;
}

/*
 * A job of a project's repository obeys the project: its refs, its
 * recipe (a request's own needs the admin scope, which may build what it
 * likes anyway), its name, network and callback.  Returns false after
 * answering.
 */
static bool
project_policy(struct api_req *req, struct job *job,
    const struct conf_project *p)
{
	if (!project_ref(req, job, p))
		return false;
	if (job->recipe != NULL && !api_caller_is_admin(req)) {
		api_reply_problem(req, 403, "recipe: a job of project %s builds "
		    "with the project's recipe; a request's own recipe needs "
		    "the admin scope", p->name);
		return false;
	}
	if (job->recipe == NULL && p->recipe != NULL)
		job->recipe = xstrdup(p->recipe);
	api_apply_project(job, p);
	return true;
}

static enum api_result
submit_job(struct api_req *req)
{
	const struct kiln_config *c = req->env->conf;
	const struct conf_project *p;
	const char *token;
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
	/* Local repositories: only with allow_local_repos, never kilnd's
	 * own state directory. */
	if (validate_local_repo(c->allow_local_repos, c->state_dir,
	    job->repo, detail, sizeof detail) != 0) {
		api_reply_problem(req, 422, "%s", detail);
		job_free(job);
		return API_DONE;
	}
	/* A callback to an address of the farm itself needs the
	 * operator's consent (daemon/callback-url.h). */
	if (job->notify_url != NULL && callback_url_check(job->notify_url,
	    c->allow_private_callbacks, detail, sizeof detail) != 0) {
		api_reply_problem(req, 422, "notify.url: %s", detail);
		job_free(job);
		return API_DONE;
	}
	if (!priority_allowed(req, job->priority, api_caller_is_admin(req))) {
		job_free(job);
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
	if (p != NULL && !project_policy(req, job, p)) {
		job_free(job);
		return API_DONE;
	}
	/* Only an admin's submission may build with the protected caches
	 * (and then only of a protected ref, decided once it is fetched). */
	if (!api_caller_is_admin(req))
		job->trust = TRUST_UNPROTECTED;
	/* Its owner, for cancel and PATCH: the token's name, which stays
	 * when the token is rotated under the same name. */
	if ((token = api_caller_token(req)) != NULL)
		job->submitted_by = xstrdup(token);
	return api_submit_job(req, job);
}

void
api_apply_project(struct job *job, const struct conf_project *p)
{
	free(job->project);
	job->project = xstrdup(p->name);
	/* The project's spelling of its repository (conf_project_by_repo
	 * matches any): the one its fetch gets the credentials for. */
	if (strcmp(job->repo, p->repo) != 0) {
		free(job->repo);
		job->repo = xstrdup(p->repo);
	}
	job->network = p->network;
	if (job->notify_url == NULL && p->notify_url != NULL)
		job->notify_url = xstrdup(p->notify_url);
	if (job->timeout == 0 && p->timeout > 0)
		job->timeout = (int)p->timeout;
}

enum api_result
api_submit_job(struct api_req *req, struct job *job)
{
	struct submission *s = xcalloc(1, sizeof *s);
	int rc;

	job->created_at = util_now_ms();
	s->req = req;
	/* Listed before the submission: its callback may run at once. */
	s->hold = api_pending_hold(job);
	rc = req->env->submit(req->env->submit_ctx, job, submitted, s);
	if (rc == 0)
		return API_PENDING;
	api_pending_release(s->hold);
	free(s);
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

/*
 * Answer 200 with the rendered JSON in b (taken over) and a strong ETag
 * of it, or 304 with the ETag alone when If-None-Match names it.  Most
 * pollers ask about jobs that did not change: the render stays (the tag
 * is its hash, so it changes with any field), the transfer and the
 * client's parse go.  The rendering holds no clock, so equal state gives
 * equal tags.
 */
static void
reply_tagged(struct api_req *req, struct sbuf *b)
{
	unsigned char h[16];
	char hex[2 * sizeof h + 1], etag[2 * sizeof h + 3];
	const char *inm = req->header ? req->header(req, "If-None-Match") :
	    NULL;

	crypto_generichash(h, sizeof h, (const unsigned char *)b->p, b->len,
	    NULL, 0);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	snprintf(etag, sizeof etag, "\"%s\"", hex);
	api_add_header(req, "ETag", "%s", etag);
	/* A cache may keep it but must ask again each time: the tag makes
	 * asking cheap. */
	api_add_header(req, "Cache-Control", "private, no-cache");
	if (!api_etag_matches(inm, etag)) {
		api_reply_sbuf(req, 200, b);
		return;
	}
	sbuf_free(b);
	free(req->resp_body);
	req->resp_body = NULL;
	req->resp_len = 0;
	req->status = 304;
	req->resp_type = "application/json";
}

/*
 * A request's state while it waits on the queue: the read's
 * out-parameters (valid until its completion ran, as queue.h asks), and
 * for a change, what the steps after the first need.
 */
struct step {
	struct api_req *req;
	int64_t id;
	struct job *job;		/* queue_get's */
	struct job **jobs;		/* queue_list's */
	size_t njobs;
	int64_t next;
	/* Cancel and PATCH: the caller, as the request showed it. */
	bool admin;
	char *me;			/* its token's name, or NULL */
	const char *what;		/* "cancel", "reprioritise" */
	size_t running;			/* cancel: targets still running */
	int priority;			/* patch */
	enum job_state was;		/* patch: the job's state before */
};

static void
step_release(void *data)
{
	struct step *s = data;

	job_free(s->job);
	job_free_array(s->jobs, s->njobs);
	free(s->me);
}

static struct step *
step_new(struct api_req *req, int64_t id)
{
	struct step *s = api_req_state(req, sizeof *s, step_release);

	s->req = req;
	s->id = id;
	return s;
}

static void
got_job(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;
	struct sbuf b = { 0 };

	if (rc != 0)
		reply_queue_error(req, rc, s->id);
	else {
		job_render_json(&b, s->job);
		reply_tagged(req, &b);
	}
	req->complete(req);
}

static enum api_result
get_job(struct api_req *req)
{
	struct step *s;
	int64_t id;

	if (path_id(req, &id) != 0)
		return API_DONE;
	s = step_new(req, id);
	queue_get(req->env->queue, id, &s->job, got_job, s);
	return API_PENDING;
}

static void
listed(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;
	struct sbuf b = { 0 };

	if (rc != 0) {
		api_reply_queue_failed(req, rc, "the job queue failed");
		req->complete(req);
		return;
	}
	sbuf_add(&b, "{\"jobs\":[", 9);
	for (size_t i = 0; i < s->njobs; i++) {
		if (i > 0)
			sbuf_addc(&b, ',');
		job_render_json(&b, s->jobs[i]);
	}
	sbuf_adds(&b, "],\"next\":");
	if (s->next != 0) {
		/* The cursor is opaque to clients: a string. */
		sbuf_addc(&b, '"');
		sbuf_addi(&b, s->next);
		sbuf_addc(&b, '"');
	} else
		sbuf_adds(&b, "null");
	sbuf_addc(&b, '}');
	reply_tagged(req, &b);
	req->complete(req);
}

/* A name a [project NAME] section of kilnd.conf may have. */
static bool
project_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 64 && strspn(name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static enum api_result
list_jobs(struct api_req *req)
{
	struct queue_filter f = { .limit = LIST_DEFAULT };
	const char *state = req->query(req, "state");
	const char *limit = req->query(req, "limit");
	const char *after = req->query(req, "after");
	const char *project = req->query(req, "project");
	const char *repo = req->query(req, "repo");
	char why[256];
	struct step *s;
	int64_t v;

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
	/* Exact matches; empty is no filter, as for state. */
	if (project != NULL && *project != '\0') {
		if (!project_name_ok(project)) {
			api_reply_problem(req, 422, "project: '%.64s' is not a "
			    "project name (1 to 64 letters, digits, '.', '_' or "
			    "'-')", project);
			return API_DONE;
		}
		f.project = project;
	}
	if (repo != NULL && *repo != '\0') {
		/* A value no job could have is a mistake worth saying. */
		if (validate_repo(repo, why, sizeof why) != 0) {
			api_reply_problem(req, 422, "%s", why);
			return API_DONE;
		}
		f.repo = repo;
	}
	s = step_new(req, 0);
	queue_list(req->env->queue, &f, &s->jobs, &s->njobs, &s->next, listed,
	    s);
	return API_PENDING;
}

/*
 * Cancel and PATCH: read the job, check the caller may change it, make
 * the change, read the job again for the answer.  Who the caller is is
 * taken from the request when it arrives.
 */
static struct step *
change_new(struct api_req *req, int64_t id, const char *what)
{
	struct step *s = step_new(req, id);
	const char *me = api_caller_token(req);

	s->what = what;
	s->admin = api_caller_is_admin(req);
	/* A name in the configuration, which a reload may free. */
	s->me = me != NULL ? xstrdup(me) : NULL;
	return s;
}

/*
 * A token below admin changes only the jobs it submitted (by the name
 * of its [tokens] entry); jobs of webhooks, and of a farm that had no
 * tokens, only admins.  After the read of the job (rc): false after
 * answering 404, 403 or 500.
 */
static bool
may_change(struct step *s, int rc)
{
	if (rc != 0) {
		reply_queue_error(s->req, rc, s->id);
		return false;
	}
	if (s->admin)
		return true;
	if (s->me != NULL && s->job->submitted_by != NULL &&
	    strcmp(s->me, s->job->submitted_by) == 0)
		return true;
	api_reply_problem(s->req, 403, "job %lld was not submitted by this "
	    "token: a token may %s only the jobs it submitted (the admin "
	    "scope may any)", (long long)s->id, s->what);
	return false;
}

/* Read the job again into s->job, then done(s, rc). */
static void
reread(struct step *s, queue_done done)
{
	job_free(s->job);
	s->job = NULL;
	queue_get(s->req->env->queue, s->id, &s->job, done, s);
}

static void
reread_done(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;

	if (rc != 0)
		reply_queue_error(req, rc, s->id);
	else {
		/* Canceled, or its priority changed: live events tell. */
		events_job(req->env->events, s->id,
		    job_state_name(s->job->state));
		/* A cancel ends the targets no build had started: they
		 * have no build to end and tell it (a running one tells
		 * when its build stops). */
		for (size_t i = 0; strcmp(s->what, "cancel") == 0 &&
		    i < s->job->ntargets; i++) {
			const struct job_target *t = &s->job->targets[i];

			if (t->state == TARGET_CANCELED && t->started_at == 0)
				events_target(req->env->events, s->id,
				    t->target, target_state_name(t->state));
		}
		reply_job(req, s->job);
	}
	req->complete(req);
}

/* After a change (rc): the job as it is now, or an answer saying why
 * not. */
static void
reply_changed(struct step *s, int rc)
{
	if (rc == 0) {
		reread(s, reread_done);
		return;
	}
	reply_queue_error(s->req, rc, s->id);
	s->req->complete(s->req);
}

static void
cancel_conflict(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;

	if (rc == 0)
		api_reply_problem(req, 409, "job %lld already %s; only queued "
		    "or running jobs can be canceled", (long long)s->id,
		    job_state_name(s->job->state));
	else
		api_reply_problem(req, 409, "job %lld already ended",
		    (long long)s->id);
	req->complete(req);
}

static void
canceled(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;

	if (rc == QUEUE_ECONFLICT) {
		/* Say how it ended. */
		reread(s, cancel_conflict);
		return;
	}
	if (rc == 0) {
		log_info("job %lld: canceled (%zu targets still running)",
		    (long long)s->id, s->running);
		/* Running builds are stopped; they end canceled. */
		if (s->running > 0 && req->env->cancel != NULL)
			req->env->cancel(req->env->build_ctx, s->id);
	}
	reply_changed(s, rc);
}

static void
cancel_checked(void *data, int rc)
{
	struct step *s = data;

	if (!may_change(s, rc)) {
		s->req->complete(s->req);
		return;
	}
	queue_cancel(s->req->env->queue, s->id, &s->running, canceled, s);
}

static enum api_result
cancel_job(struct api_req *req)
{
	struct step *s;
	int64_t id;

	if (path_id(req, &id) != 0)
		return API_DONE;
	s = change_new(req, id, "cancel");
	queue_get(req->env->queue, id, &s->job, cancel_checked, s);
	return API_PENDING;
}

/* The body of PATCH /v1/jobs/{id}: {"priority": N}.  0 or -1 with
 * *status and a detail. */
static int
parse_patch(const char *body, size_t len, int *priority, unsigned *status,
    char *why, size_t size)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *k;
	int rc = -1;

	*status = 422;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &jerr);
	if (root == NULL) {
		*status = 400;
		snprintf(why, size, "malformed JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(why, size, "body: must be a JSON object");
		goto out;
	}
	json_object_foreach(root, k, v) {
		if (strcmp(k, "priority") != 0) {
			snprintf(why, size, "unknown field '%.64s' (only "
			    "priority can be changed)", k);
			goto out;
		}
	}
	v = json_object_get(root, "priority");
	if (v == NULL || !json_is_integer(v) ||
	    json_integer_value(v) < JOB_PRIORITY_MIN ||
	    json_integer_value(v) > JOB_PRIORITY_MAX) {
		snprintf(why, size, "priority: must be an integer from %d to %d",
		    JOB_PRIORITY_MIN, JOB_PRIORITY_MAX);
		goto out;
	}
	*priority = (int)json_integer_value(v);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/*
 * PATCH /v1/jobs/{id} {"priority": N}: the job's queued targets take the
 * new priority; running ones go on.  The same rules as a submission:
 * the submitter's own job, max_priority for tokens below admin.
 */
static void
reprioritised(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;

	if (rc == QUEUE_ECONFLICT) {
		api_reply_problem(req, 409, "job %lld is %s; only queued or "
		    "running jobs (not being canceled) can be reprioritised",
		    (long long)s->id, job_state_terminal(s->was) ?
		    job_state_name(s->was) : "being canceled");
		req->complete(req);
		return;
	}
	if (rc == 0)
		log_info("job %lld: priority %d", (long long)s->id,
		    s->priority);
	reply_changed(s, rc);
}

static void
patch_checked(void *data, int rc)
{
	struct step *s = data;
	struct api_req *req = s->req;

	if (!may_change(s, rc) ||
	    !priority_allowed(req, s->priority, s->admin)) {
		req->complete(req);
		return;
	}
	s->was = s->job->state;
	queue_set_priority(req->env->queue, s->id, s->priority,
	    reprioritised, s);
}

static enum api_result
patch_job(struct api_req *req)
{
	struct step *s;
	char detail[256];
	unsigned status;
	int64_t id;
	int priority;

	if (path_id(req, &id) != 0)
		return API_DONE;
	if (!api_is_json_type(req->content_type)) {
		api_reply_problem(req, 415, "Content-Type must be "
		    "application/json, not '%.64s'",
		    req->content_type ? req->content_type : "(none)");
		return API_DONE;
	}
	if (parse_patch(req->body, req->body_len, &priority, &status, detail,
	    sizeof detail) != 0) {
		api_reply_problem(req, status, "%s", detail);
		return API_DONE;
	}
	s = change_new(req, id, "reprioritise");
	s->priority = priority;
	queue_get(req->env->queue, id, &s->job, patch_checked, s);
	return API_PENDING;
}

const struct api_route api_jobs_routes[] = {
	{ "POST", "/v1/jobs", API_SCOPE_SUBMIT, submit_job },
	{ "GET", "/v1/jobs", API_SCOPE_READ, list_jobs },
	{ "GET", "/v1/jobs/{id}", API_SCOPE_READ, get_job },
	{ "PATCH", "/v1/jobs/{id}", API_SCOPE_SUBMIT, patch_job },
	{ "POST", "/v1/jobs/{id}/cancel", API_SCOPE_SUBMIT, cancel_job },
	{ NULL, NULL, 0, NULL },
};
