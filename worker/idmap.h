/*
 * Builds under subordinate ids (subid.h), when the worker is not root.
 *
 * The build's user namespace maps SANDBOX_UID/GID to the first
 * subordinate uid/gid of the worker's user, and 0 to the worker's own
 * ids, as slirp4netns's sandbox (network builds) becomes uid 0 in there;
 * pid 1 leaves uid 0 before it builds anything, and nothing in the
 * sandbox belongs to it.  Only newuidmap(1) and newgidmap(1), setuid
 * root, may write such a mapping.
 *
 * The trees a build writes (its work tree, its cache, the module cache
 * of the deps step) change hands before and after it, in a short-lived
 * process of a user namespace of its own that maps root to the worker
 * and SANDBOX_UID/GID to the subordinate ids: root there may chown
 * between the two, and nothing else.  After the build the work tree goes
 * back to the worker, so that kilnd can read /out and remove the tree;
 * caches stay the build's.
 */
#ifndef KILN_WORKER_IDMAP_H
#define KILN_WORKER_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "subid.h"

/*
 * Map SANDBOX_UID/GID of pid's user namespace to ids->uid/gid, and with
 * map_self also 0 to the worker's own uid/gid, with newuidmap and
 * newgidmap.  setgroups(2) stays allowed in there (newgidmap allows it
 * for a range of /etc/subgid): the namespace's first process can drop
 * the worker's supplementary groups, and has to.  0, or -1 with err.
 */
int idmap_map(pid_t pid, const struct subid *ids, bool map_self, char *err,
    size_t errsize);

/* The same with other ids than SANDBOX_UID/GID inside (kiln-worker build
 * --rebuild's second run). */
int idmap_map_inside(pid_t pid, const struct subid *ids, uid_t inside_uid,
    gid_t inside_gid, bool map_self, char *err, size_t errsize);

enum idmap_owner {
	IDMAP_TO_BUILD,		/* SANDBOX_UID/GID, the subordinate ids */
	IDMAP_TO_SELF,		/* the worker's own uid and gid */
};

/*
 * chown -R of each of the n paths (never through a symlink) to `to`, in
 * a child process of a new user namespace (above).  Everything in the
 * trees must belong to the worker or to the subordinate ids: root of that
 * namespace can change nothing else.  0, or -1 with err.
 */
int idmap_chown(const struct subid *ids, const char *const *paths, size_t n,
    enum idmap_owner to, char *err, size_t errsize);

#endif
