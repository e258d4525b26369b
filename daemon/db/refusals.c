/*
 * Targets a host refused for want of a toolchain, on SQLite
 * (schema/014_refusals.sql): queue_refuse(), a write through the writer
 * like every write.  On SQLite kilnd runs alone and never refuses (a
 * target it cannot build fails at its plan); the queue answers the call
 * as PostgreSQL's kiln_refuse() (schema/pg/008_refusals.sql) does, for
 * the conformance suite.  The claims' side, skipping what this host
 * refused, is in targets.c's SQL.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db-int.h"
#include "log.h"
#include "sbuf.h"
#include "util.h"
#include "writer.h"
#include "xmalloc.h"

struct refuse_req {
	queue_done done;
	void *data;
	int64_t target_id;
	int attempt;
	char *host, *why;
	int64_t window_ms;
	bool *everyone;
	bool result;
};

/* Step st (bound) to its end: 0, or QUEUE_ERROR logged as `what`. */
static int
step_done(struct sqlq *q, sqlite3_stmt *st, const char *what)
{
	int step = sqlite3_step(st);

	sqlite3_reset(st);
	if (step == SQLITE_DONE)
		return 0;
	db_log(q->wr, what);
	return QUEUE_ERROR;
}

/*
 * "h1: why; h2: why" of the live hosts' refusals of the target that
 * hold at now (malloc'd), or NULL when none is left to fail it: a live
 * host that holds none.  `host` is live whatever its row says.
 */
static int
everyone_refused(struct sqlq *q, const struct refuse_req *r, int64_t now,
    char **reasons)
{
	sqlite3_stmt *st;
	struct sbuf b = { 0 };
	int step, rc = 0;

	*reasons = NULL;
	if ((st = db_stmt(q, "SELECT 1 FROM hosts h WHERE h.heartbeat_at >= "
	    "?3 - ?4 AND h.name <> ?2 AND NOT EXISTS (SELECT 1 FROM "
	    "target_refusals f WHERE f.target_id = ?1 AND f.host = h.name "
	    "AND f.expires_at > ?3) LIMIT 1")) == NULL)
		return QUEUE_ERROR;
	sqlite3_bind_int64(st, 1, r->target_id);
	sqlite3_bind_text(st, 2, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, r->window_ms);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step == SQLITE_ROW)
		return 0;	/* a live host may build it */
	if (step != SQLITE_DONE) {
		db_log(q->wr, "refuse");
		return QUEUE_ERROR;
	}
	if ((st = db_stmt(q, "SELECT f.host, f.why FROM target_refusals f "
	    "WHERE f.target_id = ?1 AND f.expires_at > ?3 AND (f.host = ?2 "
	    "OR f.host IN (SELECT h.name FROM hosts h WHERE "
	    "h.heartbeat_at >= ?3 - ?4)) ORDER BY f.host")) == NULL)
		return QUEUE_ERROR;
	sqlite3_bind_int64(st, 1, r->target_id);
	sqlite3_bind_text(st, 2, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, r->window_ms);
	sbuf_adds(&b, "no host of the farm can build it: ");
	for (int i = 0; (step = sqlite3_step(st)) == SQLITE_ROW; i++) {
		if (i > 0)
			sbuf_adds(&b, "; ");
		sbuf_adds(&b, (const char *)sqlite3_column_text(st, 0));
		sbuf_adds(&b, ": ");
		sbuf_adds(&b, (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		db_log(q->wr, "refuse");
		rc = QUEUE_ERROR;
		sbuf_free(&b);
	} else
		*reasons = sbuf_steal(&b, NULL);
	return rc;
}

/* On the writer thread, in one transaction. */
static int
refuse_op(struct sqlq *q, void *arg)
{
	struct refuse_req *r = arg;
	sqlite3_stmt *st;
	int64_t now = util_now_ms(), job_id = 0;
	char *reasons = NULL;
	bool canceled = false;
	int rc, step;

	if ((rc = db_begin(q)) != 0)
		return rc;
	if ((st = db_stmt(q, "SELECT t.job_id, j.cancel_requested FROM "
	    "job_targets t JOIN jobs j ON j.id = t.job_id WHERE t.id = ?1 "
	    "AND t.attempt = ?2 AND t.state = 'running'")) == NULL) {
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(st, 1, r->target_id);
	sqlite3_bind_int64(st, 2, r->attempt);
	if ((step = sqlite3_step(st)) == SQLITE_ROW) {
		job_id = sqlite3_column_int64(st, 0);
		canceled = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_reset(st);
	if (step == SQLITE_DONE) {
		rc = db_not_running(q, r->target_id);
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_log(q->wr, "refuse");
		rc = QUEUE_ERROR;
		goto out;
	}
	if ((st = db_stmt(q, "INSERT INTO target_refusals (target_id, host, "
	    "why, refused_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?4 + ?5) "
	    "ON CONFLICT (target_id, host) DO UPDATE SET why = excluded.why, "
	    "refused_at = excluded.refused_at, "
	    "expires_at = excluded.expires_at")) == NULL) {
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(st, 1, r->target_id);
	sqlite3_bind_text(st, 2, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, r->window_ms);
	if ((rc = step_done(q, st, "refuse")) != 0)
		goto out;
	if (!canceled && (rc = everyone_refused(q, r, now, &reasons)) != 0)
		goto out;
	/* Either way the run is not counted, as queue_release's. */
	if ((st = db_stmt(q, "UPDATE job_targets SET state = CASE "
	    "WHEN ?3 IS NOT NULL THEN 'failed' WHEN ?4 THEN 'canceled' "
	    "ELSE 'queued' END, error = coalesce(?3, error), "
	    "finished_at = CASE WHEN ?3 IS NOT NULL OR ?4 THEN ?2 END, "
	    "attempt = max(attempt - 1, 0), started_at = NULL, "
	    "heartbeat_at = NULL WHERE id = ?1")) == NULL) {
		rc = QUEUE_ERROR;
		goto out;
	}
	sqlite3_bind_int64(st, 1, r->target_id);
	sqlite3_bind_int64(st, 2, now);
	db_bind_text_or_null(st, 3, reasons);
	sqlite3_bind_int(st, 4, canceled);
	if ((rc = step_done(q, st, "refuse")) != 0)
		goto out;
	rc = db_update_job_state(q, job_id, now);
	r->result = reasons != NULL;
out:
	free(reasons);
	return db_end(q, rc);
}

/* On the loop, once the write is durable or failed. */
static void
refuse_done(void *arg, int rc)
{
	struct refuse_req *r = arg;

	if (rc == 0 && r->everyone != NULL)
		*r->everyone = r->result;
	if (r->done != NULL)
		r->done(r->data, rc);
	free(r->host);
	free(r->why);
	free(r);
}

void
sqlite_refuse(struct queue *base, int64_t target_id, int attempt,
    const char *host, const char *why, int64_t window_ms, bool *everyone,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct refuse_req *r = xcalloc(1, sizeof *r);

	r->done = done;
	r->data = data;
	r->target_id = target_id;
	r->attempt = attempt;
	r->host = xstrdup(host);
	r->why = xstrdup(why);
	r->window_ms = window_ms;
	r->everyone = everyone;
	if (everyone != NULL)
		*everyone = false;
	if (q->writer == NULL) {
		log_error("queue: a write without a running writer");
		refuse_done(r, QUEUE_ERROR);
		return;
	}
	writer_submit(q->writer, refuse_op, refuse_done, r);
}
