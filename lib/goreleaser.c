/*
 * A .goreleaser.yaml to a kiln go recipe (goreleaser.h): the top-level
 * document (version, project_name, env, builds) and each build's own
 * settings.  Reading values is goreleaser-fields.c's, the targets a
 * build makes goreleaser-targets.c's.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goreleaser.h"
#include "goreleaser-int.h"
#include "util.h"
#include "xmalloc.h"

/* GoReleaser v2's defaults (internal/builders/golang/build.go). */
static const char default_ldflags[] = "-s -w -X main.version={{.Version}} "
    "-X main.commit={{.Commit}} -X main.date={{.Date}} "
    "-X main.builtBy=goreleaser";

/* "./cmd/" -> "cmd"; false for what leaves the repository. */
static bool
clean_dir(char *d)
{
	char *p = d;
	size_t n;

	if (d[0] == '/' || d[0] == '-')
		return false;
	for (char *s = d; *s; ) {
		n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return false;
		s += n;
		s += *s == '/';
	}
	while (p[0] == '.' && p[1] == '/')
		for (p += 2; *p == '/'; p++)
			;
	memmove(d, p, strlen(p) + 1);
	n = strlen(d);
	while (n > 0 && d[n - 1] == '/')
		d[--n] = '\0';
	if (n == 0)
		strcpy(d, ".");
	return true;
}

static json_t *
strvec_json(const struct strvec *sv)
{
	json_t *a = json_array();

	for (size_t i = 0; i < sv->n; i++)
		json_array_append_new(a, json_string(sv->v[i]));
	return a;
}

static int
convert_build(struct conv *c, const json_t *b, size_t idx,
    const char *project, const json_t *genv, json_t *ids, json_t *builds)
{
	struct strvec flags = { 0 }, tags = { 0 }, ldf = { 0 }, tl = { 0 },
	    tg = { 0 };
	char where[32], q[68], *id = NULL, *main_ = NULL, *dir = NULL,
	    *binary = NULL, *builder = NULL, *ld = NULL;
	const char *cgo;
	json_t *env = NULL, *o;
	bool skip, disable;
	int rc = -1;

	snprintf(where, sizeof where, "builds[%zu]", idx);
	if (!json_is_object(b))
		return gr_fail(c, "%s: must be a mapping", where);
	if (gr_get_bool(c, b, where, "skip", &skip) != 0 ||
	    gr_get_bool(c, b, where, "disable", &disable) != 0 ||
	    gr_get_string(c, b, where, "id", &id) != 0)
		goto out;
	if (id == NULL || *id == '\0') {
		free(id);
		id = xstrdup(project);
	}
	/* As GoReleaser: two builds without an id clash too. */
	if (json_object_get(ids, id) != NULL) {
		gr_fail(c, "%s.id: '%s' is the id of an earlier build too",
		    where, gr_clean(q, sizeof q, id));
		goto out;
	}
	json_object_set_new(ids, id, json_true());
	if (skip || disable) {
		gr_note(c, "%s: %s is set, not built", where,
		    skip ? "skip" : "disable");
		rc = 0;
		goto out;
	}
	if (gr_get_string(c, b, where, "builder", &builder) != 0)
		goto out;
	if (builder != NULL && strcmp(builder, "go") != 0) {
		gr_fail(c, "%s.builder: '%s' is not supported (kiln builds Go "
		    "only)", where, gr_clean(q, sizeof q, builder));
		goto out;
	}
	gr_note_build_keys(c, b, where);

	if (gr_get_string(c, b, where, "main", &main_) != 0 ||
	    gr_get_string(c, b, where, "dir", &dir) != 0 ||
	    gr_get_string(c, b, where, "binary", &binary) != 0)
		goto out;
	if (main_ != NULL && main_[0] == '-') {
		gr_fail(c, "%s.main: '%s' must not start with '-'", where,
		    gr_clean(q, sizeof q, main_));
		goto out;
	}
	if (dir != NULL && !clean_dir(dir)) {
		gr_fail(c, "%s.dir: '%s' is not a relative directory inside "
		    "the repository", where, gr_clean(q, sizeof q, dir));
		goto out;
	}

	env = json_deep_copy(genv);
	if (gr_get_env(c, b, where, env) != 0 ||
	    gr_get_list(c, b, where, "flags", true, false, &flags) != 0 ||
	    gr_get_list(c, b, where, "tags", true, true, &tags) != 0 ||
	    gr_get_list(c, b, where, "ldflags", true, false, &ldf) != 0)
		goto out;
	/* An empty list takes the default, as in GoReleaser; "" does not. */
	if (ldf.n == 0)
		ld = xstrdup(default_ldflags);
	else {
		size_t len = 0;

		for (size_t i = 0; i < ldf.n; i++)
			len += strlen(ldf.v[i]) + 1;
		if (len > LDFLAGS_MAX) {
			gr_fail(c, "%s.ldflags: longer than %d bytes", where,
			    LDFLAGS_MAX);
			goto out;
		}
		ld = xcalloc(1, len);
		for (size_t i = 0; i < ldf.n; i++) {
			if (i > 0)
				strcat(ld, " ");
			strcat(ld, ldf.v[i]);
		}
	}
	for (size_t i = 0; i < tags.n; i++)
		if (tags.v[i][0] == '\0') {
			gr_fail(c, "%s.tags[%zu]: must not be empty", where, i);
			goto out;
		}

	o = json_object_get(b, "targets");
	if (o != NULL && !json_is_null(o)) {
		if (gr_get_list(c, b, where, "targets", false, true, &tl) != 0)
			goto out;
		for (size_t i = 0; i < tl.n; i++)
			if (gr_explicit_target(c, where, tl.v[i], &tg) != 0)
				goto out;
	} else if (gr_matrix(c, b, where, &tg) != 0)
		goto out;
	if (tg.n == 0) {
		gr_note(c, "%s: no target left to build, not built", where);
		rc = 0;
		goto out;
	}
	qsort(tg.v, tg.n, sizeof *tg.v, gr_cmp_str);
	for (size_t i = 0; i < tg.n; i++)
		if (!gr_strvec_has(&c->targets, tg.v[i]))
			gr_strvec_add(&c->targets, tg.v[i]);

	cgo = json_string_value(json_object_get(env, "CGO_ENABLED"));
	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:O, s:b, s:o}",
	    "id", id, "package", main_ && *main_ ? main_ : ".",
	    "name", binary && *binary ? binary : project, "ldflags", ld,
	    "flags", strvec_json(&flags), "tags", strvec_json(&tags),
	    "env", env, "cgo", cgo != NULL && strcmp(cgo, "1") == 0,
	    "targets", strvec_json(&tg));
	if (o == NULL) {
		gr_fail(c, "%s: cannot encode the build", where);
		goto out;
	}
	if (dir != NULL && strcmp(dir, ".") != 0)
		json_object_set_new(o, "dir", json_string(dir));
	json_array_append_new(builds, o);
	rc = 0;
out:
	gr_strvec_free(&flags);
	gr_strvec_free(&tags);
	gr_strvec_free(&ldf);
	gr_strvec_free(&tl);
	gr_strvec_free(&tg);
	json_decref(env);
	free(id);
	free(main_);
	free(dir);
	free(binary);
	free(builder);
	free(ld);
	return rc;
}

/* Top-level keys other than version, project_name, env and builds. */
static void
note_top_keys(struct conv *c, const json_t *doc)
{
	static const char *const known[] = { "version", "project_name",
	    "env", "builds", "archives", "universal_binaries", "sboms",
	    "kos" };
	const char *k, *k2;
	json_t *v, *v2;
	char q[68];

	json_object_foreach((json_t *)doc, k, v) {
		if (IN(known, k))
			continue;
		if (strcmp(k, "before") != 0 || !json_is_object(v)) {
			gr_note(c, "%s: not used by kiln's build step, ignored",
			    gr_clean(q, sizeof q, k));
			continue;
		}
		json_object_foreach(v, k2, v2) {
			(void)v2;
			if (strcmp(k2, "hooks") == 0)
				gr_note(c, "before.hooks: kiln runs no hooks "
				    "(a build runs only go build), ignored");
			else
				gr_note(c, "before.%s: not used by kiln's "
				    "build step, ignored",
				    gr_clean(q, sizeof q, k2));
		}
	}
}

int
goreleaser_to_recipe(struct goreleaser_result *out, const json_t *doc,
    const char *repo_name, char *err, size_t errsize)
{
	struct conv c;
	json_t *empty = json_object(), *genv = json_object();
	json_t *ids = json_object(), *builds = json_array(), *recipe = NULL;
	const json_t *bl, *v;
	char *project = NULL, q[68];
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	c.err = err;
	c.errsize = errsize;
	if (doc == NULL || json_is_null(doc))
		doc = empty;	/* an empty file: GoReleaser's defaults */
	if (!json_is_object(doc)) {
		gr_fail(&c, "the file is not a YAML mapping");
		goto out;
	}
	v = json_object_get(doc, "version");
	if (v != NULL && !json_is_null(v)) {
		char buf[32];
		const char *s = gr_scalar(v, buf, sizeof buf);

		if (s == NULL || (strcmp(s, "1") != 0 && strcmp(s, "2") != 0)) {
			gr_fail(&c, "version: '%s' is not supported (kiln "
			    "reads GoReleaser's versions 1 and 2)",
			    s ? gr_clean(q, sizeof q, s) : "?");
			goto out;
		}
	}
	if (gr_get_string(&c, doc, NULL, "project_name", &project) != 0)
		goto out;
	if (project == NULL || *project == '\0') {
		free(project);
		project = xstrdup(repo_name && *repo_name ? repo_name : "app");
	}
	note_top_keys(&c, doc);
	/* The top-level env applies to every build, under its own. */
	if (gr_get_env(&c, doc, NULL, genv) != 0)
		goto out;

	bl = json_object_get(doc, "builds");
	if (bl == NULL || json_is_null(bl) ||
	    (json_is_array(bl) && json_array_size(bl) == 0)) {
		if (convert_build(&c, empty, 0, project, genv, ids,
		    builds) != 0)
			goto out;
	} else if (!json_is_array(bl)) {
		gr_fail(&c, "builds: must be a list");
		goto out;
	} else if (json_array_size(bl) > GORELEASER_MAX_BUILDS) {
		gr_fail(&c, "builds: more than %d builds",
		    GORELEASER_MAX_BUILDS);
		goto out;
	} else {
		json_array_foreach(bl, i, v)
			if (convert_build(&c, v, i, project, genv, ids,
			    builds) != 0)
				goto out;
	}
	if (json_array_size(builds) == 0) {
		gr_fail(&c, "no build to run: every build is skipped or has no "
		    "target kiln can build");
		goto out;
	}

	recipe = json_pack("{s:s, s:s, s:O}", "kind", "go", "project_name",
	    project, "builds", builds);
	if (recipe == NULL ||
	    (out->recipe = json_dumps(recipe, JSON_COMPACT |
	    JSON_SORT_KEYS)) == NULL) {
		gr_fail(&c, "cannot encode the recipe");
		goto out;
	}
	out->outputs = gr_outputs(&c, doc);
	qsort(c.targets.v, c.targets.n, sizeof *c.targets.v, gr_cmp_str);
	out->targets = c.targets.v;
	out->ntargets = c.targets.n;
	memset(&c.targets, 0, sizeof c.targets);
	if (c.more > 0) {
		char buf[96];

		snprintf(buf, sizeof buf, "%zu more keys or targets ignored, "
		    "not listed", c.more);
		gr_strvec_add(&c.ignored, buf);
	}
	out->ignored = c.ignored.v;
	out->nignored = c.ignored.n;
	memset(&c.ignored, 0, sizeof c.ignored);
	/* Callers walk the lists to their NULL: never hand back NULL. */
	if (out->targets == NULL)
		out->targets = xcalloc(1, sizeof *out->targets);
	if (out->ignored == NULL)
		out->ignored = xcalloc(1, sizeof *out->ignored);
	rc = 0;
out:
	if (rc != 0) {
		free(out->recipe);
		memset(out, 0, sizeof *out);
	}
	gr_strvec_free(&c.ignored);
	gr_strvec_free(&c.targets);
	json_decref(recipe);
	json_decref(builds);
	json_decref(ids);
	json_decref(genv);
	json_decref(empty);
	free(project);
	return rc;
}

void
goreleaser_result_free(struct goreleaser_result *r)
{
	for (size_t i = 0; i < r->ntargets; i++)
		free(r->targets[i]);
	free(r->targets);
	free(r->outputs);
	for (size_t i = 0; i < r->nignored; i++)
		free(r->ignored[i]);
	free(r->ignored);
	free(r->recipe);
	memset(r, 0, sizeof *r);
}
