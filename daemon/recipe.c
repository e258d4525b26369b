#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "recipe-int.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"

/* The triple of the host's own gcc, from the compiler building kilnd. */
#if defined(__x86_64__)
#define HOST_TRIPLE "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define HOST_TRIPLE "aarch64-linux-gnu"
#elif defined(__arm__)
#define HOST_TRIPLE "arm-linux-gnueabihf"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_TRIPLE "riscv64-linux-gnu"
#elif defined(__i386__)
#define HOST_TRIPLE "i686-linux-gnu"
#else
#define HOST_TRIPLE "unknown-linux-gnu"
#endif

const char *
recipe_host_triple(void)
{
	return HOST_TRIPLE;
}

void
strv_add(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xreallocarray(s->v, s->cap, sizeof *s->v);
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void
env_set(struct strv *e, const char *name, const char *value)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=') {
			free(e->v[i]);
			e->v[i] = xasprintf("%s=%s", name, value);
			return;
		}
	}
	strv_add(e, xasprintf("%s=%s", name, value));
}

const char *
env_get(const struct strv *e, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=')
			return e->v[i] + len + 1;
	return NULL;
}

void
strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

int
recipe_toolchain_available(const char *triple)
{
	char path[128];

	if (strcmp(triple, CONF_HOST_TRIPLE) == 0)
		return access("/usr/bin/gcc", X_OK) == 0;
	snprintf(path, sizeof path, "/usr/bin/%s-gcc", triple);
	return access(path, X_OK) == 0;
}

int
recipe_plan(struct recipe_plan *out, const char *recipe_json,
    const struct target *t, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, char *err, size_t errsize)
{
	struct strv argv = { 0 }, env = { 0 };
	json_t *r = NULL, *v;
	int64_t commit_time = ctx->commit_time;
	const char *kind, *triple, *k;
	char buf[64];
	int rc = -1;

	r = json_loads(recipe_json, 0, NULL);
	if (r == NULL || !json_is_object(r) ||
	    !json_is_string(json_object_get(r, "kind"))) {
		snprintf(err, errsize, "the recipe is not valid JSON");
		goto out;
	}
	kind = json_string_value(json_object_get(r, "kind"));

	/* The variables every build sees (kilnd(8)), nothing else. */
	env_set(&env, "PATH", "/usr/local/bin:/usr/bin:/bin");
	env_set(&env, "HOME", "/tmp");
	env_set(&env, "TMPDIR", "/tmp");
	env_set(&env, "KILN_TARGET", t->name);
	env_set(&env, "KILN_OS", t->os);
	env_set(&env, "KILN_ARCH", t->arch);
	env_set(&env, "KILN_VARIANT", t->variant);
	env_set(&env, "KILN_OUT", RECIPE_OUT);
	env_set(&env, "GOOS", t->os);
	env_set(&env, "GOARCH", t->arch);
	/* Always set: Debian's Go defaults GOARM to 5. */
	if (*target_goarm(t))
		env_set(&env, "GOARM", target_goarm(t));
	if (*target_goamd64(t))
		env_set(&env, "GOAMD64", target_goamd64(t));
	env_set(&env, "GOCACHE", RECIPE_CACHE "/go-build");
	env_set(&env, "GOPATH", RECIPE_CACHE "/go");
	snprintf(buf, sizeof buf, "%lld", (long long)commit_time);
	env_set(&env, "SOURCE_DATE_EPOCH", buf);
	triple = conf_toolchain(conf, t->name);
	if (triple != NULL) {
		bool host = strcmp(triple, CONF_HOST_TRIPLE) == 0;
		char *p = host ? xstrdup("") : xasprintf("%s-", triple);
		char *tool;

		tool = xasprintf("%sgcc", p); env_set(&env, "CC", tool); free(tool);
		tool = xasprintf("%sg++", p); env_set(&env, "CXX", tool); free(tool);
		tool = xasprintf("%sar", p); env_set(&env, "AR", tool); free(tool);
		tool = xasprintf("%sstrip", p); env_set(&env, "STRIP", tool);
		free(tool);
		env_set(&env, "KILN_HOST_TRIPLE", host ? HOST_TRIPLE : triple);
		free(p);
	}

	if (strcmp(kind, "go") == 0) {
		/* -1, or RECIPE_ENOTOOL: passed on. */
		if ((rc = recipe_go_plan(&argv, &env, r, t, ctx, conf, err,
		    errsize)) != 0)
			goto out;
		rc = -1;
	} else if (strcmp(kind, "command") == 0) {
		const char *cmd = json_string_value(json_object_get(r,
		    "command"));
		if (cmd == NULL) {
			snprintf(err, errsize, "recipe.command: missing");
			goto out;
		}
		strv_add(&argv, xstrdup("/bin/sh"));
		strv_add(&argv, xstrdup("-c"));
		strv_add(&argv, xstrdup(cmd));
	} else {
		snprintf(err, errsize, "recipe.kind: unknown kind '%.32s'", kind);
		goto out;
	}
	/* The recipe's own variables last: they may override ours, except
	 * KILN_* which validation already refused. */
	if (strcmp(kind, "command") == 0)
		json_object_foreach(json_object_get(r, "env"), k, v)
			if (json_is_string(v))
				env_set(&env, k, json_string_value(v));

	out->argv = argv.v;
	out->env = env.v;
	argv.v = env.v = NULL;
	argv.n = env.n = 0;
	/* The command line for the log, arguments with spaces quoted. */
	struct sbuf sum = { 0 };
	for (size_t i = 0; out->argv[i]; i++) {
		/* sh -c's script as it is, not quoted once more. */
		bool script = i == 2 && strcmp(out->argv[0], "/bin/sh") == 0 &&
		    strcmp(out->argv[1], "-c") == 0;
		bool quote = !script && strchr(out->argv[i], ' ') != NULL;
		if (i)
			sbuf_addc(&sum, ' ');
		if (quote)
			sbuf_addc(&sum, '\'');
		/* A script's lines, on the log's one line. */
		for (const char *c = out->argv[i]; *c; c++)
			if (*c == '\n')
				sbuf_adds(&sum, "; ");
			else
				sbuf_addc(&sum, *c);
		if (quote)
			sbuf_addc(&sum, '\'');
	}
	out->summary = sbuf_steal(&sum, NULL);
	rc = 0;
out:
	strv_free(&argv);
	strv_free(&env);
	json_decref(r);
	return rc;
}

void
recipe_plan_free(struct recipe_plan *p)
{
	if (p->argv)
		for (size_t i = 0; p->argv[i]; i++)
			free(p->argv[i]);
	if (p->env)
		for (size_t i = 0; p->env[i]; i++)
			free(p->env[i]);
	free(p->argv);
	free(p->env);
	free(p->summary);
	p->argv = p->env = NULL;
	p->summary = NULL;
}

const char *
recipe_go_pin(const char *recipe_json, char *buf, size_t size)
{
	json_t *r = json_loads(recipe_json, 0, NULL);
	const char *v = json_string_value(json_object_get(r, "go"));
	const char *kind = json_string_value(json_object_get(r, "kind"));

	if (v != NULL && kind != NULL && strcmp(kind, "go") == 0)
		snprintf(buf, size, "%s", v);
	json_decref(r);
	return v != NULL ? buf : NULL;
}
