/*
 * Inside daemon/db/: the queue's definition and the helpers its files
 * share (bodies in db.c).  Nothing outside daemon/db/ includes this
 * (but tests/unit/test_queue_sqlite.c); the rest of kilnd sees only queue.h.
 */
#ifndef KILN_DB_INT_H
#define KILN_DB_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>
#include <uv.h>

#include "backend.h"

struct writer;
struct read_done;

/* The write connection's prepared statements (db_stmt), by SQL text. */
#define DB_STMT_SLOTS 128
struct db_stmt_slot {
	const char *sql;	/* the caller's text: the key */
	sqlite3_stmt *st;
};

/* The filters of a listing, as bits of an index into sqlq.list[]. */
#define DB_LIST_STATE	1u
#define DB_LIST_PROJECT	2u
#define DB_LIST_REPO	4u
#define DB_LIST_KINDS	8u

struct sqlq {
	struct queue base;	/* first: a struct queue * is a struct sqlq * */
	sqlite3 *db;		/* loop thread: reads only */
	sqlite3 *wr;		/* the writer thread's: every write */
	sqlite3 *bg;		/* retention's selection (one pool thread) */
	char *path;
	char *host;		/* queue_set_host(), recorded by claims */
	struct writer *writer;	/* set by queue_start() */
	/* On wr's thread: inside the writer's transaction, so that
	 * db_begin/db_end leave it to the writer. */
	bool batching;
	/* What the writer's open transaction changed of base.counts
	 * (counts.c). */
	struct queue_counts pending;
	void (*stopped)(void *);	/* queue_stop()'s */
	void *stopped_data;
	/* Reads answered, their completions not yet run (reads.c); all on
	 * the loop thread. */
	uv_idle_t idle;
	bool idle_ready;		/* initialized by queue_start() */
	bool stopping;			/* queue_stop() called */
	bool draining;			/* inside the idle callback */
	struct read_done *rd_head, **rd_tail;
	size_t reads_pending;
	sqlite3_stmt *ins_job;	/* on wr */
	sqlite3_stmt *ins_target;
	sqlite3_stmt *ins_delivery;
	sqlite3_stmt *ins_push;
	sqlite3_stmt *get_job;	/* on db */
	sqlite3_stmt *get_targets;
	/* GET /v1/jobs, one statement per combination of its filters:
	 * DB_LIST_STATE | DB_LIST_PROJECT | DB_LIST_REPO. */
	sqlite3_stmt *list[DB_LIST_KINDS];
	sqlite3_stmt *get_artifacts;
	struct db_stmt_slot wstmt[DB_STMT_SLOTS];	/* on wr */
};

/*
 * The columns jobs.c reads a job and a target from, in its order; db.c
 * prepares the statements that select them.
 */
#define JOB_COLS "id, repo, ref, \"commit\", recipe, priority, state, error, " \
	"created_at, started_at, finished_at, timeout, cache, sums_sha256, " \
	"sig_sha256, prov_sha256, expired_at, project, network, notify_url, " \
	"notify_state, notify_attempts, notify_error, trust, submitted_by, " \
	"outputs, release, retry_of"
#define JOB_NCOLS 28
#define TARGET_COLS "id, target, state, attempt, exit_status, error, " \
	"started_at, finished_at, cached, toolchain, cached_from, host, " \
	"verified"
/* The same, qualified, for the join in queue_get(). */
#define JOB_COLS_J "j.id, j.repo, j.ref, j.\"commit\", j.recipe, j.priority, " \
	"j.state, j.error, j.created_at, j.started_at, j.finished_at, " \
	"j.timeout, j.cache, j.sums_sha256, j.sig_sha256, j.prov_sha256, " \
	"j.expired_at, j.project, j.network, j.notify_url, j.notify_state, " \
	"j.notify_attempts, j.notify_error, j.trust, j.submitted_by, " \
	"j.outputs, j.release, j.retry_of"
#define TARGET_COLS_T "t.id, t.target, t.state, t.attempt, t.exit_status, " \
	"t.error, t.started_at, t.finished_at, t.cached, t.toolchain, " \
	"t.cached_from, t.host, t.verified"

/* Log the connection's last error, with what was being done. */
void db_log(sqlite3 *db, const char *what);
/* Run SQL without results (logged on failure): 0 or QUEUE_ERROR. */
int db_exec(sqlite3 *db, const char *sql);
/*
 * The write connection's statement for `sql`, prepared once and kept
 * until queue_close(), reset and with its bindings cleared; NULL (logged)
 * when it does not compile.  The caller resets it when done, so that it
 * holds no cursor open.  Used where wr is used (the writer thread, or
 * before queue_start()).  A prepare costs more than most of the writes it
 * serves: it was two thirds of retention's expiry.
 */
sqlite3_stmt *db_stmt(struct sqlq *q, const char *sql);
/* Run one statement on wr with int64 parameters; returns changes or -1. */
int db_run(struct sqlq *q, const char *sql, int nparams,
    const int64_t *params);

/*
 * A write transaction on q->wr.  Inside the writer's batch (q->batching)
 * both leave it to the writer: the operation runs in a savepoint of the
 * writer's transaction, which rolls it back alone when it fails.  Outside
 * (queue_recover() before queue_start(), and nothing else): db_begin()
 * takes the write lock at once (BEGIN IMMEDIATE); db_end() commits when
 * rc is 0, rolls back otherwise, and returns rc (QUEUE_ERROR when the
 * commit itself failed).
 */
int db_begin(struct sqlq *q);
int db_end(struct sqlq *q, int rc);

/* Bind `s`, or NULL when it is NULL (the string must outlive the step). */
void db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);
/* A malloc'd copy of a text column, NULL for NULL. */
char *db_col_strdup(sqlite3_stmt *st, int i);

/*
 * Derive job_id's state from its targets' inside the caller's
 * transaction, and mark it to be signed or its callback due when that
 * state asks for it.
 */
int db_update_job_state(struct sqlq *q, int64_t job_id, int64_t now);
/* A job that ended with a callback URL: its callback is due at `now`
 * (a job failed at its fetch, or one whose targets all ended). */
int db_notify_due(struct sqlq *q, int64_t job_id, int64_t now);
/* A job's state (on wr): 0, QUEUE_ENOTFOUND or QUEUE_ERROR. */
int db_job_state_of(struct sqlq *q, int64_t id, enum job_state *out);

/*
 * The scheduler's reads of the queue's order (targets.c): the next
 * queued target, a job's next queued target (?1 = the job), the first
 * jobs (? = how many).  tests/unit/test_queue_sqlite.c checks that each
 * plan is an index walk that stops at its LIMIT.
 */
extern const char db_sql_claim[];
extern const char db_sql_claim_job[];
extern const char db_sql_next_jobs[];

/* counts.c: count at open and set the triggers up (on wr); apply what
 * a committed transaction changed; drop what a rolled back one did. */
int db_counts_init(struct sqlq *q);
void db_counts_commit(struct sqlq *q);
#define db_counts_drop(q) memset(&(q)->pending, 0, sizeof (q)->pending)

/*
 * The write operations, run on the writer thread (async.c wraps each in
 * the queue.h call of the same name); their contracts are queue.h's.
 */
int db_submit(struct sqlq *q, struct job *const *jobs, size_t n);
int db_cancel(struct sqlq *q, int64_t id, size_t *nrunning);
int db_set_priority(struct sqlq *q, int64_t id, int priority);
int db_claim(struct sqlq *q, struct queue_claim *out);
int db_claim_job(struct sqlq *q, int64_t job_id, struct queue_claim *out);
int db_release(struct sqlq *q, int64_t target_id, int attempt);
int db_heartbeat(struct sqlq *q, int64_t target_id, int attempt);
/* Why a write fenced by (target, attempt) changed nothing (inside its
 * transaction): QUEUE_ENOTFOUND (no such target), QUEUE_ECONFLICT (not
 * running that attempt: superseded) or QUEUE_ERROR. */
int db_not_running(struct sqlq *q, int64_t target_id);
int db_set_commit(struct sqlq *q, int64_t job_id, const char *commit,
    enum job_trust trust);
int db_set_outputs(struct sqlq *q, int64_t job_id, const char *outputs,
    bool release);
int db_set_verified(struct sqlq *q, int64_t target_id, int attempt,
    const char *verified);
int db_set_toolchain(struct sqlq *q, int64_t target_id,
    const char *toolchain);
int db_expand_targets(struct sqlq *q, int64_t job_id,
    int64_t placeholder_id, char *const *targets, size_t n);
int db_finish_build(struct sqlq *q, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state);
int db_set_signed(struct sqlq *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov);
int db_fail_job(struct sqlq *q, int64_t job_id, const char *error);
int db_notify_result(struct sqlq *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at);
int db_expire_jobs(struct sqlq *q, const int64_t *ids, size_t n,
    int64_t now);
int db_reclaim(struct sqlq *q, int64_t target_id, int64_t before,
    int max_attempts, int64_t now);

/*
 * The reads, run on the loop thread's connection (q->db) at call time;
 * reads.c wraps each in the queue.h call of the same name and delivers
 * its completion later.  Their contracts are queue.h's, returned.
 */
int db_get(struct sqlq *q, int64_t id, struct job **out);
/* The listing statement of kind (DB_LIST_* bits), to free(). */
char *db_list_sql(unsigned kind);
int db_list(struct sqlq *q, const struct queue_filter *f,
    struct job ***out, size_t *nout, int64_t *next);
int db_next_jobs(struct sqlq *q, struct queue_next *out, size_t max,
    size_t *n);
int db_cache_lookup(struct sqlq *q, const char *key,
    struct artifact **arts, size_t *narts, int64_t *from_job);
int db_unsigned_jobs(struct sqlq *q, int64_t **ids, size_t *n);
int db_stale_targets(struct sqlq *q, int64_t before, int64_t *ids,
    size_t max, size_t *n);
int db_delivery_job(struct sqlq *q, const char *forge, const char *id,
    int64_t *job_id);
int db_push_job(struct sqlq *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id);
int db_due_notifies(struct sqlq *q, int64_t now, struct queue_notify **out,
    size_t *n);

/* reads.c: start the delivery of read completions on `loop`; stop it
 * once the writer closed (then q->stopped runs). */
int db_reads_start(struct sqlq *q, uv_loop_t *loop);
void db_reads_writer_closed(struct sqlq *q);
/*
 * A read of another file (hosts.c) the way reads.c's own are made:
 * db_read_open() says whether completions can be delivered (else the
 * read is not run, and fails: logged); db_read_later() owes its
 * done(data, rc) on a later loop iteration.
 */
bool db_read_open(struct sqlq *q);
void db_read_later(struct sqlq *q, queue_done done, void *data, int rc);

/* The operations (backend.h), in the files that implement them. */
extern const struct queue_ops sqlite_queue_ops;
int sqlite_start(struct queue *base, uv_loop_t *loop);
void sqlite_stop(struct queue *base, void (*closed)(void *), void *data);
uint64_t sqlite_commits(const struct queue *base);
uint64_t sqlite_writes(const struct queue *base);
size_t sqlite_pending_writes(const struct queue *base);
void sqlite_close(struct queue *base);
void sqlite_set_host(struct queue *base, const char *name);
void sqlite_submit(struct queue *base, struct job *const *jobs, size_t n,
    queue_done done, void *data);
void sqlite_get(struct queue *base, int64_t id, struct job **out,
    queue_done done, void *data);
void sqlite_list(struct queue *base, const struct queue_filter *f,
    struct job ***out, size_t *nout, int64_t *next, queue_done done,
    void *data);
void sqlite_cancel(struct queue *base, int64_t id, size_t *nrunning,
    queue_done done, void *data);
void sqlite_set_priority(struct queue *base, int64_t id, int priority,
    queue_done done, void *data);
void sqlite_claim(struct queue *base, struct queue_claim *out,
    queue_done done, void *data);
void sqlite_claim_job(struct queue *base, int64_t job_id,
    struct queue_claim *out, queue_done done, void *data);
void sqlite_next_jobs(struct queue *base, struct queue_next *out, size_t max,
    size_t *n, queue_done done, void *data);
void sqlite_release(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data);
/* refusals.c */
void sqlite_refuse(struct queue *base, int64_t target_id, int attempt,
    const char *host, const char *why, int64_t window_ms, bool *everyone,
    queue_done done, void *data);
void sqlite_heartbeat(struct queue *base, int64_t target_id, int attempt,
    queue_done done, void *data);
void sqlite_set_commit(struct queue *base, int64_t job_id, const char *commit,
    enum job_trust trust, queue_done done, void *data);
void sqlite_set_outputs(struct queue *base, int64_t job_id,
    const char *outputs, bool release, queue_done done, void *data);
void sqlite_set_verified(struct queue *base, int64_t target_id,
    int attempt, const char *verified, queue_done done, void *data);
void sqlite_set_toolchain(struct queue *base, int64_t target_id,
    const char *toolchain, queue_done done, void *data);
void sqlite_expand_targets(struct queue *base, int64_t job_id,
    int64_t placeholder_id, char *const *targets, size_t n, queue_done done,
    void *data);
void sqlite_finish_build(struct queue *base, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state, queue_done done,
    void *data);
void sqlite_cache_lookup(struct queue *base, const char *key,
    struct artifact **arts, size_t *narts, int64_t *from_job, queue_done done,
    void *data);
void sqlite_unsigned_jobs(struct queue *base, int64_t **ids, size_t *n,
    queue_done done, void *data);
void sqlite_set_signed(struct queue *base, int64_t job_id, const char *sums,
    const char *sig, const char *prov, queue_done done, void *data);
void sqlite_fail_job(struct queue *base, int64_t job_id, const char *error,
    queue_done done, void *data);
int sqlite_recover(struct queue *base, int max_attempts, int *requeued,
    int *failed);
void sqlite_stale_targets(struct queue *base, int64_t now, int64_t *ids,
    size_t max, size_t *n, queue_done done, void *data);
void sqlite_reclaim(struct queue *base, int64_t target_id, int64_t now,
    int max_attempts, queue_done done, void *data);
void sqlite_delivery_job(struct queue *base, const char *forge,
    const char *id, int64_t *job_id, queue_done done, void *data);
void sqlite_push_job(struct queue *base, const char *project, const char *ref,
    const char *commit, int64_t *job_id, queue_done done, void *data);
void sqlite_notify_due(struct queue *base, int64_t now,
    struct queue_notify **out, size_t *n, queue_done done, void *data);
void sqlite_notify_result(struct queue *base, int64_t job_id,
    const char *state, const char *error, int64_t next_at, queue_done done,
    void *data);
int sqlite_expire_select(struct queue *base, const struct queue_retention *r,
    int64_t now, int64_t **ids, size_t *n);
void sqlite_expire_jobs(struct queue *base, const int64_t *ids, size_t n,
    int64_t now, queue_done done, void *data);
int sqlite_referenced_blobs(struct queue *base, char ***hex, size_t *n);
int sqlite_farm_key(struct queue *base, const char *key, char **recorded);
void sqlite_host_beat(struct queue *base, const struct queue_host *h,
    queue_done done, void *data);
void sqlite_hosts(struct queue *base, struct queue_host **out, size_t *n,
    queue_done done, void *data);

#endif
