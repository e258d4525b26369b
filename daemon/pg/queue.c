/*
 * The PostgreSQL queue's life and plumbing: opening it (migrations, the
 * synchronous connection, the first counts), starting and stopping its
 * two pools on the loop, sending a write or a read and turning its result
 * into queue.h's answer, the counts by state, and the table of
 * operations (backend.h).  The operations are in jobs.c, targets.c and
 * retention.c; pg-int.h says how the pieces fit.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/schema.h"
#include "log.h"
#include "migrate.h"
#include "pg-int.h"
#include "sbuf.h"
#include "xmalloc.h"

#define NCOUNTS (JOB_STATE_COUNT + TARGET_STATE_COUNT)

/* Set once the database's being unreachable was logged; cleared by the
 * next answer, so that an outage is logged once, not per query. */
static int down_logged;

int
pgq_error(const char *what, const PGresult *res, int pgrc)
{
	const char *state, *msg;

	switch (pgrc) {
	case PG_ESQL:
		state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (state != NULL) {
			if (strcmp(state, PGQ_SQLSTATE_NOTFOUND) == 0)
				return QUEUE_ENOTFOUND;
			if (strcmp(state, PGQ_SQLSTATE_CONFLICT) == 0)
				return QUEUE_ECONFLICT;
			if (strcmp(state, PGQ_SQLSTATE_EMPTY) == 0)
				return QUEUE_EEMPTY;
		}
		msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
		    NULL;
		log_error("queue: %s: %s (SQLSTATE %s)", what,
		    msg ? msg : "unknown error", state ? state : "none");
		break;
	case PG_ELOST:
		log_error("queue: %s: the connection to the database broke; "
		    "it may or may not have been done", what);
		return QUEUE_EDOWN;
	default:
		if (!__atomic_exchange_n(&down_logged, 1, __ATOMIC_RELAXED))
			log_error("queue: %s: the database cannot be reached",
			    what);
		return QUEUE_EDOWN;
	}
	return QUEUE_ERROR;
}

/* "{1,2,...}", NCOUNTS of them (kiln_counts(), kiln.delta). */
static int
parse_counts(const char *s, int64_t v[NCOUNTS])
{
	char *end;

	if (*s++ != '{')
		return -1;
	for (int i = 0; i < NCOUNTS; i++) {
		v[i] = strtoll(s, &end, 10);
		if (end == s || *end != (i + 1 < NCOUNTS ? ',' : '}'))
			return -1;
		s = end + 1;
	}
	return *s == '\0' ? 0 : -1;
}

static void
counts_set(struct pgq *q, const int64_t v[NCOUNTS], bool add)
{
	for (int i = 0; i < NCOUNTS; i++) {
		int64_t *c = i < JOB_STATE_COUNT ? &q->base.counts.jobs[i] :
		    &q->base.counts.targets[i - JOB_STATE_COUNT];

		if (add)
			__atomic_add_fetch(c, v[i], __ATOMIC_RELAXED);
		else
			__atomic_store_n(c, v[i], __ATOMIC_RELAXED);
	}
}

/* --- the synchronous connection --------------------------------------- */

/* The server's notices and warnings ("terminating connection due to
 * immediate shutdown") into kilnd's log, not libpq's stderr. */
static void
on_sync_notice(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	log_msg(sev != NULL && strcmp(sev, "WARNING") == 0 ? LOG_LVL_WARN :
	    LOG_LVL_DEBUG, "queue: server %s: %s", sev != NULL ? sev :
	    "NOTICE", msg != NULL ? msg : "");
}

PGconn *
pgq_sync_conn(struct pgq *q)
{
	if (q->sync != NULL && PQstatus(q->sync) == CONNECTION_OK)
		return q->sync;
	if (q->sync != NULL) {
		PQreset(q->sync);
	} else {
		q->sync = PQconnectdb(q->conninfo);
		if (q->sync != NULL)
			PQsetNoticeReceiver(q->sync, on_sync_notice, NULL);
	}
	if (q->sync == NULL || PQstatus(q->sync) != CONNECTION_OK) {
		log_error("queue: cannot connect to the database at %s: %s",
		    q->where, q->sync ? PQerrorMessage(q->sync) :
		    "out of memory");
		return NULL;
	}
	return q->sync;
}

int
pgq_sync_exec(struct pgq *q, const char *what, const char *sql, int nparams,
    const char *const *params, PGresult **out)
{
	PGconn *c;
	PGresult *res;
	ExecStatusType st;
	int rc;

	*out = NULL;
	if ((c = pgq_sync_conn(q)) == NULL)
		return pgq_error(what, NULL, PG_EDOWN);
	res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		__atomic_store_n(&down_logged, 0, __ATOMIC_RELAXED);
		*out = res;
		return 0;
	}
	rc = pgq_error(what, res, PQstatus(c) == CONNECTION_OK ? PG_ESQL :
	    PG_ELOST);
	PQclear(res);
	return rc;
}

int
pgq_counts_load(struct pgq *q)
{
	int64_t v[NCOUNTS];
	PGresult *res;

	if (pgq_sync_exec(q, "count", "SELECT kiln_counts()", 0, NULL,
	    &res) != 0)
		return QUEUE_ERROR;
	if (PQntuples(res) != 1 || parse_counts(PQgetvalue(res, 0, 0), v)) {
		log_error("queue: count: an answer not understood");
		PQclear(res);
		return QUEUE_ERROR;
	}
	PQclear(res);
	counts_set(q, v, false);
	return 0;
}

/* --- open, start, stop, close ----------------------------------------- */

/* "host:port/dbname" of conninfo, for messages: never its password. */
static char *
describe(const char *conninfo, char *err, size_t errsize)
{
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
	PQconninfoOption *opts, *o;
	char *msg = NULL, *s;

	if ((opts = PQconninfoParse(conninfo, &msg)) == NULL) {
		/* libpq's message quotes no value of the string. */
		snprintf(err, errsize, "bad database connection string: %s",
		    msg ? msg : "out of memory");
		PQfreemem(msg);
		return NULL;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0 ||
		    (host == NULL && strcmp(o->keyword, "hostaddr") == 0))
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
	}
	s = xasprintf("%s:%s/%s", host ? host : "(default host)",
	    port ? port : "5432", db ? db : user ? user : "(default)");
	PQconninfoFree(opts);
	return s;
}

int
pg_queue_open(struct queue **out, const char *conninfo, char *err,
    size_t errsize)
{
	struct pgq *q = xcalloc(1, sizeof *q);
	char name[256];

	q->base.ops = &pg_queue_ops;
	q->base.schema = (int)pg_schema_migration_count;
	q->late_tail = &q->late;
	if ((q->where = describe(conninfo, err, errsize)) == NULL)
		goto fail;
	q->conninfo = xstrdup(conninfo);
	if (pg_migrate(conninfo, pg_schema_migrations,
	    pg_schema_migration_count, err, errsize) != 0)
		goto fail;
	if (pgq_sync_conn(q) == NULL) {
		snprintf(err, errsize, "cannot connect to the database at %s",
		    q->where);
		goto fail;
	}
	if (pgq_counts_load(q) != 0) {
		snprintf(err, errsize, "cannot count the jobs of %s", q->where);
		goto fail;
	}
	if (gethostname(name, sizeof name) != 0)
		snprintf(name, sizeof name, "localhost");
	name[sizeof name - 1] = '\0';
	q->host = xstrdup(name);
	*out = &q->base;
	return 0;
fail:
	pg_close(&q->base);
	return QUEUE_ERROR;
}

void
pg_set_host(struct queue *base, const char *name)
{
	struct pgq *q = (struct pgq *)base;

	if (name == NULL)
		return;
	free(q->host);
	q->host = xstrdup(name);
}

static void
counts_done(void *data, PGresult *res, int rc)
{
	struct pgq *q = data;
	int64_t v[NCOUNTS];

	q->refreshing = false;
	if (rc != PG_OK) {
		/* Not sent because the pool closes: nothing went wrong. */
		if (!(rc == PG_EDOWN && q->stopping))
			pgq_error("count", res, rc);
		return;
	}
	__atomic_store_n(&down_logged, 0, __ATOMIC_RELAXED);
	if (PQntuples(res) != 1 || parse_counts(PQgetvalue(res, 0, 0), v)) {
		log_error("queue: count: an answer not understood");
		return;
	}
	counts_set(q, v, false);
}

/*
 * Other hosts' changes.  On `wr`, between this host's writes: the count
 * sees exactly the writes before it, and the deltas of those after it
 * apply on top.
 */
static void
on_timer(uv_timer_t *t)
{
	struct pgq *q = t->data;

	if (q->refreshing || q->stopping)
		return;
	q->refreshing = true;
	pgpool_query(q->wr, "SELECT kiln_counts()", 0, NULL, counts_done, q);
}

int
pg_start(struct queue *base, uv_loop_t *loop)
{
	struct pgq *q = (struct pgq *)base;
	char err[256];

	if (q->started)
		return 0;
	q->loop = loop;
	if (pgpool_open(&q->wr, loop, q->conninfo, PGQ_WR_CONNS, err,
	    sizeof err) != 0 ||
	    pgpool_open(&q->rd, loop, q->conninfo, PGQ_RD_CONNS, err,
	    sizeof err) != 0) {
		log_error("queue: %s", err);
		if (q->wr != NULL)
			pgpool_close(q->wr, NULL, NULL);
		q->wr = NULL;
		return QUEUE_ERROR;
	}
	uv_timer_init(loop, &q->timer);
	q->timer.data = q;
	uv_timer_start(&q->timer, on_timer, PGQ_COUNTS_MS, PGQ_COUNTS_MS);
	/* The pools keep the loop alive while anything is owed. */
	uv_unref((uv_handle_t *)&q->timer);
	q->timer_ready = true;
	uv_idle_init(loop, &q->idle);
	q->idle.data = q;
	q->started = true;
	pgq_subscribe(q);
	return 0;
}

static void
one_closed(struct pgq *q)
{
	if (--q->closing > 0)
		return;
	q->started = false;
	q->subscribed = q->changed_due = q->cancels_subscribed = false;
	q->wr = q->rd = NULL;
	if (q->stopped != NULL)
		q->stopped(q->stopped_data);
}

static void
pool_closed(void *data)
{
	one_closed(data);
}

static void
timer_closed(uv_handle_t *h)
{
	struct pgq *q = h->data;

	q->timer_ready = false;
	one_closed(q);
}

static void
idle_closed(uv_handle_t *h)
{
	one_closed(h->data);
}

/*
 * Once stopping: the writes called before queue_stop() have completed,
 * then those called after fail in their turn; once no read is owed
 * either, the timer and the pools close, then q->stopped.
 */
static void
maybe_finish(struct pgq *q)
{
	struct pgq_call *c;

	if (!q->stopping || q->closing > 0 || !q->started ||
	    q->writes_done != q->writes_called)
		return;
	while ((c = q->late) != NULL) {
		q->late = c->next;
		if (q->late == NULL)
			q->late_tail = &q->late;
		if (c->done != NULL)
			c->done(c->data, QUEUE_ERROR);
		free(c);
	}
	if (q->reads_pending > 0 || q->closing > 0 || !q->started)
		return;
	q->closing = 4;
	uv_timer_stop(&q->timer);
	uv_close((uv_handle_t *)&q->timer, timer_closed);
	uv_idle_stop(&q->idle);
	uv_close((uv_handle_t *)&q->idle, idle_closed);
	pgpool_close(q->wr, pool_closed, q);
	pgpool_close(q->rd, pool_closed, q);
}

void
pg_stop(struct queue *base, void (*closed)(void *), void *data)
{
	struct pgq *q = (struct pgq *)base;

	q->stopped = closed;
	q->stopped_data = data;
	q->stopping = true;
	if (!q->started) {
		if (closed != NULL)
			closed(data);
		return;
	}
	maybe_finish(q);
}

void
pg_close(struct queue *base)
{
	struct pgq *q = (struct pgq *)base;

	if (q == NULL)
		return;
	if (q->started)
		log_error("queue: closed while running");
	if (q->sync != NULL)
		PQfinish(q->sync);
	free(q->conninfo);
	free(q->where);
	free(q->host);
	free(q);
}

uint64_t
pg_commits(const struct queue *base)
{
	return ((const struct pgq *)base)->commits;
}

uint64_t
pg_writes(const struct queue *base)
{
	return ((const struct pgq *)base)->commits;
}

size_t
pg_pending_writes(const struct queue *base)
{
	const struct pgq *q = (const struct pgq *)base;

	return (size_t)(q->writes_called - q->writes_done);
}

/* --- calls ------------------------------------------------------------ */

struct pgq_call *
pgq_call(struct pgq *q, const char *what, pgq_parse parse, queue_done done,
    void *data)
{
	struct pgq_call *c = xcalloc(1, sizeof *c);

	c->q = q;
	c->what = what;
	c->parse = parse;
	c->done = done;
	c->data = data;
	return c;
}

/* A call that cannot be sent: the caller's bug (before queue_start(), or
 * after queue_stop() completed); it fails rather than vanish. */
static void
refuse(struct pgq_call *c, const char *kind)
{
	log_error("queue: %s: a %s without a running queue", c->what, kind);
	if (c->done != NULL)
		c->done(c->data, QUEUE_ERROR);
	free(c);
}

static int
answer(struct pgq_call *c, PGresult *res, int rc)
{
	if (rc != PG_OK)
		return pgq_error(c->what, res, rc);
	__atomic_store_n(&down_logged, 0, __ATOMIC_RELAXED);
	return c->parse != NULL ? c->parse(c, res) : 0;
}

static void
write_done(void *data, PGresult *res, int rc)
{
	struct pgq_call *c = data;
	struct pgq *q = c->q;
	int qrc = answer(c, res, rc);

	if (rc == PG_OK) {
		int64_t d[NCOUNTS];
		int last = PQnfields(res) - 1;

		if (PQntuples(res) == 1 && last > 0 &&
		    !PQgetisnull(res, 0, last) &&
		    parse_counts(PQgetvalue(res, 0, last), d) == 0)
			counts_set(q, d, true);
	}
	/* The transaction ended: committed, or a refusal rolled back. */
	if (rc == PG_OK || (rc == PG_ESQL && qrc != QUEUE_ERROR &&
	    qrc != QUEUE_EDOWN))
		q->commits++;
	q->writes_done++;
	if (c->done != NULL)
		c->done(c->data, qrc);
	free(c);
	maybe_finish(q);
}

void
pgq_write(struct pgq_call *c, const char *call, int nparams,
    const char *const *params)
{
	struct pgq *q = c->q;
	char *sql;

	if (q->stopping && q->writes_done != q->writes_called) {
		/* Too late, but after the writes before it. */
		log_error("queue: %s: a write after the queue stopped",
		    c->what);
		*q->late_tail = c;
		q->late_tail = &c->next;
		return;
	}
	if (!q->started || q->stopping) {
		refuse(c, "write");
		return;
	}
	q->writes_called++;
	sql = xasprintf("SELECT r.*, current_setting('kiln.delta', true) "
	    "FROM %s AS r", call);
	pgpool_query(q->wr, sql, nparams, params, write_done, c);
	free(sql);
}

static int
failed(struct pgq_call *c, const PGresult *res)
{
	(void)c;
	(void)res;
	return QUEUE_ERROR;
}

void
pgq_write_failed(struct pgq_call *c)
{
	/* A round trip that changes nothing keeps the order of completions
	 * without a second queue of them. */
	c->parse = failed;
	pgq_write(c, "(VALUES (0))", 0, NULL);
}

static void
read_done(void *data, PGresult *res, int rc)
{
	struct pgq_call *c = data;
	struct pgq *q = c->q;
	int qrc = answer(c, res, rc);

	q->reads_pending--;
	c->done(c->data, qrc);
	free(c);
	maybe_finish(q);
}

void
pgq_read(struct pgq_call *c, const char *sql, int nparams,
    const char *const *params)
{
	struct pgq *q = c->q;

	if (!q->started || q->closing > 0) {
		refuse(c, "read");
		return;
	}
	q->reads_pending++;
	pgpool_query(q->rd, sql, nparams, params, read_done, c);
}

/* queue.h through backend.h: the PostgreSQL backend. */
const struct queue_ops pg_queue_ops = {
	.start = pg_start,
	.stop = pg_stop,
	.commits = pg_commits,
	.writes = pg_writes,
	.pending_writes = pg_pending_writes,
	.close = pg_close,
	.set_host = pg_set_host,
	.farm_key = pg_farm_key,
	.watch = pg_watch,
	.watch_cancels = pg_watch_cancels,
	.shared = pg_shared,
	.reachable = pg_reachable,
	.submit = pg_submit,
	.get = pg_get,
	.list = pg_list,
	.cancel = pg_cancel,
	.set_priority = pg_set_priority,
	.claim = pg_claim,
	.claim_job = pg_claim_job,
	.next_jobs = pg_next_jobs,
	.release = pg_release,
	.heartbeat = pg_heartbeat,
	.refuse = pg_refuse,
	.set_commit = pg_set_commit,
	.set_toolchain = pg_set_toolchain,
	.set_verified = pg_set_verified,
	.set_outputs = pg_set_outputs,
	.expand_targets = pg_expand_targets,
	.finish_build = pg_finish_build,
	.cache_lookup = pg_cache_lookup,
	.unsigned_jobs = pg_unsigned_jobs,
	.set_signed = pg_set_signed,
	.fail_job = pg_fail_job,
	.recover = pg_recover,
	.stale_targets = pg_stale_targets,
	.reclaim = pg_reclaim,
	.delivery_job = pg_delivery_job,
	.push_job = pg_push_job,
	.notify_due = pg_notify_due,
	.notify_result = pg_notify_result,
	.expire_select = pg_expire_select,
	.expire_jobs = pg_expire_jobs,
	.referenced_blobs = pg_referenced_blobs,
	.host_beat = pg_host_beat,
	.hosts = pg_hosts,
};
