/*
 * Jobs as a whole: storing new ones (the submitter's batches, on the
 * writer's connection), reading one or a page of them with their targets
 * and artifacts, and the changes a client or the scheduler makes to a job:
 * cancel, priority, resolved commit, failing it before it builds.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db-int.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

int
db_submit(struct sqlq *q, struct job *const *jobs, size_t n)
{
	int rc = QUEUE_ERROR;

	if (n == 0)
		return 0;
	if (db_begin(q) != 0)
		return QUEUE_ERROR;
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobs[i];

		sqlite3_reset(q->ins_job);
		sqlite3_bind_text(q->ins_job, 1, j->repo, -1, SQLITE_STATIC);
		sqlite3_bind_text(q->ins_job, 2, j->ref, -1, SQLITE_STATIC);
		db_bind_text_or_null(q->ins_job, 3, j->recipe);
		sqlite3_bind_int(q->ins_job, 4, j->priority);
		sqlite3_bind_int64(q->ins_job, 5, j->created_at);
		if (j->timeout > 0)
			sqlite3_bind_int(q->ins_job, 6, j->timeout);
		else
			sqlite3_bind_null(q->ins_job, 6);
		sqlite3_bind_int(q->ins_job, 7, j->cache);
		db_bind_text_or_null(q->ins_job, 8, j->commit);
		db_bind_text_or_null(q->ins_job, 9, j->project);
		sqlite3_bind_int(q->ins_job, 10, j->network);
		db_bind_text_or_null(q->ins_job, 11, j->notify_url);
		db_bind_text_or_null(q->ins_job, 12, job_trust_name(j->trust));
		db_bind_text_or_null(q->ins_job, 13, j->submitted_by);
		db_bind_text_or_null(q->ins_job, 14, j->outputs);
		sqlite3_bind_int(q->ins_job, 15, j->release);
		if (j->retry_of > 0)
			sqlite3_bind_int64(q->ins_job, 16, j->retry_of);
		else
			sqlite3_bind_null(q->ins_job, 16);
		if (sqlite3_step(q->ins_job) != SQLITE_DONE) {
			db_log(q->wr, "insert job");
			goto out;
		}
		j->id = sqlite3_last_insert_rowid(q->wr);
		if (j->delivery_id != NULL) {
			sqlite3_reset(q->ins_delivery);
			sqlite3_bind_text(q->ins_delivery, 1, j->delivery_forge,
			    -1, SQLITE_STATIC);
			sqlite3_bind_text(q->ins_delivery, 2, j->delivery_id, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(q->ins_delivery, 3, j->id);
			sqlite3_bind_int64(q->ins_delivery, 4, j->created_at);
			if (sqlite3_step(q->ins_delivery) != SQLITE_DONE) {
				db_log(q->wr, "insert delivery");
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
				db_log(q->wr, "insert push");
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
				db_log(q->wr, "insert target");
				goto out;
			}
			j->targets[t].id = sqlite3_last_insert_rowid(q->wr);
		}
	}
	rc = 0;
out:
	sqlite3_reset(q->ins_job);
	sqlite3_reset(q->ins_target);
	sqlite3_reset(q->ins_delivery);
	sqlite3_reset(q->ins_push);
	sqlite3_clear_bindings(q->ins_job);
	sqlite3_clear_bindings(q->ins_target);
	if ((rc = db_end(q, rc)) != 0)
		for (size_t i = 0; i < n; i++)
			jobs[i]->id = 0;
	return rc;
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
	j->repo = db_col_strdup(st, 1);
	j->ref = db_col_strdup(st, 2);
	j->commit = db_col_strdup(st, 3);
	j->recipe = db_col_strdup(st, 4);
	j->priority = sqlite3_column_int(st, 5);
	s = (const char *)sqlite3_column_text(st, 6);
	if (s == NULL || job_state_parse(s, &j->state) != 0) {
		log_error("queue: job %" PRId64 " has unknown state '%s'", j->id,
		    s ? s : "NULL");
		job_free(j);
		return NULL;
	}
	j->error = db_col_strdup(st, 7);
	j->created_at = col_time(st, 8);
	j->started_at = col_time(st, 9);
	j->finished_at = col_time(st, 10);
	j->timeout = sqlite3_column_int(st, 11);
	j->cache = sqlite3_column_int(st, 12) != 0;
	j->sums_sha256 = db_col_strdup(st, 13);
	j->sig_sha256 = db_col_strdup(st, 14);
	j->prov_sha256 = db_col_strdup(st, 15);
	j->expired_at = col_time(st, 16);
	j->project = db_col_strdup(st, 17);
	j->network = sqlite3_column_int(st, 18) != 0;
	j->notify_url = db_col_strdup(st, 19);
	j->notify_state = db_col_strdup(st, 20);
	j->notify_attempts = sqlite3_column_int(st, 21);
	j->notify_error = db_col_strdup(st, 22);
	j->trust = job_trust_parse((const char *)sqlite3_column_text(st, 23));
	j->submitted_by = db_col_strdup(st, 24);
	j->outputs = db_col_strdup(st, 25);
	j->release = sqlite3_column_int(st, 26) != 0;
	j->retry_of = sqlite3_column_int64(st, 27);
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
	t->error = db_col_strdup(ts, c + 5);
	t->started_at = col_time(ts, c + 6);
	t->finished_at = col_time(ts, c + 7);
	t->cached = sqlite3_column_int(ts, c + 8) != 0;
	t->toolchain = db_col_strdup(ts, c + 9);
	t->cached_from = sqlite3_column_int64(ts, c + 10);
	t->host = db_col_strdup(ts, c + 11);
	t->verified = db_col_strdup(ts, c + 12);
	j->ntargets++;
	return 0;
}

/* The artifacts of a job's succeeded targets (only they have any). */
static int
load_artifacts(struct sqlq *q, struct job *j)
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
			a->name = db_col_strdup(st, 1);
			a->size = sqlite3_column_int64(st, 2);
			a->sha256 = db_col_strdup(st, 3);
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
load_job(struct sqlq *q, sqlite3_stmt *st, struct job **out)
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
 * path of GET /v1/jobs/{id}.  Its rows come in the order of the index
 * on (job_id, state); they are put in id order here, since ORDER BY
 * t.id made SQLite sort every whole row (all 36 columns) through a
 * temporary b-tree, a third of the lookup.
 */
/* Insertion sort by id: a job has a handful of targets. */
static void
sort_targets(struct job *j)
{
	for (size_t i = 1; i < j->ntargets; i++) {
		struct job_target t = j->targets[i];
		size_t k = i;

		for (; k > 0 && j->targets[k - 1].id > t.id; k--)
			j->targets[k] = j->targets[k - 1];
		j->targets[k] = t;
	}
}

int
db_get(struct sqlq *q, int64_t id, struct job **out)
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
	if (rc == 0) {
		sort_targets(j);
		rc = load_artifacts(q, j);
	}
	if (rc != 0) {
		job_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

int
db_list(struct sqlq *q, const struct queue_filter *f, struct job ***out,
    size_t *nout, int64_t *next)
{
	unsigned kind = (f->has_state ? DB_LIST_STATE : 0) |
	    (f->project != NULL ? DB_LIST_PROJECT : 0) |
	    (f->repo != NULL ? DB_LIST_REPO : 0);
	sqlite3_stmt *st = q->list[kind];
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
	/* The strings are the caller's: SQLITE_TRANSIENT copies them. */
	if (f->project != NULL)
		sqlite3_bind_text(st, 4, f->project, -1, SQLITE_TRANSIENT);
	if (f->repo != NULL)
		sqlite3_bind_text(st, 5, f->repo, -1, SQLITE_TRANSIENT);
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

int
db_cancel(struct sqlq *q, int64_t id, size_t *nrunning)
{
	enum job_state st;
	int64_t now = util_now_ms();
	int rc;

	if ((rc = db_begin(q)) != 0)
		return rc;
	if ((rc = db_job_state_of(q, id, &st)) != 0)
		goto out;
	if (st == JOB_SUCCEEDED || st == JOB_FAILED) {
		rc = QUEUE_ECONFLICT;
		goto out;
	}
	int64_t p[2] = { id, now };
	if (db_run(q, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
	    1, p) != 1) {
		rc = QUEUE_ERROR;
		goto out;
	}
	if (db_run(q, "UPDATE job_targets SET state = 'canceled', "
	    "finished_at = ?2, error = 'canceled before it started' "
	    "WHERE job_id = ?1 AND state = 'queued'", 2, p) < 0) {
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_stmt *cs = NULL;
	if (sqlite3_prepare_v2(q->wr, "SELECT count(*) FROM job_targets "
	    "WHERE job_id = ? AND state = 'running'", -1, &cs, NULL) !=
	    SQLITE_OK) {
		db_log(q->wr, "count running");
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(cs, 1, id);
	if (sqlite3_step(cs) == SQLITE_ROW)
		*nrunning = (size_t)sqlite3_column_int64(cs, 0);
	else {
		db_log(q->wr, "count running");
		rc = QUEUE_ERROR;
	}
	sqlite3_finalize(cs);
	if (rc == 0)
		rc = db_update_job_state(q, id, now);
out:
	return db_end(q, rc);
}

int
db_set_priority(struct sqlq *q, int64_t id, int priority)
{
	int64_t p[2] = { id, priority };
	enum job_state st;
	int rc, n;

	if ((rc = db_begin(q)) != 0)
		return rc;
	if ((rc = db_job_state_of(q, id, &st)) != 0)
		goto out;
	/* A job being canceled has nothing left to order. */
	n = db_run(q, "UPDATE jobs SET priority = ?2 WHERE id = ?1 AND "
	    "state IN ('queued', 'running') AND cancel_requested = 0", 2, p);
	if (n < 0)
		rc = QUEUE_ERROR;
	else if (n == 0)
		rc = QUEUE_ECONFLICT;
	/* Targets planned later copy the job's priority (expand_targets). */
	else if (db_run(q, "UPDATE job_targets SET priority = ?2 WHERE "
	    "job_id = ?1 AND state = 'queued'", 2, p) < 0)
		rc = QUEUE_ERROR;
out:
	return db_end(q, rc);
}

int
db_set_commit(struct sqlq *q, int64_t job_id, const char *commit,
    enum job_trust trust)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->wr, "UPDATE jobs SET \"commit\" = ?1, "
	    "trust = ?3 WHERE id = ?2", -1, &st, NULL) != SQLITE_OK) {
		db_log(q->wr, "set commit");
		return QUEUE_ERROR;
	}
	sqlite3_bind_text(st, 1, commit, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, job_id);
	db_bind_text_or_null(st, 3, job_trust_name(trust));
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = sqlite3_changes(q->wr) == 1 ? 0 : QUEUE_ENOTFOUND;
	else
		db_log(q->wr, "set commit");
	sqlite3_finalize(st);
	return rc;
}

/* One statement with ?1 = an id, ?2 = a reason, ?3 = a time. */
static int
run_reason(struct sqlq *q, const char *sql, int64_t id, const char *reason,
    int64_t now)
{
	sqlite3_stmt *st;
	int rc = QUEUE_ERROR;

	if ((st = db_stmt(q, sql)) == NULL)
		return QUEUE_ERROR;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_log(q->wr, sql);
	sqlite3_reset(st);
	return rc;
}

int
db_fail_job(struct sqlq *q, int64_t job_id, const char *error)
{
	int64_t now = util_now_ms();
	enum job_state js;
	int rc;

	if ((rc = db_begin(q)) != 0)
		return rc;
	if ((rc = db_job_state_of(q, job_id, &js)) != 0)
		goto out;
	if (job_state_terminal(js)) {
		rc = QUEUE_ECONFLICT;
		goto out;
	}
	/*
	 * Every target not ended, then the job, fail with the reason.  A
	 * job fails here before any of its builds ran (its fetch or plan
	 * failed): the claim that parked a target is given back, as by
	 * db_release, so that it shows no attempt and no start.
	 */
	if (run_reason(q, "UPDATE job_targets SET state = 'failed', "
	    "error = ?2, finished_at = ?3, attempt = CASE WHEN "
	    "state = 'running' THEN max(attempt - 1, 0) ELSE attempt END, "
	    "started_at = NULL, heartbeat_at = NULL WHERE job_id = ?1 AND "
	    "state IN ('queued', 'running')", job_id, error, now) != 0 ||
	    run_reason(q, "UPDATE jobs SET state = 'failed', "
	    "error = ?2, finished_at = ?3 WHERE id = ?1", job_id, error,
	    now) != 0 || db_notify_due(q, job_id, now) != 0)
		rc = QUEUE_ERROR;
out:
	return db_end(q, rc);
}
