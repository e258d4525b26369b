/*
 * go recipes: one `go build` per build entry of the recipe (one entry
 * when the recipe has no "builds": the recipe itself), with the chosen
 * toolchain first on PATH, GoReleaser's templates expanded for the
 * target, cgo's C toolchain when asked for, and the module cache of the
 * deps step read-only.  Also the deps step's own plan.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "recipe-int.h"
#include "sbuf.h"
#include "template.h"
#include "util.h"
#include "xmalloc.h"

#define BASE_PATH "/usr/local/bin:/usr/bin:/bin"

/* The binary name a go recipe writes when it names none. */
static char *
default_name(const char *package, const char *repo)
{
	const char *base, *p;
	size_t n;

	if (package != NULL && strcmp(package, ".") != 0 &&
	    strcmp(package, "./...") != 0) {
		p = package + strlen(package);
		while (p > package && p[-1] == '/')
			p--;
		base = p;
		while (base > package && base[-1] != '/')
			base--;
		n = (size_t)(p - base);
		if (n > 0 && strcmp(base, "...") != 0 && base[0] != '.')
			return xstrndup(base, n);
	}
	p = repo + strlen(repo);
	while (p > repo && p[-1] == '/')
		p--;
	base = p;
	while (base > repo && base[-1] != '/' && base[-1] != ':')
		base--;
	n = (size_t)(p - base);
	if (n > 4 && strncmp(p - 4, ".git", 4) == 0)
		n -= 4;
	/* Only safe file-name characters survive. */
	char *name = xstrndup(base, n);
	for (char *c = name; *c; c++)
		if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
		    !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_' &&
		    *c != '.')
			*c = '_';
	if (name[0] == '\0' || name[0] == '.') {
		free(name);
		name = xstrdup("app");
	}
	return name;
}

char *
recipe_project_name(const char *recipe_json, const char *repo)
{
	json_t *r = recipe_json ? json_loads(recipe_json, 0, NULL) : NULL;
	const char *pn = json_string_value(json_object_get(r,
	    "project_name"));
	char *name = pn != NULL && pn[0] != '\0' ? xstrdup(pn) :
	    default_name(NULL, repo);

	json_decref(r);
	return name;
}

/* A binary name as it lands in /out: one safe path component. */
static bool
safe_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 128 && s[0] != '.' && s[0] != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+-") == n;
}

/* A build's dir: relative, inside the work tree, no "..". */
static bool
safe_dir(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 512 || s[0] == '/' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+-/") != n)
		return false;
	for (const char *p = s; *p; ) {
		size_t len = strcspn(p, "/");
		if (len == 2 && strncmp(p, "..", 2) == 0)
			return false;
		p += len;
		while (*p == '/')
			p++;
	}
	return true;
}

/* pkg-config's search path for a target's C libraries (Debian multiarch). */
static char *
pkg_config_libdir(const char *triple)
{
	const char *t = strcmp(triple, CONF_HOST_TRIPLE) == 0 ?
	    recipe_host_triple() : triple;

	if (strstr(t, "-w64-mingw32") != NULL)
		return xasprintf("/usr/%s/lib/pkgconfig", t);
	return xasprintf("/usr/lib/%s/pkgconfig:/usr/share/pkgconfig", t);
}

struct vars {
	struct template_vars v;
	char version[128], raw[128], tag[128];
	char *project;
};

static void
vars_init(struct vars *x, json_t *recipe, const struct target *t,
    const struct recipe_ctx *ctx)
{
	const char *pn = json_string_value(json_object_get(recipe,
	    "project_name"));

	memset(x, 0, sizeof *x);
	template_version(ctx->tag, ctx->commit, x->version, sizeof x->version,
	    x->raw, sizeof x->raw, x->tag, sizeof x->tag, &x->v.is_snapshot);
	x->project = pn ? xstrdup(pn) : default_name(NULL, ctx->repo);
	x->v.project_name = x->project;
	x->v.version = x->version;
	x->v.raw_version = x->raw;
	x->v.tag = x->tag;
	x->v.commit = ctx->commit;
	x->v.branch = ctx->branch ? ctx->branch : "";
	x->v.commit_time = ctx->commit_time;
	x->v.os = t->os;
	x->v.arch = t->arch;
	x->v.arm = target_goarm(t);
	x->v.amd64 = target_goamd64(t);
}

/* Expand a recipe value; errors say which field held the template. */
static char *
expand(const char *in, const char *field, const struct vars *x, char *err,
    size_t errsize)
{
	char why[256];
	char *out = template_expand(in, &x->v, why, sizeof why);

	if (out == NULL)
		snprintf(err, errsize, "%s: %s", field, why);
	return out;
}

/* Single quotes for sh, every byte literal. */
static void
sh_quote(struct sbuf *b, const char *s)
{
	sbuf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sbuf_adds(b, "'\\''");
		else
			sbuf_addc(b, *s);
	}
	sbuf_addc(b, '\'');
}

/* Whether build `b` is for target t: builds list their own matrix. */
static bool
build_wants(json_t *b, const struct target *t)
{
	json_t *ts = json_object_get(b, "targets"), *v;
	size_t i;

	if (!json_is_array(ts))
		return true;
	json_array_foreach(ts, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v),
		    t->name) == 0)
			return true;
	return false;
}

static bool
name_used(const struct strv *used, const char *name)
{
	for (size_t i = 0; i < used->n; i++)
		if (strcmp(used->v[i], name) == 0)
			return true;
	return false;
}

struct one_build {
	struct strv argv;
	struct strv env;	/* its own variables (templated) */
	char *dir;
};

static void
one_build_free(struct one_build *ob)
{
	strv_free(&ob->argv);
	strv_free(&ob->env);
	free(ob->dir);
}

/*
 * The command line of one build entry `b` (the recipe itself when it
 * has no "builds"), with `top` the recipe (its env and cgo apply to
 * every build).
 */
static int
plan_build(struct one_build *ob, json_t *top, json_t *b, size_t idx,
    const struct target *t, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, struct vars *x, struct strv *used,
    char *err, size_t errsize)
{
	const char *pkg = json_string_value(json_object_get(b, "package"));
	const char *dir = json_string_value(json_object_get(b, "dir"));
	json_t *benv = json_object(), *v;
	char field[64], where[24], *s = NULL, *bin = NULL;
	const char *k, *cgoenv;
	bool cgo;
	size_t i;
	int rc = -1;

	if (b == top)
		snprintf(where, sizeof where, "recipe");
	else
		snprintf(where, sizeof where, "builds[%zu]", idx);
	/* The recipe's env, then the build's own over it. */
	json_object_update(benv, json_object_get(top, "env"));
	if (b != top)
		json_object_update(benv, json_object_get(b, "env"));
	x->v.env = benv;
	json_object_foreach(benv, k, v) {
		snprintf(field, sizeof field, "%s.env.%.32s", where, k);
		if ((s = expand(json_string_value(v), field, x, err,
		    errsize)) == NULL)
			goto out;
		env_set(&ob->env, k, s);
		free(s);
		s = NULL;
	}
	cgoenv = env_get(&ob->env, "CGO_ENABLED");
	cgo = json_is_true(json_object_get(top, "cgo")) ||
	    json_is_true(json_object_get(b, "cgo")) ||
	    (cgoenv != NULL && strcmp(cgoenv, "1") == 0);
	if (cgo) {
		const char *triple = conf_toolchain(conf, t->name);
		if (triple == NULL) {
			snprintf(err, errsize, "cgo: this farm has no C toolchain "
			    "for %s (add one under [toolchains] in kilnd.conf; "
			    "darwin and ios have none on Linux)", t->name);
			rc = RECIPE_ENOTOOL;
			goto out;
		}
		if (!recipe_toolchain_available(triple)) {
			snprintf(err, errsize, "cgo: the C toolchain for %s "
			    "(%s) is not installed on this host", t->name,
			    triple);
			rc = RECIPE_ENOTOOL;
			goto out;
		}
		env_set(&ob->env, "CGO_ENABLED", "1");
		s = pkg_config_libdir(triple);
		env_set(&ob->env, "PKG_CONFIG_LIBDIR", s);
		free(s);
		s = NULL;
	}

	if (dir != NULL && strcmp(dir, ".") != 0) {
		if (!safe_dir(dir)) {
			snprintf(err, errsize, "%s.dir: '%.64s' is not a "
			    "relative directory inside the repository", where, dir);
			goto out;
		}
		ob->dir = xstrdup(dir);
	}
	if ((v = json_object_get(b, "name")) != NULL) {
		snprintf(field, sizeof field, "%s.name", where);
		if ((bin = expand(json_string_value(v), field, x, err,
		    errsize)) == NULL)
			goto out;
		if (!safe_name(bin)) {
			snprintf(err, errsize, "%s.name: '%.64s' is not "
			    "a file name of letters, digits, '.', '_', '-', '+'",
			    where, bin);
			goto out;
		}
	} else
		bin = default_name(pkg, ctx->repo);
	/*
	 * Two builds writing one name (GoReleaser keeps a directory per
	 * build id; a target's outputs here are one flat directory): the
	 * later one's binary is NAME_ID, so neither is lost.
	 */
	if (name_used(used, bin)) {
		const char *id = json_string_value(json_object_get(b, "id"));
		char *renamed = id && safe_name(id) ? xasprintf("%s_%s", bin,
		    id) : NULL;
		/* Still taken (a build named so) or no usable id: the
		 * build's index, then a counter, until it is free. */
		for (size_t try = 0; renamed == NULL || !safe_name(renamed) ||
		    name_used(used, renamed); try++) {
			free(renamed);
			renamed = try == 0 ? xasprintf("%s_%zu", bin, idx) :
			    xasprintf("%s_%zu_%zu", bin, idx, try);
			if (strlen(renamed) > 128) {
				snprintf(err, errsize, "%s.name: '%.64s' is taken "
				    "by another build and too long to rename",
				    where, bin);
				free(renamed);
				goto out;
			}
		}
		free(bin);
		bin = renamed;
	}
	strv_add(used, xstrdup(bin));

	strv_add(&ob->argv, xstrdup("go"));
	strv_add(&ob->argv, xstrdup("build"));
	strv_add(&ob->argv, xstrdup("-trimpath"));
	strv_add(&ob->argv, xstrdup("-buildvcs=false"));
	json_array_foreach(json_object_get(b, "flags"), i, v) {
		snprintf(field, sizeof field, "%s.flags[%zu]", where, i);
		if ((s = expand(json_string_value(v), field, x, err,
		    errsize)) == NULL)
			goto out;
		strv_add(&ob->argv, s);
		s = NULL;
	}
	if ((v = json_object_get(b, "ldflags")) != NULL) {
		snprintf(field, sizeof field, "%s.ldflags", where);
		if ((s = expand(json_string_value(v), field, x, err,
		    errsize)) == NULL)
			goto out;
	}
	/* -s -w -buildid= first: reproducible and small, as GoReleaser. */
	strv_add(&ob->argv, xasprintf("-ldflags=-s -w -buildid=%s%s",
	    s && *s ? " " : "", s ? s : ""));
	free(s);
	s = NULL;
	if (json_array_size(json_object_get(b, "tags")) > 0) {
		struct sbuf joined = { 0 };
		json_array_foreach(json_object_get(b, "tags"), i, v) {
			if (i > 0)
				sbuf_addc(&joined, ',');
			sbuf_adds(&joined, json_string_value(v));
		}
		strv_add(&ob->argv, xstrdup("-tags"));
		strv_add(&ob->argv, sbuf_steal(&joined, NULL));
	}
	strv_add(&ob->argv, xstrdup("-o"));
	strv_add(&ob->argv, xasprintf(RECIPE_OUT "/%s%s", bin,
	    strcmp(t->os, "windows") == 0 ? ".exe" : ""));
	strv_add(&ob->argv, xstrdup(pkg ? pkg : "."));
	rc = 0;
out:
	x->v.env = NULL;
	json_decref(benv);
	free(bin);
	free(s);
	return rc;
}

int
recipe_go_plan(struct strv *argv, struct strv *env, json_t *r,
    const struct target *t, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, char *err, size_t errsize)
{
	json_t *builds = json_object_get(r, "builds"), *b;
	struct one_build obs[32];
	struct strv used = { 0 };
	struct vars x;
	size_t n = 0, i;
	int rc = -1;

	memset(obs, 0, sizeof obs);
	vars_init(&x, r, t, ctx);
	if (ctx->go_bindir != NULL) {
		char *path = xasprintf("%s:" BASE_PATH, ctx->go_bindir);
		env_set(env, "PATH", path);
		free(path);
	}
	/* Nothing is downloaded inside a build: not a toolchain (local),
	 * not a module (off; the deps step filled the read-only cache). */
	env_set(env, "GOTOOLCHAIN", "local");
	env_set(env, "GOPROXY", "off");
	env_set(env, "GOSUMDB", "off");
	env_set(env, "GOMODCACHE", RECIPE_MODCACHE);
	env_set(env, "GOFLAGS", ctx->vendored ? "-mod=vendor" : "-mod=mod");
	/* Reproducible and static unless the recipe asks for cgo. */
	env_set(env, "CGO_ENABLED", "0");

	if (!json_is_array(builds)) {
		if ((rc = plan_build(&obs[0], r, r, 0, t, ctx, conf, &x,
		    &used, err, errsize)) != 0)
			goto out;
		rc = -1;
		n = 1;
	} else {
		json_array_foreach(builds, i, b) {
			if (!build_wants(b, t))
				continue;
			if (n == sizeof obs / sizeof *obs) {
				snprintf(err, errsize, "more than %zu builds for "
				    "%s", sizeof obs / sizeof *obs, t->name);
				goto out;
			}
			if ((rc = plan_build(&obs[n++], r, b, i, t, ctx, conf,
			    &x, &used, err, errsize)) != 0)
				goto out;
			rc = -1;
		}
		if (n == 0) {
			snprintf(err, errsize, "no build of the recipe is for %s",
			    t->name);
			goto out;
		}
	}

	if (n == 1 && obs[0].dir == NULL) {
		/* One build: its variables are the build's, its argv as is. */
		for (i = 0; i < obs[0].env.n; i++) {
			char *eq = strchr(obs[0].env.v[i], '=');
			*eq = '\0';
			env_set(env, obs[0].env.v[i], eq + 1);
			*eq = '=';
		}
		*argv = obs[0].argv;
		memset(&obs[0].argv, 0, sizeof obs[0].argv);
	} else {
		/* Several: one sh script, each build with its own variables
		 * and directory, every word quoted. */
		struct sbuf sc = { 0 };
		sbuf_adds(&sc, "set -e");
		for (i = 0; i < n; i++) {
			sbuf_adds(&sc, "\ncd ");
			if (obs[i].dir != NULL) {
				char *d = xasprintf(RECIPE_SRC "/%s", obs[i].dir);
				sh_quote(&sc, d);
				free(d);
			} else
				sbuf_adds(&sc, RECIPE_SRC);
			sbuf_adds(&sc, "\n");
			if (obs[i].env.n > 0) {
				sbuf_adds(&sc, "env");
				for (size_t e = 0; e < obs[i].env.n; e++) {
					sbuf_addc(&sc, ' ');
					sh_quote(&sc, obs[i].env.v[e]);
				}
				sbuf_addc(&sc, ' ');
			}
			for (size_t a = 0; a < obs[i].argv.n; a++) {
				if (a > 0)
					sbuf_addc(&sc, ' ');
				sh_quote(&sc, obs[i].argv.v[a]);
			}
		}
		strv_add(argv, xstrdup("/bin/sh"));
		strv_add(argv, xstrdup("-c"));
		strv_add(argv, sbuf_steal(&sc, NULL));
	}
	rc = 0;
out:
	for (i = 0; i < sizeof obs / sizeof *obs; i++)
		one_build_free(&obs[i]);
	strv_free(&used);
	free(x.project);
	return rc;
}

int
recipe_deps_plan(struct recipe_plan *out, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, const struct conf_project *project,
    char *err, size_t errsize)
{
	struct strv argv = { 0 }, env = { 0 };
	char *path, buf[32];

	(void)err;
	(void)errsize;
	path = ctx->go_bindir ? xasprintf("%s:" BASE_PATH, ctx->go_bindir) :
	    xstrdup(BASE_PATH);
	env_set(&env, "PATH", path);
	free(path);
	env_set(&env, "HOME", "/tmp");
	env_set(&env, "TMPDIR", "/tmp");
	/* Its build cache and GOPATH are throwaway: only the module cache
	 * outlives the step. */
	env_set(&env, "GOCACHE", "/tmp/go-build");
	env_set(&env, "GOPATH", "/tmp/go");
	env_set(&env, "GOMODCACHE", RECIPE_MODCACHE);
	env_set(&env, "GOPROXY", project && project->goproxy ?
	    project->goproxy : conf->goproxy);
	env_set(&env, "GOSUMDB", conf->gosumdb);
	if (project != NULL && project->goprivate != NULL)
		env_set(&env, "GOPRIVATE", project->goprivate);
	/* go.sum is the truth: nothing may change it. */
	env_set(&env, "GOFLAGS", "-mod=readonly");
	env_set(&env, "GOTOOLCHAIN", "local");
	env_set(&env, "CGO_ENABLED", "0");
	env_set(&env, "GIT_TERMINAL_PROMPT", "0");
	snprintf(buf, sizeof buf, "%lld", (long long)ctx->commit_time);
	env_set(&env, "SOURCE_DATE_EPOCH", buf);
	strv_add(&argv, xstrdup("go"));
	strv_add(&argv, xstrdup("mod"));
	strv_add(&argv, xstrdup("download"));
	out->argv = argv.v;
	out->env = env.v;
	out->summary = xstrdup("go mod download");
	return 0;
}
