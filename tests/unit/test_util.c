/*
 * util_repo_identity (lib/util.c): the spellings of one repository are
 * one identity (mirrors, caches and build reuse key on it); a fork is
 * another.  util_rmtree: a tree 100,000 levels deep goes with a small
 * stack and a handful of fds, symlinks and hard links out of the tree
 * leave their targets alone, and 0500 and 0000 directories of the
 * caller's own go too.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/util.h"
#include "deeptree.h"
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

struct rmtree_call {
	const char *path;
	int rc;
};

static void
rmtree_call(void *p)
{
	struct rmtree_call *c = p;

	c->rc = util_rmtree(c->path);
}

static void
rmtree_removes_a_100000_level_tree(void)
{
	const char *tmp = unit_tmpdir();
	char top[300];
	struct rmtree_call c = { top, -12345 };
	int before = max_fd();
	struct stat st;

	snprintf(top, sizeof top, "%s/deep", tmp);
	CHECK(mkdir(top, 0755) == 0);
	CHECK(make_deep(top, DEEP) == 0);
	run_bounded(rmtree_call, &c);
	CHECK_INT(c.rc, 0);
	CHECK(lstat(top, &st) != 0 && errno == ENOENT);
	CHECK_INT(max_fd(), before);		/* nothing left open */
	CHECK_INT(util_rmtree(top), 0);		/* absent: nothing to do */
}

static void
write_at(const char *dir, const char *name, const char *text)
{
	char p[600];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	write_text(p, text);
}

static void
rmtree_leaves_what_symlinks_point_to(void)
{
	const char *tmp = unit_tmpdir();
	char out[300], t[300], p[600], buf[16] = "";
	struct stat st;
	FILE *f;

	snprintf(out, sizeof out, "%s/outside", tmp);
	snprintf(t, sizeof t, "%s/t", tmp);
	CHECK(mkdir(out, 0755) == 0);
	snprintf(p, sizeof p, "%s/sub", out);
	CHECK(mkdir(p, 0755) == 0);
	write_at(out, "keep", "precious\n");
	write_at(out, "sub/keep", "precious\n");
	snprintf(p, sizeof p, "%s/a/b", t);
	CHECK(util_mkdir_p(p, 0755) == 0);
	/* Links to the outside directory, relative and absolute, to a
	 * file in it, and a hard link to that file. */
	snprintf(p, sizeof p, "%s/a/b/rel", t);
	CHECK(symlink("../../../outside", p) == 0);
	snprintf(p, sizeof p, "%s/abs", t);
	CHECK(symlink(out, p) == 0);
	snprintf(p, sizeof p, "%s/a/file", t);
	CHECK(symlink("../../outside/keep", p) == 0);
	snprintf(p, sizeof p, "%s/hard", t);
	{
		char k[600];
		snprintf(k, sizeof k, "%s/keep", out);
		CHECK(link(k, p) == 0);
	}
	CHECK_INT(util_rmtree(t), 0);
	CHECK(lstat(t, &st) != 0 && errno == ENOENT);
	snprintf(p, sizeof p, "%s/keep", out);
	CHECK(stat(p, &st) == 0 && st.st_nlink == 1);
	if ((f = fopen(p, "r")) != NULL) {
		CHECK(fgets(buf, sizeof buf, f) != NULL);
		fclose(f);
	}
	CHECK_STR(buf, "precious\n");
	snprintf(p, sizeof p, "%s/sub/keep", out);
	CHECK(stat(p, &st) == 0);

	/* A symlink given as the tree is not followed either. */
	snprintf(p, sizeof p, "%s/link", tmp);
	CHECK(symlink(out, p) == 0);
	CHECK(util_rmtree(p) != 0);
	snprintf(p, sizeof p, "%s/sub/keep", out);
	CHECK(stat(p, &st) == 0);
}

/* What the owner of base does to the unreadable tree in it. */
static void
rmtree_unreadable_as_owner(const char *base)
{
	char t[300], p[600];
	struct stat st;

	snprintf(t, sizeof t, "%s/t", base);
	snprintf(p, sizeof p, "%s/ro/sub", t);
	CHECK(util_mkdir_p(p, 0755) == 0);
	snprintf(p, sizeof p, "%s/none/deeper", t);
	CHECK(util_mkdir_p(p, 0755) == 0);
	write_at(t, "ro/f", "x");
	write_at(t, "ro/sub/f", "x");
	write_at(t, "none/f", "x");
	write_at(t, "none/deeper/f", "x");
	/* Innermost first: the owner can still reach them. */
	snprintf(p, sizeof p, "%s/ro/sub", t);
	CHECK(chmod(p, 0500) == 0);
	snprintf(p, sizeof p, "%s/ro", t);
	CHECK(chmod(p, 0500) == 0);
	snprintf(p, sizeof p, "%s/none/deeper", t);
	CHECK(chmod(p, 0) == 0);
	snprintf(p, sizeof p, "%s/none", t);
	CHECK(chmod(p, 0) == 0);
	CHECK(chmod(t, 0500) == 0);
	CHECK_INT(util_rmtree(t), 0);
	CHECK(lstat(t, &st) != 0 && errno == ENOENT);

	/* The top itself 0000. */
	CHECK(mkdir(t, 0755) == 0);
	write_at(t, "f", "x");
	CHECK(chmod(t, 0) == 0);
	CHECK_INT(util_rmtree(t), 0);
	CHECK(lstat(t, &st) != 0 && errno == ENOENT);
}

/*
 * Root reads any directory, so the 0000 case is run as its owner: as
 * nobody when we are root.
 */
static void
rmtree_removes_0500_and_0000_directories(void)
{
	const char *tmp = unit_tmpdir();
	char base[300];
	int status;
	pid_t pid;

	snprintf(base, sizeof base, "%s/own", tmp);
	CHECK(mkdir(base, 0755) == 0);
	if (geteuid() != 0) {
		rmtree_unreadable_as_owner(base);
		return;
	}
	CHECK(chmod(tmp, 0711) == 0);
	CHECK(chown(base, NOBODY, NOBODY) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
		    setuid(NOBODY) != 0)
			_exit(3);
		rmtree_unreadable_as_owner(base);
		fflush(NULL);
		_exit(unit_failed_checks != 0 ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A file's whole text, "" when it cannot be read. */
static void
read_whole(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = f != NULL ? fread(buf, 1, size - 1, f) : 0;

	buf[n] = '\0';
	if (f != NULL)
		fclose(f);
}

/* Replace puts the new text in place; noreplace never touches a file
 * already there and says so; neither leaves its temporary file. */
static void
write_atomic_replaces_or_refuses(void)
{
	const char *tmp = unit_tmpdir();
	char path[300], got[64], err[256];
	struct stat st;
	DIR *d;
	struct dirent *e;
	int files = 0;

	snprintf(path, sizeof path, "%s/pin", tmp);
	CHECK_INT(util_write_atomic(tmp, path, "one", 3, 0640, true, err,
	    sizeof err), 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
	CHECK_INT(util_write_atomic(tmp, path, "two", 3, 0644, true, err,
	    sizeof err), 1);
	read_whole(path, got, sizeof got);
	CHECK_STR(got, "one");
	CHECK_INT(util_write_atomic(tmp, path, "three", 5, 0644, false, err,
	    sizeof err), 0);
	read_whole(path, got, sizeof got);
	CHECK_STR(got, "three");
	CHECK((d = opendir(tmp)) != NULL);
	while (d != NULL && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			files++;
	if (d != NULL)
		closedir(d);
	CHECK_INT(files, 1);
	snprintf(path, sizeof path, "%s/no/such/dir/f", tmp);
	CHECK_INT(util_write_atomic(tmp, path, "x", 1, 0644, false, err,
	    sizeof err), -1);
	CHECK(strstr(err, "no/such/dir") != NULL);
}

/* Whatever already has a name a writer's temporary file could take (a
 * hard link to another file, a symlink, another writer's file, as two
 * processes of one pid in two pid namespaces would name theirs) is never
 * written through nor removed: the temporary file is always a new one. */
static void
write_atomic_never_writes_through_a_planted_temp_name(void)
{
	const char *tmp = unit_tmpdir();
	char path[300], victim[300], planted[340], link2[340], got[64];
	char err[256];
	struct stat st;

	snprintf(path, sizeof path, "%s/planted", tmp);
	snprintf(victim, sizeof victim, "%s/victim", tmp);
	CHECK_INT(util_write_atomic(tmp, victim, "victim", 6, 0644, true, err,
	    sizeof err), 0);
	snprintf(planted, sizeof planted, "%s.tmp.%ld", path, (long)getpid());
	CHECK(link(victim, planted) == 0);
	snprintf(link2, sizeof link2, "%s.tmp", path);
	CHECK(symlink(victim, link2) == 0);
	CHECK_INT(util_write_atomic(tmp, path, "mine", 4, 0600, true, err,
	    sizeof err), 0);
	read_whole(victim, got, sizeof got);
	CHECK_STR(got, "victim");
	read_whole(path, got, sizeof got);
	CHECK_STR(got, "mine");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
	    st.st_nlink == 1);
	CHECK(lstat(planted, &st) == 0 && S_ISREG(st.st_mode));
	CHECK(lstat(link2, &st) == 0 && S_ISLNK(st.st_mode));
	/* A symlink at the target: noreplace refuses it, replace puts the
	 * file in the symlink's place; the file it points to stays. */
	CHECK(unlink(path) == 0);
	CHECK(symlink(victim, path) == 0);
	CHECK_INT(util_write_atomic(tmp, path, "x", 1, 0644, true, err,
	    sizeof err), 1);
	CHECK_INT(util_write_atomic(tmp, path, "y", 1, 0644, false, err,
	    sizeof err), 0);
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	read_whole(victim, got, sizeof got);
	CHECK_STR(got, "victim");
}

UNIT_MAIN(
	TEST(spellings_of_one_repository_are_one),
	TEST(others_stay_apart),
	TEST(rmtree_removes_a_100000_level_tree),
	TEST(rmtree_leaves_what_symlinks_point_to),
	TEST(rmtree_removes_0500_and_0000_directories),
	TEST(write_atomic_replaces_or_refuses),
	TEST(write_atomic_never_writes_through_a_planted_temp_name),
)
