#include "config.h"

#include <stdio.h>
#include <string.h>

#include "target.h"
#include "util.h"

/* go1.19 `go tool dist list`, less the android and ios ports (cgo). */
static const char *const pairs[] = {
	"aix/ppc64", "darwin/amd64", "darwin/arm64", "dragonfly/amd64",
	"freebsd/386", "freebsd/amd64", "freebsd/arm", "freebsd/arm64",
	"illumos/amd64", "js/wasm", "linux/386", "linux/amd64", "linux/arm",
	"linux/arm64", "linux/loong64", "linux/mips", "linux/mips64",
	"linux/mips64le", "linux/mipsle", "linux/ppc64", "linux/ppc64le",
	"linux/riscv64", "linux/s390x", "netbsd/386", "netbsd/amd64",
	"netbsd/arm", "netbsd/arm64", "openbsd/386", "openbsd/amd64",
	"openbsd/arm", "openbsd/arm64", "openbsd/mips64", "plan9/386",
	"plan9/amd64", "plan9/arm", "solaris/amd64", "windows/386",
	"windows/amd64", "windows/arm", "windows/arm64",
};

size_t
target_pair_count(void)
{
	return ARRAY_SIZE(pairs);
}

const char *
target_pair(size_t i)
{
	return i < ARRAY_SIZE(pairs) ? pairs[i] : NULL;
}

static int
known_pair(const char *os, const char *arch)
{
	char buf[32];

	if (snprintf(buf, sizeof buf, "%s/%s", os, arch) >= (int)sizeof buf)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++)
		if (strcmp(pairs[i], buf) == 0)
			return 1;
	return 0;
}

/* Copy one separator-delimited part; -1 when it does not fit. */
static int
take_part(char *dst, size_t size, const char **sp, char sep)
{
	const char *s = *sp, *end = strchr(s, sep);
	size_t n = end ? (size_t)(end - s) : strlen(s);

	if (n >= size)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	*sp = end ? end + 1 : s + n;
	return end ? 1 : 0;
}

static int
parse_sep(struct target *out, const char *s, char sep, char *err,
    size_t errsize)
{
	struct target t;
	const char *p = s;
	int more;

	memset(&t, 0, sizeof t);
	if (strlen(s) >= TARGET_NAME_MAX) {
		snprintf(err, errsize, "target is too long (at most %d characters)",
		    TARGET_NAME_MAX - 1);
		return -1;
	}
	if ((more = take_part(t.os, sizeof t.os, &p, sep)) <= 0 ||
	    (more = take_part(t.arch, sizeof t.arch, &p, sep)) < 0 ||
	    (more == 1 && take_part(t.variant, sizeof t.variant, &p, sep) != 0) ||
	    t.os[0] == '\0' || t.arch[0] == '\0' ||
	    (more == 1 && t.variant[0] == '\0')) {
		snprintf(err, errsize,
		    "malformed target '%s': expected os%carch or os%carch%cvariant",
		    s, sep, sep, sep);
		return -1;
	}
	if (!known_pair(t.os, t.arch)) {
		if ((strcmp(t.os, "android") == 0 || strcmp(t.os, "ios") == 0))
			snprintf(err, errsize,
			    "target '%s' is not buildable: %s needs cgo", s, t.os);
		else
			snprintf(err, errsize,
			    "unknown target '%s': %s/%s is not a Go os/arch pair",
			    s, t.os, t.arch);
		return -1;
	}
	if (strcmp(t.arch, "arm") == 0) {
		if (t.variant[0] == '\0')
			strcpy(t.variant, "v7");	/* OCI: arm means arm/v7 */
		else if (strcmp(t.variant, "v5") != 0 &&
		    strcmp(t.variant, "v6") != 0 && strcmp(t.variant, "v7") != 0) {
			snprintf(err, errsize,
			    "unknown variant '%s' for %s/arm: expected v5, v6 or v7",
			    t.variant, t.os);
			return -1;
		}
	} else if (strcmp(t.arch, "amd64") == 0) {
		if (strcmp(t.variant, "v1") == 0)
			t.variant[0] = '\0';		/* v1 is the default */
		else if (t.variant[0] != '\0' && strcmp(t.variant, "v2") != 0 &&
		    strcmp(t.variant, "v3") != 0 && strcmp(t.variant, "v4") != 0) {
			snprintf(err, errsize,
			    "unknown variant '%s' for %s/amd64: expected v1, v2, v3 or v4",
			    t.variant, t.os);
			return -1;
		}
	} else if (t.variant[0] != '\0') {
		snprintf(err, errsize, "target '%s': %s has no variants", s,
		    t.arch);
		return -1;
	}
	if (t.variant[0] != '\0')
		snprintf(t.name, sizeof t.name, "%s/%s/%s", t.os, t.arch,
		    t.variant);
	else
		snprintf(t.name, sizeof t.name, "%s/%s", t.os, t.arch);
	*out = t;
	return 0;
}

int
target_parse(struct target *out, const char *s, char *err, size_t errsize)
{
	return parse_sep(out, s, '/', err, errsize);
}

int
target_parse_url(struct target *out, const char *s, char *err, size_t errsize)
{
	return parse_sep(out, s, '_', err, errsize);
}

static int
release_row(struct target *out, const char *s)
{
	if (strcmp(s, TARGET_RELEASE) != 0)
		return -1;
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", TARGET_RELEASE);
	return 0;
}

int
target_parse_row(struct target *out, const char *s, char *err,
    size_t errsize)
{
	return release_row(out, s) == 0 ? 0 : target_parse(out, s, err,
	    errsize);
}

int
target_parse_url_row(struct target *out, const char *s, char *err,
    size_t errsize)
{
	return release_row(out, s) == 0 ? 0 : target_parse_url(out, s, err,
	    errsize);
}

void
target_url_name(char *buf, const struct target *t)
{
	size_t i;

	for (i = 0; t->name[i] != '\0' && i < TARGET_NAME_MAX - 1; i++)
		buf[i] = t->name[i] == '/' ? '_' : t->name[i];
	buf[i] = '\0';
}

const char *
target_goarm(const struct target *t)
{
	if (strcmp(t->arch, "arm") != 0)
		return "";
	return t->variant + 1;	/* "v7" -> "7" */
}

const char *
target_goamd64(const struct target *t)
{
	if (strcmp(t->arch, "amd64") != 0)
		return "";
	return t->variant[0] ? t->variant : "v1";
}
