/*
 * What a job owes or owed the outside: the webhook deliveries and pushes
 * that made it (a redelivery finds its job again), and its result
 * callback (due, attempted, delivered or failed).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "db-int.h"
#include "xmalloc.h"

/*
 * The job id of the one row `sql` selects with the text parameters
 * (NULL-terminated): 0, QUEUE_ENOTFOUND or QUEUE_ERROR (`what` names the
 * lookup in the log).
 */
static int
lookup_job_id(struct sqlq *q, const char *sql, const char *what,
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
db_delivery_job(struct sqlq *q, const char *forge, const char *id,
    int64_t *job_id)
{
	return lookup_job_id(q, "SELECT job_id FROM deliveries WHERE "
	    "forge = ? AND id = ?", "delivery", job_id, forge, id,
	    (const char *)NULL);
}

int
db_push_job(struct sqlq *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id)
{
	return lookup_job_id(q, "SELECT job_id FROM pushes WHERE "
	    "project = ? AND ref = ? AND pushed_commit = ?", "push", job_id,
	    project, ref, commit, (const char *)NULL);
}

int
db_due_notifies(struct sqlq *q, int64_t now, struct queue_notify **out,
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
db_notify_result(struct sqlq *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->wr, "UPDATE jobs SET notify_state = ?2, "
	    "notify_error = ?3, notify_next_at = ?4, notify_attempts = "
	    "notify_attempts + 1 WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, job_id);
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
		db_bind_text_or_null(st, 3, error);
		if (next_at > 0)
			sqlite3_bind_int64(st, 4, next_at);
		else
			sqlite3_bind_null(st, 4);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
	}
	if (rc != 0)
		db_log(q->wr, "notify result");
	sqlite3_finalize(st);
	return rc;
}
