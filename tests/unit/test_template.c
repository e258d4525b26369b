/*
 * GoReleaser-style templates (daemon/template.c): every name, Go's
 * whitespace trim markers, refusals that name the action, {{.Env.X}}
 * read from the recipe only, and the version fields from a tag.
 */
#include "config.h"

#include <stdlib.h>

#include "daemon/template.h"
#include "unit.h"

#define COMMIT "0123456789abcdef0123456789abcdef01234567"

/* The recipe's env (kept for the whole run, so still reachable). */
static json_t *env;

static struct template_vars
vars(void)
{
	if (env == NULL)
		env = json_pack("{s:s, s:i}", "GREETING", "hello world",
		    "NUMBER", 4);
	struct template_vars v = {
		.project_name = "kiln",
		.version = "1.2.3-rc.1",
		.raw_version = "1.2.3",
		.tag = "v1.2.3-rc.1",
		.commit = COMMIT,
		.branch = "main",
		.commit_time = 1796017724,	/* 2026-11-30T05:48:44Z */
		.os = "linux",
		.arch = "arm",
		.arm = "7",
		.amd64 = "",
		.is_snapshot = false,
		.env = env,
	};
	return v;
}

/* Expand `in` and expect `want`. */
static void
expect(const char *in, const char *want)
{
	struct template_vars v = vars();
	char err[256] = "";
	char *out = template_expand(in, &v, err, sizeof err);

	if (out == NULL)
		fprintf(stderr, "  template_expand(\"%s\"): %s\n", in, err);
	CHECK_STR(out, want);
	free(out);
}

/* Expect a refusal whose message contains `why`. */
static void
expect_error(const char *in, const char *why)
{
	struct template_vars v = vars();
	char err[256] = "";
	char *out = template_expand(in, &v, err, sizeof err);

	CHECK(out == NULL);
	free(out);
	if (strstr(err, why) == NULL) {
		fprintf(stderr, "  template_expand(\"%s\"): \"%s\" lacks "
		    "\"%s\"\n", in, err, why);
		CHECK(0);
	}
}

static void
every_name_expands(void)
{
	expect("{{.Version}}", "1.2.3-rc.1");
	expect("{{.RawVersion}}", "1.2.3");
	expect("{{.Tag}}", "v1.2.3-rc.1");
	expect("{{.Commit}}", COMMIT);
	expect("{{.FullCommit}}", COMMIT);
	expect("{{.ShortCommit}}", "0123456");
	expect("{{.Branch}}", "main");
	expect("{{.CommitDate}}", "2026-11-30T05:48:44Z");
	/* The commit time, not the build time: reproducible. */
	expect("{{.Date}}", "2026-11-30T05:48:44Z");
	expect("{{.CommitTimestamp}}", "1796017724");
	expect("{{.Timestamp}}", "1796017724");
	expect("{{.Os}}", "linux");
	expect("{{.Arch}}", "arm");
	expect("{{.Arm}}", "7");
	expect("{{.Amd64}}", "");
	expect("{{.ProjectName}}", "kiln");
	expect("{{.IsSnapshot}}", "false");
	expect("{{.Env.GREETING}}", "hello world");
	expect("-s -w -X main.version={{.Version}} -X main.commit={{.Commit}} "
	    "-X main.date={{.Date}} -X main.builtBy=goreleaser",
	    "-s -w -X main.version=1.2.3-rc.1 -X main.commit=" COMMIT
	    " -X main.date=2026-11-30T05:48:44Z -X main.builtBy=goreleaser");
	expect("{{.Os}}_{{.Arch}}v{{.Arm}}", "linux_armv7");
}

static void
snapshot_and_missing_values(void)
{
	struct template_vars v = vars();
	char err[128];
	char *out;

	v.is_snapshot = true;
	v.branch = NULL;	/* NULL reads as "" */
	v.commit_time = 0;
	out = template_expand("{{.IsSnapshot}}/{{.Branch}}/{{.Date}}", &v,
	    err, sizeof err);
	CHECK_STR(out, "true//1970-01-01T00:00:00Z");
	free(out);
	v.commit_time = INT64_MAX;
	out = template_expand("{{.Date}}", &v, err, sizeof err);
	CHECK(out == NULL);
	CHECK(strstr(err, "{{.Date}}") != NULL);
	free(out);
}

static void
plain_text_is_unchanged(void)
{
	expect("", "");
	expect("-s -w", "-s -w");
	expect("a } b }} c { d", "a } b }} c { d");
	expect("naïve ✓", "naïve ✓");
}

static void
whitespace_and_trim_markers(void)
{
	expect("{{ .Version }}", "1.2.3-rc.1");
	expect("{{\t.Os\n}}", "linux");
	expect("v={{ .Version }} ", "v=1.2.3-rc.1 ");
	/* Go trims the text beside a marker, all of its whitespace (each
	 * case here checked against Go 1.19's text/template). */
	expect("a  \n\t{{- .Os }}", "alinux");
	expect("{{ .Os -}} \n b", "linuxb");
	expect("a {{- .Os -}} b", "alinuxb");
	expect("{{.Os}} {{- .Arch}}", "linuxarm");
	expect("x{{-\n.Os}}", "xlinux");
	expect("{{.Os -}}\n\n{{- .Arch}}", "linuxarm");
	/* Only the neighbouring text is trimmed, never a value. */
	expect("{{.Amd64}} {{- .Os}}", "linux");
	/* "{{-3}}" is no trim marker (Go reads a number there). */
	expect_error("{{-3}}", "unsupported template {{-3}}");
	expect_error("{{.Os-}}", "unsupported template {{.Os-}}");
}

static void
unknown_and_unsupported_fail_naming_the_action(void)
{
	expect_error("x {{.Foo}} y", "unknown template {{.Foo}}");
	expect_error("{{ .version }}", "unknown template {{ .version }}");
	expect_error("{{.Git.Commit}}", "unknown template {{.Git.Commit}}");
	expect_error("{{ .Version | upper }}",
	    "unsupported template {{ .Version | upper }}");
	expect_error("{{ upper .Version }}",
	    "unsupported template {{ upper .Version }}");
	expect_error("{{ if .IsSnapshot }}x{{ end }}",
	    "unsupported template {{ if .IsSnapshot }}");
	expect_error("{{ .Env }}", "unsupported template {{ .Env }}");
	expect_error("{{}}", "unsupported template {{}}");
	expect_error("{{/* c */}}", "unsupported template {{/* c */}}");
	expect_error("{{ .Env.A.B }}", "unsupported template {{ .Env.A.B }}");
	/* The first failure is the one named. */
	expect_error("{{.Os}} {{.Bad1}} {{.Bad2}}", "{{.Bad1}}");
	expect_error("-X v={{.Version", "unterminated template {{.Version");
	expect_error("{{", "unterminated template {{");
}

static void
env_comes_from_the_recipe_only(void)
{
	struct template_vars v = vars();
	char err[256];
	char *out;

	/* Set in the daemon's environment, absent from the recipe's. */
	setenv("KILN_TEMPLATE_TEST_SECRET", "leaked", 1);
	expect_error("{{.Env.KILN_TEMPLATE_TEST_SECRET}}",
	    "unknown template {{.Env.KILN_TEMPLATE_TEST_SECRET}}: "
	    "KILN_TEMPLATE_TEST_SECRET is not in the recipe's env");
	expect_error("{{ .Env.HOME }}", "HOME is not in the recipe's env");
	v.env = NULL;
	out = template_expand("{{.Env.GREETING}}", &v, err, sizeof err);
	CHECK(out == NULL);
	CHECK(strstr(err, "GREETING is not in the recipe's env") != NULL);
	free(out);
	expect_error("{{.Env.NUMBER}}", "NUMBER is not a string");
}

static void
output_is_capped(void)
{
	struct template_vars v = vars();
	json_t *big = json_object();
	char *s = malloc(40001), err[128];
	char *out;

	memset(s, 'x', 40000);
	s[40000] = '\0';
	json_object_set_new(big, "BIG", json_string(s));
	v.env = big;
	out = template_expand("{{.Env.BIG}}", &v, err, sizeof err);
	CHECK(out != NULL && strlen(out) == 40000);
	free(out);
	out = template_expand("{{.Env.BIG}}{{.Env.BIG}}", &v, err, sizeof err);
	CHECK(out == NULL);
	CHECK(strstr(err, "longer than 65536 bytes") != NULL);
	free(out);
	json_decref(big);
	free(s);
}

static void
error_snippet_is_cut_at_a_character(void)
{
	struct template_vars v = vars();
	char in[300], err[256];
	char *out;

	/* 60 two-byte characters inside the action: the message cuts it
	 * without splitting one. */
	strcpy(in, "{{ .Foo");
	for (int i = 0; i < 60; i++)
		strcat(in, "é");
	strcat(in, " }}");
	out = template_expand(in, &v, err, sizeof err);
	CHECK(out == NULL);
	CHECK(strstr(err, "...") != NULL);
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p == 0xc3)
			CHECK((unsigned char)p[1] == 0xa9);
	free(out);
}

static void
version_from_a_tag(void)
{
	char ver[64], raw[32], tag[64];
	bool snap = false;

	template_version("v1.2.3", COMMIT, ver, sizeof ver, raw, sizeof raw,
	    tag, sizeof tag, &snap);
	CHECK_STR(ver, "1.2.3");
	CHECK_STR(raw, "1.2.3");
	CHECK_STR(tag, "v1.2.3");
	CHECK(!snap);

	template_version("refs/tags/v2.0.0-rc.1+meta", COMMIT, ver, sizeof ver,
	    raw, sizeof raw, tag, sizeof tag, &snap);
	CHECK_STR(ver, "2.0.0-rc.1+meta");
	CHECK_STR(raw, "2.0.0");
	CHECK_STR(tag, "v2.0.0-rc.1+meta");

	template_version("1.10", COMMIT, ver, sizeof ver, raw, sizeof raw,
	    tag, sizeof tag, &snap);
	CHECK_STR(ver, "1.10");
	CHECK_STR(raw, "1.10.0");
	CHECK_STR(tag, "1.10");

	template_version("release-7", COMMIT, ver, sizeof ver, raw, sizeof raw,
	    tag, sizeof tag, &snap);
	CHECK_STR(ver, "release-7");
	CHECK_STR(raw, "0.0.0");
	template_version("v1.2.3.4", COMMIT, ver, sizeof ver, raw, sizeof raw,
	    tag, sizeof tag, &snap);
	CHECK_STR(raw, "0.0.0");
	template_version("v1.2.x", COMMIT, ver, sizeof ver, raw, sizeof raw,
	    tag, sizeof tag, &snap);
	CHECK_STR(raw, "0.0.0");

	/* Untagged: a snapshot, as GoReleaser names one. */
	template_version(NULL, COMMIT, ver, sizeof ver, raw, sizeof raw, tag,
	    sizeof tag, &snap);
	CHECK_STR(ver, "0.0.0-SNAPSHOT-0123456");
	CHECK_STR(raw, "0.0.0");
	CHECK_STR(tag, "v0.0.0");
	CHECK(snap);
	snap = false;
	template_version("", COMMIT, ver, sizeof ver, raw, sizeof raw, tag,
	    sizeof tag, &snap);
	CHECK_STR(ver, "0.0.0-SNAPSHOT-0123456");
	CHECK(snap);
}

UNIT_MAIN(
	TEST(every_name_expands),
	TEST(snapshot_and_missing_values),
	TEST(plain_text_is_unchanged),
	TEST(whitespace_and_trim_markers),
	TEST(unknown_and_unsupported_fail_naming_the_action),
	TEST(env_comes_from_the_recipe_only),
	TEST(output_is_capped),
	TEST(error_snippet_is_cut_at_a_character),
	TEST(version_from_a_tag),
)
