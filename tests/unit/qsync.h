/*
 * The queue's asynchronous reads and writes, waited for: each qs_* call
 * makes the queue.h call and runs a loop until its completion ran, then
 * returns its rc.  Tests read like a script this way, and still go
 * through the real writer thread, its transactions and the deferred
 * completion of reads.  A queue is started on its first qs_* call;
 * qs_close() stops it and closes the queue.
 */
#ifndef KILN_TEST_QSYNC_H
#define KILN_TEST_QSYNC_H

#include <uv.h>

#include "daemon/db/queue.h"

/* The loop the writers deliver on (tests that serve requests run it). */
uv_loop_t *qs_loop(void);
/* Start q's writer now (done lazily by the first qs_* write). */
void qs_attach(struct queue *q);
/* Run the loop until *flag is set. */
void qs_run_until(const int *flag);
/* queue_stop() waited for, then queue_close(). */
void qs_close(struct queue *q);

int qs_submit(struct queue *q, struct job *const *jobs, size_t n);
int qs_cancel(struct queue *q, int64_t id, size_t *nrunning);
int qs_set_priority(struct queue *q, int64_t id, int priority);
int qs_claim(struct queue *q, struct queue_claim *out);
int qs_claim_job(struct queue *q, int64_t job_id, struct queue_claim *out);
/* The attempt: the fencing token of the claim (queue.h). */
int qs_release(struct queue *q, int64_t target_id, int attempt);
int qs_heartbeat(struct queue *q, int64_t target_id, int attempt);
int qs_reclaim(struct queue *q, int64_t target_id, int64_t now,
    int max_attempts);
int qs_set_commit(struct queue *q, int64_t job_id, const char *commit,
    enum job_trust trust);
int qs_set_toolchain(struct queue *q, int64_t target_id,
    const char *toolchain);
int qs_set_verified(struct queue *q, int64_t target_id, int attempt,
    const char *verified);
int qs_expand_targets(struct queue *q, int64_t job_id,
    int64_t placeholder_id, char *const *targets, size_t n);
int qs_finish(struct queue *q, int64_t target_id, int attempt,
    enum target_state state, int exit_status, const char *error,
    const struct artifact *arts, size_t narts);
int qs_finish_build(struct queue *q, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state);
int qs_set_signed(struct queue *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov);
int qs_fail_job(struct queue *q, int64_t job_id, const char *error);
int qs_notify_result(struct queue *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at);
/* The reads, as the synchronous calls they were. */
int qs_get(struct queue *q, int64_t id, struct job **out);
int qs_list(struct queue *q, const struct queue_filter *f,
    struct job ***out, size_t *nout, int64_t *next);
int qs_next_jobs(struct queue *q, struct queue_next *out, size_t max,
    size_t *n);
int qs_cache_lookup(struct queue *q, const char *key,
    struct artifact **arts, size_t *narts, int64_t *from_job);
int qs_unsigned_jobs(struct queue *q, int64_t **ids, size_t *n);
int qs_stale_targets(struct queue *q, int64_t now, int64_t *ids,
    size_t max, size_t *n);
int qs_delivery_job(struct queue *q, const char *forge, const char *id,
    int64_t *job_id);
int qs_push_job(struct queue *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id);
int qs_notify_due(struct queue *q, int64_t now, struct queue_notify **out,
    size_t *n);
int qs_host_beat(struct queue *q, const struct queue_host *h);
int qs_hosts(struct queue *q, struct queue_host **out, size_t *n);
/* qs_get() of a queue the test started itself, on its own loop (run
 * until the read completed; not from inside a callback of that loop). */
int qs_get_on(uv_loop_t *loop, struct queue *q, int64_t id,
    struct job **out);
/* queue_expire_select() then every batch of queue_expire_jobs(). */
int qs_expire(struct queue *q, const struct queue_retention *r, int64_t now,
    int64_t **ids, size_t *n);

#endif
