/*
 * The scheduler: turns queued targets into kiln-worker processes.
 *
 * For each job it first runs `kiln-worker fetch` (libgit2, in its own
 * process: the loop never blocks on git), which updates the job's bare
 * mirror and resolves the ref; then one `kiln-worker build` per target,
 * up to `workers` at once across all jobs: highest priority first, and
 * among jobs of that priority the one with the fewest builds running, so
 * a large job does not starve a small one.  Build output streams over
 * pipes into a size-capped log per target that clients can follow live.
 */
#ifndef KILN_SCHED_H
#define KILN_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "conf.h"
#include "db/queue.h"
#include "sign.h"
#include "store.h"
#include "toolchains.h"

struct sched;
struct events;

/* The Go toolchains jobs choose from; kept by the caller (cmd/kilnd.c
 * swaps them on reload and calls this again). */
void sched_set_toolchains(struct sched *s, const struct toolchains *tc);
/*
 * Succeeded builds are published into `store`; a job whose targets all
 * succeeded is signed with `key` (SHA256SUMS, minisig, provenance).
 */
struct sched *sched_new(uv_loop_t *loop, struct queue *q,
    const struct kiln_config *conf, const char *worker_path,
    struct store *store, const struct sign_key *key);
/*
 * Tell `ev` (kept by the caller; NULL: nobody) of every change of a
 * job's or target's state this host makes, and on a shared queue of the
 * hint that another host changed something (events_remote_change()).
 */
void sched_set_events(struct sched *s, struct events *ev);
/* Look for work now (new jobs were committed, a slot freed...). */
void sched_kick(struct sched *s);
/* The job was canceled in the queue: stop its running builds. */
void sched_cancel(struct sched *s, int64_t job_id);
unsigned sched_running(const struct sched *s);
/* Paused: no new builds start (jobs are still accepted and queued);
 * builds already running go on. */
void sched_pause(struct sched *s, bool paused);
bool sched_paused(const struct sched *s);

/* Logs: STATE/logs/JOB/TARGET.log; target normalized ("linux/arm/v7"). */
int sched_log_open(struct sched *s, int64_t job_id, const char *target,
    int *fd);
/* The offsets of kilnd's own lines in that log (logview.h), beside it. */
int sched_log_marks_open(struct sched *s, int64_t job_id,
    const char *target, int *fd);
bool sched_log_live(struct sched *s, int64_t job_id, const char *target);
/*
 * Call wake(data) when the target's log grows, when it ends, and every
 * few seconds (so followers notice a client that left).  For a target
 * that has not started (or has ended), only every few seconds: the caller
 * looks again then (sched_log_open, sched_log_live, the queue).  Never
 * NULL; every handle must be given to unwatch.
 */
void *sched_log_watch(struct sched *s, int64_t job_id, const char *target,
    void (*wake)(void *), void *data);
void sched_log_unwatch(struct sched *s, void *handle);

/*
 * Drain (SIGTERM): no new builds; fetches are stopped and their targets
 * given back; running builds may finish, for at most drain_timeout; then
 * done(data) (the caller then calls sched_shutdown, which gives back what
 * still runs).  sched_drain_now ends the wait at once.
 */
void sched_drain(struct sched *s, void (*done)(void *), void *data);
void sched_drain_now(struct sched *s);

/*
 * Stop: no new builds; running ones are killed and given back to the
 * queue (they run again at the next start); then done(data).
 */
void sched_shutdown(struct sched *s, void (*done)(void *), void *data);

#endif
