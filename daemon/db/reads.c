/*
 * The asynchronous side of queue.h's reads.  SQLite answers a read at
 * once, from the loop thread's own connection (an index walk with a
 * LIMIT, as bounded as before); what changes is when the caller hears of
 * it.  Each read's completion joins a FIFO and runs on a later loop
 * iteration, never inside the call, so that callers are written once for
 * a backend that answers over the network (PostgreSQL) and for this one,
 * and never meet a completion that runs while they are still setting up.
 *
 * The FIFO is drained by a uv_idle_t, started only while it holds
 * something.  An idle handle rather than a uv_async_t: everything here
 * happens on the loop thread, so there is nothing to wake; an active idle
 * handle makes the loop poll without blocking and run it on the next
 * iteration, costs no system call, and keeps the loop alive exactly while
 * completions are owed (an async handle needs a write to its eventfd per
 * wake-up and explicit ref/unref to get the same).
 *
 * queue_stop(): the writer closes first (its completions may read); the
 * idle handle keeps delivering until the FIFO is empty, including reads
 * those completions made, and only then closes and queue_stop()'s
 * closed(data) runs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db-int.h"
#include "log.h"
#include "xmalloc.h"

struct read_done {
	struct read_done *next;
	queue_done done;
	void *data;
	int rc;
};

static void
idle_closed(uv_handle_t *h)
{
	struct sqlq *q = h->data;

	q->idle_ready = false;
	if (q->stopped != NULL)
		q->stopped(q->stopped_data);
}

/* Close the handle once the queue is stopping, the writer gone and no
 * completion owed; not from inside a drain (its end calls this again). */
static void
maybe_finish(struct sqlq *q)
{
	if (!q->stopping || q->writer != NULL || q->draining ||
	    q->rd_head != NULL || !q->idle_ready ||
	    uv_is_closing((uv_handle_t *)&q->idle))
		return;
	uv_idle_stop(&q->idle);
	uv_close((uv_handle_t *)&q->idle, idle_closed);
}

int
db_reads_start(struct sqlq *q, uv_loop_t *loop)
{
	if (uv_idle_init(loop, &q->idle) != 0) {
		log_error("queue: cannot set up the delivery of reads");
		return QUEUE_ERROR;
	}
	q->idle.data = q;
	q->rd_head = NULL;
	q->rd_tail = &q->rd_head;
	q->idle_ready = true;
	return 0;
}

void
db_reads_writer_closed(struct sqlq *q)
{
	if (!q->idle_ready) {
		/* Never started: nothing was read, nothing is owed. */
		if (q->stopped != NULL)
			q->stopped(q->stopped_data);
		return;
	}
	maybe_finish(q);
}

/*
 * Deliver what was answered before this iteration began.  Reads made by
 * these completions wait for the next iteration: a caller that reads
 * again from every completion cannot keep the loop in here.
 */
static void
on_idle(uv_idle_t *h)
{
	struct sqlq *q = h->data;
	struct read_done *r = q->rd_head, *next;

	q->rd_head = NULL;
	q->rd_tail = &q->rd_head;
	q->draining = true;
	for (; r != NULL; r = next) {
		next = r->next;
		q->reads_pending--;
		r->done(r->data, r->rc);
		free(r);
	}
	q->draining = false;
	if (q->rd_head == NULL)
		uv_idle_stop(&q->idle);
	maybe_finish(q);
}

/*
 * Whether completions can be delivered.  A read before queue_start() or
 * after queue_stop() completed is the caller's bug: it is not run, and
 * fails at once (deliver_later), logged, rather than vanish; like a
 * write then.
 */
static bool
reads_open(struct sqlq *q)
{
	if (q->idle_ready && !uv_is_closing((uv_handle_t *)&q->idle))
		return true;
	log_error("queue: a read without a running queue");
	return false;
}

/* Owe done(data, rc). */
static void
deliver_later(struct sqlq *q, queue_done done, void *data, int rc)
{
	struct read_done *r;

	if (!q->idle_ready || uv_is_closing((uv_handle_t *)&q->idle)) {
		done(data, rc);		/* QUEUE_ERROR: see reads_open() */
		return;
	}
	r = xmalloc(sizeof *r);
	r->next = NULL;
	r->done = done;
	r->data = data;
	r->rc = rc;
	*q->rd_tail = r;
	q->rd_tail = &r->next;
	q->reads_pending++;
	uv_idle_start(&q->idle, on_idle);	/* no-op when active */
}

/* For the reads of the other files of daemon/db/ (hosts.c). */
bool
db_read_open(struct sqlq *q)
{
	return reads_open(q);
}

void
db_read_later(struct sqlq *q, queue_done done, void *data, int rc)
{
	deliver_later(q, done, data, rc);
}

/* --- one wrapper per read ----------------------------------------------- */

/*
 * Each runs the read now and owes its completion.  On rc != 0 every
 * out-parameter is left empty (NULL / 0) whatever the read left there,
 * so that a caller has nothing to free on failure.
 */

void
sqlite_get(struct queue *base, int64_t id, struct job **out, queue_done done,
    void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct job *j = NULL;
	int rc = !reads_open(q) ? QUEUE_ERROR : db_get(q, id, &j);

	*out = rc == 0 ? j : NULL;
	deliver_later(q, done, data, rc);
}

void
sqlite_list(struct queue *base, const struct queue_filter *f, struct job ***out,
    size_t *nout, int64_t *next, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_list(q, f, out, nout, next);

	if (rc != 0) {
		*out = NULL;
		*nout = 0;
		*next = 0;
	}
	deliver_later(q, done, data, rc);
}

void
sqlite_next_jobs(struct queue *base, struct queue_next *out, size_t max,
    size_t *n, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_next_jobs(q, out, max, n);

	if (rc != 0)
		*n = 0;
	deliver_later(q, done, data, rc);
}

void
sqlite_cache_lookup(struct queue *base, const char *key, struct artifact **arts,
    size_t *narts, int64_t *from_job, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_cache_lookup(q, key, arts, narts, from_job);

	if (rc != 0) {
		*arts = NULL;
		*narts = 0;
		*from_job = 0;
	}
	deliver_later(q, done, data, rc);
}

void
sqlite_unsigned_jobs(struct queue *base, int64_t **ids, size_t *n,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_unsigned_jobs(q, ids, n);

	if (rc != 0) {
		*ids = NULL;
		*n = 0;
	}
	deliver_later(q, done, data, rc);
}

void
sqlite_stale_targets(struct queue *base, int64_t now, int64_t *ids,
    size_t max, size_t *n, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	/* One host: its lease after the last heartbeat. */
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_stale_targets(q, now - queue_lease_ms(base), ids, max, n);

	if (rc != 0)
		*n = 0;
	deliver_later(q, done, data, rc);
}

void
sqlite_delivery_job(struct queue *base, const char *forge, const char *id,
    int64_t *job_id, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_delivery_job(q, forge, id, job_id);

	if (rc != 0)
		*job_id = 0;
	deliver_later(q, done, data, rc);
}

void
sqlite_push_job(struct queue *base, const char *project, const char *ref,
    const char *commit, int64_t *job_id, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_push_job(q, project, ref, commit, job_id);

	if (rc != 0)
		*job_id = 0;
	deliver_later(q, done, data, rc);
}

void
sqlite_notify_due(struct queue *base, int64_t now, struct queue_notify **out,
    size_t *n, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !reads_open(q) ? QUEUE_ERROR :
	    db_due_notifies(q, now, out, n);

	if (rc != 0) {
		*out = NULL;
		*n = 0;
	}
	deliver_later(q, done, data, rc);
}
