/*
 * tree_chown (worker/tree.c) and the walk under it (lib/walk.c):
 * 100,000 levels chowned with a small stack and a handful of fds, no
 * symlink or hard link out of the tree followed, an error deep down
 * named in a message of bounded length, a directory moved during the
 * walk stops it, one removed does not, and every entry of a tree is
 * seen exactly once.
 *
 * Root can chown to another uid and does; otherwise the chown is to our
 * own uid, which still walks everything.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "lib/util.h"
#include "lib/walk.h"
#include "deeptree.h"
#include "unit.h"
#include "worker/tree.h"

static uid_t to_uid;
static gid_t to_gid;

static void
pick_owner(void)
{
	to_uid = geteuid() == 0 ? 4242 : geteuid();
	to_gid = geteuid() == 0 ? 4243 : getegid();
}

static bool
owned(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && st.st_uid == to_uid &&
	    st.st_gid == to_gid;
}

struct chown_call {
	const char *path;
	char err[512];
	int rc;
};

static void
chown_call(void *p)
{
	struct chown_call *c = p;

	c->rc = tree_chown(c->path, to_uid, to_gid, c->err, sizeof c->err);
}

/* Down the deep tree with openat: is every 1000th level and its file
 * and the bottom ours now? */
static bool
deep_tree_owned(const char *top, size_t levels)
{
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC), sub;
	bool good = fd >= 0;
	struct stat st;

	for (size_t i = 0; good && i <= levels; i++) {
		if (i % 1000 == 0 || i == levels)
			good = fstat(fd, &st) == 0 && st.st_uid == to_uid &&
			    fstatat(fd, "f", &st, 0) == 0 &&
			    st.st_uid == to_uid && st.st_gid == to_gid;
		if (!good || i == levels)
			break;
		sub = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = sub;
		good = fd >= 0;
	}
	if (fd >= 0)
		close(fd);
	return good;
}

static void
chown_walks_100000_levels(void)
{
	const char *tmp = unit_tmpdir();
	char top[300];
	struct chown_call c = { top, "", -12345 };
	int before = max_fd();

	pick_owner();
	snprintf(top, sizeof top, "%s/deep", tmp);
	CHECK(mkdir(top, 0755) == 0);
	CHECK(make_deep(top, DEEP) == 0);
	run_bounded(chown_call, &c);
	CHECK_INT(c.rc, 0);
	if (c.rc != 0)
		fprintf(stderr, "  tree_chown: %s\n", c.err);
	CHECK(deep_tree_owned(top, DEEP));
	CHECK_INT(max_fd(), before);
	CHECK_INT(util_rmtree(top), 0);
}

static void
chown_follows_nothing_out_of_the_tree(void)
{
	const char *tmp = unit_tmpdir();
	char out[300], t[300], p[600], k[600];
	struct stat st, before;

	pick_owner();
	snprintf(out, sizeof out, "%s/outside", tmp);
	snprintf(t, sizeof t, "%s/t", tmp);
	snprintf(p, sizeof p, "%s/sub", out);
	CHECK(util_mkdir_p(p, 0755) == 0);
	snprintf(k, sizeof k, "%s/keep", out);
	write_text(k, "precious\n");
	CHECK(lstat(k, &before) == 0);
	snprintf(p, sizeof p, "%s/a/b", t);
	CHECK(util_mkdir_p(p, 0755) == 0);
	snprintf(p, sizeof p, "%s/a/b/file", t);
	write_text(p, "x");
	snprintf(p, sizeof p, "%s/a/b/rel", t);
	CHECK(symlink("../../../outside", p) == 0);
	snprintf(p, sizeof p, "%s/abs", t);
	CHECK(symlink(out, p) == 0);
	snprintf(p, sizeof p, "%s/a/keep", t);
	CHECK(symlink(k, p) == 0);
	snprintf(p, sizeof p, "%s/hard", t);
	CHECK(link(k, p) == 0);

	char err[512] = "";
	CHECK_INT(tree_chown(t, to_uid, to_gid, err, sizeof err), 0);
	CHECK_STR(err, "");
	/* The tree, its symlinks themselves included, is ours... */
	CHECK(owned(t));
	snprintf(p, sizeof p, "%s/a/b", t);
	CHECK(owned(p));
	snprintf(p, sizeof p, "%s/a/b/file", t);
	CHECK(owned(p));
	snprintf(p, sizeof p, "%s/a/b/rel", t);
	CHECK(owned(p));
	snprintf(p, sizeof p, "%s/abs", t);
	CHECK(owned(p));
	/* ...and nothing outside it changed, nor the hard link to it. */
	CHECK(lstat(k, &st) == 0 && st.st_uid == before.st_uid &&
	    st.st_gid == before.st_gid);
	CHECK(lstat(out, &st) == 0 && st.st_uid == before.st_uid);
	snprintf(p, sizeof p, "%s/sub", out);
	CHECK(lstat(p, &st) == 0 && st.st_uid == before.st_uid);
	if (geteuid() == 0)
		CHECK(!owned(k));

	/* A symlink given as the tree is refused, not followed. */
	snprintf(p, sizeof p, "%s/abs", t);
	CHECK(tree_chown(p, to_uid, to_gid, err, sizeof err) != 0);
	CHECK(strstr(err, "abs") != NULL);
	snprintf(p, sizeof p, "%s/missing", tmp);
	CHECK(tree_chown(p, to_uid, to_gid, err, sizeof err) != 0);
	CHECK(strstr(err, "No such file") != NULL);
}

/*
 * Whoever owns base: an unreadable directory 5,000 levels down is named
 * by the top, its name and its depth, not by a path 10,000 bytes long.
 */
static void
deep_error_as_owner(const char *base)
{
	char top[300], err[512] = "", want[400];
	int fd, sub;

	snprintf(top, sizeof top, "%s/deep", base);
	CHECK(mkdir(top, 0755) == 0);
	CHECK(make_deep(top, 5000) == 0);
	/* levels 1..5000 are "d"; make the last one 0000. */
	fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; fd >= 0 && i < 4999; i++) {
		sub = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = sub;
	}
	CHECK(fd >= 0 && fchmodat(fd, "d", 0, 0) == 0);
	if (fd >= 0)
		close(fd);
	CHECK(tree_chown(top, geteuid(), getegid(), err, sizeof err) != 0);
	snprintf(want, sizeof want, "open %s/\u2026/d (depth 5000): "
	    "Permission denied", top);
	CHECK_STR(err, want);
	/* The owner can still remove it (rm -rf makes it readable). */
	CHECK_INT(util_rmtree(top), 0);
}

static void
deep_error_message_is_bounded(void)
{
	const char *tmp = unit_tmpdir();
	char base[300];
	int status;
	pid_t pid;

	snprintf(base, sizeof base, "%s/own", tmp);
	CHECK(mkdir(base, 0755) == 0);
	if (geteuid() != 0) {
		deep_error_as_owner(base);
		return;
	}
	/* Root opens a 0000 directory: be its owner instead. */
	CHECK(chmod(tmp, 0711) == 0);
	CHECK(chown(base, NOBODY, NOBODY) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
		    setuid(NOBODY) != 0)
			_exit(3);
		deep_error_as_owner(base);
		fflush(NULL);
		_exit(unit_failed_checks != 0 ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Another build sharing the cache moves the directory we are in to
 * another parent: going up, ".." is no longer where we came from, and
 * the walk stops there instead of going on in the wrong place.
 */
static void
walk_stops_when_a_directory_moves(void)
{
	const char *tmp = unit_tmpdir();
	char from[600], to[600], shown[700], want[700];
	struct walk *w = NULL;
	struct walk_entry e;
	bool moved = false, stopped = false, after = false;

	snprintf(from, sizeof from, "%s/t/a/b/c", tmp);
	CHECK(util_mkdir_p(from, 0755) == 0);
	snprintf(to, sizeof to, "%s/t/a/b/c/f", tmp);
	write_text(to, "x");
	snprintf(to, sizeof to, "%s/t/other", tmp);
	CHECK(mkdir(to, 0755) == 0);
	snprintf(to, sizeof to, "%s/t/other/c", tmp);
	snprintf(want, sizeof want, "%s/t", tmp);
	CHECK_INT(walk_open(&w, want, 0), 0);
	if (w == NULL)
		return;
	while (walk_next(w, &e) != WALK_END) {
		if (stopped)
			after = true;
		if (e.type == WALK_DIR && strcmp(e.name, "c") == 0) {
			CHECK(rename(from, to) == 0);
			moved = true;
		} else if (e.type == WALK_ERROR) {
			CHECK(moved);
			CHECK_INT(e.error, ESTALE);
			CHECK(e.fatal);
			snprintf(want, sizeof want, "%s/t/\u2026/c (depth 3)",
			    tmp);
			CHECK_STR(walk_show(w, &e, shown, sizeof shown), want);
			stopped = true;
		}
	}
	CHECK(moved && stopped && !after);
	walk_close(w);
}

/*
 * A directory removed while the walk is in it is no reason to stop:
 * ".." of a removed directory is still the one it was removed from, and
 * the walk goes on with the rest.
 */
static void
walk_goes_on_when_its_directory_is_removed(void)
{
	const char *tmp = unit_tmpdir();
	char p[600];
	struct walk *w = NULL;
	struct walk_entry e;
	bool removed = false, after = false;
	int errors = 0;

	snprintf(p, sizeof p, "%s/t/a/c", tmp);
	CHECK(util_mkdir_p(p, 0755) == 0);
	snprintf(p, sizeof p, "%s/t/a/f", tmp);
	write_text(p, "x");
	snprintf(p, sizeof p, "%s/t", tmp);
	CHECK_INT(walk_open(&w, p, 0), 0);
	if (w == NULL)
		return;
	while (walk_next(w, &e) != WALK_END) {
		errors += e.type == WALK_ERROR;
		if (e.type == WALK_DIR && strcmp(e.name, "c") == 0) {
			snprintf(p, sizeof p, "%s/t/a/c", tmp);
			CHECK(rmdir(p) == 0);
			removed = true;
		} else if (removed && e.type == WALK_DIR_DONE && e.depth == 0)
			after = true;
	}
	walk_close(w);
	CHECK(removed && after);
	CHECK_INT(errors, 0);
}

/* Each entry once; the counts of a known tree. */
static void
walk_sees_each_entry_once(void)
{
	const char *tmp = unit_tmpdir();
	char p[600];
	struct walk *w = NULL;
	struct walk_entry e;
	int dirs = 0, done = 0, files = 0, errors = 0, links = 0;

	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof p, "%s/t/d%d/e%d", tmp, i % 4, i);
		CHECK(util_mkdir_p(p, 0755) == 0);
		snprintf(p, sizeof p, "%s/t/d%d/e%d/f", tmp, i % 4, i);
		write_text(p, "x");
	}
	snprintf(p, sizeof p, "%s/t/d0/link", tmp);
	CHECK(symlink("/", p) == 0);
	snprintf(p, sizeof p, "%s/t", tmp);
	CHECK_INT(walk_open(&w, p, 0), 0);
	if (w == NULL)
		return;
	while (walk_next(w, &e) != WALK_END) {
		dirs += e.type == WALK_DIR;
		done += e.type == WALK_DIR_DONE;
		files += e.type == WALK_FILE;
		errors += e.type == WALK_ERROR;
		links += e.type == WALK_FILE && e.d_type == DT_LNK;
	}
	walk_close(w);
	CHECK_INT(dirs, 1 + 4 + 20);
	CHECK_INT(done, dirs);
	CHECK_INT(files, 20 + 1);
	CHECK_INT(links, 1);
	CHECK_INT(errors, 0);
}

UNIT_MAIN(
	TEST(chown_walks_100000_levels),
	TEST(chown_follows_nothing_out_of_the_tree),
	TEST(deep_error_message_is_bounded),
	TEST(walk_stops_when_a_directory_moves),
	TEST(walk_goes_on_when_its_directory_is_removed),
	TEST(walk_sees_each_entry_once),
)
