/*
 * Who a build runs as, and handing it what it writes (owner.h): the
 * identity of an unprivileged worker's builds, the work tree and the
 * caches.  The other way back, after the build, is build.c's.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idmap.h"
#include "owner.h"
#include "tree.h"
#include "worker.h"

/*
 * Whose ids an unprivileged worker's build runs as.  Not ours: we own
 * what kilnd owns (the signing key, the database, every mirror, cache
 * and log), and a build running as us could reach all of it through any
 * hole in the sandbox.  So the first subordinate uid and gid of our user
 * (subid.h), and our own only where kilnd was told to allow it
 * (--allow-same-uid, from allow_same_uid_builds).  The message names no
 * user: it becomes the job's error.  0, or -1 with err.
 */
int
owner_identity(struct subid *ids, bool *subids, bool allow_same_uid,
    char *err, size_t errsize)
{
	char why[512];
	int rc = subid_find(ids, why, sizeof why);

	*subids = rc == 1;
	if (rc == 1 || (rc == 0 && allow_same_uid))
		return 0;
	if (rc < 0)
		snprintf(err, errsize, "%s", why);
	else
		snprintf(err, errsize, "refusing to build as kilnd's own uid: "
		    "kilnd's user has no subordinate ids in %s and %s (set "
		    "allow_same_uid_builds = yes in kilnd.conf to build as "
		    "kilnd's uid anyway; unsafe)", SUBID_UID_FILE,
		    SUBID_GID_FILE);
	return -1;
}

/*
 * The caches outlive builds: the repository's build cache (every
 * target's compiled packages) and the module cache (every module the
 * farm ever fetched).  Walking one before each build would cost every
 * target time that grows with the cache (tens of ms for one Go program's
 * 8 targets, seconds for a module cache).  Builds, running as the build
 * user, made everything in them, so the walk is needed only when the
 * build uid changed, the directory is new (kilnd made it) or an earlier
 * walk did not finish.  A walk that finished is recorded beside the
 * cache (DIR.owner, written by us, out of every sandbox's reach), never
 * inside it.  With subordinate ids (ids not NULL; uid and gid are
 * theirs) the walk runs in a user namespace of its own (idmap.h).
 */
/*
 * DIR.owner, beside DIR whatever way DIR is spelt: "/c/x/" would give
 * /c/x/.owner and "/c/x/." /c/x/..owner, inside the cache, where a build
 * could rewrite the record or make it a FIFO that hangs us in open(2).
 * So trailing slashes go, and a last component "." or ".." is refused.
 */
static int
record_path(char *path, size_t size, const char *dir, char *err,
    size_t errsize)
{
	size_t n = strlen(dir), base;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	for (base = n; base > 0 && dir[base - 1] != '/'; base--)
		;
	if (n - base == 0 || (n - base == 1 && dir[base] == '.') ||
	    (n - base == 2 && dir[base] == '.' && dir[base + 1] == '.')) {
		snprintf(err, errsize, "%s: a cache's path must end in its "
		    "directory's own name", dir);
		return -1;
	}
	if ((size_t)snprintf(path, size, "%.*s.owner", (int)n, dir) >= size) {
		snprintf(err, errsize, "%s: path too long", dir);
		return -1;
	}
	return 0;
}

int
owner_cache(const char *dir, uid_t uid, gid_t gid, const struct subid *ids,
    char *err, size_t errsize)
{
	char path[PATH_MAX], want[64], have[64] = "";
	struct stat st;
	ssize_t n;
	int fd;

	if (record_path(path, sizeof path, dir, err, errsize) != 0)
		return -1;
	snprintf(want, sizeof want, "%u:%u\n", (unsigned)uid, (unsigned)gid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		n = read(fd, have, sizeof have - 1);
		have[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (strcmp(have, want) == 0 && stat(dir, &st) == 0 &&
	    st.st_uid == uid && st.st_gid == gid)
		return 0;
	unlink(path);
	if ((ids != NULL ? idmap_chown(ids, &dir, 1, IDMAP_TO_BUILD, err,
	    errsize) : tree_chown(dir, uid, gid, err, errsize)) != 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (fd < 0 || worker_write_all(fd, want, strlen(want)) != 0) {
		/* Only the shortcut is lost: the next step walks again. */
		if (fd >= 0)
			close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	return 0;
}

/*
 * ROOT/src (checked out), out and tmp to the build user: a root worker's
 * build uid (ids NULL), or the subordinate ids `ids`.
 */
int
owner_work_tree(const char *root, uid_t uid, gid_t gid,
    const struct subid *ids, char *err, size_t errsize)
{
	static const char *const subdirs[] = { "src", "out", "tmp" };
	char dirs[3][PATH_MAX];
	const char *give[3] = { dirs[0], dirs[1], dirs[2] };

	for (size_t i = 0; i < 3; i++)
		snprintf(dirs[i], sizeof dirs[i], "%s/%s", root, subdirs[i]);
	if (ids != NULL)
		return idmap_chown(ids, give, 3, IDMAP_TO_BUILD, err, errsize);
	for (size_t i = 0; i < 3; i++)
		if (tree_chown(dirs[i], uid, gid, err, errsize) != 0)
			return -1;
	return 0;
}
