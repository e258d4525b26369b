/*
 * Recipes to worker plans (daemon/recipe.c): the exact environment every
 * build sees (kilnd(8)), the go command line, GOARM/GOAMD64 from the
 * variant, toolchains from kilnd.conf's map, and the recipe's own env.
 */
#include "config.h"

#include "daemon/recipe.h"
#include "unit.h"

static const char *
env_get(char **env, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static size_t
count(char **v)
{
	size_t n = 0;

	while (v[n])
		n++;
	return n;
}

#define COMMIT "0123456789abcdef0123456789abcdef01234567"

/* The plan of `recipe` for `target`, or its error (rc -1) in err. */
static int
plan_ctx(struct recipe_plan *p, const char *recipe, const char *target,
    const struct recipe_ctx *ctx, char *err, size_t errsize)
{
	struct kiln_config c;
	struct target t;
	int rc;

	conf_defaults(&c);
	memset(p, 0, sizeof *p);
	CHECK_INT(target_parse(&t, target, err, errsize), 0);
	rc = recipe_plan(p, recipe, &t, ctx, &c, err, errsize);
	conf_free(&c);
	return rc;
}

static void
plan(struct recipe_plan *p, const char *recipe, const char *target,
    const char *repo)
{
	struct recipe_ctx ctx = { .repo = repo, .commit = COMMIT,
	    .commit_time = 1767323045 };
	char err[200];

	CHECK_INT(plan_ctx(p, recipe, target, &ctx, err, sizeof err), 0);
}

static void
go_recipe_command_line(void)
{
	struct recipe_plan p;

	plan(&p, "{\"kind\":\"go\"}", "windows/amd64",
	    "https://git.example.com/team/tool.git");
	CHECK_STR(p.argv[0], "go");
	CHECK_STR(p.argv[1], "build");
	CHECK_STR(p.argv[2], "-trimpath");
	CHECK_STR(p.argv[3], "-buildvcs=false");
	CHECK_STR(p.argv[4], "-ldflags=-s -w -buildid=");
	CHECK_STR(p.argv[5], "-o");
	CHECK_STR(p.argv[6], "/out/tool.exe");	/* name from the repo */
	CHECK_STR(p.argv[7], ".");
	CHECK(p.argv[8] == NULL);
	CHECK_STR(env_get(p.env, "CGO_ENABLED"), "0");
	CHECK_STR(env_get(p.env, "GOOS"), "windows");
	CHECK_STR(env_get(p.env, "GOAMD64"), "v1");
	CHECK(env_get(p.env, "GOARM") == NULL);
	CHECK_STR(env_get(p.env, "CC"), "x86_64-w64-mingw32-gcc");
	CHECK_STR(p.summary, "go build -trimpath -buildvcs=false "
	    "'-ldflags=-s -w -buildid=' -o /out/tool.exe .");
	recipe_plan_free(&p);

	plan(&p, "{\"kind\":\"go\",\"package\":\"./cmd/srv\",\"tags\":"
	    "[\"netgo\",\"osusergo\"],\"ldflags\":\"-X main.v=1\"}",
	    "linux/arm", "/srv/git/x");
	CHECK_STR(p.argv[4], "-ldflags=-s -w -buildid= -X main.v=1");
	CHECK_STR(p.argv[5], "-tags");
	CHECK_STR(p.argv[6], "netgo,osusergo");
	CHECK_STR(p.argv[8], "/out/srv");	/* name from the package */
	CHECK_STR(p.argv[9], "./cmd/srv");
	/* Debian's Go defaults to GOARM=5: always set. */
	CHECK_STR(env_get(p.env, "GOARM"), "7");
	CHECK_STR(env_get(p.env, "KILN_VARIANT"), "v7");
	CHECK_STR(env_get(p.env, "CC"), "arm-linux-gnueabihf-gcc");
	recipe_plan_free(&p);
}

static void
command_recipe_environment_is_exact(void)
{
	static const char *const allowed[] = {
		"PATH", "HOME", "TMPDIR", "KILN_TARGET", "KILN_OS", "KILN_ARCH",
		"KILN_VARIANT", "KILN_OUT", "GOOS", "GOARCH", "GOARM",
		"GOAMD64", "GOCACHE", "GOPATH", "SOURCE_DATE_EPOCH", "CC",
		"CXX", "AR", "STRIP", "KILN_HOST_TRIPLE", "V",
	};
	struct recipe_plan p;

	plan(&p, "{\"kind\":\"command\",\"command\":\"make\",\"env\":"
	    "{\"V\":\"1\",\"GOARCH\":\"override\"}}", "linux/amd64/v3",
	    "/srv/x");
	CHECK_STR(p.argv[0], "/bin/sh");
	CHECK_STR(p.argv[1], "-c");
	CHECK_STR(p.argv[2], "make");
	for (size_t i = 0; p.env[i]; i++) {
		int known = 0;
		for (size_t k = 0; k < sizeof allowed / sizeof *allowed; k++) {
			size_t n = strlen(allowed[k]);
			if (strncmp(p.env[i], allowed[k], n) == 0 &&
			    p.env[i][n] == '=')
				known = 1;
		}
		if (!known)
			fprintf(stderr, "  unexpected variable %s\n", p.env[i]);
		CHECK(known);
	}
	CHECK_STR(env_get(p.env, "KILN_TARGET"), "linux/amd64/v3");
	CHECK_STR(env_get(p.env, "GOAMD64"), "v3");
	CHECK_STR(env_get(p.env, "KILN_OUT"), "/out");
	CHECK_STR(env_get(p.env, "SOURCE_DATE_EPOCH"), "1767323045");
	CHECK_STR(env_get(p.env, "CC"), "gcc");		/* host */
	CHECK_STR(env_get(p.env, "KILN_HOST_TRIPLE"), "x86_64-linux-gnu");
	CHECK_STR(env_get(p.env, "V"), "1");
	/* The recipe's env comes last and wins, once. */
	CHECK_STR(env_get(p.env, "GOARCH"), "override");
	size_t n = count(p.env), goarch = 0;
	for (size_t i = 0; i < n; i++)
		goarch += strncmp(p.env[i], "GOARCH=", 7) == 0;
	CHECK_INT(goarch, 1);
	recipe_plan_free(&p);
}

static void
target_without_toolchain_has_no_cc(void)
{
	struct recipe_plan p;

	plan(&p, "{\"kind\":\"command\",\"command\":\"true\"}", "darwin/arm64",
	    "/srv/x");
	CHECK(env_get(p.env, "CC") == NULL);
	CHECK(env_get(p.env, "KILN_HOST_TRIPLE") == NULL);
	CHECK_STR(env_get(p.env, "GOOS"), "darwin");
	recipe_plan_free(&p);
}

static void
toolchain_map_from_config(void)
{
	struct kiln_config c;
	char err[300];
	FILE *f;
	const char *text = "[toolchains]\nlinux/arm64 = aarch64-none-elf\n"
	    "linux/mips = mips-linux-gnu\n";

	conf_defaults(&c);
	f = fmemopen((void *)text, strlen(text), "r");
	CHECK_INT(conf_load_stream(&c, f, "t.conf", err, sizeof err), 0);
	fclose(f);
	CHECK_STR(conf_toolchain(&c, "linux/arm64"), "aarch64-none-elf");
	CHECK_STR(conf_toolchain(&c, "linux/mips"), "mips-linux-gnu");
	CHECK_STR(conf_toolchain(&c, "windows/amd64"), "x86_64-w64-mingw32");
	CHECK(conf_toolchain(&c, "plan9/386") == NULL);
	conf_free(&c);

	conf_defaults(&c);
	text = "[toolchains]\nlinux/vax = vax-linux\n";
	f = fmemopen((void *)text, strlen(text), "r");
	CHECK_INT(conf_load_stream(&c, f, "t.conf", err, sizeof err), -1);
	fclose(f);
	CHECK(strstr(err, "t.conf:2: toolchains:") != NULL);
	conf_free(&c);
}

/* The chosen Go first on PATH; nothing downloaded inside a build. */
static void
go_toolchain_and_offline_modules(void)
{
	struct recipe_ctx ctx = { .repo = "/srv/x", .commit = COMMIT,
	    .commit_time = 1767323045, .go_bindir = "/usr/lib/go-1.22/bin" };
	struct recipe_plan p;
	char err[200];

	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\"}", "linux/amd64", &ctx, err,
	    sizeof err), 0);
	CHECK_STR(env_get(p.env, "PATH"),
	    "/usr/lib/go-1.22/bin:/usr/local/bin:/usr/bin:/bin");
	CHECK_STR(env_get(p.env, "GOTOOLCHAIN"), "local");
	CHECK_STR(env_get(p.env, "GOPROXY"), "off");
	CHECK_STR(env_get(p.env, "GOMODCACHE"), "/gomod");
	CHECK_STR(env_get(p.env, "GOFLAGS"), "-mod=mod");
	recipe_plan_free(&p);
	ctx.vendored = true;
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\"}", "linux/amd64", &ctx, err,
	    sizeof err), 0);
	CHECK_STR(env_get(p.env, "GOFLAGS"), "-mod=vendor");
	recipe_plan_free(&p);
}

/* GoReleaser's names in ldflags, env and the binary's name. */
static void
templates_are_expanded_per_target(void)
{
	struct recipe_ctx ctx = { .repo = "https://x.example/team/tool.git",
	    .commit = COMMIT, .commit_time = 1767323045, .tag = "v1.2.3",
	    .branch = "main" };
	struct recipe_plan p;
	char err[200];

	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"name\":"
	    "\"{{.ProjectName}}-{{.Os}}\",\"ldflags\":\"-X main.version="
	    "{{.Version}} -X main.commit={{.ShortCommit}} -X main.date={{ .Date "
	    "}}\",\"env\":{\"ARCH\":\"{{.Arch}}{{.Arm}}\"}}", "linux/arm/v7",
	    &ctx, err, sizeof err), 0);
	CHECK_STR(p.argv[4], "-ldflags=-s -w -buildid= -X main.version=1.2.3 "
	    "-X main.commit=0123456 -X main.date=2026-01-02T03:04:05Z");
	CHECK_STR(p.argv[6], "/out/tool-linux");
	CHECK_STR(env_get(p.env, "ARCH"), "arm7");
	recipe_plan_free(&p);

	/* Untagged: a snapshot version; an unknown name fails the target. */
	ctx.tag = NULL;
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"ldflags\":"
	    "\"-X main.v={{.Version}}\"}", "linux/amd64", &ctx, err,
	    sizeof err), 0);
	CHECK_STR(p.argv[4], "-ldflags=-s -w -buildid= -X main.v="
	    "0.0.0-SNAPSHOT-0123456");
	recipe_plan_free(&p);
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"ldflags\":"
	    "\"-X main.v={{.Nope}}\"}", "linux/amd64", &ctx, err,
	    sizeof err), -1);
	CHECK(strstr(err, "ldflags") != NULL && strstr(err, "Nope") != NULL);
	recipe_plan_free(&p);
}

/* Several builds per target: one quoted script, each its own env. */
static void
several_builds_make_one_script(void)
{
	struct recipe_ctx ctx = { .repo = "/srv/x", .commit = COMMIT,
	    .commit_time = 1767323045, .tag = "v2.0.0" };
	struct recipe_plan p;
	char err[200];

	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"builds\":["
	    "{\"package\":\"./cmd/a\",\"name\":\"a\",\"env\":{\"X\":"
	    "\"it's\"}},"
	    "{\"package\":\".\",\"dir\":\"sub\",\"name\":\"b\","
	    "\"flags\":[\"-v\"],\"targets\":[\"linux/arm64\"]},"
	    "{\"package\":\"./cmd/c\",\"targets\":[\"windows/amd64\"]}]}",
	    "linux/arm64", &ctx, err, sizeof err), 0);
	CHECK_STR(p.argv[0], "/bin/sh");
	CHECK_STR(p.argv[1], "-c");
	CHECK(strstr(p.argv[2], "set -e\ncd /src\nenv 'X=it'\\''s' 'go' "
	    "'build'") == p.argv[2]);
	CHECK(strstr(p.argv[2], "'-o' '/out/a' './cmd/a'") != NULL);
	CHECK(strstr(p.argv[2], "cd '/src/sub'\n'go' 'build' '-trimpath' "
	    "'-buildvcs=false' '-v'") != NULL);
	CHECK(strstr(p.argv[2], "/out/c") == NULL);	/* windows only */
	CHECK(strchr(p.summary, '\n') == NULL);
	recipe_plan_free(&p);

	/* Two builds of one name: the later one is NAME_ID, none is lost. */
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"builds\":["
	    "{\"id\":\"cli\",\"name\":\"tool\"},{\"id\":\"snap\",\"name\":"
	    "\"tool\",\"tags\":[\"snap\"]}]}", "linux/amd64", &ctx, err,
	    sizeof err), 0);
	CHECK(strstr(p.argv[2], "'/out/tool' '.'") != NULL);
	CHECK(strstr(p.argv[2], "'/out/tool_snap' '.'") != NULL);
	recipe_plan_free(&p);
	/* The new name is taken too: the build's index, never a clash. */
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"builds\":["
	    "{\"id\":\"one\",\"name\":\"app\"},{\"id\":\"two\",\"name\":"
	    "\"app_x\"},{\"id\":\"x\",\"name\":\"app\"}]}", "linux/amd64",
	    &ctx, err, sizeof err), 0);
	CHECK(strstr(p.argv[2], "'/out/app' '.'") != NULL);
	CHECK(strstr(p.argv[2], "'/out/app_x' '.'") != NULL);
	CHECK(strstr(p.argv[2], "'/out/app_2' '.'") != NULL);
	recipe_plan_free(&p);

	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"builds\":["
	    "{\"targets\":[\"windows/amd64\"]}]}", "linux/arm64", &ctx, err,
	    sizeof err), -1);
	CHECK(strstr(err, "no build of the recipe is for linux/arm64") != NULL);
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"builds\":["
	    "{\"dir\":\"../up\"}]}", "linux/arm64", &ctx, err,
	    sizeof err), -1);
	CHECK(strstr(err, "builds[0].dir") != NULL);
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"name\":\"{{.Tag}}/x\"}",
	    "linux/arm64", &ctx, err, sizeof err), -1);
	CHECK(strstr(err, "not a file name") != NULL);
}

/* cgo: the target's C compiler and its multiarch pkg-config directory. */
static void
cgo_uses_the_target_toolchain(void)
{
	struct recipe_ctx ctx = { .repo = "/srv/x", .commit = COMMIT,
	    .commit_time = 1767323045 };
	struct recipe_plan p;
	char err[300];

	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"cgo\":true}",
	    "linux/arm64", &ctx, err, sizeof err), 0);
	CHECK_STR(env_get(p.env, "CGO_ENABLED"), "1");
	CHECK_STR(env_get(p.env, "CC"), "aarch64-linux-gnu-gcc");
	CHECK_STR(env_get(p.env, "CXX"), "aarch64-linux-gnu-g++");
	CHECK_STR(env_get(p.env, "PKG_CONFIG_LIBDIR"),
	    "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig");
	recipe_plan_free(&p);
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"env\":{\"CGO_ENABLED\":"
	    "\"1\"}}", "windows/amd64", &ctx, err, sizeof err), 0);
	CHECK_STR(env_get(p.env, "PKG_CONFIG_LIBDIR"),
	    "/usr/x86_64-w64-mingw32/lib/pkgconfig");
	recipe_plan_free(&p);
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\"}", "linux/arm64", &ctx, err,
	    sizeof err), 0);
	CHECK_STR(env_get(p.env, "CGO_ENABLED"), "0");
	recipe_plan_free(&p);
	/* This host's lack, which another host may not share. */
	CHECK_INT(plan_ctx(&p, "{\"kind\":\"go\",\"cgo\":true}",
	    "darwin/arm64", &ctx, err, sizeof err), RECIPE_ENOTOOL);
	CHECK(strstr(err, "cgo: this farm has no C toolchain for "
	    "darwin/arm64") != NULL);
}

/* The deps step: kiln's command, the farm's or the project's proxy. */
static void
deps_step_plan(void)
{
	struct recipe_ctx ctx = { .repo = "/srv/x", .commit = COMMIT,
	    .commit_time = 1767323045, .go_bindir = "/usr/lib/go-1.23/bin" };
	struct conf_project pr = { .name = "p", .goproxy = "http://proxy",
	    .goprivate = "example.com/*" };
	struct kiln_config c;
	struct recipe_plan p = { 0 };
	char err[100];

	conf_defaults(&c);
	CHECK_INT(recipe_deps_plan(&p, &ctx, &c, NULL, err, sizeof err), 0);
	CHECK_STR(p.argv[0], "go");
	CHECK_STR(p.argv[1], "mod");
	CHECK_STR(p.argv[2], "download");
	CHECK(p.argv[3] == NULL);
	CHECK_STR(env_get(p.env, "GOPROXY"), "https://proxy.golang.org,direct");
	CHECK_STR(env_get(p.env, "GOSUMDB"), "sum.golang.org");
	CHECK_STR(env_get(p.env, "GOFLAGS"), "-mod=readonly");
	CHECK_STR(env_get(p.env, "GOMODCACHE"), "/gomod");
	CHECK_STR(env_get(p.env, "GOTOOLCHAIN"), "local");
	CHECK(env_get(p.env, "GOPRIVATE") == NULL);
	recipe_plan_free(&p);
	CHECK_INT(recipe_deps_plan(&p, &ctx, &c, &pr, err, sizeof err), 0);
	CHECK_STR(env_get(p.env, "GOPROXY"), "http://proxy");
	CHECK_STR(env_get(p.env, "GOPRIVATE"), "example.com/*");
	recipe_plan_free(&p);
	conf_free(&c);
}

UNIT_MAIN(
	TEST(go_recipe_command_line),
	TEST(go_toolchain_and_offline_modules),
	TEST(templates_are_expanded_per_target),
	TEST(several_builds_make_one_script),
	TEST(cgo_uses_the_target_toolchain),
	TEST(deps_step_plan),
	TEST(command_recipe_environment_is_exact),
	TEST(target_without_toolchain_has_no_cc),
	TEST(toolchain_map_from_config),
)
