/*
 * The writer thread (writer.h).  Two lists under one mutex: `in`, what
 * the loop submitted and the thread has not taken; `out`, what the thread
 * finished and the loop has not delivered.  The thread takes the whole
 * `in` list (up to WRITER_BATCH_MAX operations) as one transaction, so a
 * burst of claims, finishes and heartbeats costs one fsync, not one each.
 */
#include "config.h"

#include <assert.h>
#include <stdlib.h>

#include "db-int.h"
#include "log.h"
#include "writer.h"
#include "xmalloc.h"

/* A transaction holds the write lock while it runs its operations: a
 * bound keeps that short whatever piles up (each op is an index walk). */
#define WRITER_BATCH_MAX 256

struct wreq {
	struct wreq *next;
	writer_fn fn;
	writer_done done;
	void *arg;
	int rc;
};

struct writer {
	uv_loop_t *loop;
	struct sqlq *q;
	sqlite3 *db;
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	uv_async_t async;
	struct wreq *in, **in_tail;	/* under mu */
	struct wreq *out, **out_tail;	/* under mu */
	bool stopping;			/* under mu: no more input comes */
	bool exited;			/* under mu: the thread returned */
	size_t inflight;		/* loop thread only */
	bool closing;			/* loop thread: writer_close() called */
	uint64_t commits, ops;		/* written by the thread (atomics) */
	void (*closed)(void *);
	void *closed_data;
};

static void
fail_all(struct wreq *r, int rc)
{
	for (; r != NULL; r = r->next)
		if (r->rc == 0)
			r->rc = rc;
}

/* One transaction over the list `batch`. */
static void
run_batch(struct writer *w, struct wreq *batch)
{
	struct wreq *rest = batch;	/* the ones still to run */
	size_t n = 0;

	if (db_exec(w->db, "BEGIN IMMEDIATE") != 0) {
		fail_all(batch, QUEUE_ERROR);
		return;
	}
	w->q->batching = true;
	db_counts_drop(w->q);
	/*
	 * Alone in its transaction, an operation needs no savepoint: if it
	 * fails, the transaction is rolled back.  A savepoint is not free:
	 * SQLite keeps a copy of every page written under it (a temporary
	 * file past 64 KiB), which doubled the cost of a submission.
	 */
	if (batch->next == NULL && batch->rc == 0) {
		batch->rc = batch->fn(w->q, batch->arg);
		n = 1;
		if (batch->rc != 0) {
			db_exec(w->db, "ROLLBACK");
			w->q->batching = false;
			db_counts_drop(w->q);
			return;
		}
		rest = NULL;	/* nothing more to run */
	}
	for (struct wreq *r = rest; r != NULL; r = r->next, n++) {
		struct queue_counts before = w->q->pending;

		if (r->rc != 0)
			continue;	/* failed already (writer_submit) */
		if (db_exec(w->db, "SAVEPOINT op") != 0) {
			r->rc = QUEUE_ERROR;
			continue;
		}
		r->rc = r->fn(w->q, r->arg);
		if (r->rc != 0)
			w->q->pending = before;	/* its changes are undone */
		if (r->rc != 0 && db_exec(w->db, "ROLLBACK TO op") != 0) {
			/* The savepoint cannot be undone: neither can the
			 * transaction be trusted; everything fails. */
			db_exec(w->db, "ROLLBACK");
			w->q->batching = false;
			db_counts_drop(w->q);
			fail_all(batch, QUEUE_ERROR);
			return;
		}
		db_exec(w->db, "RELEASE op");
	}
	w->q->batching = false;
	if (db_exec(w->db, "COMMIT") != 0) {
		if (!sqlite3_get_autocommit(w->db))
			db_exec(w->db, "ROLLBACK");
		db_counts_drop(w->q);
		fail_all(batch, QUEUE_ERROR);
		return;
	}
	db_counts_commit(w->q);
	__atomic_add_fetch(&w->commits, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->ops, n, __ATOMIC_RELAXED);
}

static void
thread_main(void *data)
{
	struct writer *w = data;

	for (;;) {
		struct wreq *batch, *last;
		size_t n = 1;

		uv_mutex_lock(&w->mu);
		while (w->in == NULL && !w->stopping)
			uv_cond_wait(&w->cv, &w->mu);
		if (w->in == NULL) {
			w->exited = true;
			uv_mutex_unlock(&w->mu);
			uv_async_send(&w->async);
			return;
		}
		batch = last = w->in;
		while (last->next != NULL && n < WRITER_BATCH_MAX) {
			last = last->next;
			n++;
		}
		w->in = last->next;
		if (w->in == NULL)
			w->in_tail = &w->in;
		last->next = NULL;
		uv_mutex_unlock(&w->mu);

		run_batch(w, batch);

		uv_mutex_lock(&w->mu);
		*w->out_tail = batch;
		w->out_tail = &last->next;
		uv_mutex_unlock(&w->mu);
		uv_async_send(&w->async);
	}
}

static void
on_closed(uv_handle_t *h)
{
	struct writer *w = h->data;
	void (*closed)(void *) = w->closed;
	void *data = w->closed_data;

	uv_cond_destroy(&w->cv);
	uv_mutex_destroy(&w->mu);
	free(w);
	if (closed != NULL)
		closed(data);
}

/* Loop thread: deliver what the thread finished (a completion may submit
 * more), and close once the thread has returned and nothing is left. */
static void
on_async(uv_async_t *h)
{
	struct writer *w = h->data;
	struct wreq *r, *next;
	bool exited;

	for (;;) {
		uv_mutex_lock(&w->mu);
		r = w->out;
		w->out = NULL;
		w->out_tail = &w->out;
		exited = w->exited;
		uv_mutex_unlock(&w->mu);
		if (r == NULL)
			break;
		for (; r != NULL; r = next) {
			next = r->next;
			w->inflight--;
			if (r->done != NULL)
				r->done(r->arg, r->rc);
			free(r);
		}
	}
	/* Idle, the writer does not keep the loop alive: a loop that has
	 * nothing else to do may end (tests run one to completion). */
	if (w->inflight == 0 && !w->closing)
		uv_unref((uv_handle_t *)&w->async);
	if (exited && !uv_is_closing((uv_handle_t *)&w->async)) {
		assert(w->inflight == 0);
		uv_thread_join(&w->thread);	/* it has returned */
		uv_close((uv_handle_t *)&w->async, on_closed);
	}
}

int
writer_start(struct writer **out, uv_loop_t *loop, struct sqlq *q,
    sqlite3 *db)
{
	struct writer *w = xcalloc(1, sizeof *w);

	w->loop = loop;
	w->q = q;
	w->db = db;
	w->in_tail = &w->in;
	w->out_tail = &w->out;
	if (uv_mutex_init(&w->mu) != 0) {
		free(w);
		return QUEUE_ERROR;
	}
	if (uv_cond_init(&w->cv) != 0) {
		uv_mutex_destroy(&w->mu);
		free(w);
		return QUEUE_ERROR;
	}
	if (uv_async_init(loop, &w->async, on_async) != 0)
		goto fail;
	w->async.data = w;
	uv_unref((uv_handle_t *)&w->async);
	if (uv_thread_create(&w->thread, thread_main, w) != 0) {
		log_error("queue: cannot start the writer thread");
		w->closed = NULL;
		uv_close((uv_handle_t *)&w->async, on_closed);
		return QUEUE_ERROR;
	}
	*out = w;
	return 0;
fail:
	uv_cond_destroy(&w->cv);
	uv_mutex_destroy(&w->mu);
	free(w);
	return QUEUE_ERROR;
}

void
writer_submit(struct writer *w, writer_fn fn, writer_done done, void *arg)
{
	struct wreq *r = xcalloc(1, sizeof *r);

	r->fn = fn;
	r->done = done;
	r->arg = arg;
	if (w->inflight++ == 0)
		uv_ref((uv_handle_t *)&w->async);
	uv_mutex_lock(&w->mu);
	if (w->stopping) {
		/* A write after writer_close() (a completion delivered while
		 * closing asked for more): it fails, after every write called
		 * before it.  While the thread runs, behind what it has still
		 * to take (it skips a failed one); once it returned, behind
		 * what it finished; once the handle is closing, at once, as
		 * nothing would deliver it any more. */
		r->rc = QUEUE_ERROR;
		log_warn("queue: a write arrived while kilnd is stopping");
		if (!w->exited) {
			*w->in_tail = r;
			w->in_tail = &r->next;
			uv_cond_signal(&w->cv);
			uv_mutex_unlock(&w->mu);
		} else if (!uv_is_closing((uv_handle_t *)&w->async)) {
			*w->out_tail = r;
			w->out_tail = &r->next;
			uv_mutex_unlock(&w->mu);
			uv_async_send(&w->async);
		} else {
			uv_mutex_unlock(&w->mu);
			w->inflight--;
			if (r->done != NULL)
				r->done(r->arg, r->rc);
			free(r);
		}
		return;
	}
	*w->in_tail = r;
	w->in_tail = &r->next;
	uv_cond_signal(&w->cv);
	uv_mutex_unlock(&w->mu);
}

size_t
writer_inflight(const struct writer *w)
{
	return w->inflight;
}

uint64_t
writer_commits(const struct writer *w)
{
	return __atomic_load_n(&w->commits, __ATOMIC_RELAXED);
}

uint64_t
writer_ops(const struct writer *w)
{
	return __atomic_load_n(&w->ops, __ATOMIC_RELAXED);
}

void
writer_close(struct writer *w, void (*closed)(void *), void *data)
{
	w->closed = closed;
	w->closed_data = data;
	w->closing = true;
	uv_ref((uv_handle_t *)&w->async);	/* until it is closed */
	uv_mutex_lock(&w->mu);
	w->stopping = true;
	uv_cond_signal(&w->cv);
	uv_mutex_unlock(&w->mu);
}
