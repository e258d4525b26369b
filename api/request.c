/*
 * Parsing of a job request (POST /v1/jobs): the body to a job, through
 * the checks of lib/validate.h.  Pure: takes bytes, gives a
 * job or a status with a detail that names the field.  Fuzzed by
 * tests/fuzz/fuzz_job_request.c.
 *
 * {"repo": URL-or-path, "ref": branch|tag|sha, "targets": [...],
 *  "recipe": {...}?, "priority": int?, "timeout": int?, "cache": bool?,
 *  "notify": {"url": U}?, "archives": true|{...}?, "sbom": bool?,
 *  "image": {...}?, "verify": "rebuild"|"none"?}
 * The last four and a "darwin/universal" target make the job's
 * "outputs" (lib/outputs.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../daemon/callback-url.h"
#include "../lib/outputs.h"
#include "../lib/util.h"
#include "../lib/validate.h"
#include "../lib/xmalloc.h"

#define PRIORITY_MIN JOB_PRIORITY_MIN
#define PRIORITY_MAX JOB_PRIORITY_MAX

int
api_check_notify_url(const char *u, char *why, size_t size)
{
	struct callback_url cu;
	char w[300];

	/* The grammar is callbacks' own (daemon/callback-url.h); where the
	 * address may go is checked by the caller that knows the policy. */
	if (callback_url_parse(u, &cu, w, sizeof w) != 0)
		return util_errorf(why, size, "notify.url: %s", w);
	return 0;
}

/* Add a target unless it is there already. */
static void
add_target(struct job *job, const char *name)
{
	for (size_t j = 0; j < job->ntargets; j++)
		if (strcmp(job->targets[j].target, name) == 0)
			return;
	struct job_target *jt = &job->targets[job->ntargets++];
	snprintf(jt->target, sizeof jt->target, "%s", name);
	jt->state = TARGET_QUEUED;
}

/*
 * "targets": 1 to JOB_MAX_TARGETS names, normalized, deduplicated.
 * "darwin/universal" is no build of its own: it builds darwin/amd64 and
 * darwin/arm64 and asks for their universal binary (*universal).
 */
static int
parse_targets(struct job *job, json_t *v, bool *universal, char *why,
    size_t size)
{
	if (!json_is_array(v)) {
		util_errorf(why, size, "targets: must be an array of strings");
		return -1;
	}
	if (json_array_size(v) == 0) {
		util_errorf(why, size, "targets: must not be empty");
		return -1;
	}
	if (json_array_size(v) > JOB_MAX_TARGETS) {
		util_errorf(why, size, "targets: at most %d per job",
		    JOB_MAX_TARGETS);
		return -1;
	}
	/* One more slot: a universal binary may add two builds. */
	job->targets = xcalloc(json_array_size(v) + 1, sizeof *job->targets);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *t = json_array_get(v, i);
		struct target tg;
		char terr[160];

		if (!json_is_string(t) ||
		    strlen(json_string_value(t)) != json_string_length(t)) {
			util_errorf(why, size, "targets[%zu]: must be a string", i);
			return -1;
		}
		if (strcmp(json_string_value(t), OUTPUTS_UNIVERSAL_TARGET) == 0) {
			*universal = true;
			add_target(job, "darwin/amd64");
			add_target(job, "darwin/arm64");
			continue;
		}
		if (target_parse(&tg, json_string_value(t), terr,
		    sizeof terr) != 0) {
			util_errorf(why, size, "targets[%zu]: %s", i, terr);
			return -1;
		}
		/* Normalized duplicates (linux/arm, linux/arm/v7) fold. */
		add_target(job, tg.name);
	}
	if (job->ntargets > JOB_MAX_TARGETS) {
		util_errorf(why, size, "targets: at most %d per job (%s counts "
		    "as darwin/amd64 and darwin/arm64)", JOB_MAX_TARGETS,
		    OUTPUTS_UNIVERSAL_TARGET);
		return -1;
	}
	return 0;
}

/*
 * The request's "archives" (true or an object), "sbom", "image" and
 * "verify", with a universal binary when the targets ask for one, as the
 * job's canonical outputs; none of them: job->outputs stays NULL.
 */
static int
parse_outputs(struct job *job, json_t *root, bool universal, char *why,
    size_t size)
{
	json_t *o = outputs_from_keys(root, why, size);
	int rc = -1;

	if (o == NULL)
		return -1;
	if (universal)
		json_object_set_new(o, "universal", json_true());
	if (json_object_size(o) > 0 &&
	    (job->outputs = outputs_canonical(o, why, size)) == NULL)
		goto out;
	job->release = outputs_need_release(o);
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* A required string field without NUL, valid by check(); copied to *out. */
static int
required_string(json_t *root, const char *field, const char *hint,
    int (*check)(const char *, char *, size_t), char **out, char *why,
    size_t size)
{
	json_t *v = json_object_get(root, field);

	if (v == NULL)
		return util_errorf(why, size, "%s: required%s", field, hint);
	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return util_errorf(why, size, "%s: must be a string", field);
	if (check(json_string_value(v), why, size) != 0)
		return -1;
	*out = xstrdup(json_string_value(v));
	return 0;
}

int
api_parse_job_request(const char *body, size_t len, struct job **out,
    unsigned *status, char *why, size_t size)
{
	json_t *root = NULL, *v;
	json_error_t jerr;
	struct job *job = NULL;
	const char *k;
	bool universal = false;
	int rc = -1;

	*status = 422;
	/* NUL inside strings is parsed so the field check can name it;
	 * any JSON value is parsed so a scalar body gets "must be an
	 * object" rather than a parse error. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
	    JSON_DECODE_ANY, &jerr);
	if (root == NULL) {
		*status = 400;
		util_errorf(why, size, "malformed JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		util_errorf(why, size, "body: must be a JSON object");
		goto out;
	}
	if (validate_keys_without_nul(root, "", why, size))
		goto out;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "repo") != 0 && strcmp(k, "ref") != 0 &&
		    strcmp(k, "targets") != 0 && strcmp(k, "recipe") != 0 &&
		    strcmp(k, "priority") != 0 && strcmp(k, "timeout") != 0 &&
		    strcmp(k, "cache") != 0 && strcmp(k, "notify") != 0 &&
		    strcmp(k, "archives") != 0 && strcmp(k, "sbom") != 0 &&
		    strcmp(k, "image") != 0 && strcmp(k, "verify") != 0) {
			util_errorf(why, size, "unknown field '%.64s' (expected repo, "
			    "ref, targets, recipe, priority, timeout, cache, "
			    "notify, archives, sbom, image, verify)", k);
			goto out;
		}
	}

	job = xcalloc(1, sizeof *job);
	job->state = JOB_QUEUED;

	if (required_string(root, "repo", "", validate_repo, &job->repo, why,
	    size) != 0 ||
	    required_string(root, "ref", " (a branch, tag or commit)",
	    validate_ref, &job->ref, why, size) != 0)
		goto out;

	v = json_object_get(root, "targets");
	if (v == NULL) {
		/*
		 * The repository's configuration names them (.kiln.json
		 * "targets", the .goreleaser.yaml matrix): known once the
		 * commit is fetched, until then one placeholder row.
		 */
		job->targets = xcalloc(1, sizeof *job->targets);
		snprintf(job->targets[0].target, sizeof job->targets[0].target,
		    "%s", JOB_TARGETS_FROM_REPO);
		job->ntargets = 1;
	} else if (parse_targets(job, v, &universal, why, size) != 0)
		goto out;
	if (parse_outputs(job, root, universal, why, size) != 0)
		goto out;

	v = json_object_get(root, "recipe");
	if (v != NULL && !json_is_null(v)) {
		if (validate_recipe(v, why, size) != 0)
			goto out;
		job->recipe = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		if (job->recipe == NULL)
			abort();
	}

	v = json_object_get(root, "priority");
	if (v != NULL) {
		if (!json_is_integer(v) ||
		    json_integer_value(v) < PRIORITY_MIN ||
		    json_integer_value(v) > PRIORITY_MAX) {
			util_errorf(why, size, "priority: must be an integer from %d "
			    "to %d", PRIORITY_MIN, PRIORITY_MAX);
			goto out;
		}
		job->priority = (int)json_integer_value(v);
	}

	/* Seconds; kilnd applies the lower of this and build_timeout. */
	v = json_object_get(root, "timeout");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 7 * 86400) {
			util_errorf(why, size, "timeout: must be an integer number of "
			    "seconds from 1 to %d", 7 * 86400);
			goto out;
		}
		job->timeout = (int)json_integer_value(v);
	}

	/* false: build every target even if an equal build is on record. */
	v = json_object_get(root, "cache");
	job->cache = true;
	if (v != NULL) {
		if (!json_is_boolean(v)) {
			util_errorf(why, size, "cache: must be true or false");
			goto out;
		}
		job->cache = json_is_true(v);
	}

	/* {"url": "http(s)://..."}: POSTed the job when it ends. */
	v = json_object_get(root, "notify");
	if (v != NULL) {
		json_t *u = json_object_get(v, "url");
		const char *us = json_string_value(u);
		if (!json_is_object(v) || json_object_size(v) != 1 || us == NULL) {
			util_errorf(why, size, "notify: must be {\"url\": "
			    "\"http://...\"}");
			goto out;
		}
		if (api_check_notify_url(us, why, size) != 0)
			goto out;
		job->notify_url = xstrdup(us);
	}
	*out = job;
	job = NULL;
	rc = 0;
out:
	job_free(job);
	json_decref(root);
	return rc;
}
