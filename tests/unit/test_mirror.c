/*
 * worker/mirror.c's message helpers: paths of kilnd's state directory
 * taken out of messages users read (mirror_hide_path), passwords out of
 * URLs (mirror_redact_url).  Run under --enable-debug, ASan checks the
 * buffer arithmetic of the cut cases.
 */
#include "config.h"

#include <string.h>

#include "worker/mirror.h"
#include "unit.h"

/*
 * mirror_hide_path over a copy of msg in a buffer of exactly size bytes
 * (cut as a caller's snprintf would have cut it): ASan sees any write
 * past it.  Expect the result want.
 */
static void
expect_hide(const char *msg, size_t size, const char *path,
    const char *name, const char *want)
{
	char *buf = malloc(size);
	size_t n = strlen(msg);

	CHECK(buf != NULL);
	if (buf == NULL)
		return;
	memset(buf, 'X', size);
	if (n >= size)
		n = size - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
	mirror_hide_path(buf, size, path, name);
	CHECK_STR(buf, want);
	free(buf);
}

static void
test_every_occurrence_replaced(void)
{
	expect_hide("cannot read /s/m/a.git: failed to open "
	    "'/s/m/a.git/objects/pack'", 512, "/s/m/a.git", "<mirror>",
	    "cannot read <mirror>: failed to open '<mirror>/objects/pack'");
	expect_hide("/s/m/a.git", 512, "/s/m/a.git", "<mirror>", "<mirror>");
	/* A trailing slash in the path (git_repository_path gives one). */
	expect_hide("failed to resolve path '/s/m/a.git/refs'", 512,
	    "/s/m/a.git/", "<mirror>",
	    "failed to resolve path '<mirror>/refs'");
}

static void
test_whole_names_only(void)
{
	/* /w/x.1 is a prefix of /w/x.12 but not the same directory. */
	expect_hide("open /w/x.12/src: gone", 512, "/w/x.1", "<work root>",
	    "open /w/x.12/src: gone");
	expect_hide("open /w/x.1-old and /w/x.1_b and /w/x.1a", 512, "/w/x.1",
	    "<work root>", "open /w/x.1-old and /w/x.1_b and /w/x.1a");
	expect_hide("open /w/x.1: no; /w/x.1's", 512, "/w/x.1", "<work root>",
	    "open <work root>: no; <work root>'s");
}

static void
test_nothing_to_hide(void)
{
	expect_hide("no path here", 512, "/s/m", "<mirror>", "no path here");
	/* "" and "/" would match everywhere. */
	expect_hide("open /etc/x", 512, "/", "<root>", "open /etc/x");
	expect_hide("open /etc/x", 512, "", "<root>", "open /etc/x");
	expect_hide("", 512, "/s/m", "<mirror>", "");
}

static void
test_shorter_and_longer_names(void)
{
	/* The build's own names for its directories: shorter. */
	expect_hide("chown /var/lib/kiln/work/1/linux_amd64.1.17/src/a: EPERM",
	    512, "/var/lib/kiln/work/1/linux_amd64.1.17/src", "/src",
	    "chown /src/a: EPERM");
	/* Longer than the path: the rest moves right. */
	expect_hide("/a: x /a", 512, "/a", "<the mirror>",
	    "<the mirror>: x <the mirror>");
}

static void
test_cut_to_the_buffer(void)
{
	/* The message grows past its buffer: cut, always terminated. */
	expect_hide("/a: tail", 12, "/a", "<mirror>", "<mirror>: t");
	expect_hide("xx /a", 8, "/a", "<mirror>", "xx <mir");
	expect_hide("/a /a /a", 16, "/a", "<mirror>", "<mirror> <mirro");
	expect_hide("/a /a /a /a /a", 10, "/a", "<mirror>", "<mirror> ");
	expect_hide("/a", 1, "/a", "<mirror>", "");
}

static void
test_redact_url(void)
{
	char buf[256];

	mirror_redact_url(buf, sizeof buf,
	    "https://kiln:s3cret@git.example.org/a.git");
	CHECK_STR(buf, "https://kiln:***@git.example.org/a.git");
	mirror_redact_url(buf, sizeof buf, "https://git.example.org/a.git");
	CHECK_STR(buf, "https://git.example.org/a.git");
	mirror_redact_url(buf, sizeof buf, "/srv/git/a.git");
	CHECK_STR(buf, "/srv/git/a.git");
}

UNIT_MAIN(
	TEST(test_every_occurrence_replaced),
	TEST(test_whole_names_only),
	TEST(test_nothing_to_hide),
	TEST(test_shorter_and_longer_names),
	TEST(test_cut_to_the_buffer),
	TEST(test_redact_url)
)
