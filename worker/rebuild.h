/*
 * kiln-worker build --rebuild (kiln-worker(8), "Rebuild"): after a
 * first run that exited 0, the same commit is built again in a second
 * sandbox that differs from the first in what commonly leaks into
 * outputs, and the two /out trees are compared (outcmp.h).  build.c
 * runs the builds; this file says how the two runs differ, waits for
 * the clock, and reports.
 */
#ifndef KILN_WORKER_REBUILD_H
#define KILN_WORKER_REBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "outcmp.h"

/* What one run sees that the other may not. */
struct rebuild_run {
	const char *src_inside;	/* the work tree and cwd; NULL: /src */
	uid_t inside_uid;	/* 0: SANDBOX_UID */
	gid_t inside_gid;
	mode_t umask;
	char **env;		/* NULL-terminated; strings owned by env_mem */
	char **env_mem;		/* what rebuild_run_free frees */
	size_t nmem;
};

/* Where the second run's tree lives in the work root. */
#define REBUILD_DIR "rebuild"

/*
 * The first run of a build from the caller's environment (env,
 * NULL-terminated): with `rebuild`, TZ, LANG and LC_ALL get fixed values
 * where the caller set none, so that the second run's differ from
 * something known.  Without it, the caller's environment as it is.
 */
void rebuild_first(struct rebuild_run *out, char *const *env, bool rebuild);
/* The second run, from the first's. */
void rebuild_second(struct rebuild_run *out, const struct rebuild_run *first);
void rebuild_run_free(struct rebuild_run *r);

/*
 * Wait until the wall clock's second is later than `started` (the first
 * run's start), so that a build that stamps the time sees another one.
 * sfd: the worker's signalfd; returns at once with *cancel_sig set on
 * SIGTERM or SIGINT.
 */
void rebuild_wait_clock(time_t started, int sfd, int *cancel_sig);

/*
 * When diffoscope(1) is on PATH, run it on the first pair of differing
 * regular files in c (ROOT/out/PATH and ROOT/rebuild/out/PATH) and copy
 * its first bytes to stdout after a line "kiln-worker: rebuild:
 * differs: PATH"; without diffoscope, that line only.
 */
void rebuild_explain(const struct outcmp *c, const char *root,
    int64_t timeout_ms);

/*
 * Runs the second build in top (its src/, out/, tmp/), with cache as its
 * /cache (NULL for none), and returns NULL when it exited 0, or why not
 * (in why: "second build exited 2"), its one difference.
 */
typedef const char *(*rebuild_fn)(void *data, const char *top,
    const char *cache, const struct rebuild_run *v, char *why,
    size_t whysize);

/*
 * After a first run in root that exited 0 and started at `started`:
 * wait for the clock, build again with fn in root/REBUILD_DIR (with an
 * empty cache of its own when with_cache), compare the two /out trees,
 * explain the first difference, and remove root/REBUILD_DIR.  The
 * status fields, or NULL when canceled (*cancel_sig set).
 */
json_t *rebuild_run(const char *root, bool with_cache, time_t started,
    int sfd, int *cancel_sig, const struct rebuild_run *first,
    rebuild_fn fn, void *data);

/*
 * The status line's fields: "reproducible", and when false
 * "differences" (sorted, at most OUTCMP_MAX, and no more than fit in
 * REBUILD_PATHS_MAX bytes of JSON) and "more_differences".
 * c NULL with why: the second run failed (why is its one difference).
 */
#define REBUILD_PATHS_MAX 2048
json_t *rebuild_status(const struct outcmp *c, const char *why);

#endif
