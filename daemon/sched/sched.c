/*
 * The scheduler's lifecycle (sched.h): it claims queued targets
 * (claim.c), up to `workers` at once; keeps a job (struct sjob) while
 * its targets run and a little after; pauses, cancels, drains and stops.  Also what every stage uses: the paths
 * under the state directory and the count of thread-pool tasks.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "child.h"
#include "log.h"
#include "metrics.h"
#include "sbuf.h"
#include "sched-int.h"
#include "util.h"
#include "xmalloc.h"

/*
 * SIGTERM to kiln-worker, then SIGKILL after this.  Longer than the
 * worker's own teardown at its slowest (on cgroup v1 up to 1 s for the
 * freezer, then kill passes of up to 2 s): a SIGKILL between its freeze
 * and its thaw would leave the build frozen for good.
 */
#define KILL_GRACE_MS 5000
#define IDLE_JOB_MS 10000

/* --- paths -------------------------------------------------------------- */

/*
 * Mirrors and caches are keyed by a hash of the repository's identity,
 * not of its URL as written: two spellings of one repository share them,
 * and no spelling gets a cache of its own to poison.
 */
void
repo_key(char out[33], const char *repo)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char *id = util_repo_identity(repo);

	crypto_hash_sha256(h, (const unsigned char *)id, strlen(id));
	sodium_bin2hex(out, 33, h, 16);
	free(id);
}

/*
 * A job's trust class names the caches its builds write (SECURITY.md):
 * a build of an unprotected ref or of a submission without the admin
 * scope never writes what a protected (release) build later reads.  A
 * class not yet known (no fetch) counts as unprotected.
 */
const char *
trust_word(const struct sjob *j)
{
	return j->job->trust == TRUST_PROTECTED ? "protected" : "unprotected";
}

char *
state_path(struct sched *s, const char *fmt, ...)
{
	struct sbuf b = { 0 };
	char *rest;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&rest, fmt, ap) < 0)
		abort();
	va_end(ap);
	sbuf_adds(&b, s->conf->state_dir);
	sbuf_addc(&b, '/');
	sbuf_adds(&b, rest);
	free(rest);
	return sbuf_steal(&b, NULL);
}

char *
log_path(struct sched *s, int64_t job_id, const char *url_name)
{
	return state_path(s, "logs/%" PRId64 "/%s.log", job_id, url_name);
}

/* --- jobs ----------------------------------------------------------------- */

struct sjob *
find_job(struct sched *s, int64_t id)
{
	for (struct sjob *j = s->jobs; j; j = j->next)
		if (j->job->id == id)
			return j;
	return NULL;
}

/*
 * work/JOB holds the job's work trees (and its deps step's), each removed
 * on the pool when its build ends.  The directory itself goes once it is
 * empty and nothing of the job may put a tree in it: no target of the job
 * here and no fetch or deps step running.  That is decided here, on the
 * loop thread, where builds are launched (mkdir, then spawn), so no
 * launch comes between the look and the rmdir; a later one makes the
 * directory again.  Tried when the job goes idle and after each of its
 * trees is gone: whichever comes last finds it empty.  rmdir of an empty
 * directory is one short system call.
 */
static void
rmdir_work(struct sched *s, int64_t job_id)
{
	struct sjob *j = find_job(s, job_id);
	char *dir;

	if (j != NULL && (j->ntargets > 0 || j->fetch == FETCH_RUNNING))
		return;
	dir = state_path(s, "work/%" PRId64, job_id);
	if (rmdir(dir) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
	    errno != EEXIST)
		log_warn("cannot remove %s: %s", dir, strerror(errno));
	free(dir);
}

void
tidy_work_dir(struct sched *s, const char *removed)
{
	char *work = state_path(s, "work/");
	size_t n = strlen(work);
	const char *p, *slash;
	int64_t id;

	/* Only STATE/work/JOB/TREE: not the old work/ of a crash. */
	if (strncmp(removed, work, n) == 0 &&
	    (slash = strchr(p = removed + n, '/')) != NULL &&
	    strchr(slash + 1, '/') == NULL && slash - p < 20) {
		char num[20];

		memcpy(num, p, (size_t)(slash - p));
		num[slash - p] = '\0';
		if (util_parse_int64(num, 1, INT64_MAX, &id) == 0)
			rmdir_work(s, id);
	}
	free(work);
}

void
drop_job(struct sjob *j, bool force)
{
	struct sched *s = j->s;

	if (j->ntargets > 0 || j->fetch == FETCH_RUNNING)
		return;
	rmdir_work(s, j->job->id);
	/* A fetched job is kept a little while: its next queued target
	 * starts without fetching again.  on_tick drops it later. */
	if (j->fetch == FETCH_DONE && !j->cancel && !s->stopping &&
	    !force) {
		j->idle_since = util_now_ms();
		return;
	}
	for (struct sjob **pp = &s->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	job_free(j->job);
	store_budget_destroy(&j->output);
	free(j->recipe);
	jobplan_free(&j->plan);
	sbuf_free(&j->deps_log);
	free(j);
}

void
free_target(struct starget *st)
{
	struct sjob *j = st->j;
	struct sched *s = st->s;

	for (struct starget **pp = &j->targets; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
	j->ntargets--;
	s->running--;
	if (st->log_fd >= 0)
		close(st->log_fd);
	if (st->marks_fd >= 0)
		close(st->marks_fd);
	sbuf_free(&st->status);
	free(st->root);
	free(st->cache_key);
	free(st->toolid);
	package_push_free(st);
	free(st);
	drop_job_if_idle(j);
}

/* --- work off the loop thread ----------------------------------------------- */

/*
 * Hashing, copying into the store, signing, removing work trees and the
 * retention sweep run in libuv's thread pool.  s->works counts them:
 * the scheduler is not stopped while one is in flight.
 */
void
queue_task(struct sched *s, uv_work_t *req, uv_work_cb work,
    uv_after_work_cb after)
{
	s->works++;
	uv_queue_work(s->loop, req, work, after);
}

void
task_done(struct sched *s)
{
	s->works--;
	maybe_stopped(s);
}

/* The store's size, counted once at start (a walk: on the pool), for
 * the metrics; publications and sweeps keep it from then on. */
static void
count_work(uv_work_t *req)
{
	struct sched *s = req->data;

	store_count(s->store);
}

static void
count_after(uv_work_t *req, int status)
{
	struct sched *s = req->data;

	(void)status;
	metrics_store_source(s->store);
	free(req);
	task_done(s);
}

/* --- scheduling (the claims are in claim.c) ------------------------------------- */

void
sched_settle(struct sched *s, bool kick)
{
	if (s->stopping)
		maybe_stopped(s);
	else if (s->draining)
		maybe_drained(s);
	else if (kick)
		sched_kick(s);
}

void
sched_cancel(struct sched *s, int64_t job_id)
{
	struct sjob *j = find_job(s, job_id);

	claims_cancel(s, job_id);
	if (j == NULL)
		return;
	/* Called again for a job being canceled (a farm's notification
	 * and heartbeats tell the same cancel): only targets not yet told
	 * are, so no second log line and no grace started over. */
	if (j->f != NULL && !j->cancel)	/* the fetch is of no use now */
		child_kill(&j->f->child, SIGKILL);
	j->cancel = true;
	for (struct starget *st = j->targets, *next; st; st = next) {
		next = st->next;
		if (st->ended || st->cancel)
			continue;
		if (st->busy) {
			/* Its task ends it: a cache check ends it canceled;
			 * a publication already has the build's result. */
			st->cancel = true;
			continue;
		}
		if (!st->started) {
			if (j->fetch != FETCH_RUNNING)
				end_target(st, TARGET_CANCELED, -1,
				    "canceled before it started", NULL, 0);
			continue;
		}
		st->cancel = true;
		log_line(st, "canceled: stopping the build");
		/* kiln-worker kills the whole tree on SIGTERM; SIGKILL
		 * after a grace (its pid 1 then dies by PDEATHSIG and the
		 * kernel kills the rest of the namespace). */
		child_kill(&st->child, SIGTERM);
		if (st->timer_init)
			uv_timer_start(&st->timer, on_backstop, KILL_GRACE_MS, 0);
	}
}

void
stop_superseded(struct starget *st)
{
	if (st->superseded || st->ended)
		return;
	superseded_result(st->claim.target_id, st->claim.attempt);
	st->superseded = true;
	/* As a cancel of this one target: whatever stage it is in ends it
	 * (a task in flight, the fetch's end, launch), its end discarded. */
	st->cancel = true;
	if (st->busy)
		return;
	if (!st->started) {
		if (st->j->fetch != FETCH_RUNNING)
			end_target(st, TARGET_CANCELED, -1,
			    "given to another run", NULL, 0);
		return;
	}
	log_line(st, "given to another run: stopping the build");
	child_kill(&st->child, SIGTERM);
	if (st->timer_init)
		uv_timer_start(&st->timer, on_backstop, KILL_GRACE_MS, 0);
}

void
sched_set_toolchains(struct sched *s, const struct toolchains *tc)
{
	s->toolchains = tc;
	/* The hosts table learns the new map at the next tick's beat. */
	s->heartbeat_at = 0;
}

unsigned
sched_running(const struct sched *s)
{
	return s->running;
}

void
sched_pause(struct sched *s, bool paused)
{
	if (s->paused != paused)
		log_info("builds: %s", paused ? "paused (jobs are still "
		    "accepted)" : "resumed");
	s->paused = paused;
	if (!paused)
		sched_kick(s);
}

bool
sched_paused(const struct sched *s)
{
	return s->paused;
}

static void
on_tick(uv_timer_t *h)
{
	struct sched *s = h->data;

	s->ticks++;
	for (struct sjob *j = s->jobs, *jn; j; j = jn) {
		jn = j->next;
		if (j->ntargets == 0 && j->fetch != FETCH_RUNNING &&
		    util_now_ms() - j->idle_since > IDLE_JOB_MS)
			drop_job(j, true);
	}
	for (struct sjob *j = s->jobs; j; j = j->next)
		for (struct starget *st = j->targets; st; st = st->next)
			wake_watchers(st);
	reconcile(s);
	sign_retry(s);
	/* Work that arrived without a kick (another process, a race). */
	s->empty_claims = 0;
	sched_kick(s);
}

/*
 * Another host submitted, or gave a target back (a shared queue's
 * notification): a free slot claims now, not at the next tick, which
 * stays the fallback for a notification lost.
 */
void
sched_set_events(struct sched *s, struct events *ev)
{
	s->events = ev;
}

static void
on_queue_changed(void *data)
{
	struct sched *s = data;

	if (s->stopping)
		return;
	/* What changed is not said: followers of live events refetch. */
	if (queue_shared(s->q))
		events_remote_change(s->events);
	s->empty_claims = 0;
	sched_kick(s);
}

/* A host of the farm (this one too: its own NOTIFY comes back) canceled
 * a job with targets running: those this host runs stop now (the
 * heartbeats would tell later). */
static void
on_queue_canceled(void *data, int64_t job_id)
{
	struct sched *s = data;
	struct sjob *j = find_job(s, job_id);

	if (s->stopping)
		return;
	if (queue_shared(s->q))
		events_remote_change(s->events);
	if (j != NULL && !j->cancel)
		log_info("job %" PRId64 ": canceled (the queue tells); "
		    "stopping its builds here", job_id);
	sched_cancel(s, job_id);
}

struct sched *
sched_new(uv_loop_t *loop, struct queue *q, const struct kiln_config *conf,
    const char *worker_path, struct store *store, const struct sign_key *key)
{
	struct sched *s = xcalloc(1, sizeof *s);
	uint64_t sweep_ms = (uint64_t)conf->sweep_interval * 1000;
	char *work;

	s->loop = loop;
	s->q = q;
	s->conf = conf;
	s->worker = xstrdup(worker_path);
	s->paused = conf->paused;
	s->store = store;
	s->key = key;
	s->builder_id = conf->base_url ? xstrdup(conf->base_url) :
	    xasprintf("%s://%s", conf->tls_cert ? "https" : "http",
	    conf->listen);
	uv_timer_init(loop, &s->tick);
	s->tick.data = s;
	uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
	queue_watch(q, on_queue_changed, s);
	queue_watch_cancels(q, on_queue_canceled, s);
	uv_timer_init(loop, &s->sweep_timer);
	s->sweep_timer.data = s;
	uv_timer_init(loop, &s->drain_timer);
	s->drain_timer.data = s;
	uv_timer_start(&s->sweep_timer, on_sweep,
	    sweep_ms < 30000 ? sweep_ms : 30000, sweep_ms);
	if (store != NULL) {
		uv_work_t *req = xcalloc(1, sizeof *req);

		req->data = s;
		queue_task(s, req, count_work, count_after);
	}
	/* Nothing runs yet: work trees are what a crash left behind.  Out
	 * of the way at once (new builds make a new work/), gone later. */
	work = state_path(s, "work");
	{
		char *old = xasprintf("%s.old.%" PRId64, work, util_now_ms());
		if (rename(work, old) == 0)
			remove_tree(s, old);
		free(old);
	}
	free(work);
	/* Jobs that succeeded just before a crash, not yet signed: read
	 * now as a retry would be (the queue is started, the read
	 * completes on the loop). */
	s->sign_retry_at = util_now_ms();
	sign_retry(s);
	/* This host in the queue's hosts table from now on (GET /v1/hosts);
	 * the heartbeats keep it there.  Nothing is held yet: the first
	 * heartbeat is due a quarter of target_lease from now. */
	s->started_at = s->heartbeat_at = util_now_ms();
	host_beat(s);
	return s;
}

/* --- drain ---------------------------------------------------------------------- */

void
maybe_drained(struct sched *s)
{
	void (*done)(void *) = s->drained;

	/* Outcomes still being written count as running: a job whose last
	 * build ended during the drain is then signed before the exit. */
	if (!s->draining || done == NULL || s->running > 0 || s->fetches > 0 ||
	    s->writes > 0)
		return;
	s->drained = NULL;
	uv_timer_stop(&s->drain_timer);
	log_info("builds: drained");
	done(s->drained_data);
}

static void
on_drain_timeout(uv_timer_t *h)
{
	struct sched *s = h->data;
	void (*done)(void *) = s->drained;

	if (done == NULL)
		return;
	s->drained = NULL;
	log_warn("builds: drain_timeout (%u s) over with %u build(s) still "
	    "running; they go back to the queue", s->conf->drain_timeout,
	    s->running);
	done(s->drained_data);
}

void
sched_drain(struct sched *s, void (*done)(void *), void *data)
{
	s->draining = true;
	s->drained = done;
	s->drained_data = data;
	/* Nothing new starts.  A fetch has built nothing yet: stop it (its
	 * targets go back to the queue). */
	for (struct sjob *j = s->jobs; j; j = j->next)
		if (j->f != NULL)
			child_kill(&j->f->child, SIGKILL);
	log_info("builds: draining: %u running may finish (drain_timeout %u s)",
	    s->running, s->conf->drain_timeout);
	uv_timer_start(&s->drain_timer, on_drain_timeout,
	    (uint64_t)s->conf->drain_timeout * 1000, 0);
	maybe_drained(s);
}

void
sched_drain_now(struct sched *s)
{
	if (s->drained != NULL) {
		uv_timer_stop(&s->drain_timer);
		on_drain_timeout(&s->drain_timer);
	}
}

/* --- shutdown ------------------------------------------------------------------- */

static void
on_tick_closed(uv_handle_t *h)
{
	struct sched *s = h->data;
	void (*done)(void *) = s->stopped;
	void *data = s->stopped_data;

	/* The three timers live in s: free it after the last one closed
	 * (libuv runs close callbacks in no promised order; found by
	 * make valgrind-check). */
	if (--s->timers_open > 0)
		return;
	free(s->worker);
	free(s->builder_id);
	free(s);
	if (done)
		done(data);
}

void
maybe_stopped(struct sched *s)
{
	if (!s->stopping || s->running > 0 || s->fetches > 0 || s->jobs != NULL ||
	    s->works > 0 || s->writes > 0 || s->reads > 0 ||
	    uv_is_closing((uv_handle_t *)&s->tick))
		return;
	/* Everything ended: the host's row says so (running 0) before the
	 * scheduler reports stopped, and the queue with it.  Its completion
	 * comes back here. */
	if (!s->beat_last) {
		s->beat_last = true;
		host_beat(s);
		return;
	}
	uv_timer_stop(&s->tick);
	s->timers_open = 3;
	uv_close((uv_handle_t *)&s->sweep_timer, on_tick_closed);
	uv_close((uv_handle_t *)&s->drain_timer, on_tick_closed);
	uv_close((uv_handle_t *)&s->tick, on_tick_closed);
}

void
sched_shutdown(struct sched *s, void (*done)(void *), void *data)
{
	s->stopping = true;
	s->stopped = done;
	s->stopped_data = data;
	/* A result the database does not take is tried until the builds
	 * killed now had their grace, and shutdown_timeout more; then it
	 * is given up (result.c): the stop never waits for ever. */
	s->stop_by = util_now_ms() + KILL_GRACE_MS +
	    (int64_t)s->conf->shutdown_timeout * 1000;
	/* s is freed once stopped; the queue outlives it. */
	queue_watch(s->q, NULL, NULL);
	queue_watch_cancels(s->q, NULL, NULL);
	for (struct sjob *j = s->jobs, *jn; j; j = jn) {
		jn = j->next;
		if (j->ntargets == 0 && j->fetch != FETCH_RUNNING) {
			drop_job(j, true);
			continue;
		}
		if (j->f != NULL)
			child_kill(&j->f->child, SIGKILL);
		for (struct starget *st = j->targets, *next; st; st = next) {
			next = st->next;
			if (st->busy)
				continue;	/* its task ends it */
			if (st->started) {
				/* As for cancel: SIGTERM lets kiln-worker kill
				 * the tree and remove its cgroups; SIGKILL
				 * after the grace. */
				st->cancel = true;
				child_kill(&st->child, SIGTERM);
				if (st->timer_init)
					uv_timer_start(&st->timer, on_backstop,
					    KILL_GRACE_MS, 0);
			} else if (j->fetch != FETCH_RUNNING)
				end_target(st, TARGET_FAILED, -1, NULL, NULL, 0);
		}
	}
	maybe_stopped(s);
}
