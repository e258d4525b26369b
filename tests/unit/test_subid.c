/*
 * subid_first (lib/subid.c): which subordinate id an unprivileged
 * kilnd's builds run as, read from files in the format of /etc/subuid.
 */
#include "config.h"

#include "lib/subid.h"
#include "unit.h"

static char path[512];
static char err[512];

static void
file_with(const char *text)
{
	snprintf(path, sizeof path, "%s/subuid", unit_tmpdir());
	write_text(path, text);
}

static void
found_by_name_or_by_uid(void)
{
	unsigned long id = 0;

	file_with("alice:100000:65536\nkiln:165536:65536\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 1);
	CHECK_INT(id, 165536);
	CHECK_STR(err, "");

	/* newuidmap accepts the owner written as the uid too. */
	file_with("# not a range\n\n998:200000:10\n999:300000:1\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 1);
	CHECK_INT(id, 300000);
	/* The first range of the user wins. */
	file_with("kiln:400000:5\nkiln:500000:5\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 1);
	CHECK_INT(id, 400000);
}

static void
none_says_which_file_and_user(void)
{
	unsigned long id = 7;

	file_with("alice:100000:65536\nkilnd:165536:65536\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 0);
	CHECK_INT(id, 7);
	CHECK(strstr(err, path) != NULL);
	CHECK(strstr(err, "user kiln (uid 999)") != NULL);

	snprintf(path, sizeof path, "%s/missing", unit_tmpdir());
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 0);
	CHECK(strstr(err, "does not exist") != NULL);
}

static void
ranges_that_map_root_or_the_user_are_refused(void)
{
	unsigned long id = 7;

	file_with("kiln:0:65536\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 0);
	CHECK(strstr(err, "root") != NULL);
	file_with("kiln:900:200\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 0);
	CHECK(strstr(err, "own id") != NULL);
	CHECK_INT(id, 7);
	/* A later usable range is still found. */
	file_with("kiln:900:200\nkiln:100000:10\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 1);
	CHECK_INT(id, 100000);
}

static void
malformed_lines_are_skipped(void)
{
	unsigned long id = 7;

	file_with("kiln:100000\nkiln:x:5\nkiln:100000:0\nkiln:-5:10\n"
	    "kiln:4294967290:10\nkiln:1:2:3\nkiln: 5:5\n:100:5\n");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 0);
	CHECK_INT(id, 7);
	/* The last possible id, and a line without a newline at the end. */
	file_with("kiln:4294967294:1");
	CHECK_INT(subid_first(&id, path, "kiln", 999, 999, err, sizeof err), 1);
	CHECK_INT(id, 4294967294UL);
}

UNIT_MAIN(
	TEST(found_by_name_or_by_uid),
	TEST(none_says_which_file_and_user),
	TEST(ranges_that_map_root_or_the_user_are_refused),
	TEST(malformed_lines_are_skipped),
)
