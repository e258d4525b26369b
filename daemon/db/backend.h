/*
 * What a queue backend provides: the calls of queue.h, as a table the
 * dispatch (queue.c) calls through.  A backend's handle starts with a
 * struct queue whose ops point at its table.  Only backends and queue.c
 * include this; the rest of kilnd sees queue.h.
 */
#ifndef KILN_QUEUE_BACKEND_H
#define KILN_QUEUE_BACKEND_H

#include "queue.h"

struct queue_ops {
	int (*start)(struct queue *q, uv_loop_t *loop);
	void (*stop)(struct queue *q, void (*closed)(void *), void *data);
	uint64_t (*commits)(const struct queue *q);
	uint64_t (*writes)(const struct queue *q);
	size_t (*pending_writes)(const struct queue *q);
	void (*close)(struct queue *q);
	void (*set_host)(struct queue *q, const char *name);
	/* Record `key` (kiln.pub's base64 line) unless a key is recorded;
	 * *recorded gets the one recorded now (malloc'd).  Synchronous. */
	int (*farm_key)(struct queue *q, const char *key, char **recorded);
	void (*watch)(struct queue *q, void (*changed)(void *data),
	    void *data);
	void (*watch_cancels)(struct queue *q,
	    void (*canceled)(void *data, int64_t job_id), void *data);
	bool (*shared)(const struct queue *q);
	bool (*reachable)(const struct queue *q);
	void (*submit)(struct queue *q, struct job *const *jobs, size_t n,
	    queue_done done, void *data);
	void (*get)(struct queue *q, int64_t id, struct job **out,
	    queue_done done, void *data);
	void (*list)(struct queue *q, const struct queue_filter *f,
	    struct job ***out, size_t *nout, int64_t *next, queue_done done,
	    void *data);
	void (*cancel)(struct queue *q, int64_t id, size_t *nrunning,
	    queue_done done, void *data);
	void (*set_priority)(struct queue *q, int64_t id, int priority,
	    queue_done done, void *data);
	void (*claim)(struct queue *q, struct queue_claim *out,
	    queue_done done, void *data);
	void (*claim_job)(struct queue *q, int64_t job_id,
	    struct queue_claim *out, queue_done done, void *data);
	void (*next_jobs)(struct queue *q, struct queue_next *out, size_t max,
	    size_t *n, queue_done done, void *data);
	void (*release)(struct queue *q, int64_t target_id, int attempt,
	    queue_done done, void *data);
	void (*heartbeat)(struct queue *q, int64_t target_id, int attempt,
	    queue_done done, void *data);
	void (*refuse)(struct queue *q, int64_t target_id, int attempt,
	    const char *host, const char *why, int64_t window_ms,
	    bool *everyone, queue_done done, void *data);
	void (*set_commit)(struct queue *q, int64_t job_id,
	    const char *commit, enum job_trust trust, queue_done done,
	    void *data);
	void (*set_toolchain)(struct queue *q, int64_t target_id,
	    const char *toolchain, queue_done done, void *data);
	void (*set_outputs)(struct queue *q, int64_t job_id,
	    const char *outputs, bool release, queue_done done, void *data);
	void (*set_verified)(struct queue *q, int64_t target_id, int attempt,
	    const char *verified, queue_done done, void *data);
	void (*expand_targets)(struct queue *q, int64_t job_id,
	    int64_t placeholder_id, char *const *targets, size_t n,
	    queue_done done, void *data);
	void (*finish_build)(struct queue *q, int64_t target_id, int attempt,
	    const struct queue_outcome *o, enum job_state *job_state,
	    queue_done done, void *data);
	void (*cache_lookup)(struct queue *q, const char *key,
	    struct artifact **arts, size_t *narts, int64_t *from_job,
	    queue_done done, void *data);
	void (*unsigned_jobs)(struct queue *q, int64_t **ids, size_t *n,
	    queue_done done, void *data);
	void (*set_signed)(struct queue *q, int64_t job_id, const char *sums,
	    const char *sig, const char *prov, queue_done done, void *data);
	void (*fail_job)(struct queue *q, int64_t job_id, const char *error,
	    queue_done done, void *data);
	int (*recover)(struct queue *q, int max_attempts, int *requeued,
	    int *failed);
	void (*stale_targets)(struct queue *q, int64_t now, int64_t *ids,
	    size_t max, size_t *n, queue_done done, void *data);
	void (*reclaim)(struct queue *q, int64_t target_id, int64_t now,
	    int max_attempts, queue_done done, void *data);
	void (*delivery_job)(struct queue *q, const char *forge,
	    const char *id, int64_t *job_id, queue_done done, void *data);
	void (*push_job)(struct queue *q, const char *project,
	    const char *ref, const char *commit, int64_t *job_id,
	    queue_done done, void *data);
	void (*notify_due)(struct queue *q, int64_t now,
	    struct queue_notify **out, size_t *n, queue_done done, void *data);
	void (*notify_result)(struct queue *q, int64_t job_id,
	    const char *state, const char *error, int64_t next_at,
	    queue_done done, void *data);
	int (*expire_select)(struct queue *q, const struct queue_retention *r,
	    int64_t now, int64_t **ids, size_t *n);
	void (*expire_jobs)(struct queue *q, const int64_t *ids, size_t n,
	    int64_t now, queue_done done, void *data);
	int (*referenced_blobs)(struct queue *q, char ***hex, size_t *n);
	void (*host_beat)(struct queue *q, const struct queue_host *h,
	    queue_done done, void *data);
	void (*hosts)(struct queue *q, struct queue_host **out, size_t *n,
	    queue_done done, void *data);
};

/* Jobs and targets by state. */
struct queue_counts {
	int64_t jobs[JOB_STATE_COUNT];
	int64_t targets[TARGET_STATE_COUNT];
};

struct queue {
	const struct queue_ops *ops;
	int64_t lease_ms;	/* queue_set_lease(); 0: QUEUE_LEASE_MS */
	int schema;		/* the backend's migrations: queue_schema() */
	/* What the database holds by state, as of the backend's last
	 * commit (or refresh, when other hosts write too): the backend
	 * keeps it with __atomic stores and adds, any thread reads it
	 * (queue_count_*()), in constant time. */
	struct queue_counts counts;
};

/* This host's lease (queue_set_lease()), for the backends. */
int64_t queue_lease_ms(const struct queue *q);

/* The SQLite backend (daemon/db/): a path to a database file. */
int sqlite_queue_open(struct queue **out, const char *path, char *err,
    size_t errsize);
/* The PostgreSQL backend (daemon/pg/): a postgresql:// URL. */
int pg_queue_open(struct queue **out, const char *conninfo, char *err,
    size_t errsize);

#endif
