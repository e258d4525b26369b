/*
 * The loop-lag probe: a timer on kilnd's loop that measures how late it
 * fires.  Whatever holds the loop (a synchronous commit, a long scan, a
 * big render) delays every callback queued behind it, the probe's
 * included, so its lateness is the loop's responsiveness as clients feel
 * it.  GET /metrics shows the histogram, GET /v1/info the worst seen.
 *
 * Everything here runs on the loop thread.
 */
#ifndef KILN_LOOPLAG_H
#define KILN_LOOPLAG_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Upper bounds of the histogram's buckets, seconds (+Inf not counted). */
#define LOOPLAG_NBOUNDS 10
extern const double looplag_bounds[LOOPLAG_NBOUNDS];

struct looplag;

struct looplag_snapshot {
	uint64_t buckets[LOOPLAG_NBOUNDS];	/* cumulative, per bound */
	uint64_t count;			/* samples, the +Inf bucket */
	double sum;			/* seconds late, all samples */
	double max;			/* seconds, the worst since start */
	double max_1m;			/* the worst in the last minute */
	double p99_1m;			/* the 99th percentile, last minute */
	size_t n_1m;			/* samples in the last minute */
};

/* Start probing `loop` every interval_ms (1 to 60000). */
void looplag_start(struct looplag **out, uv_loop_t *loop,
    unsigned interval_ms);
/* The figures so far. */
void looplag_snapshot(const struct looplag *l, struct looplag_snapshot *out);
/* Stop and free (once the timer is closed; the loop must run on to
 * finish it).  NULL is ignored. */
void looplag_close(struct looplag *l);

#endif
