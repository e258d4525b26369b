/*
 * Subordinate ids (subuid(5), subgid(5)): host uids and gids that a user
 * may map into its user namespaces with newuidmap(1) and newgidmap(1)
 * (Debian package uidmap).  An unprivileged kilnd runs its builds as the
 * first subordinate uid and gid of its user, never as itself.
 */
#ifndef KILN_SUBID_H
#define KILN_SUBID_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SUBID_UID_FILE "/etc/subuid"
#define SUBID_GID_FILE "/etc/subgid"

/*
 * The first id of the first usable range in FILE ("OWNER:START:COUNT"
 * lines) whose owner is the user named `user` (may be NULL) or its uid
 * written in decimal, as newuidmap matches them.  A range that starts at
 * 0 or holds `self` (the user's own id in that file's kind) is not
 * usable: it would map root, or the user itself, to the build.
 * 1 with *out set; 0 when there is none (a missing FILE too), with the
 * reason in err; -1 when FILE cannot be read, with the reason in err.
 */
int subid_first(unsigned long *out, const char *file, const char *user,
    uid_t uid, unsigned long self, char *err, size_t errsize);

/* The calling process's real user, from both files. */
struct subid {
	uid_t uid;		/* first subordinate uid */
	gid_t gid;		/* first subordinate gid */
};

/*
 * 1 with *out set when /etc/subuid and /etc/subgid both give the real
 * user of this process a range; 0 when either does not, -1 when either
 * cannot be read; err says which file and which user.
 */
int subid_find(struct subid *out, char *err, size_t errsize);

/*
 * kilnd at start: one log line saying whose ids builds run as, and when
 * they cannot run, why: no range (refused unless allow_same_uid), or
 * newuidmap/newgidmap missing or refused, tried for real with WORKER
 * reclaim on an empty directory in state_dir (not when worker is NULL:
 * that blocks for a few milliseconds).  Nothing as root.
 */
void subid_log_builds(bool allow_same_uid, const char *worker,
    const char *state_dir);

/*
 * Where newuidmap and newgidmap are looked for: the system's own
 * directories, never a caller's PATH, as they are setuid programs.
 */
#define SUBID_HELPER_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*
 * rm -rf of a tree that builds wrote, as util_rmtree (0 or -errno), for
 * kilnd.  A worker killed during a build under subordinate ids could not
 * give its tree back, and kilnd may not empty the build's directories:
 * then `WORKER reclaim -- PATH` gives the tree back to kilnd, and the
 * removal is tried again.  Blocks until done: for the thread pool.
 */
int subid_rmtree(const char *worker, const char *path);

#endif
