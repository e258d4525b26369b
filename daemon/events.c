/*
 * The live events' ring and its subscribers (events.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

struct events_sub {
	struct events *ev;
	uint64_t cursor;		/* the seq of the next event to read */
	bool resync;			/* a resync comes first */
	bool waiting;			/* wake() is due once */
	void (*wake)(void *);
	void *data;
	bool sent;			/* since the last keep-alive tick */
	bool keepalive;			/* a keep-alive is due */
	struct events_sub *prev, *next;
};

struct events {
	uv_loop_t *loop;
	uv_timer_t keepalive, remote;
	int handles;			/* open, while closing */
	bool remote_armed;
	int64_t remote_last;		/* uv_now() ms: the last remote resync */
	uint64_t keepalive_ms;
	/* The ring holds the seqs [first, next). */
	uint64_t first, next;
	struct event ring[EVENTS_RING];
	struct events_sub *subs;
	size_t nsubs;
};

static void
wake_waiting(struct events *ev, bool keepalive_only)
{
	for (struct events_sub *s = ev->subs; s; s = s->next) {
		if (!s->waiting || (keepalive_only && !s->keepalive))
			continue;
		s->waiting = false;
		/* Only resumes the stream's connection: nothing here is
		 * freed or unlinked by it. */
		s->wake(s->data);
	}
}

static void
on_keepalive(uv_timer_t *h)
{
	struct events *ev = h->data;

	for (struct events_sub *s = ev->subs; s; s = s->next) {
		if (!s->sent)
			s->keepalive = true;
		s->sent = false;
	}
	wake_waiting(ev, true);
}

static void
append(struct events *ev, const struct event *e)
{
	struct event *slot = &ev->ring[ev->next % EVENTS_RING];

	*slot = *e;
	slot->seq = ev->next++;
	if (ev->next - ev->first > EVENTS_RING)
		ev->first = ev->next - EVENTS_RING;
	wake_waiting(ev, false);
}

static void
on_remote(uv_timer_t *h)
{
	struct events *ev = h->data;

	ev->remote_armed = false;
	ev->remote_last = (int64_t)uv_now(ev->loop);
	events_resync(ev);
}

struct events *
events_new(uv_loop_t *loop, uint64_t keepalive_ms)
{
	struct events *ev = xcalloc(1, sizeof *ev);
	int64_t now = util_now_ms();

	ev->loop = loop;
	ev->keepalive_ms = keepalive_ms > 0 ? keepalive_ms :
	    EVENTS_KEEPALIVE_MS;
	/* Ids of an earlier run are older than the ring: each run starts
	 * at its start time in ms times EVENTS_ID_PER_MS, so an earlier run
	 * would have to tell that many events a ms of its whole life to
	 * reach this one's ids (at one a ms a short, busy run did). */
	ev->first = ev->next = now > 0 ?
	    (uint64_t)now * EVENTS_ID_PER_MS : 1;
	uv_timer_init(loop, &ev->keepalive);
	uv_timer_init(loop, &ev->remote);
	ev->keepalive.data = ev->remote.data = ev;
	uv_timer_start(&ev->keepalive, on_keepalive, ev->keepalive_ms,
	    ev->keepalive_ms);
	/* Idle, the timer alone must not keep the loop running. */
	uv_unref((uv_handle_t *)&ev->keepalive);
	return ev;
}

static void
on_closed(uv_handle_t *h)
{
	struct events *ev = h->data;

	if (--ev->handles == 0)
		free(ev);
}

void
events_close(struct events *ev)
{
	if (ev == NULL)
		return;
	/* Subscribers left behind keep reading nothing. */
	for (struct events_sub *s = ev->subs; s; s = s->next)
		s->ev = NULL;
	ev->subs = NULL;
	ev->handles = 2;
	uv_close((uv_handle_t *)&ev->keepalive, on_closed);
	uv_close((uv_handle_t *)&ev->remote, on_closed);
}

uint64_t
events_keepalive_ms(const struct events *ev)
{
	return ev != NULL ? ev->keepalive_ms : EVENTS_KEEPALIVE_MS;
}

static void
job_event(struct events *ev, int64_t job_id, const char *state, bool sig)
{
	struct event e = { 0 };

	if (ev == NULL)
		return;
	e.kind = EVENT_JOB;
	e.job = job_id;
	e.state = state;
	e.signed_ = sig;
	append(ev, &e);
}

void
events_job(struct events *ev, int64_t job_id, const char *state)
{
	job_event(ev, job_id, state, false);
}

void
events_job_signed(struct events *ev, int64_t job_id, const char *state)
{
	job_event(ev, job_id, state, true);
}

void
events_target(struct events *ev, int64_t job_id, const char *target,
    const char *state)
{
	struct event e = { 0 };

	if (ev == NULL)
		return;
	e.kind = EVENT_TARGET;
	e.job = job_id;
	/* Names are TARGET_NAME_MAX at most (target.h): never cut. */
	snprintf(e.target, sizeof e.target, "%s", target);
	e.state = state;
	append(ev, &e);
}

void
events_resync(struct events *ev)
{
	struct event e = { 0 };

	if (ev == NULL)
		return;
	e.kind = EVENT_RESYNC;
	append(ev, &e);
}

void
events_remote_change(struct events *ev)
{
	int64_t now, due;

	if (ev == NULL || ev->remote_armed)
		return;
	/* The loop's monotonic clock: a wall clock stepped back would hold
	 * other hosts' changes back as long. */
	now = (int64_t)uv_now(ev->loop);
	due = ev->remote_last + EVENTS_REMOTE_MS;
	if (ev->remote_last == 0 || now >= due) {
		ev->remote_last = now;
		events_resync(ev);
		return;
	}
	/* Within the period: one resync at its end covers this hint and
	 * every other one until then. */
	ev->remote_armed = true;
	uv_timer_start(&ev->remote, on_remote, (uint64_t)(due - now), 0);
}

struct events_sub *
events_subscribe(struct events *ev, uint64_t last_id)
{
	struct events_sub *s = xcalloc(1, sizeof *s);

	s->ev = ev;
	s->cursor = ev->next;
	if (last_id != 0) {
		/* Resumable when every event after last_id is still here. */
		if (last_id + 1 >= ev->first && last_id < ev->next)
			s->cursor = last_id + 1;
		else
			s->resync = true;
	}
	s->sent = true;
	s->next = ev->subs;
	if (ev->subs != NULL)
		ev->subs->prev = s;
	ev->subs = s;
	ev->nsubs++;
	return s;
}

void
events_unsubscribe(struct events_sub *s)
{
	struct events *ev;

	if (s == NULL)
		return;
	if ((ev = s->ev) != NULL) {
		if (s->prev != NULL)
			s->prev->next = s->next;
		else
			ev->subs = s->next;
		if (s->next != NULL)
			s->next->prev = s->prev;
		ev->nsubs--;
	}
	free(s);
}

bool
events_peek(struct events_sub *s, struct event *out, void (*wake)(void *),
    void *data)
{
	struct events *ev = s->ev;

	if (ev == NULL)
		return false;
	if (s->resync || s->cursor < ev->first) {
		/* Lost events: a resync, with the id of the newest so that
		 * a reconnect resumes after it. */
		memset(out, 0, sizeof *out);
		out->kind = EVENT_RESYNC;
		out->seq = ev->next - 1;
		return true;
	}
	if (s->cursor < ev->next) {
		*out = ev->ring[s->cursor % EVENTS_RING];
		return true;
	}
	s->wake = wake;
	s->data = data;
	s->waiting = true;
	return false;
}

void
events_advance(struct events_sub *s)
{
	struct events *ev = s->ev;

	if (ev == NULL)
		return;
	if (s->resync || s->cursor < ev->first) {
		s->resync = false;
		s->cursor = ev->next;
	} else if (s->cursor < ev->next)
		s->cursor++;
}

bool
events_keepalive_due(struct events_sub *s)
{
	bool due = s->keepalive;

	s->keepalive = false;
	return due;
}

void
events_sent(struct events_sub *s)
{
	s->sent = true;
	s->keepalive = false;
}

size_t
events_subscribers(const struct events *ev)
{
	return ev != NULL ? ev->nsubs : 0;
}
