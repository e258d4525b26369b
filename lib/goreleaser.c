#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goreleaser.h"
#include "target.h"
#include "util.h"
#include "xmalloc.h"

/* Entries in one list (goos, env, flags, targets...). */
#define LIST_MAX 64
#define IGNORE_MAX 256
#define VALUE_MAX 4096
#define LDFLAGS_MAX (16 * 1024)

/* GoReleaser v2's defaults (internal/builders/golang/build.go). */
static const char default_ldflags[] = "-s -w -X main.version={{.Version}} "
    "-X main.commit={{.Commit}} -X main.date={{.Date}} "
    "-X main.builtBy=goreleaser";
static const char *const default_goos[] = { "linux", "darwin", "windows" };
static const char *const default_goarch[] = { "amd64", "arm64", "386" };

/* What GoReleaser v2 accepts in goos and goarch; anything else fails. */
static const char *const gr_goos[] = {
	"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios",
	"js", "linux", "netbsd", "openbsd", "plan9", "solaris", "windows",
	"wasip1",
};
static const char *const gr_goarch[] = {
	"386", "amd64", "arm", "arm64", "mips", "mips64", "mips64le", "mipsle",
	"ppc64", "ppc64le", "s390x", "wasm", "riscv64", "loong64", "sparc",
	"sparc64",
};
/*
 * The pairs GoReleaser v2 builds from a goos x goarch matrix; it drops
 * the others silently (darwin/386, windows/arm since Go 1.25...), and so
 * do we.  Pairs here that kiln cannot build are dropped with a message.
 */
static const char *const gr_pairs[] = {
	"aix/ppc64", "android/386", "android/amd64", "android/arm",
	"android/arm64", "darwin/amd64", "darwin/arm64", "dragonfly/amd64",
	"freebsd/386", "freebsd/amd64", "freebsd/arm", "freebsd/arm64",
	"illumos/amd64", "ios/arm64", "js/wasm", "wasip1/wasm", "linux/386",
	"linux/amd64", "linux/arm", "linux/arm64", "linux/ppc64",
	"linux/ppc64le", "linux/mips", "linux/mipsle", "linux/mips64",
	"linux/mips64le", "linux/s390x", "linux/riscv64", "linux/loong64",
	"netbsd/386", "netbsd/amd64", "netbsd/arm", "netbsd/arm64",
	"openbsd/386", "openbsd/amd64", "openbsd/arm", "openbsd/arm64",
	"openbsd/riscv64", "plan9/386", "plan9/amd64", "plan9/arm",
	"solaris/amd64", "solaris/sparc", "solaris/sparc64", "windows/arm64",
	"windows/386", "windows/amd64",
};
/* "go_first_class" in a targets list: Go's first-class ports. */
static const char *const first_class[] = {
	"darwin_amd64", "darwin_arm64", "linux_386", "linux_amd64",
	"linux_arm", "linux_arm64", "windows_386", "windows_amd64",
};
static const char *const goarm_values[] = {
	"5", "5,softfloat", "6", "6,softfloat", "6,hardfloat", "7",
	"7,softfloat", "7,hardfloat",
};
static const char *const goamd64_values[] = { "v1", "v2", "v3", "v4" };

/*
 * Per-architecture settings kiln leaves at Go's default: a target asking
 * for another value is skipped with a message.
 */
static const struct fixed {
	const char *key;	/* the build key, also an ignore key */
	const char *arches;	/* the GOARCH values it applies to */
	const char *dflt;
} fixed[] = {
	{ "go386", " 386 ", "sse2" },
	{ "goarm64", " arm64 ", "v8.0" },
	{ "gomips", " mips mipsle mips64 mips64le ", "hardfloat" },
	{ "goppc64", " ppc64 ppc64le ", "power8" },
	{ "goriscv64", " riscv64 ", "rva20u64" },
};
#define NFIXED ARRAY_SIZE(fixed)

/* The keys of one `ignore` entry. */
static const char *const ignore_keys[] = {
	"goos", "goarch", "goarm", "goamd64",
	"go386", "goarm64", "gomips", "goppc64", "goriscv64",
};
#define NIGNORE_KEYS ARRAY_SIZE(ignore_keys)

struct strvec {
	char **v;		/* NULL-terminated once non-empty */
	size_t n, cap;
};

struct conv {
	struct strvec ignored;
	size_t more;		/* messages past GORELEASER_MAX_IGNORED */
	struct strvec targets;	/* union over the builds */
	char *err;
	size_t errsize;
};

struct ignore {
	char *f[NIGNORE_KEYS];	/* NULL: matches anything */
};

static bool
in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}
#define IN(list, s) in_list(list, ARRAY_SIZE(list), s)

static bool
strvec_has(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

static void
strvec_add(struct strvec *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = xreallocarray(sv->v, sv->cap, sizeof *sv->v);
	}
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

static void
strvec_free(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Text from the file in a message: cut at a character boundary, no
 * control characters. */
static const char *
clean(char *buf, size_t size, const char *s)
{
	return util_snippet(buf, size, s, strlen(s));
}

static int
fail(struct conv *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct conv *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/* One "ignored" message; repeats are kept once. */
static void
note(struct conv *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note(struct conv *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (strvec_has(&c->ignored, buf))
		return;
	if (c->ignored.n + 1 >= GORELEASER_MAX_IGNORED)
		c->more++;
	else
		strvec_add(&c->ignored, buf);
}

/*
 * A scalar as GoReleaser's string fields read it: go-yaml gives the
 * text of `goarch: [386]` to a string, and yaml_to_json keeps integers
 * canonical, so printing one back gives the same text.  NULL for
 * anything else or a string holding a NUL.
 */
static const char *
scalar(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return strlen(json_string_value(v)) == json_string_length(v) ?
		    json_string_value(v) : NULL;
	if (json_is_integer(v)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return NULL;
}

/* "builds[0].goos", or "goos" at the top. */
static const char *
path(char *buf, size_t size, const char *where, const char *key)
{
	if (where == NULL)
		snprintf(buf, size, "%s", key);
	else
		snprintf(buf, size, "%s.%s", where, key);
	return buf;
}

/* A string field; *out NULL when absent or null. */
static int
get_string(struct conv *c, const json_t *o, const char *where,
    const char *key, char **out)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	char buf[32], p[48];

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if ((s = scalar(v, buf, sizeof buf)) == NULL)
		return fail(c, "%s: must be a string",
		    path(p, sizeof p, where, key));
	if (strlen(s) > VALUE_MAX)
		return fail(c, "%s: longer than %d bytes",
		    path(p, sizeof p, where, key), VALUE_MAX);
	*out = xstrdup(s);
	return 0;
}

/* A boolean; GoReleaser's older files also write skip: "true". */
static int
get_bool(struct conv *c, const json_t *o, const char *where,
    const char *key, bool *out)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	char p[48];

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_boolean(v))
		*out = json_is_true(v);
	else if (s != NULL && strcmp(s, "true") == 0)
		*out = true;
	else if (s == NULL || strcmp(s, "false") != 0)
		return fail(c, "%s: must be true or false (kiln evaluates no "
		    "templates there)", path(p, sizeof p, where, key));
	return 0;
}

/*
 * A list of strings (a lone string too when `single`, as GoReleaser's
 * StringArray reads one), repeats dropped when `unique`.
 */
static int
get_list(struct conv *c, const json_t *o, const char *where,
    const char *key, bool single, bool unique, struct strvec *out)
{
	json_t *v = json_object_get(o, key), *e;
	const char *s;
	char buf[32], p[48];
	size_t i;

	if (v == NULL || json_is_null(v))
		return 0;
	path(p, sizeof p, where, key);
	if (single && json_is_string(v)) {
		if ((s = scalar(v, buf, sizeof buf)) == NULL ||
		    strlen(s) > VALUE_MAX)
			return fail(c, "%s: must be a string of at most %d "
			    "bytes without NUL", p, VALUE_MAX);
		strvec_add(out, s);
		return 0;
	}
	if (!json_is_array(v))
		return fail(c, "%s: must be a list of strings", p);
	if (json_array_size(v) > LIST_MAX)
		return fail(c, "%s: more than %d entries", p, LIST_MAX);
	json_array_foreach(v, i, e) {
		if ((s = scalar(e, buf, sizeof buf)) == NULL)
			return fail(c, "%s: must be a list of strings", p);
		if (strlen(s) > VALUE_MAX)
			return fail(c, "%s[%zu]: longer than %d bytes", p, i,
			    VALUE_MAX);
		if (!unique || !strvec_has(out, s))
			strvec_add(out, s);
	}
	return 0;
}

static bool
env_name_ok(const char *s, size_t n)
{
	static const char ok[] = "_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789";

	/* A shell name: letters, digits, '_', not starting with a digit. */
	if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
			return false;
	return true;
}

/* `env: [NAME=VALUE, ...]` into obj, later entries winning. */
static int
get_env(struct conv *c, const json_t *o, const char *where, json_t *obj)
{
	struct strvec l = { 0 };
	char p[48], q[68];
	int rc = -1;

	path(p, sizeof p, where, "env");
	if (get_list(c, o, where, "env", false, false, &l) != 0)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		char *eq = strchr(l.v[i], '=');
		size_t n = eq ? (size_t)(eq - l.v[i]) : 0;

		if (!env_name_ok(l.v[i], n)) {
			fail(c, "%s[%zu]: '%s' is not NAME=VALUE", p, i,
			    clean(q, sizeof q, l.v[i]));
			goto out;
		}
		*eq = '\0';
		/* The farm owns its own variables. */
		if (strncmp(l.v[i], "KILN_", 5) == 0) {
			fail(c, "%s[%zu]: %s is set by kiln and cannot be "
			    "overridden", p, i, clean(q, sizeof q, l.v[i]));
			goto out;
		}
		json_object_set_new(obj, l.v[i], json_string(eq + 1));
	}
	if (json_object_size(obj) > LIST_MAX) {
		fail(c, "%s: more than %d variables", p, LIST_MAX);
		goto out;
	}
	rc = 0;
out:
	strvec_free(&l);
	return rc;
}

/* Go's default for a per-architecture key, "" when it does not apply. */
static const char *
fixed_value(const struct fixed *f, const char *arch)
{
	char w[24];

	snprintf(w, sizeof w, " %s ", arch);
	return strstr(f->arches, w) != NULL ? f->dflt : "";
}

static int
get_ignores(struct conv *c, const json_t *b, const char *where,
    struct ignore **out, size_t *nout)
{
	json_t *l = json_object_get(b, "ignore"), *e, *v;
	struct ignore *ig = NULL;
	const char *k, *s;
	char buf[32], q[68];
	size_t i, n = 0;

	*out = NULL;
	*nout = 0;
	if (l == NULL || json_is_null(l))
		return 0;
	if (!json_is_array(l) || json_array_size(l) > IGNORE_MAX)
		return fail(c, "%s.ignore: must be a list of at most %d "
		    "mappings", where, IGNORE_MAX);
	ig = xcalloc(json_array_size(l) + 1, sizeof *ig);
	json_array_foreach(l, i, e) {
		if (!json_is_object(e)) {
			fail(c, "%s.ignore[%zu]: must be a mapping", where, i);
			goto bad;
		}
		n++;
		json_object_foreach(e, k, v) {
			size_t f;

			for (f = 0; f < NIGNORE_KEYS; f++)
				if (strcmp(k, ignore_keys[f]) == 0)
					break;
			if (f == NIGNORE_KEYS) {
				fail(c, "%s.ignore[%zu]: unknown key '%s'",
				    where, i, clean(q, sizeof q, k));
				goto bad;
			}
			if (json_is_null(v))
				continue;
			if ((s = scalar(v, buf, sizeof buf)) == NULL ||
			    strlen(s) > 64) {
				fail(c, "%s.ignore[%zu].%s: must be a string",
				    where, i, k);
				goto bad;
			}
			ig[i].f[f] = xstrdup(s);
		}
	}
	*out = ig;
	*nout = n;
	return 0;
bad:
	for (i = 0; i <= n; i++)
		for (size_t f = 0; f < NIGNORE_KEYS; f++)
			free(ig[i].f[f]);
	free(ig);
	return -1;
}

static void
ignores_free(struct ignore *ig, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t f = 0; f < NIGNORE_KEYS; f++)
			free(ig[i].f[f]);
	free(ig);
}

/* GoReleaser's rule: an entry matches when every key it sets matches. */
static bool
is_ignored(const struct ignore *ig, size_t n, const char *os,
    const char *arch, const char *arm, const char *amd64)
{
	const char *have[NIGNORE_KEYS] = { os, arch, arm, amd64 };

	for (size_t f = 0; f < NFIXED; f++)
		have[4 + f] = fixed_value(&fixed[f], arch);
	for (size_t i = 0; i < n; i++) {
		size_t f;

		for (f = 0; f < NIGNORE_KEYS; f++)
			if (ig[i].f[f] != NULL &&
			    strcmp(ig[i].f[f], have[f]) != 0)
				break;
		if (f == NIGNORE_KEYS)
			return true;
	}
	return false;
}

/*
 * Add os/arch with GoReleaser's variant (goarm "7" or "7,softfloat",
 * goamd64 "v3") to the build's targets under its kiln name.
 */
static void
add_target(struct conv *c, const char *where, const char *os,
    const char *arch, const char *variant, struct strvec *tg)
{
	char name[64], terr[160], q[68];
	struct target t;

	if (strcmp(arch, "arm") == 0) {
		const char *abi = strchr(variant, ',');

		/* GOARM=5 is soft-float anyway; 6 and 7 build hard-float. */
		if (abi != NULL && strcmp(abi, ",softfloat") == 0 &&
		    variant[0] != '5') {
			note(c, "%s: %s/arm with goarm %s: kiln builds "
			    "hard-float arm only, skipped", where,
			    clean(q, sizeof q, os), variant);
			return;
		}
		snprintf(name, sizeof name, "%s/arm/v%c", os, variant[0]);
	} else if (strcmp(arch, "amd64") == 0)
		snprintf(name, sizeof name, "%s/amd64/%s", os, variant);
	else
		snprintf(name, sizeof name, "%s/%s", os, arch);
	if (target_parse(&t, name, terr, sizeof terr) != 0) {
		note(c, "%s: %s; skipped", where, terr);
		return;
	}
	if (!strvec_has(tg, t.name))
		strvec_add(tg, t.name);
}

/* One entry of `targets:` ("linux_arm_7", "darwin_arm64", ...). */
static int
explicit_target(struct conv *c, const char *where, const char *s,
    struct strvec *tg)
{
	char buf[64], q[68], *os, *arch, *extra;
	const char *variant = "";

	if (strcmp(s, "go_first_class") == 0 ||
	    strcmp(s, "go_118_first_class") == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(first_class); i++)
			if (explicit_target(c, where, first_class[i], tg) != 0)
				return -1;
		return 0;
	}
	if (strlen(s) >= sizeof buf)
		goto bad;
	strcpy(buf, s);
	os = buf;
	if ((arch = strchr(os, '_')) == NULL)
		goto bad;
	*arch++ = '\0';
	if ((extra = strchr(arch, '_')) != NULL)
		*extra++ = '\0';
	if (!IN(gr_goos, os) || !IN(gr_goarch, arch) ||
	    (extra != NULL && (*extra == '\0' || strchr(extra, '_'))))
		goto bad;
	if (strcmp(arch, "arm") == 0) {
		variant = extra ? extra : "6";	/* GoReleaser's default */
		if (!IN(goarm_values, variant))
			return fail(c, "%s.targets: '%s': goarm must be 5, 6 "
			    "or 7 (with ,softfloat or ,hardfloat)", where,
			    clean(q, sizeof q, s));
	} else if (strcmp(arch, "amd64") == 0) {
		variant = extra ? extra : "v1";
		if (!IN(goamd64_values, variant))
			return fail(c, "%s.targets: '%s': goamd64 must be v1, "
			    "v2, v3 or v4", where, clean(q, sizeof q, s));
	} else if (extra != NULL) {
		size_t f;

		for (f = 0; f < NFIXED; f++)
			if (*fixed_value(&fixed[f], arch) != '\0')
				break;
		if (f == NFIXED)
			goto bad;
		if (strcmp(extra, fixed[f].dflt) != 0) {
			note(c, "%s.targets: %s: kiln builds Go's default %s "
			    "(%s) only, skipped", where, clean(q, sizeof q, s),
			    fixed[f].key, fixed[f].dflt);
			return 0;
		}
	}
	add_target(c, where, os, arch, variant, tg);
	return 0;
bad:
	return fail(c, "%s.targets: '%s' is not a GoReleaser target "
	    "(os_arch or os_arch_variant)", where, clean(q, sizeof q, s));
}

/* A list checked against the values GoReleaser accepts. */
static int
get_checked(struct conv *c, const json_t *b, const char *where,
    const char *key, const char *const *ok, size_t nok, const char *what,
    const char *const *dflt, size_t ndflt, struct strvec *out)
{
	char q[68];

	if (get_list(c, b, where, key, false, true, out) != 0)
		return -1;
	for (size_t i = 0; i < out->n; i++)
		if (!in_list(ok, nok, out->v[i]))
			return fail(c, "%s.%s: '%s' is not %s", where, key,
			    clean(q, sizeof q, out->v[i]), what);
	if (out->n == 0)
		for (size_t i = 0; i < ndflt; i++)
			strvec_add(out, dflt[i]);
	return 0;
}

/* goos x goarch x goarm/goamd64, minus `ignore` and invalid pairs. */
static int
matrix(struct conv *c, const json_t *b, const char *where,
    struct strvec *tg)
{
	static const char *const dflt_goarm[] = { "6" };
	static const char *const dflt_goamd64[] = { "v1" };
	static const char *const none[] = { "" };
	struct strvec goos = { 0 }, goarch = { 0 }, goarm = { 0 },
	    goamd64 = { 0 };
	struct ignore *ig = NULL;
	size_t nig = 0;
	char pair[64];
	int rc = -1;

	if (get_checked(c, b, where, "goos", gr_goos, ARRAY_SIZE(gr_goos),
	    "an operating system GoReleaser knows", default_goos,
	    ARRAY_SIZE(default_goos), &goos) != 0 ||
	    get_checked(c, b, where, "goarch", gr_goarch,
	    ARRAY_SIZE(gr_goarch), "an architecture GoReleaser knows",
	    default_goarch, ARRAY_SIZE(default_goarch), &goarch) != 0 ||
	    get_checked(c, b, where, "goarm", goarm_values,
	    ARRAY_SIZE(goarm_values), "5, 6 or 7 (with ,softfloat or "
	    ",hardfloat)", dflt_goarm, 1, &goarm) != 0 ||
	    get_checked(c, b, where, "goamd64", goamd64_values,
	    ARRAY_SIZE(goamd64_values), "v1, v2, v3 or v4", dflt_goamd64, 1,
	    &goamd64) != 0 ||
	    get_ignores(c, b, where, &ig, &nig) != 0)
		goto out;
	for (size_t o = 0; o < goos.n; o++)
		for (size_t a = 0; a < goarch.n; a++) {
			const char *os = goos.v[o], *arch = goarch.v[a];
			bool arm = strcmp(arch, "arm") == 0;
			bool amd64 = strcmp(arch, "amd64") == 0;
			const char *const *var = arm ? (const char *const *)
			    goarm.v : amd64 ? (const char *const *)goamd64.v :
			    none;
			size_t nvar = arm ? goarm.n : amd64 ? goamd64.n : 1;

			snprintf(pair, sizeof pair, "%s/%s", os, arch);
			if (!IN(gr_pairs, pair))
				continue;
			for (size_t i = 0; i < nvar; i++)
				if (!is_ignored(ig, nig, os, arch,
				    arm ? var[i] : "", amd64 ? var[i] : ""))
					add_target(c, where, os, arch, var[i],
					    tg);
		}
	rc = 0;
out:
	ignores_free(ig, nig);
	strvec_free(&goos);
	strvec_free(&goarch);
	strvec_free(&goarm);
	strvec_free(&goamd64);
	return rc;
}

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

/* Keys of a build that this file reads. */
static const char *const build_keys[] = {
	"id", "main", "dir", "binary", "goos", "goarch", "goarm", "goamd64",
	"ignore", "env", "flags", "ldflags", "tags", "skip", "disable",
	"builder", "targets",
};

/* Report the keys of build b that kiln does not act on. */
static void
note_build_keys(struct conv *c, const json_t *b, const char *where)
{
	static const char *const matrix_keys[] = { "goos", "goarch", "goarm",
	    "goamd64", "ignore" };
	bool explicit = json_object_get(b, "targets") != NULL &&
	    !json_is_null(json_object_get(b, "targets"));
	const char *k;
	json_t *v;
	char q[68];

	json_object_foreach((json_t *)b, k, v) {
		size_t f;

		if (explicit && IN(matrix_keys, k)) {
			note(c, "%s.%s: ignored because %s.targets is set",
			    where, k, where);
			continue;
		}
		if (IN(build_keys, k))
			continue;
		for (f = 0; f < NFIXED; f++)
			if (strcmp(k, fixed[f].key) == 0)
				break;
		if (f < NFIXED)
			note(c, "%s.%s: kiln builds Go's default (%s) only, "
			    "ignored", where, k, fixed[f].dflt);
		else
			note(c, "%s.%s: not supported by kiln, ignored", where,
			    clean(q, sizeof q, k));
	}
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
		return fail(c, "%s: must be a mapping", where);
	if (get_bool(c, b, where, "skip", &skip) != 0 ||
	    get_bool(c, b, where, "disable", &disable) != 0 ||
	    get_string(c, b, where, "id", &id) != 0)
		goto out;
	if (id == NULL || *id == '\0') {
		free(id);
		id = xstrdup(project);
	}
	/* As GoReleaser: two builds without an id clash too. */
	if (json_object_get(ids, id) != NULL) {
		fail(c, "%s.id: '%s' is the id of an earlier build too", where,
		    clean(q, sizeof q, id));
		goto out;
	}
	json_object_set_new(ids, id, json_true());
	if (skip || disable) {
		note(c, "%s: %s is set, not built", where,
		    skip ? "skip" : "disable");
		rc = 0;
		goto out;
	}
	if (get_string(c, b, where, "builder", &builder) != 0)
		goto out;
	if (builder != NULL && strcmp(builder, "go") != 0) {
		fail(c, "%s.builder: '%s' is not supported (kiln builds Go "
		    "only)", where, clean(q, sizeof q, builder));
		goto out;
	}
	note_build_keys(c, b, where);

	if (get_string(c, b, where, "main", &main_) != 0 ||
	    get_string(c, b, where, "dir", &dir) != 0 ||
	    get_string(c, b, where, "binary", &binary) != 0)
		goto out;
	if (main_ != NULL && main_[0] == '-') {
		fail(c, "%s.main: '%s' must not start with '-'", where,
		    clean(q, sizeof q, main_));
		goto out;
	}
	if (dir != NULL && !clean_dir(dir)) {
		fail(c, "%s.dir: '%s' is not a relative directory inside the "
		    "repository", where, clean(q, sizeof q, dir));
		goto out;
	}

	env = json_deep_copy(genv);
	if (get_env(c, b, where, env) != 0 ||
	    get_list(c, b, where, "flags", true, false, &flags) != 0 ||
	    get_list(c, b, where, "tags", true, true, &tags) != 0 ||
	    get_list(c, b, where, "ldflags", true, false, &ldf) != 0)
		goto out;
	/* An empty list takes the default, as in GoReleaser; "" does not. */
	if (ldf.n == 0)
		ld = xstrdup(default_ldflags);
	else {
		size_t len = 0;

		for (size_t i = 0; i < ldf.n; i++)
			len += strlen(ldf.v[i]) + 1;
		if (len > LDFLAGS_MAX) {
			fail(c, "%s.ldflags: longer than %d bytes", where,
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
			fail(c, "%s.tags[%zu]: must not be empty", where, i);
			goto out;
		}

	o = json_object_get(b, "targets");
	if (o != NULL && !json_is_null(o)) {
		if (get_list(c, b, where, "targets", false, true, &tl) != 0)
			goto out;
		for (size_t i = 0; i < tl.n; i++)
			if (explicit_target(c, where, tl.v[i], &tg) != 0)
				goto out;
	} else if (matrix(c, b, where, &tg) != 0)
		goto out;
	if (tg.n == 0) {
		note(c, "%s: no target left to build, not built", where);
		rc = 0;
		goto out;
	}
	qsort(tg.v, tg.n, sizeof *tg.v, cmp_str);
	for (size_t i = 0; i < tg.n; i++)
		if (!strvec_has(&c->targets, tg.v[i]))
			strvec_add(&c->targets, tg.v[i]);

	cgo = json_string_value(json_object_get(env, "CGO_ENABLED"));
	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:O, s:b, s:o}",
	    "id", id, "package", main_ && *main_ ? main_ : ".",
	    "name", binary && *binary ? binary : project, "ldflags", ld,
	    "flags", strvec_json(&flags), "tags", strvec_json(&tags),
	    "env", env, "cgo", cgo != NULL && strcmp(cgo, "1") == 0,
	    "targets", strvec_json(&tg));
	if (o == NULL) {
		fail(c, "%s: cannot encode the build", where);
		goto out;
	}
	if (dir != NULL && strcmp(dir, ".") != 0)
		json_object_set_new(o, "dir", json_string(dir));
	json_array_append_new(builds, o);
	rc = 0;
out:
	strvec_free(&flags);
	strvec_free(&tags);
	strvec_free(&ldf);
	strvec_free(&tl);
	strvec_free(&tg);
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
	    "env", "builds" };
	const char *k, *k2;
	json_t *v, *v2;
	char q[68];

	json_object_foreach((json_t *)doc, k, v) {
		if (IN(known, k))
			continue;
		if (strcmp(k, "before") != 0 || !json_is_object(v)) {
			note(c, "%s: not used by kiln's build step, ignored",
			    clean(q, sizeof q, k));
			continue;
		}
		json_object_foreach(v, k2, v2) {
			(void)v2;
			if (strcmp(k2, "hooks") == 0)
				note(c, "before.hooks: kiln runs no hooks (a "
				    "build runs only go build), ignored");
			else
				note(c, "before.%s: not used by kiln's build "
				    "step, ignored", clean(q, sizeof q, k2));
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
		fail(&c, "the file is not a YAML mapping");
		goto out;
	}
	v = json_object_get(doc, "version");
	if (v != NULL && !json_is_null(v)) {
		char buf[32];
		const char *s = scalar(v, buf, sizeof buf);

		if (s == NULL || (strcmp(s, "1") != 0 && strcmp(s, "2") != 0)) {
			fail(&c, "version: '%s' is not supported (kiln reads "
			    "GoReleaser's versions 1 and 2)",
			    s ? clean(q, sizeof q, s) : "?");
			goto out;
		}
	}
	if (get_string(&c, doc, NULL, "project_name", &project) != 0)
		goto out;
	if (project == NULL || *project == '\0') {
		free(project);
		project = xstrdup(repo_name && *repo_name ? repo_name : "app");
	}
	note_top_keys(&c, doc);
	/* The top-level env applies to every build, under its own. */
	if (get_env(&c, doc, NULL, genv) != 0)
		goto out;

	bl = json_object_get(doc, "builds");
	if (bl == NULL || json_is_null(bl) ||
	    (json_is_array(bl) && json_array_size(bl) == 0)) {
		if (convert_build(&c, empty, 0, project, genv, ids,
		    builds) != 0)
			goto out;
	} else if (!json_is_array(bl)) {
		fail(&c, "builds: must be a list");
		goto out;
	} else if (json_array_size(bl) > GORELEASER_MAX_BUILDS) {
		fail(&c, "builds: more than %d builds", GORELEASER_MAX_BUILDS);
		goto out;
	} else {
		json_array_foreach(bl, i, v)
			if (convert_build(&c, v, i, project, genv, ids,
			    builds) != 0)
				goto out;
	}
	if (json_array_size(builds) == 0) {
		fail(&c, "no build to run: every build is skipped or has no "
		    "target kiln can build");
		goto out;
	}

	recipe = json_pack("{s:s, s:s, s:O}", "kind", "go", "project_name",
	    project, "builds", builds);
	if (recipe == NULL ||
	    (out->recipe = json_dumps(recipe, JSON_COMPACT |
	    JSON_SORT_KEYS)) == NULL) {
		fail(&c, "cannot encode the recipe");
		goto out;
	}
	qsort(c.targets.v, c.targets.n, sizeof *c.targets.v, cmp_str);
	out->targets = c.targets.v;
	out->ntargets = c.targets.n;
	memset(&c.targets, 0, sizeof c.targets);
	if (c.more > 0) {
		char buf[96];

		snprintf(buf, sizeof buf, "%zu more keys or targets ignored, "
		    "not listed", c.more);
		strvec_add(&c.ignored, buf);
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
	strvec_free(&c.ignored);
	strvec_free(&c.targets);
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
	for (size_t i = 0; i < r->nignored; i++)
		free(r->ignored[i]);
	free(r->ignored);
	free(r->recipe);
	memset(r, 0, sizeof *r);
}
