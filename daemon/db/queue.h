/*
 * The job queue.  This is the one narrow interface behind which the jobs
 * tables live: SQLite here, and any other store (PostgreSQL with FOR
 * UPDATE SKIP LOCKED) must fit the same calls.  Nothing outside
 * daemon/db/ writes SQL against the job tables.
 *
 * Threads: queue_submit() may run on one thread (the group-commit thread)
 * while every other call runs on the loop thread; they use separate SQLite
 * connections.  Each group of calls must not itself be used concurrently.
 *
 * Return values: 0, or one of the negative codes below that a caller acts
 * on; QUEUE_ERROR for anything else (the SQLite message is logged here).
 */
#ifndef KILN_QUEUE_H
#define KILN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

#define QUEUE_ERROR	(-1)	/* storage failure, logged */
#define QUEUE_ENOTFOUND	(-2)	/* no such job or target */
#define QUEUE_ECONFLICT	(-3)	/* the job's state forbids it */
#define QUEUE_EEMPTY	(-4)	/* nothing to claim */

#define QUEUE_LIST_MAX 1000

struct queue;

/*
 * Open (creating if needed) the database at `path`, apply the embedded
 * migrations in one transaction and open the connections.  On failure a
 * one-line reason is left in `err`.
 */
int queue_open(struct queue **out, const char *path, char *err,
    size_t errsize);
void queue_close(struct queue *q);
/* The schema version this binary carries. */
int queue_schema_version(void);

/*
 * Store `n` new jobs (state queued, their targets queued) in ONE
 * transaction, committed with synchronous=FULL before it returns: this is
 * the group commit.  Sets each job's and target's id.  All or nothing.
 */
int queue_submit(struct queue *q, struct job *const *jobs, size_t n);
/* Transactions queue_submit() committed (read after it returned). */
uint64_t queue_submit_commits(const struct queue *q);

int queue_get(struct queue *q, int64_t id, struct job **out);

struct queue_filter {
	bool has_state;
	enum job_state state;
	int64_t after;		/* list jobs with id < after; 0 = newest */
	size_t limit;		/* 1..QUEUE_LIST_MAX */
};
/* Newest first.  *next is the cursor for the next page, 0 when none. */
int queue_list(struct queue *q, const struct queue_filter *f,
    struct job ***out, size_t *nout, int64_t *next);

/*
 * Cancel job `id`: its queued targets become canceled at once; *nrunning
 * is set to the number of its targets still running, which the caller
 * must stop and then finish() as canceled.  QUEUE_ECONFLICT when the job
 * already ended other than canceled (canceling twice is not an error).
 */
int queue_cancel(struct queue *q, int64_t id, size_t *nrunning);
/*
 * Give job `id` and its queued targets the new priority (running ones
 * keep theirs; targets planned later take the job's).  QUEUE_ECONFLICT
 * when the job ended or is being canceled.
 */
int queue_set_priority(struct queue *q, int64_t id, int priority);

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
int queue_claim(struct queue *q, struct queue_claim *out);
/* The same, only among the targets of one job. */
int queue_claim_job(struct queue *q, int64_t job_id, struct queue_claim *out);

struct queue_next {
	int64_t job_id;
	int priority;
};
/*
 * The first `max` jobs with queued targets, highest priority first, then
 * oldest: the scheduler picks among them for fairness across jobs.
 */
int queue_next_jobs(struct queue *q, struct queue_next *out, size_t max,
    size_t *n);
/* Give a running target back to the queue (kilnd stopping): the run did
 * not count as an attempt. */
int queue_release(struct queue *q, int64_t target_id);
int queue_heartbeat(struct queue *q, int64_t target_id);
/* Record the commit a job's ref resolved to and the job's trust class
 * (known once the ref is). */
int queue_set_commit(struct queue *q, int64_t job_id, const char *commit,
    enum job_trust trust);
/* Record which toolchain builds the target ("go1.22.12"). */
int queue_set_toolchain(struct queue *q, int64_t target_id,
    const char *toolchain);
/*
 * Replace the JOB_TARGETS_FROM_REPO row `placeholder_id` of job_id by
 * queued rows for the n normalized targets, in one transaction.
 */
int queue_expand_targets(struct queue *q, int64_t job_id,
    int64_t placeholder_id, char *const *targets, size_t n);
/*
 * End a running target in a terminal state; exit_status < 0 means none.
 * Its artifacts are recorded in the same transaction.  The job's state
 * follows from its targets'.
 */
int queue_finish(struct queue *q, int64_t target_id, enum target_state state,
    int exit_status, const char *error, const struct artifact *arts,
    size_t narts);
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
/* queue_finish() with the cache fields; *job_state (if not NULL) gets
 * the job's state after it. */
int queue_finish_build(struct queue *q, int64_t target_id,
    const struct queue_outcome *o, enum job_state *job_state);
/*
 * The artifacts of the newest succeeded target built with `key`, of a
 * job whose files retention has not removed, and the job that built them
 * (*from_job: through any chain of reuses); QUEUE_ENOTFOUND if none.
 */
int queue_cache_lookup(struct queue *q, const char *key,
    struct artifact **arts, size_t *narts, int64_t *from_job);
/* Succeeded jobs not yet signed (malloc'd ids). */
int queue_unsigned_jobs(struct queue *q, int64_t **ids, size_t *n);
/* Record a job's signed files (store digests), all three at once;
 * QUEUE_ENOTFOUND when it is not succeeded or was expired meanwhile. */
int queue_set_signed(struct queue *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov);

/* Fail a whole job before or while it builds (fetch failed, bad recipe). */
int queue_fail_job(struct queue *q, int64_t job_id, const char *error);

/*
 * After a crash: targets left running are queued again, or failed with
 * "interrupted" once they had max_attempts runs.  Counts are returned.
 */
int queue_recover(struct queue *q, int max_attempts, int *requeued,
    int *failed);

int queue_count_jobs(struct queue *q, enum job_state state, int64_t *out);
int queue_count_targets(struct queue *q, enum target_state state,
    int64_t *out);
/* Every job state's and target state's count, in one pass each (/metrics). */
int queue_count_by_state(struct queue *q, int64_t jobs[JOB_STATE_COUNT],
    int64_t targets[TARGET_STATE_COUNT]);

/* The job a webhook delivery (forge, id) made; QUEUE_ENOTFOUND if none. */
int queue_delivery_job(struct queue *q, const char *forge, const char *id,
    int64_t *job_id);
/*
 * The job a webhook push of `ref` at `commit` made for `project`;
 * QUEUE_ENOTFOUND if none.  queue_submit() records the push of every job
 * that has a delivery id, from its project, ref and commit as submitted
 * (the pushed commit, before an annotated tag is peeled).
 */
int queue_push_job(struct queue *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id);

/* Result callbacks due at `now` (at most 64, oldest first). */
struct queue_notify {
	int64_t job_id;
	int attempts;			/* made so far */
	int64_t finished_at;
};
int queue_notify_due(struct queue *q, int64_t now, struct queue_notify **out,
    size_t *n);
/* Record an attempt: state "pending" (again at next_at), "delivered" or
 * "failed"; error is the last failure or NULL. */
int queue_notify_result(struct queue *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at);

/*
 * Retention.  These two use a connection of their own and may run on a
 * worker thread (one such thread at a time).
 */
struct queue_retention {
	unsigned keep_jobs;		/* finished jobs kept per repo; 0 = all */
	unsigned keep_days;		/* 0 = forever */
	uint64_t max_bytes;		/* artifact bytes kept; 0 = no cap */
};
/*
 * Expire the finished jobs the policy no longer keeps: their artifact
 * rows, signed files and cache keys go, the job stays on record with
 * expired_at set.  Running and queued jobs are never expired.  The ids
 * (malloc'd, sorted) are returned so that their logs can be removed.
 */
int queue_expire(struct queue *q, const struct queue_retention *r,
    int64_t now, int64_t **ids, size_t *n);
/* Every store digest something references, sorted (strcmp); malloc'd. */
int queue_referenced_blobs(struct queue *q, char ***hex, size_t *n);

#endif
