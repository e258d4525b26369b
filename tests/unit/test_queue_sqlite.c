/*
 * What is SQLite's own in the queue: the schema and its version, WAL,
 * refusing a newer database, that the statements the queue's order
 * runs on every kick are index walks (EXPLAIN QUERY PLAN), and the write
 * connection's statement cache.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "daemon/db/db-int.h"	/* the queue order's statements */
#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#define QUEUEFIX_SQLITE		/* SQLite's own: never another backend */
#include "queuefix.h"
#include "unit.h"

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
	qs_close(q);
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
		qs_close(q2);
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
	qs_close(q);
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

/* Prints the plan of sql on db; fails on a full pass or a sort. */
static void
check_index_walk(sqlite3 *db, const char *sql, const char *must)
{
	sqlite3_stmt *st = NULL;
	char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	int rows = 0, found = must == NULL, step;

	CHECK_INT(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK);
	while (st != NULL && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);

		rows++;
		if (d == NULL)
			continue;
		if (strstr(d, "SCAN ") != NULL ||
		    strstr(d, "TEMP B-TREE") != NULL) {
			fprintf(stderr, "  %s\n    plan: %s\n", sql, d);
			CHECK(0);
		}
		if (must != NULL && strstr(d, must) != NULL)
			found = 1;
	}
	sqlite3_finalize(st);
	free(eqp);
	CHECK(rows > 0);
	if (!found)
		fprintf(stderr, "  %s\n    plan has no \"%s\"\n", sql, must);
	CHECK(found);
}

/*
 * The scheduler reads the queue's order on every kick: each statement
 * must be an index walk that stops at its LIMIT, whatever the depth of
 * the queue.  A full pass (SCAN) or a temporary b-tree (every queued row
 * sorted or remembered before the first comes out) grows with it, and a
 * job's own target must be sought by its job id, not among all queued
 * rows.  Without statistics the planner picks indexes by their shape
 * alone: an index on (state) made all three passes over the whole queue
 * (250-560 ms at 200,000 jobs).  The plan does not depend on the rows.
 */
static void
test_queue_order_is_an_index_walk(void)
{
	struct queue *q = fresh_queue();
	sqlite3 *db = NULL;

	if (q == NULL)
		return;
	CHECK_INT(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	check_index_walk(db, db_sql_claim, "SEARCH job_targets");
	check_index_walk(db, db_sql_next_jobs, "SEARCH job_targets");
	check_index_walk(db, db_sql_claim_job, "job_id=?");
	sqlite3_close(db);
	qs_close(q);
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
	CHECK_INT(qs_submit(q, &j, 1), 0);
	id = j->id;
	job_free(j);
	/* A succeeded job as an older kilnd left it. */
	CHECK_INT(exec_on_file(db_path, "INSERT INTO jobs (repo, ref, state, "
	    "created_at) VALUES ('https://x/old.git', 'main', 'succeeded', 1)"),
	    SQLITE_OK);
	CHECK_INT(qs_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 0);
	free(ids);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_finish(q, c.target_id, c.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL,
	    0), 0);
	CHECK_INT(qs_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(ids[0], id);
	free(ids);
	CHECK_INT(qs_set_signed(q, id, h, h, h), 0);
	CHECK_INT(qs_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 0);
	free(ids);
	qs_close(q);
}

/* The value of the one-column, one-row statement st (reset after). */
static int64_t
step_value(sqlite3_stmt *st)
{
	int64_t v = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	if (st != NULL)
		sqlite3_reset(st);
	return v;
}

/*
 * The write connection's statement cache (db_stmt, db_run): the same
 * text gives the same statement; a buffer that held other SQL before
 * (the same address) gives a statement of its new text, not the old
 * one; SQL that does not compile gives NULL; more statements than the
 * cache has slots all still run what they say.
 */
static void
test_statement_cache(void)
{
	struct queue *base = fresh_queue();
	struct sqlq *q = (struct sqlq *)base;
	enum { N = DB_STMT_SLOTS + 20 };
	static char many[N][32];
	char buf[64];
	sqlite3_stmt *st;
	int64_t p[1];

	if (base == NULL)
		return;
	snprintf(buf, sizeof buf, "SELECT 1");
	st = db_stmt(q, buf);
	CHECK(st != NULL);
	CHECK_INT(step_value(st), 1);
	CHECK(db_stmt(q, buf) == st);
	snprintf(buf, sizeof buf, "SELECT 2");
	CHECK_INT(step_value(db_stmt(q, buf)), 2);
	CHECK(db_stmt(q, "SELEC 3") == NULL);
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < N; i++) {
			snprintf(many[i], sizeof many[i], "SELECT %d", 100 + i);
			CHECK_INT(step_value(db_stmt(q, many[i])), 100 + i);
		}
	/* db_run counts the rows a write changed, -1 when it fails. */
	CHECK_INT(db_exec(q->wr, "CREATE TEMP TABLE t (x INTEGER)"), 0);
	p[0] = 7;
	CHECK_INT(db_run(q, "INSERT INTO t VALUES (?1)", 1, p), 1);
	CHECK_INT(db_run(q, "INSERT INTO t SELECT x + ?1 FROM t", 1, p), 1);
	CHECK_INT(db_run(q, "UPDATE t SET x = x + 1 WHERE x > ?1", 1, p), 1);
	CHECK_INT(db_run(q, "INSERT INTO nowhere VALUES (?1)", 1, p), -1);
	CHECK_INT(step_value(db_stmt(q, "SELECT sum(x) FROM t")), 7 + 15);
	queue_close(base);
}

static void
count_done(void *data, int rc)
{
	int *n = data;

	if (rc == 0)
		(*n)++;
	else
		CHECK_INT(rc, 0);
}

/* Group commit: the writes that arrive while a transaction commits (here:
 * while the database is locked from outside) share the next one. */
static void
test_writes_meanwhile_share_a_transaction(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct write_lock lock;
	uint64_t commits, writes;
	int n = 0;

	if (q == NULL)
		return;
	submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	commits = queue_commits(q);
	writes = queue_writes(q);
	lock = hold_write_lock();
	for (int i = 0; i < 40; i++)
		queue_heartbeat(q, c.target_id, c.attempt, count_done, &n);
	CHECK_INT(queue_pending_writes(q), 40);
	let_go(lock);
	while (n < 40 && queue_pending_writes(q) > 0)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(n, 40);
	/* The first write may have been taken alone before the lock was
	 * met; everything after it went in one more transaction. */
	CHECK(queue_commits(q) - commits <= 2);
	CHECK_INT(queue_writes(q) - writes, 40);
	qs_close(q);
}

static int
veto(void *data)
{
	(void)data;
	return 1;	/* the COMMIT becomes a ROLLBACK */
}

/* A write whose COMMIT fails is told so, alone in its transaction too,
 * and what it wrote is not there. */
static void
test_a_failed_commit_fails_the_write(void)
{
	struct queue *q = fresh_queue();
	struct job *j = make_job(0, "linux/amd64", NULL);
	int64_t n = -1;

	if (q == NULL) {
		job_free(j);
		return;
	}
	/* The writer thread is idle between the synchronous calls. */
	sqlite3_commit_hook(((struct sqlq *)q)->wr, veto, NULL);
	CHECK(qs_submit(q, &j, 1) != 0);
	sqlite3_commit_hook(((struct sqlq *)q)->wr, NULL, NULL);
	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);
	job_free(j);
	qs_close(q);
}

static void
count_change(void *data)
{
	(*(int *)data)++;
}

/* One host writes the file: not shared, and nothing is ever told. */
static void
test_not_shared_never_tells(void)
{
	struct queue *q = fresh_queue();
	int n = 0;

	if (q == NULL)
		return;
	CHECK(!queue_shared(q));
	queue_watch(q, count_change, &n);
	submit1(q, make_job(0, "linux/amd64", NULL));
	for (int i = 0; i < 10; i++)
		uv_run(qs_loop(), UV_RUN_NOWAIT);
	CHECK_INT(n, 0);
	qs_close(q);
}

UNIT_MAIN(
	TEST(test_not_shared_never_tells),
	TEST(test_open_creates_schema_and_reopens),
	TEST(test_writes_meanwhile_share_a_transaction),
	TEST(test_a_failed_commit_fails_the_write),
	TEST(test_open_refuses_newer_schema),
	TEST(test_open_fails_on_bad_path),
	TEST(test_queue_order_is_an_index_walk),
	TEST(test_unsigned_jobs_are_the_ones_that_just_succeeded),
	TEST(test_statement_cache)
)
