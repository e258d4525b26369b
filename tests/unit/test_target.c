/* Targets: parsing, normalization and rejection of os/arch[/variant]. */
#include "config.h"

#include <string.h>

#include "lib/target.h"
#include "unit.h"

/* go1.19 `go tool dist list` less the android and ios ports (cgo). */
static const char *const go119_pairs[] = {
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
#define NPAIRS (sizeof go119_pairs / sizeof go119_pairs[0])

/* Parse `s`; expect success and the normalized name `want`. */
static void
expect_ok(const char *s, const char *want)
{
	struct target t;
	char err[256] = "";

	memset(&t, 0x5a, sizeof t);
	if (target_parse(&t, s, err, sizeof err) != 0) {
		fprintf(stderr, "  target_parse(\"%s\") failed: %s\n", s, err);
		CHECK(0);
		return;
	}
	CHECK_STR(t.name, want);
}

/* Parse `s`; expect -1 and a reason containing `why` and `why2`. */
static void
expect_bad(int (*parse)(struct target *, const char *, char *, size_t),
    const char *s, const char *why, const char *why2)
{
	struct target t;
	char err[256] = "";
	int rc;

	strcpy(t.name, "untouched");
	rc = parse(&t, s, err, sizeof err);
	if (rc != -1)
		fprintf(stderr, "  parse(\"%s\") = %d, expected -1\n", s, rc);
	CHECK_INT(rc, -1);
	CHECK_STR(t.name, "untouched");
	if (strstr(err, why) == NULL || (why2 && strstr(err, why2) == NULL)) {
		fprintf(stderr, "  parse(\"%s\"): reason \"%s\" lacks \"%s\"%s%s\n",
		    s, err, why, why2 ? " / " : "", why2 ? why2 : "");
		CHECK(0);
	}
}

static void
test_every_go119_pair_parses(void)
{
	(void)unit_tmpdir;	/* no files here */
	CHECK_INT(NPAIRS, 40);
	CHECK_INT(target_pair_count(), 40);
	for (size_t i = 0; i < NPAIRS; i++) {
		struct target t;
		char err[256] = "", want[TARGET_NAME_MAX];
		const char *slash = strchr(go119_pairs[i], '/');

		CHECK_STR(target_pair(i), go119_pairs[i]);
		if (target_parse(&t, go119_pairs[i], err, sizeof err) != 0) {
			fprintf(stderr, "  %s: %s\n", go119_pairs[i], err);
			CHECK(0);
			continue;
		}
		/* arm alone means arm/v7 (OCI); everything else is as written. */
		snprintf(want, sizeof want, "%s%s", go119_pairs[i],
		    strcmp(slash + 1, "arm") == 0 ? "/v7" : "");
		CHECK_STR(t.name, want);
		CHECK(strncmp(t.os, go119_pairs[i], (size_t)(slash -
		    go119_pairs[i])) == 0);
		CHECK_INT(strlen(t.os), slash - go119_pairs[i]);
		CHECK_STR(t.arch, slash + 1);
	}
	CHECK(target_pair(NPAIRS) == NULL);
}

static void
test_components_are_split(void)
{
	struct target t;
	char err[256];

	CHECK_INT(target_parse(&t, "linux/arm/v6", err, sizeof err), 0);
	CHECK_STR(t.os, "linux");
	CHECK_STR(t.arch, "arm");
	CHECK_STR(t.variant, "v6");
	CHECK_STR(t.name, "linux/arm/v6");

	CHECK_INT(target_parse(&t, "windows/amd64", err, sizeof err), 0);
	CHECK_STR(t.os, "windows");
	CHECK_STR(t.arch, "amd64");
	CHECK_STR(t.variant, "");
	CHECK_STR(t.name, "windows/amd64");
}

static void
test_normalization(void)
{
	expect_ok("linux/arm", "linux/arm/v7");
	expect_ok("linux/arm/v7", "linux/arm/v7");
	expect_ok("linux/arm/v6", "linux/arm/v6");
	expect_ok("linux/arm/v5", "linux/arm/v5");
	expect_ok("freebsd/arm", "freebsd/arm/v7");
	expect_ok("linux/amd64/v1", "linux/amd64");
	expect_ok("linux/amd64", "linux/amd64");
	expect_ok("linux/amd64/v2", "linux/amd64/v2");
	expect_ok("linux/amd64/v3", "linux/amd64/v3");
	expect_ok("linux/amd64/v4", "linux/amd64/v4");
	expect_ok("darwin/amd64/v3", "darwin/amd64/v3");
	expect_ok("windows/amd64/v1", "windows/amd64");
}

static void
test_unknown_pair_rejected(void)
{
	expect_bad(target_parse, "linux/foo", "unknown target 'linux/foo'",
	    "not a Go os/arch pair");
	expect_bad(target_parse, "plan8/amd64", "unknown target", NULL);
	expect_bad(target_parse, "darwin/386", "unknown target", NULL);
	/* Case matters: GOOS values are lower case. */
	expect_bad(target_parse, "Linux/amd64", "unknown target 'Linux/amd64'",
	    NULL);
	expect_bad(target_parse, "linux/AMD64", "unknown target", NULL);
}

static void
test_cgo_ports_rejected(void)
{
	expect_bad(target_parse, "android/arm64", "needs cgo", "android");
	expect_bad(target_parse, "ios/arm64", "needs cgo", "ios");
	expect_bad(target_parse, "android/amd64", "needs cgo", NULL);
}

static void
test_bad_variant_rejected(void)
{
	expect_bad(target_parse, "linux/arm/v8", "unknown variant 'v8'",
	    "expected v5, v6 or v7");
	expect_bad(target_parse, "linux/arm/v4", "unknown variant 'v4'", NULL);
	expect_bad(target_parse, "linux/amd64/v5", "unknown variant 'v5'",
	    "expected v1, v2, v3 or v4");
	expect_bad(target_parse, "linux/amd64/v0", "unknown variant", NULL);
	expect_bad(target_parse, "linux/arm64/v8", "arm64 has no variants",
	    NULL);
	expect_bad(target_parse, "linux/386/v1", "386 has no variants", NULL);
	expect_bad(target_parse, "js/wasm/v1", "wasm has no variants", NULL);
}

static void
test_malformed_rejected(void)
{
	expect_bad(target_parse, "linux/", "malformed target 'linux/'", NULL);
	expect_bad(target_parse, "/amd64", "malformed target '/amd64'", NULL);
	expect_bad(target_parse, "linux//v7", "malformed", NULL);
	expect_bad(target_parse, "linux/arm/", "malformed", NULL);
	expect_bad(target_parse, "linux", "malformed", "os/arch");
	expect_bad(target_parse, "", "malformed", NULL);
	expect_bad(target_parse, "/", "malformed", NULL);
	/* Too many parts. */
	expect_bad(target_parse, "linux/arm/v7/x", "malformed", NULL);
	expect_bad(target_parse, "linux/amd64/v3/", "malformed", NULL);
	/* A part longer than its field. */
	expect_bad(target_parse, "linuxlinuxlinux/amd64", "malformed", NULL);
	expect_bad(target_parse, "linux/arm/v777", "malformed", NULL);
}

static void
test_too_long_rejected(void)
{
	char s[64];

	/* 32 characters: one more than fits. */
	memset(s, 'a', 32);
	s[32] = '\0';
	memcpy(s, "linux/", 6);
	expect_bad(target_parse, s, "too long", "31");
	/* 31 characters is not too long: it fails for another reason. */
	s[31] = '\0';
	{
		struct target t;
		char err[256] = "";
		CHECK_INT(target_parse(&t, s, err, sizeof err), -1);
		CHECK(strstr(err, "too long") == NULL);
	}
	memset(s, 'x', sizeof s - 1);
	s[sizeof s - 1] = '\0';
	expect_bad(target_parse_url, s, "too long", NULL);
}

static void
test_url_form(void)
{
	struct target t;
	char err[256] = "", buf[TARGET_NAME_MAX];

	CHECK_INT(target_parse_url(&t, "linux_arm_v7", err, sizeof err), 0);
	CHECK_STR(t.name, "linux/arm/v7");
	CHECK_INT(target_parse_url(&t, "linux_arm", err, sizeof err), 0);
	CHECK_STR(t.name, "linux/arm/v7");
	CHECK_INT(target_parse_url(&t, "linux_amd64_v1", err, sizeof err), 0);
	CHECK_STR(t.name, "linux/amd64");
	CHECK_INT(target_parse_url(&t, "windows_arm64", err, sizeof err), 0);
	CHECK_STR(t.name, "windows/arm64");
	CHECK_INT(target_parse_url(&t, "linux_mips64le", err, sizeof err), 0);
	CHECK_STR(t.name, "linux/mips64le");

	/* The URL form does not take slashes, nor the slash form '_'. */
	expect_bad(target_parse_url, "linux/amd64", "malformed", "os_arch");
	expect_bad(target_parse, "linux_amd64", "malformed", NULL);
	expect_bad(target_parse_url, "linux__v7", "malformed", NULL);
	expect_bad(target_parse_url, "linux_foo", "unknown target", NULL);
	expect_bad(target_parse_url, "linux_arm_v8", "unknown variant", NULL);

	CHECK_INT(target_parse(&t, "linux/arm/v6", err, sizeof err), 0);
	target_url_name(buf, &t);
	CHECK_STR(buf, "linux_arm_v6");
	CHECK_INT(target_parse(&t, "linux/arm", err, sizeof err), 0);
	target_url_name(buf, &t);
	CHECK_STR(buf, "linux_arm_v7");
	CHECK_INT(target_parse(&t, "darwin/arm64", err, sizeof err), 0);
	target_url_name(buf, &t);
	CHECK_STR(buf, "darwin_arm64");

	/* Round trip for every pair. */
	for (size_t i = 0; i < NPAIRS; i++) {
		struct target u;
		CHECK_INT(target_parse(&t, go119_pairs[i], err, sizeof err), 0);
		target_url_name(buf, &t);
		CHECK(strchr(buf, '/') == NULL);
		CHECK_INT(target_parse_url(&u, buf, err, sizeof err), 0);
		CHECK_STR(u.name, t.name);
	}
}

static void
test_goarm_goamd64(void)
{
	struct target t;
	char err[256];

	CHECK_INT(target_parse(&t, "linux/arm", err, sizeof err), 0);
	CHECK_STR(target_goarm(&t), "7");
	CHECK_STR(target_goamd64(&t), "");
	CHECK_INT(target_parse(&t, "linux/arm/v6", err, sizeof err), 0);
	CHECK_STR(target_goarm(&t), "6");
	CHECK_INT(target_parse(&t, "freebsd/arm/v5", err, sizeof err), 0);
	CHECK_STR(target_goarm(&t), "5");

	CHECK_INT(target_parse(&t, "linux/amd64", err, sizeof err), 0);
	CHECK_STR(target_goamd64(&t), "v1");
	CHECK_STR(target_goarm(&t), "");
	CHECK_INT(target_parse(&t, "linux/amd64/v1", err, sizeof err), 0);
	CHECK_STR(target_goamd64(&t), "v1");
	CHECK_INT(target_parse(&t, "linux/amd64/v3", err, sizeof err), 0);
	CHECK_STR(target_goamd64(&t), "v3");

	CHECK_INT(target_parse(&t, "linux/arm64", err, sizeof err), 0);
	CHECK_STR(target_goarm(&t), "");
	CHECK_STR(target_goamd64(&t), "");
	CHECK_INT(target_parse(&t, "linux/386", err, sizeof err), 0);
	CHECK_STR(target_goamd64(&t), "");
}

UNIT_MAIN(
	TEST(test_every_go119_pair_parses),
	TEST(test_components_are_split),
	TEST(test_normalization),
	TEST(test_unknown_pair_rejected),
	TEST(test_cgo_ports_rejected),
	TEST(test_bad_variant_rejected),
	TEST(test_malformed_rejected),
	TEST(test_too_long_rejected),
	TEST(test_url_form),
	TEST(test_goarm_goamd64)
)
