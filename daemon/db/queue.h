/*
 * The job queue.  This is the one narrow interface behind which the jobs
 * tables live: SQLite here, and any other store (PostgreSQL with FOR
 * UPDATE SKIP LOCKED) must fit the same calls.  Nothing outside
 * daemon/db/ writes SQL against the job tables.
 *
 * Two kinds of call, both asynchronous, so that a backend that answers
 * over the network never makes the loop wait:
 * - Reads (queue_get, queue_list, queue_next_jobs, the lookups) are
 *   bounded: index lookups with a LIMIT, never a scan that grows with the
 *   queue.  Their out-parameters are filled before done(data, rc) runs on
 *   the loop thread, always after the call returned (never inside it), and
 *   must stay valid until then.  A read sees every write whose completion
 *   has run (and may see a write committed but not yet completed).  On
 *   rc != 0 the out-parameters are left empty (NULL / 0): nothing to free.
 *   done is never NULL for a read.  Reads need queue_start(): they
 *   complete through the loop.  Exceptions, synchronous: queue_recover
 *   (before start), the counts (queue_count_*, kept in memory),
 *   queue_expire_select and queue_referenced_blobs (a pool thread, their
 *   own connection), queue_schema_version, and queue_commits / writes /
 *   pending_writes.
 * - Writes are asynchronous: the call hands the operation to the queue's
 *   one writer and returns at once; done(data, rc) runs later on the
 *   loop thread, once the write is durable (rc 0) or failed.  Writes run
 *   in the order they were called, so a read made in a completion sees
 *   every write called before it.  Out-parameters (a claim, a count) are
 *   filled before done runs and must stay valid until then; strings and
 *   arrays passed in are copied unless said otherwise.  A write's `done`
 *   may be NULL when the caller does not care (a heartbeat).
 *
 * A second backend provides the same calls with the same ordering and
 * durability: tests/unit/test_queue.c, test_queue_life.c,
 * test_queue_async.c, test_queue_reads.c and test_queue_hosts.c are the
 * conformance suite, written against this header only.
 *
 * Return values (and a completion's rc): 0, or one of the negative codes
 * below that a caller acts on; QUEUE_ERROR for anything else (the
 * storage's message is logged).
 */
#ifndef KILN_QUEUE_H
#define KILN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "job.h"

#define QUEUE_ERROR	(-1)	/* storage failure, logged */
#define QUEUE_ENOTFOUND	(-2)	/* no such job or target */
#define QUEUE_ECONFLICT	(-3)	/* the job's state forbids it */
#define QUEUE_EEMPTY	(-4)	/* nothing to claim */
/* The database cannot be reached, or the connection broke while the call
 * ran (it may or may not have been done): worth trying again later. */
#define QUEUE_EDOWN	(-5)
/* A heartbeat's answer: the target's job is being canceled (perhaps by
 * another host of the farm); the caller stops the build, then finishes
 * it canceled. */
#define QUEUE_ECANCELED	(-6)

#define QUEUE_LIST_MAX 1000

struct queue;

/* The completion of a read or a write: rc is 0 or a QUEUE_E* code. */
typedef void (*queue_done)(void *data, int rc);

/*
 * Open (creating if needed) the database at `path`, apply the embedded
 * migrations in one transaction and open the connections.  On failure a
 * one-line reason is left in `err`.
 */
int queue_open(struct queue **out, const char *path, char *err,
    size_t errsize);
/*
 * Start the writer (its thread, and a handle on `loop` that delivers
 * completions).  Writes may be called from then on.
 */
int queue_start(struct queue *q, uv_loop_t *loop);
/*
 * Run every write called so far, deliver their completions and those of
 * the reads still pending (with their results), stop the writer; then
 * closed(data) on the loop.  No read or write may be called after.
 */
void queue_stop(struct queue *q, void (*closed)(void *), void *data);
/* Transactions and writes the writer committed so far. */
uint64_t queue_commits(const struct queue *q);
uint64_t queue_writes(const struct queue *q);
/* Writes called and not yet completed. */
size_t queue_pending_writes(const struct queue *q);
/* Only after queue_stop() completed, or when never started. */
void queue_close(struct queue *q);
/*
 * Name this kilnd host ([kilnd] host_name): the targets it claims record
 * it, and in a farm its recovery after a crash takes back only its own.
 * Synchronous, before queue_recover() and queue_start(); copied.
 */
void queue_set_host(struct queue *q, const char *name);
/*
 * How long a claim or a heartbeat of this host holds a running target
 * ([kilnd] target_lease, in ms; QUEUE_LEASE_MS until set): until then no
 * host takes it back (queue_stale_targets()).  Each host holds its
 * targets for its own lease.  On the loop's thread, any time: the next
 * claim or heartbeat holds for the new lease.
 */
#define QUEUE_LEASE_MS	120000
void queue_set_lease(struct queue *q, int64_t lease_ms);
/* The schema version this binary carries: SQLite's, and PostgreSQL's
 * (each backend's migrations are numbered on their own). */
int queue_schema_version(void);
int queue_pg_schema_version(void);
/* The open queue's: its backend's. */
int queue_schema(const struct queue *q);
/*
 * The farm's signing key: `public_key` is kiln.pub's text (minisign's
 * format).  The first kilnd to open the database records it; after
 * that 0 only when it is the one recorded, else -1 with a message that
 * names both key ids (a host of another farm, or a state directory
 * moved under another key).  -1 too when the text is not a minisign
 * public key, or the database fails.  Synchronous, before queue_start().
 */
int queue_farm_key(struct queue *q, const char *public_key, char *err,
    size_t errsize);

/*
 * Change notifications, for a queue other processes write too.  A
 * shared queue (PostgreSQL: every host of a farm) calls changed(data) on
 * the loop after another host's submission or a target put back in the
 * queue (released, reclaimed, recovered), so that a free slot claims at
 * once; several changes at once come as one call (at most one per loop
 * iteration), and one more after each (re)subscription, since changes
 * made while it was down are not told.  A hint, not a guarantee: the
 * caller still looks for work on its own now and then.  SQLite (one
 * host, which makes its changes itself) never calls it.  changed NULL
 * stops the calls.  Any time after queue_open(); subscribed once started.
 */
void queue_watch(struct queue *q, void (*changed)(void *data), void *data);
/*
 * Cancels, for a queue other processes write too.  A shared queue
 * (PostgreSQL) calls canceled(data, job_id) on the loop when a host's
 * queue_cancel() of job_id found targets running, wherever they run, so
 * that the host that runs them stops them at once.  A hint too: a
 * cancel told while the subscription was down is lost, and the
 * heartbeat of each target of that job answers QUEUE_ECANCELED instead.
 * It may come for a job this host runs nothing of, or more than once.
 * SQLite (one host, which stops its own builds when it cancels) never
 * calls it.  canceled NULL stops the calls.  Any time after queue_open();
 * subscribed once started.
 */
void queue_watch_cancels(struct queue *q,
    void (*canceled)(void *data, int64_t job_id), void *data);
/* Whether other processes write this queue too (PostgreSQL: true). */
bool queue_shared(const struct queue *q);
/*
 * Whether the database answers now (PostgreSQL: its connections are up;
 * SQLite, a file: always).  While it does not, writes fail QUEUE_EDOWN,
 * the counts are the last ones known, and the backend reconnects.
 */
bool queue_reachable(const struct queue *q);

/*
 * Store `n` new jobs (state queued, their targets queued), all or
 * nothing, and set each job's and target's id before done.  The jobs
 * (not copied) must stay valid until done runs.
 */
void queue_submit(struct queue *q, struct job *const *jobs, size_t n,
    queue_done done, void *data);

void queue_get(struct queue *q, int64_t id, struct job **out,
    queue_done done, void *data);

struct queue_filter {
	bool has_state;
	enum job_state state;
	int64_t after;		/* list jobs with id < after; 0 = newest */
	size_t limit;		/* 1..QUEUE_LIST_MAX */
	const char *project;	/* only this project's jobs; NULL = any */
	const char *repo;	/* only jobs of this repo (exact); NULL = any */
};
/* Newest first.  *next is the cursor for the next page, 0 when none.
 * *f is copied, and its strings with it: they need not outlive the
 * call.  Each filter (state, project, repo, any of them together) walks
 * an index from the cursor. */
void queue_list(struct queue *q, const struct queue_filter *f,
    struct job ***out, size_t *nout, int64_t *next, queue_done done,
    void *data);

/*
 * Cancel job `id`: its queued targets become canceled at once; *nrunning
 * is set to the number of its targets still running, which the caller
 * must stop and then finish() as canceled.  QUEUE_ECONFLICT when the job
 * already ended other than canceled (canceling twice is not an error).
 */
void queue_cancel(struct queue *q, int64_t id, size_t *nrunning,
    queue_done done, void *data);
/*
 * Give job `id` and its queued targets the new priority (running ones
 * keep theirs; targets planned later take the job's).  QUEUE_ECONFLICT
 * when the job ended or is being canceled.
 */
void queue_set_priority(struct queue *q, int64_t id, int priority,
    queue_done done, void *data);

struct queue_claim {
	int64_t job_id;
	int64_t target_id;
	char target[TARGET_NAME_MAX];
	int attempt;		/* 1 for the first run */
};
/*
 * Take the next queued target, highest priority first, then oldest job,
 * and mark it running.  QUEUE_EEMPTY when nothing is queued.
 */
void queue_claim(struct queue *q, struct queue_claim *out, queue_done done,
    void *data);
/* The same, only among the targets of one job. */
void queue_claim_job(struct queue *q, int64_t job_id,
    struct queue_claim *out, queue_done done, void *data);

struct queue_next {
	int64_t job_id;
	int priority;
};
/*
 * The first `max` jobs with queued targets, highest priority first, then
 * oldest: the scheduler picks among them for fairness across jobs.
 */
void queue_next_jobs(struct queue *q, struct queue_next *out, size_t max,
    size_t *n, queue_done done, void *data);
/*
 * The writes of a claimed target (release, heartbeat, finish) carry the
 * claim's `attempt` as a fencing token: they apply only while the target
 * is running that attempt.  Otherwise QUEUE_ECONFLICT: the run was
 * superseded (its lease ran out, the target was given back and perhaps
 * claimed again, maybe by another host), and the caller throws its work
 * away.  QUEUE_ENOTFOUND: no such target.
 */
/* Give a running target back to the queue (kilnd stopping): the run did
 * not count as an attempt. */
void queue_release(struct queue *q, int64_t target_id, int attempt,
    queue_done done, void *data);
/*
 * A farm's host cannot build a running target for want of a toolchain
 * (planned with its own: the C toolchain of a cgo target, a Go release):
 * give attempt `attempt` of it back to the queue, its run not counted,
 * and record that `host` refused it, with `why`.  The refusal holds for
 * window_ms: until then queue_claim, queue_claim_job and queue_next_jobs
 * of this queue's host (queue_set_host) pass the target over.  A host
 * is alive when its last beat (queue_host_beat) is within window_ms of
 * now; `host` always is.  When every live host holds a refusal of the
 * target, it fails instead, with the error "no host of the farm can
 * build it: h1: <why>; h2: <why>" (hosts in byte order), and its job's
 * state follows; *everyone says which happened.  A target of a job being
 * canceled is canceled, *everyone false.  Fenced like queue_release.
 * Strings copied.
 */
void queue_refuse(struct queue *q, int64_t target_id, int attempt,
    const char *host, const char *why, int64_t window_ms, bool *everyone,
    queue_done done, void *data);
/*
 * Mark a running target alive now.  QUEUE_ECANCELED when its job is
 * being canceled: the caller stops the build (on PostgreSQL the beat is
 * recorded all the same, so that the lease holds while it stops).
 */
void queue_heartbeat(struct queue *q, int64_t target_id, int attempt,
    queue_done done, void *data);
/* Record the commit a job's ref resolved to and the job's trust class
 * (known once the ref is). */
void queue_set_commit(struct queue *q, int64_t job_id, const char *commit,
    enum job_trust trust, queue_done done, void *data);
/* A job's outputs once its repository's are known (JSON text or NULL,
 * and whether they need the release row: schema/015_outputs.sql). */
void queue_set_outputs(struct queue *q, int64_t job_id, const char *outputs,
    bool release, queue_done done, void *data);
/*
 * Record what a verifying rebuild of the target's attempt showed (JSON,
 * schema/015_outputs.sql); QUEUE_ECONFLICT when the target is at another
 * attempt.
 */
void queue_set_verified(struct queue *q, int64_t target_id, int attempt,
    const char *verified, queue_done done, void *data);
/* Record which toolchain builds the target ("go1.22.12"). */
void queue_set_toolchain(struct queue *q, int64_t target_id,
    const char *toolchain, queue_done done, void *data);
/*
 * Replace the JOB_TARGETS_FROM_REPO row `placeholder_id` of job_id by
 * queued rows for the n normalized targets, in one transaction.
 */
void queue_expand_targets(struct queue *q, int64_t job_id,
    int64_t placeholder_id, char *const *targets, size_t n,
    queue_done done, void *data);
/* How a target ended, for queue_finish_build(). */
struct queue_outcome {
	enum target_state state;
	int exit_status;		/* < 0: none */
	const char *error;
	const struct artifact *arts;	/* stored, with digests */
	size_t narts;
	const char *cache_key;		/* recorded when succeeded, or NULL */
	bool cached;			/* reused an equal build's artifacts */
	int64_t cached_from;		/* the job that built them, or 0 */
};
/*
 * End a running target in a terminal state.  Its artifacts and cache key
 * are recorded in the same transaction; the job's state follows from its
 * targets', and *job_state (if not NULL) gets it.  The outcome is copied.
 */
void queue_finish_build(struct queue *q, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state,
    queue_done done, void *data);
/*
 * The artifacts of the newest succeeded target built with `key`, of a
 * job whose files retention has not removed, and the job that built them
 * (*from_job: through any chain of reuses); QUEUE_ENOTFOUND if none.
 * The key is copied.
 */
void queue_cache_lookup(struct queue *q, const char *key,
    struct artifact **arts, size_t *narts, int64_t *from_job,
    queue_done done, void *data);
/* Succeeded jobs not yet signed (malloc'd ids), the oldest
 * QUEUE_UNSIGNED_MAX: a caller that got that many asks again later. */
#define QUEUE_UNSIGNED_MAX 64
#define QUEUE_STR_(x) #x
#define QUEUE_STR(x) QUEUE_STR_(x)
void queue_unsigned_jobs(struct queue *q, int64_t **ids, size_t *n,
    queue_done done, void *data);
/* Record a job's signed files (store digests), all three at once;
 * QUEUE_ENOTFOUND when it is not succeeded or was expired meanwhile;
 * on PostgreSQL, QUEUE_ECONFLICT when another host recorded its own
 * signature first (that one stands). */
void queue_set_signed(struct queue *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov, queue_done done, void *data);

/* Fail a whole job before its builds (fetch failed, bad recipe): its
 * targets end with no attempt counted and no start time. */
void queue_fail_job(struct queue *q, int64_t job_id, const char *error,
    queue_done done, void *data);

/*
 * After a crash: targets left running are queued again, or failed with
 * "interrupted" once they had max_attempts runs.  Counts are returned.
 * Synchronous, and only before queue_start().
 */
int queue_recover(struct queue *q, int max_attempts, int *requeued,
    int *failed);

/*
 * A lease on running targets.  queue_stale_targets() reads (at most max)
 * running targets whose lease ran out before `now` (ms): the claim's or
 * the last heartbeat's time plus the lease of the host that made it
 * (queue_set_lease());
 * queue_reclaim() gives one back to the queue, or fails it once it had
 * max_attempts runs (canceled when its job is being canceled), and
 * answers QUEUE_ENOTFOUND when it is no longer running or a heartbeat
 * came meanwhile.  For builds nobody finishes any more: the result of one
 * could not be stored, or (with several hosts) its host is gone.
 */
void queue_stale_targets(struct queue *q, int64_t now, int64_t *ids,
    size_t max, size_t *n, queue_done done, void *data);
void queue_reclaim(struct queue *q, int64_t target_id, int64_t now,
    int max_attempts, queue_done done, void *data);

/* Counts by state, kept on every committed change (constant time). */
int queue_count_jobs(struct queue *q, enum job_state state, int64_t *out);
int queue_count_targets(struct queue *q, enum target_state state,
    int64_t *out);
/* Every job state's and target state's count, in one pass each (/metrics). */
int queue_count_by_state(struct queue *q, int64_t jobs[JOB_STATE_COUNT],
    int64_t targets[TARGET_STATE_COUNT]);

/* The job a webhook delivery (forge, id) made; QUEUE_ENOTFOUND if none. */
void queue_delivery_job(struct queue *q, const char *forge, const char *id,
    int64_t *job_id, queue_done done, void *data);
/*
 * The job a webhook push of `ref` at `commit` made for `project`;
 * QUEUE_ENOTFOUND if none.  queue_submit() records the push of every job
 * that has a delivery id, from its project, ref and commit as submitted
 * (the pushed commit, before an annotated tag is peeled).
 */
void queue_push_job(struct queue *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id, queue_done done, void *data);

/* Result callbacks due at `now` (at most 64, oldest first). */
struct queue_notify {
	int64_t job_id;
	int attempts;			/* made so far */
	int64_t finished_at;
};
void queue_notify_due(struct queue *q, int64_t now,
    struct queue_notify **out, size_t *n, queue_done done, void *data);
/* Record an attempt: state "pending" (again at next_at), "delivered" or
 * "failed"; error is the last failure or NULL. */
void queue_notify_result(struct queue *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at, queue_done done, void *data);

/*
 * Retention.  queue_expire_select() and queue_referenced_blobs() read on
 * a connection of their own and may run on a pool thread (one such
 * thread at a time); queue_expire_jobs() is a write like the others.
 */
struct queue_retention {
	unsigned keep_jobs;		/* finished jobs kept per repo; 0 = all */
	unsigned keep_days;		/* 0 = forever */
	uint64_t max_bytes;		/* artifact bytes kept; 0 = no cap */
};
/* The finished jobs the policy no longer keeps (malloc'd, sorted). */
int queue_expire_select(struct queue *q, const struct queue_retention *r,
    int64_t now, int64_t **ids, size_t *n);
/*
 * Expire those jobs: their artifact rows, signed files and cache keys go,
 * each job stays on record with expired_at set.  A job not finished (or
 * already expired) is left alone.  At most QUEUE_EXPIRE_BATCH jobs per
 * call, one transaction each, so that the write lock is held briefly.
 */
#define QUEUE_EXPIRE_BATCH 256
void queue_expire_jobs(struct queue *q, const int64_t *ids, size_t n,
    int64_t now, queue_done done, void *data);
/* Every store digest something references, sorted (strcmp); malloc'd. */
int queue_referenced_blobs(struct queue *q, char ***hex, size_t *n);

/*
 * The hosts of the farm: one row per kilnd, named by its host_name,
 * which it writes when it starts, with its target heartbeats and once
 * more when it stops (GET /v1/hosts).  On SQLite the one host.
 */
#define QUEUE_HOST_MAX 64
#define QUEUE_HOSTS_MAX 256
struct queue_host {
	char name[QUEUE_HOST_MAX];
	char *base_url;		/* where other hosts and clients reach it */
	char *version;		/* kilnd's PACKAGE_VERSION */
	/* What it can build (its toolchain map, toolchains_map()), or
	 * NULL: not told (a beat without it leaves the last one). */
	char *toolchains;
	unsigned slots;		/* builds at once: its workers */
	unsigned running;	/* builds running now */
	int64_t started_at;	/* ms: this kilnd's start */
	int64_t seen_at;	/* ms: its last beat (set by the queue from the clock) */
	/* ms: the lease it holds for (queue_set_lease()), as its last beat
	 * recorded; 0: not recorded (SQLite, or a row from before). */
	int64_t lease_ms;
};
/*
 * A write: insert or replace the row named h->name with *h, seen_at the
 * queue's clock now (h->seen_at is not read).  *h is copied.
 */
void queue_host_beat(struct queue *q, const struct queue_host *h,
    queue_done done, void *data);
/* A read: every host (at most QUEUE_HOSTS_MAX), by name in byte order;
 * *out is malloc'd, for queue_hosts_free(). */
void queue_hosts(struct queue *q, struct queue_host **out, size_t *n,
    queue_done done, void *data);
void queue_hosts_free(struct queue_host *h, size_t n);

#endif
