/*
 * Resource limits of the build process (setrlimit).  Inherited by
 * everything the build starts.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "sandbox.h"

static int
set_limit(int resource, const char *name, rlim_t value, char *err,
    size_t errsize)
{
	struct rlimit rl;

	/* Lower only: raising a hard limit needs privileges we do not have. */
	if (getrlimit(resource, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    value > rl.rlim_max)
		value = rl.rlim_max;
	rl.rlim_cur = value;
	rl.rlim_max = value;
	if (setrlimit(resource, &rl) != 0) {
		snprintf(err, errsize, "setrlimit(%s, %llu): %s", name,
		    (unsigned long long)value, strerror(errno));
		return -1;
	}
	return 0;
}

int
sandbox_rlimit_apply(const struct sandbox_config *cfg, char *err,
    size_t errsize)
{
	/*
	 * No core files: a crashing compiler would write its memory into /src
	 * or /out, and from there into the artifacts or the cache.
	 */
	if (set_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, err, errsize) != 0)
		return -1;
	/* Bounds kernel memory held by one process's file table. */
	if (set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", cfg->nofile, err,
	    errsize) != 0)
		return -1;
	/*
	 * /out, /src, /tmp and /cache are host directories: one runaway file
	 * must not fill the host's disk.  (A build can still write many files;
	 * disk quotas are the host's business.)
	 */
	if (set_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", cfg->fsize, err,
	    errsize) != 0)
		return -1;
	/*
	 * No RLIMIT_AS: the address space is not memory (Go reserves large
	 * arenas; 512 MiB kills its runtime at start, measured here).  Memory is
	 * limited by the memory cgroup.
	 *
	 * RLIMIT_NPROC counts every process and thread of the *real uid*
	 * system-wide, not of this build, so it is only set when the caller
	 * asks (cfg->nproc != 0): when no pids cgroup can be had and a
	 * system-wide cap on the uid is better than none.
	 */
	if (cfg->nproc != 0 &&
	    set_limit(RLIMIT_NPROC, "RLIMIT_NPROC", cfg->nproc, err, errsize) != 0)
		return -1;
	return 0;
}
