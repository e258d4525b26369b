/*
 * cgroup v1: one hierarchy per controller under /sys/fs/cgroup/.  memory
 * and pids set the limits; freezer lets us kill a tree without racing its
 * forks (v1 has no cgroup.kill).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroup-int.h"
#include "xmalloc.h"

enum { V1_MEMORY, V1_PIDS, V1_FREEZER };
static const char *const controllers[] = { "memory", "pids", "freezer" };

static int
v1_create(struct cgroup *cg, const char *name, uint64_t memory,
    uint64_t pids, char *err, size_t errsize)
{
	int rc;

	for (int i = 0; i < CGROUP_MAX_DIRS; i++) {
		char mnt[256], *own, *parent;

		snprintf(mnt, sizeof mnt, CGROUP_ROOT "/%s", controllers[i]);
		own = cgroup_own_path(controllers[i]);
		if (own == NULL || !cgroup_file_exists(mnt, "cgroup.procs")) {
			free(own);
			if (i == V1_FREEZER)
				continue;	/* optional: kill loops instead */
			snprintf(err, errsize, "no cgroup v1 %s hierarchy at %s",
			    controllers[i], mnt);
			return -1;
		}
		parent = xasprintf("%s%s", mnt, own);
		free(own);
		rc = cgroup_mkdir(&cg->dirs[i], parent, name, err, errsize);
		free(parent);
		if (rc != 0)
			return -1;
		if (i == V1_FREEZER)
			cg->freezer = i;
	}

	rc = cgroup_write(cg->dirs[V1_MEMORY], "memory.limit_in_bytes", "%llu",
	    (unsigned long long)memory);
	if (rc != 0) {
		snprintf(err, errsize, "%s/memory.limit_in_bytes: %s",
		    cg->dirs[V1_MEMORY], strerror(-rc));
		return -1;
	}
	/*
	 * memory+swap = memory: a build over its limit is killed instead of
	 * pushing the host into swap.  Only with swap accounting enabled.
	 */
	if (cgroup_file_exists(cg->dirs[V1_MEMORY], "memory.memsw.limit_in_bytes")) {
		rc = cgroup_write(cg->dirs[V1_MEMORY], "memory.memsw.limit_in_bytes",
		    "%llu", (unsigned long long)memory);
		if (rc != 0) {
			snprintf(err, errsize, "%s/memory.memsw.limit_in_bytes: %s",
			    cg->dirs[V1_MEMORY], strerror(-rc));
			return -1;
		}
	}
	rc = cgroup_write(cg->dirs[V1_PIDS], "pids.max", "%llu",
	    (unsigned long long)pids);
	if (rc != 0) {
		snprintf(err, errsize, "%s/pids.max: %s", cg->dirs[V1_PIDS],
		    strerror(-rc));
		return -1;
	}
	return 0;
}

static void
v1_kill(struct cgroup *cg)
{
	const char *fz = cg->freezer >= 0 ? cg->dirs[cg->freezer] : NULL;
	struct timespec ts = { 0, 10 * 1000000L };
	char state[64];

	if (fz == NULL || cgroup_write(fz, "freezer.state", "FROZEN") != 0) {
		cgroup_kill_until_empty(cg->dirs[V1_PIDS]);
		return;
	}
	/*
	 * Frozen processes cannot fork, so one pass over cgroup.procs gets
	 * them all; the SIGKILLs take effect on thaw.  FREEZING can last a
	 * moment (a task in an uninterruptible sleep): wait a little, then
	 * kill what is listed anyway and loop after thawing.
	 */
	for (int i = 0; i < 100; i++) {
		if (cgroup_read(fz, "freezer.state", state, sizeof state) != 0 ||
		    strncmp(state, "FROZEN", 6) == 0)
			break;
		nanosleep(&ts, NULL);
	}
	cgroup_kill_listed(fz);
	(void)cgroup_write(fz, "freezer.state", "THAWED");
	cgroup_kill_until_empty(cg->dirs[V1_PIDS]);
}

const struct cgroup_ops cgroup_v1_ops = {
	.version = "v1",
	.create = v1_create,
	.kill = v1_kill,
};
