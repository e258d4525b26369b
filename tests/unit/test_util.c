/*
 * util_repo_identity (daemon/util.c): the spellings of one repository are
 * one identity (mirrors, caches and build reuse key on it); a fork is
 * another.
 */
#include "config.h"

#include "daemon/util.h"
#include "unit.h"

static void
check_identity(const char *url, const char *want)
{
	char *got = util_repo_identity(url);

	CHECK_STR(got, want);
	free(got);
}

static void
spellings_of_one_repository_are_one(void)
{
	check_identity("/srv/git/x", "file:///srv/git/x");
	check_identity("/srv/git/x/", "file:///srv/git/x");
	check_identity("/srv//git/x.git", "file:///srv/git/x");
	check_identity("file:///srv/git/x", "file:///srv/git/x");
	check_identity("file:///srv/git/x.git/", "file:///srv/git/x");
	check_identity("HTTPS://Git.Example.COM/Team/X.git",
	    "https://git.example.com/Team/X");
	check_identity("https://git.example.com/team/x/",
	    "https://git.example.com/team/x");
	check_identity("ssh://Git@Host.example:2222/team/x.git",
	    "ssh://Git@host.example:2222/team/x");
	check_identity("git://host/x.git.git", "git://host/x");
}

static void
others_stay_apart(void)
{
	char *a = util_repo_identity("https://git.example.com/team/x");
	char *b = util_repo_identity("https://git.example.com/fork/x");
	char *c = util_repo_identity("/");

	CHECK(strcmp(a, b) != 0);		/* a fork */
	CHECK_STR(c, "file:///");		/* never empty */
	free(a);
	free(b);
	free(c);
	check_identity("https://host/a/.git", "https://host/a/.git");
}

UNIT_MAIN(
	TEST(spellings_of_one_repository_are_one),
	TEST(others_stay_apart),
)
