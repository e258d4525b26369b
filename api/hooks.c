/*
 * Webhooks from GitHub, Gitea and GitLab: POST /v1/hooks/{forge} and
 * POST /v1/hooks/{forge}/{project}.  What every forge's delivery goes
 * through is here; what is particular to one forge (its headers, its
 * signature or token, where its payload keeps what) is in
 * api/hooks-{github,gitea,gitlab}.c, reached through struct hook_forge.
 *
 * A delivery is trusted only by its signature: GitHub's and Gitea's
 * HMAC-SHA256 of the raw body, GitLab's token, compared in constant time
 * with every secret of the project the path names, or (unqualified path)
 * of the project whose repository the payload names: at most
 * CONF_MAX_SECRETS HMACs of the body per delivery, however many projects
 * the farm has.  A project with more secrets than max_hook_secrets is
 * reached through its own path only.
 *
 * A push of a ref the project's patterns match becomes a job for the
 * project's repo, targets and recipe at the pushed commit, durably
 * committed before the 201, with the delivery id and the push (project,
 * ref, pushed commit) recorded in the same transaction.  Either one seen
 * again is a redelivery and answers with the first job: a signed push
 * replayed with a new delivery id builds nothing new.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "hooks-int.h"
#include "../lib/log.h"
#include "../daemon/metrics.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

/* The body's JSON: as is, or the payload= field of a form. */
static json_t *
payload(struct api_req *req, char *why, size_t whysize)
{
	const char *ct = req->content_type;
	json_error_t jerr;
	json_t *doc;

	if (api_is_json_type(ct)) {
		doc = json_loadb(req->body ? req->body : "", req->body_len,
		    JSON_REJECT_DUPLICATES, &jerr);
	} else if (ct != NULL && strncasecmp(ct,
	    "application/x-www-form-urlencoded", 33) == 0) {
		/* payload=<url-encoded JSON>, GitHub's and Gitea's form
		 * deliveries; the signature covers the raw body. */
		const char *p = req->body ? req->body : "";
		const char *end = p + req->body_len;
		char *json = NULL, *w;

		while (p < end) {
			const char *amp = memchr(p, '&', (size_t)(end - p));
			const char *e = amp ? amp : end;
			if (e - p > 8 && strncmp(p, "payload=", 8) == 0) {
				json = w = xmalloc((size_t)(e - p));
				for (p += 8; p < e; p++) {
					int hi, lo;
					/* Bounded by e: the body is not a C
					 * string (tests/fuzz/fuzz_router). */
					if (*p == '+')
						*w++ = ' ';
					else if (*p == '%' && e - p > 2 &&
					    (hi = util_hexval(p[1])) >= 0 &&
					    (lo = util_hexval(p[2])) >= 0) {
						*w++ = (char)(hi * 16 + lo);
						p += 2;
					} else
						*w++ = *p;
				}
				*w = '\0';
				break;
			}
			p = e + 1;
		}
		if (json == NULL) {
			snprintf(why, whysize, "a form delivery needs a "
			    "payload= field");
			return NULL;
		}
		doc = json_loadb(json, (size_t)(w - json),
		    JSON_REJECT_DUPLICATES, &jerr);
		free(json);
	} else {
		snprintf(why, whysize, "Content-Type must be application/json "
		    "or application/x-www-form-urlencoded, not '%.64s'",
		    ct ? ct : "(none)");
		return NULL;
	}
	if (doc == NULL)
		snprintf(why, whysize, "the payload is not JSON: %s at line %d",
		    jerr.text, jerr.line);
	else if (!json_is_object(doc)) {
		snprintf(why, whysize, "the payload is not a JSON object");
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

/*
 * Whether one of the secrets of project `p` signed the delivery.  Each
 * candidate is compared in constant time and all of them are, whatever
 * matched.  *header names the header read, for the answer.
 */
static enum hook_sig
signer(struct api_req *req, const struct hook_forge *f,
    const struct conf_project *p, const char **header)
{
	unsigned char want[HOOK_DIGEST], got[HOOK_DIGEST];
	enum hook_sig sig;
	bool found = false;

	if ((sig = f->claimed(req, want, header)) != HOOK_SIG_OK)
		return sig;
	if (p == NULL)
		return HOOK_SIG_NO_MATCH;
	for (size_t k = 0; k < p->nsecrets; k++) {
		f->expected(req, p->secrets[k], got);
		found |= sodium_memcmp(got, want, sizeof got) == 0;
	}
	sodium_memzero(got, sizeof got);
	return found ? HOOK_SIG_OK : HOOK_SIG_NO_MATCH;
}

static const char *
str_at(json_t *doc, const char *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(doc, obj),
	    key));
}

/* The project whose repo is one of the URLs the payload gives. */
static const struct conf_project *
project_of(const struct kiln_config *c, const struct hook_forge *f,
    json_t *doc, const char **shown)
{
	*shown = NULL;
	for (size_t i = 0; i < f->nrepo_urls; i++) {
		const char *u = str_at(doc, f->repo_urls[i][0],
		    f->repo_urls[i][1]);
		const struct conf_project *p;
		if (u == NULL)
			continue;
		if (*shown == NULL)
			*shown = u;
		if ((p = conf_project_by_repo(c, u)) != NULL)
			return p;
	}
	return NULL;
}

static bool
is_zero_sha(const char *s)
{
	return s != NULL && strspn(s, "0") == strlen(s) && strlen(s) == 40;
}

enum api_result
hook_ignored(struct api_req *req, unsigned status, const char *fmt, ...)
{
	char why[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	/* The reason quotes a header or a payload field, possibly cut in
	 * the middle of a character: only printable ASCII goes out (a JSON
	 * string must be valid UTF-8; found by tests/fuzz/fuzz_router). */
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	api_reply_json(req, status, json_pack("{s:s}", "ignored", why));
	return API_DONE;
}

/* Forges' delivery ids are UUIDs; room to spare, and nothing odd. */
#define DELIVERY_MAX 128

/*
 * The delivery id of a push, NULL after answering 400.  Every forge
 * sends one with every delivery (GitLab as X-Gitlab-Event-UUID), so a
 * push without one was not sent by a forge: refused, rather than built
 * without the record a redelivery is recognised by.
 */
static const char *
delivery_id(struct api_req *req, const struct hook_forge *f)
{
	const char *name = f->delivery_header, *id = req->header(req, name);
	size_t n = 0;

	if (id == NULL || *id == '\0') {
		api_reply_problem(req, 400, "%s header missing: the forge sends "
		    "it with every delivery, and kiln needs it to recognise a "
		    "redelivery", name);
		return NULL;
	}
	while (n <= DELIVERY_MAX && (unsigned char)id[n] > 0x20 &&
	    (unsigned char)id[n] < 0x7f)
		n++;
	if (n > DELIVERY_MAX || id[n] != '\0') {
		api_reply_problem(req, 400, "%s must be 1 to %d printable ASCII "
		    "characters without spaces", name, DELIVERY_MAX);
		return NULL;
	}
	return id;
}

/*
 * A push on its way: the job it would make, while the queue is asked
 * whether the delivery id, then the push, already made one (each lookup
 * and the read of the job it finds complete later, queue.h).  The job is
 * made before the lookups, from the configuration as it was when the
 * delivery arrived: a reload meanwhile changes nothing of it.
 */
enum lookup { BY_DELIVERY, BY_PUSH };

struct delivery {
	struct api_req *req;
	const struct hook_forge *f;
	struct job *job;		/* to submit unless a redelivery */
	struct api_pending *hold;	/* its keys, while being looked up */
	bool tag;			/* a tag's push */
	enum lookup by;
	int64_t id;			/* the lookup's */
	struct job *first;		/* the job it found */
};

static void
delivery_release(void *data)
{
	struct delivery *d = data;

	api_pending_release(d->hold);
	job_free(d->job);
	job_free(d->first);
}

static const char *
outcome(unsigned status)
{
	switch (status) {
	case 200: return "redelivery_or_ping";
	case 202: return "ignored";
	case 401: return "bad_signature";
	case 403: return "too_many_secrets";
	case 404: return "unknown_repository";
	case 409: return "in_progress";
	case 503: return "queue_full";
	default: return status >= 500 ? "error" : "bad_request";
	}
}

/* The delivery is answered: counted, and sent. */
static void
delivery_answered(struct delivery *d)
{
	struct api_req *req = d->req;

	metrics_hook(d->f->name, outcome(req->status));
	req->complete(req);
}

/* Neither lookup found a job: the push builds. */
static void
delivery_submit(struct delivery *d)
{
	struct api_req *req = d->req;
	const char *forge = d->f->name;
	struct job *job = d->job;

	log_info("%s: %s of %s (%.12s) for project %s", forge,
	    d->tag ? "tag push" : "push", job->ref, job->commit, job->project);
	/* api_submit_job() holds the keys from here on. */
	api_pending_release(d->hold);
	d->hold = NULL;
	d->job = NULL;
	if (api_submit_job(req, job) == API_PENDING) {
		/* Answered (and req maybe freed) when it is committed. */
		metrics_hook(forge, "accepted");
		return;
	}
	delivery_answered(d);
}

static void lookup(struct delivery *d, enum lookup by);

/*
 * Answer a redelivery with the job the first delivery made.  A delivery
 * id names one push of one project; the same id from another project is
 * not a redelivery but a forged or broken one: 409.
 */
static void
first_read(void *data, int rc)
{
	struct delivery *d = data;
	struct api_req *req = d->req;
	struct sbuf b = { 0 };

	if (rc == QUEUE_ENOTFOUND) {
		/* Gone since the lookup: as if there were none. */
		if (d->by == BY_DELIVERY)
			lookup(d, BY_PUSH);
		else
			delivery_submit(d);
		return;
	}
	if (rc != 0)
		api_reply_queue_failed(req, rc, "the job queue failed");
	else if (d->first->project == NULL ||
	    strcmp(d->first->project, d->job->project) != 0) {
		if (d->by == BY_DELIVERY)
			api_reply_problem(req, 409, "%s %s already made a job "
			    "of another project", d->f->delivery_header,
			    d->job->delivery_id);
		else
			api_reply_problem(req, 409, "this push already made a "
			    "job of another project");
	} else {
		job_render_json(&b, d->first);
		api_reply_sbuf(req, 200, &b);
		api_add_header(req, "Location", "/v1/jobs/%lld",
		    (long long)d->id);
	}
	delivery_answered(d);
}

static void
looked_up(void *data, int rc)
{
	struct delivery *d = data;

	if (rc == 0) {
		queue_get(d->req->env->queue, d->id, &d->first, first_read, d);
		return;
	}
	if (rc != QUEUE_ENOTFOUND) {
		api_reply_queue_failed(d->req, rc, "the job queue failed");
		delivery_answered(d);
	} else if (d->by == BY_DELIVERY)
		lookup(d, BY_PUSH);
	else
		delivery_submit(d);
}

static void
lookup(struct delivery *d, enum lookup by)
{
	struct queue *q = d->req->env->queue;
	const struct job *j = d->job;

	d->by = by;
	if (by == BY_DELIVERY)
		queue_delivery_job(q, d->f->name, j->delivery_id, &d->id,
		    looked_up, d);
	else
		queue_push_job(q, j->project, j->ref, j->commit, &d->id,
		    looked_up, d);
}

/*
 * POST /v1/hooks/{forge}[/{project}]: `only` is the project the path
 * names, NULL on the unqualified path.
 */
static enum api_result
bad_payload(struct api_req *req, const char *why)
{
	api_reply_problem(req, strstr(why, "Content-Type") ? 415 : 400, "%s",
	    why);
	return API_DONE;
}

static enum api_result
hook(struct api_req *req, const struct hook_forge *f,
    const struct conf_project *only)
{
	const struct kiln_config *c = req->env->conf;
	const struct conf_project *signed_by, *p;
	const char *header, *ref, *commit, *delivery, *url;
	struct delivery *d;
	enum hook_sig sig;
	char why[400];
	json_t *doc = NULL;
	struct job *job;
	bool tag = false;

	/*
	 * The unqualified path: the payload names the repository, and only
	 * its project's secrets are tried.  Trying every secret of the
	 * farm would cost one HMAC of up to max_body bytes per secret, on
	 * the loop, for whoever sends a body.  The payload is parsed before
	 * it is trusted (a parse costs one pass), and nothing in it is acted
	 * on until a secret matched.  A payload that names no project gets
	 * the answer a wrong signature gets: the unsigned learn nothing of
	 * which repositories the farm builds (kilnd's log says which).
	 */
	sig = signer(req, f, NULL, &header);
	if (sig != HOOK_SIG_MALFORMED && only == NULL) {
		const char *named = NULL;

		if ((doc = payload(req, why, sizeof why)) == NULL)
			return bad_payload(req, why);
		only = project_of(c, f, doc, &named);
		if (only == NULL)
			log_info("hook %s: the payload names no project's "
			    "repository ('%.200s')", f->name,
			    named ? named : "none");
		else if (only->nsecrets > c->max_hook_secrets) {
			api_reply_problem(req, 403, "project %s has more "
			    "webhook secrets than max_hook_secrets = %u checks "
			    "per delivery to /v1/hooks/%s: deliver to "
			    "/v1/hooks/%s/{project} (the project's name in "
			    "kilnd.conf) instead", only->name,
			    c->max_hook_secrets, f->name, f->name);
			json_decref(doc);
			return API_DONE;
		}
	}
	if (sig != HOOK_SIG_MALFORMED)
		sig = signer(req, f, only, &header);
	if (sig != HOOK_SIG_OK) {
		if (sig == HOOK_SIG_MALFORMED)
			api_reply_problem(req, 401, "%s header missing or "
			    "malformed", header);
		else if (req->nparams == 1)
			api_reply_problem(req, 401, "%s does not match a secret "
			    "of project %s", header, only->name);
		else
			api_reply_problem(req, 401, "%s does not match the "
			    "secret of any project", header);
		json_decref(doc);
		return API_DONE;
	}
	signed_by = only;
	if (doc == NULL && (doc = payload(req, why, sizeof why)) == NULL)
		return bad_payload(req, why);
	if (!f->is_push(req, doc, signed_by, &tag)) {
		json_decref(doc);
		return API_DONE;
	}
	if ((delivery = delivery_id(req, f)) == NULL) {
		json_decref(doc);
		return API_DONE;
	}
	p = project_of(c, f, doc, &url);
	if (p == NULL) {
		api_reply_problem(req, 404, "no project builds the repository "
		    "'%.200s'", url ? url : "(the payload names none)");
		json_decref(doc);
		return API_DONE;
	}
	if (p != signed_by) {
		api_reply_problem(req, 401, "%s is not made with a secret of "
		    "project %s", header, p->name);
		json_decref(doc);
		return API_DONE;
	}
	/* Every forge keeps the pushed ref in "ref". */
	ref = json_string_value(json_object_get(doc, "ref"));
	commit = json_string_value(json_object_get(doc, f->commit_key));
	if (ref == NULL || strncmp(ref, "refs/", 5) != 0) {
		api_reply_problem(req, 400, "ref: the payload has no full ref");
		json_decref(doc);
		return API_DONE;
	}
	/* Every forge marks a deletion with a zero "after"; GitHub and
	 * Gitea add "deleted", GitLab a null checkout_sha. */
	if (json_is_true(json_object_get(doc, "deleted")) || commit == NULL ||
	    is_zero_sha(commit) || is_zero_sha(json_string_value(
	    json_object_get(doc, "after")))) {
		hook_ignored(req, 202, "a deletion of %s builds nothing", ref);
		json_decref(doc);
		return API_DONE;
	}
	if (strlen(commit) != 40 || strspn(commit, "0123456789abcdef") != 40) {
		api_reply_problem(req, 400, "%s: '%.64s' is not a commit id",
		    f->commit_key, commit);
		json_decref(doc);
		return API_DONE;
	}
	if (!conf_project_wants_ref(p, ref)) {
		hook_ignored(req, 202, "%s does not match the refs of "
		    "project %s", ref, p->name);
		json_decref(doc);
		return API_DONE;
	}
	/*
	 * A redelivery answers with the job the first delivery made: one
	 * with the same delivery id, or the same push (project, ref, pushed
	 * commit) under any id, since a forge's "redeliver" and a replayed
	 * body both keep the signature valid.  While the first is still
	 * being committed, 409 asks the sender to come back.
	 */
	if (api_delivery_pending(f->name, delivery) ||
	    api_push_pending(p->name, ref, commit)) {
		api_reply_problem(req, 409, "a delivery of this push (%s at "
		    "%.12s) is being committed; retry", ref, commit);
		api_add_header(req, "Retry-After", "1");
		json_decref(doc);
		return API_DONE;
	}
	job = xcalloc(1, sizeof *job);
	job->repo = xstrdup(p->repo);
	job->ref = xstrdup(ref);
	job->commit = xstrdup(commit);
	job->recipe = p->recipe ? xstrdup(p->recipe) : NULL;
	job->priority = p->priority;
	job->cache = true;
	/* A project without targets builds those its repository names
	 * (.kiln.json, .goreleaser.yaml), planned once it is fetched. */
	job->ntargets = p->ntargets ? p->ntargets : 1;
	job->targets = xcalloc(job->ntargets, sizeof *job->targets);
	for (size_t i = 0; i < p->ntargets; i++)
		snprintf(job->targets[i].target, sizeof job->targets[i].target,
		    "%s", p->targets[i]);
	if (p->ntargets == 0)
		snprintf(job->targets[0].target, sizeof job->targets[0].target,
		    "%s", JOB_TARGETS_FROM_REPO);
	api_apply_project(job, p);
	/* Both redelivery keys are stored with the job: the delivery id
	 * here, the push from the job's project, ref and commit. */
	job->delivery_forge = xstrdup(f->name);
	job->delivery_id = xstrdup(delivery);
	json_decref(doc);
	d = api_req_state(req, sizeof *d, delivery_release);
	d->req = req;
	d->f = f;
	d->job = job;
	d->tag = tag;
	/* Held from the first lookup until the job's commit returned. */
	d->hold = api_pending_hold(job);
	lookup(d, BY_DELIVERY);
	return API_PENDING;
}

/* The delivery, counted by what came of it: now when it was answered
 * at once, else once its lookups ended (delivery_answered()). */
static enum api_result
counted(struct api_req *req, const struct hook_forge *f)
{
	const struct conf_project *only = NULL;
	enum api_result r;

	if (req->nparams == 1 &&
	    (only = conf_project_by_name(req->env->conf, req->params[0])) ==
	    NULL) {
		api_reply_problem(req, 404, "no project '%.64s' in kilnd.conf",
		    req->params[0]);
		r = API_DONE;
	} else
		r = hook(req, f, only);
	if (r == API_DONE)
		metrics_hook(f->name, outcome(req->status));
	return r;
}

static enum api_result
github(struct api_req *req)
{
	return counted(req, &hook_github);
}

static enum api_result
gitea(struct api_req *req)
{
	return counted(req, &hook_gitea);
}

static enum api_result
gitlab(struct api_req *req)
{
	return counted(req, &hook_gitlab);
}

/* Signed by the forge, not by a token. */
const struct api_route api_hooks_routes[] = {
	{ "POST", "/v1/hooks/github", API_SCOPE_PUBLIC, github },
	{ "POST", "/v1/hooks/gitea", API_SCOPE_PUBLIC, gitea },
	{ "POST", "/v1/hooks/gitlab", API_SCOPE_PUBLIC, gitlab },
	{ "POST", "/v1/hooks/github/{project}", API_SCOPE_PUBLIC, github },
	{ "POST", "/v1/hooks/gitea/{project}", API_SCOPE_PUBLIC, gitea },
	{ "POST", "/v1/hooks/gitlab/{project}", API_SCOPE_PUBLIC, gitlab },
	{ NULL, NULL, 0, NULL },
};
