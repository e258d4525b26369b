/*
 * The group commit (daemon/submit.c) on a real loop and a real SQLite
 * file: submissions made in one loop iteration share one transaction,
 * nothing is acknowledged before its commit, submissions that arrive
 * while a commit is in flight form the next batch, and closing leaves
 * no handle behind (uv_loop_close() == 0).
 */
#include "config.h"

#include <uv.h>

#include "daemon/db/queue.h"
#include "daemon/submit.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "unit.h"

#define N 10

static int ndone, nfailed;
static int64_t ids[2 * N + 1];
static struct submitter *sub_for_cb;
static int resubmit_left;

static struct job *
new_job(int i)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->repo = xasprintf("https://git.example.com/r%d.git", i);
	j->ref = xstrdup("main");
	j->created_at = 1000 + i;
	j->ntargets = 2;
	j->targets = xcalloc(2, sizeof *j->targets);
	snprintf(j->targets[0].target, TARGET_NAME_MAX, "linux/amd64");
	snprintf(j->targets[1].target, TARGET_NAME_MAX, "linux/arm64");
	return j;
}

static void
done(struct job *job, int rc, void *data)
{
	(void)data;
	if (rc == 0 && job->id > 0 && ndone < 2 * N + 1)
		ids[ndone] = job->id;
	else
		nfailed++;
	ndone++;
	job_free(job);
	/* A callback may submit again: that goes into a later batch. */
	if (resubmit_left > 0) {
		resubmit_left--;
		CHECK_INT(submitter_submit(sub_for_cb, new_job(100 + ndone),
		    done, NULL), 0);
	}
}

static void
closed(void *data)
{
	*(int *)data = 1;
}

static struct queue *
open_queue(void)
{
	char path[512], err[256];
	struct queue *q = NULL;

	snprintf(path, sizeof path, "%s/kiln.db", unit_tmpdir());
	CHECK_INT(queue_open(&q, path, err, sizeof err), 0);
	return q;
}

static void
one_iteration_one_transaction(void)
{
	uv_loop_t loop;
	struct queue *q = open_queue();
	struct submitter *s;
	int is_closed = 0;
	struct job *j;

	uv_loop_init(&loop);
	CHECK_INT(queue_start(q, &loop), 0);
	s = submitter_new(&loop, q, 1000);
	ndone = nfailed = 0;
	resubmit_left = 0;
	for (int i = 0; i < N; i++)
		CHECK_INT(submitter_submit(s, new_job(i), done, NULL), 0);
	/* Nothing is acknowledged before the loop commits. */
	CHECK_INT(ndone, 0);
	CHECK_INT(submitter_inflight(s), N);
	CHECK_INT(queue_commits(q), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(ndone, N);
	CHECK_INT(nfailed, 0);
	CHECK_INT(queue_commits(q), 1);	/* one transaction */
	for (int i = 1; i < N; i++)
		CHECK(ids[i] == ids[i - 1] + 1);
	/* Each acknowledged job is really stored, with its targets. */
	for (int i = 0; i < N; i++) {
		j = NULL;
		CHECK_INT(qs_get_on(&loop, q, ids[i], &j), 0);
		if (j != NULL) {
			CHECK_INT(j->ntargets, 2);
			CHECK_INT(j->created_at, 1000 + i);
		}
		job_free(j);
	}
	submitter_close(s, closed, &is_closed);
	queue_stop(q, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(is_closed);
	CHECK_INT(uv_loop_close(&loop), 0);
	queue_close(q);
}

static void
later_arrivals_form_the_next_batch(void)
{
	uv_loop_t loop;
	struct queue *q = open_queue();
	struct submitter *s;
	int is_closed = 0;

	uv_loop_init(&loop);
	CHECK_INT(queue_start(q, &loop), 0);
	s = submitter_new(&loop, q, 1000);
	sub_for_cb = s;
	ndone = nfailed = 0;
	/* The first N callbacks each submit one more job. */
	resubmit_left = N;
	for (int i = 0; i < N; i++)
		CHECK_INT(submitter_submit(s, new_job(i), done, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(ndone, 2 * N);
	CHECK_INT(nfailed, 0);
	/* Two transactions: the first N, then the N submitted meanwhile. */
	CHECK_INT(queue_commits(q), 2);
	submitter_close(s, closed, &is_closed);
	queue_stop(q, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(is_closed);
	CHECK_INT(uv_loop_close(&loop), 0);
	queue_close(q);
}

static void
full_queue_and_stopping_are_refused(void)
{
	uv_loop_t loop;
	struct queue *q = open_queue();
	struct submitter *s;
	struct job *j;
	int is_closed = 0;

	uv_loop_init(&loop);
	CHECK_INT(queue_start(q, &loop), 0);
	/* max_queued counts queued targets: 7 holds three jobs of two
	 * targets; a fourth would make 8. */
	s = submitter_new(&loop, q, 7);
	ndone = nfailed = 0;
	resubmit_left = 0;
	for (int i = 0; i < 3; i++)
		CHECK_INT(submitter_submit(s, new_job(i), done, NULL), 0);
	j = new_job(3);
	CHECK_INT(submitter_submit(s, j, done, NULL), SUBMIT_EFULL);
	job_free(j);		/* refused: still ours */
	/* One target still fits. */
	j = new_job(3);
	j->ntargets = 1;
	CHECK_INT(submitter_submit(s, j, done, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(ndone, 4);
	submitter_stop_accepting(s);
	j = new_job(4);
	CHECK_INT(submitter_submit(s, j, done, NULL), SUBMIT_ESTOPPING);
	job_free(j);
	submitter_close(s, closed, &is_closed);
	queue_stop(q, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(is_closed);
	CHECK_INT(uv_loop_close(&loop), 0);
	/* A new submitter counts what the database holds: 7 targets. */
	uv_loop_init(&loop);
	CHECK_INT(queue_start(q, &loop), 0);
	s = submitter_new(&loop, q, 7);
	j = new_job(5);
	CHECK_INT(submitter_submit(s, j, done, NULL), SUBMIT_EFULL);
	job_free(j);
	is_closed = 0;
	submitter_close(s, closed, &is_closed);
	queue_stop(q, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(is_closed);
	CHECK_INT(uv_loop_close(&loop), 0);
	queue_close(q);
}

UNIT_MAIN(
	TEST(one_iteration_one_transaction),
	TEST(later_arrivals_form_the_next_batch),
	TEST(full_queue_and_stopping_are_refused),
)
