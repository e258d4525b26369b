/*
 * kiln-worker build's own parts: how a build ended and the status line
 * that says so (build-status.c).
 */
#ifndef KILN_WORKER_BUILD_INT_H
#define KILN_WORKER_BUILD_INT_H

#include <stdint.h>

#include <jansson.h>

enum build_status { ST_EXITED, ST_SIGNALED, ST_TIMED_OUT, ST_ERROR };

/*
 * Where a build's time went (--times; bench/matrix reads it from kilnd's
 * log): all of it but `build` is the same for every target, whatever it
 * builds.  CLOCK_MONOTONIC ms: `start`, `ended` and `exec` (the build's
 * exec, reported by the sandbox) are points, the others durations.
 * `checkout` is what the worker waited for the checkout after the rest
 * of the sandbox was ready.
 */
struct stage_times {
	int64_t start, checkout, chown, cgroup, exec, ended;
};

/* The times as a JSON object, or NULL when no build ran. */
json_t *stage_times_json(const struct stage_times *tm);
/* The status line on fd (none when fd < 0); `times` and `extra`'s fields
 * (both stolen) are added when not NULL. */
void write_status(int fd, enum build_status st, int value, const char *error,
    json_t *times, json_t *extra);

#endif
