/*
 * Webhooks from GitHub, Gitea and GitLab: POST /v1/hooks/{forge}.
 *
 * A delivery is trusted only by its signature: GitHub's and Gitea's
 * HMAC-SHA256 of the raw body, GitLab's token, checked against every
 * secret of every [project] in constant time (all of them, always).  A
 * push of a ref the project's patterns match becomes a job for the
 * project's repo, targets and recipe at the pushed commit, durably
 * committed before the 201, with the delivery id recorded in the same
 * transaction: a redelivery answers with the first job.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api.h"
#include "../daemon/log.h"
#include "../daemon/metrics.h"
#include "../daemon/sign.h"
#include "../daemon/util.h"
#include "../daemon/xmalloc.h"

enum forge { GITHUB, GITEA, GITLAB };

static const char *const forge_names[] = { "github", "gitea", "gitlab" };

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
 * The project whose secret signed the delivery, NULL when none did, or
 * (void *)-1 with a reason when the header is missing or malformed.
 * Every secret is tried, and compared in constant time.
 */
static const struct conf_project *
signer(struct api_req *req, enum forge f, const char **header)
{
	const struct kiln_config *c = req->env->conf;
	const struct conf_project *found = NULL;
	unsigned char want[32], got[32];
	const char *h = NULL, *hex = NULL;

	if (f == GITLAB) {
		*header = "X-Gitlab-Token";
		h = req->header(req, *header);
		if (h == NULL)
			return (void *)-1;
		/* Tokens of any length: compare their hashes. */
		crypto_hash_sha256(want, (const unsigned char *)h, strlen(h));
	} else {
		*header = "X-Hub-Signature-256";
		if (f == GITEA && (h = req->header(req, "X-Gitea-Signature")) !=
		    NULL) {
			*header = "X-Gitea-Signature";
			hex = h;
		} else if ((h = req->header(req, "X-Hub-Signature-256")) !=
		    NULL) {
			if (strncmp(h, "sha256=", 7) != 0)
				return (void *)-1;
			hex = h + 7;
		} else {
			if (f == GITEA)
				*header = "X-Gitea-Signature";
			return (void *)-1;
		}
		if (strlen(hex) != 64 || sodium_hex2bin(want, sizeof want, hex,
		    64, NULL, NULL, NULL) != 0)
			return (void *)-1;
	}
	for (size_t i = 0; i < c->nprojects; i++) {
		const struct conf_project *p = &c->projects[i];
		for (size_t k = 0; k < p->nsecrets; k++) {
			if (f == GITLAB)
				crypto_hash_sha256(got,
				    (const unsigned char *)p->secrets[k],
				    strlen(p->secrets[k]));
			else
				sign_hmac_sha256(got, p->secrets[k], req->body ? req->body :
				    "", req->body_len);
			if (sodium_memcmp(got, want, sizeof got) == 0 &&
			    found == NULL)
				found = p;
		}
	}
	sodium_memzero(got, sizeof got);
	return found;
}

static const char *
str_at(json_t *doc, const char *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(doc, obj),
	    key));
}

/* The project whose repo is one of the URLs the payload gives. */
static const struct conf_project *
project_of(const struct kiln_config *c, enum forge f, json_t *doc,
    const char **shown)
{
	static const char *const gh[][2] = {
		{ "repository", "clone_url" }, { "repository", "html_url" },
		{ "repository", "ssh_url" }, { "repository", "git_url" },
	};
	static const char *const gl[][2] = {
		{ "project", "git_http_url" }, { "project", "git_ssh_url" },
		{ "project", "http_url" }, { "project", "ssh_url" },
		{ "project", "web_url" }, { "repository", "git_http_url" },
		{ "repository", "git_ssh_url" },
	};
	const char *const (*keys)[2] = f == GITLAB ? gl : gh;
	size_t n = f == GITLAB ? ARRAY_SIZE(gl) : ARRAY_SIZE(gh);

	*shown = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *u = str_at(doc, keys[i][0], keys[i][1]);
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

static enum api_result
ignored(struct api_req *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum api_result
ignored(struct api_req *req, unsigned status, const char *fmt, ...)
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

static enum api_result
hook(struct api_req *req, enum forge f)
{
	const struct kiln_config *c = req->env->conf;
	const struct conf_project *signed_by, *p;
	const char *header, *event, *ref, *commit, *delivery, *url;
	char why[400];
	json_t *doc = NULL;
	struct job *job;
	int64_t id;
	bool tag = false;

	/* The signature first: nothing about an unsigned body matters. */
	signed_by = signer(req, f, &header);
	if (signed_by == (void *)-1) {
		api_reply_problem(req, 401, "%s header missing or malformed",
		    header);
		return API_DONE;
	}
	if (signed_by == NULL) {
		api_reply_problem(req, 401, "%s does not match the secret of any "
		    "project", header);
		return API_DONE;
	}
	if ((doc = payload(req, why, sizeof why)) == NULL) {
		api_reply_problem(req, strstr(why, "Content-Type") ? 415 : 400,
		    "%s", why);
		return API_DONE;
	}
	if (f == GITLAB) {
		event = json_string_value(json_object_get(doc, "object_kind"));
		if (event == NULL || (strcmp(event, "push") != 0 &&
		    strcmp(event, "tag_push") != 0)) {
			ignored(req, 202, "object_kind '%.64s' does not build "
			    "(push and tag_push do)", event ? event : "");
			json_decref(doc);
			return API_DONE;
		}
		tag = strcmp(event, "tag_push") == 0;
	} else {
		event = req->header(req, f == GITHUB ? "X-GitHub-Event" :
		    "X-Gitea-Event");
		if (event == NULL) {
			json_decref(doc);
			api_reply_problem(req, 400, "%s header missing",
			    f == GITHUB ? "X-GitHub-Event" : "X-Gitea-Event");
			return API_DONE;
		}
		if (strcmp(event, "ping") == 0) {
			json_decref(doc);
			api_reply_json(req, 200, json_pack("{s:b, s:s}", "ok", 1,
			    "project", signed_by->name));
			return API_DONE;
		}
		if (strcmp(event, "push") != 0) {
			json_decref(doc);
			return ignored(req, 202, "event '%.64s' does not build "
			    "(push does)", event);
		}
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
	ref = json_string_value(json_object_get(doc, "ref"));
	commit = json_string_value(json_object_get(doc, f == GITLAB ?
	    "checkout_sha" : "after"));
	if (ref == NULL || strncmp(ref, "refs/", 5) != 0) {
		api_reply_problem(req, 400, "ref: the payload has no full ref");
		json_decref(doc);
		return API_DONE;
	}
	if (json_is_true(json_object_get(doc, "deleted")) || commit == NULL ||
	    is_zero_sha(commit) || is_zero_sha(json_string_value(
	    json_object_get(doc, "after")))) {
		ignored(req, 202, "a deletion of %s builds nothing", ref);
		json_decref(doc);
		return API_DONE;
	}
	if (strlen(commit) != 40 || strspn(commit, "0123456789abcdef") != 40) {
		api_reply_problem(req, 400, "%s: '%.64s' is not a commit id",
		    f == GITLAB ? "checkout_sha" : "after", commit);
		json_decref(doc);
		return API_DONE;
	}
	if (!conf_project_wants_ref(p, ref)) {
		ignored(req, 202, "%s does not match the refs of project %s",
		    ref, p->name);
		json_decref(doc);
		return API_DONE;
	}
	/* A redelivery answers with the job the first delivery made. */
	delivery = req->header(req, f == GITHUB ? "X-GitHub-Delivery" :
	    f == GITEA ? "X-Gitea-Delivery" : "X-Gitlab-Event-UUID");
	if (delivery != NULL && (*delivery == '\0' || strlen(delivery) > 128))
		delivery = NULL;
	if (delivery != NULL) {
		struct job *first = NULL;

		if (api_delivery_pending(forge_names[f], delivery)) {
			api_reply_problem(req, 409, "delivery %s is being "
			    "committed; retry", delivery);
			api_add_header(req, "Retry-After", "1");
			json_decref(doc);
			return API_DONE;
		}
		if (queue_delivery_job(req->env->queue, forge_names[f], delivery,
		    &id) == 0 && queue_get(req->env->queue, id, &first) == 0) {
			struct sbuf b = { 0 };
			api_job_render(&b, first);
			api_reply_sbuf(req, 200, &b);
			api_add_header(req, "Location", "/v1/jobs/%lld",
			    (long long)id);
			job_free(first);
			json_decref(doc);
			return API_DONE;
		}
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
	if (delivery != NULL) {
		job->delivery_forge = xstrdup(forge_names[f]);
		job->delivery_id = xstrdup(delivery);
	}
	log_info("%s: %s of %s (%.12s) for project %s", forge_names[f],
	    tag ? "tag push" : "push", ref, commit, p->name);
	json_decref(doc);
	return api_submit_job(req, job);
}

/* The delivery, counted by what came of it. */
static enum api_result
counted(struct api_req *req, enum forge f)
{
	enum api_result r = hook(req, f);
	const char *what;

	if (r == API_PENDING)
		what = "accepted";
	else switch (req->status) {
	case 200: what = "redelivery_or_ping"; break;
	case 202: what = "ignored"; break;
	case 401: what = "bad_signature"; break;
	case 404: what = "unknown_repository"; break;
	case 409: what = "in_progress"; break;
	case 503: what = "queue_full"; break;
	default: what = req->status >= 500 ? "error" : "bad_request"; break;
	}
	metrics_hook(forge_names[f], what);
	return r;
}

static enum api_result
github(struct api_req *req)
{
	return counted(req, GITHUB);
}

static enum api_result
gitea(struct api_req *req)
{
	return counted(req, GITEA);
}

static enum api_result
gitlab(struct api_req *req)
{
	return counted(req, GITLAB);
}

/* Signed by the forge, not by a token. */
const struct api_route api_hooks_routes[] = {
	{ "POST", "/v1/hooks/github", API_SCOPE_PUBLIC, github },
	{ "POST", "/v1/hooks/gitea", API_SCOPE_PUBLIC, gitea },
	{ "POST", "/v1/hooks/gitlab", API_SCOPE_PUBLIC, gitlab },
	{ NULL, NULL, 0, NULL },
};
