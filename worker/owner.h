/*
 * Who a build runs as and what it is handed first (owner.c).  ids NULL:
 * a root worker's build uid and gid; else an unprivileged worker's
 * subordinate ids (subid.h), whose chown runs in a user namespace of its
 * own (idmap.h).  0, or -1 with a message in err.
 */
#ifndef KILN_WORKER_OWNER_H
#define KILN_WORKER_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "subid.h"

/* An unprivileged worker's build ids: *subids, or its own only with
 * allow_same_uid (--allow-same-uid). */
int owner_identity(struct subid *ids, bool *subids, bool allow_same_uid,
    char *err, size_t errsize);
/* A cache (DIR) to uid:gid, walked only when DIR.owner says otherwise. */
int owner_cache(const char *dir, uid_t uid, gid_t gid,
    const struct subid *ids, char *err, size_t errsize);
/* ROOT/src, ROOT/out and ROOT/tmp to uid:gid. */
int owner_work_tree(const char *root, uid_t uid, gid_t gid,
    const struct subid *ids, char *err, size_t errsize);

#endif
