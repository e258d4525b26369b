/*
 * The job queue on SQLite: WAL, synchronous=FULL, foreign keys, a busy
 * timeout.  Two connections: `sub` belongs to the group-commit thread and
 * only inserts; `db` belongs to the loop thread.  WAL lets the loop read
 * while a commit is being fsynced; a loop-thread write that meets a commit
 * in progress waits for it (busy timeout), which is rare (cancel, claim).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "queue.h"
#include "schema.h"
#include "util.h"
#include "xmalloc.h"

#define BUSY_TIMEOUT_MS 10000

struct queue {
	sqlite3 *db;		/* loop thread */
	sqlite3 *sub;		/* group-commit thread */
	sqlite3 *bg;		/* retention sweep (one thread at a time) */
	char *path;
	sqlite3_stmt *ins_job;	/* on sub */
	sqlite3_stmt *ins_target;
	sqlite3_stmt *ins_delivery;
	sqlite3_stmt *ins_push;
	sqlite3_stmt *get_job;	/* on db */
	sqlite3_stmt *get_targets;
	sqlite3_stmt *list_all;
	sqlite3_stmt *list_state;
	sqlite3_stmt *get_artifacts;
	uint64_t submit_commits;	/* written by the submitting thread */
};

#define JOB_COLS "id, repo, ref, \"commit\", recipe, priority, state, error, " \
	"created_at, started_at, finished_at, timeout, cache, sums_sha256, " \
	"sig_sha256, prov_sha256, expired_at, project, network, notify_url, " \
	"notify_state, notify_attempts, notify_error, trust, submitted_by"
#define JOB_NCOLS 25
#define TARGET_COLS "id, target, state, attempt, exit_status, error, " \
	"started_at, finished_at, cached, toolchain, cached_from"
/* The same, qualified, for the join in queue_get(). */
#define JOB_COLS_J "j.id, j.repo, j.ref, j.\"commit\", j.recipe, j.priority, " \
	"j.state, j.error, j.created_at, j.started_at, j.finished_at, " \
	"j.timeout, j.cache, j.sums_sha256, j.sig_sha256, j.prov_sha256, " \
	"j.expired_at, j.project, j.network, j.notify_url, j.notify_state, " \
	"j.notify_attempts, j.notify_error, j.trust, j.submitted_by"
#define TARGET_COLS_T "t.id, t.target, t.state, t.attempt, t.exit_status, " \
	"t.error, t.started_at, t.finished_at, t.cached, t.toolchain, " \
	"t.cached_from"

static void
db_log(sqlite3 *db, const char *what)
{
	log_error("queue: %s: %s", what, sqlite3_errmsg(db));
}

static int
exec(sqlite3 *db, const char *sql)
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
	if (exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") != 0) {
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
	if (exec(db, "BEGIN IMMEDIATE") != 0) {
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
	if (exec(db, sql) != 0 || exec(db, "COMMIT") != 0) {
		snprintf(err, errsize, "cannot commit schema of %s: %s", path,
		    sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc != 0 && !sqlite3_get_autocommit(db))
		exec(db, "ROLLBACK");
	return rc;
}

int
queue_open(struct queue **out, const char *path, char *err, size_t errsize)
{
	struct queue *q = xcalloc(1, sizeof *q);

	q->path = xstrdup(path);
	if (open_conn(&q->db, path, err, errsize) != 0 ||
	    migrate(q->db, path, err, errsize) != 0 ||
	    open_conn(&q->sub, path, err, errsize) != 0 ||
	    open_conn(&q->bg, path, err, errsize) != 0)
		goto fail;
	if (prepare(q->sub, &q->ins_job, "INSERT INTO jobs (repo, ref, recipe, "
	    "priority, state, created_at, timeout, cache, \"commit\", project, "
	    "network, notify_url, trust, submitted_by) "
	    "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)") ||
	    prepare(q->sub, &q->ins_delivery, "INSERT OR IGNORE INTO "
	    "deliveries (forge, id, job_id, created_at) VALUES (?, ?, ?, ?)") ||
	    prepare(q->sub, &q->ins_push, "INSERT OR IGNORE INTO pushes "
	    "(project, ref, pushed_commit, job_id, created_at) "
	    "VALUES (?, ?, ?, ?, ?)") ||
	    prepare(q->sub, &q->ins_target, "INSERT INTO job_targets (job_id, "
	    "target, priority, state) VALUES (?, ?, ?, 'queued')") ||
	    prepare(q->db, &q->get_job, "SELECT " JOB_COLS_J ", " TARGET_COLS_T
	    " FROM jobs j LEFT JOIN job_targets t ON t.job_id = j.id "
	    "WHERE j.id = ? ORDER BY t.id") ||
	    prepare(q->db, &q->get_targets, "SELECT " TARGET_COLS
	    " FROM job_targets WHERE job_id = ? ORDER BY id") ||
	    prepare(q->db, &q->list_all, "SELECT " JOB_COLS " FROM jobs "
	    "WHERE id < ?1 ORDER BY id DESC LIMIT ?2") ||
	    prepare(q->db, &q->list_state, "SELECT " JOB_COLS " FROM jobs "
	    "WHERE state = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2") ||
	    prepare(q->db, &q->get_artifacts, "SELECT a.target_id, a.name, "
	    "a.size, a.sha256 FROM artifacts a JOIN job_targets t "
	    "ON a.target_id = t.id WHERE t.job_id = ? ORDER BY a.target_id, "
	    "a.name")) {
		snprintf(err, errsize, "cannot prepare statements on %s", path);
		goto fail;
	}
	*out = q;
	return 0;
fail:
	queue_close(q);
	return QUEUE_ERROR;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	sqlite3_finalize(q->ins_job);
	sqlite3_finalize(q->ins_target);
	sqlite3_finalize(q->ins_delivery);
	sqlite3_finalize(q->ins_push);
	sqlite3_finalize(q->get_job);
	sqlite3_finalize(q->get_targets);
	sqlite3_finalize(q->list_all);
	sqlite3_finalize(q->list_state);
	sqlite3_finalize(q->get_artifacts);
	if (q->bg && sqlite3_close(q->bg) != SQLITE_OK)
		db_log(q->bg, "close");
	/* The last connection to close checkpoints the WAL into the file. */
	if (q->sub && sqlite3_close(q->sub) != SQLITE_OK)
		db_log(q->sub, "close");
	if (q->db && sqlite3_close(q->db) != SQLITE_OK)
		db_log(q->db, "close");
	free(q->path);
	free(q);
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int
queue_submit(struct queue *q, struct job *const *jobs, size_t n)
{
	int rc = QUEUE_ERROR;

	if (n == 0)
		return 0;
	if (exec(q->sub, "BEGIN IMMEDIATE") != 0)
		return QUEUE_ERROR;
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobs[i];

		sqlite3_reset(q->ins_job);
		sqlite3_bind_text(q->ins_job, 1, j->repo, -1, SQLITE_STATIC);
		sqlite3_bind_text(q->ins_job, 2, j->ref, -1, SQLITE_STATIC);
		bind_text_or_null(q->ins_job, 3, j->recipe);
		sqlite3_bind_int(q->ins_job, 4, j->priority);
		sqlite3_bind_int64(q->ins_job, 5, j->created_at);
		if (j->timeout > 0)
			sqlite3_bind_int(q->ins_job, 6, j->timeout);
		else
			sqlite3_bind_null(q->ins_job, 6);
		sqlite3_bind_int(q->ins_job, 7, j->cache);
		bind_text_or_null(q->ins_job, 8, j->commit);
		bind_text_or_null(q->ins_job, 9, j->project);
		sqlite3_bind_int(q->ins_job, 10, j->network);
		bind_text_or_null(q->ins_job, 11, j->notify_url);
		bind_text_or_null(q->ins_job, 12, job_trust_name(j->trust));
		bind_text_or_null(q->ins_job, 13, j->submitted_by);
		if (sqlite3_step(q->ins_job) != SQLITE_DONE) {
			db_log(q->sub, "insert job");
			goto out;
		}
		j->id = sqlite3_last_insert_rowid(q->sub);
		if (j->delivery_id != NULL) {
			sqlite3_reset(q->ins_delivery);
			sqlite3_bind_text(q->ins_delivery, 1, j->delivery_forge,
			    -1, SQLITE_STATIC);
			sqlite3_bind_text(q->ins_delivery, 2, j->delivery_id, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(q->ins_delivery, 3, j->id);
			sqlite3_bind_int64(q->ins_delivery, 4, j->created_at);
			if (sqlite3_step(q->ins_delivery) != SQLITE_DONE) {
				db_log(q->sub, "insert delivery");
				goto out;
			}
		}
		/* A webhook's job: its push is a redelivery key too. */
		if (j->delivery_id != NULL && j->project != NULL &&
		    j->commit != NULL) {
			sqlite3_reset(q->ins_push);
			sqlite3_bind_text(q->ins_push, 1, j->project, -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(q->ins_push, 2, j->ref, -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(q->ins_push, 3, j->commit, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(q->ins_push, 4, j->id);
			sqlite3_bind_int64(q->ins_push, 5, j->created_at);
			if (sqlite3_step(q->ins_push) != SQLITE_DONE) {
				db_log(q->sub, "insert push");
				goto out;
			}
		}
		for (size_t t = 0; t < j->ntargets; t++) {
			sqlite3_reset(q->ins_target);
			sqlite3_bind_int64(q->ins_target, 1, j->id);
			sqlite3_bind_text(q->ins_target, 2, j->targets[t].target,
			    -1, SQLITE_STATIC);
			sqlite3_bind_int(q->ins_target, 3, j->priority);
			if (sqlite3_step(q->ins_target) != SQLITE_DONE) {
				db_log(q->sub, "insert target");
				goto out;
			}
			j->targets[t].id = sqlite3_last_insert_rowid(q->sub);
		}
	}
	if (exec(q->sub, "COMMIT") != 0)
		goto out;
	q->submit_commits++;
	rc = 0;
out:
	sqlite3_reset(q->ins_job);
	sqlite3_reset(q->ins_target);
	sqlite3_reset(q->ins_delivery);
	sqlite3_reset(q->ins_push);
	sqlite3_clear_bindings(q->ins_job);
	sqlite3_clear_bindings(q->ins_target);
	if (rc != 0) {
		if (!sqlite3_get_autocommit(q->sub))
			exec(q->sub, "ROLLBACK");
		for (size_t i = 0; i < n; i++)
			jobs[i]->id = 0;
	}
	return rc;
}

static char *
col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? xstrdup((const char *)s) : NULL;
}

static int64_t
col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 :
	    sqlite3_column_int64(st, i);
}

/* A job from the JOB_COLS columns of a row (targets not loaded). */
static struct job *
job_from_row(sqlite3_stmt *st)
{
	struct job *j = xcalloc(1, sizeof *j);
	const char *s;

	j->id = sqlite3_column_int64(st, 0);
	j->repo = col_strdup(st, 1);
	j->ref = col_strdup(st, 2);
	j->commit = col_strdup(st, 3);
	j->recipe = col_strdup(st, 4);
	j->priority = sqlite3_column_int(st, 5);
	s = (const char *)sqlite3_column_text(st, 6);
	if (s == NULL || job_state_parse(s, &j->state) != 0) {
		log_error("queue: job %" PRId64 " has unknown state '%s'", j->id,
		    s ? s : "NULL");
		job_free(j);
		return NULL;
	}
	j->error = col_strdup(st, 7);
	j->created_at = col_time(st, 8);
	j->started_at = col_time(st, 9);
	j->finished_at = col_time(st, 10);
	j->timeout = sqlite3_column_int(st, 11);
	j->cache = sqlite3_column_int(st, 12) != 0;
	j->sums_sha256 = col_strdup(st, 13);
	j->sig_sha256 = col_strdup(st, 14);
	j->prov_sha256 = col_strdup(st, 15);
	j->expired_at = col_time(st, 16);
	j->project = col_strdup(st, 17);
	j->network = sqlite3_column_int(st, 18) != 0;
	j->notify_url = col_strdup(st, 19);
	j->notify_state = col_strdup(st, 20);
	j->notify_attempts = sqlite3_column_int(st, 21);
	j->notify_error = col_strdup(st, 22);
	j->trust = job_trust_parse((const char *)sqlite3_column_text(st, 23));
	j->submitted_by = col_strdup(st, 24);
	return j;
}

/* Append a target from the TARGET_COLS columns of a row, from column c. */
static int
add_target_from_row(struct job *j, size_t *cap, sqlite3_stmt *ts, int c)
{
	struct job_target *t;
	const char *s;

	if (j->ntargets == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		j->targets = xreallocarray(j->targets, *cap, sizeof *j->targets);
	}
	t = &j->targets[j->ntargets];
	memset(t, 0, sizeof *t);
	t->id = sqlite3_column_int64(ts, c);
	snprintf(t->target, sizeof t->target, "%s",
	    (const char *)sqlite3_column_text(ts, c + 1));
	s = (const char *)sqlite3_column_text(ts, c + 2);
	if (s == NULL || target_state_parse(s, &t->state) != 0) {
		log_error("queue: target %" PRId64 " has unknown state", t->id);
		return QUEUE_ERROR;
	}
	t->attempt = sqlite3_column_int(ts, c + 3);
	t->has_exit_status = sqlite3_column_type(ts, c + 4) != SQLITE_NULL;
	t->exit_status = sqlite3_column_int(ts, c + 4);
	t->error = col_strdup(ts, c + 5);
	t->started_at = col_time(ts, c + 6);
	t->finished_at = col_time(ts, c + 7);
	t->cached = sqlite3_column_int(ts, c + 8) != 0;
	t->toolchain = col_strdup(ts, c + 9);
	t->cached_from = sqlite3_column_int64(ts, c + 10);
	j->ntargets++;
	return 0;
}

/* The artifacts of a job's succeeded targets (only they have any). */
static int
load_artifacts(struct queue *q, struct job *j)
{
	sqlite3_stmt *st = q->get_artifacts;
	bool any = false;
	int step;

	for (size_t i = 0; i < j->ntargets; i++)
		any |= j->targets[i].state == TARGET_SUCCEEDED;
	if (!any)
		return 0;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, j->id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t tid = sqlite3_column_int64(st, 0);
		for (size_t i = 0; i < j->ntargets; i++) {
			struct job_target *t = &j->targets[i];
			struct artifact *a;

			if (t->id != tid)
				continue;
			t->artifacts = xreallocarray(t->artifacts,
			    t->nartifacts + 1, sizeof *t->artifacts);
			a = &t->artifacts[t->nartifacts++];
			a->name = col_strdup(st, 1);
			a->size = sqlite3_column_int64(st, 2);
			a->sha256 = col_strdup(st, 3);
		}
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "load artifacts");
		return QUEUE_ERROR;
	}
	return 0;
}

/* Build a job from a row of JOB_COLS and load its targets. */
static int
load_job(struct queue *q, sqlite3_stmt *st, struct job **out)
{
	struct job *j = job_from_row(st);
	size_t cap = 0;
	int step;

	if (j == NULL)
		return QUEUE_ERROR;
	sqlite3_reset(q->get_targets);
	sqlite3_bind_int64(q->get_targets, 1, j->id);
	while ((step = sqlite3_step(q->get_targets)) == SQLITE_ROW)
		if (add_target_from_row(j, &cap, q->get_targets, 0) != 0) {
			step = SQLITE_ERROR;
			break;
		}
	sqlite3_reset(q->get_targets);
	if (step != SQLITE_DONE) {
		if (step != SQLITE_ERROR)
			db_log(q->db, "load targets");
		job_free(j);
		return QUEUE_ERROR;
	}
	if (load_artifacts(q, j) != 0) {
		job_free(j);
		return QUEUE_ERROR;
	}
	*out = j;
	return 0;
}

/*
 * One statement for a job and its targets (a row per target): the hot
 * path of GET /v1/jobs/{id}.
 */
int
queue_get(struct queue *q, int64_t id, struct job **out)
{
	sqlite3_stmt *st = q->get_job;
	struct job *j = NULL;
	size_t cap = 0;
	int rc = 0, step;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (j == NULL && (j = job_from_row(st)) == NULL) {
			rc = QUEUE_ERROR;
			break;
		}
		if (sqlite3_column_type(st, JOB_NCOLS) != SQLITE_NULL &&
		    add_target_from_row(j, &cap, st, JOB_NCOLS) != 0) {
			rc = QUEUE_ERROR;
			break;
		}
	}
	if (rc == 0 && step != SQLITE_DONE) {
		db_log(q->db, "get job");
		rc = QUEUE_ERROR;
	}
	sqlite3_reset(st);
	if (rc == 0 && j == NULL)
		rc = QUEUE_ENOTFOUND;
	if (rc == 0)
		rc = load_artifacts(q, j);
	if (rc != 0) {
		job_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

int
queue_list(struct queue *q, const struct queue_filter *f, struct job ***out,
    size_t *nout, int64_t *next)
{
	sqlite3_stmt *st = f->has_state ? q->list_state : q->list_all;
	struct job **jobs;
	size_t n = 0, limit = f->limit;
	int step, rc = 0;

	if (limit == 0 || limit > QUEUE_LIST_MAX)
		limit = QUEUE_LIST_MAX;
	jobs = xcalloc(limit, sizeof *jobs);
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, f->after > 0 ? f->after : INT64_MAX);
	/* One row more than asked tells whether another page exists. */
	sqlite3_bind_int64(st, 2, (int64_t)limit + 1);
	if (f->has_state)
		sqlite3_bind_text(st, 3, job_state_name(f->state), -1,
		    SQLITE_STATIC);
	*next = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			*next = jobs[n - 1]->id;
			break;
		}
		if ((rc = load_job(q, st, &jobs[n])) != 0)
			break;
		n++;
	}
	if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
		db_log(q->db, "list jobs");
		rc = QUEUE_ERROR;
	}
	sqlite3_reset(st);
	if (rc != 0) {
		job_free_array(jobs, n);
		return rc;
	}
	*out = jobs;
	*nout = n;
	return 0;
}

/* Run one statement with int64 parameters; returns changes or -1. */
static int
run(sqlite3 *db, const char *sql, int nparams, const int64_t *params)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_log(db, sql);
		return -1;
	}
	for (int i = 0; i < nparams; i++)
		sqlite3_bind_int64(st, i + 1, params[i]);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_log(db, sql);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return sqlite3_changes(db);
}

/*
 * Derive the job's state from its targets' (inside the caller's
 * transaction): any target not ended -> running once anything started or
 * ended, else queued; all ended -> succeeded if all succeeded, failed if
 * any failed or timed out, else canceled.
 */
static int
update_job_state(sqlite3 *db, int64_t job_id, int64_t now)
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
	int64_t p[2] = { job_id, now };

	if (run(db, sql, 2, p) < 0)
		return QUEUE_ERROR;
	/* A job that just succeeded is to be signed. */
	if (run(db, "UPDATE jobs SET sign_pending = 1 WHERE id = ?1 AND "
	    "state = 'succeeded' AND sums_sha256 IS NULL AND sign_pending = 0",
	    1, p) < 0)
		return QUEUE_ERROR;
	/* A job that ended with a callback URL: its callback is due. */
	return run(db, "UPDATE jobs SET notify_state = 'pending', "
	    "notify_next_at = ?2 WHERE id = ?1 AND notify_url IS NOT NULL "
	    "AND notify_state IS NULL AND state IN ('succeeded', 'failed', "
	    "'canceled')", 2, p) < 0 ? QUEUE_ERROR : 0;
}

static int
job_state_of(sqlite3 *db, int64_t id, enum job_state *out)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR, step;

	if (sqlite3_prepare_v2(db, "SELECT state FROM jobs WHERE id = ?", -1,
	    &st, NULL) != SQLITE_OK) {
		db_log(db, "job state");
		return QUEUE_ERROR;
	}
	sqlite3_bind_int64(st, 1, id);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE)
		rc = QUEUE_ENOTFOUND;
	else if (step == SQLITE_ROW &&
	    job_state_parse((const char *)sqlite3_column_text(st, 0), out) == 0)
		rc = 0;
	else
		db_log(db, "job state");
	sqlite3_finalize(st);
	return rc;
}

static int
begin(sqlite3 *db)
{
	return exec(db, "BEGIN IMMEDIATE");
}

static int
end(sqlite3 *db, int rc)
{
	if (rc == 0 && exec(db, "COMMIT") == 0)
		return 0;
	if (!sqlite3_get_autocommit(db))
		exec(db, "ROLLBACK");
	return rc != 0 ? rc : QUEUE_ERROR;
}

int
queue_cancel(struct queue *q, int64_t id, size_t *nrunning)
{
	enum job_state st;
	int64_t now = util_now_ms();
	int rc;

	if ((rc = begin(q->db)) != 0)
		return rc;
	if ((rc = job_state_of(q->db, id, &st)) != 0)
		goto out;
	if (st == JOB_SUCCEEDED || st == JOB_FAILED) {
		rc = QUEUE_ECONFLICT;
		goto out;
	}
	int64_t p[2] = { id, now };
	if (run(q->db, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
	    1, p) != 1) {
		rc = QUEUE_ERROR;
		goto out;
	}
	if (run(q->db, "UPDATE job_targets SET state = 'canceled', "
	    "finished_at = ?2, error = 'canceled before it started' "
	    "WHERE job_id = ?1 AND state = 'queued'", 2, p) < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_stmt *cs = NULL;
	if (sqlite3_prepare_v2(q->db, "SELECT count(*) FROM job_targets "
	    "WHERE job_id = ? AND state = 'running'", -1, &cs, NULL) !=
	    SQLITE_OK) {
		db_log(q->db, "count running");
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(cs, 1, id);
	if (sqlite3_step(cs) == SQLITE_ROW)
		*nrunning = (size_t)sqlite3_column_int64(cs, 0);
	else {
		db_log(q->db, "count running");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(cs);
	if (rc == 0)
		rc = update_job_state(q->db, id, now);
out:
	return end(q->db, rc);
}

int
queue_set_priority(struct queue *q, int64_t id, int priority)
{
	int64_t p[2] = { id, priority };
	enum job_state st;
	int rc, n;

	if ((rc = begin(q->db)) != 0)
		return rc;
	if ((rc = job_state_of(q->db, id, &st)) != 0)
		goto out;
	/* A job being canceled has nothing left to order. */
	n = run(q->db, "UPDATE jobs SET priority = ?2 WHERE id = ?1 AND "
	    "state IN ('queued', 'running') AND cancel_requested = 0", 2, p);
	if (n < 0)
		rc = QUEUE_ERROR;
	else if (n == 0)
		rc = QUEUE_ECONFLICT;
	/* Targets planned later copy the job's priority (expand_targets). */
	else if (run(q->db, "UPDATE job_targets SET priority = ?2 WHERE "
	    "job_id = ?1 AND state = 'queued'", 2, p) < 0)
		rc = QUEUE_ERROR;
out:
	return end(q->db, rc);
}

/* Claim the next queued target, of job_id when it is not 0. */
static int
claim(struct queue *q, int64_t job_id, struct queue_claim *out)
{
	sqlite3_stmt *st = NULL;
	int64_t now = util_now_ms();
	int rc, step;

	if ((rc = begin(q->db)) != 0)
		return rc;
	/* Walks the partial index job_targets_claim: first entry wins. */
	if (sqlite3_prepare_v2(q->db, job_id ?
	    "SELECT id, job_id, target, attempt FROM job_targets "
	    "WHERE state = 'queued' AND job_id = ?1 ORDER BY id LIMIT 1" :
	    "SELECT id, job_id, target, attempt FROM job_targets "
	    "WHERE state = 'queued' ORDER BY priority DESC, job_id, id LIMIT 1",
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "claim");
		rc = QUEUE_ERROR;
		goto out;
	}
	if (job_id)
		sqlite3_bind_int64(st, 1, job_id);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = QUEUE_EEMPTY;
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_log(q->db, "claim");
		rc = QUEUE_ERROR;
		goto out;
	}
	memset(out, 0, sizeof *out);
	out->target_id = sqlite3_column_int64(st, 0);
	out->job_id = sqlite3_column_int64(st, 1);
	snprintf(out->target, sizeof out->target, "%s",
	    (const char *)sqlite3_column_text(st, 2));
	out->attempt = sqlite3_column_int(st, 3) + 1;
	int64_t p[3] = { out->target_id, now, out->job_id };
	if (run(q->db, "UPDATE job_targets SET state = 'running', "
	    "attempt = attempt + 1, started_at = ?2, heartbeat_at = ?2, "
	    "finished_at = NULL, exit_status = NULL, error = NULL "
	    "WHERE id = ?1", 2, p) != 1 ||
	    run(q->db, "UPDATE jobs SET state = 'running', "
	    "started_at = coalesce(started_at, ?2) WHERE id = ?3", 3, p) != 1)
		rc = QUEUE_ERROR;
out:
	sqlite3_finalize(st);
	return end(q->db, rc);
}

int
queue_claim(struct queue *q, struct queue_claim *out)
{
	return claim(q, 0, out);
}

int
queue_claim_job(struct queue *q, int64_t job_id, struct queue_claim *out)
{
	return claim(q, job_id, out);
}

int
queue_next_jobs(struct queue *q, struct queue_next *out, size_t max,
    size_t *n)
{
	sqlite3_stmt *st = NULL;
	int step;

	*n = 0;
	/* DISTINCT over the claim index's order stops after `max` jobs. */
	if (sqlite3_prepare_v2(q->db, "SELECT DISTINCT priority, job_id "
	    "FROM job_targets WHERE state = 'queued' "
	    "ORDER BY priority DESC, job_id LIMIT ?", -1, &st, NULL) !=
	    SQLITE_OK) {
		db_log(q->db, "next jobs");
		return QUEUE_ERROR;
	}
	sqlite3_bind_int64(st, 1, (int64_t)max);
	while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		out[*n].priority = sqlite3_column_int(st, 0);
		out[*n].job_id = sqlite3_column_int64(st, 1);
		(*n)++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE && step != SQLITE_ROW) {
		db_log(q->db, "next jobs");
		return QUEUE_ERROR;
	}
	return 0;
}

int
queue_release(struct queue *q, int64_t target_id)
{
	int64_t p[1] = { target_id };
	int rc, n;

	if ((rc = begin(q->db)) != 0)
		return rc;
	/* A target of a canceled job is not queued again: it is canceled. */
	n = run(q->db, "UPDATE job_targets SET "
	    "state = CASE WHEN (SELECT cancel_requested FROM jobs "
	    "  WHERE jobs.id = job_targets.job_id) THEN 'canceled' "
	    "  ELSE 'queued' END, "
	    "finished_at = CASE WHEN (SELECT cancel_requested FROM jobs "
	    "  WHERE jobs.id = job_targets.job_id) "
	    "  THEN CAST(strftime('%s', 'now') AS INTEGER) * 1000 END, "
	    "attempt = max(attempt - 1, 0), started_at = NULL, "
	    "heartbeat_at = NULL WHERE id = ?1 AND state = 'running'", 1, p);
	if (n < 0)
		rc = QUEUE_ERROR;
	else if (n == 0)
		rc = QUEUE_ENOTFOUND;
	else {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(q->db, "SELECT job_id FROM job_targets "
		    "WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, target_id);
			if (sqlite3_step(st) == SQLITE_ROW)
				rc = update_job_state(q->db,
				    sqlite3_column_int64(st, 0), util_now_ms());
			else
				rc = QUEUE_ERROR;
		} else
			rc = QUEUE_ERROR;
		sqlite3_finalize(st);
	}
	return end(q->db, rc);
}

int
queue_heartbeat(struct queue *q, int64_t target_id)
{
	int64_t p[2] = { target_id, util_now_ms() };
	int n = run(q->db, "UPDATE job_targets SET heartbeat_at = ?2 "
	    "WHERE id = ?1 AND state = 'running'", 2, p);

	return n < 0 ? QUEUE_ERROR : n == 0 ? QUEUE_ENOTFOUND : 0;
}

int
queue_set_commit(struct queue *q, int64_t job_id, const char *commit,
    enum job_trust trust)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->db, "UPDATE jobs SET \"commit\" = ?1, "
	    "trust = ?3 WHERE id = ?2", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "set commit");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, commit, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, job_id);
	bind_text_or_null(st, 3, job_trust_name(trust));
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(q->db) == 1 ? 0 : QUEUE_ENOTFOUND;
	else
		db_log(q->db, "set commit");
	sqlite3_finalize(st);
	return rc;
}

int
queue_finish(struct queue *q, int64_t target_id, enum target_state state,
    int exit_status, const char *error, const struct artifact *arts,
    size_t narts)
{
	struct queue_outcome o = {
		.state = state, .exit_status = exit_status, .error = error,
		.arts = arts, .narts = narts,
	};

	return queue_finish_build(q, target_id, &o, NULL);
}

static int
insert_artifacts(sqlite3 *db, int64_t target_id, const struct artifact *arts,
    size_t narts)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (narts == 0)
		return 0;
	if (sqlite3_prepare_v2(db, "INSERT INTO artifacts (target_id, name, "
	    "size, sha256) VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		db_log(db, "artifacts");
		return QUEUE_ERROR;
	}
	for (size_t i = 0; i < narts && rc == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, target_id);
		sqlite3_bind_text(st, 2, arts[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, arts[i].size);
		bind_text_or_null(st, 4, arts[i].sha256);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_log(db, "artifacts");
			rc = QUEUE_ERROR;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int
queue_finish_build(struct queue *q, int64_t target_id,
    const struct queue_outcome *o, enum job_state *job_state)
{
	sqlite3_stmt *st = NULL;
	int64_t now = util_now_ms(), job_id = 0;
	int rc, step;

	assert(target_state_terminal(o->state));
	if ((rc = begin(q->db)) != 0)
		return rc;
	/* A cached target never ran: it gets a start time now. */
	if (sqlite3_prepare_v2(q->db, "UPDATE job_targets SET state = ?2, "
	    "exit_status = ?3, error = ?4, finished_at = ?5, cache_key = ?6, "
	    "cached = ?7, cached_from = ?8, "
	    "started_at = coalesce(started_at, ?5) "
	    "WHERE id = ?1 AND state = 'running' RETURNING job_id", -1, &st,
	    NULL) != SQLITE_OK) {
		db_log(q->db, "finish");
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(st, 1, target_id);
	sqlite3_bind_text(st, 2, target_state_name(o->state), -1,
	    SQLITE_STATIC);
	if (o->exit_status >= 0)
		sqlite3_bind_int(st, 3, o->exit_status);
	else
		sqlite3_bind_null(st, 3);
	bind_text_or_null(st, 4, o->error);
	sqlite3_bind_int64(st, 5, now);
	bind_text_or_null(st, 6, o->state == TARGET_SUCCEEDED ? o->cache_key :
	    NULL);
	sqlite3_bind_int(st, 7, o->cached);
	if (o->cached && o->cached_from > 0)
		sqlite3_bind_int64(st, 8, o->cached_from);
	else
		sqlite3_bind_null(st, 8);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		job_id = sqlite3_column_int64(st, 0);
	else if (step == SQLITE_DONE)
		rc = QUEUE_ENOTFOUND;	/* unknown, or not running */
	else {
		db_log(q->db, "finish");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(st);
	/* The files come in the same transaction as the state. */
	if (rc == 0)
		rc = insert_artifacts(q->db, target_id, o->arts, o->narts);
	if (rc == 0)
		rc = update_job_state(q->db, job_id, now);
	if (rc == 0 && job_state != NULL)
		rc = job_state_of(q->db, job_id, job_state);
out:
	return end(q->db, rc);
}

int
queue_cache_lookup(struct queue *q, const char *key, struct artifact **arts,
    size_t *narts, int64_t *from_job)
{
	sqlite3_stmt *st = NULL;
	struct artifact *v = NULL;
	int64_t tid = 0;
	size_t n = 0;
	int rc = 0, step;

	*arts = NULL;
	*narts = 0;
	/* The newest equal build whose job still has its files. */
	if (sqlite3_prepare_v2(q->db, "SELECT t.id, coalesce(t.cached_from, "
	    "t.job_id) FROM job_targets t "
	    "JOIN jobs j ON j.id = t.job_id WHERE t.cache_key = ? AND "
	    "t.state = 'succeeded' AND j.expired_at IS NULL "
	    "ORDER BY t.id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "cache lookup");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		tid = sqlite3_column_int64(st, 0);
		*from_job = sqlite3_column_int64(st, 1);
	} else if (step == SQLITE_DONE)
		rc = QUEUE_ENOTFOUND;
	else {
		db_log(q->db, "cache lookup");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(st);
	if (rc != 0)
		return rc;
	if (sqlite3_prepare_v2(q->db, "SELECT name, size, sha256 FROM "
	    "artifacts WHERE target_id = ? ORDER BY name", -1, &st, NULL) !=
	    SQLITE_OK) {
		db_log(q->db, "cache lookup");
		return QUEUE_ERROR;
	}
	sqlite3_bind_int64(st, 1, tid);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof *v);
		v[n].name = col_strdup(st, 0);
		v[n].size = sqlite3_column_int64(st, 1);
		v[n].sha256 = col_strdup(st, 2);
		n++;
		/* A row from before the store (no digest) is not reusable. */
		if (v[n - 1].sha256 == NULL)
			rc = QUEUE_ENOTFOUND;
	}
	if (step != SQLITE_DONE) {
		db_log(q->db, "cache lookup");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(st);
	if (rc != 0) {
		artifacts_free(v, n);
		return rc;
	}
	*arts = v;
	*narts = n;
	return 0;
}

int
queue_unsigned_jobs(struct queue *q, int64_t **ids, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int step;

	*ids = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(q->db, "SELECT id FROM jobs WHERE "
	    "sign_pending = 1",
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "unsigned jobs");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*ids = xreallocarray(*ids, cap, sizeof **ids);
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "unsigned jobs");
		free(*ids);
		*ids = NULL;
		*n = 0;
		return QUEUE_ERROR;
	}
	return 0;
}

int
queue_set_signed(struct queue *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->db, "UPDATE jobs SET sums_sha256 = ?2, "
	    "sig_sha256 = ?3, prov_sha256 = ?4, sign_pending = 0 WHERE id = ?1 "
	    "AND state = 'succeeded' AND expired_at IS NULL", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, job_id);
		sqlite3_bind_text(st, 2, sums, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, sig, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, prov, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = sqlite3_changes(q->db) == 1 ? 0 : QUEUE_ENOTFOUND;
	}
	if (rc == QUEUE_ERROR)
		db_log(q->db, "set signed");
	sqlite3_finalize(st);
	return rc;
}

/* One statement with ?1 = an id, ?2 = a reason, ?3 = a time. */
static int
run_reason(sqlite3 *db, const char *sql, int64_t id, const char *reason,
    int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
	}
	if (rc != 0)
		db_log(db, sql);
	sqlite3_finalize(st);
	return rc;
}

int
queue_fail_job(struct queue *q, int64_t job_id, const char *error)
{
	int64_t now = util_now_ms();
	enum job_state js;
	int rc;

	if ((rc = begin(q->db)) != 0)
		return rc;
	if ((rc = job_state_of(q->db, job_id, &js)) != 0)
		goto out;
	if (job_state_terminal(js)) {
		rc = QUEUE_ECONFLICT;
		goto out;
	}
	/* Every target not ended, then the job, fail with the reason. */
	if (run_reason(q->db, "UPDATE job_targets SET state = 'failed', "
	    "error = ?2, finished_at = ?3 WHERE job_id = ?1 AND "
	    "state IN ('queued', 'running')", job_id, error, now) != 0 ||
	    run_reason(q->db, "UPDATE jobs SET state = 'failed', "
	    "error = ?2, finished_at = ?3 WHERE id = ?1", job_id, error,
	    now) != 0)
		rc = QUEUE_ERROR;
out:
	return end(q->db, rc);
}

int
queue_recover(struct queue *q, int max_attempts, int *requeued, int *failed)
{
	int64_t p[2] = { max_attempts, util_now_ms() };
	int rc, n;

	*requeued = *failed = 0;
	if ((rc = begin(q->db)) != 0)
		return rc;
	/* A build whose job was canceled stays canceled, whether it was
	 * running or had been given back to the queue. */
	if (run(q->db, "UPDATE job_targets SET state = 'canceled', "
	    "finished_at = ?2, error = 'canceled; kilnd stopped while it ran' "
	    "WHERE state IN ('running', 'queued') AND job_id IN "
	    "(SELECT id FROM jobs WHERE cancel_requested = 1)", 2, p) < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	n = run(q->db, "UPDATE job_targets SET state = 'failed', "
	    "error = 'interrupted: kilnd stopped during the build ' || attempt "
	    "|| ' time(s)', finished_at = ?2 "
	    "WHERE state = 'running' AND attempt >= ?1", 2, p);
	if (n < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	*failed = n;
	n = run(q->db, "UPDATE job_targets SET state = 'queued', "
	    "started_at = NULL, heartbeat_at = NULL WHERE state = 'running'",
	    0, NULL);
	if (n < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	*requeued = n;
	/* Every job that was running gets its state derived again. */
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(q->db, "SELECT id FROM jobs WHERE state = "
	    "'running' OR (state = 'queued' AND cancel_requested = 1)",
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "recover");
		rc = QUEUE_ERROR;
		goto out;
	}
	/* Collect first: updating rows under a live SELECT is best avoided. */
	int64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	while ((n = sqlite3_step(st)) == SQLITE_ROW) {
		if (nids == cap) {
			cap = cap ? cap * 2 : 16;
			ids = xreallocarray(ids, cap, sizeof *ids);
		}
		ids[nids++] = sqlite3_column_int64(st, 0);
	}
	if (n != SQLITE_DONE) {
		db_log(q->db, "recover");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < nids; i++)
		rc = update_job_state(q->db, ids[i], p[1]);
	free(ids);
out:
	return end(q->db, rc);
}

uint64_t
queue_submit_commits(const struct queue *q)
{
	return q->submit_commits;
}

/* count(*) of one table's rows in a state (a name from job.c). */
static int
count_state(struct queue *q, const char *sql, const char *state, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "count");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		db_log(q->db, "count");
	sqlite3_finalize(st);
	return rc;
}

int
queue_count_jobs(struct queue *q, enum job_state state, int64_t *out)
{
	return count_state(q, "SELECT count(*) FROM jobs WHERE state = ?",
	    job_state_name(state), out);
}

int
queue_count_targets(struct queue *q, enum target_state state, int64_t *out)
{
	/* Queued targets: a walk of the claim index. */
	return count_state(q, "SELECT count(*) FROM job_targets WHERE state = ?",
	    target_state_name(state), out);
}

/* --- retention (the bg connection, off the loop thread) ------------------- */

#define TERMINAL "('succeeded', 'failed', 'canceled')"

/* Append the ids a one-column query returns. */
static int
collect_ids(sqlite3 *db, sqlite3_stmt *st, int64_t **ids, size_t *n,
    size_t *cap)
{
	int step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*ids = xreallocarray(*ids, *cap, sizeof **ids);
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (step != SQLITE_DONE) {
		db_log(db, "retention");
		return QUEUE_ERROR;
	}
	return 0;
}

/*
 * A set of blob digests (the 64 hex characters of a sha256), open
 * addressing: retention meets each artifact row once.
 */
struct blobset {
	char (*slot)[65];
	size_t cap, n;
};

static size_t
blobset_home(const struct blobset *b, const char *sha)
{
	size_t h = 5381;

	for (const char *p = sha; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % b->cap;
}

static bool
blobset_has(const struct blobset *b, const char *sha)
{
	if (b->cap == 0)
		return false;
	for (size_t i = blobset_home(b, sha); b->slot[i][0] != '\0';
	    i = (i + 1) % b->cap)
		if (strcmp(b->slot[i], sha) == 0)
			return true;
	return false;
}

/* true when `sha` was added, false when it was there already. */
static bool
blobset_add(struct blobset *b, const char *sha)
{
	size_t i;

	if (blobset_has(b, sha))
		return false;
	if (2 * (b->n + 1) > b->cap) {
		struct blobset big = { NULL, b->cap ? b->cap * 2 : 256, 0 };
		big.slot = xcalloc(big.cap, sizeof *big.slot);
		for (size_t j = 0; j < b->cap; j++)
			if (b->slot[j][0] != '\0')
				blobset_add(&big, b->slot[j]);
		free(b->slot);
		*b = big;
	}
	for (i = blobset_home(b, sha); b->slot[i][0] != '\0';
	    i = (i + 1) % b->cap)
		;
	snprintf(b->slot[i], sizeof b->slot[i], "%s", sha);
	b->n++;
	return true;
}

static void
blobset_clear(struct blobset *b)
{
	if (b->n > 0)
		memset(b->slot, 0, b->cap * sizeof *b->slot);
	b->n = 0;
}

static void
add_id(int64_t id, int64_t **ids, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*ids = xreallocarray(*ids, *cap, sizeof **ids);
	}
	(*ids)[(*n)++] = id;
}

/* The blobs of one job, until retention decides to keep it or not. */
struct job_blobs {
	int64_t id;
	struct { char sha[65]; uint64_t size; } *v;
	size_t n, cap;
	uint64_t fresh;		/* bytes of the blobs no kept job holds */
	struct blobset seen;	/* its own, to count a blob once */
};

/*
 * Keep the job when its fresh bytes fit, or when it costs nothing more
 * (expiring it would free nothing); expire it otherwise, and from then
 * on every older job that costs something: the newest are kept.  *sum
 * is UINT64_MAX once the store is full.
 */
static void
decide(struct job_blobs *jb, struct blobset *kept, uint64_t *sum,
    uint64_t max_bytes, int64_t **ids, size_t *n, size_t *cap)
{
	if (jb->fresh == 0 || (*sum != UINT64_MAX &&
	    jb->fresh <= max_bytes - *sum)) {
		for (size_t i = 0; i < jb->n; i++)
			blobset_add(kept, jb->v[i].sha);
		if (*sum != UINT64_MAX)
			*sum += jb->fresh;
	} else {
		add_id(jb->id, ids, n, cap);
		*sum = UINT64_MAX;
	}
	jb->n = 0;
	jb->fresh = 0;
	blobset_clear(&jb->seen);
}

/*
 * The jobs to expire, newest kept first, so that the blobs of the kept
 * ones fit in max_bytes.  A blob counts once however many jobs share it
 * (a reused build points at the blobs of the job that built it): a job is
 * charged only the blobs no newer kept job holds.
 */
static int
over_cap(sqlite3 *db, uint64_t max_bytes, int64_t **ids, size_t *n,
    size_t *cap)
{
	struct blobset kept = { NULL, 0, 0 };
	struct job_blobs jb = { 0 };
	sqlite3_stmt *st = NULL;
	uint64_t sum = 0;
	int step, ret = QUEUE_ERROR;

	if (sqlite3_prepare_v2(db, "SELECT j.id, a.sha256, a.size "
	    "FROM jobs j JOIN job_targets t ON t.job_id = j.id "
	    "JOIN artifacts a ON a.target_id = t.id "
	    "WHERE j.state IN " TERMINAL " AND j.expired_at IS NULL "
	    "ORDER BY j.id DESC", -1, &st, NULL) != SQLITE_OK) {
		db_log(db, "retention");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *sha = (const char *)sqlite3_column_text(st, 1);
		sqlite3_int64 size = sqlite3_column_int64(st, 2);

		if (jb.id != 0 && id != jb.id)
			decide(&jb, &kept, &sum, max_bytes, ids, n, cap);
		jb.id = id;
		if (sha == NULL || strlen(sha) != 64 || !blobset_add(&jb.seen, sha))
			continue;
		if (jb.n == jb.cap) {
			jb.cap = jb.cap ? jb.cap * 2 : 16;
			jb.v = xreallocarray(jb.v, jb.cap, sizeof *jb.v);
		}
		memcpy(jb.v[jb.n].sha, sha, 65);
		jb.v[jb.n].size = size > 0 ? (uint64_t)size : 0;
		if (!blobset_has(&kept, sha))
			jb.fresh += jb.v[jb.n].size;
		jb.n++;
	}
	if (jb.id != 0 && step == SQLITE_DONE)
		decide(&jb, &kept, &sum, max_bytes, ids, n, cap);
	if (step != SQLITE_DONE)
		db_log(db, "retention");
	else
		ret = 0;
	sqlite3_finalize(st);
	free(jb.v);
	free(jb.seen.slot);
	free(kept.slot);
	return ret;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
queue_expire(struct queue *q, const struct queue_retention *r, int64_t now,
    int64_t **out, size_t *nout)
{
	sqlite3 *db = q->bg;
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0, u = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if ((rc = begin(db)) != 0)
		return rc;
	if (r->keep_days > 0) {
		if (sqlite3_prepare_v2(db, "SELECT id FROM jobs WHERE state IN "
		    TERMINAL " AND expired_at IS NULL AND finished_at < ?",
		    -1, &st, NULL) != SQLITE_OK)
			rc = QUEUE_ERROR;
		else {
			sqlite3_bind_int64(st, 1, now -
			    (int64_t)r->keep_days * 86400000);
			rc = collect_ids(db, st, &ids, &n, &cap);
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc == 0 && r->keep_jobs > 0) {
		if (sqlite3_prepare_v2(db, "SELECT id FROM (SELECT id, "
		    "expired_at, row_number() OVER (PARTITION BY repo ORDER BY "
		    "id DESC) AS rn FROM jobs WHERE state IN " TERMINAL ") "
		    "WHERE rn > ? AND expired_at IS NULL", -1, &st, NULL) !=
		    SQLITE_OK)
			rc = QUEUE_ERROR;
		else {
			sqlite3_bind_int64(st, 1, r->keep_jobs);
			rc = collect_ids(db, st, &ids, &n, &cap);
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc == 0 && r->max_bytes > 0)
		rc = over_cap(db, r->max_bytes, &ids, &n, &cap);
	if (rc != 0) {
		if (rc == QUEUE_ERROR)
			db_log(db, "retention");
		goto out;
	}
	/* One job may be chosen by several rules. */
	if (n > 1)
		qsort(ids, n, sizeof *ids, cmp_id);
	for (size_t i = 0; i < n; i++)
		if (u == 0 || ids[u - 1] != ids[i])
			ids[u++] = ids[i];
	n = u;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int64_t p[2] = { ids[i], now };

		if (run(db, "DELETE FROM artifacts WHERE target_id IN "
		    "(SELECT id FROM job_targets WHERE job_id = ?1)", 1, p) < 0 ||
		    run(db, "UPDATE job_targets SET cache_key = NULL "
		    "WHERE job_id = ?1", 1, p) < 0 ||
		    run(db, "UPDATE jobs SET expired_at = ?2, sums_sha256 = NULL, "
		    "sig_sha256 = NULL, prov_sha256 = NULL, sign_pending = 0 "
		    "WHERE id = ?1", 2, p) < 0)
			rc = QUEUE_ERROR;
	}
out:
	rc = end(db, rc);
	if (rc != 0) {
		free(ids);
		return rc;
	}
	*out = ids;
	*nout = n;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
queue_referenced_blobs(struct queue *q, char ***out, size_t *nout)
{
	sqlite3 *db = q->bg;
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int step;

	*out = NULL;
	*nout = 0;
	if (sqlite3_prepare_v2(db, "SELECT sha256 FROM artifacts "
	    "WHERE sha256 IS NOT NULL UNION "
	    "SELECT sums_sha256 FROM jobs WHERE sums_sha256 IS NOT NULL UNION "
	    "SELECT sig_sha256 FROM jobs WHERE sig_sha256 IS NOT NULL UNION "
	    "SELECT prov_sha256 FROM jobs WHERE prov_sha256 IS NOT NULL",
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(db, "referenced blobs");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof *v);
		}
		v[n++] = col_strdup(st, 0);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(db, "referenced blobs");
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return QUEUE_ERROR;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_str);
	*out = v;
	*nout = n;
	return 0;
}

/* --- webhook deliveries and result callbacks ------------------------------ */

/*
 * The job id of the one row `sql` selects with the text parameters
 * (NULL-terminated): 0, QUEUE_ENOTFOUND or QUEUE_ERROR (`what` names the
 * lookup in the log).
 */
static int
lookup_job_id(struct queue *q, const char *sql, const char *what,
    int64_t *job_id, ...)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR, step, n = 0;
	const char *arg;
	va_list ap;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, what);
		return QUEUE_ERROR;
	}
	va_start(ap, job_id);
	while ((arg = va_arg(ap, const char *)) != NULL)
		sqlite3_bind_text(st, ++n, arg, -1, SQLITE_STATIC);
	va_end(ap);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*job_id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (step == SQLITE_DONE)
		rc = QUEUE_ENOTFOUND;
	else
		db_log(q->db, what);
	sqlite3_finalize(st);
	return rc;
}

int
queue_delivery_job(struct queue *q, const char *forge, const char *id,
    int64_t *job_id)
{
	return lookup_job_id(q, "SELECT job_id FROM deliveries WHERE "
	    "forge = ? AND id = ?", "delivery", job_id, forge, id,
	    (const char *)NULL);
}

int
queue_push_job(struct queue *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id)
{
	return lookup_job_id(q, "SELECT job_id FROM pushes WHERE "
	    "project = ? AND ref = ? AND pushed_commit = ?", "push", job_id,
	    project, ref, commit, (const char *)NULL);
}

int
queue_notify_due(struct queue *q, int64_t now, struct queue_notify **out,
    size_t *nout)
{
	sqlite3_stmt *st = NULL;
	struct queue_notify *v = NULL;
	size_t n = 0;
	int step;

	*out = NULL;
	*nout = 0;
	/* A succeeded job is announced once it is signed, so that the
	 * receiver can fetch its SHA256SUMS. */
	if (sqlite3_prepare_v2(q->db, "SELECT id, notify_attempts, "
	    "coalesce(finished_at, 0) FROM jobs WHERE notify_state = 'pending' "
	    "AND notify_next_at <= ? AND (state <> 'succeeded' OR "
	    "sums_sha256 IS NOT NULL OR expired_at IS NOT NULL) "
	    "ORDER BY notify_next_at LIMIT 64", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "notify due");
		return QUEUE_ERROR;
	}
	sqlite3_bind_int64(st, 1, now);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof *v);
		v[n].job_id = sqlite3_column_int64(st, 0);
		v[n].attempts = sqlite3_column_int(st, 1);
		v[n].finished_at = sqlite3_column_int64(st, 2);
		n++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "notify due");
		free(v);
		return QUEUE_ERROR;
	}
	*out = v;
	*nout = n;
	return 0;
}

int
queue_notify_result(struct queue *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->db, "UPDATE jobs SET notify_state = ?2, "
	    "notify_error = ?3, notify_next_at = ?4, notify_attempts = "
	    "notify_attempts + 1 WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, job_id);
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
		bind_text_or_null(st, 3, error);
		if (next_at > 0)
			sqlite3_bind_int64(st, 4, next_at);
		else
			sqlite3_bind_null(st, 4);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
	}
	if (rc != 0)
		db_log(q->db, "notify result");
	sqlite3_finalize(st);
	return rc;
}


/* One state column counted in one pass: SELECT state, count(*) ... */
static int
count_states(struct queue *q, const char *sql, int64_t *out, int nstates,
    int (*parse)(const char *, int *))
{
	sqlite3_stmt *st = NULL;
	int step;

	for (int i = 0; i < nstates; i++)
		out[i] = 0;
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "count");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int s;
		if (parse((const char *)sqlite3_column_text(st, 0), &s) == 0)
			out[s] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "count");
		return QUEUE_ERROR;
	}
	return 0;
}

static int
parse_job_state(const char *s, int *out)
{
	enum job_state v;

	if (s == NULL || job_state_parse(s, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int
parse_target_state(const char *s, int *out)
{
	enum target_state v;

	if (s == NULL || target_state_parse(s, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

int
queue_count_by_state(struct queue *q, int64_t jobs[JOB_STATE_COUNT],
    int64_t targets[TARGET_STATE_COUNT])
{
	if (count_states(q, "SELECT state, count(*) FROM jobs GROUP BY state",
	    jobs, JOB_STATE_COUNT, parse_job_state) != 0)
		return QUEUE_ERROR;
	return count_states(q, "SELECT state, count(*) FROM job_targets "
	    "GROUP BY state", targets, TARGET_STATE_COUNT, parse_target_state);
}

int
queue_set_toolchain(struct queue *q, int64_t target_id, const char *toolchain)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->db, "UPDATE job_targets SET toolchain = ? "
	    "WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "set toolchain");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, toolchain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, target_id);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(q->db) == 1 ? 0 : QUEUE_ENOTFOUND;
	else
		db_log(q->db, "set toolchain");
	sqlite3_finalize(st);
	return rc;
}

int
queue_expand_targets(struct queue *q, int64_t job_id, int64_t placeholder_id,
    char *const *targets, size_t n)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	int rc = QUEUE_ERROR;

	if (begin(q->db) != 0)
		return QUEUE_ERROR;
	if (sqlite3_prepare_v2(q->db, "DELETE FROM job_targets WHERE id = ?1 "
	    "AND job_id = ?2 AND target = ?3", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "INSERT INTO job_targets (job_id, target, "
	    "priority, state) SELECT ?1, ?2, priority, 'queued' FROM jobs "
	    "WHERE id = ?1", -1, &ins, NULL) != SQLITE_OK) {
		db_log(q->db, "expand targets");
		goto out;
	}
	sqlite3_bind_int64(del, 1, placeholder_id);
	sqlite3_bind_int64(del, 2, job_id);
	sqlite3_bind_text(del, 3, JOB_TARGETS_FROM_REPO, -1, SQLITE_STATIC);
	if (sqlite3_step(del) != SQLITE_DONE) {
		db_log(q->db, "expand targets");
		goto out;
	}
	if (sqlite3_changes(q->db) != 1) {
		rc = QUEUE_ENOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, job_id);
		sqlite3_bind_text(ins, 2, targets[i], -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			db_log(q->db, "expand targets");
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	return end(q->db, rc);
}
