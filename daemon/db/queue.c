/*
 * The queue's dispatch: queue_open() picks the backend from what it is
 * given, and every other call of queue.h goes through the backend's
 * table of operations (backend.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "backend.h"
#include "schema.h"

int
queue_open(struct queue **out, const char *path, char *err, size_t errsize)
{
	/* libpq's two URI schemes; anything else is an SQLite file. */
	if (strncmp(path, "postgresql://", 13) == 0 ||
	    strncmp(path, "postgres://", 11) == 0)
		return pg_queue_open(out, path, err, errsize);
	return sqlite_queue_open(out, path, err, errsize);
}

int
queue_start(struct queue *q, uv_loop_t *loop)
{
	return q->ops->start(q, loop);
}

void
queue_stop(struct queue *q, void (*closed)(void *), void *data)
{
	q->ops->stop(q, closed, data);
}

uint64_t
queue_commits(const struct queue *q)
{
	return q->ops->commits(q);
}

uint64_t
queue_writes(const struct queue *q)
{
	return q->ops->writes(q);
}

size_t
queue_pending_writes(const struct queue *q)
{
	return q->ops->pending_writes(q);
}

void
queue_close(struct queue *q)
{
	if (q != NULL)
		q->ops->close(q);
}

void
queue_set_host(struct queue *q, const char *name)
{
	q->ops->set_host(q, name);
}

int
queue_schema(const struct queue *q)
{
	return q->schema;
}

int
queue_pg_schema_version(void)
{
	return (int)pg_schema_migration_count;
}

void
queue_set_lease(struct queue *q, int64_t lease_ms)
{
	q->lease_ms = lease_ms;
}

int64_t
queue_lease_ms(const struct queue *q)
{
	return q->lease_ms > 0 ? q->lease_ms : QUEUE_LEASE_MS;
}

void
queue_watch(struct queue *q, void (*changed)(void *data), void *data)
{
	q->ops->watch(q, changed, data);
}

void
queue_watch_cancels(struct queue *q,
    void (*canceled)(void *data, int64_t job_id), void *data)
{
	q->ops->watch_cancels(q, canceled, data);
}

bool
queue_shared(const struct queue *q)
{
	return q->ops->shared(q);
}

bool
queue_reachable(const struct queue *q)
{
	return q->ops->reachable(q);
}

/*
 * The key id of a minisign public key's base64 line ("Ed", the id's 8
 * bytes, the Ed25519 key's 32), as minisign prints it: a little-endian
 * 64-bit number in hex.  -1 when it is not such a key.
 */
static int
key_id_of(const char *b64, char id[17])
{
	unsigned char bin[2 + 8 + 32];
	size_t len = 0;

	if (sodium_base642bin(bin, sizeof bin, b64, strlen(b64), NULL, &len,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != sizeof bin || memcmp(bin, "Ed", 2) != 0)
		return -1;
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02X", bin[2 + 7 - i]);
	return 0;
}

int
queue_farm_key(struct queue *q, const char *public_key, char *err,
    size_t errsize)
{
	char line[128], mine[17], theirs[17], *recorded = NULL;
	const char *p = public_key, *end;
	size_t n;
	int rc = -1;

	/* kiln.pub: an "untrusted comment:" line, then the key's line. */
	if (strncmp(p, "untrusted comment:", 18) == 0 &&
	    (p = strchr(p, '\n')) != NULL)
		p++;
	if (p != NULL)
		p += strspn(p, " \t\r\n");
	end = p != NULL ? p + strcspn(p, " \t\r\n") : NULL;
	if (p == NULL || (n = (size_t)(end - p)) == 0 || n >= sizeof line) {
		snprintf(err, errsize, "the farm's signing key: this host's "
		    "public key is not in minisign's format");
		return -1;
	}
	memcpy(line, p, n);
	line[n] = '\0';
	if (key_id_of(line, mine) != 0) {
		snprintf(err, errsize, "the farm's signing key: this host's "
		    "public key is not in minisign's format");
		return -1;
	}
	if (q->ops->farm_key(q, line, &recorded) != 0) {
		snprintf(err, errsize, "the farm's signing key: cannot read or "
		    "record it in the database");
		return -1;
	}
	if (strcmp(recorded, line) == 0)
		rc = 0;
	else {
		if (key_id_of(recorded, theirs) != 0)
			snprintf(theirs, sizeof theirs, "(unreadable)");
		snprintf(err, errsize, "the database belongs to a farm whose "
		    "signing key is %s; this host's key is %s: copy the "
		    "farm's kiln.key here (kilnd.conf(5), a farm of hosts)",
		    theirs, mine);
	}
	free(recorded);
	return rc;
}

void
queue_submit(struct queue *q, struct job *const *jobs, size_t n,
    queue_done done, void *data)
{
	q->ops->submit(q, jobs, n, done, data);
}

void
queue_get(struct queue *q, int64_t id, struct job **out, queue_done done,
    void *data)
{
	q->ops->get(q, id, out, done, data);
}

void
queue_list(struct queue *q, const struct queue_filter *f, struct job ***out,
    size_t *nout, int64_t *next, queue_done done, void *data)
{
	q->ops->list(q, f, out, nout, next, done, data);
}

void
queue_cancel(struct queue *q, int64_t id, size_t *nrunning, queue_done done,
    void *data)
{
	q->ops->cancel(q, id, nrunning, done, data);
}

void
queue_set_priority(struct queue *q, int64_t id, int priority, queue_done done,
    void *data)
{
	q->ops->set_priority(q, id, priority, done, data);
}

void
queue_claim(struct queue *q, struct queue_claim *out, queue_done done,
    void *data)
{
	q->ops->claim(q, out, done, data);
}

void
queue_claim_job(struct queue *q, int64_t job_id, struct queue_claim *out,
    queue_done done, void *data)
{
	q->ops->claim_job(q, job_id, out, done, data);
}

void
queue_next_jobs(struct queue *q, struct queue_next *out, size_t max,
    size_t *n, queue_done done, void *data)
{
	q->ops->next_jobs(q, out, max, n, done, data);
}

void
queue_release(struct queue *q, int64_t target_id, int attempt,
    queue_done done, void *data)
{
	q->ops->release(q, target_id, attempt, done, data);
}

void
queue_refuse(struct queue *q, int64_t target_id, int attempt,
    const char *host, const char *why, int64_t window_ms, bool *everyone,
    queue_done done, void *data)
{
	q->ops->refuse(q, target_id, attempt, host, why, window_ms, everyone,
	    done, data);
}

void
queue_heartbeat(struct queue *q, int64_t target_id, int attempt,
    queue_done done, void *data)
{
	q->ops->heartbeat(q, target_id, attempt, done, data);
}

void
queue_set_commit(struct queue *q, int64_t job_id, const char *commit,
    enum job_trust trust, queue_done done, void *data)
{
	q->ops->set_commit(q, job_id, commit, trust, done, data);
}

void
queue_set_toolchain(struct queue *q, int64_t target_id, const char *toolchain,
    queue_done done, void *data)
{
	q->ops->set_toolchain(q, target_id, toolchain, done, data);
}

void
queue_set_outputs(struct queue *q, int64_t job_id, const char *outputs,
    bool release, queue_done done, void *data)
{
	q->ops->set_outputs(q, job_id, outputs, release, done, data);
}

void
queue_set_verified(struct queue *q, int64_t target_id, int attempt,
    const char *verified, queue_done done, void *data)
{
	q->ops->set_verified(q, target_id, attempt, verified, done, data);
}

void
queue_expand_targets(struct queue *q, int64_t job_id, int64_t placeholder_id,
    char *const *targets, size_t n, queue_done done, void *data)
{
	q->ops->expand_targets(q, job_id, placeholder_id, targets, n, done,
	    data);
}

void
queue_finish_build(struct queue *q, int64_t target_id, int attempt,
    const struct queue_outcome *o, enum job_state *job_state, queue_done done,
    void *data)
{
	q->ops->finish_build(q, target_id, attempt, o, job_state, done, data);
}

void
queue_cache_lookup(struct queue *q, const char *key, struct artifact **arts,
    size_t *narts, int64_t *from_job, queue_done done, void *data)
{
	q->ops->cache_lookup(q, key, arts, narts, from_job, done, data);
}

void
queue_unsigned_jobs(struct queue *q, int64_t **ids, size_t *n,
    queue_done done, void *data)
{
	q->ops->unsigned_jobs(q, ids, n, done, data);
}

void
queue_set_signed(struct queue *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov, queue_done done, void *data)
{
	q->ops->set_signed(q, job_id, sums, sig, prov, done, data);
}

void
queue_fail_job(struct queue *q, int64_t job_id, const char *error,
    queue_done done, void *data)
{
	q->ops->fail_job(q, job_id, error, done, data);
}

int
queue_recover(struct queue *q, int max_attempts, int *requeued, int *failed)
{
	return q->ops->recover(q, max_attempts, requeued, failed);
}

void
queue_stale_targets(struct queue *q, int64_t now, int64_t *ids, size_t max,
    size_t *n, queue_done done, void *data)
{
	q->ops->stale_targets(q, now, ids, max, n, done, data);
}

void
queue_reclaim(struct queue *q, int64_t target_id, int64_t now,
    int max_attempts, queue_done done, void *data)
{
	q->ops->reclaim(q, target_id, now, max_attempts, done, data);
}

int
queue_count_jobs(struct queue *q, enum job_state state, int64_t *out)
{
	*out = __atomic_load_n(&q->counts.jobs[state], __ATOMIC_RELAXED);
	return 0;
}

int
queue_count_targets(struct queue *q, enum target_state state, int64_t *out)
{
	*out = __atomic_load_n(&q->counts.targets[state], __ATOMIC_RELAXED);
	return 0;
}

int
queue_count_by_state(struct queue *q, int64_t jobs[JOB_STATE_COUNT],
    int64_t targets[TARGET_STATE_COUNT])
{
	for (int i = 0; i < JOB_STATE_COUNT; i++)
		jobs[i] = __atomic_load_n(&q->counts.jobs[i], __ATOMIC_RELAXED);
	for (int i = 0; i < TARGET_STATE_COUNT; i++)
		targets[i] = __atomic_load_n(&q->counts.targets[i],
		    __ATOMIC_RELAXED);
	return 0;
}

void
queue_delivery_job(struct queue *q, const char *forge, const char *id,
    int64_t *job_id, queue_done done, void *data)
{
	q->ops->delivery_job(q, forge, id, job_id, done, data);
}

void
queue_push_job(struct queue *q, const char *project, const char *ref,
    const char *commit, int64_t *job_id, queue_done done, void *data)
{
	q->ops->push_job(q, project, ref, commit, job_id, done, data);
}

void
queue_notify_due(struct queue *q, int64_t now, struct queue_notify **out,
    size_t *n, queue_done done, void *data)
{
	q->ops->notify_due(q, now, out, n, done, data);
}

void
queue_notify_result(struct queue *q, int64_t job_id, const char *state,
    const char *error, int64_t next_at, queue_done done, void *data)
{
	q->ops->notify_result(q, job_id, state, error, next_at, done, data);
}

int
queue_expire_select(struct queue *q, const struct queue_retention *r,
    int64_t now, int64_t **ids, size_t *n)
{
	return q->ops->expire_select(q, r, now, ids, n);
}

void
queue_expire_jobs(struct queue *q, const int64_t *ids, size_t n, int64_t now,
    queue_done done, void *data)
{
	q->ops->expire_jobs(q, ids, n, now, done, data);
}

int
queue_referenced_blobs(struct queue *q, char ***hex, size_t *n)
{
	return q->ops->referenced_blobs(q, hex, n);
}

void
queue_host_beat(struct queue *q, const struct queue_host *h, queue_done done,
    void *data)
{
	q->ops->host_beat(q, h, done, data);
}

void
queue_hosts(struct queue *q, struct queue_host **out, size_t *n,
    queue_done done, void *data)
{
	q->ops->hosts(q, out, n, done, data);
}

/* Both backends fill the array the same way: one malloc'd array of
 * structs, each with its two malloc'd strings. */
void
queue_hosts_free(struct queue_host *h, size_t n)
{
	for (size_t i = 0; h != NULL && i < n; i++) {
		free(h[i].base_url);
		free(h[i].version);
		free(h[i].toolchains);
	}
	free(h);
}
