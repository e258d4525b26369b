/*
 * cgroup v2: one unified hierarchy at /sys/fs/cgroup.  memory.max,
 * memory.swap.max and pids.max set the limits; cgroup.kill (Linux 5.14)
 * kills the whole group atomically.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-int.h"
#include "xmalloc.h"

static bool
has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

/*
 * Where the build's group goes.  v2 lets controllers be enabled for a
 * group's children only when the group itself holds no processes (except
 * the root).  So: under the worker's own group when memory and pids can be
 * enabled there; otherwise (the worker sits next to kilnd in a leaf, as
 * kilnd must under Delegate=yes to enable controllers at all) next to it,
 * in the parent, when the parent already gives us both controllers.
 */
static char *
pick_parent(const char *own_dir, char *err, size_t errsize)
{
	char ctrls[512];
	int rc;

	rc = cgroup_write(own_dir, "cgroup.subtree_control", "+memory +pids");
	if (rc == 0)
		return xstrdup(own_dir);
	if (rc == -EBUSY && strcmp(own_dir, CGROUP_ROOT) != 0 &&
	    cgroup_read(own_dir, "cgroup.controllers", ctrls, sizeof ctrls) == 0 &&
	    has_word(ctrls, "memory") && has_word(ctrls, "pids")) {
		char *parent = xstrdup(own_dir);
		*strrchr(parent, '/') = '\0';
		return parent;
	}
	snprintf(err, errsize, "cannot enable memory and pids in %s: %s",
	    own_dir, strerror(-rc));
	return NULL;
}

static int
v2_create(struct cgroup *cg, const char *name, uint64_t memory,
    uint64_t pids, char *err, size_t errsize)
{
	char *own = cgroup_own_path(NULL), *own_dir = NULL, *parent = NULL;
	int ret = -1, rc;

	if (own == NULL) {
		snprintf(err, errsize, "no cgroup v2 entry in /proc/self/cgroup");
		goto out;
	}
	own_dir = xasprintf(CGROUP_ROOT "%s", own);
	parent = pick_parent(own_dir, err, errsize);
	if (parent == NULL)
		goto out;
	if (cgroup_mkdir(&cg->dirs[0], parent, name, err, errsize) != 0)
		goto out;
	rc = cgroup_write(cg->dirs[0], "memory.max", "%llu",
	    (unsigned long long)memory);
	if (rc != 0) {
		snprintf(err, errsize, "%s/memory.max: %s", cg->dirs[0],
		    strerror(-rc));
		goto out;
	}
	/* Over its limit a build is killed, not pushed into swap. */
	if (cgroup_file_exists(cg->dirs[0], "memory.swap.max") &&
	    (rc = cgroup_write(cg->dirs[0], "memory.swap.max", "0")) != 0) {
		snprintf(err, errsize, "%s/memory.swap.max: %s", cg->dirs[0],
		    strerror(-rc));
		goto out;
	}
	/* Kill the whole group on OOM, not one process of it. */
	(void)cgroup_write(cg->dirs[0], "memory.oom.group", "1");
	rc = cgroup_write(cg->dirs[0], "pids.max", "%llu",
	    (unsigned long long)pids);
	if (rc != 0) {
		snprintf(err, errsize, "%s/pids.max: %s", cg->dirs[0], strerror(-rc));
		goto out;
	}
	ret = 0;
out:
	free(parent);
	free(own_dir);
	free(own);
	return ret;
}

static void
v2_kill(struct cgroup *cg)
{
	/* Before 5.14 there is no cgroup.kill: loop. */
	if (cgroup_write(cg->dirs[0], "cgroup.kill", "1") != 0)
		cgroup_kill_until_empty(cg->dirs[0]);
}

const struct cgroup_ops cgroup_v2_ops = {
	.version = "v2",
	.create = v2_create,
	.kill = v2_kill,
};
