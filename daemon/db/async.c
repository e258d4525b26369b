/*
 * The asynchronous side of queue.h: each write call copies what it was
 * given into a request, hands it to the writer (writer.c), and the
 * request's completion runs the caller's done(data, rc) on the loop and
 * frees the copies.  The operations themselves (db_*) are in jobs.c,
 * targets.c, deliveries.c, signing.c and retention.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db-int.h"
#include "log.h"
#include "util.h"
#include "writer.h"
#include "xmalloc.h"

/* What every request starts with. */
struct req {
	queue_done done;
	void *data;
	void (*drop)(struct req *);	/* frees the copies, or NULL */
};

static void
complete(void *arg, int rc)
{
	struct req *r = arg;

	if (r->done != NULL)
		r->done(r->data, rc);
	if (r->drop != NULL)
		r->drop(r);
	free(r);
}

static void *
req_new(size_t size, queue_done done, void *data)
{
	struct req *r = xcalloc(1, size);

	r->done = done;
	r->data = data;
	return r;
}

/* Hand r to the writer, with op to run there. */
static void
submit(struct sqlq *q, struct req *r, writer_fn op)
{
	if (q->writer == NULL) {
		/* A write after queue_stop() completed (or before start):
		 * a bug of the caller; it fails rather than vanish. */
		log_error("queue: a write without a running writer");
		complete(r, QUEUE_ERROR);
		return;
	}
	writer_submit(q->writer, op, complete, r);
}

int
sqlite_start(struct queue *base, uv_loop_t *loop)
{
	struct sqlq *q = (struct sqlq *)base;

	if (db_reads_start(q, loop) != 0)
		return QUEUE_ERROR;
	if (writer_start(&q->writer, loop, q, q->wr) != 0) {
		q->idle_ready = false;
		uv_close((uv_handle_t *)&q->idle, NULL);
		return QUEUE_ERROR;
	}
	return 0;
}

/* The writer delivered its last completion; the reads' are next
 * (reads.c), then q->stopped. */
static void
writer_closed(void *data)
{
	struct sqlq *q = data;

	q->writer = NULL;
	db_reads_writer_closed(q);
}

void
sqlite_stop(struct queue *base, void (*closed)(void *), void *data)
{
	struct sqlq *q = (struct sqlq *)base;

	q->stopped = closed;
	q->stopped_data = data;
	q->stopping = true;
	if (q->writer == NULL)
		writer_closed(q);
	else
		writer_close(q->writer, writer_closed, q);
}

uint64_t
sqlite_commits(const struct queue *base)
{
	const struct sqlq *q = (const struct sqlq *)base;

	return q->writer != NULL ? writer_commits(q->writer) : 0;
}

uint64_t
sqlite_writes(const struct queue *base)
{
	const struct sqlq *q = (const struct sqlq *)base;

	return q->writer != NULL ? writer_ops(q->writer) : 0;
}

size_t
sqlite_pending_writes(const struct queue *base)
{
	const struct sqlq *q = (const struct sqlq *)base;

	return q->writer != NULL ? writer_inflight(q->writer) : 0;
}

/* --- one request kind per write ----------------------------------------- */

struct submit_req {
	struct req r;
	struct job *const *jobs;
	size_t n;
};

static int
submit_op(struct sqlq *q, void *arg)
{
	struct submit_req *r = arg;

	return db_submit(q, r->jobs, r->n);
}

void
sqlite_submit(struct queue *base, struct job *const *jobs, size_t n,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct submit_req *r = req_new(sizeof *r, done, data);

	r->jobs = jobs;
	r->n = n;
	submit(q, &r->r, submit_op);
}

/* The writes that name one row and an int: cancel, priority, release,
 * heartbeat, claim. */
struct id_req {
	struct req r;
	int64_t id;
	int value;
	void *out;
};

static int
cancel_op(struct sqlq *q, void *arg)
{
	struct id_req *r = arg;

	return db_cancel(q, r->id, r->out);
}

void
sqlite_cancel(struct queue *base, int64_t id, size_t *nrunning, queue_done done,
    void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct id_req *r = req_new(sizeof *r, done, data);

	r->id = id;
	r->out = nrunning;
	submit(q, &r->r, cancel_op);
}

static int
priority_op(struct sqlq *q, void *arg)
{
	struct id_req *r = arg;

	return db_set_priority(q, r->id, r->value);
}

void
sqlite_set_priority(struct queue *base, int64_t id, int priority,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct id_req *r = req_new(sizeof *r, done, data);

	r->id = id;
	r->value = priority;
	submit(q, &r->r, priority_op);
}

static int
claim_op(struct sqlq *q, void *arg)
{
	struct id_req *r = arg;

	return r->id != 0 ? db_claim_job(q, r->id, r->out) :
	    db_claim(q, r->out);
}

void
sqlite_claim(struct queue *base, struct queue_claim *out, queue_done done,
    void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct id_req *r = req_new(sizeof *r, done, data);

	r->out = out;
	submit(q, &r->r, claim_op);
}

void
sqlite_claim_job(struct queue *base, int64_t job_id, struct queue_claim *out,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct id_req *r = req_new(sizeof *r, done, data);

	r->id = job_id;
	r->out = out;
	submit(q, &r->r, claim_op);
}

static int
release_op(struct sqlq *q, void *arg)
{
	struct id_req *r = arg;

	return db_release(q, r->id, r->value);
}

void
sqlite_release(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct id_req *r = req_new(sizeof *r, done, data);

	r->id = target_id;
	r->value = attempt;
	submit(q, &r->r, release_op);
}

static int
heartbeat_op(struct sqlq *q, void *arg)
{
	struct id_req *r = arg;

	return db_heartbeat(q, r->id, r->value);
}

void
sqlite_heartbeat(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct id_req *r = req_new(sizeof *r, done, data);

	r->id = target_id;
	r->value = attempt;
	submit(q, &r->r, heartbeat_op);
}

/* The writes that set text on one row: commit, toolchain, job failure,
 * notify result, signed files. */
struct text_req {
	struct req r;
	int64_t id;
	int64_t when;
	int value;
	char *a, *b, *c;
};

static void
text_drop(struct req *r)
{
	struct text_req *t = (struct text_req *)r;

	free(t->a);
	free(t->b);
	free(t->c);
}

static struct text_req *
text_new(int64_t id, const char *a, const char *b, const char *c,
    queue_done done, void *data)
{
	struct text_req *r = req_new(sizeof *r, done, data);

	r->r.drop = text_drop;
	r->id = id;
	r->a = a != NULL ? xstrdup(a) : NULL;
	r->b = b != NULL ? xstrdup(b) : NULL;
	r->c = c != NULL ? xstrdup(c) : NULL;
	return r;
}

static int
commit_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_set_commit(q, r->id, r->a, (enum job_trust)r->value);
}

void
sqlite_set_commit(struct queue *base, int64_t job_id, const char *commit,
    enum job_trust trust, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(job_id, commit, NULL, NULL, done, data);

	r->value = (int)trust;
	submit(q, &r->r, commit_op);
}

static int
toolchain_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_set_toolchain(q, r->id, r->a);
}

static int
outputs_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_set_outputs(q, r->id, r->a, r->value != 0);
}

void
sqlite_set_outputs(struct queue *base, int64_t job_id, const char *outputs,
    bool release, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(job_id, outputs, NULL, NULL, done, data);

	r->value = release;
	submit(q, &r->r, outputs_op);
}

static int
verified_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_set_verified(q, r->id, r->value, r->a);
}

void
sqlite_set_verified(struct queue *base, int64_t target_id, int attempt,
    const char *verified, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(target_id, verified, NULL, NULL, done,
	    data);

	r->value = attempt;
	submit(q, &r->r, verified_op);
}

void
sqlite_set_toolchain(struct queue *base, int64_t target_id,
    const char *toolchain, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(target_id, toolchain, NULL, NULL, done,
	    data);

	submit(q, &r->r, toolchain_op);
}

static int
fail_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_fail_job(q, r->id, r->a);
}

void
sqlite_fail_job(struct queue *base, int64_t job_id, const char *error,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(job_id, error, NULL, NULL, done, data);

	submit(q, &r->r, fail_op);
}

static int
notify_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_notify_result(q, r->id, r->a, r->b, r->when);
}

void
sqlite_notify_result(struct queue *base, int64_t job_id, const char *state,
    const char *error, int64_t next_at, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(job_id, state, error, NULL, done, data);

	r->when = next_at;
	submit(q, &r->r, notify_op);
}

static int
signed_op(struct sqlq *q, void *arg)
{
	struct text_req *r = arg;

	return db_set_signed(q, r->id, r->a, r->b, r->c);
}

void
sqlite_set_signed(struct queue *base, int64_t job_id, const char *sums,
    const char *sig, const char *prov, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct text_req *r = text_new(job_id, sums, sig, prov, done, data);

	submit(q, &r->r, signed_op);
}

/* The writes that carry an array: targets, artifacts, job ids. */
struct expand_req {
	struct req r;
	int64_t job_id, placeholder;
	char **targets;
	size_t n;
};

static void
expand_drop(struct req *r)
{
	struct expand_req *e = (struct expand_req *)r;

	for (size_t i = 0; i < e->n; i++)
		free(e->targets[i]);
	free(e->targets);
}

static int
expand_op(struct sqlq *q, void *arg)
{
	struct expand_req *r = arg;

	return db_expand_targets(q, r->job_id, r->placeholder, r->targets,
	    r->n);
}

void
sqlite_expand_targets(struct queue *base, int64_t job_id, int64_t placeholder_id,
    char *const *targets, size_t n, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct expand_req *r = req_new(sizeof *r, done, data);

	r->r.drop = expand_drop;
	r->job_id = job_id;
	r->placeholder = placeholder_id;
	r->targets = xcalloc(n ? n : 1, sizeof *r->targets);
	for (size_t i = 0; i < n; i++)
		r->targets[i] = xstrdup(targets[i]);
	r->n = n;
	submit(q, &r->r, expand_op);
}

struct finish_req {
	struct req r;
	int64_t target_id;
	int attempt;
	struct queue_outcome o;
	struct artifact *arts;
	char *error, *cache_key;
	enum job_state *job_state;
};

static void
finish_drop(struct req *r)
{
	struct finish_req *f = (struct finish_req *)r;

	artifacts_free(f->arts, f->o.narts);
	free(f->error);
	free(f->cache_key);
}

static int
finish_op(struct sqlq *q, void *arg)
{
	struct finish_req *r = arg;

	return db_finish_build(q, r->target_id, r->attempt, &r->o,
	    r->job_state);
}

void
sqlite_finish_build(struct queue *base, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct finish_req *r = req_new(sizeof *r, done, data);

	r->r.drop = finish_drop;
	r->target_id = target_id;
	r->attempt = attempt;
	r->job_state = job_state;
	r->o = *o;
	r->error = o->error != NULL ? xstrdup(o->error) : NULL;
	r->cache_key = o->cache_key != NULL ? xstrdup(o->cache_key) : NULL;
	r->arts = xcalloc(o->narts ? o->narts : 1, sizeof *r->arts);
	for (size_t i = 0; i < o->narts; i++) {
		r->arts[i].name = xstrdup(o->arts[i].name);
		r->arts[i].size = o->arts[i].size;
		r->arts[i].sha256 = o->arts[i].sha256 != NULL ?
		    xstrdup(o->arts[i].sha256) : NULL;
	}
	r->o.error = r->error;
	r->o.cache_key = r->cache_key;
	r->o.arts = r->arts;
	submit(q, &r->r, finish_op);
}

struct expire_req {
	struct req r;
	int64_t *ids;
	size_t n;
	int64_t now;
};

static void
expire_drop(struct req *r)
{
	free(((struct expire_req *)r)->ids);
}

static int
expire_op(struct sqlq *q, void *arg)
{
	struct expire_req *r = arg;

	return db_expire_jobs(q, r->ids, r->n, r->now);
}

void
sqlite_expire_jobs(struct queue *base, const int64_t *ids, size_t n, int64_t now,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct expire_req *r = req_new(sizeof *r, done, data);

	if (n > QUEUE_EXPIRE_BATCH)
		n = QUEUE_EXPIRE_BATCH;
	r->r.drop = expire_drop;
	r->ids = xcalloc(n ? n : 1, sizeof *r->ids);
	memcpy(r->ids, ids, n * sizeof *ids);
	r->n = n;
	r->now = now;
	submit(q, &r->r, expire_op);
}

struct reclaim_req {
	struct req r;
	int64_t target_id, before;
	int max_attempts;
};

static int
reclaim_op(struct sqlq *q, void *arg)
{
	struct reclaim_req *r = arg;

	return db_reclaim(q, r->target_id, r->before, r->max_attempts,
	    util_now_ms());
}

void
sqlite_reclaim(struct queue *base, int64_t target_id, int64_t now,
    int max_attempts, queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct reclaim_req *r = req_new(sizeof *r, done, data);

	r->target_id = target_id;
	r->before = now - queue_lease_ms(base);
	r->max_attempts = max_attempts;
	submit(q, &r->r, reclaim_op);
}
