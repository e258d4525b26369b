/*
 * POST /v1/jobs/{id}/retry: a new job made from one that ended, building
 * the same commit of the same repository again (its ref may have moved
 * since), with the same targets, recipe, outputs, priority and project.
 * The new job records the one it retries (retry_of).
 *
 * Any token of the submit scope may retry any job: the new job is the
 * caller's own (submitted_by, trust), and it passes what a submission of
 * it by the caller would have to pass (the project's refs and recipe,
 * max_priority, open_submissions, allow_local_repos), so that a retry
 * never lets a caller build what it could not have submitted itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "../lib/validate.h"
#include "../lib/xmalloc.h"

struct retry {
	struct api_req *req;
	int64_t id;
	struct job *old;	/* queue_get's */
	bool admin;		/* the caller, as the request showed it */
	char *me;		/* its token's name, or NULL */
};

static void
retry_release(void *data)
{
	struct retry *r = data;

	job_free(r->old);
	free(r->me);
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * Whether a submission of `ref` would be within the project's refs
 * (api/jobs.c): a full ref that matches them, or a short name both of
 * whose full names do (with only one, the job was given that full name).
 * A commit id never is.
 */
static bool
ref_within(const struct conf_project *p, const char *ref)
{
	bool tag, head;
	char *t, *h;

	if (strncmp(ref, "refs/", 5) == 0)
		return conf_project_wants_ref(p, ref);
	if (strlen(ref) == 40 && strspn(ref, "0123456789abcdefABCDEF") == 40)
		return false;
	t = xasprintf("refs/tags/%s", ref);
	h = xasprintf("refs/heads/%s", ref);
	tag = conf_project_wants_ref(p, t);
	head = conf_project_wants_ref(p, h);
	free(t);
	free(h);
	return tag && head;
}

/*
 * What a submission of the new job by this caller would be refused for
 * (api/jobs.c has the rules): false after answering 403 or 422.
 */
static bool
retry_allowed(struct retry *r, const struct conf_project *p)
{
	struct api_req *req = r->req;
	const struct kiln_config *c = req->env->conf;
	const struct job *old = r->old;
	char why[512];

	if (validate_local_repo(c->allow_local_repos, c->state_dir, old->repo,
	    why, sizeof why) != 0) {
		api_reply_problem(req, 422, "%s", why);
		return false;
	}
	if (p == NULL && c->nprojects > 0 && !c->open_submissions) {
		api_reply_problem(req, 403, "repo: '%.200s' is no longer the "
		    "repo of a project in kilnd.conf, and open_submissions is "
		    "off", old->repo);
		return false;
	}
	if (r->admin)
		return true;
	/* A project's own priority is what its webhooks' jobs get. */
	if (old->priority > 0 && (unsigned)old->priority > c->max_priority &&
	    (p == NULL || old->priority != p->priority)) {
		api_reply_problem(req, 403, "priority: job %lld's %d is above "
		    "max_priority (%u); retrying it needs the admin scope",
		    (long long)r->id, old->priority, c->max_priority);
		return false;
	}
	if (p == NULL)
		return true;
	if (!ref_within(p, old->ref)) {
		api_reply_problem(req, 403, "ref: '%.255s' of job %lld is not "
		    "within the refs of project %s; retrying it needs the admin "
		    "scope", old->ref, (long long)r->id, p->name);
		return false;
	}
	if (!same_text(old->recipe, p->recipe)) {
		api_reply_problem(req, 403, "recipe: job %lld did not build with "
		    "project %s's recipe; retrying it needs the admin scope",
		    (long long)r->id, p->name);
		return false;
	}
	return true;
}

/* The new job: old's build, the caller's ownership. */
static struct job *
retry_make(struct retry *r, const struct conf_project *p)
{
	const struct job *old = r->old;
	struct job *j = xcalloc(1, sizeof *j);
	size_t n = 0;

	j->repo = xstrdup(old->repo);
	j->ref = xstrdup(old->ref);
	/* Pinned: the ref may point elsewhere now.  A job that never
	 * resolved its ref (it failed before) retries the ref as given. */
	j->commit = old->commit != NULL ? xstrdup(old->commit) : NULL;
	j->recipe = old->recipe != NULL ? xstrdup(old->recipe) : NULL;
	j->outputs = old->outputs != NULL ? xstrdup(old->outputs) : NULL;
	j->release = old->release;
	j->priority = old->priority;
	j->timeout = old->timeout;
	j->cache = old->cache;
	/* Only a project gives a job the network (api_apply_project, below):
	 * the old job's came from a project that a reload may have removed
	 * since, and a submission of its repository now builds offline. */
	j->network = false;
	j->retry_of = old->id;
	/* The release row is added again once every build succeeded; a
	 * job that failed before its repository named the targets still
	 * has its one placeholder row, which names them again. */
	j->targets = xcalloc(old->ntargets ? old->ntargets : 1,
	    sizeof *j->targets);
	for (size_t i = 0; i < old->ntargets; i++) {
		if (strcmp(old->targets[i].target, "release") == 0 &&
		    old->release)
			continue;
		memcpy(j->targets[n].target, old->targets[i].target,
		    sizeof j->targets[n].target);
		j->targets[n].state = TARGET_QUEUED;
		n++;
	}
	if (n == 0) {
		snprintf(j->targets[0].target, sizeof j->targets[0].target,
		    "%s", JOB_TARGETS_FROM_REPO);
		n = 1;
	}
	j->ntargets = n;
	if (p != NULL)
		api_apply_project(j, p);
	/* The project's callback (api_apply_project), never a request's
	 * own: that one was its submitter's, not this caller's. */
	j->trust = r->admin ? TRUST_UNKNOWN : TRUST_UNPROTECTED;
	j->submitted_by = r->me != NULL ? xstrdup(r->me) : NULL;
	return j;
}

static void
got_old(void *data, int rc)
{
	struct retry *r = data;
	struct api_req *req = r->req;
	const struct conf_project *p;

	if (rc == QUEUE_ENOTFOUND) {
		api_reply_problem(req, 404, "no job %lld", (long long)r->id);
		goto done;
	}
	if (rc != 0) {
		api_reply_queue_failed(req, rc, "the job queue failed");
		goto done;
	}
	if (!job_state_terminal(r->old->state)) {
		api_reply_problem(req, 409, "job %lld is %s; only a job that "
		    "ended (succeeded, failed or canceled) can be retried",
		    (long long)r->id, job_state_name(r->old->state));
		goto done;
	}
	p = conf_project_by_repo(req->env->conf, r->old->repo);
	if (!retry_allowed(r, p))
		goto done;
	log_info("job %lld: retried by %s", (long long)r->id,
	    r->me != NULL ? r->me : "a caller without token");
	if (api_submit_job(req, retry_make(r, p)) == API_PENDING)
		return;		/* answered when stored (api/jobs.c) */
done:
	req->complete(req);
}

/* The body may be absent or an empty object: a retry takes no fields. */
static bool
body_empty(struct api_req *req)
{
	json_error_t jerr;
	json_t *root;
	bool ok;

	for (size_t i = 0; i < req->body_len; i++)
		if (strchr(" \t\r\n", req->body[i]) == NULL)
			goto parse;
	return true;
parse:
	root = json_loadb(req->body, req->body_len, JSON_DECODE_ANY, &jerr);
	if (root == NULL) {
		api_reply_problem(req, 400, "malformed JSON at line %d, column "
		    "%d: %s", jerr.line, jerr.column, jerr.text);
		return false;
	}
	ok = json_is_object(root) && json_object_size(root) == 0;
	json_decref(root);
	if (!ok)
		api_reply_problem(req, 422, "body: a retry takes no fields "
		    "(send nothing or {})");
	return ok;
}

static enum api_result
retry_job(struct api_req *req)
{
	struct retry *r;
	const char *me;
	int64_t id;

	if (util_parse_int64(req->params[0], 1, INT64_MAX, &id) != 0) {
		api_reply_problem(req, 404, "no job '%.64s': job ids are "
		    "positive integers", req->params[0]);
		return API_DONE;
	}
	if (!body_empty(req))
		return API_DONE;
	r = api_req_state(req, sizeof *r, retry_release);
	r->req = req;
	r->id = id;
	r->admin = api_caller_is_admin(req);
	/* A name in the configuration, which a reload may free. */
	me = api_caller_token(req);
	r->me = me != NULL ? xstrdup(me) : NULL;
	queue_get(req->env->queue, id, &r->old, got_old, r);
	return API_PENDING;
}

const struct api_route api_retry_routes[] = {
	{ "POST", "/v1/jobs/{id}/retry", API_SCOPE_SUBMIT, retry_job },
	{ NULL, NULL, 0, NULL },
};
