/*
 * daemon/looplag.c: a callback that holds the loop shows up as the
 * probe's lateness, in the maximum, the last minute's figures and the
 * histogram (whose buckets are cumulative and end at the count); the
 * probe's timer closes so that the loop can end.
 */
#include "config.h"

#include <time.h>

#include <uv.h>

#include "looplag.h"
#include "unit.h"
#include "util.h"

struct fixture {
	uv_loop_t loop;
	uv_timer_t stall, stop;
	struct looplag *probe;
	struct looplag_snapshot snap;
	unsigned stall_ms;
};

/* What a synchronous commit or a long scan does to the loop. */
static void
on_stall(uv_timer_t *t)
{
	struct fixture *f = container_of(t, struct fixture, stall);
	struct timespec ts = { 0, (long)f->stall_ms * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void
on_closed(uv_handle_t *h)
{
	(void)h;
}

static void
on_stop(uv_timer_t *t)
{
	struct fixture *f = container_of(t, struct fixture, stop);

	looplag_snapshot(f->probe, &f->snap);
	looplag_close(f->probe);
	f->probe = NULL;
	uv_close((uv_handle_t *)&f->stall, on_closed);
	uv_close((uv_handle_t *)&f->stop, on_closed);
}

/* Probe every 10 ms; hold the loop for stall_ms at 25 ms; stop at
 * stop_ms. */
static void
run(struct fixture *f, unsigned stall_ms, unsigned stop_ms)
{
	memset(f, 0, sizeof *f);
	f->stall_ms = stall_ms;
	CHECK_INT(uv_loop_init(&f->loop), 0);
	looplag_start(&f->probe, &f->loop, 10);
	uv_timer_init(&f->loop, &f->stall);
	uv_timer_init(&f->loop, &f->stop);
	if (stall_ms > 0)
		uv_timer_start(&f->stall, on_stall, 25, 0);
	uv_timer_start(&f->stop, on_stop, stop_ms, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&f->loop), 0);
}

static void
histogram_is_well_formed(const struct looplag_snapshot *s)
{
	double sum_low = 0;

	for (size_t i = 1; i < LOOPLAG_NBOUNDS; i++)
		CHECK(s->buckets[i - 1] <= s->buckets[i]);
	CHECK(s->buckets[LOOPLAG_NBOUNDS - 1] <= s->count);
	/* Each sample above a bound adds at least that bound to the sum. */
	for (size_t i = 0; i < LOOPLAG_NBOUNDS; i++)
		if ((double)(s->count - s->buckets[i]) * looplag_bounds[i] >
		    sum_low)
			sum_low = (double)(s->count - s->buckets[i]) *
			    looplag_bounds[i];
	CHECK(s->sum >= sum_low);
	CHECK(s->sum >= s->max);
}

static void
a_stall_is_measured(void)
{
	struct fixture f;

	/*
	 * When the stall starts the probe is due within 10 ms, and it
	 * cannot fire before the stall ends 150 ms later: at least 140 ms
	 * late, whatever else the machine does.
	 */
	run(&f, 150, 300);
	CHECK(f.snap.count >= 2);
	CHECK(f.snap.max >= 0.14);
	/* The ring keeps microseconds. */
	CHECK(f.snap.max_1m - f.snap.max <= 1e-6 &&
	    f.snap.max - f.snap.max_1m <= 1e-6);
	/* Fewer than 100 samples: the 99th percentile is the worst. */
	CHECK(f.snap.n_1m == f.snap.count);
	CHECK(f.snap.p99_1m == f.snap.max_1m);
	/* Not in the 0.1 s bucket or any below it. */
	CHECK(f.snap.buckets[6] < f.snap.count);
	CHECK(looplag_bounds[6] == 0.1);
	histogram_is_well_formed(&f.snap);
}

static void
an_idle_loop_is_sampled(void)
{
	struct fixture f;

	run(&f, 0, 200);
	CHECK(f.snap.count >= 1);
	CHECK(f.snap.n_1m == f.snap.count);
	CHECK(f.snap.p99_1m <= f.snap.max_1m);
	histogram_is_well_formed(&f.snap);
}

UNIT_MAIN(
	TEST(a_stall_is_measured),
	TEST(an_idle_loop_is_sampled),
)
