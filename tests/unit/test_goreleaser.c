/*
 * .goreleaser.yaml to a kiln recipe (lib/goreleaser.c), each file
 * written here as YAML and read with yaml_to_json as kiln reads one:
 * a realistic version 2 file, an old unversioned one, GoReleaser's
 * defaults, the target matrix (goarm, goamd64, ignore, explicit
 * targets), env and cgo, and the messages and errors a user sees.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include "lib/goreleaser.h"
#include "lib/yaml.h"
#include "unit.h"

#define DEFAULT_LDFLAGS "-s -w -X main.version={{.Version}} " \
	"-X main.commit={{.Commit}} -X main.date={{.Date}} " \
	"-X main.builtBy=goreleaser"

/* YAML text -> result; rc of goreleaser_to_recipe, its error in err. */
static int
convert(struct goreleaser_result *r, const char *yaml, const char *repo,
    char *err, size_t errsize)
{
	json_t *doc = NULL;
	int rc;

	memset(r, 0x5a, sizeof *r);
	if (yaml_to_json(&doc, yaml, strlen(yaml), err, errsize) != 0) {
		fprintf(stderr, "  yaml_to_json: %s\n", err);
		CHECK(0);
		memset(r, 0, sizeof *r);
		return -1;
	}
	rc = goreleaser_to_recipe(r, doc, repo, err, errsize);
	json_decref(doc);
	return rc;
}

/* Convert and expect success. */
static void
ok(struct goreleaser_result *r, const char *yaml, const char *repo)
{
	char err[512] = "";

	if (convert(r, yaml, repo, err, sizeof err) != 0) {
		fprintf(stderr, "  goreleaser_to_recipe: %s\n", err);
		CHECK(0);
		memset(r, 0, sizeof *r);
	}
}

/* Convert and expect exactly the error `want`. */
static void
fails(const char *yaml, const char *want)
{
	struct goreleaser_result r;
	char err[512] = "";

	CHECK_INT(convert(&r, yaml, "repo", err, sizeof err), -1);
	CHECK_STR(err, want);
	/* Nothing to free after an error. */
	CHECK(r.recipe == NULL && r.targets == NULL && r.ignored == NULL);
}

/* A NULL-terminated list as one space-separated string. */
static char *
joined(char **v, size_t n)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(buf, " ");
		strcat(buf, v[i]);
	}
	CHECK(v[n] == NULL);
	return buf;
}

/* The targets of build i of the recipe, space-separated. */
static char *
build_targets(const struct goreleaser_result *r, size_t i)
{
	static char buf[4096];
	json_t *rec = json_loads(r->recipe, 0, NULL), *t;
	size_t j;

	buf[0] = '\0';
	json_array_foreach(json_object_get(json_array_get(json_object_get(rec,
	    "builds"), i), "targets"), j, t) {
		if (j > 0)
			strcat(buf, " ");
		strcat(buf, json_string_value(t));
	}
	json_decref(rec);
	return buf;
}

static bool
has_ignored(const struct goreleaser_result *r, const char *msg)
{
	for (size_t i = 0; i < r->nignored; i++)
		if (strcmp(r->ignored[i], msg) == 0)
			return true;
	fprintf(stderr, "  no ignored message \"%s\" among:\n", msg);
	for (size_t i = 0; i < r->nignored; i++)
		fprintf(stderr, "    %s\n", r->ignored[i]);
	return false;
}

static const char v2_file[] =
    "# This is an example .goreleaser.yaml file with some sensible defaults.\n"
    "version: 2\n"
    "project_name: hello\n"
    "before:\n"
    "  hooks:\n"
    "    - go mod tidy\n"
    "    - go generate ./...\n"
    "env:\n"
    "  - GO111MODULE=on\n"
    "builds:\n"
    "  - id: hello\n"
    "    main: ./cmd/hello\n"
    "    binary: hello\n"
    "    env:\n"
    "      - CGO_ENABLED=0\n"
    "    goos: [linux, darwin, windows]\n"
    "    goarch: [amd64, arm64, arm, \"386\"]\n"
    "    goarm: [6, 7]\n"
    "    goamd64: [v1, v3]\n"
    "    ignore:\n"
    "      - goos: darwin\n"
    "        goarch: arm\n"
    "      - goos: windows\n"
    "        goarch: arm\n"
    "      - goos: windows\n"
    "        goarch: 386\n"
    "      - goos: linux\n"
    "        goarch: arm\n"
    "        goarm: 6\n"
    "    flags:\n"
    "      - -trimpath\n"
    "    tags: [netgo, osusergo]\n"
    "    ldflags:\n"
    "      - -s -w\n"
    "      - -X main.version={{.Version}}\n"
    "      - -X main.commit={{.Commit}} -X main.date={{ .CommitDate }}\n"
    "    mod_timestamp: \"{{ .CommitTimestamp }}\"\n"
    "    hooks:\n"
    "      post: upx \"{{ .Path }}\"\n"
    "  - id: helper\n"
    "    dir: ./tools/\n"
    "    main: ./helper\n"
    "    binary: \"{{ .ProjectName }}-helper\"\n"
    "    targets: [linux_amd64_v1, darwin_arm64, linux_arm_7, "
    "linux_arm64_v8.0]\n"
    "    env:\n"
    "      - CGO_ENABLED=1\n"
    "      - GO111MODULE=auto\n"
    "  - id: lib\n"
    "    builder: rust\n"
    "    skip: true\n"
    "archives:\n"
    "  - formats: [tar.gz]\n"
    "    name_template: >-\n"
    "      {{ .ProjectName }}_{{ title .Os }}_\n"
    "      {{- if eq .Arch \"amd64\" }}x86_64{{- else }}{{ .Arch }}{{ end }}\n"
    "checksum:\n"
    "  name_template: checksums.txt\n"
    "snapshot:\n"
    "  version_template: \"{{ incpatch .Version }}-next\"\n"
    "changelog:\n"
    "  sort: asc\n"
    "  filters:\n"
    "    exclude: [\"^docs:\", \"^test:\"]\n"
    "release:\n"
    "  draft: true\n";

static void
version_2_file(void)
{
	struct goreleaser_result r;

	ok(&r, v2_file, "ignored-repo-name");
	if (r.recipe == NULL)
		return;
	CHECK_STR(r.recipe,
	    "{\"builds\":["
	    "{\"cgo\":false,\"env\":{\"CGO_ENABLED\":\"0\","
	    "\"GO111MODULE\":\"on\"},\"flags\":[\"-trimpath\"],\"id\":\"hello\","
	    "\"ldflags\":\"-s -w -X main.version={{.Version}} -X main.commit="
	    "{{.Commit}} -X main.date={{ .CommitDate }}\",\"name\":\"hello\","
	    "\"package\":\"./cmd/hello\",\"tags\":[\"netgo\",\"osusergo\"],"
	    "\"targets\":[\"darwin/amd64\",\"darwin/amd64/v3\",\"darwin/arm64\","
	    "\"linux/386\",\"linux/amd64\",\"linux/amd64/v3\",\"linux/arm/v7\","
	    "\"linux/arm64\",\"windows/amd64\",\"windows/amd64/v3\","
	    "\"windows/arm64\"]},"
	    "{\"cgo\":true,\"dir\":\"tools\",\"env\":{\"CGO_ENABLED\":\"1\","
	    "\"GO111MODULE\":\"auto\"},\"flags\":[],\"id\":\"helper\","
	    "\"ldflags\":\"" DEFAULT_LDFLAGS "\","
	    "\"name\":\"{{ .ProjectName }}-helper\",\"package\":\"./helper\","
	    "\"tags\":[],\"targets\":[\"darwin/arm64\",\"linux/amd64\","
	    "\"linux/arm/v7\",\"linux/arm64\"]}],"
	    "\"kind\":\"go\",\"project_name\":\"hello\"}");
	CHECK_STR(joined(r.targets, r.ntargets),
	    "darwin/amd64 darwin/amd64/v3 darwin/arm64 linux/386 linux/amd64 "
	    "linux/amd64/v3 linux/arm/v7 linux/arm64 windows/amd64 "
	    "windows/amd64/v3 windows/arm64");
	CHECK_STR(joined(r.ignored, r.nignored),
	    "before.hooks: kiln runs no hooks (a build runs only go build), "
	    "ignored "
	    "checksum: not used by kiln's build step, ignored "
	    "snapshot: not used by kiln's build step, ignored "
	    "changelog: not used by kiln's build step, ignored "
	    "release: not used by kiln's build step, ignored "
	    "builds[0].mod_timestamp: not supported by kiln, ignored "
	    "builds[0].hooks: not supported by kiln, ignored "
	    "builds[2]: skip is set, not built");
	/* The archives become release outputs, the template as written
	 * (kilnd decides whether it can expand it). */
	CHECK_STR(r.outputs, "{\"archives\":{\"formats\":[\"tar.gz\"],"
	    "\"name_template\":\"{{ .ProjectName }}_{{ title .Os }}_ {{- if eq "
	    ".Arch \\\"amd64\\\" }}x86_64{{- else }}{{ .Arch }}{{ end }}\"}}");
	goreleaser_result_free(&r);
	CHECK(r.recipe == NULL && r.targets == NULL && r.ignored == NULL);
}

/* universal_binaries, sboms, kos and archives' older keys. */
static const char outputs_file[] =
    "version: 2\n"
    "builds: [{goos: [linux, darwin], goarch: [amd64, arm64]}]\n"
    "archives:\n"
    "  - format: tgz\n"
    "    format_overrides: [{goos: windows, format: zip}]\n"
    "    files: [LICENSE, {src: docs/*.md, dst: docs}]\n"
    "    wrap_in_directory: true\n"
    "    builds_info: {mode: 0755}\n"
    "    builds: [tool]\n"
    "  - id: second\n"
    "universal_binaries: [{replace: true}]\n"
    "sboms: [{artifacts: archive}]\n"
    "kos:\n"
    "  - repository: ghcr.io/acme/tool\n"
    "    tags: [latest, \"{{.Tag}}\"]\n"
    "    bare: true\n";

static void
outputs_from_file(void)
{
	struct goreleaser_result r;

	ok(&r, outputs_file, "tool");
	if (r.recipe == NULL)
		return;
	CHECK_STR(r.outputs, "{\"archives\":{\"files\":[\"LICENSE\","
	    "\"docs/*.md\"],\"format_overrides\":[{\"formats\":[\"zip\"],"
	    "\"goos\":\"windows\"}],\"formats\":[\"tar.gz\"],"
	    "\"wrap_in_directory\":true},\"image\":{\"ca_certs\":true,"
	    "\"name\":\"tool\",\"registry\":\"ghcr.io/acme/tool\","
	    "\"tags\":[\"latest\"],\"tzdata\":true},"
	    "\"sbom\":true,\"universal\":true}");
	CHECK_STR(joined(r.ignored, r.nignored),
	    "archives[1...]: kiln makes the first archive configuration only, "
	    "ignored "
	    "archives[0].builds_info: not supported by kiln, ignored "
	    "archives[0].builds: not supported by kiln, ignored "
	    "archives[0].files[1]: only src is used (dst, strip_parent, info "
	    "ignored) "
	    "universal_binaries[0].replace: kiln keeps the thin darwin "
	    "binaries too, ignored "
	    "kos[0].bare: not supported by kiln, ignored "
	    "kos[0].tags[1]: a template, not expanded by kiln, ignored");
	goreleaser_result_free(&r);
}

static const char old_file[] =
    "# .goreleaser.yml of a project from 2019\n"
    "project_name: oldtool\n"
    "builds:\n"
    "- main: main.go\n"
    "  binary: oldtool\n"
    "  ldflags:\n"
    "  - -s -w -X main.version={{.Version}}\n"
    "  skip: false\n"
    "  goos:\n"
    "  - linux\n"
    "  - freebsd\n"
    "  goarch:\n"
    "  - amd64\n"
    "  - arm\n"
    "  goarm:\n"
    "  - 7\n"
    "archive:\n"
    "  format: tar.gz\n"
    "  replacements:\n"
    "    amd64: x86_64\n";

static void
old_unversioned_file(void)
{
	struct goreleaser_result r;

	ok(&r, old_file, "repo");
	if (r.recipe == NULL)
		return;
	CHECK_STR(r.recipe,
	    "{\"builds\":[{\"cgo\":false,\"env\":{},\"flags\":[],"
	    "\"id\":\"oldtool\",\"ldflags\":\"-s -w -X main.version="
	    "{{.Version}}\",\"name\":\"oldtool\",\"package\":\"main.go\","
	    "\"tags\":[],\"targets\":[\"freebsd/amd64\",\"freebsd/arm/v7\","
	    "\"linux/amd64\",\"linux/arm/v7\"]}],\"kind\":\"go\","
	    "\"project_name\":\"oldtool\"}");
	CHECK_STR(joined(r.targets, r.ntargets),
	    "freebsd/amd64 freebsd/arm/v7 linux/amd64 linux/arm/v7");
	CHECK_STR(joined(r.ignored, r.nignored),
	    "archive: not used by kiln's build step, ignored");
	goreleaser_result_free(&r);
}

/* GoReleaser v2's defaults: 3 x 3 minus darwin/386. */
static void
defaults_without_builds(void)
{
	static const char *const files[] = { "version: 2\n", "", "builds: []\n",
	    "version: 1\nbuilds:\n" };
	struct goreleaser_result r;

	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		ok(&r, files[i], "myrepo");
		if (r.recipe == NULL)
			continue;
		CHECK_STR(r.recipe,
		    "{\"builds\":[{\"cgo\":false,\"env\":{},\"flags\":[],"
		    "\"id\":\"myrepo\",\"ldflags\":\"" DEFAULT_LDFLAGS "\","
		    "\"name\":\"myrepo\",\"package\":\".\",\"tags\":[],"
		    "\"targets\":[\"darwin/amd64\",\"darwin/arm64\",\"linux/386\","
		    "\"linux/amd64\",\"linux/arm64\",\"windows/386\","
		    "\"windows/amd64\",\"windows/arm64\"]}],\"kind\":\"go\","
		    "\"project_name\":\"myrepo\"}");
		CHECK_INT(r.ntargets, 8);
		CHECK_INT(r.nignored, 0);
		CHECK(r.ignored != NULL && r.ignored[0] == NULL);
		goreleaser_result_free(&r);
	}
}

static void
ignore_entries_match_as_goreleaser(void)
{
	struct goreleaser_result r;

	/* Only goos: every arch of it. */
	ok(&r, "builds:\n- goos: [linux, windows]\n  goarch: [amd64, arm64]\n"
	    "  ignore:\n  - goos: windows\n", "p");
	CHECK_STR(build_targets(&r, 0), "linux/amd64 linux/arm64");
	goreleaser_result_free(&r);
	/* Only goarch: on every os. */
	ok(&r, "builds:\n- goos: [linux, windows]\n  goarch: [amd64, arm64]\n"
	    "  ignore:\n  - goarch: arm64\n", "p");
	CHECK_STR(build_targets(&r, 0), "linux/amd64 windows/amd64");
	goreleaser_result_free(&r);
	/* goarm and goamd64 narrow an entry; other keys at Go's default. */
	ok(&r, "builds:\n- goos: [linux]\n  goarch: [arm, amd64, mips]\n"
	    "  goarm: [6, 7]\n  goamd64: [v1, v2]\n"
	    "  ignore:\n  - {goarch: arm, goarm: 7}\n  - {goamd64: v2}\n"
	    "  - {goarch: mips, gomips: softfloat}\n", "p");
	CHECK_STR(build_targets(&r, 0), "linux/amd64 linux/arm/v6 linux/mips");
	goreleaser_result_free(&r);
	ok(&r, "builds:\n- goos: [linux]\n  goarch: [mips, amd64]\n"
	    "  ignore:\n  - {gomips: hardfloat}\n", "p");
	CHECK_STR(build_targets(&r, 0), "linux/amd64");
	goreleaser_result_free(&r);
	/* Everything ignored: the build is dropped, and so the file. */
	fails("builds:\n- goos: [linux]\n  goarch: [amd64]\n  ignore:\n"
	    "  - goos: linux\n", "no build to run: every build is skipped or "
	    "has no target kiln can build");
	fails("builds:\n- ignore:\n  - gos: linux\n",
	    "builds[0].ignore[0]: unknown key 'gos'");
	fails("builds:\n- ignore: {goos: linux}\n",
	    "builds[0].ignore: must be a list of at most 256 mappings");
}

static void
goarm_and_goamd64_variants(void)
{
	struct goreleaser_result r;

	ok(&r, "builds:\n- goos: [linux, windows, darwin]\n"
	    "  goarch: [arm, amd64]\n  goarm: [\"5\", \"6,hardfloat\", 7, "
	    "\"7,softfloat\"]\n  goamd64: [v1, v2, v3, v4]\n", "p");
	/* windows/arm and darwin/arm are not built (GoReleaser drops
	 * them); soft-float 7 is not kiln's. */
	CHECK_STR(build_targets(&r, 0),
	    "darwin/amd64 darwin/amd64/v2 darwin/amd64/v3 darwin/amd64/v4 "
	    "linux/amd64 linux/amd64/v2 linux/amd64/v3 linux/amd64/v4 "
	    "linux/arm/v5 linux/arm/v6 linux/arm/v7 windows/amd64 "
	    "windows/amd64/v2 windows/amd64/v3 windows/amd64/v4");
	CHECK(has_ignored(&r, "builds[0]: linux/arm with goarm 7,softfloat: "
	    "kiln builds hard-float arm only, skipped"));
	goreleaser_result_free(&r);
	/* Pairs GoReleaser builds and kiln cannot: said, not silent. */
	ok(&r, "builds:\n- goos: [linux, android]\n  goarch: [arm64]\n", "p");
	CHECK_STR(build_targets(&r, 0), "linux/arm64");
	CHECK(has_ignored(&r, "builds[0]: target 'android/arm64' is not "
	    "buildable: android needs cgo; skipped"));
	goreleaser_result_free(&r);
	fails("builds:\n- goarm: [8]\n", "builds[0].goarm: '8' is not 5, 6 or "
	    "7 (with ,softfloat or ,hardfloat)");
	fails("builds:\n- goamd64: [v5]\n", "builds[0].goamd64: 'v5' is not "
	    "v1, v2, v3 or v4");
	fails("builds:\n- goos: [linux, plan10]\n", "builds[0].goos: 'plan10' "
	    "is not an operating system GoReleaser knows");
	fails("builds:\n- goarch: [amd64, x86]\n", "builds[0].goarch: 'x86' is "
	    "not an architecture GoReleaser knows");
}

static void
explicit_targets_list(void)
{
	struct goreleaser_result r;

	ok(&r, "builds:\n- goos: [plan9]\n  targets:\n"
	    "  - linux_amd64_v1\n  - linux_amd64_v3\n  - darwin_arm64\n"
	    "  - linux_arm_7\n  - linux_arm\n  - windows_amd64\n"
	    "  - linux_386_sse2\n  - linux_arm64_v9.0\n  - android_arm64\n"
	    "  - linux_mips_hardfloat\n  - linux_amd64_v1\n", "p");
	CHECK_STR(build_targets(&r, 0),
	    "darwin/arm64 linux/386 linux/amd64 linux/amd64/v3 linux/arm/v6 "
	    "linux/arm/v7 linux/mips windows/amd64");
	CHECK(has_ignored(&r, "builds[0].goos: ignored because "
	    "builds[0].targets is set"));
	CHECK(has_ignored(&r, "builds[0].targets: linux_arm64_v9.0: kiln "
	    "builds Go's default goarm64 (v8.0) only, skipped"));
	CHECK(has_ignored(&r, "builds[0]: target 'android/arm64' is not "
	    "buildable: android needs cgo; skipped"));
	goreleaser_result_free(&r);
	ok(&r, "builds:\n- targets: [go_first_class]\n", "p");
	CHECK_STR(build_targets(&r, 0),
	    "darwin/amd64 darwin/arm64 linux/386 linux/amd64 linux/arm/v6 "
	    "linux/arm64 windows/386 windows/amd64");
	goreleaser_result_free(&r);
	fails("builds:\n- targets: [linux]\n", "builds[0].targets: 'linux' is "
	    "not a GoReleaser target (os_arch or os_arch_variant)");
	fails("builds:\n- targets: [linux_amd64_v1_x]\n", "builds[0].targets: "
	    "'linux_amd64_v1_x' is not a GoReleaser target (os_arch or "
	    "os_arch_variant)");
	fails("builds:\n- targets: [linux_arm_8]\n", "builds[0].targets: "
	    "'linux_arm_8': goarm must be 5, 6 or 7 (with ,softfloat or "
	    ",hardfloat)");
	fails("builds:\n- targets: linux_amd64\n",
	    "builds[0].targets: must be a list of strings");
}

static void
env_and_cgo(void)
{
	struct goreleaser_result r;
	json_t *rec;

	ok(&r, "env: [A=top, B=top, \"EMPTY=\"]\nbuilds:\n"
	    "- id: c\n  env: [CGO_ENABLED=1, B=mine, \"X=a=b\"]\n"
	    "- id: nocgo\n  env: [CGO_ENABLED=0]\n", "p");
	rec = json_loads(r.recipe, 0, NULL);
	json_t *b0 = json_array_get(json_object_get(rec, "builds"), 0);
	json_t *b1 = json_array_get(json_object_get(rec, "builds"), 1);
	CHECK(json_is_true(json_object_get(b0, "cgo")));
	CHECK(json_is_false(json_object_get(b1, "cgo")));
	char *e = json_dumps(json_object_get(b0, "env"), JSON_COMPACT |
	    JSON_SORT_KEYS);
	CHECK_STR(e, "{\"A\":\"top\",\"B\":\"mine\",\"CGO_ENABLED\":\"1\","
	    "\"EMPTY\":\"\",\"X\":\"a=b\"}");
	free(e);
	json_decref(rec);
	goreleaser_result_free(&r);
	fails("builds:\n- env: [NOEQUALS]\n", "builds[0].env[0]: 'NOEQUALS' is "
	    "not NAME=VALUE");
	fails("builds:\n- env: [\"=x\"]\n", "builds[0].env[0]: '=x' is not "
	    "NAME=VALUE");
	fails("builds:\n- env: [A=1, 1X=y]\n", "builds[0].env[1]: '1X=y' is "
	    "not NAME=VALUE");
	fails("builds:\n- env: [\"A B=y\"]\n", "builds[0].env[0]: 'A B=y' is "
	    "not NAME=VALUE");
	fails("env: [KILN_OUT=/tmp]\n", "env[0]: KILN_OUT is set by kiln and "
	    "cannot be overridden");
	fails("builds:\n- env: {CGO_ENABLED: 1}\n",
	    "builds[0].env: must be a list of strings");
}

static void
unsupported_builders_fail(void)
{
	static const char *const builders[] = { "rust", "zig", "prebuilt",
	    "bun", "deno", "uv", "poetry" };
	char yaml[128], want[128];
	struct goreleaser_result r;

	for (size_t i = 0; i < sizeof builders / sizeof *builders; i++) {
		snprintf(yaml, sizeof yaml, "builds:\n- id: a\n- id: b\n"
		    "  builder: %s\n", builders[i]);
		snprintf(want, sizeof want, "builds[1].builder: '%s' is not "
		    "supported (kiln builds Go only)", builders[i]);
		fails(yaml, want);
	}
	ok(&r, "builds:\n- builder: go\n", "p");
	CHECK(r.recipe != NULL);
	goreleaser_result_free(&r);
}

static void
skip_disable_and_shapes(void)
{
	struct goreleaser_result r;

	/* skip as a string (older files), disable (version 2). */
	ok(&r, "builds:\n- id: a\n  skip: \"true\"\n- id: b\n  disable: true\n"
	    "- id: c\n  goos: [linux]\n  goarch: [amd64]\n"
	    "  flags: -v\n  ldflags: -X main.v={{.Version}}\n  tags: netgo\n"
	    "  dir: .\n", "p");
	CHECK(has_ignored(&r, "builds[0]: skip is set, not built"));
	CHECK(has_ignored(&r, "builds[1]: disable is set, not built"));
	CHECK_STR(r.recipe, "{\"builds\":[{\"cgo\":false,\"env\":{},"
	    "\"flags\":[\"-v\"],\"id\":\"c\",\"ldflags\":\"-X main.v="
	    "{{.Version}}\",\"name\":\"p\",\"package\":\".\",\"tags\":"
	    "[\"netgo\"],\"targets\":[\"linux/amd64\"]}],\"kind\":\"go\","
	    "\"project_name\":\"p\"}");
	goreleaser_result_free(&r);
	/* An empty ldflags list takes the default, "" does not. */
	ok(&r, "builds:\n- id: a\n  ldflags: []\n- id: b\n  ldflags: \"\"\n",
	    "p");
	CHECK(strstr(r.recipe, "\"id\":\"a\",\"ldflags\":\"" DEFAULT_LDFLAGS
	    "\"") != NULL);
	CHECK(strstr(r.recipe, "\"id\":\"b\",\"ldflags\":\"\"") != NULL);
	goreleaser_result_free(&r);

	fails("builds:\n- skip: true\n", "no build to run: every build is "
	    "skipped or has no target kiln can build");
	fails("builds:\n- skip: \"{{ .IsSnapshot }}\"\n", "builds[0].skip: must "
	    "be true or false (kiln evaluates no templates there)");
	fails("builds:\n- id: x\n- id: x\n", "builds[1].id: 'x' is the id of an "
	    "earlier build too");
	fails("builds:\n- goos: [linux]\n- goos: [darwin]\n", "builds[1].id: "
	    "'repo' is the id of an earlier build too");
	fails("builds: {id: x}\n", "builds: must be a list");
	fails("builds:\n- just a string\n", "builds[0]: must be a mapping");
	fails("builds:\n- goos: linux\n", "builds[0].goos: must be a list of "
	    "strings");
	fails("builds:\n- goos: [linux, {a: b}]\n", "builds[0].goos: must be a "
	    "list of strings");
	fails("builds:\n- main: -toolexec=/bin/sh\n", "builds[0].main: "
	    "'-toolexec=/bin/sh' must not start with '-'");
	fails("builds:\n- dir: ../elsewhere\n", "builds[0].dir: '../elsewhere' "
	    "is not a relative directory inside the repository");
	fails("builds:\n- dir: /etc\n", "builds[0].dir: '/etc' is not a "
	    "relative directory inside the repository");
	fails("builds:\n- binary: [a]\n", "builds[0].binary: must be a string");
	fails("version: 3\n", "version: '3' is not supported (kiln reads "
	    "GoReleaser's versions 1 and 2)");
	fails("- a\n- b\n", "the file is not a YAML mapping");
	fails("project_name: {a: b}\n", "project_name: must be a string");
}

static void
strings_with_nul_are_refused(void)
{
	struct goreleaser_result r;
	json_t *doc;
	char err[256];

	doc = json_pack("{s:[{s:o}]}", "builds", "main",
	    json_stringn("a\0b", 3));
	CHECK_INT(goreleaser_to_recipe(&r, doc, "p", err, sizeof err), -1);
	CHECK_STR(err, "builds[0].main: must be a string");
	json_decref(doc);
}

static void
ignored_messages_are_capped(void)
{
	struct goreleaser_result r;
	char *yaml = malloc(150 * 16 + 1);

	yaml[0] = '\0';
	for (int i = 0; i < 150; i++)
		sprintf(yaml + strlen(yaml), "key%03d: 1\n", i);
	ok(&r, yaml, "p");
	CHECK_INT(r.nignored, GORELEASER_MAX_IGNORED);
	CHECK_STR(r.ignored[0], "key000: not used by kiln's build step, "
	    "ignored");
	CHECK_STR(r.ignored[98], "key098: not used by kiln's build step, "
	    "ignored");
	CHECK_STR(r.ignored[99], "51 more keys or targets ignored, not listed");
	CHECK(r.ignored[100] == NULL);
	goreleaser_result_free(&r);
	free(yaml);
}

UNIT_MAIN(
	TEST(outputs_from_file),
	TEST(version_2_file),
	TEST(old_unversioned_file),
	TEST(defaults_without_builds),
	TEST(ignore_entries_match_as_goreleaser),
	TEST(goarm_and_goamd64_variants),
	TEST(explicit_targets_list),
	TEST(env_and_cgo),
	TEST(unsupported_builders_fail),
	TEST(skip_disable_and_shapes),
	TEST(strings_with_nul_are_refused),
	TEST(ignored_messages_are_capped),
)
