/*
 * Recipes to worker plans (daemon/recipe.c): the exact environment every
 * build sees (DESIGN.md), the go command line, GOARM/GOAMD64 from the
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

static void
plan(struct recipe_plan *p, const char *recipe, const char *target,
    const char *repo)
{
	struct kiln_config c;
	struct target t;
	char err[200];

	conf_defaults(&c);
	memset(p, 0, sizeof *p);
	CHECK_INT(target_parse(&t, target, err, sizeof err), 0);
	CHECK_INT(recipe_plan(p, recipe, &t, repo, 1767323045, &c, err,
	    sizeof err), 0);
	conf_free(&c);
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
	/* Debian's Go defaults to GOARM=5: always set (FACTS.md). */
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

UNIT_MAIN(
	TEST(go_recipe_command_line),
	TEST(command_recipe_environment_is_exact),
	TEST(target_without_toolchain_has_no_cc),
	TEST(toolchain_map_from_config),
)
