/* The job queue on a real SQLite file: schema, submit, claim, finish,
 * cancel, list, recover. */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "unit.h"

static char db_path[512];

/* A fresh database in a fresh directory; NULL (and a failure) if not. */
static struct queue *
fresh_queue(void)
{
	struct queue *q = NULL;
	char err[512] = "";

	snprintf(db_path, sizeof db_path, "%s/kiln.db", unit_tmpdir());
	if (queue_open(&q, db_path, err, sizeof err) != 0) {
		fprintf(stderr, "  queue_open %s: %s\n", db_path, err);
		CHECK(0);
		return NULL;
	}
	return q;
}

/* A job by hand: repo, ref, priority, then NULL-ended target names. */
static struct job *
make_job(int priority, ...)
{
	struct job *j = xcalloc(1, sizeof *j);
	va_list ap;
	const char *t;

	j->repo = xstrdup("https://example.com/x.git");
	j->ref = xstrdup("main");
	j->priority = priority;
	j->state = JOB_QUEUED;
	j->created_at = 1700000000000;
	j->targets = xcalloc(JOB_MAX_TARGETS, sizeof *j->targets);
	va_start(ap, priority);
	while ((t = va_arg(ap, const char *)) != NULL) {
		struct job_target *jt = &j->targets[j->ntargets++];
		snprintf(jt->target, sizeof jt->target, "%s", t);
		jt->state = TARGET_QUEUED;
	}
	va_end(ap);
	return j;
}

/* Submit one job by itself; its id, or 0 after a failed check. */
static int64_t
submit1(struct queue *q, struct job *j)
{
	int64_t id;

	CHECK_INT(queue_submit(q, &j, 1), 0);
	id = j->id;
	job_free(j);
	return id;
}

static struct job *
get(struct queue *q, int64_t id)
{
	struct job *j = NULL;
	int rc = queue_get(q, id, &j);

	CHECK_INT(rc, 0);
	return rc == 0 ? j : NULL;
}

static int
user_version(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static char *
journal_mode(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *mode = NULL;

	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		mode = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return mode;
}

static int
exec_on_file(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static void
test_open_creates_schema_and_reopens(void)
{
	struct queue *q = fresh_queue(), *q2 = NULL;
	char err[512] = "";
	int64_t n = -1;

	if (q == NULL)
		return;
	CHECK(queue_schema_version() >= 1);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);
	queue_close(q);
	CHECK_INT(user_version(db_path), queue_schema_version());
	/* WAL is a property of the file: it outlives the connection. */
	{
		char *mode = journal_mode(db_path);
		CHECK_STR(mode, "wal");
		free(mode);
	}
	CHECK_INT(exec_on_file(db_path, "SELECT id, repo, ref, \"commit\", "
	    "recipe, priority, state FROM jobs; SELECT id, job_id, target, "
	    "attempt, heartbeat_at FROM job_targets;"), SQLITE_OK);

	/* Opening again applies nothing and works. */
	CHECK_INT(queue_open(&q2, db_path, err, sizeof err), 0);
	if (q2 != NULL) {
		CHECK_INT(queue_count_jobs(q2, JOB_QUEUED, &n), 0);
		queue_close(q2);
	}
	CHECK_INT(user_version(db_path), queue_schema_version());
}

static void
test_open_refuses_newer_schema(void)
{
	struct queue *q = fresh_queue();
	char err[512] = "", sql[64];

	if (q == NULL)
		return;
	queue_close(q);
	snprintf(sql, sizeof sql, "PRAGMA user_version=%d",
	    queue_schema_version() + 1);
	CHECK_INT(exec_on_file(db_path, sql), SQLITE_OK);
	q = NULL;
	CHECK_INT(queue_open(&q, db_path, err, sizeof err), QUEUE_ERROR);
	CHECK(q == NULL);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(strstr(err, db_path) != NULL);
	/* Refused means untouched. */
	CHECK_INT(user_version(db_path), queue_schema_version() + 1);
}

static void
test_open_fails_on_bad_path(void)
{
	struct queue *q = NULL;
	char err[512] = "", path[600];

	snprintf(path, sizeof path, "%s/no/such/dir/kiln.db", unit_tmpdir());
	CHECK_INT(queue_open(&q, path, err, sizeof err), QUEUE_ERROR);
	CHECK(q == NULL);
	CHECK(strstr(err, path) != NULL);
}

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
	CHECK_INT(queue_submit(q, jobs, 3), 0);
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
	CHECK_INT(queue_get(q, jobs[2]->id + 1, &j), QUEUE_ENOTFOUND);
	CHECK(j == NULL);
	CHECK_INT(queue_submit(q, jobs, 0), 0);
	for (size_t i = 0; i < 3; i++)
		job_free(jobs[i]);
	queue_close(q);
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
	CHECK_INT(queue_submit(q, jobs, 2), QUEUE_ERROR);
	CHECK_INT(jobs[0]->id, 0);
	CHECK_INT(jobs[1]->id, 0);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);
	/* And the queue still works afterwards. */
	job_free(jobs[1]);
	jobs[1] = make_job(0, "linux/arm64", NULL);
	CHECK_INT(queue_submit(q, jobs, 2), 0);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 2);
	job_free(jobs[0]);
	job_free(jobs[1]);
	queue_close(q);
}

static void
expect_claim(struct queue *q, int64_t job_id, const char *target)
{
	struct queue_claim c;

	memset(&c, 0, sizeof c);
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.job_id, job_id);
	CHECK_STR(c.target, target);
	CHECK_INT(c.attempt, 1);
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
	CHECK_INT(queue_claim(q, &c), QUEUE_EEMPTY);
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c), QUEUE_EEMPTY);
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(c.attempt, 1);
	j = get(q, id);
	if (j != NULL) {
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
	CHECK_INT(queue_heartbeat(q, c.target_id), 0);
	/* A later claim of the same job keeps the job's first start. */
	usleep(20 * 1000);
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_claim(q, &c), QUEUE_EEMPTY);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->started_at, j->targets[0].started_at);
		CHECK(j->targets[1].started_at > j->targets[0].started_at);
		CHECK_INT(j->targets[1].state, TARGET_RUNNING);
		CHECK_INT(j->targets[1].attempt, 1);
		job_free(j);
	}
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c1), 0);
	CHECK_INT(queue_claim(q, &c2), 0);
	CHECK_INT(queue_finish(q, c1.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
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
	CHECK_INT(queue_finish(q, c2.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		CHECK(j->finished_at > 0);
		CHECK(j->finished_at >= j->started_at);
		CHECK(j->error == NULL);
		job_free(j);
	}
	/* Finishing again: the target is no longer running. */
	CHECK_INT(queue_finish(q, c2.target_id, TARGET_FAILED, 1, "x", NULL, 0),
	    QUEUE_ENOTFOUND);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		CHECK_INT(j->targets[1].state, TARGET_SUCCEEDED);
		job_free(j);
	}
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c1), 0);
	CHECK_INT(queue_finish(q, c1.target_id, TARGET_FAILED, 2,
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
	CHECK_INT(queue_claim(q, &c2), 0);
	CHECK_INT(queue_finish(q, c2.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK(j->finished_at > 0);
		job_free(j);
	}
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_finish(q, c.target_id, TARGET_TIMED_OUT, -1,
	    "killed after 3600 s", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK_INT(j->targets[0].state, TARGET_TIMED_OUT);
		CHECK(!j->targets[0].has_exit_status);
		CHECK_STR(j->targets[0].error, "killed after 3600 s");
		job_free(j);
	}
	queue_close(q);
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
	CHECK_INT(queue_submit(q, &j, 1), 0);
	id = j->id;
	tid = j->targets[0].id;
	job_free(j);
	/* Queued, not running. */
	CHECK_INT(queue_finish(q, tid, TARGET_SUCCEEDED, 0, NULL, NULL, 0),
	    QUEUE_ENOTFOUND);
	CHECK_INT(queue_finish(q, tid + 1000, TARGET_SUCCEEDED, 0, NULL, NULL, 0),
	    QUEUE_ENOTFOUND);
	CHECK_INT(queue_heartbeat(q, tid), QUEUE_ENOTFOUND);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		job_free(j);
	}
	queue_close(q);
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
	CHECK_INT(queue_cancel(q, id, &nrunning), 0);
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
	CHECK_INT(queue_claim(q, &c), QUEUE_EEMPTY);
	nrunning = 99;
	CHECK_INT(queue_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		job_free(j);
	}
	CHECK_INT(queue_cancel(q, id + 1, &nrunning), QUEUE_ENOTFOUND);
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(queue_cancel(q, id, &nrunning), 0);
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
		CHECK_INT(queue_claim(q, &c2), 0);
		CHECK_INT(c2.job_id, other);
	}
	CHECK_INT(queue_finish(q, c.target_id, TARGET_CANCELED, -1,
	    "canceled", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK(j->finished_at > 0);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		job_free(j);
	}
	nrunning = 99;
	CHECK_INT(queue_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 0);
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.job_id, ida);
	/* b overtakes a's second target. */
	CHECK_INT(queue_set_priority(q, idb, 5), 0);
	CHECK_INT(queue_set_priority(q, ida, 3), 0);
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
	CHECK_INT(queue_claim(q, &c2), 0);
	CHECK_INT(c2.job_id, idb);
	CHECK_INT(queue_finish(q, c2.target_id, TARGET_SUCCEEDED, 0, NULL,
	    NULL, 0), 0);
	CHECK_INT(queue_set_priority(q, idb, 1), QUEUE_ECONFLICT);
	{
		/* a's queued target has the new priority. */
		struct queue_next next[4];
		size_t n = 0;
		CHECK_INT(queue_next_jobs(q, next, 4, &n), 0);
		CHECK_INT(n, 1);
		CHECK_INT(next[0].job_id, ida);
		CHECK_INT(next[0].priority, 3);
	}
	/* Being canceled (a target still running): nothing to order. */
	CHECK_INT(queue_cancel(q, ida, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(queue_set_priority(q, ida, 9), QUEUE_ECONFLICT);
	j = get(q, ida);
	if (j != NULL) {
		CHECK_INT(j->priority, 3);
		job_free(j);
	}
	CHECK_INT(queue_set_priority(q, idb + 1, 1), QUEUE_ENOTFOUND);
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_finish(q, c.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	CHECK_INT(queue_cancel(q, ok, &nrunning), QUEUE_ECONFLICT);
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_finish(q, c.target_id, TARGET_FAILED, 1, NULL, NULL, 0), 0);
	CHECK_INT(queue_cancel(q, bad, &nrunning), QUEUE_ECONFLICT);
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
	queue_close(q);
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
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
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
		CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
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
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 7);
	CHECK_INT(next, 0);
	job_free_array(jobs, n);

	/* An empty page. */
	memset(&f, 0, sizeof f);
	f.limit = 5;
	f.after = ids[0];
	next = -1;
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 0);
	CHECK_INT(next, 0);
	job_free_array(jobs, n);
	queue_close(q);
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
	CHECK_INT(queue_claim(q, &c), 0);	/* a runs */
	CHECK_INT(c.job_id, a);
	CHECK_INT(queue_cancel(q, cc, &nr), 0);

	memset(&f, 0, sizeof f);
	f.limit = 10;
	f.has_state = true;
	f.state = JOB_RUNNING;
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0]->id, a);
	job_free_array(jobs, n);

	f.state = JOB_QUEUED;
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0]->id, b);
	job_free_array(jobs, n);

	f.state = JOB_CANCELED;
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0]->id, cc);
	job_free_array(jobs, n);

	f.state = JOB_SUCCEEDED;
	CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
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
		CHECK_INT(queue_list(q, &f, &jobs, &n, &next), 0);
		for (size_t i = 0; i < n; i++)
			CHECK_INT(jobs[i]->state, JOB_QUEUED);
		total += n;
		job_free_array(jobs, n);
		f.after = next;
	} while (next != 0 && ++pages < 10);
	CHECK_INT(total, 5);
	queue_close(q);
}

static void
test_recover_requeues_then_fails(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int requeued = -1, failed = -1;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	/* Nothing running: nothing to do. */
	CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
	CHECK_INT(requeued, 0);
	CHECK_INT(failed, 0);

	for (int attempt = 1; attempt <= 3; attempt++) {
		CHECK_INT(queue_claim(q, &c), 0);
		CHECK_INT(c.job_id, id);
		CHECK_INT(c.attempt, attempt);
		/* kilnd "crashes" here. */
		CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
		j = get(q, id);
		if (j == NULL)
			break;
		if (attempt < 3) {
			CHECK_INT(requeued, 1);
			CHECK_INT(failed, 0);
			CHECK_INT(j->state, JOB_QUEUED);
			CHECK_INT(j->targets[0].state, TARGET_QUEUED);
			CHECK_INT(j->targets[0].attempt, attempt);
			CHECK_INT(j->targets[0].started_at, 0);
		} else {
			CHECK_INT(requeued, 0);
			CHECK_INT(failed, 1);
			CHECK_INT(j->state, JOB_FAILED);
			CHECK(j->finished_at > 0);
			CHECK_INT(j->targets[0].state, TARGET_FAILED);
			CHECK(j->targets[0].error != NULL &&
			    strstr(j->targets[0].error, "interrupted") != NULL);
		}
		job_free(j);
	}
	CHECK_INT(queue_claim(q, &c), QUEUE_EEMPTY);
	queue_close(q);
}

static void
test_recover_keeps_other_targets(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c1, c2;
	struct job *j;
	int requeued = -1, failed = -1;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(queue_claim(q, &c1), 0);
	CHECK_INT(queue_finish(q, c1.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	CHECK_INT(queue_claim(q, &c2), 0);
	CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
	CHECK_INT(requeued, 1);
	CHECK_INT(failed, 0);
	j = get(q, id);
	if (j != NULL) {
		/* One ended, one waiting again: the job is under way. */
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->targets[0].state, TARGET_SUCCEEDED);
		CHECK_INT(j->targets[1].state, TARGET_QUEUED);
		job_free(j);
	}
	CHECK_INT(queue_claim(q, &c2), 0);
	CHECK_INT(c2.attempt, 2);
	CHECK_INT(queue_finish(q, c2.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		job_free(j);
	}
	queue_close(q);
}

/*
 * A job canceled while a target ran, then kilnd stopped before that
 * target was finished as canceled: after recovery the job must not build
 * again.
 */
static void
test_recover_after_cancel_does_not_rebuild(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int requeued = -1, failed = -1;
	size_t nrunning = 0;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	/* kilnd "crashes" before finishing the target. */
	CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
	CHECK_INT(queue_claim(q, &c), QUEUE_EEMPTY);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		job_free(j);
	}
	queue_close(q);
}

/* kilnd stopping gives a running target back, unless its job was
 * canceled: then it ends canceled, and nothing can claim it. */
static void
test_release_requeues_but_not_canceled(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	size_t nrunning = 0;
	int64_t id, id2;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.attempt, 1);
	CHECK_INT(queue_release(q, c.target_id), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		CHECK_INT(j->targets[0].attempt, 0);	/* did not count */
		job_free(j);
	}
	CHECK_INT(queue_release(q, c.target_id), QUEUE_ENOTFOUND);

	id2 = submit1(q, make_job(0, "linux/arm64", NULL));
	CHECK_INT(queue_claim(q, &c), 0);	/* id's target again */
	CHECK_INT(c.job_id, id);
	CHECK_INT(queue_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(queue_release(q, c.target_id), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		CHECK(j->finished_at > 0);
		job_free(j);
	}
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.job_id, id2);		/* never the canceled one */
	queue_close(q);
}

static void
test_fail_job(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int64_t id, id2;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	id2 = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_fail_job(q, id, "fetch failed: no such ref"), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK_STR(j->error, "fetch failed: no such ref");
		CHECK(j->finished_at > 0);
		for (size_t i = 0; i < j->ntargets; i++) {
			CHECK_INT(j->targets[i].state, TARGET_FAILED);
			CHECK_STR(j->targets[i].error,
			    "fetch failed: no such ref");
		}
		job_free(j);
	}
	CHECK_INT(queue_fail_job(q, id, "again"), QUEUE_ECONFLICT);
	CHECK_INT(queue_fail_job(q, id2 + 100, "x"), QUEUE_ENOTFOUND);
	/* The other job is untouched and is what gets claimed next. */
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(c.job_id, id2);
	j = get(q, id2);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK(j->error == NULL);
		job_free(j);
	}
	queue_close(q);
}

static void
test_set_commit(void)
{
	static const char sha[] = "0123456789abcdef0123456789abcdef01234567";
	struct queue *q = fresh_queue();
	struct job *j;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	j = get(q, id);
	if (j != NULL) {
		CHECK(j->trust == TRUST_UNKNOWN);
		job_free(j);
	}
	CHECK_INT(queue_set_commit(q, id, sha, TRUST_PROTECTED), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_STR(j->commit, sha);
		CHECK_STR(job_trust_name(j->trust), "protected");
		job_free(j);
	}
	CHECK_INT(queue_set_commit(q, id, sha, TRUST_UNPROTECTED), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_STR(job_trust_name(j->trust), "unprotected");
		job_free(j);
	}
	CHECK_INT(queue_set_commit(q, id + 1, sha, TRUST_PROTECTED),
	    QUEUE_ENOTFOUND);
	queue_close(q);
}

static void
test_count_jobs(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	int64_t n = -1, id;
	size_t nr;

	if (q == NULL)
		return;
	for (int i = 0; i < 4; i++)
		submit1(q, make_job(0, "linux/amd64", NULL));
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(queue_cancel(q, id, &nr), 0);
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_finish(q, c.target_id, TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	CHECK_INT(queue_claim(q, &c), 0);

	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(queue_count_jobs(q, JOB_RUNNING, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_SUCCEEDED, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_CANCELED, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_FAILED, &n), 0);
	CHECK_INT(n, 0);
	queue_close(q);
}

/*
 * A webhook's job is found again by its push (project, ref, pushed
 * commit), also after the fetch peeled an annotated tag and after a
 * reopen; a job without a delivery is no push.
 */
static void
test_push_finds_the_webhook_job(void)
{
	static const char tagobj[] = "1111111111111111111111111111111111111111";
	static const char peeled[] = "2222222222222222222222222222222222222222";
	struct queue *q = fresh_queue();
	struct job *j;
	char err[512] = "";
	int64_t id, plain, got = 0;

	if (q == NULL)
		return;
	j = make_job(0, "linux/amd64", NULL);
	j->project = xstrdup("app");
	j->commit = xstrdup(tagobj);
	free(j->ref);
	j->ref = xstrdup("refs/tags/v1.0.0");
	j->delivery_forge = xstrdup("github");
	j->delivery_id = xstrdup("d-1");
	id = submit1(q, j);
	j = make_job(0, "linux/amd64", NULL);
	j->project = xstrdup("app");
	j->commit = xstrdup(peeled);
	plain = submit1(q, j);
	CHECK(plain > id);

	CHECK_INT(queue_push_job(q, "app", "refs/tags/v1.0.0", tagobj, &got),
	    0);
	CHECK_INT(got, id);
	CHECK_INT(queue_delivery_job(q, "github", "d-1", &got), 0);
	CHECK_INT(got, id);
	CHECK_INT(queue_push_job(q, "app", "refs/tags/v1.0.1", tagobj, &got),
	    QUEUE_ENOTFOUND);
	CHECK_INT(queue_push_job(q, "other", "refs/tags/v1.0.0", tagobj, &got),
	    QUEUE_ENOTFOUND);
	/* A POSTed job of the project is no push. */
	CHECK_INT(queue_push_job(q, "app", "main", peeled, &got),
	    QUEUE_ENOTFOUND);
	/* The fetch peels the tag: the push is still the tag object. */
	CHECK_INT(queue_set_commit(q, id, peeled, TRUST_PROTECTED), 0);
	CHECK_INT(queue_push_job(q, "app", "refs/tags/v1.0.0", peeled, &got),
	    QUEUE_ENOTFOUND);
	queue_close(q);

	q = NULL;
	CHECK_INT(queue_open(&q, db_path, err, sizeof err), 0);
	if (q == NULL)
		return;
	got = 0;
	CHECK_INT(queue_push_job(q, "app", "refs/tags/v1.0.0", tagobj, &got),
	    0);
	CHECK_INT(got, id);
	queue_close(q);
}

static void
test_submitted_job_survives_close(void)
{
	struct queue *q = fresh_queue();
	struct job *j;
	char err[512] = "";
	int64_t id;

	if (q == NULL)
		return;
	j = make_job(7, "linux/arm/v6", "linux/amd64/v3", NULL);
	j->recipe = xstrdup("{\"command\":\"make\",\"kind\":\"command\"}");
	id = submit1(q, j);
	queue_close(q);

	q = NULL;
	CHECK_INT(queue_open(&q, db_path, err, sizeof err), 0);
	if (q == NULL)
		return;
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->id, id);
		CHECK_INT(j->priority, 7);
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_STR(j->recipe, "{\"command\":\"make\",\"kind\":\"command\"}");
		CHECK_INT(j->ntargets, 2);
		if (j->ntargets == 2) {
			CHECK_STR(j->targets[0].target, "linux/arm/v6");
			CHECK_STR(j->targets[1].target, "linux/amd64/v3");
		}
		job_free(j);
	}
	/* New ids keep growing after a reopen. */
	CHECK(submit1(q, make_job(0, "linux/amd64", NULL)) > id);
	queue_close(q);
}

/*
 * Only jobs that succeeded under this schema wait to be signed: one that
 * succeeded before it (no digests, no sign_pending) is never listed, so
 * an upgrade does not make kilnd try to sign every old job at each start.
 */
static void
test_unsigned_jobs_are_the_ones_that_just_succeeded(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int64_t *ids = NULL, id;
	size_t n = 0;
	static const char *const h =
	    "1111111111111111111111111111111111111111111111111111111111111111";

	if (q == NULL)
		return;
	j = make_job(0, "linux/amd64", NULL);
	CHECK_INT(queue_submit(q, &j, 1), 0);
	id = j->id;
	job_free(j);
	/* A succeeded job as an older kilnd left it. */
	CHECK_INT(exec_on_file(db_path, "INSERT INTO jobs (repo, ref, state, "
	    "created_at) VALUES ('https://x/old.git', 'main', 'succeeded', 1)"),
	    SQLITE_OK);
	CHECK_INT(queue_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 0);
	free(ids);
	CHECK_INT(queue_claim(q, &c), 0);
	CHECK_INT(queue_finish(q, c.target_id, TARGET_SUCCEEDED, 0, NULL, NULL,
	    0), 0);
	CHECK_INT(queue_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(ids[0], id);
	free(ids);
	CHECK_INT(queue_set_signed(q, id, h, h, h), 0);
	CHECK_INT(queue_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 0);
	free(ids);
	queue_close(q);
}

/* One job of one target that succeeded with one artifact of blob `sha`. */
static int64_t
job_with_blob(struct queue *q, char c, int64_t size)
{
	char sha[65];
	struct artifact a = { "app", size, sha };
	struct queue_claim cl;
	int64_t id;

	memset(sha, c, 64);
	sha[64] = '\0';
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	memset(&cl, 0, sizeof cl);
	CHECK_INT(queue_claim(q, &cl), 0);
	CHECK_INT(queue_finish(q, cl.target_id, TARGET_SUCCEEDED, 0, NULL, &a,
	    1), 0);
	return id;
}

static size_t
expire_over(uint64_t max_bytes, int64_t **ids)
{
	struct queue *q = fresh_queue();
	struct queue_retention r = { 0, 0, max_bytes };
	size_t n = 0;

	*ids = NULL;
	if (q == NULL)
		return 0;
	/* Job 1 built blob a, job 2 reused it (a cache hit points at the
	 * same blob), job 3 built blob b: 1200 bytes in the store. */
	job_with_blob(q, 'a', 600);
	job_with_blob(q, 'a', 600);
	job_with_blob(q, 'b', 600);
	CHECK_INT(queue_expire(q, &r, (int64_t)time(NULL) * 1000, ids, &n), 0);
	queue_close(q);
	return n;
}

/*
 * The store cap counts a blob once, however many jobs share it: a reused
 * build must not make retention expire jobs that free nothing.
 */
static void
test_expire_by_size_counts_blobs_once(void)
{
	int64_t *ids = NULL;
	size_t n;

	n = expire_over(1200, &ids);
	CHECK_INT(n, 0);
	free(ids);
	/* b (job 3) and a (job 2) fit; job 1 costs nothing more. */
	n = expire_over(1250, &ids);
	CHECK_INT(n, 0);
	free(ids);
	/* Only b fits: job 2 goes, and job 1, which alone holds a then. */
	n = expire_over(1000, &ids);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(ids[0], 1);
		CHECK_INT(ids[1], 2);
	}
	free(ids);
	/* Nothing fits: all three. */
	n = expire_over(100, &ids);
	CHECK_INT(n, 3);
	free(ids);
}

UNIT_MAIN(
	TEST(test_expire_by_size_counts_blobs_once),
	TEST(test_unsigned_jobs_are_the_ones_that_just_succeeded),
	TEST(test_open_creates_schema_and_reopens),
	TEST(test_open_refuses_newer_schema),
	TEST(test_push_finds_the_webhook_job),
	TEST(test_open_fails_on_bad_path),
	TEST(test_submit_many_in_one_call),
	TEST(test_submit_is_all_or_nothing),
	TEST(test_claim_order),
	TEST(test_claim_marks_running),
	TEST(test_finish_all_succeeded),
	TEST(test_finish_one_failed),
	TEST(test_finish_timed_out_and_no_exit_status),
	TEST(test_finish_not_running),
	TEST(test_cancel_queued_job),
	TEST(test_cancel_running_job),
	TEST(test_cancel_ended_job_conflicts),
	TEST(test_set_priority),
	TEST(test_list_newest_first_and_pages),
	TEST(test_list_state_filter),
	TEST(test_recover_requeues_then_fails),
	TEST(test_recover_keeps_other_targets),
	TEST(test_recover_after_cancel_does_not_rebuild),
	TEST(test_release_requeues_but_not_canceled),
	TEST(test_fail_job),
	TEST(test_set_commit),
	TEST(test_count_jobs),
	TEST(test_submitted_job_survives_close)
)
