/*
 * chown -R for kiln-worker (tree.h) on top of walk.h.
 *
 * The cache was written by earlier builds, and a build of the same
 * repository may run in it while we walk.  They may have planted
 * symlinks, or swap a directory for one, to make a root worker hand
 * /etc/shadow to the build uid; or nest directories deeper than any
 * recursion survives, so that every later build fails.  So nothing is
 * followed: each step is relative to an open directory, opened with
 * O_NOFOLLOW, and walk.h stops when a directory was moved.
 *
 * A non-directory that is not ours and has other hard links is left
 * alone: it could be a link to a file outside the tree.  Between the
 * fstatat and the fchownat the name could be swapped, but only for
 * another entry of the same tree: a build sees the tree through a
 * mount of its own, and link(2) does not cross mounts.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree.h"
#include "walk.h"

int
tree_chown(const char *path, uid_t uid, gid_t gid, char *err, size_t errsize)
{
	char shown[PATH_MAX + 300];
	struct walk *w;
	struct walk_entry e;
	const char *what = NULL;
	int rc;

	if ((rc = walk_open(&w, path, 0)) != 0) {
		snprintf(err, errsize, "open %s: %s", path, strerror(-rc));
		return -1;
	}
	while (what == NULL && walk_next(w, &e) != WALK_END) {
		struct stat st;

		switch (e.type) {
		case WALK_DIR:
			if ((e.st.st_uid != uid || e.st.st_gid != gid) &&
			    fchown(e.fd, uid, gid) != 0)
				what = "chown";
			break;
		case WALK_FILE:
			if (fstatat(e.fd, e.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				if (errno != ENOENT)
					what = "stat";
				break;
			}
			if ((st.st_uid == uid && st.st_gid == gid) ||
			    (st.st_nlink > 1 && !S_ISLNK(st.st_mode)))
				break;
			if (fchownat(e.fd, e.name, uid, gid,
			    AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
				what = "chown";
			break;
		case WALK_ERROR:
			errno = e.error;
			what = e.error == ESTALE ? "walk" : "open";
			break;
		case WALK_DIR_DONE:
		case WALK_END:
			break;
		}
	}
	if (what != NULL) {
		int error = errno;
		walk_show(w, &e, shown, sizeof shown);
		if (error == ESTALE)
			snprintf(err, errsize, "%s %s: the tree changed while "
			    "it was walked (a directory was moved); nothing "
			    "outside it was touched", what, shown);
		else
			snprintf(err, errsize, "%s %s: %s", what, shown,
			    strerror(error));
	}
	walk_close(w);
	return what != NULL ? -1 : 0;
}
