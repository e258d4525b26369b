/*
 * go.mod reading, Go version order, and the choice of a Go toolchain:
 * against hand-built toolchain sets, and against the Go toolchains that
 * scripts/bootstrap installs (/usr/lib/go-1.NN/bin/go).
 */
#include "config.h"

#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/gomod.h"
#include "daemon/toolchains.h"
#include "lib/xmalloc.h"
#include "unit.h"

static int
parse(struct gomod *m, const char *text, char *err, size_t errsize)
{
	err[0] = '\0';
	return gomod_parse(m, text, strlen(text), err, errsize);
}

static void
parses_what_go_mod_init_and_tidy_write(void)
{
	struct gomod m;
	char err[256];

	CHECK_INT(parse(&m,
	    "module github.com/example/app\n"
	    "\n"
	    "go 1.22.0\n"
	    "\n"
	    "toolchain go1.22.3\n"
	    "\n"
	    "require (\n"
	    "\tgithub.com/pkg/errors v0.9.1\n"
	    "\tgolang.org/x/sys v0.20.0 // indirect\n"
	    ")\n", err, sizeof err), 0);
	CHECK_STR(m.module, "github.com/example/app");
	CHECK_STR(m.go, "1.22.0");
	CHECK_STR(m.toolchain, "go1.22.3");
	CHECK(m.requires);

	CHECK_INT(parse(&m, "module example.com/m\n\ngo 1.19\n", err,
	    sizeof err), 0);
	CHECK_STR(m.module, "example.com/m");
	CHECK_STR(m.go, "1.19");
	CHECK_STR(m.toolchain, "");
	CHECK(!m.requires);
}

static void
parses_comments_quotes_blocks_and_crlf(void)
{
	struct gomod m;
	char err[256];

	/* Comments everywhere, a quoted module path, CRLF, other blocks. */
	CHECK_INT(parse(&m,
	    "// Deprecated: use example.com/v2\r\n"
	    "module \"example.com/q\" // the path\r\n"
	    "go 1.21 // language version\r\n"
	    "toolchain default\r\n"
	    "replace (\r\n"
	    "\texample.com/a => ../a\r\n"
	    ")\r\n"
	    "exclude example.com/b v1.0.0\r\n"
	    "retract [v1.0.0, v1.0.5] // broken\r\n"
	    "retract (\r\n\tv1.1.0\r\n\t[v1.2.0, v1.2.3]\r\n)\r\n"
	    "godebug default=go1.21\r\n", err, sizeof err), 0);
	CHECK_STR(m.module, "example.com/q");
	CHECK_STR(m.go, "1.21");
	CHECK_STR(m.toolchain, "");	/* default: no preference */
	CHECK(!m.requires);

	/* A one-line require; a backquoted path; an empty require block. */
	CHECK_INT(parse(&m, "module `example.com/r`\nrequire ()\n"
	    "require example.com/x v1.2.3 // indirect\n", err, sizeof err), 0);
	CHECK_STR(m.module, "example.com/r");
	CHECK(m.requires);
	CHECK_INT(parse(&m, "module m\nrequire (\n)\ngo 1.23.5", err,
	    sizeof err), 0);
	CHECK(!m.requires);
	CHECK_STR(m.go, "1.23.5");	/* no newline at the end */

	/* "//" ends a word; the escape in a quoted path. */
	CHECK_INT(parse(&m, "module example.com/e//x\n", err, sizeof err), 0);
	CHECK_STR(m.module, "example.com/e");
	CHECK_INT(parse(&m, "module \"a\\\\b\"\n", err, sizeof err), 0);
	CHECK_STR(m.module, "a\\b");

	/* A toolchain with a custom suffix is its Go version. */
	CHECK_INT(parse(&m, "go 1.22\ntoolchain go1.22.3-custom\n", err,
	    sizeof err), 0);
	CHECK_STR(m.toolchain, "go1.22.3");

	/* Nothing at all, and a byte-order mark. */
	CHECK_INT(gomod_parse(&m, "", 0, err, sizeof err), 0);
	CHECK_STR(m.module, "");
	CHECK_INT(parse(&m, "\xef\xbb\xbfmodule bom\n", err, sizeof err), 0);
	CHECK_STR(m.module, "bom");
}

/* gomod_parse fails with exactly `want`. */
static void
expect_error_at(const char *file, int line, const char *text,
    const char *want)
{
	struct gomod m;
	char err[256] = "";
	int rc = gomod_parse(&m, text, strlen(text), err, sizeof err);

	if (rc != -1 || strcmp(err, want) != 0) {
		fprintf(stderr, "  %s:%d: gomod_parse = %d \"%s\", expected -1 "
		    "\"%s\"\n", file, line, rc, err, want);
		unit_failed_checks++;
	}
}
#define expect_error(t, w) expect_error_at(__FILE__, __LINE__, (t), (w))

static void
errors_name_the_line(void)
{
	char big[4096];

	expect_error("module m\n\ngo 1.x\n",
	    "go.mod:3: invalid go version '1.x'");
	expect_error("go 1.22.0rc1\n",
	    "go.mod:1: invalid go version '1.22.0rc1'");
	expect_error("go go1.22\n", "go.mod:1: invalid go version 'go1.22'");
	expect_error("go 01.22\n", "go.mod:1: invalid go version '01.22'");
	expect_error("go 1\n", "go.mod:1: invalid go version '1'");
	expect_error("go \"1.22\"\n", "go.mod:1: invalid go version '1.22'");
	expect_error("go 1.22 1.23\n", "go.mod:1: usage: go 1.23");
	expect_error("go 1.22\ngo 1.23\n", "go.mod:2: repeated go line");
	expect_error("toolchain 1.22.3\n",
	    "go.mod:1: invalid toolchain '1.22.3'");
	expect_error("toolchain gox\n", "go.mod:1: invalid toolchain 'gox'");
	expect_error("toolchain go1.22\ntoolchain go1.23\n",
	    "go.mod:2: repeated toolchain line");
	expect_error("module a\nmodule b\n", "go.mod:2: repeated module line");
	expect_error("module \"a\n", "go.mod:1: unterminated string");
	expect_error("module \"a\\q\"\n",
	    "go.mod:1: invalid escape in module path 'a\\q'");
	expect_error("module \"a b\"\n", "go.mod:1: invalid module path 'a b'");
	expect_error("module \"\"\n", "go.mod:1: empty module path");
	expect_error("module m\nrequire (\n\tx v1\n",
	    "go.mod:2: unterminated block");
	expect_error("require (\n\tx v1 )\n)\n",
	    "go.mod:2: syntax error: unexpected parenthesis");
	expect_error("require x\n",
	    "go.mod:1: usage: require module/path v1.2.3");
	expect_error("go (\n1.22\n)\n", "go.mod:1: unknown block type 'go'");
	expect_error("module m\n\x01\n", "go.mod:2: unexpected character '?'");
	{
		static const char nul[] = "module m\ngo 1.22\0\n";
		struct gomod m;
		char err[256];
		CHECK_INT(gomod_parse(&m, nul, sizeof nul - 1, err, sizeof err),
		    -1);
		CHECK_STR(err, "go.mod:2: unexpected character '?'");
	}
	expect_error("{x}\n", "go.mod:1: unexpected character '{'");
	expect_error("[x]\n", "go.mod:1: syntax error: expected a directive");
	/* Hostile values are cut and shown as printable ASCII. */
	memset(big, 'x', sizeof big);
	memcpy(big, "go 1.", 5);
	big[sizeof big - 2] = '\xff';
	big[sizeof big - 1] = '\0';
	expect_error(big, "go.mod:1: invalid go version "
	    "'1.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
	memset(big, 'p', sizeof big);
	memcpy(big, "module ", 7);
	big[sizeof big - 1] = '\0';
	expect_error(big, "go.mod:1: module path too long "
	    "'pppppppppppppppppppppppppppppppppppppppp...'");
}

static void
versions_compare_as_go_does(void)
{
	/* Each is below the next (cmd/go/internal/gover's order). */
	static const char *const order[] = {
		"not-a-version", "1.19rc1", "1.19", "1.19.8", "1.20rc2",
		"1.20.0", "1.21", "1.21beta1", "1.21rc1", "1.21rc2", "1.21.0",
		"1.21.9", "1.21.13", "1.22", "1.22rc1", "1.22.0", "1.22.12",
		"1.23.5", "1.100", "2.0",
	};
	size_t n = sizeof order / sizeof *order;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = gomod_version_cmp(order[i], order[j]);
			int want = i < j ? -1 : i > j;
			if ((c > 0) - (c < 0) != want) {
				fprintf(stderr, "  gomod_version_cmp(%s, %s) = "
				    "%d\n", order[i], order[j], c);
				unit_failed_checks++;
			}
		}
	/* Before 1.21, "1.N" is "1.N.0"; the go prefix changes nothing. */
	CHECK_INT(gomod_version_cmp("1.20", "1.20.0"), 0);
	CHECK_INT(gomod_version_cmp("go1.22.12", "1.22.12"), 0);
	CHECK(gomod_version_cmp("go1.9", "go1.10") < 0);
	CHECK(gomod_version_cmp("1.21", "1.21.0") < 0);
	/* Invalid ones are equal to each other and below everything. */
	CHECK_INT(gomod_version_cmp("x", "1.x"), 0);
	CHECK(gomod_version_cmp("", "1.0") < 0);

	CHECK(gomod_version_valid("1.22"));
	CHECK(gomod_version_valid("go1.22.0"));
	CHECK(gomod_version_valid("1.22rc1"));
	CHECK(!gomod_version_valid("1"));
	CHECK(!gomod_version_valid("1.x"));
	CHECK(!gomod_version_valid("1.22."));
	CHECK(!gomod_version_valid("1.22rc"));
	CHECK(!gomod_version_valid("1.22.1rc1"));
	CHECK(!gomod_version_valid("1.022"));
	CHECK(!gomod_version_valid("0.1"));
	CHECK(!gomod_version_valid("gogo1.2"));
	CHECK(!gomod_version_valid(""));

	char lang[8];
	CHECK_INT(gomod_version_lang(lang, sizeof lang, "go1.22.12"), 0);
	CHECK_STR(lang, "1.22");
	CHECK_INT(gomod_version_lang(lang, sizeof lang, "1.9rc2"), 0);
	CHECK_STR(lang, "1.9");
	CHECK_INT(gomod_version_lang(lang, sizeof lang, "1.x"), -1);
	CHECK_INT(gomod_version_lang(lang, 4, "1.22"), -1);
}

/* A set like this host's, built by hand: no binary runs. */
static struct toolchain hand[] = {
	{ "/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.19/bin", "go1.19.8", "a" },
	{ "/usr/lib/go-1.21/bin/go", "/usr/lib/go-1.21/bin", "go1.21.13", "b" },
	{ "/usr/lib/go-1.22/bin/go", "/usr/lib/go-1.22/bin", "go1.22.5", "c" },
	{ "/usr/local/go/bin/go", "/usr/local/go/bin", "go1.22.12", "d" },
	{ "/usr/lib/go-1.23/bin/go", "/usr/lib/go-1.23/bin", "go1.23.5", "e" },
};
static const struct toolchains hands = { hand, sizeof hand / sizeof *hand };

/* The version chosen, or "error: ..." */
static const char *
chose(const char *go, const char *toolchain, const char *pin)
{
	static char out[600];
	char err[512] = "";
	const struct toolchain *t = toolchains_choose(&hands, go, toolchain,
	    pin, err, sizeof err);

	if (t != NULL)
		snprintf(out, sizeof out, "%s", t->version);
	else
		snprintf(out, sizeof out, "error: %s", err);
	return out;
}

static void
choose_follows_go_line_toolchain_line_and_pin(void)
{
	static const struct toolchains none = { NULL, 0 };
	char err[256];

	/* No go line: the lowest; else the lowest at or above it. */
	CHECK_STR(chose("", "", NULL), "go1.19.8");
	CHECK_STR(chose(NULL, NULL, NULL), "go1.19.8");
	CHECK_STR(chose("1.16", "", NULL), "go1.19.8");
	CHECK_STR(chose("1.19", "", NULL), "go1.19.8");
	CHECK_STR(chose("1.20", "", NULL), "go1.21.13");
	CHECK_STR(chose("1.21", "", NULL), "go1.21.13");
	CHECK_STR(chose("1.21.0", "", NULL), "go1.21.13");
	CHECK_STR(chose("1.22.0", "", NULL), "go1.22.5");
	CHECK_STR(chose("1.22.6", "", NULL), "go1.22.12");
	CHECK_STR(chose("1.23", "", NULL), "go1.23.5");
	/* Go 1.19 cannot read a go line like 1.19.5 or a toolchain line. */
	CHECK_STR(chose("1.19.5", "", NULL), "go1.21.13");
	CHECK_STR(chose("1.19", "go1.19.8", NULL), "go1.21.13");
	/* The toolchain line is a preference: met when it can be. */
	CHECK_STR(chose("1.21.0", "go1.22.7", NULL), "go1.22.12");
	CHECK_STR(chose("1.21.0", "go1.22.5", NULL), "go1.22.5");
	/* Beyond every installed one: the newest comes closest. */
	CHECK_STR(chose("1.21.0", "go1.24.0", NULL), "go1.23.5");
	CHECK_STR(chose("1.22.0", "default", NULL), "go1.22.5");
	CHECK_STR(chose("", "go1.22.1", NULL), "go1.22.5");
	/* Nothing new enough. */
	CHECK_STR(chose("1.99", "go1.99.1", NULL), "error: go.mod needs go >= "
	    "1.99 (toolchain go1.99.1); installed: go1.19.8, go1.21.13, "
	    "go1.22.5, go1.22.12, go1.23.5");
	CHECK_STR(chose("1.24.0", "", NULL), "error: go.mod needs go >= "
	    "1.24.0; installed: go1.19.8, go1.21.13, go1.22.5, go1.22.12, "
	    "go1.23.5");
	/* Pins: a series is its newest release, a release exactly it. */
	CHECK_STR(chose("", "", "1.22"), "go1.22.12");
	CHECK_STR(chose("1.21", "go1.23.5", "1.22"), "go1.22.12");
	CHECK_STR(chose("1.22.0", "", "1.22.5"), "go1.22.5");
	CHECK_STR(chose("", "", "go1.21"), "go1.21.13");
	CHECK_STR(chose("", "", "1.19"), "go1.19.8");
	CHECK_STR(chose("", "", "1.20"), "error: recipe.go pins 1.20; "
	    "installed: go1.19.8, go1.21.13, go1.22.5, go1.22.12, go1.23.5");
	CHECK_STR(chose("", "", "1.22.3"), "error: recipe.go pins 1.22.3; "
	    "installed: go1.19.8, go1.21.13, go1.22.5, go1.22.12, go1.23.5");
	CHECK_STR(chose("1.22.6", "", "1.22.5"), "error: recipe.go pins "
	    "1.22.5 (go1.22.5), but go.mod needs go >= 1.22.6");
	CHECK_STR(chose("1.23.0", "", "1.22"), "error: recipe.go pins 1.22 "
	    "(go1.22.12), but go.mod needs go >= 1.23.0");
	CHECK_STR(chose("", "", "latest"), "error: recipe.go: 'latest' is "
	    "not a Go version (like 1.22 or 1.22.12)");
	/* Bad lines (gomod_parse refuses them; callers may not use it). */
	CHECK_STR(chose("1.x", "", NULL), "error: go.mod: invalid go version "
	    "'1.x'");
	CHECK_STR(chose("1.22", "1.22.3", NULL), "error: go.mod: invalid "
	    "toolchain '1.22.3'");

	CHECK(toolchains_choose(&none, "1.22", "", NULL, err, sizeof err) ==
	    NULL);
	CHECK_STR(err, "no Go toolchain is installed");
	CHECK(toolchains_choose(&none, "", "", "1.22", err, sizeof err) ==
	    NULL);
	CHECK_STR(err, "recipe.go pins 1.22; installed: none");
	/* A long list is cut, not overrun. */
	CHECK(toolchains_choose(&hands, "1.99", "", NULL, err, 40) == NULL);
	CHECK_INT(strlen(err), 39);
}

static void
json_lists_version_path_identity(void)
{
	json_t *a = toolchains_json(&hands);

	CHECK_INT(json_array_size(a), 5);
	CHECK_STR(json_string_value(json_object_get(json_array_get(a, 3),
	    "version")), "go1.22.12");
	CHECK_STR(json_string_value(json_object_get(json_array_get(a, 3),
	    "path")), "/usr/local/go/bin/go");
	CHECK_STR(json_string_value(json_object_get(json_array_get(a, 3),
	    "identity")), "d");
	json_decref(a);
}

/*
 * The Go toolchains scripts/bootstrap installs: each /usr/lib/go-1.NN is
 * found once, says its own version, and /usr/bin/go (Debian's 1.19, the
 * same binary) and binaries that are not go add nothing.  Run from a
 * directory whose go.mod asks for a toolchain that does not exist: go
 * would try to download it unless told not to.
 */
static void
discover_finds_the_installed_go_toolchains(void)
{
	struct kiln_config conf;
	struct toolchains tc;
	glob_t g;
	char err[256] = "", cwd[PATH_MAX], gomod[PATH_MAX];
	const struct toolchain *t;

	memset(&conf, 0, sizeof conf);
	conf.go_toolchains[conf.ngo_toolchains++] = "/usr/bin/go";
	conf.go_toolchains[conf.ngo_toolchains++] = "/usr/lib/go-1.19/bin/go";
	conf.go_toolchains[conf.ngo_toolchains++] = "/usr/lib/no-such/bin/go";
	conf.go_toolchains[conf.ngo_toolchains++] = "/usr/bin/true";
	conf.go_toolchains[conf.ngo_toolchains++] = "/usr/bin/echo";

	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	snprintf(gomod, sizeof gomod, "%s/go.mod", unit_tmpdir());
	write_text(gomod, "module x\n\ngo 1.21\n\ntoolchain go1.99.0\n");
	CHECK(chdir(unit_tmp) == 0);
	CHECK_INT(toolchains_discover(&tc, &conf, err, sizeof err), 0);
	CHECK(chdir(cwd) == 0);

	CHECK_INT(glob("/usr/lib/go-*/bin/go", 0, NULL, &g), 0);
	if (g.gl_pathc == 0 || tc.n == 0) {
		fprintf(stderr, "  no Go toolchain in /usr/lib/go-*: run "
		    "scripts/bootstrap\n");
		unit_failed_checks++;
	}
	CHECK_INT(tc.n, g.gl_pathc);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		/* /usr/lib/go-1.22/bin/go says go1.22.N. */
		const char *dir = g.gl_pathv[i] + strlen("/usr/lib/go-");
		char want[32], *id;
		size_t n = strcspn(dir, "/");
		bool found = false;

		snprintf(want, sizeof want, "go%.*s.", (int)n, dir);
		for (size_t j = 0; j < tc.n; j++) {
			t = &tc.v[j];
			if (strcmp(t->go, g.gl_pathv[i]) != 0)
				continue;
			found = true;
			CHECK(strncmp(t->version, want, strlen(want)) == 0);
			CHECK(strlen(t->bindir) == strlen(t->go) - 3 &&
			    strncmp(t->bindir, t->go, strlen(t->bindir)) == 0);
			id = xasprintf("%s: go version %s linux/amd64", t->go,
			    t->version);
			CHECK_STR(t->identity, id);
			free(id);
		}
		if (!found) {
			fprintf(stderr, "  %s was not discovered\n",
			    g.gl_pathv[i]);
			unit_failed_checks++;
		}
	}
	globfree(&g);
	for (size_t i = 1; i < tc.n; i++)
		CHECK(gomod_version_cmp(tc.v[i - 1].version, tc.v[i].version)
		    <= 0 && strcmp(tc.v[i - 1].go, tc.v[i].go) != 0);

	/* What the choice makes of them. */
	t = toolchains_choose(&tc, "1.22.0", "", NULL, err, sizeof err);
	CHECK(t != NULL && strncmp(t->version, "go1.22.", 7) == 0);
	t = toolchains_choose(&tc, "", "", "1.23", err, sizeof err);
	CHECK(t != NULL && strncmp(t->version, "go1.23.", 7) == 0);
	t = toolchains_choose(&tc, "1.99", "", NULL, err, sizeof err);
	CHECK(t == NULL && strstr(err, "go1.22.") != NULL);

	json_t *a = toolchains_json(&tc);
	CHECK_INT(json_array_size(a), tc.n);
	json_decref(a);
	toolchains_free(&tc);
	CHECK(tc.v == NULL && tc.n == 0);
}

UNIT_MAIN(
	TEST(parses_what_go_mod_init_and_tidy_write),
	TEST(parses_comments_quotes_blocks_and_crlf),
	TEST(errors_name_the_line),
	TEST(versions_compare_as_go_does),
	TEST(choose_follows_go_line_toolchain_line_and_pin),
	TEST(json_lists_version_path_identity),
	TEST(discover_finds_the_installed_go_toolchains),
)
