/*
 * Which targets one build of a .goreleaser.yaml makes (goreleaser.h):
 * its goos x goarch x goarm/goamd64 matrix minus `ignore`, or its
 * explicit `targets:` list, checked against what GoReleaser accepts and
 * named as kiln names them; and the build keys kiln does not act on.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goreleaser.h"
#include "goreleaser-int.h"
#include "target.h"
#include "util.h"
#include "xmalloc.h"

/* GoReleaser v2's defaults (internal/builders/golang/build.go). */
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

struct ignore {
	char *f[NIGNORE_KEYS];	/* NULL: matches anything */
};

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
		return gr_fail(c, "%s.ignore: must be a list of at most %d "
		    "mappings", where, IGNORE_MAX);
	ig = xcalloc(json_array_size(l) + 1, sizeof *ig);
	json_array_foreach(l, i, e) {
		if (!json_is_object(e)) {
			gr_fail(c, "%s.ignore[%zu]: must be a mapping", where,
			    i);
			goto bad;
		}
		n++;
		json_object_foreach(e, k, v) {
			size_t f;

			for (f = 0; f < NIGNORE_KEYS; f++)
				if (strcmp(k, ignore_keys[f]) == 0)
					break;
			if (f == NIGNORE_KEYS) {
				gr_fail(c, "%s.ignore[%zu]: unknown key '%s'",
				    where, i, gr_clean(q, sizeof q, k));
				goto bad;
			}
			if (json_is_null(v))
				continue;
			if ((s = gr_scalar(v, buf, sizeof buf)) == NULL ||
			    strlen(s) > 64) {
				gr_fail(c, "%s.ignore[%zu].%s: must be a "
				    "string", where, i, k);
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
			gr_note(c, "%s: %s/arm with goarm %s: kiln builds "
			    "hard-float arm only, skipped", where,
			    gr_clean(q, sizeof q, os), variant);
			return;
		}
		snprintf(name, sizeof name, "%s/arm/v%c", os, variant[0]);
	} else if (strcmp(arch, "amd64") == 0)
		snprintf(name, sizeof name, "%s/amd64/%s", os, variant);
	else
		snprintf(name, sizeof name, "%s/%s", os, arch);
	if (target_parse(&t, name, terr, sizeof terr) != 0) {
		gr_note(c, "%s: %s; skipped", where, terr);
		return;
	}
	if (!gr_strvec_has(tg, t.name))
		gr_strvec_add(tg, t.name);
}

/* One entry of `targets:` ("linux_arm_7", "darwin_arm64", ...). */
int
gr_explicit_target(struct conv *c, const char *where, const char *s,
    struct strvec *tg)
{
	char buf[64], q[68], *os, *arch, *extra;
	const char *variant = "";

	if (strcmp(s, "go_first_class") == 0 ||
	    strcmp(s, "go_118_first_class") == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(first_class); i++)
			if (gr_explicit_target(c, where, first_class[i],
			    tg) != 0)
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
			return gr_fail(c, "%s.targets: '%s': goarm must be 5, "
			    "6 or 7 (with ,softfloat or ,hardfloat)", where,
			    gr_clean(q, sizeof q, s));
	} else if (strcmp(arch, "amd64") == 0) {
		variant = extra ? extra : "v1";
		if (!IN(goamd64_values, variant))
			return gr_fail(c, "%s.targets: '%s': goamd64 must be "
			    "v1, v2, v3 or v4", where,
			    gr_clean(q, sizeof q, s));
	} else if (extra != NULL) {
		size_t f;

		for (f = 0; f < NFIXED; f++)
			if (*fixed_value(&fixed[f], arch) != '\0')
				break;
		if (f == NFIXED)
			goto bad;
		if (strcmp(extra, fixed[f].dflt) != 0) {
			gr_note(c, "%s.targets: %s: kiln builds Go's default "
			    "%s (%s) only, skipped", where,
			    gr_clean(q, sizeof q, s), fixed[f].key,
			    fixed[f].dflt);
			return 0;
		}
	}
	add_target(c, where, os, arch, variant, tg);
	return 0;
bad:
	return gr_fail(c, "%s.targets: '%s' is not a GoReleaser target "
	    "(os_arch or os_arch_variant)", where, gr_clean(q, sizeof q, s));
}

/* A list checked against the values GoReleaser accepts. */
static int
get_checked(struct conv *c, const json_t *b, const char *where,
    const char *key, const char *const *ok, size_t nok, const char *what,
    const char *const *dflt, size_t ndflt, struct strvec *out)
{
	char q[68];

	if (gr_get_list(c, b, where, key, false, true, out) != 0)
		return -1;
	for (size_t i = 0; i < out->n; i++)
		if (!gr_in_list(ok, nok, out->v[i]))
			return gr_fail(c, "%s.%s: '%s' is not %s", where, key,
			    gr_clean(q, sizeof q, out->v[i]), what);
	if (out->n == 0)
		for (size_t i = 0; i < ndflt; i++)
			gr_strvec_add(out, dflt[i]);
	return 0;
}

/* goos x goarch x goarm/goamd64, minus `ignore` and invalid pairs. */
int
gr_matrix(struct conv *c, const json_t *b, const char *where,
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
	gr_strvec_free(&goos);
	gr_strvec_free(&goarch);
	gr_strvec_free(&goarm);
	gr_strvec_free(&goamd64);
	return rc;
}

/* Keys of a build that convert_build (goreleaser.c) reads. */
static const char *const build_keys[] = {
	"id", "main", "dir", "binary", "goos", "goarch", "goarm", "goamd64",
	"ignore", "env", "flags", "ldflags", "tags", "skip", "disable",
	"builder", "targets",
};

/* Report the keys of build b that kiln does not act on. */
void
gr_note_build_keys(struct conv *c, const json_t *b, const char *where)
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
			gr_note(c, "%s.%s: ignored because %s.targets is set",
			    where, k, where);
			continue;
		}
		if (IN(build_keys, k))
			continue;
		for (f = 0; f < NFIXED; f++)
			if (strcmp(k, fixed[f].key) == 0)
				break;
		if (f < NFIXED)
			gr_note(c, "%s.%s: kiln builds Go's default (%s) only, "
			    "ignored", where, k, fixed[f].dflt);
		else
			gr_note(c, "%s.%s: not supported by kiln, ignored",
			    where, gr_clean(q, sizeof q, k));
	}
}

