/*
 * Inside daemon/db/: the queue's definition and the helpers its files
 * share (bodies in db.c).  Nothing outside daemon/db/ includes this; the
 * rest of kilnd sees only queue.h.
 */
#ifndef KILN_DB_INT_H
#define KILN_DB_INT_H

#include <stdint.h>

#include <sqlite3.h>

#include "queue.h"

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

/*
 * The columns jobs.c reads a job and a target from, in its order; db.c
 * prepares the statements that select them.
 */
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

/* Log the connection's last error, with what was being done. */
void db_log(sqlite3 *db, const char *what);
/* Run SQL without results (logged on failure): 0 or QUEUE_ERROR. */
int db_exec(sqlite3 *db, const char *sql);
/* Run one statement with int64 parameters; returns changes or -1. */
int db_run(sqlite3 *db, const char *sql, int nparams, const int64_t *params);

/*
 * A write transaction: db_begin() takes the write lock at once
 * (BEGIN IMMEDIATE); db_end() commits when rc is 0, rolls back otherwise,
 * and returns rc (QUEUE_ERROR when the commit itself failed).
 */
int db_begin(sqlite3 *db);
int db_end(sqlite3 *db, int rc);

/* Bind `s`, or NULL when it is NULL (the string must outlive the step). */
void db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);
/* A malloc'd copy of a text column, NULL for NULL. */
char *db_col_strdup(sqlite3_stmt *st, int i);

/*
 * Derive job_id's state from its targets' inside the caller's
 * transaction, and mark it to be signed or its callback due when that
 * state asks for it.
 */
int db_update_job_state(sqlite3 *db, int64_t job_id, int64_t now);
/* A job's state: 0, QUEUE_ENOTFOUND or QUEUE_ERROR. */
int db_job_state_of(sqlite3 *db, int64_t id, enum job_state *out);

#endif
