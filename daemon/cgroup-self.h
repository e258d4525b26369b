/*
 * kilnd's own control group.  On a cgroup v2 host, systemd's Delegate=yes
 * hands kilnd the group it starts in; builds can only get memory and pids
 * limits in groups below it once those controllers are enabled in its
 * cgroup.subtree_control, and v2 allows that only in a group that holds no
 * processes itself.  So at start kilnd moves itself into a child,
 * GROUP/supervisor, then enables memory and pids in GROUP, where
 * kiln-worker creates one group per build next to the supervisor.
 *
 * Nothing is done on a v1 or hybrid hierarchy, nor when the group is not
 * delegated: kilnd never rearranges groups that belong to someone else.
 * Separate from worker/cgroup*.c on purpose: the daemon shares no code
 * with the worker's cgroup handling.
 */
#ifndef KILN_CGROUP_SELF_H
#define KILN_CGROUP_SELF_H

#include <stddef.h>

/* The group kilnd moves into, below the delegated one. */
#define CGROUP_SELF_SUPERVISOR "supervisor"

/*
 * Look at /proc/self/cgroup and the v2 hierarchy mounted at root
 * ("/sys/fs/cgroup") and, when kilnd's group is delegated, move kilnd
 * into GROUP/supervisor and enable the controllers builds need in GROUP.
 * Call once, early, before any child or thread exists.  Returns 0 with
 * what was done, or why nothing was, in msg (one line for the log); -1
 * with msg saying what failed or is missing (builds then run with what
 * the worker can get).
 */
int cgroup_self_setup(const char *root, char *msg, size_t msgsize);

#endif
