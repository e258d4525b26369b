/*
 * Live events (GET /v1/events): a bounded, in-memory broadcast of the
 * changes of jobs' and targets' states on this host.
 *
 * Every change is appended to one ring of fixed size; each subscriber
 * keeps only a cursor into it and reads at its own pace, so neither the
 * number of clients nor a slow one costs memory per event.  A subscriber
 * that fell further behind than the ring holds gets a `resync` (refetch
 * everything) and goes on from the newest event.  Nothing is kept across
 * restarts: the counter starts at the start time in ms times
 * EVENTS_ID_PER_MS, so that an event id of an earlier run is not in the
 * ring and resumes with a resync.
 *
 * On a shared queue (a PostgreSQL farm) other hosts' changes are not
 * seen here: the queue's change hint becomes a `resync`, at most one
 * every EVENTS_REMOTE_MS (the last hint of a burst is never dropped, only
 * delayed).
 *
 * Everything runs on the loop thread.
 */
#ifndef KILN_EVENTS_H
#define KILN_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../lib/target.h"

#define EVENTS_RING 4096
#define EVENTS_KEEPALIVE_MS 15000
#define EVENTS_REMOTE_MS 5000
/* Ids a run may use per ms of its life before it reaches the next run's
 * (ids stay below 2^53, exact as JSON numbers, for centuries). */
#define EVENTS_ID_PER_MS 1000

enum event_kind { EVENT_JOB, EVENT_TARGET, EVENT_RESYNC };

struct event {
	uint64_t seq;			/* the event's id */
	enum event_kind kind;
	int64_t job;			/* 0 for a resync */
	char target[TARGET_NAME_MAX];	/* EVENT_TARGET only */
	const char *state;		/* a static name (job.h), or NULL */
	bool signed_;			/* EVENT_JOB: its files are signed */
};

struct events;
struct events_sub;

/*
 * keepalive_ms: how often subscribers are woken to send a keep-alive
 * (0: EVENTS_KEEPALIVE_MS).  Never NULL.
 */
struct events *events_new(uv_loop_t *loop, uint64_t keepalive_ms);
/* Its timers close on the loop; every subscriber must be gone first. */
void events_close(struct events *ev);
uint64_t events_keepalive_ms(const struct events *ev);

/* Append an event and wake every waiting subscriber.  ev may be NULL
 * (nothing happens): the layers that report need not know whether
 * anyone listens. */
void events_job(struct events *ev, int64_t job_id, const char *state);
void events_job_signed(struct events *ev, int64_t job_id,
    const char *state);
void events_target(struct events *ev, int64_t job_id, const char *target,
    const char *state);
void events_resync(struct events *ev);
/* Another host may have changed something (a shared queue's hint):
 * a resync, no more often than every EVENTS_REMOTE_MS. */
void events_remote_change(struct events *ev);

/*
 * A subscriber that has seen every event up to last_id (0: none, starts
 * at the newest).  A last_id no longer (or never) in the ring gives a
 * resync first.
 */
struct events_sub *events_subscribe(struct events *ev, uint64_t last_id);
void events_unsubscribe(struct events_sub *sub);
/*
 * The subscriber's next event into *out: true, or false when there is
 * none yet; then wake(data) is called once when one comes or a
 * keep-alive is due.  The event is taken only by events_advance(), so a
 * reader without room for it leaves it for the next call.
 */
bool events_peek(struct events_sub *sub, struct event *out,
    void (*wake)(void *), void *data);
void events_advance(struct events_sub *sub);
/* Whether the subscriber should send a keep-alive now (it sent nothing
 * since the previous keep-alive tick); clears it. */
bool events_keepalive_due(struct events_sub *sub);
/* The subscriber sent something (no keep-alive needed this period). */
void events_sent(struct events_sub *sub);
/* Subscribers now (metrics, tests). */
size_t events_subscribers(const struct events *ev);

#endif
