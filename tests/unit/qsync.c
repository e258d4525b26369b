/* Waiting for the queue's reads and writes, for tests (qsync.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "qsync.h"

#define MAX_QUEUES 16

static uv_loop_t loop;
static int loop_ready;
static struct queue *attached[MAX_QUEUES];

uv_loop_t *
qs_loop(void)
{
	if (!loop_ready) {
		uv_loop_init(&loop);
		loop_ready = 1;
	}
	return &loop;
}

void
qs_attach(struct queue *q)
{
	size_t free_slot = MAX_QUEUES;

	for (size_t i = 0; i < MAX_QUEUES; i++) {
		if (attached[i] == q)
			return;
		if (attached[i] == NULL && free_slot == MAX_QUEUES)
			free_slot = i;
	}
	if (free_slot == MAX_QUEUES || queue_start(q, qs_loop()) != 0)
		abort();
	attached[free_slot] = q;
}

/* One turn of `l` for a wait on `*flag`: a loop with nothing left
 * alive cannot set it, and spinning would hang the suite. */
static void
turn(uv_loop_t *l, const int *flag)
{
	if (uv_run(l, UV_RUN_ONCE) == 0 && !*flag) {
		fprintf(stderr, "qsync: waited on a queue call that will never "
		    "complete (the loop has nothing left to run)\n");
		abort();
	}
}

void
qs_run_until(const int *flag)
{
	while (!*flag)
		turn(qs_loop(), flag);
}

static void
stopped(void *data)
{
	*(int *)data = 1;
}

void
qs_close(struct queue *q)
{
	for (size_t i = 0; i < MAX_QUEUES; i++)
		if (q != NULL && attached[i] == q) {
			int done = 0;

			queue_stop(q, stopped, &done);
			qs_run_until(&done);
			attached[i] = NULL;
		}
	queue_close(q);
}

struct wait {
	int fired, rc;
};

static void
fired(void *data, int rc)
{
	struct wait *w = data;

	w->rc = rc;
	w->fired = 1;
}

/* Attach, make the call with w as its completion, wait, return rc. */
#define WAIT(q, call) do {						\
	struct wait w = { 0, 0 };					\
	qs_attach(q);							\
	call;								\
	qs_run_until(&w.fired);						\
	return w.rc;							\
} while (0)

int
qs_submit(struct queue *q, struct job *const *jobs, size_t n)
{
	WAIT(q, queue_submit(q, jobs, n, fired, &w));
}

int
qs_cancel(struct queue *q, int64_t id, size_t *nrunning)
{
	WAIT(q, queue_cancel(q, id, nrunning, fired, &w));
}

int
qs_set_priority(struct queue *q, int64_t id, int priority)
{
	WAIT(q, queue_set_priority(q, id, priority, fired, &w));
}

int
qs_claim(struct queue *q, struct queue_claim *out)
{
	WAIT(q, queue_claim(q, out, fired, &w));
}

int
qs_claim_job(struct queue *q, int64_t job_id, struct queue_claim *out)
{
	WAIT(q, queue_claim_job(q, job_id, out, fired, &w));
}

int
qs_release(struct queue *q, int64_t target_id, int attempt)
{
	WAIT(q, queue_release(q, target_id, attempt, fired, &w));
}

int
qs_heartbeat(struct queue *q, int64_t target_id, int attempt)
{
	WAIT(q, queue_heartbeat(q, target_id, attempt, fired, &w));
}

int
qs_reclaim(struct queue *q, int64_t target_id, int64_t now,
    int max_attempts)
{
	WAIT(q, queue_reclaim(q, target_id, now, max_attempts, fired, &w));
}

int
qs_set_commit(struct queue *q, int64_t job_id, const char *commit,
    enum job_trust trust)
{
	WAIT(q, queue_set_commit(q, job_id, commit, trust, fired, &w));
}

int
qs_set_toolchain(struct queue *q, int64_t target_id, const char *toolchain)
{
	WAIT(q, queue_set_toolchain(q, target_id, toolchain, fired, &w));
}

int
qs_set_verified(struct queue *q, int64_t target_id, int attempt,
    const char *verified)
{
	WAIT(q, queue_set_verified(q, target_id, attempt, verified, fired,
	    &w));
}

int
qs_expand_targets(struct queue *q, int64_t job_id, int64_t placeholder_id,
    char *const *targets, size_t n)
{
	WAIT(q, queue_expand_targets(q, job_id, placeholder_id, targets, n,
	    fired, &w));
}

int
qs_finish(struct queue *q, int64_t target_id, int attempt,
    enum target_state state, int exit_status, const char *error,
    const struct artifact *arts, size_t narts)
{
	struct queue_outcome o = {
		.state = state, .exit_status = exit_status, .error = error,
		.arts = arts, .narts = narts,
	};

	WAIT(q, queue_finish_build(q, target_id, attempt, &o, NULL, fired,
	    &w));
}

int
qs_finish_build(struct queue *q, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state)
{
	WAIT(q, queue_finish_build(q, target_id, attempt, o, job_state, fired,
	    &w));
}

int
qs_set_signed(struct queue *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov)
{
	WAIT(q, queue_set_signed(q, job_id, sums, sig, prov, fired, &w));
}

int
qs_fail_job(struct queue *q, int64_t job_id, const char *error)
{
	WAIT(q, queue_fail_job(q, job_id, error, fired, &w));
}

int
qs_notify_result(struct queue *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at)
{
	WAIT(q, queue_notify_result(q, job_id, state, error, next_at, fired,
	    &w));
}

int
qs_get(struct queue *q, int64_t id, struct job **out)
{
	WAIT(q, queue_get(q, id, out, fired, &w));
}

int
qs_list(struct queue *q, const struct queue_filter *f, struct job ***out,
    size_t *nout, int64_t *next)
{
	WAIT(q, queue_list(q, f, out, nout, next, fired, &w));
}

int
qs_next_jobs(struct queue *q, struct queue_next *out, size_t max, size_t *n)
{
	WAIT(q, queue_next_jobs(q, out, max, n, fired, &w));
}

int
qs_cache_lookup(struct queue *q, const char *key, struct artifact **arts,
    size_t *narts, int64_t *from_job)
{
	WAIT(q, queue_cache_lookup(q, key, arts, narts, from_job, fired, &w));
}

int
qs_unsigned_jobs(struct queue *q, int64_t **ids, size_t *n)
{
	WAIT(q, queue_unsigned_jobs(q, ids, n, fired, &w));
}

int
qs_stale_targets(struct queue *q, int64_t now, int64_t *ids, size_t max,
    size_t *n)
{
	WAIT(q, queue_stale_targets(q, now, ids, max, n, fired, &w));
}

int
qs_delivery_job(struct queue *q, const char *forge, const char *id,
    int64_t *job_id)
{
	WAIT(q, queue_delivery_job(q, forge, id, job_id, fired, &w));
}

int
qs_push_job(struct queue *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id)
{
	WAIT(q, queue_push_job(q, project, ref, commit, job_id, fired, &w));
}

int
qs_notify_due(struct queue *q, int64_t now, struct queue_notify **out,
    size_t *n)
{
	WAIT(q, queue_notify_due(q, now, out, n, fired, &w));
}

int
qs_host_beat(struct queue *q, const struct queue_host *h)
{
	WAIT(q, queue_host_beat(q, h, fired, &w));
}

int
qs_hosts(struct queue *q, struct queue_host **out, size_t *n)
{
	WAIT(q, queue_hosts(q, out, n, fired, &w));
}

int
qs_get_on(uv_loop_t *l, struct queue *q, int64_t id, struct job **out)
{
	struct wait w = { 0, 0 };

	queue_get(q, id, out, fired, &w);
	while (!w.fired)
		turn(l, &w.fired);
	return w.rc;
}

static int
expire_batch(struct queue *q, const int64_t *ids, size_t n, int64_t now)
{
	WAIT(q, queue_expire_jobs(q, ids, n, now, fired, &w));
}

int
qs_expire(struct queue *q, const struct queue_retention *r, int64_t now,
    int64_t **ids, size_t *n)
{
	int rc = queue_expire_select(q, r, now, ids, n);

	for (size_t i = 0; rc == 0 && i < *n; i += QUEUE_EXPIRE_BATCH)
		rc = expire_batch(q, *ids + i, *n - i, now);
	if (rc != 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}
