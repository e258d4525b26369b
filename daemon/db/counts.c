/*
 * Counts of jobs and targets by state, for /metrics and /healthz.
 */
#include "config.h"

#include <sqlite3.h>

#include "db-int.h"

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
