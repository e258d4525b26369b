/*
 * The listing's filters (queue.h struct queue_filter): project and repo
 * match exactly, alone and together with the state, and the cursor pages
 * through the jobs that match only.  And, since listings run on the loop,
 * each combination of filters is planned on an index of its own filter
 * (jobs_state_id, jobs_project_id, jobs_repo_id), never as a walk of all
 * jobs: EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL, of the very
 * statements the backends run (db_list_sql(), pg_list_sql()).
 * Part of the conformance suite: tests/unit/pgqueue.sh runs it again on
 * PostgreSQL.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "daemon/db/db-int.h"
#include "daemon/db/queue.h"
#include "daemon/pg/pg-int.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "queuefix.h"
#include "unit.h"

#define REPO_A "https://example.com/a.git"
#define REPO_B "https://example.com/b.git"

/* Submit a job of project p (NULL: none) and repository r. */
static int64_t
submit_pr(struct queue *q, const char *p, const char *r)
{
	struct job *j = make_job(0, "linux/amd64", NULL);

	free(j->repo);
	j->repo = xstrdup(r);
	j->project = p != NULL ? xstrdup(p) : NULL;
	return submit1(q, j);
}

/* The ids a filter lists, newest first, walking pages of `limit`; the
 * count, at most max (more is a failed check). */
static size_t
list_ids(struct queue *q, struct queue_filter f, size_t limit,
    int64_t *ids, size_t max)
{
	struct job **jobs = NULL;
	size_t n = 0, got = 0;
	int64_t next = 0;
	int pages = 0;

	f.limit = limit;
	f.after = 0;
	do {
		jobs = NULL;
		n = 0;
		CHECK_INT(qs_list(q, &f, &jobs, &n, &next), 0);
		CHECK(n <= limit);
		for (size_t i = 0; i < n; i++) {
			if (got < max)
				ids[got] = jobs[i]->id;
			got++;
		}
		job_free_array(jobs, n);
		f.after = next;
	} while (next != 0 && ++pages < 50);
	CHECK(got <= max);
	return got;
}

/* ids[0..n) equals the NUL-ended list of expected ids given. */
static void
expect_ids(const int64_t *ids, size_t n, ...)
{
	va_list ap;
	int64_t want;
	size_t i = 0;

	va_start(ap, n);
	while ((want = va_arg(ap, int64_t)) != 0) {
		CHECK(i < n);
		if (i < n)
			CHECK_INT(ids[i], want);
		i++;
	}
	va_end(ap);
	CHECK_INT(n, i);
}

static void
test_list_by_project_and_repo(void)
{
	struct queue *q = fresh_queue();
	struct queue_filter f;
	struct queue_claim c;
	int64_t a1, a2, b1, n1, a3, b2, ids[16];
	size_t n, nr;

	if (q == NULL)
		return;
	a1 = submit_pr(q, "alpha", REPO_A);
	b1 = submit_pr(q, "beta", REPO_B);
	n1 = submit_pr(q, NULL, REPO_A);
	a2 = submit_pr(q, "alpha", REPO_A);
	b2 = submit_pr(q, "beta", REPO_A);	/* beta, but repository A */
	a3 = submit_pr(q, "alpha", REPO_A);
	CHECK_INT(qs_claim(q, &c), 0);		/* a1 runs */
	CHECK_INT(c.job_id, a1);
	CHECK_INT(qs_cancel(q, a2, &nr), 0);	/* a2 canceled */

	memset(&f, 0, sizeof f);
	f.project = "alpha";
	n = list_ids(q, f, 100, ids, 16);
	expect_ids(ids, n, a3, a2, a1, (int64_t)0);
	/* Pages of one: the cursor walks the project's jobs only. */
	n = list_ids(q, f, 1, ids, 16);
	expect_ids(ids, n, a3, a2, a1, (int64_t)0);
	n = list_ids(q, f, 2, ids, 16);
	expect_ids(ids, n, a3, a2, a1, (int64_t)0);

	/* Exact: no prefix, no other case; a job without a project is in
	 * no project's list. */
	f.project = "alph";
	CHECK_INT(list_ids(q, f, 10, ids, 16), 0);
	f.project = "Alpha";
	CHECK_INT(list_ids(q, f, 10, ids, 16), 0);
	f.project = "";
	CHECK_INT(list_ids(q, f, 10, ids, 16), 0);

	memset(&f, 0, sizeof f);
	f.repo = REPO_A;
	n = list_ids(q, f, 2, ids, 16);
	expect_ids(ids, n, a3, b2, a2, n1, a1, (int64_t)0);
	f.repo = REPO_B;
	n = list_ids(q, f, 2, ids, 16);
	expect_ids(ids, n, b1, (int64_t)0);
	f.repo = "https://example.com/a";
	CHECK_INT(list_ids(q, f, 10, ids, 16), 0);

	/* Together: project and repository, then with a state. */
	memset(&f, 0, sizeof f);
	f.project = "beta";
	f.repo = REPO_A;
	n = list_ids(q, f, 1, ids, 16);
	expect_ids(ids, n, b2, (int64_t)0);
	f.project = "alpha";
	f.has_state = true;
	f.state = JOB_QUEUED;
	n = list_ids(q, f, 1, ids, 16);
	expect_ids(ids, n, a3, (int64_t)0);
	f.state = JOB_CANCELED;
	n = list_ids(q, f, 1, ids, 16);
	expect_ids(ids, n, a2, (int64_t)0);
	f.repo = NULL;
	f.state = JOB_RUNNING;
	n = list_ids(q, f, 1, ids, 16);
	expect_ids(ids, n, a1, (int64_t)0);
	f.project = NULL;
	f.repo = REPO_B;
	f.state = JOB_QUEUED;
	n = list_ids(q, f, 1, ids, 16);
	expect_ids(ids, n, b1, (int64_t)0);
	f.state = JOB_RUNNING;
	CHECK_INT(list_ids(q, f, 1, ids, 16), 0);
	qs_close(q);
}

/*
 * The index names a plan may use for the filters of `kind` (DB_LIST_*):
 * a plan uses one of these or it fails.
 */
static bool
uses_filter_index(const char *plan, unsigned kind)
{
	return ((kind & DB_LIST_STATE) && strstr(plan, "jobs_state_id")) ||
	    ((kind & DB_LIST_PROJECT) && strstr(plan, "jobs_project_id")) ||
	    ((kind & DB_LIST_REPO) && strstr(plan, "jobs_repo_id"));
}


/*
 * The same rows on both backends: 3000 jobs of 30 projects and 40
 * repositories, nearly all succeeded.  A filter's value is one of many
 * (a project, a repository, a state other than succeeded), as on a farm
 * that has run for a while; there a walk of all jobs from the cursor is
 * what the indexes are for not to do.
 */
static void
plans_sqlite(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	char plan[2048];

	CHECK_INT(sqlite3_open(db_path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
	    "INSERT INTO jobs (repo, ref, state, created_at, project) "
	    "SELECT 'https://example.com/r' || (i % 40) || '.git', 'main', "
	    "CASE i % 50 WHEN 0 THEN 'queued' WHEN 1 THEN 'running' "
	    "WHEN 2 THEN 'failed' WHEN 3 THEN 'canceled' ELSE 'succeeded' "
	    "END, 0, 'p' || (i % 30) FROM n; ANALYZE;", NULL, NULL, NULL),
	    SQLITE_OK);
	for (unsigned kind = 1; kind < DB_LIST_KINDS; kind++) {
		char *sql = db_list_sql(kind), *eq;

		eq = xasprintf("EXPLAIN QUERY PLAN %s", sql);
		plan[0] = '\0';
		CHECK_INT(sqlite3_prepare_v2(db, eq, -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_int64(st, 1, 2000);
		sqlite3_bind_int64(st, 2, 51);
		if (kind & DB_LIST_STATE)
			sqlite3_bind_text(st, 3, "failed", -1, SQLITE_STATIC);
		if (kind & DB_LIST_PROJECT)
			sqlite3_bind_text(st, 4, "p7", -1, SQLITE_STATIC);
		if (kind & DB_LIST_REPO)
			sqlite3_bind_text(st, 5, "https://example.com/r7.git",
			    -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			size_t len = strlen(plan);

			snprintf(plan + len, sizeof plan - len, "%s; ",
			    d ? d : "");
		}
		sqlite3_finalize(st);
		printf("# sqlite plan of filters %u: %s\n", kind, plan);
		CHECK(uses_filter_index(plan, kind));
		CHECK(strstr(plan, "SCAN jobs") == NULL);
		free(eq);
		free(sql);
	}
	sqlite3_close(db);
}

static void
plans_pg(void)
{
	PGconn *pg = PQconnectdb(db_path);
	PGresult *r;

	CHECK_INT(PQstatus(pg), CONNECTION_OK);
	r = PQexec(pg, "INSERT INTO jobs (repo, ref, state, created_at, "
	    "project) SELECT 'https://example.com/r' || (i % 40) || '.git', "
	    "'main', CASE i % 50 WHEN 0 THEN 'queued' WHEN 1 THEN 'running' "
	    "WHEN 2 THEN 'failed' WHEN 3 THEN 'canceled' ELSE 'succeeded' "
	    "END, 0, 'p' || (i % 30) "
	    "FROM generate_series(1, 3000) AS i; ANALYZE jobs");
	CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	for (unsigned kind = 1; kind < DB_LIST_KINDS; kind++) {
		char *sql = pg_list_sql(kind & DB_LIST_STATE,
		    kind & DB_LIST_PROJECT, kind & DB_LIST_REPO);
		char *eq = xasprintf("EXPLAIN %s", sql), plan[4096] = "";
		const char *params[5] = { "2000", "51" };
		int np = 2;

		if (kind & DB_LIST_STATE)
			params[np++] = "failed";
		if (kind & DB_LIST_PROJECT)
			params[np++] = "p7";
		if (kind & DB_LIST_REPO)
			params[np++] = "https://example.com/r7.git";
		r = PQexecParams(pg, eq, np, NULL, params, NULL, NULL, 0);
		CHECK_INT(PQresultStatus(r), PGRES_TUPLES_OK);
		for (int i = 0; i < PQntuples(r); i++) {
			size_t len = strlen(plan);

			snprintf(plan + len, sizeof plan - len, "%s; ",
			    PQgetvalue(r, i, 0));
		}
		PQclear(r);
		printf("# postgresql plan of filters %u: %s\n", kind, plan);
		CHECK(uses_filter_index(plan, kind));
		CHECK(strstr(plan, "Seq Scan on jobs") == NULL);
		free(eq);
		free(sql);
	}
	PQfinish(pg);
}

static void
test_each_filter_reads_an_index(void)
{
	struct queue *q = fresh_queue();

	if (q == NULL)
		return;
	qs_close(q);
	if (pg_dir() != NULL)
		plans_pg();
	else
		plans_sqlite();
}

UNIT_MAIN(
	TEST(test_list_by_project_and_repo),
	TEST(test_each_filter_reads_an_index)
)
