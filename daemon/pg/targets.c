/*
 * Targets through their life, on PostgreSQL: claiming the next one
 * across hosts (FOR NO KEY UPDATE SKIP LOCKED), the scheduler's view of
 * the queue, heartbeats, giving one back (or refusing it: this host
 * lacks a toolchain for it), finishing one with its artifacts, the build
 * cache lookup, this host's recovery after a crash, and reclaiming
 * builds whose lease ran out.  Each write is one call of a function of
 * schema/pg/003_targets.sql and later (which say what each does and
 * which locks it takes); each read one SELECT.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "pg-int.h"
#include "util.h"
#include "xmalloc.h"

#define Q(base) ((struct pgq *)(base))

/* --- claims ----------------------------------------------------------- */

/* kiln_claim's row: target id, job id, target name, attempt. */
static int
claim_parse(struct pgq_call *c, const PGresult *res)
{
	struct queue_claim *out = c->out[0];

	if (PQntuples(res) != 1 || PQnfields(res) < 4 ||
	    pgq_is_null(res, 0, 0)) {
		log_error("queue: claim: an answer not understood");
		return QUEUE_ERROR;
	}
	memset(out, 0, sizeof *out);
	out->target_id = pgq_get_int(res, 0, 0);
	out->job_id = pgq_get_int(res, 0, 1);
	snprintf(out->target, sizeof out->target, "%s",
	    PQgetvalue(res, 0, 2));
	out->attempt = (int)pgq_get_int(res, 0, 3);
	return 0;
}

static void
claim(struct pgq *q, int64_t job_id, struct queue_claim *out,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(q, "claim", claim_parse, done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], b3[PGQ_INT_BUF];
	const char *params[4] = { q->host, pgq_int(b1, util_now_ms()),
	    job_id != 0 ? pgq_int(b2, job_id) : NULL,
	    pgq_int(b3, queue_lease_ms(&q->base)) };

	c->out[0] = out;
	pgq_write(c, "kiln_claim($1, $2, $3, $4)", 4, params);
}

void
pg_claim(struct queue *base, struct queue_claim *out, queue_done done,
    void *data)
{
	claim(Q(base), 0, out, done, data);
}

void
pg_claim_job(struct queue *base, int64_t job_id, struct queue_claim *out,
    queue_done done, void *data)
{
	claim(Q(base), job_id, out, done, data);
}

static int
next_jobs_parse(struct pgq_call *c, const PGresult *res)
{
	struct queue_next *out = c->out[0];
	size_t max = (size_t)c->arg[0], n = 0;

	for (int r = 0; r < PQntuples(res) && n < max; r++, n++) {
		out[n].priority = (int)pgq_get_int(res, r, 0);
		out[n].job_id = pgq_get_int(res, r, 1);
	}
	*(size_t *)c->out[1] = n;
	return 0;
}

void
pg_next_jobs(struct queue *base, struct queue_next *out, size_t max,
    size_t *n, queue_done done, void *data)
{
	struct pgq *q = Q(base);
	struct pgq_call *c = pgq_call(q, "next jobs", next_jobs_parse,
	    done, data);
	char b[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b, (int64_t)max) };

	*n = 0;
	c->out[0] = out;
	c->out[1] = n;
	c->arg[0] = (int64_t)max;
	params[1] = q->host;
	params[2] = pgq_int(b2, util_now_ms());
	/* The queued part of the index job_targets_queue in its order,
	 * grouped as it streams: stops at the LIMIT.  Without the targets
	 * this host refused while the refusal holds (008_refusals.sql). */
	pgq_read(c, "SELECT priority, job_id FROM job_targets t "
	    "WHERE state = 'queued' AND NOT EXISTS (SELECT 1 FROM "
	    "target_refusals r WHERE r.target_id = t.id AND r.host = $2 AND "
	    "r.expires_at > $3) GROUP BY priority, job_id "
	    "ORDER BY priority DESC, job_id LIMIT $1", 3, params);
}

/* --- a running target ------------------------------------------------- */

/* One target id, its attempt (the fencing token: 005_fence.sql) and the
 * host's clock: heartbeat, release. */
static void
target_write(struct queue *base, const char *what, const char *call,
    int64_t target_id, int attempt, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), what, NULL, done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], b3[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b1, target_id),
	    pgq_int(b2, attempt), pgq_int(b3, util_now_ms()) };

	pgq_write(c, call, 3, params);
}

void
pg_release(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data)
{
	target_write(base, "release", "kiln_release($1, $2, $3)", target_id,
	    attempt, done, data);
}

/* kiln_heartbeat's answer: 1 when the job is being canceled
 * (010_cancel.sql). */
static int
heartbeat_parse(struct pgq_call *c, const PGresult *res)
{
	(void)c;
	if (PQntuples(res) != 1 || pgq_is_null(res, 0, 0))
		return QUEUE_ERROR;
	return pgq_get_int(res, 0, 0) == 1 ? QUEUE_ECANCELED : 0;
}

/* And the lease it holds for from now on (009_lease.sql). */
void
pg_heartbeat(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "heartbeat", heartbeat_parse,
	    done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], b3[PGQ_INT_BUF],
	    b4[PGQ_INT_BUF];
	const char *params[4] = { pgq_int(b1, target_id),
	    pgq_int(b2, attempt), pgq_int(b3, util_now_ms()),
	    pgq_int(b4, queue_lease_ms(base)) };

	pgq_write(c, "kiln_heartbeat($1, $2, $3, $4)", 4, params);
}

/* kiln_refuse's boolean: whether the target failed (everyone refused). */
static int
refuse_parse(struct pgq_call *c, const PGresult *res)
{
	bool *everyone = c->out[0];

	if (PQntuples(res) != 1 || pgq_is_null(res, 0, 0)) {
		log_error("queue: refuse: an answer not understood");
		return QUEUE_ERROR;
	}
	if (everyone != NULL)
		*everyone = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	return 0;
}

void
pg_refuse(struct queue *base, int64_t target_id, int attempt,
    const char *host, const char *why, int64_t window_ms, bool *everyone,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "refuse", refuse_parse, done,
	    data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], b3[PGQ_INT_BUF],
	    b4[PGQ_INT_BUF];
	const char *params[6] = { pgq_int(b1, target_id),
	    pgq_int(b2, attempt), host, why, pgq_int(b3, window_ms),
	    pgq_int(b4, util_now_ms()) };

	if (everyone != NULL)
		*everyone = false;
	c->out[0] = everyone;
	pgq_write(c, "kiln_refuse($1, $2, $3, $4, $5, $6)", 6, params);
}

/* --- finishing -------------------------------------------------------- */

static json_t *
str_or_null(const char *s)
{
	/* Checked when dumped: text that is not UTF-8 fails the write. */
	return s != NULL ? json_string_nocheck(s) : json_null();
}

/* kiln_finish_build's outcome (003_targets.sql), compact; NULL when a
 * string in it is not UTF-8. */
static char *
outcome_json(const struct queue_outcome *o)
{
	json_t *j = json_object(), *arts = json_array();
	char *text;

	json_object_set_new(j, "state",
	    json_string(target_state_name(o->state)));
	json_object_set_new(j, "exit_status", o->exit_status >= 0 ?
	    json_integer(o->exit_status) : json_null());
	json_object_set_new(j, "error", str_or_null(o->error));
	json_object_set_new(j, "cache_key", str_or_null(o->cache_key));
	json_object_set_new(j, "cached", json_integer(o->cached ? 1 : 0));
	json_object_set_new(j, "cached_from", o->cached && o->cached_from > 0 ?
	    json_integer(o->cached_from) : json_null());
	for (size_t i = 0; i < o->narts; i++)
		json_array_append_new(arts, json_pack("[o,I,o]",
		    str_or_null(o->arts[i].name), (json_int_t)o->arts[i].size,
		    str_or_null(o->arts[i].sha256)));
	json_object_set_new(j, "artifacts", arts);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* The job's state after the finish. */
static int
finish_parse(struct pgq_call *c, const PGresult *res)
{
	enum job_state *js = c->out[0], st;

	if (PQntuples(res) != 1 || pgq_is_null(res, 0, 0) ||
	    job_state_parse(PQgetvalue(res, 0, 0), &st) != 0) {
		log_error("queue: finish: an answer not understood");
		return QUEUE_ERROR;
	}
	if (js != NULL)
		*js = st;
	return 0;
}

void
pg_finish_build(struct queue *base, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state,
    queue_done done, void *data)
{
	struct pgq *q = Q(base);
	struct pgq_call *c = pgq_call(q, "finish", finish_parse, done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], b3[PGQ_INT_BUF], *text;
	const char *params[5];

	c->out[0] = job_state;
	if (!target_state_terminal(o->state)) {
		log_error("queue: finish: target %" PRId64 " given state %s, "
		    "which is not an end", target_id,
		    target_state_name(o->state));
		pgq_write_failed(c);
		return;
	}
	if ((text = outcome_json(o)) == NULL) {
		log_error("queue: finish: target %" PRId64 ": a file name or "
		    "message is not UTF-8", target_id);
		pgq_write_failed(c);
		return;
	}
	params[0] = pgq_int(b1, target_id);
	params[1] = pgq_int(b2, attempt);
	params[2] = pgq_int(b3, util_now_ms());
	params[3] = q->host;
	params[4] = text;
	pgq_write(c, "kiln_finish_build($1, $2, $3, $4, $5::jsonb)", 5,
	    params);
	free(text);
}

/* --- the build cache -------------------------------------------------- */

static int
cache_parse(struct pgq_call *c, const PGresult *res)
{
	struct artifact *arts;
	size_t n;

	if (PQntuples(res) == 0)
		return QUEUE_ENOTFOUND;
	if (pgq_artifacts_from_json(pgq_is_null(res, 0, 1) ? NULL :
	    PQgetvalue(res, 0, 1), &arts, &n) != 0)
		return QUEUE_ERROR;
	/* A row from before the store (no digest) is not reusable. */
	for (size_t i = 0; i < n; i++)
		if (arts[i].sha256 == NULL) {
			artifacts_free(arts, n);
			return QUEUE_ENOTFOUND;
		}
	*(struct artifact **)c->out[0] = arts;
	*(size_t *)c->out[1] = n;
	*(int64_t *)c->out[2] = pgq_get_int(res, 0, 0);
	return 0;
}

void
pg_cache_lookup(struct queue *base, const char *key, struct artifact **arts,
    size_t *narts, int64_t *from_job, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "cache lookup", cache_parse,
	    done, data);
	const char *params[1] = { key };

	*arts = NULL;
	*narts = 0;
	*from_job = 0;
	c->out[0] = arts;
	c->out[1] = narts;
	c->out[2] = from_job;
	/* The newest equal build whose job still has its files (the
	 * partial index job_targets_cache), through any chain of reuses:
	 * a reused target names the job that built. */
	pgq_read(c, "SELECT coalesce(t.cached_from, t.job_id), "
	    PGQ_ARTS_JSON("t.") " FROM job_targets t "
	    "JOIN jobs j ON j.id = t.job_id WHERE t.cache_key = $1 AND "
	    "t.state = 'succeeded' AND j.expired_at IS NULL "
	    "ORDER BY t.id DESC LIMIT 1", 1, params);
}

/* --- recovery and leases ---------------------------------------------- */

int
pg_recover(struct queue *base, int max_attempts, int *requeued, int *failed)
{
	struct pgq *q = Q(base);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[3] = { q->host, pgq_int(b1, max_attempts),
	    pgq_int(b2, util_now_ms()) };
	PGresult *res;
	int rc;

	*requeued = *failed = 0;
	/* Only this host's builds: the others' are still running.  One
	 * statement, one transaction. */
	if ((rc = pgq_sync_exec(q, "recover", "SELECT requeued, failed FROM "
	    "kiln_recover($1, $2, $3)", 3, params, &res)) != 0)
		return rc;
	if (PQntuples(res) != 1 || PQnfields(res) != 2) {
		log_error("queue: recover: an answer not understood");
		PQclear(res);
		return QUEUE_ERROR;
	}
	*requeued = (int)pgq_get_int(res, 0, 0);
	*failed = (int)pgq_get_int(res, 0, 1);
	PQclear(res);
	/* Its changes bypassed the counts' deltas: count again. */
	return pgq_counts_load(q);
}

static int
stale_parse(struct pgq_call *c, const PGresult *res)
{
	int64_t *ids = c->out[0];
	size_t max = (size_t)c->arg[0], n = 0;

	for (int r = 0; r < PQntuples(res) && n < max; r++)
		ids[n++] = pgq_get_int(res, r, 0);
	*(size_t *)c->out[1] = n;
	return 0;
}

void
pg_stale_targets(struct queue *base, int64_t now, int64_t *ids,
    size_t max, size_t *n, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "stale targets", stale_parse,
	    done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[2] = { pgq_int(b1, now),
	    pgq_int(b2, (int64_t)max) };

	*n = 0;
	c->out[0] = ids;
	c->out[1] = n;
	c->arg[0] = (int64_t)max;
	/* Every host's: a host that is gone leaves its builds to the
	 * others.  Each lease is its holder's (009_lease.sql).  A walk of
	 * the running targets (job_targets_lease), as many as builds run. */
	pgq_read(c, "SELECT id FROM job_targets WHERE state = 'running' "
	    "AND coalesce(lease_expires_at, 0) < $1 ORDER BY id LIMIT $2", 2,
	    params);
}

void
pg_reclaim(struct queue *base, int64_t target_id, int64_t now,
    int max_attempts, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "reclaim", NULL, done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], b3[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b1, target_id),
	    pgq_int(b2, max_attempts), pgq_int(b3, now) };

	pgq_write(c, "kiln_reclaim($1, $2, $3)", 3, params);
}
