/*
 * The queue's contract (daemon/db/queue.h), part one: submit, claim and
 * the queue's order, finish, cancel, priority, list.  Through the
 * interface only: any backend must pass it (test_queue_life.c has the
 * rest; test_queue_sqlite.c what is SQLite's own).
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "daemon/db/queue.h"
#include "daemon/sign.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "queuefix.h"
#include "unit.h"

static void
test_submit_many_in_one_call(void)
{
	struct queue *q = fresh_queue();
	struct job *jobs[3], *j;

	if (q == NULL)
		return;
	jobs[0] = make_job(0, "linux/amd64", "linux/arm64", NULL);
	jobs[1] = make_job(3, "windows/amd64", NULL);
	jobs[2] = make_job(-2, "linux/arm/v7", "darwin/arm64", "linux/386",
	    NULL);
	jobs[1]->recipe = xstrdup("{\"kind\":\"go\"}");
	jobs[2]->ref = (free(jobs[2]->ref), xstrdup("v1.0.0"));
	CHECK_INT(qs_submit(q, jobs, 3), 0);
	CHECK(jobs[0]->id > 0);
	CHECK(jobs[1]->id > jobs[0]->id);
	CHECK(jobs[2]->id > jobs[1]->id);
	CHECK(jobs[0]->targets[0].id > 0);
	CHECK(jobs[0]->targets[1].id > jobs[0]->targets[0].id);
	CHECK(jobs[2]->targets[2].id > jobs[2]->targets[1].id);

	j = get(q, jobs[2]->id);
	if (j != NULL) {
		CHECK_INT(j->id, jobs[2]->id);
		CHECK_STR(j->repo, "https://example.com/x.git");
		CHECK_STR(j->ref, "v1.0.0");
		CHECK(j->commit == NULL);
		CHECK(j->recipe == NULL);
		CHECK(j->error == NULL);
		CHECK_INT(j->priority, -2);
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_INT(j->created_at, 1700000000000);
		CHECK_INT(j->started_at, 0);
		CHECK_INT(j->finished_at, 0);
		CHECK_INT(j->ntargets, 3);
		if (j->ntargets == 3) {
			CHECK_STR(j->targets[0].target, "linux/arm/v7");
			CHECK_STR(j->targets[1].target, "darwin/arm64");
			CHECK_STR(j->targets[2].target, "linux/386");
			for (size_t i = 0; i < 3; i++) {
				CHECK_INT(j->targets[i].id,
				    jobs[2]->targets[i].id);
				CHECK_INT(j->targets[i].state, TARGET_QUEUED);
				CHECK_INT(j->targets[i].attempt, 0);
				CHECK(!j->targets[i].has_exit_status);
				CHECK_INT(j->targets[i].started_at, 0);
			}
		}
		job_free(j);
	}
	j = get(q, jobs[1]->id);
	if (j != NULL) {
		CHECK_STR(j->recipe, "{\"kind\":\"go\"}");
		CHECK_INT(j->priority, 3);
		CHECK_INT(j->ntargets, 1);
		job_free(j);
	}
	j = NULL;
	CHECK_INT(qs_get(q, jobs[2]->id + 1, &j), QUEUE_ENOTFOUND);
	CHECK(j == NULL);
	CHECK_INT(qs_submit(q, jobs, 0), 0);
	for (size_t i = 0; i < 3; i++)
		job_free(jobs[i]);
	qs_close(q);
}

static void
test_submit_is_all_or_nothing(void)
{
	struct queue *q = fresh_queue();
	struct job *jobs[2];
	int64_t n = -1;

	if (q == NULL)
		return;
	jobs[0] = make_job(0, "linux/amd64", NULL);
	/* The same target twice breaks UNIQUE (job_id, target). */
	jobs[1] = make_job(0, "linux/amd64", "linux/amd64", NULL);
	CHECK_INT(qs_submit(q, jobs, 2), QUEUE_ERROR);
	CHECK_INT(jobs[0]->id, 0);
	CHECK_INT(jobs[1]->id, 0);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);
	/* And the queue still works afterwards. */
	job_free(jobs[1]);
	jobs[1] = make_job(0, "linux/arm64", NULL);
	CHECK_INT(qs_submit(q, jobs, 2), 0);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 2);
	job_free(jobs[0]);
	job_free(jobs[1]);
	qs_close(q);
}

static void
test_claim_order(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	int64_t a, b, cc, d;

	if (q == NULL)
		return;
	a = submit1(q, make_job(0, "linux/arm64", "linux/amd64", NULL));
	b = submit1(q, make_job(5, "windows/amd64", "darwin/arm64", NULL));
	cc = submit1(q, make_job(0, "linux/386", NULL));
	d = submit1(q, make_job(-1, "js/wasm", NULL));
	/* Highest priority first, then the oldest job, then target order. */
	expect_claim(q, b, "windows/amd64");
	expect_claim(q, b, "darwin/arm64");
	expect_claim(q, a, "linux/arm64");
	expect_claim(q, a, "linux/amd64");
	expect_claim(q, cc, "linux/386");
	expect_claim(q, d, "js/wasm");
	CHECK_INT(qs_claim(q, &c), QUEUE_EEMPTY);
	qs_close(q);
}

/*
 * The next jobs: each job once however many of its targets are queued,
 * highest priority first, then oldest; `max` counts jobs, not targets.
 * A job's own claim takes its first queued target.
 */
static void
test_next_jobs_order(void)
{
	struct queue *q = fresh_queue();
	struct queue_next next[8];
	struct queue_claim c;
	int64_t a, b, cc, d, e;
	size_t n = 0;

	if (q == NULL)
		return;
	a = submit1(q, make_job(0, "linux/amd64", "linux/arm64", "linux/386",
	    NULL));
	b = submit1(q, make_job(7, "windows/amd64", "linux/amd64", NULL));
	cc = submit1(q, make_job(0, "linux/amd64", NULL));
	d = submit1(q, make_job(7, "linux/riscv64", NULL));
	e = submit1(q, make_job(-3, "linux/amd64", NULL));
	CHECK_INT(qs_next_jobs(q, next, 3, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_INT(next[0].job_id, b);
		CHECK_INT(next[0].priority, 7);
		CHECK_INT(next[1].job_id, d);
		CHECK_INT(next[2].job_id, a);
		CHECK_INT(next[2].priority, 0);
	}
	CHECK_INT(qs_next_jobs(q, next, 8, &n), 0);
	CHECK_INT(n, 5);
	if (n == 5) {
		CHECK_INT(next[3].job_id, cc);
		CHECK_INT(next[4].job_id, e);
		CHECK_INT(next[4].priority, -3);
	}
	/* Not the queue's first target: a's own, in a's order. */
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim_job(q, a, &c), 0);
	CHECK_INT(c.job_id, a);
	CHECK_STR(c.target, "linux/amd64");
	CHECK_INT(qs_claim_job(q, a, &c), 0);
	CHECK_STR(c.target, "linux/arm64");
	CHECK_INT(qs_claim_job(q, d, &c), 0);
	CHECK_STR(c.target, "linux/riscv64");
	CHECK_INT(qs_claim_job(q, d, &c), QUEUE_EEMPTY);
	/* d has nothing queued any more; a still has a target. */
	CHECK_INT(qs_next_jobs(q, next, 8, &n), 0);
	CHECK_INT(n, 4);
	if (n == 4) {
		CHECK_INT(next[0].job_id, b);
		CHECK_INT(next[1].job_id, a);
		CHECK_INT(next[2].job_id, cc);
	}
	qs_close(q);
}

static void
test_claim_marks_running(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int64_t id, n = -1;

	if (q == NULL)
		return;
	queue_set_host(q, "builder-1");
	CHECK_INT(qs_claim(q, &c), QUEUE_EEMPTY);
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(c.attempt, 1);
	j = get(q, id);
	if (j != NULL) {
		/* The claim names the host; a target not claimed has none. */
		CHECK_STR(j->targets[0].host, "builder-1");
		CHECK(j->targets[1].host == NULL);
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK(j->started_at > 0);
		CHECK_INT(j->finished_at, 0);
		CHECK_INT(j->targets[0].id, c.target_id);
		CHECK_INT(j->targets[0].state, TARGET_RUNNING);
		CHECK_INT(j->targets[0].attempt, 1);
		CHECK(j->targets[0].started_at > 0);
		CHECK_INT(j->targets[1].state, TARGET_QUEUED);
		CHECK_INT(j->targets[1].attempt, 0);
		job_free(j);
	}
	CHECK_INT(queue_count_jobs(q, JOB_RUNNING, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), 0);
	/* A later claim of the same job keeps the job's first start. */
	usleep(20 * 1000);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_claim(q, &c), QUEUE_EEMPTY);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->started_at, j->targets[0].started_at);
		CHECK(j->targets[1].started_at > j->targets[0].started_at);
		CHECK_INT(j->targets[1].state, TARGET_RUNNING);
		CHECK_INT(j->targets[1].attempt, 1);
		job_free(j);
	}
	qs_close(q);
}

static void
test_finish_all_succeeded(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c1, c2;
	struct job *j;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c1), 0);
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(qs_finish(q, c1.target_id, c1.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		/* One left running: the job is still running. */
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->finished_at, 0);
		CHECK_INT(j->targets[0].state, TARGET_SUCCEEDED);
		CHECK(j->targets[0].has_exit_status);
		CHECK_INT(j->targets[0].exit_status, 0);
		CHECK(j->targets[0].finished_at > 0);
		job_free(j);
	}
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		CHECK(j->finished_at > 0);
		CHECK(j->finished_at >= j->started_at);
		CHECK(j->error == NULL);
		job_free(j);
	}
	/* Finishing again: the target no longer runs that attempt. */
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt,
	    TARGET_FAILED, 1, "x", NULL, 0), QUEUE_ECONFLICT);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		CHECK_INT(j->targets[1].state, TARGET_SUCCEEDED);
		job_free(j);
	}
	qs_close(q);
}

static void
test_finish_one_failed(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c1, c2;
	struct job *j;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c1), 0);
	CHECK_INT(qs_finish(q, c1.target_id, c1.attempt, TARGET_FAILED, 2,
	    "exit status 2", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		/* The other target is still queued: the job goes on. */
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->targets[0].state, TARGET_FAILED);
		CHECK(j->targets[0].has_exit_status);
		CHECK_INT(j->targets[0].exit_status, 2);
		CHECK_STR(j->targets[0].error, "exit status 2");
		job_free(j);
	}
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK(j->finished_at > 0);
		job_free(j);
	}
	qs_close(q);
}

/*
 * A job that wants release outputs gets its "release" row, queued, in
 * the transaction of its last build's success, and only then; the job
 * runs until that row ends.  A failed build means no release row.  A
 * verifying rebuild's result is kept for the attempt that made it.
 */
static void
test_release_row(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c1, c2, r;
	struct job *j, *jf;
	int64_t id, fid;

	if (q == NULL)
		return;
	j = make_job(0, "linux/amd64", "linux/arm64", NULL);
	j->outputs = xstrdup("{\"archives\":{}}");
	j->release = true;
	id = submit1(q, j);
	jf = make_job(0, "linux/amd64", NULL);
	jf->outputs = xstrdup("{\"sbom\":true}");
	jf->release = true;
	fid = submit1(q, jf);
	CHECK_INT(qs_claim(q, &c1), 0);
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(qs_set_verified(q, c1.target_id, c1.attempt,
	    "{\"reproducible\":true}"), 0);
	CHECK_INT(qs_set_verified(q, c1.target_id, c1.attempt + 1,
	    "{\"reproducible\":false}"), QUEUE_ECONFLICT);
	CHECK_INT(qs_finish(q, c1.target_id, c1.attempt, TARGET_SUCCEEDED, 0,
	    NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->ntargets, 2);
		CHECK_STR(j->outputs, "{\"archives\":{}}");
		CHECK(j->release);
		CHECK_STR(j->targets[0].verified, "{\"reproducible\":true}");
		job_free(j);
	}
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt, TARGET_SUCCEEDED, 0,
	    NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->ntargets, 3);
		if (j->ntargets == 3) {
			CHECK_STR(j->targets[2].target, "release");
			CHECK_INT(j->targets[2].state, TARGET_QUEUED);
		}
		job_free(j);
	}
	/* The release row is claimed like a build (its job is the oldest)
	 * and ends the job. */
	CHECK_INT(qs_claim(q, &r), 0);
	CHECK_INT(r.job_id, id);
	CHECK_STR(r.target, "release");
	CHECK_INT(qs_finish(q, r.target_id, r.attempt, TARGET_SUCCEEDED, 0,
	    NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		CHECK_INT(j->ntargets, 3);
		job_free(j);
	}
	/* The other job's build fails: it ends, with no release row. */
	CHECK_INT(qs_claim(q, &c1), 0);
	CHECK_INT(c1.job_id, fid);
	CHECK_INT(qs_finish(q, c1.target_id, c1.attempt, TARGET_FAILED, 1,
	    "exit status 1", NULL, 0), 0);
	j = get(q, fid);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK_INT(j->ntargets, 1);
		job_free(j);
	}
	CHECK_INT(qs_claim(q, &r), QUEUE_EEMPTY);
	qs_close(q);
}

static void
test_finish_timed_out_and_no_exit_status(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_finish(q, c.target_id, c.attempt, TARGET_TIMED_OUT, -1,
	    "killed after 3600 s", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK_INT(j->targets[0].state, TARGET_TIMED_OUT);
		CHECK(!j->targets[0].has_exit_status);
		CHECK_STR(j->targets[0].error, "killed after 3600 s");
		job_free(j);
	}
	qs_close(q);
}

static void
test_finish_not_running(void)
{
	struct queue *q = fresh_queue();
	struct job *j;
	int64_t id, tid;

	if (q == NULL)
		return;
	j = make_job(0, "linux/amd64", NULL);
	CHECK_INT(qs_submit(q, &j, 1), 0);
	id = j->id;
	tid = j->targets[0].id;
	job_free(j);
	/* Queued, not running: no attempt of it may write. */
	CHECK_INT(qs_finish(q, tid, 1, TARGET_SUCCEEDED, 0, NULL, NULL, 0),
	    QUEUE_ECONFLICT);
	CHECK_INT(qs_finish(q, tid + 1000, 1, TARGET_SUCCEEDED, 0, NULL, NULL,
	    0), QUEUE_ENOTFOUND);
	CHECK_INT(qs_heartbeat(q, tid, 1), QUEUE_ECONFLICT);
	CHECK_INT(qs_heartbeat(q, tid + 1000, 1), QUEUE_ENOTFOUND);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		job_free(j);
	}
	qs_close(q);
}

static void
test_cancel_queued_job(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	size_t nrunning = 99;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK(j->finished_at > 0);
		for (size_t i = 0; i < j->ntargets; i++) {
			CHECK_INT(j->targets[i].state, TARGET_CANCELED);
			CHECK(j->targets[i].finished_at > 0);
			CHECK(j->targets[i].error != NULL);
		}
		job_free(j);
	}
	/* Nothing left to claim; canceling twice is fine. */
	CHECK_INT(qs_claim(q, &c), QUEUE_EEMPTY);
	nrunning = 99;
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		job_free(j);
	}
	CHECK_INT(qs_cancel(q, id + 1, &nrunning), QUEUE_ENOTFOUND);
	qs_close(q);
}

static void
test_cancel_running_job(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	size_t nrunning = 99;
	int64_t id, other;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", "linux/386",
	    NULL));
	other = submit1(q, make_job(0, "windows/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	j = get(q, id);
	if (j != NULL) {
		/* The running target must be stopped first. */
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->finished_at, 0);
		CHECK_INT(j->targets[0].state, TARGET_RUNNING);
		CHECK_INT(j->targets[1].state, TARGET_CANCELED);
		CHECK_INT(j->targets[2].state, TARGET_CANCELED);
		job_free(j);
	}
	/* The canceled targets are not claimed: the other job's is next. */
	{
		struct queue_claim c2;
		CHECK_INT(qs_claim(q, &c2), 0);
		CHECK_INT(c2.job_id, other);
	}
	CHECK_INT(qs_finish(q, c.target_id, c.attempt, TARGET_CANCELED, -1,
	    "canceled", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK(j->finished_at > 0);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		job_free(j);
	}
	nrunning = 99;
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 0);
	qs_close(q);
}

/* A retry (POST /v1/jobs/{id}/retry) records the job it retries, in
 * every read: one job and a page; other jobs have none.  Its pinned
 * commit is stored from the submission. */
static void
test_retry_of(void)
{
	static const char commit[] =
	    "0123456789abcdef0123456789abcdef01234567";
	struct queue_filter f = { .limit = 10 };
	struct queue *q = fresh_queue();
	struct job *a, *b, *j, **v = NULL;
	size_t n = 0;
	int64_t ida, idb, next = 0;

	if (q == NULL)
		return;
	a = make_job(0, "linux/amd64", NULL);
	ida = submit1(q, a);
	b = make_job(0, "linux/amd64", NULL);
	b->commit = xstrdup(commit);
	b->retry_of = ida;
	idb = submit1(q, b);
	if ((j = get(q, idb)) != NULL) {
		CHECK_INT(j->retry_of, ida);
		CHECK_STR(j->commit, commit);
		job_free(j);
	}
	if ((j = get(q, ida)) != NULL) {
		CHECK_INT(j->retry_of, 0);
		job_free(j);
	}
	CHECK_INT(qs_list(q, &f, &v, &n, &next), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(v[0]->id, idb);
		CHECK_INT(v[0]->retry_of, ida);
		CHECK_INT(v[1]->retry_of, 0);
	}
	job_free_array(v, n);
	qs_close(q);
}

/* PATCH /v1/jobs/{id}: queued targets take the new priority, running
 * ones keep theirs, ended and canceled jobs conflict; and the job's
 * submitter is stored. */
static void
test_set_priority(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c, c2;
	struct job *j, *a;
	size_t nrunning = 0;
	int64_t ida, idb;

	if (q == NULL)
		return;
	a = make_job(0, "linux/amd64", "linux/arm64", NULL);
	a->submitted_by = xstrdup("ci");
	ida = submit1(q, a);
	idb = submit1(q, make_job(0, "windows/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, ida);
	/* b overtakes a's second target. */
	CHECK_INT(qs_set_priority(q, idb, 5), 0);
	CHECK_INT(qs_set_priority(q, ida, 3), 0);
	j = get(q, ida);
	if (j != NULL) {
		CHECK_INT(j->priority, 3);
		CHECK_STR(j->submitted_by, "ci");
		job_free(j);
	}
	j = get(q, idb);
	if (j != NULL) {
		CHECK_INT(j->priority, 5);
		CHECK(j->submitted_by == NULL);
		job_free(j);
	}
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(c2.job_id, idb);
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt,
	    TARGET_SUCCEEDED, 0, NULL,
	    NULL, 0), 0);
	CHECK_INT(qs_set_priority(q, idb, 1), QUEUE_ECONFLICT);
	{
		/* a's queued target has the new priority. */
		struct queue_next next[4];
		size_t n = 0;
		CHECK_INT(qs_next_jobs(q, next, 4, &n), 0);
		CHECK_INT(n, 1);
		CHECK_INT(next[0].job_id, ida);
		CHECK_INT(next[0].priority, 3);
	}
	/* Being canceled (a target still running): nothing to order. */
	CHECK_INT(qs_cancel(q, ida, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(qs_set_priority(q, ida, 9), QUEUE_ECONFLICT);
	j = get(q, ida);
	if (j != NULL) {
		CHECK_INT(j->priority, 3);
		job_free(j);
	}
	CHECK_INT(qs_set_priority(q, idb + 1, 1), QUEUE_ENOTFOUND);
	qs_close(q);
}

static void
test_cancel_ended_job_conflicts(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	size_t nrunning = 0;
	int64_t ok, bad;

	if (q == NULL)
		return;
	ok = submit1(q, make_job(0, "linux/amd64", NULL));
	bad = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_finish(q, c.target_id, c.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	CHECK_INT(qs_cancel(q, ok, &nrunning), QUEUE_ECONFLICT);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_finish(q, c.target_id, c.attempt,
	    TARGET_FAILED, 1, NULL, NULL, 0), 0);
	CHECK_INT(qs_cancel(q, bad, &nrunning), QUEUE_ECONFLICT);
	j = get(q, ok);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		CHECK_INT(j->targets[0].state, TARGET_SUCCEEDED);
		job_free(j);
	}
	j = get(q, bad);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		job_free(j);
	}
	qs_close(q);
}

static void
test_list_newest_first_and_pages(void)
{
	struct queue *q = fresh_queue();
	struct queue_filter f;
	struct job **jobs = NULL;
	int64_t ids[7], next = -1, seen[7];
	size_t n = 0, nseen = 0;
	int pages = 0;

	if (q == NULL)
		return;
	for (size_t i = 0; i < 7; i++)
		ids[i] = submit1(q, make_job(0, "linux/amd64", NULL));

	memset(&f, 0, sizeof f);
	f.limit = 100;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 7);
	CHECK_INT(next, 0);
	for (size_t i = 0; i < n && i < 7; i++) {
		CHECK_INT(jobs[i]->id, ids[6 - i]);
		CHECK_INT(jobs[i]->ntargets, 1);
	}
	job_free_array(jobs, n);

	/* Pages of 3: 7,6,5 / 4,3,2 / 1; the cursor walks each once. */
	memset(&f, 0, sizeof f);
	f.limit = 3;
	do {
		jobs = NULL;
		n = 0;
		CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
		CHECK(n <= 3);
		for (size_t i = 0; i < n && nseen < 7; i++)
			seen[nseen++] = jobs[i]->id;
		if (next != 0)
			CHECK_INT(next, jobs[n - 1]->id);
		job_free_array(jobs, n);
		f.after = next;
		pages++;
	} while (next != 0 && pages < 10);
	CHECK_INT(pages, 3);
	CHECK_INT(nseen, 7);
	for (size_t i = 0; i < nseen; i++)
		CHECK_INT(seen[i], ids[6 - i]);

	/* A page exactly full with nothing after it has no next. */
	memset(&f, 0, sizeof f);
	f.limit = 7;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 7);
	CHECK_INT(next, 0);
	job_free_array(jobs, n);

	/* An empty page. */
	memset(&f, 0, sizeof f);
	f.limit = 5;
	f.after = ids[0];
	next = -1;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 0);
	CHECK_INT(next, 0);
	job_free_array(jobs, n);
	qs_close(q);
}

static void
test_list_state_filter(void)
{
	struct queue *q = fresh_queue();
	struct queue_filter f;
	struct queue_claim c;
	struct job **jobs = NULL;
	int64_t a, b, cc, next = -1;
	size_t n = 0, nr;

	if (q == NULL)
		return;
	a = submit1(q, make_job(0, "linux/amd64", NULL));
	b = submit1(q, make_job(0, "linux/amd64", NULL));
	cc = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);	/* a runs */
	CHECK_INT(c.job_id, a);
	CHECK_INT(qs_cancel(q, cc, &nr), 0);

	memset(&f, 0, sizeof f);
	f.limit = 10;
	f.has_state = true;
	f.state = JOB_RUNNING;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0]->id, a);
	job_free_array(jobs, n);

	f.state = JOB_QUEUED;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0]->id, b);
	job_free_array(jobs, n);

	f.state = JOB_CANCELED;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0]->id, cc);
	job_free_array(jobs, n);

	f.state = JOB_SUCCEEDED;
	CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 0);
	CHECK_INT(next, 0);
	job_free_array(jobs, n);

	/* Filter and pages together. */
	for (int i = 0; i < 4; i++)
		submit1(q, make_job(0, "linux/amd64", NULL));
	f.state = JOB_QUEUED;
	f.limit = 2;
	f.after = 0;
	size_t total = 0;
	int pages = 0;
	do {
		CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
		for (size_t i = 0; i < n; i++)
			CHECK_INT(jobs[i]->state, JOB_QUEUED);
		total += n;
		job_free_array(jobs, n);
		f.after = next;
	} while (next != 0 && ++pages < 10);
	CHECK_INT(total, 5);
	qs_close(q);
}

/* kiln.pub's text for a key whose id bytes start at `first`. */
static char *
pubkey_text(unsigned char first)
{
	struct sign_key k;

	memset(&k, 0, sizeof k);
	for (int i = 0; i < 8; i++)
		k.id[i] = (unsigned char)(first + i);
	memset(k.pk, first, sizeof k.pk);
	return sign_public_text(&k);
}

/*
 * The farm's key: the first one is recorded (and stays, across a close),
 * the same one is accepted again, another is refused with both ids.
 */
static void
test_farm_key(void)
{
	struct queue *q = fresh_queue(), *q2 = NULL;
	char *ours = pubkey_text(1), *other = pubkey_text(0x11);
	char err[512] = "";

	if (q == NULL)
		goto out;
	CHECK_INT(queue_farm_key(q, ours, err, sizeof err), 0);
	CHECK_INT(queue_farm_key(q, ours, err, sizeof err), 0);
	err[0] = '\0';
	CHECK_INT(queue_farm_key(q, other, err, sizeof err), -1);
	CHECK(strstr(err, "signing key is 0807060504030201") != NULL);
	CHECK(strstr(err, "this host's key is 1817161514131211") != NULL);
	{
		/* The ids, not the keys. */
		char line[128];
		const char *l = strchr(other, '\n') + 1;

		snprintf(line, sizeof line, "%.*s", (int)strcspn(l, "\n"), l);
		CHECK(strlen(line) > 40 && strstr(err, line) == NULL);
	}
	/* Not a key at all: refused, nothing recorded. */
	CHECK_INT(queue_farm_key(q, "untrusted comment: x\nnot base64!\n",
	    err, sizeof err), -1);
	CHECK(strstr(err, "minisign") != NULL);
	queue_close(q);
	q = NULL;
	/* Recorded in the database, not in the handle. */
	CHECK_INT(queue_open(&q2, db_path, err, sizeof err), 0);
	if (q2 != NULL) {
		CHECK_INT(queue_farm_key(q2, other, err, sizeof err), -1);
		CHECK(strstr(err, "0807060504030201") != NULL);
		CHECK_INT(queue_farm_key(q2, ours, err, sizeof err), 0);
		queue_close(q2);
	}
out:
	free(ours);
	free(other);
}

UNIT_MAIN(
	TEST(test_submit_many_in_one_call),
	TEST(test_submit_is_all_or_nothing),
	TEST(test_claim_order),
	TEST(test_next_jobs_order),
	TEST(test_claim_marks_running),
	TEST(test_finish_all_succeeded),
	TEST(test_finish_one_failed),
	TEST(test_release_row),
	TEST(test_finish_timed_out_and_no_exit_status),
	TEST(test_finish_not_running),
	TEST(test_cancel_queued_job),
	TEST(test_cancel_running_job),
	TEST(test_set_priority),
	TEST(test_retry_of),
	TEST(test_cancel_ended_job_conflicts),
	TEST(test_list_newest_first_and_pages),
	TEST(test_list_state_filter),
	TEST(test_farm_key)
)
