/* Shared by cgroup.c, cgroup-v1.c and cgroup-v2.c only. */
#ifndef KILN_WORKER_CGROUP_INT_H
#define KILN_WORKER_CGROUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef CGROUP_ROOT
#define CGROUP_ROOT "/sys/fs/cgroup"
#endif

#define CGROUP_MAX_DIRS 3

struct cgroup_ops;

struct cgroup {
	const struct cgroup_ops *ops;
	/* v1: one directory per hierarchy (memory, pids, freezer); v2: one. */
	char *dirs[CGROUP_MAX_DIRS];
	/* v1: index of the freezer directory in dirs[], or -1. */
	int freezer;
};

struct cgroup_ops {
	const char *version;
	int (*create)(struct cgroup *cg, const char *name, uint64_t memory,
	    uint64_t pids, char *err, size_t errsize);
	void (*kill)(struct cgroup *cg);
};

extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;

/* Write the formatted text into dir/file; 0 or -errno. */
int cgroup_write(const char *dir, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Read dir/file into buf (NUL-terminated, truncated); 0 or -errno. */
int cgroup_read(const char *dir, const char *file, char *buf, size_t size);
bool cgroup_file_exists(const char *dir, const char *file);
/*
 * The worker's own cgroup path in the v1 hierarchy with `controller`, or
 * in the v2 hierarchy when controller is NULL, from /proc/self/cgroup.
 * Returns a malloc'ed "/path", or NULL.
 */
char *cgroup_own_path(const char *controller);
/* SIGKILL every pid listed in dir/cgroup.procs; the number signalled,
 * or -1 when the list cannot be read. */
int cgroup_kill_listed(const char *dir);
/* Kill loop for hierarchies that cannot freeze or cgroup.kill. */
void cgroup_kill_until_empty(const char *dir);
/* mkdir the group in parent, removing stale groups of dead workers. */
int cgroup_mkdir(char **out, const char *parent, const char *name,
    char *err, size_t errsize);

#endif
