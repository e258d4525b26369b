/*
 * daemon/events.c: subscribers read every event in order from their own
 * cursor; one that fell further behind than the ring holds gets one
 * resync and goes on from the newest; Last-Event-ID resumes while the
 * event is held and resyncs otherwise (an id of an earlier, busy run
 * too); a waiting subscriber is woken once per wait; unsubscribing and
 * closing free everything (ASan).
 */
#include "config.h"

#include <uv.h>

#include "events.h"
#include "util.h"
#include "unit.h"

static int wakes;

static void
on_wake(void *data)
{
	(void)data;
	wakes++;
}

/* Read what is there; the last event into *last. */
static int
drain(struct events_sub *s, struct event *last)
{
	struct event e;
	int n = 0;

	while (events_peek(s, &e, on_wake, NULL)) {
		*last = e;
		events_advance(s);
		n++;
	}
	return n;
}

static void
close_loop(uv_loop_t *loop, struct events *ev)
{
	events_close(ev);
	uv_run(loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(loop), 0);
}

static void
events_in_order_and_woken_once(void)
{
	uv_loop_t loop;
	struct events *ev;
	struct events_sub *s;
	struct event e;

	uv_loop_init(&loop);
	ev = events_new(&loop, 0);
	CHECK_INT(events_keepalive_ms(ev), EVENTS_KEEPALIVE_MS);
	s = events_subscribe(ev, 0);
	CHECK_INT(events_subscribers(ev), 1);
	wakes = 0;
	CHECK(!events_peek(s, &e, on_wake, NULL));
	events_job(ev, 7, "queued");
	events_target(ev, 7, "linux/amd64", "running");
	CHECK_INT(wakes, 1);	/* once per wait, not per event */
	CHECK(events_peek(s, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_JOB);
	CHECK_INT(e.job, 7);
	CHECK_STR(e.state, "queued");
	/* Not taken until advanced. */
	CHECK(events_peek(s, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_JOB);
	events_advance(s);
	CHECK(events_peek(s, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_TARGET);
	CHECK_STR(e.target, "linux/amd64");
	events_advance(s);
	CHECK(!events_peek(s, &e, on_wake, NULL));
	events_unsubscribe(s);
	CHECK_INT(events_subscribers(ev), 0);
	close_loop(&loop, ev);
}

static void
a_subscriber_behind_the_ring_resyncs(void)
{
	uv_loop_t loop;
	struct events *ev;
	struct events_sub *slow, *fast;
	struct event e, last;
	uint64_t newest;

	uv_loop_init(&loop);
	ev = events_new(&loop, 0);
	slow = events_subscribe(ev, 0);
	fast = events_subscribe(ev, 0);
	for (int i = 1; i <= EVENTS_RING + 10; i++) {
		events_job(ev, i, "queued");
		if (i % 100 == 0)
			drain(fast, &last);
	}
	drain(fast, &last);
	newest = last.seq;
	CHECK_INT(last.job, EVENTS_RING + 10);
	/* The slow one lost 10 events: one resync with the newest id,
	 * then nothing until the next event. */
	CHECK(events_peek(slow, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_RESYNC);
	CHECK_INT(e.seq, newest);
	events_advance(slow);
	CHECK(!events_peek(slow, &e, on_wake, NULL));
	events_job(ev, 99999, "running");
	CHECK(events_peek(slow, &e, on_wake, NULL));
	CHECK_INT(e.job, 99999);
	CHECK_INT(e.seq, newest + 1);
	events_unsubscribe(slow);
	events_unsubscribe(fast);
	close_loop(&loop, ev);
}

static void
last_event_id_resumes_or_resyncs(void)
{
	uv_loop_t loop;
	struct events *ev;
	struct events_sub *s, *r;
	struct event e, first = { 0 };

	uv_loop_init(&loop);
	ev = events_new(&loop, 0);
	s = events_subscribe(ev, 0);
	events_job(ev, 1, "queued");
	events_job(ev, 2, "queued");
	events_job(ev, 3, "queued");
	CHECK(events_peek(s, &first, on_wake, NULL));
	/* After the first: the second and third. */
	r = events_subscribe(ev, first.seq);
	CHECK_INT(drain(r, &e), 2);
	CHECK_INT(e.job, 3);
	events_unsubscribe(r);
	/* An id of an earlier run (or garbage): resync first. */
	r = events_subscribe(ev, 12);
	CHECK(events_peek(r, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_RESYNC);
	events_unsubscribe(r);
	/* Ahead of the newest (a restart's reused ids cannot be): resync. */
	r = events_subscribe(ev, first.seq + 100);
	CHECK(events_peek(r, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_RESYNC);
	events_unsubscribe(r);
	/* Closing with a subscriber left: it reads nothing, and frees. */
	close_loop(&loop, ev);
	CHECK(!events_peek(s, &e, on_wake, NULL));
	events_unsubscribe(s);
}

/*
 * A run that told many events in a short life: the next run, started a
 * few ms later and as busy, must not take the first run's last id for
 * one of its own (that resume would skip the new run's events silently).
 */
static void
an_id_of_a_previous_busy_run_resyncs(void)
{
	uv_loop_t loop;
	struct events *ev;
	struct events_sub *r;
	struct event e;
	uint64_t old_last;
	int64_t t0;

	uv_loop_init(&loop);
	ev = events_new(&loop, 0);
	r = events_subscribe(ev, 0);
	for (int i = 0; i < 4000; i++)
		events_job(ev, i + 1, "queued");
	CHECK_INT(drain(r, &e), 4000);
	old_last = e.seq;
	events_unsubscribe(r);
	close_loop(&loop, ev);
	/* The next run starts once the clock moved on (a restart takes
	 * some ms): wait for that, whatever the machine's speed. */
	t0 = util_now_ms();
	while (util_now_ms() < t0 + 10)
		;
	uv_loop_init(&loop);
	ev = events_new(&loop, 0);
	for (int i = 0; i < 4000; i++)
		events_job(ev, i + 1, "queued");
	r = events_subscribe(ev, old_last);
	CHECK(events_peek(r, &e, on_wake, NULL));
	CHECK_INT(e.kind, EVENT_RESYNC);
	events_unsubscribe(r);
	close_loop(&loop, ev);
}

UNIT_MAIN(
	TEST(events_in_order_and_woken_once),
	TEST(a_subscriber_behind_the_ring_resyncs),
	TEST(last_event_id_resumes_or_resyncs),
	TEST(an_id_of_a_previous_busy_run_resyncs),
)
