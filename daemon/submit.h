/*
 * Group commit of job submissions.  Submissions that arrive while the
 * loop handles one batch of events are queued in memory; at the end of
 * that loop iteration (uv_check) they go to the queue's writer as ONE
 * write (queue_submit), so the loop keeps serving while SQLite fsyncs, and
 * max_queued is enforced here, before anything is written.  While a
 * commit is in flight the next batch gathers.  Each submitter's callback
 * runs on the loop thread only after its transaction committed: nothing is
 * acknowledged before it is durable.
 */
#ifndef KILN_SUBMIT_H
#define KILN_SUBMIT_H

#include <stddef.h>
#include <uv.h>

#include "job.h"
#include "db/queue.h"

struct submitter;

/* What submitter_submit returns besides 0 (the API answers 503). */
#define SUBMIT_EFULL (-11)	/* no room: max_queued reached */
#define SUBMIT_ESTOPPING (-12)	/* kilnd is shutting down */

/* Runs on the loop thread once the job is durable (rc 0) or failed. */
typedef void (*submit_done_fn)(struct job *job, int rc, void *data);

struct submitter *submitter_new(uv_loop_t *loop, struct queue *q,
    unsigned max_queued);
/* The api_env.submit hook; ctx is the submitter. */
int submitter_submit(void *ctx, struct job *job, submit_done_fn done,
    void *data);
/* Call fn(data) on the loop thread after each batch commits. */
void submitter_on_commit(struct submitter *s, void (*fn)(void *), void *data);
/* Tell ev (live events; kept by the caller) of each job committed. */
struct events;
void submitter_set_events(struct submitter *s, struct events *ev);
/* Refuse new submissions (SUBMIT_ESTOPPING) from now on. */
/* A new max_queued (a reload). */
void submitter_set_max_queued(struct submitter *s, unsigned max_queued);
void submitter_stop_accepting(struct submitter *s);
/* Submissions queued or being committed. */
size_t submitter_inflight(const struct submitter *s);
/* Close once idle; done(data) after the last handle closed. */
void submitter_close(struct submitter *s, void (*done)(void *), void *data);

#endif
