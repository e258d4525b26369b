/*
 * The queue's write contract (daemon/db/queue.h), through the interface
 * only: writes complete in the order they were called; a completion sees
 * every write before it, also from another handle on the same database
 * (it is committed, not only visible to the writer); writes that arrive
 * while the database is locked wait and complete in order; a write that
 * fails is rolled back alone, never taking the others along.  Both
 * backends (queuefix.h).
 */
#include "config.h"

#include <string.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "queuefix.h"
#include "qsync.h"
#include "unit.h"

/* A job of `n` targets ("linux/amd64", "linux/arm64", ...), stored. */
static int64_t
stored_job(struct queue *q, size_t n)
{
	static const char *const names[] = { "linux/amd64", "linux/arm64",
	    "windows/amd64", "darwin/arm64" };
	struct job *j = xcalloc(1, sizeof *j);
	int64_t id;

	j->repo = xstrdup("https://example.com/x.git");
	j->ref = xstrdup("main");
	j->state = JOB_QUEUED;
	j->created_at = 1700000000000;
	j->targets = xcalloc(n, sizeof *j->targets);
	for (size_t i = 0; i < n && i < 4; i++) {
		snprintf(j->targets[i].target, sizeof j->targets[i].target,
		    "%s", names[i]);
		j->targets[i].state = TARGET_QUEUED;
		j->ntargets++;
	}
	CHECK_INT(qs_submit(q, &j, 1), 0);
	id = j->id;
	job_free(j);
	return id;
}

/* Completions, in the order they ran. */
struct seen {
	int order[64];
	int rc[64];
	int n;
	struct queue *other;		/* a second handle, for reads */
	int64_t job_id;
	enum job_state other_saw;
	struct job *other_job;		/* its read's answer */
	bool other_read;		/* its read completed */
};

struct call {
	struct seen *seen;
	int index;
};

static void
record(void *data, int rc)
{
	struct call *c = data;

	c->seen->rc[c->index] = rc;
	c->seen->order[c->seen->n++] = c->index;
}

static void
other_read(void *data, int rc)
{
	struct seen *seen = data;

	if (rc == 0)
		seen->other_saw = seen->other_job->state;
	job_free(seen->other_job);
	seen->other_job = NULL;
	seen->other_read = true;
}

static void
record_and_read(void *data, int rc)
{
	struct call *c = data;

	record(data, rc);
	/* Committed: another connection sees it, not only the writer. */
	queue_get(c->seen->other, c->seen->job_id, &c->seen->other_job,
	    other_read, c->seen);
}

static void
test_claim_then_finish_without_waiting(void)
{
	struct queue *q = fresh_queue(), *q2 = NULL;
	struct queue_claim c;
	struct seen seen = { .n = 0 };
	struct call calls[3];
	struct queue_outcome ok = { .state = TARGET_SUCCEEDED, .exit_status = 0 };
	enum job_state js = JOB_QUEUED;
	char err[256];
	int64_t id;

	if (q == NULL)
		return;
	CHECK_INT(queue_open(&q2, db_path, err, sizeof err), 0);
	qs_attach(q2);		/* its reads complete on the same loop */
	id = stored_job(q, 1);
	CHECK_INT(qs_claim(q, &c), 0);
	seen.other = q2;
	seen.job_id = id;
	seen.other_saw = JOB_QUEUED;
	for (int i = 0; i < 3; i++)
		calls[i] = (struct call){ &seen, i };
	/* Three writes called in a row, none waited for. */
	queue_heartbeat(q, c.target_id, c.attempt, record, &calls[0]);
	queue_set_toolchain(q, c.target_id, "go1.22.12", record, &calls[1]);
	queue_finish_build(q, c.target_id, c.attempt, &ok, &js, record_and_read,
	    &calls[2]);
	while (seen.n < 3 || !seen.other_read)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(seen.order[0], 0);
	CHECK_INT(seen.order[1], 1);
	CHECK_INT(seen.order[2], 2);
	CHECK_INT(seen.rc[0], 0);
	CHECK_INT(seen.rc[1], 0);
	CHECK_INT(seen.rc[2], 0);
	CHECK_INT(js, JOB_SUCCEEDED);
	/* When the finish completed, another handle already read it. */
	CHECK_INT(seen.other_saw, JOB_SUCCEEDED);
	{
		struct job *j = NULL;
		CHECK_INT(qs_get(q2, id, &j), 0);
		if (j != NULL)
			CHECK_STR(j->targets[0].toolchain, "go1.22.12");
		job_free(j);
	}
	qs_close(q);
	qs_close(q2);
}

/* Writes called while the database is locked wait their turn and
 * complete in order (on SQLite in one transaction, which
 * test_queue_sqlite.c checks: group commit is its writer's). */
static void
test_writes_meanwhile_complete_in_order(void)
{
	struct queue *q = fresh_queue();
	struct seen seen = { .n = 0 };
	struct call calls[40];
	struct queue_claim c;
	uint64_t writes;
	struct write_lock lock;

	if (q == NULL)
		return;
	stored_job(q, 1);
	CHECK_INT(qs_claim(q, &c), 0);
	writes = queue_writes(q);
	lock = hold_write_lock();
	for (int i = 0; i < 40; i++) {
		calls[i] = (struct call){ &seen, i };
		queue_heartbeat(q, c.target_id, c.attempt, record, &calls[i]);
	}
	CHECK_INT(queue_pending_writes(q), 40);
	let_go(lock);
	while (seen.n < 40)
		uv_run(qs_loop(), UV_RUN_ONCE);
	for (int i = 0; i < 40; i++) {
		CHECK_INT(seen.order[i], i);
		CHECK_INT(seen.rc[i], 0);
	}
	CHECK_INT(queue_writes(q) - writes, 40);
	CHECK_INT(queue_pending_writes(q), 0);
	qs_close(q);
}

static void
test_a_failed_write_is_rolled_back_alone(void)
{
	struct queue *q = fresh_queue();
	struct seen seen = { .n = 0 };
	struct call calls[4];
	size_t running = 99;
	struct write_lock lock;
	int64_t a, b;

	if (q == NULL)
		return;
	a = stored_job(q, 2);
	b = stored_job(q, 1);
	for (int i = 0; i < 4; i++)
		calls[i] = (struct call){ &seen, i };
	lock = hold_write_lock();
	queue_cancel(q, a, &running, record, &calls[0]);
	queue_set_priority(q, b + 100, 5, record, &calls[1]);	/* no job */
	queue_fail_job(q, b, "the fetch failed", record, &calls[2]);
	queue_cancel(q, b, &running, record, &calls[3]);	/* ended */
	let_go(lock);
	while (seen.n < 4)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(seen.rc[0], 0);
	CHECK_INT(seen.rc[1], QUEUE_ENOTFOUND);
	CHECK_INT(seen.rc[2], 0);
	CHECK_INT(seen.rc[3], QUEUE_ECONFLICT);
	{
		struct job *j = NULL;
		CHECK_INT(qs_get(q, a, &j), 0);
		if (j != NULL)
			CHECK_INT(j->state, JOB_CANCELED);
		job_free(j);
		j = NULL;
		CHECK_INT(qs_get(q, b, &j), 0);
		if (j != NULL) {
			CHECK_INT(j->state, JOB_FAILED);
			CHECK_STR(j->error, "the fetch failed");
		}
		job_free(j);
	}
	qs_close(q);
}

/* The counts kept on transitions equal what a fresh count of the
 * database gives (a second handle counts at open), also after writes
 * that failed and were rolled back inside a shared transaction. */
static void
test_counts_follow_committed_states(void)
{
	struct queue *q = fresh_queue(), *q2 = NULL;
	int64_t jobs[JOB_STATE_COUNT], targets[TARGET_STATE_COUNT];
	int64_t jobs2[JOB_STATE_COUNT], targets2[TARGET_STATE_COUNT];
	struct seen seen = { .n = 0 };
	struct call calls[4];
	struct queue_claim c;
	/* Two files of one name: the finish fails at the second, after it
	 * wrote the target's new state and the first file. */
	struct artifact twice[2] = { { "kiln", 1, NULL }, { "kiln", 2, NULL } };
	struct queue_outcome ok = { .state = TARGET_SUCCEEDED,
	    .exit_status = 0, .arts = twice, .narts = 2 };
	size_t running;
	char err[256];
	struct write_lock lock;
	int64_t a, b;

	if (q == NULL)
		return;
	a = stored_job(q, 3);
	b = stored_job(q, 2);
	stored_job(q, 1);
	CHECK_INT(qs_claim_job(q, a, &c), 0);
	for (int i = 0; i < 4; i++)
		calls[i] = (struct call){ &seen, i };
	lock = hold_write_lock();
	queue_cancel(q, a, &running, record, &calls[0]);
	queue_fail_job(q, b, "no", record, &calls[1]);
	queue_fail_job(q, b, "twice", record, &calls[2]);	/* conflicts */
	queue_finish_build(q, c.target_id, c.attempt,
	    &ok, NULL, record, &calls[3]);
	let_go(lock);
	while (seen.n < 4)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(seen.rc[2], QUEUE_ECONFLICT);
	CHECK_INT(seen.rc[3], QUEUE_ERROR);
	CHECK_INT(queue_count_by_state(q, jobs, targets), 0);
	CHECK_INT(queue_open(&q2, db_path, err, sizeof err), 0);
	CHECK_INT(queue_count_by_state(q2, jobs2, targets2), 0);
	for (int i = 0; i < JOB_STATE_COUNT; i++)
		CHECK_INT(jobs[i], jobs2[i]);
	for (int i = 0; i < TARGET_STATE_COUNT; i++)
		CHECK_INT(targets[i], targets2[i]);
	CHECK_INT(jobs[JOB_QUEUED], 1);
	CHECK_INT(jobs[JOB_RUNNING], 1);	/* a: one target still runs */
	CHECK_INT(jobs[JOB_FAILED], 1);
	CHECK_INT(targets[TARGET_RUNNING], 1);
	CHECK_INT(targets[TARGET_CANCELED], 2);
	CHECK_INT(targets[TARGET_FAILED], 2);
	CHECK_INT(targets[TARGET_QUEUED], 1);
	qs_close(q2);
	qs_close(q);
}

static void
closed(void *data)
{
	*(int *)data = 1;
}

static void
test_stop_runs_what_was_called(void)
{
	struct queue *q = fresh_queue(), *q2 = NULL;
	struct seen seen = { .n = 0 };
	struct call call = { &seen, 0 };
	size_t running = 0;
	char err[256];
	int64_t id;
	int done = 0;

	if (q == NULL)
		return;
	id = stored_job(q, 1);
	/* Called, then the writer stopped before it ran: it still runs,
	 * and its completion comes before the stop's. */
	queue_cancel(q, id, &running, record, &call);
	queue_stop(q, closed, &done);
	qs_run_until(&done);
	CHECK_INT(seen.n, 1);
	CHECK_INT(seen.rc[0], 0);
	/* Not queue_close(): qsync would still take a queue opened later at
	 * the same address for this one, with its writer running. */
	qs_close(q);
	CHECK_INT(queue_open(&q2, db_path, err, sizeof err), 0);
	{
		struct job *j = NULL;
		CHECK_INT(qs_get(q2, id, &j), 0);
		if (j != NULL)
			CHECK_INT(j->state, JOB_CANCELED);
		job_free(j);
	}
	qs_close(q2);
}

static int
wait_reclaim(struct queue *q, int64_t target_id, int max_attempts)
{
	struct seen seen = { .n = 0 };
	struct call call = { &seen, 0 };

	queue_reclaim(q, target_id, INT64_MAX, max_attempts, record, &call);
	while (seen.n < 1)
		uv_run(qs_loop(), UV_RUN_ONCE);
	return seen.rc[0];
}

/* A build nobody finishes (its worker is gone) of a job being canceled:
 * the lease ends it as canceled, with the times of a build that ran;
 * one that runs again has neither. */
static void
test_reclaim_ends_a_canceled_build(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c, c2;
	size_t running = 0;
	struct job *j = NULL;
	int64_t a, b;

	if (q == NULL)
		return;
	a = stored_job(q, 1);
	b = stored_job(q, 1);
	CHECK_INT(qs_claim_job(q, a, &c), 0);
	CHECK_INT(qs_claim_job(q, b, &c2), 0);
	CHECK_INT(qs_cancel(q, a, &running), 0);
	CHECK_INT(running, 1);
	CHECK_INT(wait_reclaim(q, c.target_id, 3), 0);
	CHECK_INT(wait_reclaim(q, c2.target_id, 3), 0);
	CHECK_INT(qs_get(q, a, &j), 0);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		CHECK(j->targets[0].started_at > 0);
		CHECK(j->targets[0].finished_at > 0);
		CHECK(j->targets[0].finished_at >= j->targets[0].started_at);
	}
	job_free(j);
	j = NULL;
	CHECK_INT(qs_get(q, b, &j), 0);
	if (j != NULL) {
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		CHECK_INT(j->targets[0].started_at, 0);
		CHECK_INT(j->targets[0].finished_at, 0);
	}
	job_free(j);
	qs_close(q);
}

/* Completions in the order the writes were called, for the tests of
 * queue_stop() (more than one transaction's worth of them). */
#define MANY (QUEUE_EXPIRE_BATCH + 44)
static struct queue *stopping_q;
static int stop_order[MANY + 2], stop_rc[MANY + 2], stop_n;
static int stop_index[MANY + 2];

static void
stop_record(void *data, int rc)
{
	int i = *(int *)data;

	stop_rc[i] = rc;
	stop_order[stop_n++] = i;
	/* The first completion asks for one more write, while the writer
	 * stops and has still a transaction to run. */
	if (i == 0) {
		stop_index[MANY] = MANY;
		queue_heartbeat(stopping_q, 1, 1, stop_record,
		    &stop_index[MANY]);
	}
}

static void
test_a_write_during_stop_completes_in_order(void)
{
	struct queue *q = fresh_queue();
	struct write_lock lock;
	int done = 0;

	if (q == NULL)
		return;
	stopping_q = q;
	stop_n = 0;
	qs_attach(q);
	lock = hold_write_lock();
	for (int i = 0; i < MANY; i++) {
		stop_index[i] = i;
		queue_heartbeat(q, 1, 1, stop_record, &stop_index[i]);
	}
	queue_stop(q, closed, &done);
	let_go(lock);
	qs_run_until(&done);
	CHECK_INT(stop_n, MANY + 1);
	for (int i = 0; i < stop_n; i++)
		if (stop_order[i] != i) {
			CHECK_INT(stop_order[i], i);	/* the first only */
			break;
		}
	CHECK_INT(stop_rc[1], QUEUE_ENOTFOUND);	/* it ran */
	CHECK_INT(stop_rc[MANY], QUEUE_ERROR);	/* it came too late */
	qs_close(q);
}

static int late_rc;

static void
late_done(void *data, int rc)
{
	(void)data;
	late_rc = rc;
}

/* Another part of kilnd woken in the loop iteration where the writer
 * closed its handle (a pool task's end, a child's exit) writes. */
static void
late_write(uv_async_t *h)
{
	queue_heartbeat(stopping_q, 1, 1, late_done, NULL);
	uv_close((uv_handle_t *)h, NULL);
}

static void
test_a_write_as_the_writer_closes_completes(void)
{
	struct queue *q = fresh_queue();
	uv_async_t other;
	int done = 0;

	if (q == NULL)
		return;
	stopping_q = q;
	late_rc = 1;
	qs_attach(q);
	/* After the writer's handle: woken in the same iteration, after it. */
	uv_async_init(qs_loop(), &other, late_write);
	queue_stop(q, closed, &done);
	uv_async_send(&other);
	uv_sleep(200);		/* the writer's thread has returned */
	qs_run_until(&done);
	uv_run(qs_loop(), UV_RUN_NOWAIT);
	CHECK_INT(late_rc, QUEUE_ERROR);
	qs_close(q);
}

UNIT_MAIN(
	TEST(test_claim_then_finish_without_waiting),
	TEST(test_writes_meanwhile_complete_in_order),
	TEST(test_a_failed_write_is_rolled_back_alone),
	TEST(test_stop_runs_what_was_called),
	TEST(test_a_write_during_stop_completes_in_order),
	TEST(test_a_write_as_the_writer_closes_completes),
	TEST(test_reclaim_ends_a_canceled_build),
	TEST(test_counts_follow_committed_states)
)
