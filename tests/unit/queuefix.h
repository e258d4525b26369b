/*
 * What the queue's tests share: a fresh database, jobs made by hand,
 * submitting and claiming with checks (writes go through qsync.h).
 * Included by each test file, so that its checks count in that test
 * (unit.h's state is per file).
 *
 * The backend: SQLite in a fresh directory; or, when KILN_TEST_PG_DIR
 * names a running cluster of tests/pgcluster.sh (tests/unit/pgqueue.sh
 * starts one), a fresh PostgreSQL database of it per queue, so that the
 * same tests are the conformance suite of both.  A file that tests
 * SQLite's own behaviour defines QUEUEFIX_SQLITE before including this.
 */
#ifndef KILN_TEST_QUEUEFIX_H
#define KILN_TEST_QUEUEFIX_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "unit.h"

/* The SQLite file, or the PostgreSQL URL, of the last fresh_queue(). */
static char db_path[512];

/* The PostgreSQL cluster to test on, or NULL for SQLite. */
static __attribute__((unused)) const char *
pg_dir(void)
{
#ifdef QUEUEFIX_SQLITE
	return NULL;
#else
	const char *d = getenv("KILN_TEST_PG_DIR");

	return d != NULL && *d ? d : NULL;
#endif
}

/* A new database of the cluster in dir: its URL in db_path, or -1. */
static __attribute__((unused)) int
pg_createdb(const char *dir)
{
	static unsigned seq;
	const char *src = getenv("SRCDIR");
	char cmd[2048];
	FILE *p;
	size_t len;
	int st;

	if (src == NULL || *src == '\0') {
		fprintf(stderr, "  KILN_TEST_PG_DIR needs SRCDIR\n");
		return -1;
	}
	snprintf(cmd, sizeof cmd, "'%s/tests/pgcluster.sh' createdb '%s' "
	    "q%ld_%u", src, dir, (long)getpid(), seq++);
	db_path[0] = '\0';
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(db_path, sizeof db_path, p) == NULL)
		db_path[0] = '\0';
	st = pclose(p);
	len = strlen(db_path);
	while (len > 0 && (db_path[len - 1] == '\n' || db_path[len - 1] == ' '))
		db_path[--len] = '\0';
	if (st != 0 || len == 0) {
		fprintf(stderr, "  %s: failed\n", cmd);
		return -1;
	}
	return 0;
}

/* A fresh database in a fresh directory; NULL (and a failure) if not. */
static __attribute__((unused)) struct queue *
fresh_queue(void)
{
	struct queue *q = NULL;
	char err[512] = "";

	if (pg_dir() != NULL) {
		if (pg_createdb(pg_dir()) != 0) {
			CHECK(0);
			return NULL;
		}
	} else
		snprintf(db_path, sizeof db_path, "%s/kiln.db",
		    unit_tmpdir());
	if (queue_open(&q, db_path, err, sizeof err) != 0) {
		fprintf(stderr, "  queue_open %s: %s\n", db_path, err);
		CHECK(0);
		return NULL;
	}
	return q;
}

/*
 * The database's write lock, held from outside the queue, so that the
 * writes made meanwhile wait (and, on SQLite, go in together once it is
 * let go).  PostgreSQL: a transaction holding the queue's tables in
 * EXCLUSIVE mode, which lets reads through and stops every write.
 */
struct write_lock {
	sqlite3 *db;
	PGconn *pg;
};

static __attribute__((unused)) struct write_lock
hold_write_lock(void)
{
	struct write_lock l = { NULL, NULL };
	PGresult *r;

	if (pg_dir() == NULL) {
		CHECK_INT(sqlite3_open(db_path, &l.db), SQLITE_OK);
		CHECK_INT(sqlite3_exec(l.db, "BEGIN IMMEDIATE", NULL, NULL,
		    NULL), SQLITE_OK);
		return l;
	}
	l.pg = PQconnectdb(db_path);
	CHECK_INT(PQstatus(l.pg), CONNECTION_OK);
	r = PQexec(l.pg, "BEGIN; LOCK TABLE jobs, job_targets, artifacts "
	    "IN EXCLUSIVE MODE");
	CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	return l;
}

static __attribute__((unused)) void
let_go(struct write_lock l)
{
	PGresult *r;

	if (l.db != NULL) {
		CHECK_INT(sqlite3_exec(l.db, "COMMIT", NULL, NULL, NULL),
		    SQLITE_OK);
		sqlite3_close(l.db);
	}
	if (l.pg != NULL) {
		r = PQexec(l.pg, "COMMIT");
		CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		PQfinish(l.pg);
	}
}

/* A job by hand: repo, ref, priority, then NULL-ended target names. */
static __attribute__((unused)) struct job *
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
static __attribute__((unused)) int64_t
submit1(struct queue *q, struct job *j)
{
	int64_t id;

	CHECK_INT(qs_submit(q, &j, 1), 0);
	id = j->id;
	job_free(j);
	return id;
}

static __attribute__((unused)) struct job *
get(struct queue *q, int64_t id)
{
	struct job *j = NULL;
	int rc = qs_get(q, id, &j);

	CHECK_INT(rc, 0);
	return rc == 0 ? j : NULL;
}

static __attribute__((unused)) void
expect_claim(struct queue *q, int64_t job_id, const char *target)
{
	struct queue_claim c;

	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, job_id);
	CHECK_STR(c.target, target);
	CHECK_INT(c.attempt, 1);
}

#endif
