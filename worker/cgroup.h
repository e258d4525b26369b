/*
 * Per-build control groups: a memory limit, a pids limit, and a way to
 * kill every process of a build at once.  cgroup v2 (a unified hierarchy
 * at /sys/fs/cgroup) or v1 (memory, pids and freezer hierarchies under
 * /sys/fs/cgroup/), detected at run time; one implementation per file
 * (cgroup-v1.c, cgroup-v2.c).  The group is created under the worker's own
 * cgroup, which kilnd owns when systemd delegates it (Delegate=yes).
 */
#ifndef KILN_WORKER_CGROUP_H
#define KILN_WORKER_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroup;

/*
 * Create the group `name` with the limits.  Returns 0 with *out set, or -1
 * with the reason in err when there are no writable cgroups (the caller
 * warns and goes on with rlimits only).
 */
int cgroup_create(struct cgroup **out, const char *name, uint64_t memory,
    uint64_t pids, char *err, size_t errsize);

/* Move process `pid` (all its threads) into the group. */
int cgroup_attach(struct cgroup *cg, pid_t pid, char *err, size_t errsize);

/* SIGKILL every process in the group; returns when they are dead or
 * after a short bound. */
void cgroup_kill(struct cgroup *cg);

/* Kill what is left, remove the group, free cg.  NULL is fine. */
void cgroup_destroy(struct cgroup *cg);

/* "v1" or "v2". */
const char *cgroup_version(const struct cgroup *cg);

#endif
