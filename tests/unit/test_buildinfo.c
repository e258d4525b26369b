/*
 * Go build information: module-information texts (good, bad,
 * replacements, build settings, duplicates) and binary images made here
 * byte by byte (real Go binaries are in tests/integration/sbom.sh).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buildinfo.h"
#include "unit.h"

static int
parse(struct buildinfo *b, const char *text, char *err, size_t errsize)
{
	err[0] = '\0';
	return buildinfo_parse(b, text, strlen(text), err, errsize);
}

static void
parses_modules_and_settings(void)
{
	struct buildinfo b;
	char err[256];

	CHECK_INT(parse(&b,
	    "path\texample.com/app/cmd/app\n"
	    "mod\texample.com/app\t(devel)\t\n"
	    "dep\tgolang.org/x/text\tv0.7.0\th1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\n"
	    "dep\tgithub.com/a/b\tv1.2.3\n"
	    "build\t-buildmode=exe\n"
	    "build\tCGO_ENABLED=0\n"
	    "build\tGOOS=linux\n", err, sizeof err), 0);
	CHECK_STR(b.path, "example.com/app/cmd/app");
	CHECK(b.go_version == NULL);
	CHECK_STR(b.main.path, "example.com/app");
	CHECK_STR(b.main.version, "(devel)");
	CHECK_STR(b.main.sum, "");
	CHECK_INT(b.ndeps, 2);
	CHECK_STR(b.deps[0].path, "golang.org/x/text");
	CHECK_STR(b.deps[0].version, "v0.7.0");
	CHECK_STR(b.deps[0].sum,
	    "h1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=");
	CHECK(b.deps[0].replace == NULL);
	CHECK_STR(b.deps[1].sum, "");
	CHECK_INT(b.nsettings, 3);
	CHECK_STR(b.settings_key[0], "-buildmode");
	CHECK_STR(b.settings_value[0], "exe");
	CHECK_STR(b.settings_key[2], "GOOS");
	CHECK_STR(b.settings_value[2], "linux");
	buildinfo_free(&b);

	/* What `go version -m` prints after its first line. */
	CHECK_INT(parse(&b, "\tpath\tx.org/y\n\tmod\tx.org/y\tv1.0.0\th1:s=\n"
	    "\tbuild\tGOARCH=arm64", err, sizeof err), 0);
	CHECK_STR(b.main.sum, "h1:s=");
	CHECK_INT(b.nsettings, 1);
	CHECK_STR(b.settings_value[0], "arm64");
	buildinfo_free(&b);
}

static void
parses_replacements(void)
{
	struct buildinfo b;
	char err[256];

	CHECK_INT(parse(&b,
	    "mod\texample.com/app\tv1.0.0\t\n"
	    "dep\tgolang.org/x/text\tv0.7.0\n"
	    "=>\t/usr/share/gocode/src/golang.org/x/text\t(devel)\t\n"
	    "dep\tgithub.com/old/mod\tv1.0.0\n"
	    "=>\tgithub.com/new/mod\tv1.1.0\th1:new=\n"
	    "dep\tgithub.com/plain/mod\tv0.1.0\th1:plain=\n",
	    err, sizeof err), 0);
	CHECK_INT(b.ndeps, 3);
	CHECK(b.deps[0].replace != NULL);
	if (b.deps[0].replace != NULL) {
		CHECK_STR(b.deps[0].replace->path,
		    "/usr/share/gocode/src/golang.org/x/text");
		CHECK_STR(b.deps[0].replace->version, "(devel)");
	}
	CHECK(b.deps[1].replace != NULL);
	if (b.deps[1].replace != NULL) {
		CHECK_STR(b.deps[1].replace->path, "github.com/new/mod");
		CHECK_STR(b.deps[1].replace->sum, "h1:new=");
	}
	CHECK(b.deps[2].replace == NULL);
	buildinfo_free(&b);

	CHECK_INT(parse(&b, "=>\ta\tb\tc\n", err, sizeof err), -1);
	CHECK(strstr(err, "replacement with no module") != NULL);
	/* A replacement takes the module before it, and only once. */
	CHECK_INT(parse(&b, "dep\ta\tv1\n=>\tb\tv2\th1:x=\n=>\tc\tv3\th1:y=\n",
	    err, sizeof err), -1);
	CHECK(strstr(err, "line 3: replacement with no module") != NULL);
	CHECK_INT(parse(&b, "dep\ta\tv1\n=>\tb\tv2\n", err, sizeof err), -1);
	CHECK(strstr(err, "expected 3 columns for replacement; got 2") != NULL);
}

static void
parses_quoted_settings(void)
{
	struct buildinfo b;
	char err[256];

	CHECK_INT(parse(&b,
	    "build\t-ldflags=\"-s -w -X main.v=1\"\n"
	    "build\t\"odd key\"=`raw \\n value`\n"
	    "build\tesc=\"tab\\there \\u00e9 \\x41\\101 \\\"q\\\"\"\n"
	    "build\tempty=\n", err, sizeof err), 0);
	CHECK_INT(b.nsettings, 4);
	CHECK_STR(b.settings_value[0], "-s -w -X main.v=1");
	CHECK_STR(b.settings_key[1], "odd key");
	CHECK_STR(b.settings_value[1], "raw \\n value");
	CHECK_STR(b.settings_value[2], "tab\there \xc3\xa9 AA \"q\"");
	CHECK_STR(b.settings_value[3], "");
	buildinfo_free(&b);

	CHECK_INT(parse(&b, "build\t-ldflags=-s -w\n", err, sizeof err), -1);
	CHECK(strstr(err, "line 1: unquoted value must be quoted") != NULL);
	CHECK_INT(parse(&b, "build\t=x\n", err, sizeof err), -1);
	CHECK(strstr(err, "missing key") != NULL);
	CHECK_INT(parse(&b, "build\tnoequals\n", err, sizeof err), -1);
	CHECK(strstr(err, "missing '=' after key") != NULL);
	CHECK_INT(parse(&b, "build\t\"k\"x\n", err, sizeof err), -1);
	CHECK(strstr(err, "missing '=' after quoted key") != NULL);
	CHECK_INT(parse(&b, "build\tk=\"bad \\q\"\n", err, sizeof err), -1);
	CHECK(strstr(err, "invalid quoted value") != NULL);
	CHECK_INT(parse(&b, "build\tk=\"\\x00\"\n", err, sizeof err), -1);
	CHECK_INT(parse(&b, "build\tk=\"\\ud800\"\n", err, sizeof err), -1);
}

static void
refuses_bad_texts(void)
{
	struct buildinfo b;
	char err[256];

	CHECK_INT(parse(&b, "mod\tonly\n", err, sizeof err), -1);
	CHECK(strstr(err, "line 1: expected 2 or 3 columns; got 1") != NULL);
	CHECK_INT(parse(&b, "path\tp\ndep\ta\tb\tc\td\n", err, sizeof err), -1);
	CHECK(strstr(err, "line 2: expected 2 or 3 columns; got 4") != NULL);
	CHECK_INT(parse(&b, "dep\t\tv1\n", err, sizeof err), -1);
	CHECK(strstr(err, "empty module path") != NULL);
	CHECK_INT(buildinfo_parse(&b, "dep\ta\0b\tv1\n", 11, err, sizeof err),
	    -1);
	CHECK(strstr(err, "NUL") != NULL);
	/* Unknown lines are skipped, as Go skips them. */
	CHECK_INT(parse(&b, "future\tthing\n", err, sizeof err), 0);
	buildinfo_free(&b);
}

static void
refuses_duplicate_modules(void)
{
	struct buildinfo b;
	char err[256];

	CHECK_INT(parse(&b, "mod\tm\tv1\ndep\ta\tv1\th1:a=\ndep\tb\tv1\n"
	    "dep\ta\tv2\th1:b=\n", err, sizeof err), -1);
	CHECK_STR(err, "build information: module a listed twice");
	CHECK_INT(parse(&b, "mod\tm\tv1\ndep\tm\tv1\n", err, sizeof err), -1);
	CHECK_STR(err, "build information: module m listed twice");
	/* Two deps replaced by one module are still two deps. */
	CHECK_INT(parse(&b, "dep\ta\tv1\n=>\tc\tv1\th1:c=\ndep\tb\tv1\n"
	    "=>\tc\tv1\th1:c=\n", err, sizeof err), 0);
	buildinfo_free(&b);
}

/* A binary image: pad bytes, then the header at off, the strings after. */
static unsigned char *
image(size_t *len, size_t off, int flags, const char *vers, const char *mod,
    size_t modlen)
{
	unsigned char *p = calloc(1, off + 64 + strlen(vers) + modlen + 32);
	size_t i = off + 32;

	memcpy(p, "\x7f" "ELF", 4);
	memcpy(p + off, "\xff Go buildinf:", 14);
	p[off + 14] = 8;
	p[off + 15] = (unsigned char)flags;
	p[i++] = (unsigned char)strlen(vers);
	memcpy(p + i, vers, strlen(vers));
	i += strlen(vers);
	/* Module texts here are under 16 KiB: two varint bytes at most. */
	if (modlen < 0x80)
		p[i++] = (unsigned char)modlen;
	else {
		p[i++] = (unsigned char)(modlen | 0x80);
		p[i++] = (unsigned char)(modlen >> 7);
	}
	memcpy(p + i, mod, modlen);
	*len = i + modlen + 8;
	return p;
}

#define S1 "0w\xaf\x0c\x92t\x08\x02" "A\xe1\xc1\x07\xe6\xd6\x18\xe6"
#define S2 "\xf9" "2C1\x86\x18 r\x00\x82" "B\x10" "A\x16\xd8\xf2"
#define MOD S1 "path\tex.com/a\nmod\tex.com/a\t(devel)\t\n" \
	"dep\tgolang.org/x/text\tv0.7.0\th1:t=\nbuild\tGOOS=linux\n" S2

static void
reads_binaries(void)
{
	struct buildinfo b;
	unsigned char *p;
	char err[256];
	size_t len;

	p = image(&len, 64, 2, "go1.23.5", MOD, sizeof MOD - 1);
	CHECK_INT(buildinfo_from_binary(&b, p, len, err, sizeof err), 0);
	CHECK_STR(b.go_version, "go1.23.5");
	CHECK_STR(b.path, "ex.com/a");
	CHECK_INT(b.ndeps, 1);
	CHECK_STR(b.deps[0].sum, "h1:t=");
	CHECK_INT(b.nsettings, 1);
	buildinfo_free(&b);

	/* Cut anywhere inside the strings: truncated, never a read past. */
	err[0] = '\0';
	CHECK_INT(buildinfo_from_binary(&b, p, 64 + 32 + 20, err, sizeof err),
	    -1);
	CHECK_STR(err, "Go build information truncated");
	CHECK_INT(buildinfo_from_binary(&b, p, 64 + 20, err, sizeof err), -1);
	CHECK_STR(err, "Go build information truncated");
	CHECK_INT(buildinfo_from_binary(&b, p, 64 + 10, err, sizeof err), -1);
	CHECK_STR(err, "no Go build information");
	free(p);

	/* The magic off the 16-byte grid is not a header. */
	p = image(&len, 72, 2, "go1.23.5", MOD, sizeof MOD - 1);
	CHECK_INT(buildinfo_from_binary(&b, p, len, err, sizeof err), -1);
	CHECK_STR(err, "no Go build information");
	free(p);

	/* Before Go 1.18: pointers, refused by name. */
	p = image(&len, 32, 0, "go1.17", "", 0);
	CHECK_INT(buildinfo_from_binary(&b, p, len, err, sizeof err), -1);
	CHECK(strstr(err, "before Go 1.18") != NULL);
	free(p);

	/* Without modules: the Go version alone. */
	p = image(&len, 16, 2, "go1.22.1", "", 0);
	CHECK_INT(buildinfo_from_binary(&b, p, len, err, sizeof err), 0);
	CHECK_STR(b.go_version, "go1.22.1");
	CHECK(b.main.path == NULL && b.ndeps == 0);
	buildinfo_free(&b);
	free(p);

	/* A module text the parser refuses is an error of the binary. */
	p = image(&len, 16, 2, "go1.22.1", S1 "dep\tx\n" S2, 16 + 6 + 16);
	CHECK_INT(buildinfo_from_binary(&b, p, len, err, sizeof err), -1);
	CHECK(strstr(err, "expected 2 or 3 columns") != NULL);
	free(p);

	CHECK_INT(buildinfo_from_binary(&b, (const unsigned char *)"", 0, err,
	    sizeof err), -1);
	CHECK_STR(err, "no Go build information");
}

static void
passes_over_a_decoy(void)
{
	struct buildinfo b;
	unsigned char *p, *q;
	char err[256];
	size_t len;

	/* The magic quoted in rodata first, on the grid, then the header. */
	p = image(&len, 128, 2, "go1.23.5", MOD, sizeof MOD - 1);
	q = calloc(1, len);
	memcpy(q, p, len);
	memcpy(q + 32, "\xff Go buildinf:\x01\x02\xff\xff\xff", 19);
	CHECK_INT(buildinfo_from_binary(&b, q, len, err, sizeof err), 0);
	CHECK_STR(b.go_version, "go1.23.5");
	buildinfo_free(&b);
	free(p);
	free(q);
}

UNIT_MAIN(
	TEST(parses_modules_and_settings),
	TEST(parses_replacements),
	TEST(parses_quoted_settings),
	TEST(refuses_bad_texts),
	TEST(refuses_duplicate_modules),
	TEST(reads_binaries),
	TEST(passes_over_a_decoy)
)
