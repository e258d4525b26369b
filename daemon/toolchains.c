#include "config.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gomod.h"
#include "log.h"
#include "recipe.h"
#include "sbuf.h"
#include "toolchains.h"
#include "toolid.h"
#include "xmalloc.h"

/* Where Debian's golang-1.NN-go packages put their go. */
#define DEBIAN_GO_GLOB "/usr/lib/go-*/bin/go"

/*
 * "go1.22.12" from the identity "RESOLVED: go version go1.22.12
 * linux/amd64" (malloc'd), or NULL for anything but a release or a
 * release candidate (a development build says "devel go1.23-abc").
 */
static char *
version_of(const char *identity, const char *resolved)
{
	size_t plen = strlen(resolved);
	const char *line;
	char *v;

	if (strncmp(identity, resolved, plen) != 0 ||
	    strncmp(identity + plen, ": go version ", 13) != 0)
		return NULL;
	line = identity + plen + 13;
	v = xstrndup(line, strcspn(line, " "));
	if (strncmp(v, "go", 2) != 0 || !gomod_version_valid(v)) {
		free(v);
		return NULL;
	}
	return v;
}

/* Add the go at path, unless it is there already or is not usable. */
static void
add(struct toolchains *tc, const char *path)
{
	struct toolchain *t;
	char why[256], *real, *id = NULL, *version = NULL, *slash;

	if ((real = realpath(path, NULL)) == NULL) {
		log_warn("go toolchain %s: %s; left out", path,
		    strerror(errno));
		return;
	}
	if (strncmp(real, "/usr/", 5) != 0) {
		log_warn("go toolchain %s is %s, outside /usr, where builds "
		    "cannot run it; left out", path, real);
		goto out;
	}
	for (size_t i = 0; i < tc->n; i++)
		if (strcmp(tc->v[i].go, real) == 0)
			goto out;	/* another name of one we have */
	if ((id = toolid_go(real, why, sizeof why)) == NULL) {
		log_warn("go toolchain %s does not run (%s); left out", path,
		    why);
		goto out;
	}
	if ((version = version_of(id, real)) == NULL) {
		log_warn("go toolchain %s: `go version` says '%.100s', not a "
		    "Go release; left out", path, id + strlen(real) + 2);
		goto out;
	}
	tc->v = xreallocarray(tc->v, tc->n + 1, sizeof *tc->v);
	t = &tc->v[tc->n++];
	t->go = real;
	t->bindir = xstrdup(real);
	if ((slash = strrchr(t->bindir, '/')) != NULL)
		*slash = '\0';
	t->version = version;
	t->identity = id;
	return;
out:
	free(real);
	free(id);
	free(version);
}

static int
by_version(const void *a, const void *b)
{
	const struct toolchain *x = a, *y = b;
	int c = gomod_version_cmp(x->version, y->version);

	return c != 0 ? c : strcmp(x->go, y->go);
}

int
toolchains_discover(struct toolchains *out, const struct kiln_config *conf,
    char *err, size_t errsize)
{
	glob_t g;
	int rc;

	out->v = NULL;
	out->n = 0;
	memset(&g, 0, sizeof g);
	rc = glob(DEBIAN_GO_GLOB, 0, NULL, &g);
	if (rc != 0 && rc != GLOB_NOMATCH) {
		snprintf(err, errsize, "cannot list %s: %s", DEBIAN_GO_GLOB,
		    rc == GLOB_NOSPACE ? "out of memory" : "read error");
		globfree(&g);
		return -1;
	}
	for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++)
		add(out, g.gl_pathv[i]);
	globfree(&g);
	for (size_t i = 0; i < conf->ngo_toolchains; i++)
		add(out, conf->go_toolchains[i]);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, by_version);
	return 0;
}

void
toolchains_free(struct toolchains *tc)
{
	for (size_t i = 0; i < tc->n; i++) {
		free(tc->v[i].go);
		free(tc->v[i].bindir);
		free(tc->v[i].version);
		free(tc->v[i].identity);
	}
	free(tc->v);
	tc->v = NULL;
	tc->n = 0;
}

/* ", go1.19.8, go1.21.13" into err after what it holds. */
static void
append_installed(const struct toolchains *tc, char *err, size_t errsize)
{
	size_t len = strlen(err);

	for (size_t i = 0; i < tc->n && len < errsize; i++) {
		int n = snprintf(err + len, errsize - len, "%s%s",
		    i ? ", " : "", tc->v[i].version);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (tc->n == 0)
		snprintf(err + len, len < errsize ? errsize - len : 0, "none");
}

/* Whether v names a language version ("1.22"), not a release. */
static bool
is_lang(const char *v)
{
	char lang[32];

	if (strncmp(v, "go", 2) == 0)
		v += 2;
	return gomod_version_lang(lang, sizeof lang, v) == 0 &&
	    strcmp(lang, v) == 0;
}

static bool
same_lang(const char *a, const char *b)
{
	char la[32], lb[32];

	return gomod_version_lang(la, sizeof la, a) == 0 &&
	    gomod_version_lang(lb, sizeof lb, b) == 0 && strcmp(la, lb) == 0;
}

static const struct toolchain *
choose_pinned(const struct toolchains *tc, const char *go, const char *pin,
    char *err, size_t errsize)
{
	const struct toolchain *best = NULL;

	/* Ascending: the last match is the newest of the series. */
	for (size_t i = 0; i < tc->n; i++)
		if (is_lang(pin) ? same_lang(tc->v[i].version, pin) :
		    gomod_version_cmp(tc->v[i].version, pin) == 0)
			best = &tc->v[i];
	if (best == NULL) {
		snprintf(err, errsize, "recipe.go pins %s; installed: ", pin);
		append_installed(tc, err, errsize);
		return NULL;
	}
	if (go != NULL && gomod_version_cmp(best->version, go) < 0) {
		snprintf(err, errsize, "recipe.go pins %s (%s), but go.mod "
		    "needs go >= %s", pin, best->version, go);
		return NULL;
	}
	return best;
}

int
toolchains_check(const char *go_line, const char *toolchain_line,
    const char *pin, char *err, size_t errsize)
{
	const char *go = go_line && *go_line ? go_line : NULL;
	const char *want = toolchain_line && *toolchain_line &&
	    strcmp(toolchain_line, "default") != 0 ? toolchain_line : NULL;

	if (go != NULL && (strncmp(go, "go", 2) == 0 ||
	    !gomod_version_valid(go))) {
		snprintf(err, errsize, "go.mod: invalid go version '%.40s'",
		    go);
		return -1;
	}
	if (want != NULL && (strncmp(want, "go", 2) != 0 ||
	    !gomod_version_valid(want))) {
		snprintf(err, errsize, "go.mod: invalid toolchain '%.40s'",
		    want);
		return -1;
	}
	if (pin != NULL && !gomod_version_valid(pin)) {
		snprintf(err, errsize, "recipe.go: '%.40s' is not a Go version "
		    "(like 1.22 or 1.22.12)", pin);
		return -1;
	}
	return 0;
}

bool
toolchains_pin_possible(const char *go_line, const char *pin)
{
	char lang[32];

	if (pin == NULL || go_line == NULL || *go_line == '\0')
		return true;
	if (!is_lang(pin))
		return gomod_version_cmp(pin, go_line) >= 0;
	/* A series holds releases up to any of its own language. */
	return gomod_version_lang(lang, sizeof lang, go_line) != 0 ||
	    gomod_version_cmp(lang, pin) <= 0;
}

const struct toolchain *
toolchains_choose(const struct toolchains *tc, const char *go_line,
    const char *toolchain_line, const char *pin, char *err, size_t errsize)
{
	const char *go = go_line && *go_line ? go_line : NULL;
	const char *want = toolchain_line && *toolchain_line &&
	    strcmp(toolchain_line, "default") != 0 ? toolchain_line : NULL;
	const char *floor = NULL;
	const struct toolchain *last = NULL;

	if (toolchains_check(go_line, toolchain_line, pin, err, errsize) != 0)
		return NULL;
	if (pin != NULL)
		return choose_pinned(tc, go, pin, err, errsize);
	if (tc->n == 0) {
		snprintf(err, errsize, "no Go toolchain is installed");
		return NULL;
	}
	/* Go 1.19 refuses "go 1.19.5" and toolchain lines: go.mod:3:
	 * invalid go version '1.19.5': must match format 1.23. */
	if ((go != NULL && !is_lang(go)) || want != NULL)
		floor = "1.21";
	for (size_t i = 0; i < tc->n; i++) {
		const struct toolchain *t = &tc->v[i];

		if ((go != NULL && gomod_version_cmp(t->version, go) < 0) ||
		    (floor != NULL && gomod_version_cmp(t->version, floor) < 0))
			continue;
		last = t;
		/* Ascending: the first at or above both is the lowest. */
		if (want == NULL || gomod_version_cmp(t->version, want) >= 0)
			return t;
	}
	/*
	 * The toolchain line is newer than anything installed: the newest
	 * that satisfies the go line comes closest.  (A real module said
	 * go 1.22 + toolchain go1.23.6 and vendored go1.23-only files: the
	 * lowest, 1.22, could not build it.)
	 */
	if (last != NULL)
		return last;
	if (floor != NULL && (go == NULL || gomod_version_cmp(go, floor) < 0))
		snprintf(err, errsize, "go.mod needs go >= %s to read its %s "
		    "line; installed: ", floor, want ? "toolchain" : "go");
	else if (want != NULL)
		snprintf(err, errsize, "go.mod needs go >= %s (toolchain %s); "
		    "installed: ", go, want);
	else
		snprintf(err, errsize, "go.mod needs go >= %s; installed: ",
		    go);
	append_installed(tc, err, errsize);
	return NULL;
}

json_t *
toolchains_json(const struct toolchains *tc)
{
	json_t *a = json_array();

	for (size_t i = 0; i < tc->n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}",
		    "version", tc->v[i].version, "path", tc->v[i].go,
		    "identity", tc->v[i].identity));
	return a;
}

char *
toolchains_map(const struct toolchains *tc, const struct kiln_config *conf)
{
	struct sbuf b = { 0 };
	size_t ncgo = 0;

	for (size_t i = 0; tc != NULL && i < tc->n; i++) {
		if (i > 0)
			sbuf_addc(&b, ' ');
		sbuf_adds(&b, tc->v[i].version);
	}
	if (b.len == 0)
		sbuf_adds(&b, "no Go");
	sbuf_adds(&b, "; cgo");
	/* One access(2) per entry: what recipe_plan checks at a plan. */
	for (size_t i = 0; i < conf->ntoolchains; i++) {
		if (!recipe_toolchain_available(conf->toolchains[i].triple))
			continue;
		sbuf_addc(&b, ' ');
		sbuf_adds(&b, conf->toolchains[i].target);
		ncgo++;
	}
	if (ncgo == 0)
		sbuf_adds(&b, " none");
	return sbuf_steal(&b, NULL);
}
