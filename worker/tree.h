/*
 * kiln-worker hands the work tree and the repository's cache to the
 * build user: chown -R over trees that earlier builds wrote.
 */
#ifndef KILN_TREE_H
#define KILN_TREE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * chown -R path to uid:gid at any depth, following nothing: a symlink
 * is chowned itself, and a non-directory with other hard links is left
 * as it is.  0, or -1 with a message naming the entry (its path
 * shortened when deep) in err.
 */
int tree_chown(const char *path, uid_t uid, gid_t gid, char *err,
    size_t errsize);

#endif
