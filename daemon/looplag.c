/*
 * The loop-lag probe (looplag.h): a one-shot timer re-armed from its own
 * callback, each time noting when it is due; when it fires, the time past
 * that is the loop's lag.  The samples of the last minute are kept in a
 * ring for a percentile; the histogram and the maximum cover the whole
 * run.
 */
#include "config.h"

#include <stdlib.h>

#include "looplag.h"
#include "util.h"
#include "xmalloc.h"

/* From under a millisecond (an idle loop's jitter) to a second (a stall
 * that clients see as a hang). */
const double looplag_bounds[LOOPLAG_NBOUNDS] = { 0.001, 0.002, 0.005,
	0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1 };

#define WINDOW_NS (60 * UINT64_C(1000000000))

struct sample {
	uint64_t at;		/* uv_hrtime() when the timer fired */
	uint32_t lag_us;
};

struct looplag {
	uv_timer_t timer;
	uint64_t interval_ms;
	uint64_t due;		/* uv_hrtime() the next firing is due */
	uint64_t buckets[LOOPLAG_NBOUNDS];
	uint64_t count;
	double sum, max;
	struct sample *ring;	/* a minute of samples at the interval */
	size_t nring, next, used;
};

static void on_tick(uv_timer_t *t);

static void
arm(struct looplag *l)
{
	/*
	 * The loop computes the timer's due time from its cached clock,
	 * which is at most the current time; measuring from now can only
	 * make the lag read smaller, never invent one.
	 */
	l->due = uv_hrtime() + l->interval_ms * 1000000;
	uv_timer_start(&l->timer, on_tick, l->interval_ms, 0);
}

static void
record(struct looplag *l, uint64_t now, uint64_t lag_ns)
{
	double s = (double)lag_ns / 1e9;
	uint64_t us = (lag_ns + 500) / 1000;	/* as /v1/info rounds */

	for (size_t i = 0; i < LOOPLAG_NBOUNDS; i++)
		if (s <= looplag_bounds[i])
			l->buckets[i]++;
	l->count++;
	l->sum += s;
	if (s > l->max)
		l->max = s;
	l->ring[l->next].at = now;
	l->ring[l->next].lag_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	l->next = (l->next + 1) % l->nring;
	if (l->used < l->nring)
		l->used++;
}

static void
on_tick(uv_timer_t *t)
{
	struct looplag *l = container_of(t, struct looplag, timer);
	uint64_t now = uv_hrtime();

	record(l, now, now > l->due ? now - l->due : 0);
	arm(l);
}

void
looplag_start(struct looplag **out, uv_loop_t *loop, unsigned interval_ms)
{
	struct looplag *l = xcalloc(1, sizeof *l);

	if (interval_ms < 1)
		interval_ms = 1;
	if (interval_ms > 60000)
		interval_ms = 60000;
	l->interval_ms = interval_ms;
	/* A stalled loop fires less often, never more: a minute's worth
	 * at the interval always fits. */
	l->nring = 60000 / interval_ms + 1;
	l->ring = xcalloc(l->nring, sizeof *l->ring);
	uv_timer_init(loop, &l->timer);
	arm(l);
	*out = l;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void
looplag_snapshot(const struct looplag *l, struct looplag_snapshot *out)
{
	uint64_t now = uv_hrtime();
	uint32_t *v, worst = 0;
	size_t n = 0;

	for (size_t i = 0; i < LOOPLAG_NBOUNDS; i++)
		out->buckets[i] = l->buckets[i];
	out->count = l->count;
	out->sum = l->sum;
	out->max = l->max;
	/* At most a minute of samples (1,201 at 50 ms): sorting a copy
	 * costs tens of microseconds, only when someone asks. */
	v = xcalloc(l->used ? l->used : 1, sizeof *v);
	for (size_t i = 0; i < l->used; i++) {
		const struct sample *s = &l->ring[i];
		if (now - s->at > WINDOW_NS)
			continue;
		v[n++] = s->lag_us;
		if (s->lag_us > worst)
			worst = s->lag_us;
	}
	out->n_1m = n;
	out->max_1m = worst / 1e6;
	out->p99_1m = 0;
	if (n > 0) {
		qsort(v, n, sizeof *v, cmp_u32);
		/* Nearest rank: the smallest sample with at least 99% of
		 * them at or below it. */
		out->p99_1m = v[(n * 99 + 99) / 100 - 1] / 1e6;
	}
	free(v);
}

static void
on_closed(uv_handle_t *h)
{
	struct looplag *l = container_of((uv_timer_t *)h, struct looplag,
	    timer);

	free(l->ring);
	free(l);
}

void
looplag_close(struct looplag *l)
{
	if (l == NULL)
		return;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, on_closed);
}
