/*
 * The job queue's database: opening it (connection setup, the embedded
 * migrations), closing it, and the helpers the other files of daemon/db/
 * share (db-int.h): statements, transactions, column readers, and the
 * rule that derives a job's state from its targets'.
 *
 * SQLite with WAL, synchronous=FULL, foreign keys and a busy timeout.
 * Three connections: `wr` belongs to the writer thread (writer.c) and
 * makes every write; `db` belongs to the loop thread and only reads;
 * `bg` reads for retention on a pool thread.  WAL lets both readers go on
 * while the writer commits and fsyncs: the loop never waits for a lock.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db-int.h"
#include "log.h"
#include "schema.h"
#include "xmalloc.h"

#define BUSY_TIMEOUT_MS 10000

void
db_log(sqlite3 *db, const char *what)
{
	log_error("queue: %s: %s", what, sqlite3_errmsg(db));
}

int
db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("queue: %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return QUEUE_ERROR;
	}
	return 0;
}

static int
prepare(sqlite3 *db, sqlite3_stmt **out, const char *sql)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
	    NULL) != SQLITE_OK) {
		db_log(db, sql);
		return QUEUE_ERROR;
	}
	return 0;
}

/*
 * The listings of GET /v1/jobs, newest first from the cursor: ?1 the
 * cursor (id < ?1), ?2 the rows to read, ?3 the state, ?4 the project,
 * ?5 the repository.  Each combination (kind: DB_LIST_* bits) is its
 * own statement so that SQLite plans it on an index (jobs_state_id,
 * jobs_project_id, jobs_repo_id) instead of a condition it cannot index.
 */
char *
db_list_sql(unsigned kind)
{
	return xasprintf("SELECT " JOB_COLS " FROM jobs "
	    "WHERE id < ?1%s%s%s ORDER BY id DESC LIMIT ?2",
	    (kind & DB_LIST_STATE) ? " AND state = ?3" : "",
	    (kind & DB_LIST_PROJECT) ? " AND project = ?4" : "",
	    (kind & DB_LIST_REPO) ? " AND repo = ?5" : "");
}

static int
prepare_lists(struct sqlq *q)
{
	char *sql;
	int rc;

	for (unsigned k = 0; k < DB_LIST_KINDS; k++) {
		sql = db_list_sql(k);
		rc = prepare(q->db, &q->list[k], sql);
		free(sql);
		if (rc != 0)
			return QUEUE_ERROR;
	}
	return 0;
}

int
queue_schema_version(void)
{
	return (int)schema_migration_count;
}

static int
open_conn(sqlite3 **out, const char *path, char *err, size_t errsize)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "cannot open database %s: %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, 1);
	/* Before anything writes (even the switch to WAL): a database from
	 * a newer kilnd is refused untouched. */
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errsize, "cannot read %s: %s", path,
		    sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_column_int(st, 0) > (int)schema_migration_count) {
		snprintf(err, errsize,
		    "database %s has schema version %d, newer than this kilnd "
		    "knows (%d): refusing to touch it; run a newer kilnd",
		    path, sqlite3_column_int(st, 0), (int)schema_migration_count);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* WAL: readers never block the writer; FULL: a commit that returned
	 * survives power loss, which is what 201 Created promises. */
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		snprintf(err, errsize, "cannot put database %s in WAL mode: %s",
		    path, sqlite3_errmsg(db));
		goto out;
	}
	/* temp_store: what a statement or a savepoint sets aside (sorts,
	 * page copies) stays in memory instead of a file in /var/tmp. */
	if (db_exec(db,
	    "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
	    "PRAGMA temp_store=MEMORY;") != 0) {
		snprintf(err, errsize, "cannot configure database %s: %s",
		    path, sqlite3_errmsg(db));
		goto out;
	}
	*out = db;
	db = NULL;
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int
migrate(sqlite3 *db, const char *path, char *err, size_t errsize)
{
	sqlite3_stmt *st = NULL;
	int version, latest = (int)schema_migration_count, rc = QUEUE_ERROR;
	char sql[64];

	/* IMMEDIATE: two kilnds racing on one file cannot both migrate. */
	if (db_exec(db, "BEGIN IMMEDIATE") != 0) {
		snprintf(err, errsize, "cannot lock database %s: %s", path,
		    sqlite3_errmsg(db));
		return QUEUE_ERROR;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errsize, "cannot read schema version of %s: %s",
		    path, sqlite3_errmsg(db));
		goto out;
	}
	version = sqlite3_column_int(st, 0);
	/* A statement not yet done keeps its read open, and a DROP in a
	 * migration would fail with "database table is locked". */
	sqlite3_finalize(st);
	st = NULL;
	if (version > latest) {
		snprintf(err, errsize,
		    "database %s has schema version %d, newer than this kilnd "
		    "knows (%d): refusing to touch it; run a newer kilnd",
		    path, version, latest);
		goto out;
	}
	for (int v = version + 1; v <= latest; v++) {
		const struct schema_migration *m = &schema_migrations[v - 1];
		char *msg = NULL;

		if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errsize, "migration %s failed on %s: %s",
			    m->name, path, msg ? msg : "?");
			sqlite3_free(msg);
			goto out;
		}
		log_info("queue: applied schema migration %s", m->name);
	}
	snprintf(sql, sizeof sql, "PRAGMA user_version=%d", latest);
	if (db_exec(db, sql) != 0 || db_exec(db, "COMMIT") != 0) {
		snprintf(err, errsize, "cannot commit schema of %s: %s", path,
		    sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc != 0 && !sqlite3_get_autocommit(db))
		db_exec(db, "ROLLBACK");
	return rc;
}

/*
 * SQLite keeps a count of its memory by default, updated under one
 * global mutex on every allocation and free: an eighth of the writer's
 * time went into that mutex.  kilnd never reads the count.  This must
 * come before SQLite initializes (the first open); later it is refused,
 * harmlessly.
 */
static void
config_once(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
sqlite_queue_open(struct queue **out, const char *path, char *err,
    size_t errsize)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct sqlq *q;

	pthread_once(&once, config_once);
	q = xcalloc(1, sizeof *q);
	q->base.ops = &sqlite_queue_ops;
	q->base.schema = (int)schema_migration_count;
	q->path = xstrdup(path);
	if (open_conn(&q->db, path, err, errsize) != 0 ||
	    migrate(q->db, path, err, errsize) != 0 ||
	    open_conn(&q->wr, path, err, errsize) != 0 ||
	    open_conn(&q->bg, path, err, errsize) != 0)
		goto fail;
	if (prepare(q->wr, &q->ins_job, "INSERT INTO jobs (repo, ref, recipe, "
	    "priority, state, created_at, timeout, cache, \"commit\", project, "
	    "network, notify_url, trust, submitted_by, outputs, release, "
	    "retry_of) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?)") ||
	    prepare(q->wr, &q->ins_delivery, "INSERT OR IGNORE INTO "
	    "deliveries (forge, id, job_id, created_at) VALUES (?, ?, ?, ?)") ||
	    prepare(q->wr, &q->ins_push, "INSERT OR IGNORE INTO pushes "
	    "(project, ref, pushed_commit, job_id, created_at) "
	    "VALUES (?, ?, ?, ?, ?)") ||
	    prepare(q->wr, &q->ins_target, "INSERT INTO job_targets (job_id, "
	    "target, priority, state) VALUES (?, ?, ?, 'queued')") ||
	    prepare(q->db, &q->get_job, "SELECT " JOB_COLS_J ", " TARGET_COLS_T
	    " FROM jobs j LEFT JOIN job_targets t ON t.job_id = j.id "
	    "WHERE j.id = ?") ||
	    prepare(q->db, &q->get_targets, "SELECT " TARGET_COLS
	    " FROM job_targets WHERE job_id = ? ORDER BY id") ||
	    prepare_lists(q) ||
	    prepare(q->db, &q->get_artifacts, "SELECT a.target_id, a.name, "
	    "a.size, a.sha256 FROM artifacts a JOIN job_targets t "
	    "ON a.target_id = t.id WHERE t.job_id = ? ORDER BY a.target_id, "
	    "a.name")) {
		snprintf(err, errsize, "cannot prepare statements on %s", path);
		goto fail;
	}
	if (db_counts_init(q) != 0) {
		snprintf(err, errsize, "cannot count the jobs of %s", path);
		goto fail;
	}
	*out = &q->base;
	return 0;
fail:
	sqlite_close(&q->base);
	return QUEUE_ERROR;
}

void
sqlite_set_host(struct queue *base, const char *name)
{
	struct sqlq *q = (struct sqlq *)base;

	free(q->host);
	q->host = name != NULL ? xstrdup(name) : NULL;
}

/* One host writes the file, and its scheduler kicks itself after each
 * change: nothing to tell. */
static void
sqlite_watch(struct queue *base, void (*changed)(void *), void *data)
{
	(void)base;
	(void)changed;
	(void)data;
}

/* Its one host stops its builds itself when it cancels (sched_cancel). */
static void
sqlite_watch_cancels(struct queue *base,
    void (*canceled)(void *, int64_t), void *data)
{
	(void)base;
	(void)canceled;
	(void)data;
}

static bool
sqlite_shared(const struct queue *base)
{
	(void)base;
	return false;
}

/* A file: a failure is the call's (disk full, I/O), not a lost server. */
static bool
sqlite_reachable(const struct queue *base)
{
	(void)base;
	return true;
}

void
sqlite_close(struct queue *base)
{
	struct sqlq *q = (struct sqlq *)base;

	if (q == NULL)
		return;
	sqlite3_finalize(q->ins_job);
	sqlite3_finalize(q->ins_target);
	sqlite3_finalize(q->ins_delivery);
	sqlite3_finalize(q->ins_push);
	sqlite3_finalize(q->get_job);
	sqlite3_finalize(q->get_targets);
	for (size_t i = 0; i < DB_LIST_KINDS; i++)
		sqlite3_finalize(q->list[i]);
	sqlite3_finalize(q->get_artifacts);
	for (size_t i = 0; i < DB_STMT_SLOTS; i++)
		sqlite3_finalize(q->wstmt[i].st);
	if (q->bg && sqlite3_close(q->bg) != SQLITE_OK)
		db_log(q->bg, "close");
	/* The last connection to close checkpoints the WAL into the file. */
	if (q->wr && sqlite3_close(q->wr) != SQLITE_OK)
		db_log(q->wr, "close");
	if (q->db && sqlite3_close(q->db) != SQLITE_OK)
		db_log(q->db, "close");
	free(q->path);
	free(q->host);
	free(q);
}

void
db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

char *
db_col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? xstrdup((const char *)s) : NULL;
}

/*
 * Statements by the address of their text (the callers' literals),
 * checked against the text SQLite keeps, so that a buffer reused for
 * other SQL is never given the wrong statement.  Open addressing; when
 * every slot is taken, the home slot's statement is replaced.
 */
sqlite3_stmt *
db_stmt(struct sqlq *q, const char *sql)
{
	size_t home = ((uintptr_t)sql >> 3) % DB_STMT_SLOTS, i = home;
	struct db_stmt_slot *sl;

	do {
		sl = &q->wstmt[i];
		if (sl->st == NULL)
			break;
		if (sl->sql == sql && strcmp(sqlite3_sql(sl->st), sql) == 0) {
			sqlite3_reset(sl->st);
			sqlite3_clear_bindings(sl->st);
			return sl->st;
		}
		i = (i + 1) % DB_STMT_SLOTS;
	} while (i != home);
	if (sl->st != NULL) {
		sqlite3_finalize(sl->st);
		sl->st = NULL;
	}
	if (sqlite3_prepare_v3(q->wr, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &sl->st, NULL) != SQLITE_OK) {
		db_log(q->wr, sql);
		sqlite3_finalize(sl->st);
		sl->st = NULL;
		return NULL;
	}
	sl->sql = sql;
	return sl->st;
}

int
db_run(struct sqlq *q, const char *sql, int nparams, const int64_t *params)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(q, sql)) == NULL)
		return -1;
	for (int i = 0; i < nparams; i++)
		sqlite3_bind_int64(st, i + 1, params[i]);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_log(q->wr, sql);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return sqlite3_changes(q->wr);
}

/*
 * Derive the job's state from its targets' (inside the caller's
 * transaction): any target not ended -> running once anything started or
 * ended, else queued; all ended -> succeeded if all succeeded, failed if
 * any failed or timed out, else canceled.
 */
int
db_update_job_state(struct sqlq *q, int64_t job_id, int64_t now)
{
	static const char *const sql =
	    "UPDATE jobs SET state = CASE"
	    "  WHEN s.open > 0 AND (s.running > 0 OR s.open < s.total)"
	    "    THEN 'running'"
	    "  WHEN s.open > 0 THEN 'queued'"
	    "  WHEN s.ok = s.total THEN 'succeeded'"
	    "  WHEN s.bad > 0 THEN 'failed'"
	    "  ELSE 'canceled' END,"
	    " finished_at = CASE WHEN s.open = 0 THEN coalesce(finished_at, ?2)"
	    "  ELSE NULL END"
	    " FROM (SELECT count(*) AS total,"
	    "   sum(state IN ('queued', 'running')) AS open,"
	    "   sum(state = 'running') AS running,"
	    "   sum(state = 'succeeded') AS ok,"
	    "   sum(state IN ('failed', 'timed_out')) AS bad"
	    "   FROM job_targets WHERE job_id = ?1) AS s"
	    " WHERE jobs.id = ?1";
	/*
	 * The release row of a job that wants one (schema/015_outputs.sql),
	 * once every build succeeded: the job goes on running until it is
	 * packaged too.
	 */
	static const char *const release =
	    "INSERT INTO job_targets (job_id, target, priority, state)"
	    " SELECT j.id, 'release', j.priority, 'queued' FROM jobs j"
	    " WHERE j.id = ?1 AND j.release = 1"
	    " AND EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = j.id)"
	    " AND NOT EXISTS (SELECT 1 FROM job_targets t"
	    "  WHERE t.job_id = j.id AND (t.state <> 'succeeded'"
	    "   OR t.target IN ('release', '*')))";
	int64_t p[2] = { job_id, now };

	if (db_run(q, release, 1, p) < 0 || db_run(q, sql, 2, p) < 0)
		return QUEUE_ERROR;
	/* A job that just succeeded is to be signed. */
	if (db_run(q, "UPDATE jobs SET sign_pending = 1 WHERE id = ?1 AND "
	    "state = 'succeeded' AND sums_sha256 IS NULL AND sign_pending = 0",
	    1, p) < 0)
		return QUEUE_ERROR;
	return db_notify_due(q, job_id, now);
}

int
db_notify_due(struct sqlq *q, int64_t job_id, int64_t now)
{
	int64_t p[2] = { job_id, now };

	return db_run(q, "UPDATE jobs SET notify_state = 'pending', "
	    "notify_next_at = ?2 WHERE id = ?1 AND notify_url IS NOT NULL "
	    "AND notify_state IS NULL AND state IN ('succeeded', 'failed', "
	    "'canceled')", 2, p) < 0 ? QUEUE_ERROR : 0;
}

int
db_job_state_of(struct sqlq *q, int64_t id, enum job_state *out)
{
	sqlite3_stmt *st;
	int rc = QUEUE_ERROR, step;

	if ((st = db_stmt(q, "SELECT state FROM jobs WHERE id = ?")) == NULL)
		return QUEUE_ERROR;
	sqlite3_bind_int64(st, 1, id);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE)
		rc = QUEUE_ENOTFOUND;
	else if (step == SQLITE_ROW &&
	    job_state_parse((const char *)sqlite3_column_text(st, 0), out) == 0)
		rc = 0;
	else
		db_log(q->wr, "job state");
	sqlite3_reset(st);
	return rc;
}

int
db_begin(struct sqlq *q)
{
	if (q->batching)
		return 0;
	db_counts_drop(q);
	return db_exec(q->wr, "BEGIN IMMEDIATE");
}

int
db_end(struct sqlq *q, int rc)
{
	if (q->batching)
		return rc;
	if (rc == 0 && db_exec(q->wr, "COMMIT") == 0) {
		db_counts_commit(q);
		return 0;
	}
	if (!sqlite3_get_autocommit(q->wr))
		db_exec(q->wr, "ROLLBACK");
	db_counts_drop(q);
	return rc != 0 ? rc : QUEUE_ERROR;
}

/* queue.h through backend.h: the SQLite backend. */
const struct queue_ops sqlite_queue_ops = {
	.start = sqlite_start,
	.stop = sqlite_stop,
	.commits = sqlite_commits,
	.writes = sqlite_writes,
	.pending_writes = sqlite_pending_writes,
	.close = sqlite_close,
	.set_host = sqlite_set_host,
	.farm_key = sqlite_farm_key,
	.watch = sqlite_watch,
	.watch_cancels = sqlite_watch_cancels,
	.shared = sqlite_shared,
	.reachable = sqlite_reachable,
	.submit = sqlite_submit,
	.get = sqlite_get,
	.list = sqlite_list,
	.cancel = sqlite_cancel,
	.set_priority = sqlite_set_priority,
	.claim = sqlite_claim,
	.claim_job = sqlite_claim_job,
	.next_jobs = sqlite_next_jobs,
	.release = sqlite_release,
	.heartbeat = sqlite_heartbeat,
	.refuse = sqlite_refuse,
	.set_commit = sqlite_set_commit,
	.set_toolchain = sqlite_set_toolchain,
	.set_verified = sqlite_set_verified,
	.set_outputs = sqlite_set_outputs,
	.expand_targets = sqlite_expand_targets,
	.finish_build = sqlite_finish_build,
	.cache_lookup = sqlite_cache_lookup,
	.unsigned_jobs = sqlite_unsigned_jobs,
	.set_signed = sqlite_set_signed,
	.fail_job = sqlite_fail_job,
	.recover = sqlite_recover,
	.stale_targets = sqlite_stale_targets,
	.reclaim = sqlite_reclaim,
	.delivery_job = sqlite_delivery_job,
	.push_job = sqlite_push_job,
	.notify_due = sqlite_notify_due,
	.notify_result = sqlite_notify_result,
	.expire_select = sqlite_expire_select,
	.expire_jobs = sqlite_expire_jobs,
	.referenced_blobs = sqlite_referenced_blobs,
	.host_beat = sqlite_host_beat,
	.hosts = sqlite_hosts,
};
