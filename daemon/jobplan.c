#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobplan.h"
#include "recipe.h"
#include "target.h"
#include "xmalloc.h"

static void
add(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof **v);
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

/* A recipe from the repository, validated as a request's would be. */
static int
take_recipe(struct jobplan *p, json_t *r, const char *where,
    jobplan_check_fn check, char *why, size_t whysize)
{
	char inner[400];

	if (check(r, inner, sizeof inner) != 0) {
		snprintf(why, whysize, "%s: %s", where, inner);
		return -1;
	}
	p->recipe = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	return 0;
}

/* Targets named by the repository: valid, normalized, deduplicated. */
static int
take_targets(struct jobplan *p, json_t *list, const char *where, char *why,
    size_t whysize)
{
	struct target t;
	char terr[160];
	json_t *v;
	size_t i;

	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > JOB_MAX_TARGETS) {
		snprintf(why, whysize, "%s: \"targets\" must be an array of 1 "
		    "to %d targets", where, JOB_MAX_TARGETS);
		return -1;
	}
	json_array_foreach(list, i, v) {
		bool dup = false;
		if (!json_is_string(v) || target_parse(&t, json_string_value(v),
		    terr, sizeof terr) != 0) {
			snprintf(why, whysize, "%s: targets[%zu]: %s", where, i,
			    json_is_string(v) ? terr : "not a string");
			return -1;
		}
		for (size_t k = 0; k < p->ntargets; k++)
			dup |= strcmp(p->targets[k], t.name) == 0;
		if (!dup)
			add(&p->targets, &p->ntargets, xstrdup(t.name));
	}
	return 0;
}

/*
 * The recipe, first match wins: the request's (or its project's), then
 * .kiln.json's, then the GoReleaser configuration, then go.mod's default.
 * .kiln.json may name only targets and leave the recipe to what follows.
 */
static int
resolve(struct jobplan *p, const struct job *job, json_t *res,
    bool needs_targets, jobplan_check_fn check, char *why, size_t whysize)
{
	const char *kj = json_string_value(json_object_get(res, "kiln_json"));
	json_t *gr = json_object_get(res, "goreleaser"), *doc = NULL, *v;
	const char *grerr = json_string_value(json_object_get(res,
	    "goreleaser_error"));
	const char *grfile = json_string_value(json_object_get(gr, "file"));
	json_error_t jerr;
	json_t *kj_targets = NULL;
	int rc = -1;

	if (kj != NULL) {
		doc = json_loads(kj, JSON_REJECT_DUPLICATES, &jerr);
		if (doc == NULL || !json_is_object(doc)) {
			snprintf(why, whysize, ".kiln.json: %s at line %d: %s",
			    doc ? "not an object" : "malformed JSON", jerr.line,
			    doc ? "" : jerr.text);
			goto out;
		}
		kj_targets = json_object_get(doc, "targets");
		if (json_object_get(doc, "recipe") == NULL && kj_targets == NULL) {
			snprintf(why, whysize, ".kiln.json: neither \"recipe\" nor "
			    "\"targets\"");
			goto out;
		}
	}
	if (job->recipe != NULL)
		p->recipe = xstrdup(job->recipe);
	else if (doc != NULL && (v = json_object_get(doc, "recipe")) != NULL) {
		if (take_recipe(p, v, ".kiln.json", check, why, whysize) != 0)
			goto out;
	} else if (grerr != NULL) {
		snprintf(why, whysize, "%s", grerr);
		goto out;
	} else if (gr != NULL) {
		char where[64];
		snprintf(where, sizeof where, "%s", grfile ? grfile :
		    ".goreleaser.yaml");
		if (take_recipe(p, json_object_get(gr, "recipe"), where, check,
		    why, whysize) != 0)
			goto out;
		add(&p->notes, &p->nnotes, xasprintf("recipe from %s", where));
		size_t i;
		json_array_foreach(json_object_get(gr, "ignored"), i, v)
			if (json_is_string(v))
				add(&p->notes, &p->nnotes, xasprintf("%s: %s",
				    where, json_string_value(v)));
	} else if (json_is_true(json_object_get(res, "has_go_mod")))
		p->recipe = xstrdup("{\"kind\":\"go\"}");
	else {
		snprintf(why, whysize, "no recipe: the request names none and "
		    "the repository has neither .kiln.json, .goreleaser.yaml "
		    "nor go.mod at its root");
		goto out;
	}

	if (needs_targets) {
		if (kj_targets != NULL) {
			if (take_targets(p, kj_targets, ".kiln.json", why,
			    whysize) != 0)
				goto out;
		} else if (gr != NULL && grerr == NULL) {
			if (take_targets(p, json_object_get(gr, "targets"),
			    grfile ? grfile : ".goreleaser.yaml", why,
			    whysize) != 0)
				goto out;
		} else {
			snprintf(why, whysize, "no targets: the request names "
			    "none and the repository names none (\"targets\" in "
			    ".kiln.json, or a .goreleaser.yaml)");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

/* A go recipe's toolchain, and whether its modules need the deps step. */
static int
choose_go(struct jobplan *p, json_t *res, const struct toolchains *tc,
    char *why, size_t whysize)
{
	json_t *r = json_loads(p->recipe, 0, NULL), *gm;
	const char *kind = json_string_value(json_object_get(r, "kind"));
	const char *pin = json_string_value(json_object_get(r, "go"));
	const char *gmerr = json_string_value(json_object_get(res,
	    "go_mod_error"));
	const struct toolchain *go;
	const char *s_go, *s_tc;
	char inner[512];
	int rc = -1;

	if (kind == NULL || strcmp(kind, "go") != 0) {
		rc = 0;
		goto out;
	}
	if (gmerr != NULL) {
		snprintf(why, whysize, "%s", gmerr);
		goto out;
	}
	gm = json_object_get(res, "go_mod");
	s_go = json_string_value(json_object_get(gm, "go"));
	s_tc = json_string_value(json_object_get(gm, "toolchain"));
	if (toolchains_check(s_go, s_tc, pin, why, whysize) != 0)
		goto out;
	go = toolchains_choose(tc, s_go ? s_go : "", s_tc ? s_tc : "", pin,
	    inner, sizeof inner);
	if (go == NULL) {
		/* Well formed, so this host lacks a Go that fits, unless
		 * the pin contradicts go.mod: no host has one then. */
		if (toolchains_pin_possible(s_go, pin)) {
			snprintf(why, whysize, "%s", inner);
			rc = JOBPLAN_ENOTOOL;
		} else
			snprintf(why, whysize, "recipe.go pins %s, but go.mod "
			    "needs go >= %s", pin, s_go);
		goto out;
	}
	p->go_version = xstrdup(go->version);
	p->go_path = xstrdup(go->go);
	p->go_bindir = xstrdup(go->bindir);
	p->deps = json_is_true(json_object_get(gm, "requires")) && !p->vendored;
	rc = 0;
out:
	json_decref(r);
	return rc;
}

/* Plan every target now: what cannot be built fails the job at once;
 * what this host lacks a C toolchain for is noted in p->missing. */
static int
dry_run(struct jobplan *p, const struct job *job,
    const struct kiln_config *conf, char *why, size_t whysize)
{
	struct recipe_ctx ctx = {
		.repo = job->repo, .commit = job->commit,
		.commit_time = p->commit_time, .tag = p->tag,
		.branch = p->branch, .go_bindir = p->go_bindir,
		.vendored = p->vendored,
	};
	struct recipe_plan rp;
	struct target t;
	char err[400];
	size_t n = p->ntargets ? p->ntargets : job->ntargets;

	for (size_t i = 0; i < n; i++) {
		const char *name = p->ntargets ? p->targets[i] :
		    job->targets[i].target;
		if (target_parse(&t, name, err, sizeof err) != 0)
			continue;	/* the placeholder; targets are checked */
		memset(&rp, 0, sizeof rp);
		switch (recipe_plan(&rp, p->recipe, &t, &ctx, conf, err,
		    sizeof err)) {
		case 0:
			break;
		case RECIPE_ENOTOOL:
			p->missing = xreallocarray(p->missing, p->nmissing + 1,
			    sizeof *p->missing);
			p->missing[p->nmissing].target = xstrdup(t.name);
			p->missing[p->nmissing++].why = xstrdup(err);
			continue;
		default:
			snprintf(why, whysize, "%s: %s", t.name, err);
			return -1;
		}
		recipe_plan_free(&rp);
	}
	return 0;
}

int
jobplan_make(struct jobplan *out, const struct job *job, json_t *res,
    bool needs_targets, const struct toolchains *tc,
    const struct kiln_config *conf, jobplan_check_fn check_recipe,
    char *why, size_t whysize)
{
	struct jobplan p = { 0 };
	const char *s;
	int rc;

	p.commit_time = json_integer_value(json_object_get(res, "commit_time"));
	p.vendored = json_is_true(json_object_get(res, "vendored"));
	if ((s = json_string_value(json_object_get(res, "tag"))) != NULL)
		p.tag = xstrdup(s);
	if ((s = json_string_value(json_object_get(res, "branch"))) != NULL)
		p.branch = xstrdup(s);
	if ((rc = resolve(&p, job, res, needs_targets, check_recipe, why,
	    whysize)) != 0 ||
	    (rc = jobplan_outputs(&p, job, res, why, whysize)) != 0 ||
	    (rc = choose_go(&p, res, tc, why, whysize)) != 0 ||
	    (rc = dry_run(&p, job, conf, why, whysize)) != 0) {
		jobplan_free(&p);
		return rc == JOBPLAN_ENOTOOL ? rc : -1;
	}
	*out = p;
	return 0;
}

void
jobplan_free(struct jobplan *p)
{
	for (size_t i = 0; i < p->ntargets; i++)
		free(p->targets[i]);
	for (size_t i = 0; i < p->nnotes; i++)
		free(p->notes[i]);
	free(p->targets);
	free(p->notes);
	free(p->recipe);
	free(p->tag);
	free(p->branch);
	free(p->go_version);
	free(p->go_path);
	free(p->go_bindir);
	free(p->outputs);
	for (size_t i = 0; i < p->nmissing; i++) {
		free(p->missing[i].target);
		free(p->missing[i].why);
	}
	free(p->missing);
	memset(p, 0, sizeof *p);
}

const char *
jobplan_missing(const struct jobplan *p, const char *target)
{
	for (size_t i = 0; i < p->nmissing; i++)
		if (strcmp(p->missing[i].target, target) == 0)
			return p->missing[i].why;
	return NULL;
}
