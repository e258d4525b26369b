/*
 * The queue's reads are asynchronous (queue.h): each completes on the
 * loop after its call returned, never inside it, with its out-parameters
 * filled, or empty on failure; a read made in a write's completion sees
 * that write; queue_stop() delivers the reads still owed before it
 * completes.  Part of the conformance suite: written against queue.h
 * only (and the fixtures).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "queuefix.h"
#include "qsync.h"
#include "unit.h"

/* A read's completion: when it ran, and whether inside its call. */
struct rd {
	int fired, rc;
	bool in_call;		/* set around the call */
	bool ran_in_call;
	int order;		/* among the completions of the test */
	int *counter;
};

static void
rd_done(void *data, int rc)
{
	struct rd *r = data;

	r->fired++;
	r->rc = rc;
	r->ran_in_call = r->in_call;
	if (r->counter != NULL)
		r->order = ++*r->counter;
}

#define READ(r, call) do {						\
	(r).in_call = true;						\
	call;								\
	(r).in_call = false;						\
	CHECK_INT((r).fired, 0);					\
} while (0)

/* Every read of queue.h completes after its call returned, never in it,
 * once, with its out-parameters filled (or empty on failure). */
static void
test_a_read_completes_after_its_call(void)
{
	struct queue *q = fresh_queue();
	struct rd r[10];
	int counter = 0;
	struct job *j = (struct job *)1, *missing = (struct job *)1;
	struct job **list = NULL;
	size_t nlist = 0, nnext = 0, nun = 0, nstale = 0, nnotify = 1, narts = 1;
	int64_t next = -1, *un = NULL, stale[4], got = -1, pushed = -1;
	int64_t from = -1;
	struct queue_next nx[4];
	struct queue_notify *due = (struct queue_notify *)1;
	struct artifact *arts = (struct artifact *)1;
	struct queue_filter f = { .limit = 10 };
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64",
	    (char *)NULL));	/* starts the queue too */
	memset(r, 0, sizeof r);
	for (int i = 0; i < 10; i++)
		r[i].counter = &counter;
	READ(r[0], queue_get(q, id, &j, rd_done, &r[0]));
	READ(r[1], queue_get(q, id + 100, &missing, rd_done, &r[1]));
	READ(r[2], queue_list(q, &f, &list, &nlist, &next, rd_done, &r[2]));
	READ(r[3], queue_next_jobs(q, nx, 4, &nnext, rd_done, &r[3]));
	READ(r[4], queue_cache_lookup(q, "no such key", &arts, &narts, &from,
	    rd_done, &r[4]));
	READ(r[5], queue_unsigned_jobs(q, &un, &nun, rd_done, &r[5]));
	READ(r[6], queue_stale_targets(q, INT64_MAX, stale, 4, &nstale,
	    rd_done, &r[6]));
	READ(r[7], queue_delivery_job(q, "github", "none", &got, rd_done,
	    &r[7]));
	READ(r[8], queue_push_job(q, "p", "main", "0123", &pushed, rd_done,
	    &r[8]));
	READ(r[9], queue_notify_due(q, INT64_MAX, &due, &nnotify, rd_done,
	    &r[9]));
	while (counter < 10)
		uv_run(qs_loop(), UV_RUN_ONCE);
	for (int i = 0; i < 10; i++) {
		CHECK_INT(r[i].fired, 1);
		CHECK(!r[i].ran_in_call);
	}
	CHECK_INT(r[0].rc, 0);
	CHECK(j != NULL && j != (struct job *)1 && j->id == id &&
	    j->ntargets == 2);
	CHECK_INT(r[1].rc, QUEUE_ENOTFOUND);
	CHECK(missing == NULL);
	CHECK_INT(r[2].rc, 0);
	CHECK_INT(nlist, 1);
	CHECK_INT(next, 0);
	CHECK_INT(r[3].rc, 0);
	CHECK_INT(nnext, 1);
	CHECK_INT(nx[0].job_id, id);
	CHECK_INT(r[4].rc, QUEUE_ENOTFOUND);
	CHECK(arts == NULL);
	CHECK_INT(narts, 0);
	CHECK_INT(from, 0);
	CHECK_INT(r[5].rc, 0);
	CHECK_INT(nun, 0);
	CHECK_INT(r[6].rc, 0);
	CHECK_INT(nstale, 0);
	CHECK_INT(r[7].rc, QUEUE_ENOTFOUND);
	CHECK_INT(got, 0);
	CHECK_INT(r[8].rc, QUEUE_ENOTFOUND);
	CHECK_INT(pushed, 0);
	CHECK_INT(r[9].rc, 0);
	CHECK_INT(nnotify, 0);
	job_free(j == (struct job *)1 ? NULL : j);
	job_free_array(list, nlist);
	free(un);
	free(due == (struct queue_notify *)1 ? NULL : due);
	qs_close(q);
}

/* Reads made in a write's completion, on the same handle. */
struct after_write {
	struct queue *q;
	int64_t job_id;
	struct job *j;
	struct queue_next nx[4];
	size_t n;
	struct rd get, next;
	int write_rc, counter;
};

static void
priority_set(void *data, int rc)
{
	struct after_write *a = data;

	a->write_rc = rc;
	READ(a->get, queue_get(a->q, a->job_id, &a->j, rd_done, &a->get));
	READ(a->next, queue_next_jobs(a->q, a->nx, 4, &a->n, rd_done,
	    &a->next));
}

/* A read made in a write's completion sees that write, and every write
 * called before it. */
static void
test_a_read_in_a_completion_sees_the_write(void)
{
	struct queue *q = fresh_queue();
	struct after_write a;
	int64_t first, second;

	if (q == NULL)
		return;
	memset(&a, 0, sizeof a);
	first = submit1(q, make_job(0, "linux/amd64", (char *)NULL));
	second = submit1(q, make_job(0, "linux/amd64", (char *)NULL));
	a.q = q;
	a.job_id = second;
	a.get.counter = a.next.counter = &a.counter;
	queue_fail_job(q, first, "gone", NULL, NULL);
	queue_set_priority(q, second, 7, priority_set, &a);
	while (a.counter < 2)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(a.write_rc, 0);
	CHECK(!a.get.ran_in_call && !a.next.ran_in_call);
	CHECK_INT(a.get.rc, 0);
	if (a.j != NULL)
		CHECK_INT(a.j->priority, 7);
	job_free(a.j);
	/* The failed job has no queued target any more. */
	CHECK_INT(a.next.rc, 0);
	CHECK_INT(a.n, 1);
	CHECK_INT(a.nx[0].job_id, second);
	CHECK_INT(a.nx[0].priority, 7);
	qs_close(q);
}

static void
stop_closed(void *data)
{
	struct rd *r = data;

	/* The read's completion came first. */
	CHECK_INT(r->fired, 1);
	r->order = -1;
}

/* queue_stop(): a read still owed is delivered, with its answer, before
 * the stop completes. */
static void
test_stop_delivers_pending_reads(void)
{
	struct queue *q = fresh_queue();
	struct rd r;
	struct job *j = NULL;
	int64_t id;

	if (q == NULL)
		return;
	memset(&r, 0, sizeof r);
	id = submit1(q, make_job(0, "linux/amd64", (char *)NULL));
	READ(r, queue_get(q, id, &j, rd_done, &r));
	queue_stop(q, stop_closed, &r);
	while (r.order != -1)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(r.fired, 1);
	CHECK_INT(r.rc, 0);
	CHECK(j != NULL && j->id == id);
	job_free(j);
	qs_close(q);	/* forgets it (stopped already), then closes */
}

UNIT_MAIN(
	TEST(test_a_read_completes_after_its_call),
	TEST(test_a_read_in_a_completion_sees_the_write),
	TEST(test_stop_delivers_pending_reads)
)
