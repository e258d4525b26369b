/*
 * What the pieces of the scheduler share: a claimed target (struct
 * starget), its job (struct sjob), the job's fetch or deps step (struct
 * fetch), a log's watchers, the scheduler itself (struct sched), and the
 * functions one stage calls in another.  Nothing outside daemon/sched/
 * includes this; the rest of kilnd sees sched.h.
 *
 * sched.c    the jobs' lifecycle, drain, shutdown, paths, tasks
 * claim.c    the choice of the next job and the claim of its target
 * fetch.c    the fetch, the job's plan and trust, the deps step
 * build.c    spawning kiln-worker build, its result, ending a target
 * result.c   a target's outcome written, and retried until stored
 * publish.c  publication of a build, the build cache
 * signing.c  SHA256SUMS, its signature and the provenance of a job
 * sweep.c    the retention sweep, removal of work trees
 * logs.c     the build logs and their followers
 */
#ifndef KILN_SCHED_INT_H
#define KILN_SCHED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "child.h"
#include "conf.h"
#include "db/queue.h"
#include "events.h"
#include "job.h"
#include "jobplan.h"
#include "sbuf.h"
#include "sched/sched.h"
#include "store.h"
#include "target.h"

#define STATUS_MAX 4096
#define TICK_MS 2000

struct sjob;
struct claim_read;
struct recipe_ctx;
struct recipe_plan;

struct watcher {
	void (*wake)(void *);
	void *data;
	struct starget *t;		/* NULL once the target ended */
	struct ended *e;		/* its outcome being written, or NULL */
	struct watcher *next;
};

/*
 * A target's outcome on its way to the database (result.c), written
 * again while the database does not take it.  The target is freed at
 * once; its log's followers move here and are woken when the answer is
 * final, so that a client whose followed log ended reads the target
 * ended, with its artifacts.
 */
struct ended {
	struct sched *s;
	int64_t job_id;
	int64_t target_id;
	int attempt;			/* the claim's: the fencing token */
	bool superseded;		/* known (and counted) already */
	char target[TARGET_NAME_MAX];
	enum job_state js;		/* the job's, after it */
	bool release;			/* give it back, not finish it */
	struct queue_outcome o;		/* its own copy of every string */
	bool busy;			/* a write or a read in flight */
	bool unsure;			/* a try broke off: maybe committed */
	int64_t waiting_since;		/* ms: the first failed try; 0 none */
	int64_t delay_ms;		/* the next back-off */
	uv_timer_t timer;		/* the back-off */
	bool timer_init;
	struct job *check;		/* the job read to settle a conflict */
	struct watcher *watchers;
	struct ended *next;		/* in s->ending */
};

/* One claimed target: parked until its job is fetched, then building. */
struct starget {
	struct child child;
	struct sched *s;
	struct sjob *j;
	struct queue_claim claim;
	struct target t;
	char url_name[TARGET_NAME_MAX];
	bool placeholder;		/* JOB_TARGETS_FROM_REPO */
	bool packaging;			/* the release row: kiln-worker package */
	struct pkg_push *push;		/* its image's push, or NULL (package.c) */
	char *toolid;			/* the toolchain's identity, if known */
	char *root;
	int log_fd;
	int marks_fd;			/* offsets of kilnd's lines (logview.h) */
	size_t log_bytes;
	bool truncated;
	struct sbuf status;
	bool status_overflow;		/* more than STATUS_MAX bytes came */
	bool started;			/* worker spawned */
	bool ended;			/* result recorded, being freed */
	bool cancel;
	bool timed_out;			/* the backstop fired */
	bool busy;			/* a thread-pool task holds it */
	bool release;			/* give back to the queue (drain) */
	bool superseded;		/* given to another run: discarded */
	char *cache_key;		/* hex, when the build may be cached */
	bool cached;			/* reused an equal build's artifacts */
	int64_t cached_from;		/* the job that built them */
	uv_timer_t timer;		/* backstop, then kill grace */
	bool timer_init;
	int64_t start_ms;
	struct watcher *watchers;
	struct starget *next;		/* in sjob's list */
};

/* A fetch, or the deps step after it (both run before any build). */
struct fetch {
	struct child child;
	struct sjob *j;
	bool deps;			/* the deps step: kiln-worker build */
	char *root;			/* its work root */
	int64_t start_ms;
	struct sbuf out, err, status;
	uv_timer_t timer;
	bool timed_out;
	char *refused;			/* why it was not started, or NULL */
};

enum fetch_state { FETCH_NONE, FETCH_RUNNING, FETCH_DONE };

struct sjob {
	struct sched *s;
	struct job *job;		/* repo, ref, recipe, commit, timeout */
	enum fetch_state fetch;
	struct fetch *f;
	int64_t commit_time;
	char *recipe;			/* resolved recipe JSON */
	struct jobplan plan;		/* toolchain, version, notes */
	struct sbuf deps_log;		/* the deps step's output */
	bool cancel;
	int64_t idle_since;		/* fetched, nothing running since */
	/* Bytes its targets stored, against max_job_output_size; shared
	 * by their publications on the thread pool. */
	struct store_budget output;
	struct starget *targets;
	unsigned ntargets;
	struct sjob *next;
};

struct sched {
	uv_loop_t *loop;
	struct queue *q;
	/* Where state changes are told (live events); NULL: nowhere. */
	struct events *events;
	const struct kiln_config *conf;
	const struct toolchains *toolchains;
	char *worker;
	struct sjob *jobs;
	unsigned running;		/* claimed targets */
	/* One claim at a time goes to the queue's writer; a kick meanwhile
	 * is remembered and made when it returns. */
	bool claiming, kick_again;
	unsigned empty_claims;		/* claims in a row that found none */
	struct queue_claim claim;	/* the claim in flight's result */
	unsigned writes;		/* our writes whose completion uses s */
	/*
	 * Reads of the queue in flight whose completion uses s (queue.h:
	 * they complete later, on the loop): s is not freed while one is.
	 * Each periodic read has at most one in flight; a second tick or
	 * kick meanwhile does not ask again.
	 */
	unsigned reads;
	bool reading_next, reading_stale, reading_unsigned;
	struct queue_next next[16];	/* the read of the next jobs */
	size_t nnext;
	struct claim_read *claim_reads;	/* claimed; their job being read */
	unsigned fetches;
	uv_timer_t tick;
	unsigned ticks;
	bool stopping;
	bool paused;
	struct store *store;
	const struct sign_key *key;
	char *builder_id;		/* base_url: SLSA builder.id */
	unsigned works;			/* thread-pool tasks in flight */
	struct signing *signing;	/* jobs being signed */
	struct ended *ending;		/* outcomes being written (result.c) */
	int64_t stop_by;		/* ms: results wait no longer at stop */
	int64_t heartbeat_at, reconciled_at;	/* ms (reconcile.c) */
	int64_t started_at;		/* ms: sched_new(), the host's start */
	bool beating;			/* a host beat in flight */
	bool beat_failed;		/* the last one failed (logged once) */
	bool beat_last;			/* the stop's beat was made */
	uint64_t reclaimed;		/* targets claimed back */
	int64_t sign_retry_at;		/* ms; 0: no failure to retry */
	int64_t sign_backoff_ms;
	uv_timer_t sweep_timer;
	bool sweeping;
	bool draining;			/* no new builds; running ones finish */
	int64_t backoff_until;		/* ms: kiln-worker could not start */
	uv_timer_t drain_timer;
	int timers_open;		/* closing: tick, sweep, drain */
	void (*drained)(void *);
	void *drained_data;
	void (*stopped)(void *);
	void *stopped_data;
};

/* sched.c: paths under the state directory, jobs, tasks, lifecycle. */
void repo_key(char out[33], const char *repo);
const char *trust_word(const struct sjob *j);
char *state_path(struct sched *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *log_path(struct sched *s, int64_t job_id, const char *url_name);
struct sjob *find_job(struct sched *s, int64_t id);
void drop_job(struct sjob *j, bool force);
#define drop_job_if_idle(j) drop_job((j), false)
/* After a tree under work/JOB/ was removed: work/JOB goes too once it
 * is empty and the job is idle. */
void tidy_work_dir(struct sched *s, const char *removed);
void free_target(struct starget *st);
void queue_task(struct sched *s, uv_work_t *req, uv_work_cb work,
    uv_after_work_cb after);
void task_done(struct sched *s);
void maybe_drained(struct sched *s);
void maybe_stopped(struct sched *s);
/* Something the scheduler waited for ended: a stop or a drain may be
 * complete now; else, when `kick`, look for more work. */
void sched_settle(struct sched *s, bool kick);

/* claim.c: a cancel of the job reaches the claims whose job is being
 * read too. */
void claims_cancel(struct sched *s, int64_t job_id);

/* fetch.c */
void start_fetch(struct sjob *j);
/* A farm's host that lacks the C toolchain st needs (its job's plan
 * says so) refuses it and frees it: true.  Else false. */
bool plan_refuses(struct starget *st);

/* build.c */
void worker_unavailable(struct sched *s, const char *why);
void end_target(struct starget *st, enum target_state state,
    int exit_status, const char *error, const struct artifact *arts,
    size_t narts);
/* result.c: write e (its ids, target name and watchers set) until the
 * answer is final: the finish of outcome `o` (copied), or, o NULL,
 * the target given back.  e is the scheduler's from then on. */
void result_write(struct ended *e, const struct queue_outcome *o);
/* Whether e failed a write and waits to try again (its lease is kept). */
bool result_waiting(const struct ended *e);
/* A heartbeat of a waiting result was refused (QUEUE_ECONFLICT): the
 * target was given away meanwhile. */
void result_refused(struct sched *s, int64_t target_id, int attempt);
/* The queue refused a write of this attempt (QUEUE_ECONFLICT): logged
 * once and counted; its result is not stored, not signed. */
void superseded_result(int64_t target_id, int attempt);
/* A heartbeat refused so: the build is no longer ours; stop it as a
 * cancel does, its end discarded. */
void stop_superseded(struct starget *st);
void on_backstop(uv_timer_t *h);
void fail_now(struct starget *st, const char *why);
char **worker_build_argv(struct sched *s, const char *mirror,
    const char *commit, const char *root, const char *target,
    unsigned timeout, const char *const *extra,
    const struct recipe_plan *plan);
void argv_free(char **argv);
int spawn_worker_build(struct sched *s, struct child *c, char **opts,
    child_data_cb on_data, child_done_cb on_done, void *data);
void recipe_ctx_of(struct recipe_ctx *ctx, const struct sjob *j);
void log_plan(struct starget *st);
void record_toolchain(struct starget *st);
void spawn_build(struct starget *st);
int target_run_prepare(struct starget *st, char *why, size_t whysize);
void target_run_started(struct starget *st, int rc, const char *what);
unsigned timeout_of(struct starget *st);
void build_data(struct child *c, int fd, const char *buf, size_t n);
void build_done(struct child *c);

/* package.c: the release row's run (daemon/release.h) */
void spawn_package(struct starget *st);
/* After the package step succeeded: push its image when the project
 * names a registry (then publish), else publish at once. */
void package_done(struct starget *st, int code);
void package_push_free(struct starget *st);

/* publish.c */
void start_publish(struct starget *st, int code);
bool open_unbuilt_log(struct starget *st);
void launch(struct starget *st);
/* Draining, stopping or canceled before its run started: ended so. */
bool ended_before_start(struct starget *st);

/* signing.c */
void sign_job(struct sched *s, int64_t job_id);
/* From the tick: the unsigned jobs again, once a failure's back-off is
 * over. */
void sign_retry(struct sched *s);

/* reconcile.c: heartbeats of held targets, and the lease on the rest
 * (from the tick). */
void reconcile(struct sched *s);
/* This host's row in the queue (queue_host_beat): slots, running now;
 * skipped while one is in flight.  From the start, the heartbeats and
 * the stop. */
void host_beat(struct sched *s);

/* sweep.c */
void remove_tree(struct sched *s, const char *path);
void on_sweep(uv_timer_t *h);

/* logs.c */
void wake_watchers(struct starget *st);
struct ended *find_ending(struct sched *s, int64_t job_id,
    const char *target);
int log_create(struct starget *st, const char *lp);
void log_close(struct starget *st);
void log_write(struct starget *st, const char *buf, size_t n);
void hide_state_dir(const struct sched *s, char *msg, size_t size);
void log_line(struct starget *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
