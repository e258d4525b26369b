/*
 * Inside daemon/pg/: the PostgreSQL queue's definition and the helpers
 * its files share (bodies in queue.c and rows.c).  Nothing outside
 * daemon/pg/ includes this but tests; the rest of kilnd sees queue.h.
 *
 * How the backend answers queue.h:
 * - A write is one round trip on the pool `wr` (one connection, so writes
 *   run one at a time in call order): a call of one of the kiln_*()
 *   functions of schema/pg/002_queue.sql and 003_targets.sql, which does
 *   the whole operation in the statement's own transaction.  A broken
 *   connection never leaves half an operation behind.  Every kiln_*()
 *   write function returns exactly one row (a scalar, or one composite
 *   row; arrays or JSON for many values), because pgq_write() sends
 *   "SELECT r.*, <the counts' delta> FROM <call> AS r" and reads the
 *   delta from row 0's last column.
 * - Counts by state: triggers of 002_queue.sql gather what a transaction
 *   changed (the states rows entered and left) in a transaction-local
 *   setting, which each write returns with its result; the completion
 *   applies it before done runs, so the counts show every write of this
 *   host whose completion ran, as SQLite's do.  Other hosts' changes
 *   come in through a full count every PGQ_COUNTS_MS, sent on `wr`
 *   between the writes, so that it sees exactly the writes before it.
 * - A read is one SELECT on the pool `rd` (three connections, in
 *   parallel).  Both complete on the loop through pgpool.
 * - The functions report "no such row", "the job's state forbids it" and
 *   "nothing to claim" by raising the SQLSTATEs below, which pgq maps to
 *   QUEUE_ENOTFOUND, QUEUE_ECONFLICT and QUEUE_EEMPTY without logging;
 *   a raise rolls back whatever the function did before it.
 * - schema/pg/002_queue.sql has what 003_targets.sql builds on:
 *   kiln_lock_job(job_id) -> state (FOR NO KEY UPDATE; KL404),
 *   kiln_job_derive(job_id, now) -> the job's new state (SQLite's
 *   db_update_job_state: state, finished_at, sign_pending, callback due;
 *   call it holding the job's lock), kiln_job_notify_due(job_id, now).
 *   Lock order, against deadlocks between hosts: a job's targets first
 *   (ascending id when several), then the job's row, never a target after
 *   its job's row.
 * - The synchronous calls (queue_open's counts, queue_recover before
 *   start; queue_expire_select and queue_referenced_blobs on one pool
 *   thread at a time) use one blocking connection of their own, `sync`.
 */
#ifndef KILN_PG_INT_H
#define KILN_PG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "db/backend.h"
#include "pgconn.h"

#define PGQ_SQLSTATE_NOTFOUND	"KL404"	/* QUEUE_ENOTFOUND */
#define PGQ_SQLSTATE_CONFLICT	"KL409"	/* QUEUE_ECONFLICT */
#define PGQ_SQLSTATE_EMPTY	"KL204"	/* QUEUE_EEMPTY */

#define PGQ_WR_CONNS	1	/* writes in call order: one connection */
#define PGQ_RD_CONNS	3
#define PGQ_COUNTS_MS	2000	/* counts refreshed for other hosts' changes */

struct pgq_call;

struct pgq {
	struct queue base;	/* first: a struct queue * is a struct pgq * */
	uv_loop_t *loop;	/* set by queue_start() */
	char *conninfo;
	char *where;		/* host:port/dbname, for messages (no password) */
	char *host;		/* this kilnd host: queue_set_host() or hostname */
	struct pgpool *wr;	/* PGQ_WR_CONNS: every write, in call order */
	struct pgpool *rd;	/* PGQ_RD_CONNS: reads */
	PGconn *sync;		/* blocking; see the head comment */
	/* base.counts: each write's delta, and a full count now and then
	 * (queue.c). */
	bool refreshing;	/* a full count in flight on wr */
	uv_timer_t timer;	/* every PGQ_COUNTS_MS */
	bool timer_ready;
	/* Writes: called, completed, and of those the transactions that
	 * ended (committed, or rolled back by an expected refusal). */
	uint64_t writes_called, writes_done, commits;
	size_t reads_pending;
	/* Writes called after queue_stop(), failed in their turn. */
	struct pgq_call *late, **late_tail;
	/* queue_watch(): NOTIFY kiln_queue on rd's LISTEN connection,
	 * coalesced to one changed() per loop iteration by the idle. */
	void (*changed)(void *);
	void *changed_data;
	bool subscribed, changed_due;
	uv_idle_t idle;
	/* queue_watch_cancels(): NOTIFY kiln_cancel (010_cancel.sql), the
	 * job's id as payload, on the same LISTEN connection. */
	void (*canceled)(void *, int64_t);
	void *canceled_data;
	bool cancels_subscribed;
	/* queue_stop(): the pools drain, then closed(data). */
	bool started, stopping;
	unsigned closing;	/* handles and pools still closing */
	void (*stopped)(void *);
	void *stopped_data;
};

/*
 * One operation in flight.  pgq_call() makes it; pgq_write() or
 * pgq_read() sends it and owns it from then on (freed after done ran).
 */
struct pgq_call;
/*
 * Turn a result that came back without error into the operation's
 * answer: fill the caller's out-parameters from res and return 0, or a
 * QUEUE_E* code with the out-parameters left empty.  NULL: rc 0.
 */
typedef int (*pgq_parse)(struct pgq_call *c, const PGresult *res);
struct pgq_call {
	struct pgq *q;
	const char *what;	/* the operation, for the log ("claim") */
	pgq_parse parse;
	queue_done done;	/* NULL allowed for writes */
	void *data;
	void *out[4];		/* the caller's out-parameters, for parse */
	int64_t arg[2];		/* small inputs parse needs (a max) */
	struct pgq_call *next;	/* queue.c's */
};

struct pgq_call *pgq_call(struct pgq *q, const char *what, pgq_parse parse,
    queue_done done, void *data);
/*
 * Send c: for pgq_write, `sql` is the function call only
 * ("kiln_claim($1, $2)"), whose one row parse reads from column 0 on
 * (the delta comes after its columns); for pgq_read, a whole SELECT.
 * params are text (NULL for SQL NULL) and copied.  Then, on the loop:
 * rc from the result (PG_OK: parse; the SQLSTATEs above: their codes;
 * anything else QUEUE_ERROR, logged with c->what, the SQLSTATE and the
 * message), for a write the counts' delta applied, then done(data, rc).
 * A write that lost its connection is not sent again (it may have
 * committed): QUEUE_ERROR.  After queue_stop() was called, a write
 * fails with QUEUE_ERROR, in its turn after the writes before it.
 */
void pgq_write(struct pgq_call *c, const char *sql, int nparams,
    const char *const *params);
void pgq_read(struct pgq_call *c, const char *sql, int nparams,
    const char *const *params);
/* A write that failed before it could be sent (its input could not be
 * encoded; the caller logged why): QUEUE_ERROR, in its turn. */
void pgq_write_failed(struct pgq_call *c);

/*
 * The synchronous connection: connected (again, if it broke), or NULL
 * (logged).  pgq_sync_exec() runs one statement on it: 0 with *res (the
 * caller PQclear()s it), or a QUEUE_E* code (mapped as above; logged
 * with `what` unless expected) and *res NULL.
 */
PGconn *pgq_sync_conn(struct pgq *q);
int pgq_sync_exec(struct pgq *q, const char *what, const char *sql,
    int nparams, const char *const *params, PGresult **res);

/* Count every state again on the synchronous connection (queue_open,
 * and queue_recover after its changes): 0 or QUEUE_ERROR (logged). */
int pgq_counts_load(struct pgq *q);

/* The QUEUE_E* code of a failed result (PG_ESQL's res, or NULL with a
 * pgpool rc), logged with what unless it is one of the SQLSTATEs above. */
int pgq_error(const char *what, const PGresult *res, int pgrc);

/* Text of an int64 parameter, in buf (PGQ_INT_BUF bytes); returns buf. */
#define PGQ_INT_BUF 24
const char *pgq_int(char *buf, int64_t v);

/*
 * Rows (rows.c).  Values come as text: numbers through strtoll, NULL as
 * 0 (or NULL for strings, malloc'd copies).
 */
int64_t pgq_get_int(const PGresult *res, int row, int col);
char *pgq_get_str(const PGresult *res, int row, int col);
bool pgq_is_null(const PGresult *res, int row, int col);

/* A job's columns, in the order pgq_job_from_row() reads them. */
#define PGQ_JOB_COLS(p) p "id, " p "repo, " p "ref, " p "\"commit\", " \
	p "recipe, " p "priority, " p "state, " p "error, " p "created_at, " \
	p "started_at, " p "finished_at, " p "timeout, " p "cache, " \
	p "sums_sha256, " p "sig_sha256, " p "prov_sha256, " p "expired_at, " \
	p "project, " p "network, " p "notify_url, " p "notify_state, " \
	p "notify_attempts, " p "notify_error, " p "trust, " p "submitted_by, " \
	p "signed_by, " p "outputs, " p "release, " p "retry_of"
#define PGQ_JOB_NCOLS 29
/*
 * A target's columns, then its artifacts as one JSON array of
 * [name, size, sha256] in name order (NULL: none), in the order
 * pgq_target_from_row() reads them.  p is the table's alias with its
 * dot ("t.").
 */
#define PGQ_ARTS_JSON(p) "(SELECT json_agg(json_build_array(a.name, " \
	"a.size, a.sha256) ORDER BY a.name) FROM artifacts a " \
	"WHERE a.target_id = " p "id)"
#define PGQ_TARGET_COLS(p) p "id, " p "target, " p "state, " p "attempt, " \
	p "exit_status, " p "error, " p "started_at, " p "finished_at, " \
	p "cached, " p "toolchain, " p "cached_from, " p "host, " \
	p "verified, " PGQ_ARTS_JSON(p)
#define PGQ_TARGET_NCOLS 14

/* A job (no targets) from the PGQ_JOB_COLS starting at column col; NULL
 * (logged) for a row that does not parse. */
struct job *pgq_job_from_row(const PGresult *res, int row, int col);
/* Append the target of the PGQ_TARGET_COLS at col to j: 0 or
 * QUEUE_ERROR (logged). */
int pgq_add_target(struct job *j, const PGresult *res, int row, int col);
/* Artifacts from PGQ_ARTS_JSON's text (NULL: none): 0 or QUEUE_ERROR
 * (logged); *arts malloc'd. */
int pgq_artifacts_from_json(const char *json, struct artifact **arts,
    size_t *n);

/* The operations (backend.h), in the files that implement them. */
extern const struct queue_ops pg_queue_ops;
int pg_queue_open(struct queue **out, const char *conninfo, char *err,
    size_t errsize);
int pg_start(struct queue *base, uv_loop_t *loop);
void pg_stop(struct queue *base, void (*closed)(void *), void *data);
uint64_t pg_commits(const struct queue *base);
uint64_t pg_writes(const struct queue *base);
size_t pg_pending_writes(const struct queue *base);
void pg_close(struct queue *base);
void pg_set_host(struct queue *base, const char *name);
/* jobs.c */
void pg_submit(struct queue *base, struct job *const *jobs, size_t n,
    queue_done done, void *data);
void pg_get(struct queue *base, int64_t id, struct job **out,
    queue_done done, void *data);
/* pg_list()'s statement for the filters given, to free(). */
char *pg_list_sql(bool state, bool project, bool repo);
void pg_list(struct queue *base, const struct queue_filter *f,
    struct job ***out, size_t *nout, int64_t *next, queue_done done,
    void *data);
void pg_cancel(struct queue *base, int64_t id, size_t *nrunning,
    queue_done done, void *data);
void pg_set_priority(struct queue *base, int64_t id, int priority,
    queue_done done, void *data);
void pg_set_commit(struct queue *base, int64_t job_id, const char *commit,
    enum job_trust trust, queue_done done, void *data);
void pg_set_outputs(struct queue *base, int64_t job_id, const char *outputs,
    bool release, queue_done done, void *data);
void pg_set_verified(struct queue *base, int64_t target_id, int attempt,
    const char *verified, queue_done done, void *data);
void pg_set_toolchain(struct queue *base, int64_t target_id,
    const char *toolchain, queue_done done, void *data);
void pg_fail_job(struct queue *base, int64_t job_id, const char *error,
    queue_done done, void *data);
void pg_expand_targets(struct queue *base, int64_t job_id,
    int64_t placeholder_id, char *const *targets, size_t n, queue_done done,
    void *data);
void pg_delivery_job(struct queue *base, const char *forge, const char *id,
    int64_t *job_id, queue_done done, void *data);
void pg_push_job(struct queue *base, const char *project, const char *ref,
    const char *commit, int64_t *job_id, queue_done done, void *data);
void pg_notify_due(struct queue *base, int64_t now,
    struct queue_notify **out, size_t *n, queue_done done, void *data);
void pg_notify_result(struct queue *base, int64_t job_id, const char *state,
    const char *error, int64_t next_at, queue_done done, void *data);
/* targets.c */
void pg_claim(struct queue *base, struct queue_claim *out, queue_done done,
    void *data);
void pg_claim_job(struct queue *base, int64_t job_id,
    struct queue_claim *out, queue_done done, void *data);
void pg_next_jobs(struct queue *base, struct queue_next *out, size_t max,
    size_t *n, queue_done done, void *data);
void pg_release(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data);
void pg_heartbeat(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data);
void pg_refuse(struct queue *base, int64_t target_id, int attempt,
    const char *host, const char *why, int64_t window_ms, bool *everyone,
    queue_done done, void *data);
void pg_finish_build(struct queue *base, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state,
    queue_done done, void *data);
void pg_cache_lookup(struct queue *base, const char *key,
    struct artifact **arts, size_t *narts, int64_t *from_job,
    queue_done done, void *data);
int pg_recover(struct queue *base, int max_attempts, int *requeued,
    int *failed);
void pg_stale_targets(struct queue *base, int64_t now, int64_t *ids,
    size_t max, size_t *n, queue_done done, void *data);
void pg_reclaim(struct queue *base, int64_t target_id, int64_t now,
    int max_attempts, queue_done done, void *data);
/* retention.c */
void pg_unsigned_jobs(struct queue *base, int64_t **ids, size_t *n,
    queue_done done, void *data);
void pg_set_signed(struct queue *base, int64_t job_id, const char *sums,
    const char *sig, const char *prov, queue_done done, void *data);
int pg_expire_select(struct queue *base, const struct queue_retention *r,
    int64_t now, int64_t **ids, size_t *n);
void pg_expire_jobs(struct queue *base, const int64_t *ids, size_t n,
    int64_t now, queue_done done, void *data);
int pg_referenced_blobs(struct queue *base, char ***hex, size_t *n);
/* hosts.c */
int pg_farm_key(struct queue *base, const char *key, char **recorded);
void pg_watch(struct queue *base, void (*changed)(void *), void *data);
void pg_watch_cancels(struct queue *base, void (*canceled)(void *, int64_t),
    void *data);
/* Once started and watched: LISTEN kiln_queue, and kiln_cancel once
 * cancels are watched (hosts.c). */
void pgq_subscribe(struct pgq *q);
bool pg_shared(const struct queue *base);
bool pg_reachable(const struct queue *base);
void pg_host_beat(struct queue *base, const struct queue_host *h,
    queue_done done, void *data);
void pg_hosts(struct queue *base, struct queue_host **out, size_t *n,
    queue_done done, void *data);

#endif
