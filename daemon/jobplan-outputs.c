/*
 * A job's release outputs once its commit is known: what the repository
 * asks (.kiln.json's "archives", "sbom", "image", "verify", else what
 * its .goreleaser.yaml's archives, universal_binaries, sboms and kos
 * became, worker/describe.c), with the request's own keys over them,
 * key by key.  Name templates are tried here, so that a job does not
 * build for an hour to fail at its release: a request's or .kiln.json's
 * that kiln cannot expand fails the plan; a .goreleaser.yaml's (which
 * may use GoReleaser's functions) is dropped for the default name, with
 * a note in every target's log.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobplan.h"
#include "outputs.h"
#include "template.h"
#include "util.h"
#include "xmalloc.h"

/* Expand t as for linux/amd64 of version 1.2.3: NULL if it works, else
 * the error (malloc'd). */
static char *
template_error(const char *t)
{
	struct template_vars v = { .project_name = "app", .version = "1.2.3",
	    .raw_version = "1.2.3", .tag = "v1.2.3", .commit = "0123456789"
	    "abcdef0123456789abcdef01234567", .branch = "main", .os = "linux",
	    .arch = "amd64", .arm = "", .amd64 = "v1" };
	char err[256], *s = template_expand(t, &v, err, sizeof err);
	size_t n = s ? strlen(s) : 0;
	bool name = n > 0 && n <= 100 && s[0] != '.' && s[0] != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+-") == n;

	if (s != NULL && !name)
		snprintf(err, sizeof err, "'%.40s%s' is no file name (1 to 100 "
		    "letters, digits, '.', '_', '+', '-')", s, n > 40 ? "..." :
		    "");
	free(s);
	return s == NULL || !name ? xstrdup(err) : NULL;
}

/* The name templates of archives (name_template, wrap_in_directory). */
static int
check_templates(struct jobplan *p, json_t *o, const char *from,
    bool lenient, char *why, size_t whysize)
{
	static const char *const keys[] = { "name_template",
	    "wrap_in_directory" };
	json_t *a = json_object_get(o, "archives");

	for (size_t i = 0; i < 2; i++) {
		const char *t = json_string_value(json_object_get(a, keys[i]));
		char *err = t ? template_error(t) : NULL;

		if (err == NULL)
			continue;
		if (!lenient) {
			util_errorf(why, whysize, "%sarchives.%s: %s", from,
			    keys[i], err);
			free(err);
			return -1;
		}
		p->notes = xreallocarray(p->notes, p->nnotes + 1,
		    sizeof *p->notes);
		p->notes[p->nnotes++] = xasprintf("%sarchives.%s: %s; kiln uses "
		    "its default", from, keys[i], err);
		json_object_del(a, keys[i]);
		free(err);
	}
	return 0;
}

int
jobplan_outputs(struct jobplan *p, const struct job *job, json_t *res,
    char *why, size_t whysize)
{
	const char *kj = json_string_value(json_object_get(res, "kiln_json"));
	json_t *gr = json_object_get(res, "goreleaser");
	const char *grfile = json_string_value(json_object_get(gr, "file"));
	json_t *repo = NULL, *req = NULL, *doc = NULL;
	char from[80] = "";
	bool lenient = false;
	int rc = -1;

	if (kj != NULL && (doc = json_loads(kj, 0, NULL)) != NULL &&
	    json_is_object(doc)) {
		char w[256];

		if ((repo = outputs_from_keys(doc, w, sizeof w)) == NULL) {
			util_errorf(why, whysize, ".kiln.json: %s", w);
			goto out;
		}
		snprintf(from, sizeof from, ".kiln.json: ");
		if (json_object_size(repo) == 0) {
			json_decref(repo);
			repo = NULL;
		}
	}
	if (repo == NULL && json_is_object(json_object_get(gr, "outputs"))) {
		repo = json_deep_copy(json_object_get(gr, "outputs"));
		/* GoReleaser's templates, even beside a .kiln.json that
		 * names only targets. */
		lenient = true;
		snprintf(from, sizeof from, "%s: ", grfile ? grfile :
		    ".goreleaser.yaml");
	}
	if (repo == NULL)
		repo = json_object();
	if (check_templates(p, repo, from, lenient, why, whysize) != 0)
		goto out;
	if (job->outputs != NULL &&
	    (req = json_loads(job->outputs, 0, NULL)) != NULL) {
		if (check_templates(p, req, "", false, why, whysize) != 0)
			goto out;
		json_object_update(repo, req);
	}
	if (json_object_size(repo) > 0) {
		char w[256];

		if ((p->outputs = outputs_canonical(repo, w, sizeof w)) == NULL) {
			util_errorf(why, whysize, "%s%s", from, w);
			goto out;
		}
		p->release = outputs_need_release(repo);
	}
	rc = 0;
out:
	json_decref(doc);
	json_decref(repo);
	json_decref(req);
	return rc;
}
