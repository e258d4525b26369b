/*
 * A job's targets through their life: claiming the next one (the
 * scheduler's order), heartbeats, giving one back, the toolchain it uses,
 * planning a job's targets from its repository, finishing one with its
 * artifacts, the build cache lookup, and recovery after a crash.
 */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db-int.h"
#include "util.h"
#include "xmalloc.h"

/*
 * The queue's order, read on every kick of the scheduler: each is a walk
 * of an index (schema 010) that stops at its LIMIT however many targets
 * are queued; tests/unit/test_queue_sqlite.c checks their plans.  The
 * next queued target: highest priority, oldest job, then the job's
 * targets in order.  Each passes over the targets this host (?2)
 * refused while the refusal holds (at ?3, now: refusals.c), one probe of
 * target_refusals' primary key per queued row walked.
 */
#define NOT_REFUSED "NOT EXISTS (SELECT 1 FROM target_refusals " \
	"WHERE target_refusals.target_id = job_targets.id AND " \
	"target_refusals.host = ?2 AND target_refusals.expires_at > ?3)"
const char db_sql_claim[] = "SELECT id, job_id, target, attempt "
    "FROM job_targets WHERE state = 'queued' AND " NOT_REFUSED " "
    "ORDER BY priority DESC, job_id, id LIMIT 1";
/* A job's next queued target (?1): a walk of that job's queued targets. */
const char db_sql_claim_job[] = "SELECT id, job_id, target, attempt "
    "FROM job_targets WHERE state = 'queued' AND job_id = ?1 AND "
    NOT_REFUSED " ORDER BY id LIMIT 1";
/* The first jobs in the queue's order, each once, at most ?1.  GROUP BY
 * in index order streams (DISTINCT kept a temporary b-tree of what it
 * had seen). */
const char db_sql_next_jobs[] = "SELECT priority, job_id FROM job_targets "
    "WHERE state = 'queued' AND " NOT_REFUSED " GROUP BY priority, job_id "
    "ORDER BY priority DESC, job_id LIMIT ?1";

/* Claim the next queued target, of job_id when it is not 0. */
static int
claim(struct sqlq *q, int64_t job_id, struct queue_claim *out)
{
	sqlite3_stmt *st = NULL, *st2;
	int64_t now = util_now_ms();
	int rc, step;

	if ((rc = db_begin(q)) != 0)
		return rc;
	if ((st = db_stmt(q, job_id ? db_sql_claim_job : db_sql_claim)) ==
	    NULL) {
		rc = QUEUE_ERROR;
		goto out;
	}
	if (job_id)
		sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_text(st, 2, q->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = QUEUE_EEMPTY;
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_log(q->wr, "claim");
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
	if ((st2 = db_stmt(q, "UPDATE job_targets SET state = 'running', "
	    "attempt = attempt + 1, started_at = ?2, heartbeat_at = ?2, "
	    "finished_at = NULL, exit_status = NULL, error = NULL, "
	    "host = ?3 WHERE id = ?1")) == NULL) {
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(st2, 1, out->target_id);
	sqlite3_bind_int64(st2, 2, now);
	sqlite3_bind_text(st2, 3, q->host, -1, SQLITE_STATIC);
	step = sqlite3_step(st2);
	sqlite3_reset(st2);
	if (step != SQLITE_DONE || sqlite3_changes(q->wr) != 1 ||
	    db_run(q, "UPDATE jobs SET state = 'running', "
	    "started_at = coalesce(started_at, ?2) WHERE id = ?3", 3, p) != 1)
		rc = QUEUE_ERROR;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return db_end(q, rc);
}

int
db_claim(struct sqlq *q, struct queue_claim *out)
{
	return claim(q, 0, out);
}

int
db_claim_job(struct sqlq *q, int64_t job_id, struct queue_claim *out)
{
	return claim(q, job_id, out);
}

int
db_next_jobs(struct sqlq *q, struct queue_next *out, size_t max,
    size_t *n)
{
	sqlite3_stmt *st = NULL;
	int step;

	*n = 0;
	if (sqlite3_prepare_v2(q->db, db_sql_next_jobs, -1, &st, NULL) !=
	    SQLITE_OK) {
		db_log(q->db, "next jobs");
		return QUEUE_ERROR;
	}
	sqlite3_bind_int64(st, 1, (int64_t)max);
	sqlite3_bind_text(st, 2, q->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, util_now_ms());
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

/*
 * Why a write fenced by (target, attempt) changed nothing: no such
 * target, or it is not running that attempt any more (superseded).
 */
int
db_not_running(struct sqlq *q, int64_t target_id)
{
	sqlite3_stmt *st;
	int step;

	if ((st = db_stmt(q, "SELECT 1 FROM job_targets WHERE id = ?")) ==
	    NULL)
		return QUEUE_ERROR;
	sqlite3_bind_int64(st, 1, target_id);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step == SQLITE_ROW)
		return QUEUE_ECONFLICT;
	if (step == SQLITE_DONE)
		return QUEUE_ENOTFOUND;
	db_log(q->wr, "target");
	return QUEUE_ERROR;
}

int
db_release(struct sqlq *q, int64_t target_id, int attempt)
{
	int64_t p[2] = { target_id, attempt };
	int rc, n;

	if ((rc = db_begin(q)) != 0)
		return rc;
	/* A target of a canceled job is not queued again: it is canceled. */
	n = db_run(q, "UPDATE job_targets SET "
	    "state = CASE WHEN (SELECT cancel_requested FROM jobs "
	    "  WHERE jobs.id = job_targets.job_id) THEN 'canceled' "
	    "  ELSE 'queued' END, "
	    "finished_at = CASE WHEN (SELECT cancel_requested FROM jobs "
	    "  WHERE jobs.id = job_targets.job_id) "
	    "  THEN CAST(strftime('%s', 'now') AS INTEGER) * 1000 END, "
	    "attempt = max(attempt - 1, 0), started_at = NULL, "
	    "heartbeat_at = NULL WHERE id = ?1 AND attempt = ?2 AND "
	    "state = 'running'", 2, p);
	if (n < 0)
		rc = QUEUE_ERROR;
	else if (n == 0)
		rc = db_not_running(q, target_id);
	else {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(q->wr, "SELECT job_id FROM job_targets "
		    "WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, target_id);
			if (sqlite3_step(st) == SQLITE_ROW)
				rc = db_update_job_state(q,
				    sqlite3_column_int64(st, 0), util_now_ms());
			else
				rc = QUEUE_ERROR;
		} else
			rc = QUEUE_ERROR;
		sqlite3_finalize(st);
	}
	return db_end(q, rc);
}

int
db_heartbeat(struct sqlq *q, int64_t target_id, int attempt)
{
	int64_t p[3] = { target_id, util_now_ms(), attempt };
	int n = db_run(q, "UPDATE job_targets SET heartbeat_at = ?2 "
	    "WHERE id = ?1 AND attempt = ?3 AND state = 'running'", 3, p);
	sqlite3_stmt *st;
	int step, canceled;

	if (n <= 0)
		return n < 0 ? QUEUE_ERROR : db_not_running(q, target_id);
	/* As PostgreSQL's (a cancel another host made): the writer rolls
	 * this beat back, which one host never misses -- it holds the
	 * target it stops, and the reconciler leaves held targets alone. */
	if ((st = db_stmt(q, "SELECT j.cancel_requested FROM jobs j "
	    "JOIN job_targets t ON t.job_id = j.id WHERE t.id = ?")) == NULL)
		return QUEUE_ERROR;
	sqlite3_bind_int64(st, 1, target_id);
	step = sqlite3_step(st);
	canceled = step == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	if (step != SQLITE_ROW) {
		db_log(q->wr, "heartbeat");
		return QUEUE_ERROR;
	}
	return canceled ? QUEUE_ECANCELED : 0;
}

int
db_set_outputs(struct sqlq *q, int64_t job_id, const char *outputs,
    bool release)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->wr, "UPDATE jobs SET outputs = ?, release = ? "
	    "WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->wr, "set outputs");
		return QUEUE_ERROR;
	}
	if (outputs != NULL)
		sqlite3_bind_text(st, 1, outputs, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_int(st, 2, release);
	sqlite3_bind_int64(st, 3, job_id);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(q->wr) == 1 ? 0 : QUEUE_ENOTFOUND;
	else
		db_log(q->wr, "set outputs");
	sqlite3_finalize(st);
	return rc;
}

int
db_set_verified(struct sqlq *q, int64_t target_id, int attempt,
    const char *verified)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->wr, "UPDATE job_targets SET verified = ? "
	    "WHERE id = ? AND attempt = ?", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->wr, "set verified");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, verified, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, target_id);
	sqlite3_bind_int(st, 3, attempt);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(q->wr) == 1 ? 0 : QUEUE_ECONFLICT;
	else
		db_log(q->wr, "set verified");
	sqlite3_finalize(st);
	return rc;
}

int
db_set_toolchain(struct sqlq *q, int64_t target_id, const char *toolchain)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->wr, "UPDATE job_targets SET toolchain = ? "
	    "WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->wr, "set toolchain");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, toolchain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, target_id);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(q->wr) == 1 ? 0 : QUEUE_ENOTFOUND;
	else
		db_log(q->wr, "set toolchain");
	sqlite3_finalize(st);
	return rc;
}

int
db_expand_targets(struct sqlq *q, int64_t job_id, int64_t placeholder_id,
    char *const *targets, size_t n)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	int rc = QUEUE_ERROR;

	if (db_begin(q) != 0)
		return QUEUE_ERROR;
	if (sqlite3_prepare_v2(q->wr, "DELETE FROM job_targets WHERE id = ?1 "
	    "AND job_id = ?2 AND target = ?3", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->wr, "INSERT INTO job_targets (job_id, target, "
	    "priority, state) SELECT ?1, ?2, priority, 'queued' FROM jobs "
	    "WHERE id = ?1", -1, &ins, NULL) != SQLITE_OK) {
		db_log(q->wr, "expand targets");
		goto out;
	}
	sqlite3_bind_int64(del, 1, placeholder_id);
	sqlite3_bind_int64(del, 2, job_id);
	sqlite3_bind_text(del, 3, JOB_TARGETS_FROM_REPO, -1, SQLITE_STATIC);
	if (sqlite3_step(del) != SQLITE_DONE) {
		db_log(q->wr, "expand targets");
		goto out;
	}
	if (sqlite3_changes(q->wr) != 1) {
		rc = QUEUE_ENOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, job_id);
		sqlite3_bind_text(ins, 2, targets[i], -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			db_log(q->wr, "expand targets");
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	return db_end(q, rc);
}

static int
insert_artifacts(struct sqlq *q, int64_t target_id,
    const struct artifact *arts, size_t narts)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (narts == 0)
		return 0;
	if ((st = db_stmt(q, "INSERT INTO artifacts (target_id, name, "
	    "size, sha256) VALUES (?, ?, ?, ?)")) == NULL)
		return QUEUE_ERROR;
	for (size_t i = 0; i < narts && rc == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, target_id);
		sqlite3_bind_text(st, 2, arts[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, arts[i].size);
		db_bind_text_or_null(st, 4, arts[i].sha256);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_log(q->wr, "artifacts");
			rc = QUEUE_ERROR;
		}
	}
	sqlite3_reset(st);
	return rc;
}

int
db_finish_build(struct sqlq *q, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state)
{
	sqlite3_stmt *st = NULL;
	int64_t now = util_now_ms(), job_id = 0;
	int rc, step;

	assert(target_state_terminal(o->state));
	if ((rc = db_begin(q)) != 0)
		return rc;
	/* A cached target never ran: it gets a start time now. */
	if ((st = db_stmt(q, "UPDATE job_targets SET state = ?2, "
	    "exit_status = ?3, error = ?4, finished_at = ?5, cache_key = ?6, "
	    "cached = ?7, cached_from = ?8, "
	    "started_at = coalesce(started_at, ?5) "
	    "WHERE id = ?1 AND attempt = ?9 AND state = 'running' "
	    "RETURNING job_id")) == NULL) {
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
	db_bind_text_or_null(st, 4, o->error);
	sqlite3_bind_int64(st, 5, now);
	db_bind_text_or_null(st, 6, o->state == TARGET_SUCCEEDED ?
	    o->cache_key : NULL);
	sqlite3_bind_int(st, 7, o->cached);
	if (o->cached && o->cached_from > 0)
		sqlite3_bind_int64(st, 8, o->cached_from);
	else
		sqlite3_bind_null(st, 8);
	sqlite3_bind_int(st, 9, attempt);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		job_id = sqlite3_column_int64(st, 0);
	else if (step != SQLITE_DONE) {
		db_log(q->wr, "finish");
		rc = QUEUE_ERROR;
	}
	sqlite3_reset(st);	/* a RETURNING statement ends its change here */
	/* Unknown, or not running this attempt: nothing is recorded. */
	if (step == SQLITE_DONE)
		rc = db_not_running(q, target_id);
	/* The files come in the same transaction as the state. */
	if (rc == 0)
		rc = insert_artifacts(q, target_id, o->arts, o->narts);
	if (rc == 0)
		rc = db_update_job_state(q, job_id, now);
	if (rc == 0 && job_state != NULL)
		rc = db_job_state_of(q, job_id, job_state);
out:
	return db_end(q, rc);
}

int
db_cache_lookup(struct sqlq *q, const char *key, struct artifact **arts,
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
		v[n].name = db_col_strdup(st, 0);
		v[n].size = sqlite3_column_int64(st, 1);
		v[n].sha256 = db_col_strdup(st, 2);
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
sqlite_recover(struct queue *base, int max_attempts, int *requeued, int *failed)
{
	struct sqlq *q = (struct sqlq *)base;
	int64_t p[2] = { max_attempts, util_now_ms() };
	int rc, n;

	*requeued = *failed = 0;
	if ((rc = db_begin(q)) != 0)
		return rc;
	/* A build whose job was canceled stays canceled, whether it was
	 * running or had been given back to the queue. */
	if (db_run(q, "UPDATE job_targets SET state = 'canceled', "
	    "finished_at = ?2, error = 'canceled; kilnd stopped while it ran' "
	    "WHERE state IN ('running', 'queued') AND job_id IN "
	    "(SELECT id FROM jobs WHERE cancel_requested = 1)", 2, p) < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	n = db_run(q, "UPDATE job_targets SET state = 'failed', "
	    "error = 'interrupted: kilnd stopped during the build ' || attempt "
	    "|| ' time(s)', finished_at = ?2 "
	    "WHERE state = 'running' AND attempt >= ?1", 2, p);
	if (n < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	*failed = n;
	n = db_run(q, "UPDATE job_targets SET state = 'queued', "
	    "started_at = NULL, heartbeat_at = NULL WHERE state = 'running'",
	    0, NULL);
	if (n < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	*requeued = n;
	/* Every job that was running gets its state derived again. */
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(q->wr, "SELECT id FROM jobs WHERE state = "
	    "'running' OR (state = 'queued' AND cancel_requested = 1)",
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(q->wr, "recover");
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
		db_log(q->wr, "recover");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < nids; i++)
		rc = db_update_job_state(q, ids[i], p[1]);
	free(ids);
out:
	return db_end(q, rc);
}

int
db_stale_targets(struct sqlq *q, int64_t before, int64_t *ids,
    size_t max, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int step;

	*n = 0;
	/* A walk of the running targets: as many as builds run. */
	if (sqlite3_prepare_v2(q->db, "SELECT id FROM job_targets WHERE "
	    "state = 'running' AND coalesce(heartbeat_at, 0) < ?1 "
	    "ORDER BY id LIMIT ?2", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "stale targets");
		return QUEUE_ERROR;
	}
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "stale targets");
		return QUEUE_ERROR;
	}
	return 0;
}

/* db_reclaim's conditions: the target's job is being canceled; the
 * target ends there (canceled, or failed after its attempts). */
#define RECLAIM_CANCELED "(SELECT cancel_requested FROM jobs " \
	"WHERE jobs.id = job_targets.job_id) = 1"
#define RECLAIM_ENDS "(" RECLAIM_CANCELED " OR attempt >= ?3)"

int
db_reclaim(struct sqlq *q, int64_t target_id, int64_t before,
    int max_attempts, int64_t now)
{
	int64_t p[4] = { target_id, before, max_attempts, now };
	sqlite3_stmt *st = NULL;
	int64_t job_id = 0;
	int rc, n;

	if ((rc = db_begin(q)) != 0)
		return rc;
	/* Checked again here: a heartbeat or a finish may have come since
	 * the target was read as stale.  One that ends here (canceled or
	 * failed) keeps its start and gets its end; one queued again has
	 * neither. */
	n = db_run(q, "UPDATE job_targets SET "
	    "state = CASE WHEN " RECLAIM_CANCELED " THEN 'canceled' "
	    "  WHEN attempt >= ?3 THEN 'failed' ELSE 'queued' END, "
	    "error = CASE WHEN " RECLAIM_CANCELED " THEN error "
	    "  WHEN attempt >= ?3 THEN 'lost: its build stopped "
	    "  reporting (no heartbeat within target_lease), ' || attempt || "
	    "  ' run(s)' ELSE error END, "
	    "finished_at = CASE WHEN " RECLAIM_ENDS " THEN ?4 ELSE NULL END, "
	    "started_at = CASE WHEN " RECLAIM_ENDS " THEN started_at "
	    "  ELSE NULL END, heartbeat_at = NULL "
	    "WHERE id = ?1 AND state = 'running' AND "
	    "coalesce(heartbeat_at, 0) < ?2", 4, p);
	if (n < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	if (n == 0) {
		rc = QUEUE_ENOTFOUND;
		goto out;
	}
	if (sqlite3_prepare_v2(q->wr, "SELECT job_id FROM job_targets "
	    "WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->wr, "reclaim");
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(st, 1, target_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		job_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	rc = job_id != 0 ? db_update_job_state(q, job_id, now) :
	    QUEUE_ERROR;
out:
	return db_end(q, rc);
}
