#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "../api/api.h"
#include "attest.h"
#include "child.h"
#include "creds.h"
#include "jobplan.h"
#include "log.h"
#include "logview.h"
#include "metrics.h"
#include "recipe.h"
#include "sbuf.h"
#include "scheduler.h"
#include "store.h"
#include "subid.h"
#include "toolid.h"
#include "utf8.h"
#include "util.h"
#include "xmalloc.h"

#define FETCH_OUTPUT_MAX (256 * 1024)
#define STATUS_MAX 4096
/* A blob this young may belong to a publication not yet recorded. */
#define SWEEP_GRACE_MS (10 * 60 * 1000)
#define TICK_MS 2000
#define KILL_GRACE_MS 1000
#define BACKSTOP_S 30

struct sjob;

struct watcher {
	void (*wake)(void *);
	void *data;
	struct starget *t;		/* NULL once the target ended */
	struct watcher *next;
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
	char *toolid;			/* the toolchain's identity, if known */
	char *root;
	int log_fd;
	int marks_fd;			/* offsets of kilnd's lines (logview.h) */
	size_t log_bytes;
	bool truncated;
	struct sbuf status;
	bool started;			/* worker spawned */
	bool ended;			/* result recorded, being freed */
	bool cancel;
	bool timed_out;			/* the backstop fired */
	bool busy;			/* a thread-pool task holds it */
	bool release;			/* give back to the queue (drain) */
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

#define IDLE_JOB_MS 10000

static void drop_job(struct sjob *j, bool force);
#define drop_job_if_idle(j) drop_job((j), false)

struct sched {
	uv_loop_t *loop;
	struct queue *q;
	const struct kiln_config *conf;
	const struct toolchains *toolchains;
	char *worker;
	struct sjob *jobs;
	unsigned running;		/* claimed targets */
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

static void launch(struct starget *st);
static void sign_job(struct sched *s, int64_t job_id);
static void maybe_stopped(struct sched *s);
static void end_target(struct starget *st, enum target_state state,
    int exit_status, const char *error, const struct artifact *arts,
    size_t narts);

/* --- paths -------------------------------------------------------------- */

/*
 * Mirrors and caches are keyed by a hash of the repository's identity,
 * not of its URL as written: two spellings of one repository share them,
 * and no spelling gets a cache of its own to poison.
 */
static void
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
static const char *
trust_word(const struct sjob *j)
{
	return j->job->trust == TRUST_PROTECTED ? "protected" : "unprotected";
}

static char *
state_path(struct sched *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
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

static char *
log_path(struct sched *s, int64_t job_id, const char *url_name)
{
	return state_path(s, "logs/%" PRId64 "/%s.log", job_id, url_name);
}

/* --- jobs ----------------------------------------------------------------- */

static struct sjob *
find_job(struct sched *s, int64_t id)
{
	for (struct sjob *j = s->jobs; j; j = j->next)
		if (j->job->id == id)
			return j;
	return NULL;
}

static void
drop_job(struct sjob *j, bool force)
{
	struct sched *s = j->s;

	if (j->ntargets > 0 || j->fetch == FETCH_RUNNING)
		return;
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

static void
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
	free(st);
	drop_job_if_idle(j);
}

/* --- logs ------------------------------------------------------------------ */

static void
wake_watchers(struct starget *st)
{
	for (struct watcher *w = st->watchers; w; w = w->next)
		w->wake(w->data);
}

/*
 * A target's log and, beside it, the offsets of kilnd's own lines in it
 * (TARGET.log.kiln, logview.h): what lets the log shown to people tell
 * kilnd's "[kiln] ..." lines from a build's that look the same.  Both
 * are created together, truncated together when a target runs again, and
 * go with the job's log directory.  Only kilnd writes the marks, on the
 * loop thread, each one after its line: a reader on the loop thread
 * never sees one without the other, and a crash between the two leaves
 * kilnd's line shown as the build's (escaped), never the reverse.
 */
static int
log_create(struct starget *st, const char *lp)
{
	char *mp = xasprintf("%s.kiln", lp);
	int rc = 0;

	st->log_fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
	    O_CLOEXEC, 0640);
	if (st->log_fd < 0)
		rc = -errno;
	else if ((st->marks_fd = open(mp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640)) < 0) {
		rc = -errno;
		close(st->log_fd);
		st->log_fd = -1;
	}
	free(mp);
	return rc;
}

static void
log_close(struct starget *st)
{
	if (st->log_fd >= 0)
		close(st->log_fd);
	if (st->marks_fd >= 0)
		close(st->marks_fd);
	st->log_fd = st->marks_fd = -1;
}

/* kilnd's line of n bytes goes into the log now, and its offset into
 * the marks (the file's end: O_APPEND writes land there). */
static void
log_own(struct starget *st, const char *line, size_t n)
{
	char rec[LOGVIEW_MARK_LEN + 1];
	off_t at;

	if (st->log_fd < 0 || (at = lseek(st->log_fd, 0, SEEK_END)) < 0)
		return;
	if (write(st->log_fd, line, n) != (ssize_t)n)
		return;
	st->log_bytes += n;
	logview_mark_record(rec, (uint64_t)at);
	if (st->marks_fd >= 0)
		(void)!write(st->marks_fd, rec, LOGVIEW_MARK_LEN);
}

static void
log_write(struct starget *st, const char *buf, size_t n)
{
	size_t cap = st->s->conf->max_log_size;
	static const char cut[] = "[kiln] log truncated: it reached "
	    "max_log_size; the rest of the output was dropped\n";

	if (st->log_fd < 0 || st->truncated)
		return;
	if (st->log_bytes + n > cap) {
		/* kilnd's own lines are not counted against the cap, so
		 * log_bytes may already be past it. */
		n = st->log_bytes < cap ? cap - st->log_bytes : 0;
		st->truncated = true;
	}
	if (n > 0 && write(st->log_fd, buf, n) == (ssize_t)n)
		st->log_bytes += n;
	if (st->truncated) {
		/* On a line of its own in the raw log too. */
		(void)!write(st->log_fd, "\n", 1);
		log_own(st, cut, sizeof cut - 1);
	}
	wake_watchers(st);
}

/*
 * Users read a target's log and error; where kilnd keeps its state is the
 * operator's business.  A lower layer's message (the store's on a full
 * disk, say) may name a path there: "<state dir>" stands for it.
 */
static void
hide_state_dir(const struct sched *s, char *msg, size_t size)
{
	static const char name[] = "<state dir>";
	const char *dir = s->conf->state_dir;
	size_t dlen = strlen(dir), nlen = sizeof name - 1;
	char *p = msg;

	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	if (dlen <= 1 || size == 0)
		return;
	while ((p = memmem(p, strlen(p), dir, dlen)) != NULL) {
		size_t off = (size_t)(p - msg), tail = strlen(p + dlen);
		unsigned char next = (unsigned char)p[dlen];

		/* /srv/kiln is not in /srv/kiln2: whole names only. */
		if (isalnum(next) || next == '.' || next == '-' || next == '_') {
			p += dlen;
			continue;
		}
		if (off + nlen >= size) {
			snprintf(p, size - off, "%s", name);
			return;
		}
		if (off + nlen + tail >= size)
			tail = size - 1 - off - nlen;
		memmove(p + nlen, p + dlen, tail);
		memcpy(p, name, nlen);
		p[nlen + tail] = '\0';
		p += nlen;
	}
}

static void
log_line(struct starget *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * kilnd's own lines in a build log start with "[kiln] " and are marked
 * (log_own).  What they quote (a worker's error, go's output, a
 * repository's names) is made one line of valid UTF-8 without control
 * sequences (logview_clean), so a quoted text cannot end kilnd's line and
 * start one that would pass for kilnd's in the view.
 */
static void
log_line(struct starget *st, const char *fmt, ...)
{
	char msg[1024];
	struct sbuf line = { 0 };
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	hide_state_dir(st->s, msg, sizeof msg);
	n = utf8_trim_partial(msg, strlen(msg));
	sbuf_add(&line, "[kiln] ", 7);
	logview_clean(&line, msg, n);
	/* Escapes grow the text: cut it again, between characters. */
	line.len = utf8_cut(line.p, line.len, sizeof msg + 7);
	sbuf_addc(&line, '\n');
	log_own(st, line.p, line.len);
	sbuf_free(&line);
	wake_watchers(st);
}

/* --- ending a target -------------------------------------------------------- */

/* --- work off the loop thread ----------------------------------------------- */

/*
 * Hashing, copying into the store, signing, removing work trees and the
 * retention sweep run in libuv's thread pool.  s->works counts them:
 * the scheduler is not stopped while one is in flight.
 */
static void
queue_task(struct sched *s, uv_work_t *req, uv_work_cb work,
    uv_after_work_cb after)
{
	s->works++;
	uv_queue_work(s->loop, req, work, after);
}

static void
task_done(struct sched *s)
{
	s->works--;
	maybe_stopped(s);
}

/* rm -rf of a work tree, in the background; a tree that a killed worker
 * left to a build's subordinate ids is reclaimed first (subid.h). */
struct rmtree_task {
	uv_work_t req;
	struct sched *s;
	char *path;
};

static void
rmtree_work(uv_work_t *req)
{
	struct rmtree_task *t = req->data;
	int rc = subid_rmtree(t->s->worker, t->path);

	if (rc != 0)
		log_warn("cannot remove %s: %s", t->path, strerror(-rc));
}

static void
rmtree_after(uv_work_t *req, int status)
{
	struct rmtree_task *t = req->data;
	struct sched *s = t->s;

	(void)status;
	free(t->path);
	free(t);
	task_done(s);
}

static void
remove_tree(struct sched *s, const char *path)
{
	struct rmtree_task *t = xcalloc(1, sizeof *t);

	t->req.data = t;
	t->s = s;
	t->path = xstrdup(path);
	queue_task(s, &t->req, rmtree_work, rmtree_after);
}

/*
 * Publication of a succeeded build: kilnd (never the sandbox) checks
 * the out directory, hashes and stores every file, then the work tree
 * goes.  The target stays running, holding its slot, until it is done.
 */
struct publish_task {
	uv_work_t req;
	struct starget *st;
	char *dir, *root;
	struct store_limits lim;
	struct artifact *arts;
	size_t narts;
	int code;
	int rc;
	char why[512];
};

static void
publish_work(uv_work_t *req)
{
	struct publish_task *t = req->data;
	struct sched *s = t->st->s;
	int rc;

	t->rc = store_publish_dir(s->store, t->dir, &t->lim, &t->arts,
	    &t->narts, t->why, sizeof t->why);
	if ((rc = subid_rmtree(s->worker, t->root)) != 0)
		log_warn("cannot remove %s: %s", t->root, strerror(-rc));
}

static void
publish_after(uv_work_t *req, int status)
{
	struct publish_task *t = req->data;
	struct starget *st = t->st;
	struct sched *s = st->s;
	uint64_t bytes = 0;

	(void)status;
	st->busy = false;
	for (size_t i = 0; i < t->narts; i++)
		bytes += (uint64_t)t->arts[i].size;
	if (t->rc == 0)
		log_line(st, "published %zu file(s), %" PRIu64 " bytes",
		    t->narts, bytes);
	else
		log_line(st, "not published: %s", t->why);
	end_target(st, t->rc == 0 ? TARGET_SUCCEEDED : TARGET_FAILED,
	    t->code, t->rc == 0 ? NULL : t->why, t->arts, t->narts);
	artifacts_free(t->arts, t->narts);
	free(t->dir);
	free(t->root);
	free(t);
	task_done(s);
}

static void
start_publish(struct starget *st, int code)
{
	struct publish_task *t = xcalloc(1, sizeof *t);

	t->req.data = t;
	t->st = st;
	t->code = code;
	t->dir = xasprintf("%s/out", st->root);
	t->root = xstrdup(st->root);
	t->lim.max_files = st->s->conf->max_artifacts;
	t->lim.max_bytes = (int64_t)st->s->conf->max_artifact_size;
	t->lim.budget = &st->j->output;
	t->lim.max_total = (int64_t)st->s->conf->max_job_output_size;
	st->busy = true;
	queue_task(st->s, &t->req, publish_work, publish_after);
}

static void maybe_drained(struct sched *s);

/*
 * kiln-worker could not be started (missing, not executable, being
 * replaced): the farm's fault, not the job's.  Its targets go back to
 * the queue, and no build starts for a few seconds.
 */
static void
worker_unavailable(struct sched *s, const char *why)
{
	if (s->backoff_until <= util_now_ms())
		log_error("cannot start %s%s%s: targets go back to the queue; "
		    "trying again in 5 s", s->worker, why && *why ? ": " : "",
		    why && *why ? why : "");
	s->backoff_until = util_now_ms() + 5000;
}

/* After a target's memory is gone: stop if stopping, else fill the slot. */
static void
after_target(struct sched *s)
{
	maybe_stopped(s);
	maybe_drained(s);
	sched_kick(s);
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct starget *st = h->data;
	struct sched *s = st->s;

	free_target(st);
	after_target(s);
}

static void
end_target(struct starget *st, enum target_state state, int exit_status,
    const char *error, const struct artifact *arts, size_t narts)
{
	struct sched *s = st->s;
	struct watcher *w, *next;
	enum job_state js = JOB_RUNNING;
	char shown[2048];
	const char *user_error = NULL;
	int rc;

	/* The operator's log keeps `error` whole; users get it without
	 * paths of the state directory, as valid UTF-8 cut between
	 * characters (it quotes workers, builds and remote servers). */
	if (error != NULL) {
		snprintf(shown, sizeof shown, "%s", error);
		hide_state_dir(s, shown, sizeof shown);
		utf8_fix(shown, sizeof shown);
		user_error = shown;
	}
	if (s->stopping || st->release) {
		/* Not the build's fault: it runs again at the next start. */
		rc = queue_release(s->q, st->claim.target_id);
		log_line(st, "%s%s goes back to the queue", s->stopping ?
		    "kilnd is stopping: " : "", st->t.name);
	} else {
		struct queue_outcome o = {
			.state = state, .exit_status = exit_status,
			.error = user_error, .arts = arts, .narts = narts,
			.cache_key = st->cache_key, .cached = st->cached,
			.cached_from = st->cached_from,
		};
		rc = queue_finish_build(s->q, st->claim.target_id, &o, &js);
		log_line(st, "%s: %s%s%s (%.1f s)", st->t.name,
		    target_state_name(state), error ? ": " : "",
		    error ? user_error : "",
		    st->start_ms ? (util_now_ms() - st->start_ms) / 1000.0 : 0);
		log_info("job %" PRId64 " %s: %s%s%s", st->claim.job_id,
		    st->t.name, target_state_name(state), error ? ": " : "",
		    error ? error : "");
		if (st->started && st->start_ms > 0)
			metrics_build(st->t.name, target_state_name(state),
			    (util_now_ms() - st->start_ms) / 1000.0);
	}
	if (rc != 0 && rc != QUEUE_ENOTFOUND)
		log_error("job %" PRId64 " %s: cannot record the result",
		    st->claim.job_id, st->t.name);
	else if (rc == 0 && !s->stopping && js == JOB_SUCCEEDED)
		sign_job(s, st->claim.job_id);
	/* Followers: wake once more; they find the target ended. */
	st->ended = true;
	for (w = st->watchers; w; w = next) {
		next = w->next;
		w->t = NULL;
		w->next = NULL;
		w->wake(w->data);
	}
	st->watchers = NULL;
	if (st->timer_init) {
		uv_timer_stop(&st->timer);
		st->timer.data = st;
		uv_close((uv_handle_t *)&st->timer, on_timer_closed);
	} else {
		free_target(st);
		after_target(s);
	}
}

static void
build_done(struct child *c)
{
	struct starget *st = container_of(c, struct starget, child);
	enum target_state state = TARGET_FAILED;
	char why[512] = "";
	int code = -1;
	json_t *res = NULL;

	if (st->status.len > 0)
		res = json_loads(st->status.p, JSON_DISABLE_EOF_CHECK, NULL);
	const char *status = json_string_value(json_object_get(res, "status"));
	if (status != NULL && strcmp(status, "exited") == 0) {
		code = (int)json_integer_value(json_object_get(res, "code"));
		if (code == 0)
			state = TARGET_SUCCEEDED;
		else
			snprintf(why, sizeof why, "the build exited with status "
			    "%d", code);
	} else if (status != NULL && strcmp(status, "signaled") == 0) {
		snprintf(why, sizeof why, "the build was killed by signal %d",
		    (int)json_integer_value(json_object_get(res, "signal")));
	} else if (status != NULL && strcmp(status, "timed_out") == 0) {
		state = TARGET_TIMED_OUT;
		snprintf(why, sizeof why, "the build ran past its timeout");
	} else if (status != NULL && strcmp(status, "error") == 0) {
		snprintf(why, sizeof why, "%s", json_string_value(
		    json_object_get(res, "error")) ?: "kiln-worker failed");
	} else if (st->timed_out) {
		state = TARGET_TIMED_OUT;
		snprintf(why, sizeof why, "the build ran past its timeout "
		    "(kiln-worker killed)");
	} else if (c->exit_status == -1 && !c->spawned) {
		/* Not the build's fault: back to the queue. */
		worker_unavailable(st->s, NULL);
		st->release = true;
		/* Where it is installed is for kilnd's log, not the job's. */
		snprintf(why, sizeof why, "cannot start kiln-worker");
	} else
		snprintf(why, sizeof why, "kiln-worker ended without a result "
		    "(exit %lld, signal %d)", (long long)c->exit_status,
		    c->term_signal);
	json_decref(res);
	if (st->cancel && state != TARGET_SUCCEEDED) {
		state = TARGET_CANCELED;
		snprintf(why, sizeof why, "canceled while it ran");
	}
	if (state == TARGET_SUCCEEDED) {
		start_publish(st, code);
		return;
	}
	/* The tree of a failed build is of no further use. */
	if (st->root != NULL)
		remove_tree(st->s, st->root);
	end_target(st, state, code, why[0] ? why : NULL, NULL, 0);
}

static void
build_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct starget *st = container_of(c, struct starget, child);

	if (fd == 3) {
		if (st->status.len + n <= STATUS_MAX)
			sbuf_add(&st->status, buf, n);
		return;
	}
	log_write(st, buf, n);
}

static void
on_backstop(uv_timer_t *h)
{
	struct starget *st = h->data;

	if (st->cancel) {
		/* The grace after SIGTERM is over. */
		child_kill(&st->child, SIGKILL);
		return;
	}
	/* kiln-worker enforces the timeout itself; this is for a worker
	 * that does not. */
	log_warn("job %" PRId64 " %s: kiln-worker outlived its timeout; "
	    "killing it", st->claim.job_id, st->t.name);
	st->timed_out = true;
	child_kill(&st->child, SIGKILL);
}

static unsigned
timeout_of(struct starget *st)
{
	unsigned t = st->s->conf->build_timeout;

	/* A job may lower the farm's limit, never raise it. */
	if (st->j->job->timeout > 0 && (unsigned)st->j->job->timeout < t)
		t = (unsigned)st->j->job->timeout;
	return t;
}

static void
fail_now(struct starget *st, const char *why)
{
	end_target(st, TARGET_FAILED, -1, why, NULL, 0);
}

/*
 * kiln-worker build's options, for a build and for the deps step: the
 * work (mirror, commit, root, target, timeout), the farm's limits,
 * `extra` options (NULL-terminated), the plan's variables and program.
 * They reach the worker through --config-fd (spawn_worker_build), never
 * its command line.
 */
static char **
worker_build_argv(struct sched *s, const char *mirror, const char *commit,
    const char *root, const char *target, unsigned timeout,
    const char *const *extra, const struct recipe_plan *plan)
{
	const struct kiln_config *conf = s->conf;
	size_t n = 0, cap = 64;
	char **argv = xcalloc(cap, sizeof *argv);

#define ARG(x) do { \
	if (n + 2 > cap) { cap *= 2; argv = xreallocarray(argv, cap, sizeof *argv); } \
	argv[n++] = (x); argv[n] = NULL; \
} while (0)
	ARG(xstrdup("--mirror")); ARG(xstrdup(mirror));
	ARG(xstrdup("--commit")); ARG(xstrdup(commit));
	ARG(xstrdup("--root")); ARG(xstrdup(root));
	ARG(xstrdup("--target")); ARG(xstrdup(target));
	ARG(xstrdup("--timeout")); ARG(xasprintf("%u", timeout));
	for (size_t i = 0; extra[i]; i++)
		ARG(xstrdup(extra[i]));
	ARG(xstrdup("--memory")); ARG(xasprintf("%zu", conf->build_memory));
	ARG(xstrdup("--pids")); ARG(xasprintf("%u", conf->build_pids));
	ARG(xstrdup("--file-size"));
	ARG(xasprintf("%zu", conf->build_file_size));
	ARG(xstrdup("--build-uid")); ARG(xasprintf("%u", conf->build_uid));
	if (conf->allow_same_uid_builds)
		ARG(xstrdup("--allow-same-uid"));
	ARG(xstrdup("--status-fd")); ARG(xstrdup("3"));
	for (size_t i = 0; plan->env[i]; i++) {
		ARG(xstrdup("--env"));
		ARG(xstrdup(plan->env[i]));
	}
	ARG(xstrdup("--"));
	for (size_t i = 0; plan->argv[i]; i++)
		ARG(xstrdup(plan->argv[i]));
#undef ARG
	return argv;
}

static void
argv_free(char **argv)
{
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/*
 * kiln-worker build with its options (worker_build_argv) in a memfd on
 * its fd 4 (after stdout, stderr and the status pipe), read through
 * --config-fd.  The build's pid 1 is a clone of the worker and the build
 * can read its /proc/1/cmdline: that shows "kiln-worker build
 * --config-fd 4" and nothing of the state directory, the caches or the
 * build's variables.  The environment is PATH alone.
 */
static int
spawn_worker_build(struct sched *s, struct child *c, char **opts,
    child_data_cb on_data, child_done_cb on_done, void *data)
{
	char *argv[] = { s->worker, "build", "--config-fd", "4", NULL };
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };

	return child_spawn_args(c, s->loop, argv, env, 3, opts, on_data,
	    on_done, data);
}

/* What a build's templates and toolchain come from. */
static void
recipe_ctx_of(struct recipe_ctx *ctx, const struct sjob *j)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->repo = j->job->repo;
	ctx->commit = j->job->commit;
	ctx->commit_time = j->commit_time;
	ctx->tag = j->plan.tag;
	ctx->branch = j->plan.branch;
	ctx->go_bindir = j->plan.go_bindir;
	ctx->vendored = j->plan.vendored;
}

/* The plan's notes, then what the deps step printed, line by line. */
static void
log_plan(struct starget *st)
{
	const struct sjob *j = st->j;
	const char *p, *end, *nl;

	if (j->plan.go_version != NULL)
		log_line(st, "toolchain %s (%s)", j->plan.go_version,
		    j->plan.go_path);
	if (j->plan.tag != NULL)
		log_line(st, "version from tag %s", j->plan.tag);
	for (size_t i = 0; i < j->plan.nnotes; i++)
		log_line(st, "%s", j->plan.notes[i]);
	if (j->plan.deps) {
		log_line(st, "deps: $ go mod download (once for the job)");
		p = j->deps_log.p ? j->deps_log.p : "";
		end = p + j->deps_log.len;
		for (; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				nl = end;
			if (nl > p)
				log_line(st, "deps: %.*s", (int)(nl - p), p);
		}
	}
}

/* The job JSON says which toolchain built each target. */
static void
record_toolchain(struct starget *st)
{
	const char *tc = st->j->plan.go_version ? st->j->plan.go_version :
	    st->toolid;

	if (tc != NULL && queue_set_toolchain(st->s->q, st->claim.target_id,
	    tc) != 0)
		log_warn("job %" PRId64 " %s: cannot record the toolchain",
		    st->claim.job_id, st->t.name);
}

static void
spawn_build(struct starget *st)
{
	struct sched *s = st->s;
	struct sjob *j = st->j;
	const struct kiln_config *conf = s->conf;
	struct recipe_plan plan = { 0 };
	char **argv = NULL, key[33], why[256], *dir, *lp, *mirror, *cache;
	int rc;

	struct recipe_ctx ctx;

	recipe_ctx_of(&ctx, j);
	if (recipe_plan(&plan, j->recipe, &st->t, &ctx, conf, why,
	    sizeof why) != 0) {
		fail_now(st, why);
		return;
	}
	repo_key(key, j->job->repo);
	dir = state_path(s, "work/%" PRId64, j->job->id);
	lp = log_path(s, j->job->id, st->url_name);
	mirror = state_path(s, "mirrors/%s.git", key);
	cache = state_path(s, "cache/%s.%s", key, trust_word(j));
	/* A fresh work root per run: the worker refuses an old one. */
	st->root = xasprintf("%s/%s.%d.%" PRId64, dir, st->url_name,
	    st->claim.attempt, util_now_ms());
	{
		char *logdir = state_path(s, "logs/%" PRId64, j->job->id);
		if ((rc = util_mkdir_p(dir, 0750)) != 0 ||
		    (rc = util_mkdir_p(logdir, 0750)) != 0 ||
		    (rc = util_mkdir_p(cache, 0750)) != 0) {
			/* The paths are for the operator, not for users. */
			log_error("job %" PRId64 ": cannot create directories "
			    "under %s: %s", j->job->id, conf->state_dir,
			    strerror(-rc));
			snprintf(why, sizeof why, "kilnd cannot create its work "
			    "directories: %s", strerror(-rc));
		}
		free(logdir);
	}
	if (rc == 0 && (rc = log_create(st, lp)) != 0) {
		log_error("job %" PRId64 ": cannot create log %s: %s",
		    j->job->id, lp, strerror(-rc));
		snprintf(why, sizeof why, "kilnd cannot create the "
		    "target's log: %s", strerror(-rc));
	}
	if (rc != 0) {
		free(dir); free(lp); free(mirror); free(cache);
		recipe_plan_free(&plan);
		fail_now(st, why);
		return;
	}
	log_line(st, "job %" PRId64 " target %s attempt %d, commit %s",
	    j->job->id, st->t.name, st->claim.attempt, j->job->commit);
	log_plan(st);
	log_line(st, "$ %s", plan.summary);
	record_toolchain(st);

	{
		char *mc = NULL;
		const char *extra[8];
		size_t e = 0;

		extra[e++] = "--cache";
		extra[e++] = cache;
		if (j->plan.go_version != NULL) {
			mc = state_path(s, "gomod-%s", trust_word(j));
			util_mkdir_p(mc, 0750);
			extra[e++] = "--modcache";
			extra[e++] = mc;
		}
		if (j->job->network)
			extra[e++] = "--network";
		extra[e] = NULL;
		argv = worker_build_argv(s, mirror, j->job->commit, st->root,
		    st->t.name, timeout_of(st), extra, &plan);
		free(mc);
	}
	st->start_ms = util_now_ms();
	st->started = true;
	rc = spawn_worker_build(s, &st->child, argv, build_data, build_done,
	    st);
	if (rc != 0)
		log_error("job %" PRId64 " %s: cannot spawn %s: %s", j->job->id,
		    st->t.name, s->worker, uv_strerror(rc));
	else {
		uv_timer_init(s->loop, &st->timer);
		st->timer.data = st;
		st->timer_init = true;
		uv_timer_start(&st->timer, on_backstop,
		    ((uint64_t)timeout_of(st) + BACKSTOP_S) * 1000, 0);
		log_info("job %" PRId64 " %s: building (attempt %d)",
		    j->job->id, st->t.name, st->claim.attempt);
	}
	argv_free(argv);
	free(dir); free(lp); free(mirror); free(cache);
	recipe_plan_free(&plan);
}


/* --- the build cache ---------------------------------------------------------- */

/*
 * A target is not built again when an equal build succeeded on this farm:
 * same commit, target, recipe and toolchain identity (and kiln version,
 * whose worker sets the build's environment).
 */
static char *
cache_key(const struct sjob *j, const struct starget *st, const char *tool)
{
	crypto_hash_sha256_state h;
	unsigned char d[crypto_hash_sha256_BYTES];
	/*
	 * What makes the result trusted, not only equal: the repository's
	 * identity (a fork holding the commit is another repository, whose
	 * builds had other caches), the project, the network setting and
	 * the trust class (whose caches the build read).
	 * The tag and branch reach the binary through templates
	 * ({{.Version}}, {{.Branch}}); vendored changes -mod.
	 */
	char *id = util_repo_identity(j->job->repo);
	const char *parts[] = { "kiln-build-cache-v4", PACKAGE_VERSION,
	    j->job->commit, st->t.name, j->recipe, tool,
	    j->plan.tag ? j->plan.tag : "", j->plan.branch ? j->plan.branch : "",
	    j->plan.vendored ? "vendored" : "modules", id,
	    j->job->project ? j->job->project : "",
	    j->job->network ? "network" : "offline", trust_word(j) };
	char hex[65];

	crypto_hash_sha256_init(&h);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		/* With the NUL: no two splits give the same bytes. */
		crypto_hash_sha256_update(&h, (const unsigned char *)parts[i],
		    strlen(parts[i]) + 1);
	crypto_hash_sha256_final(&h, d);
	sodium_bin2hex(hex, sizeof hex, d, sizeof d);
	free(id);
	return xstrdup(hex);
}

struct ident_task {
	uv_work_t req;
	struct starget *st;
	char *recipe;
	char *triple;
	char *go;			/* the chosen go binary, or NULL */
	char *id;
	char why[256];
};

/*
 * The blobs of a cache hit, marked as just used: a retention sweep that
 * runs now keeps them (it deletes only blobs older than its grace); one
 * already gone makes the hit unusable.
 */
static bool
reusable(struct sched *s, const struct artifact *arts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (store_touch(s->store, arts[i].sha256) != 0)
			return false;
	return true;
}

/*
 * The log of a target that runs no build (reused, or its job failed
 * before building), opened with its first line; false when it cannot
 * be written (the target's result is recorded all the same).
 */
static bool
open_unbuilt_log(struct starget *st)
{
	char *lp = log_path(st->s, st->j->job->id, st->url_name);
	char *logdir = state_path(st->s, "logs/%" PRId64, st->j->job->id);

	if (util_mkdir_p(logdir, 0750) == 0 && log_create(st, lp) == 0)
		log_line(st, "job %" PRId64 " target %s, commit %s",
		    st->j->job->id, st->t.name, st->j->job->commit);
	free(lp);
	free(logdir);
	return st->log_fd >= 0;
}

/* A reused target's log says where its files came from. */
static void
cached_log(struct starget *st)
{
	if (open_unbuilt_log(st))
		log_line(st, "cached: not built again: job %" PRId64 " built "
		    "it from the same repository, commit, recipe, toolchain, "
		    "project and network setting", st->cached_from);
}

static void
ident_work(uv_work_t *req)
{
	struct ident_task *t = req->data;

	t->id = toolid_for(t->recipe, t->triple, t->go, t->why, sizeof t->why);
}

static void
ident_after(uv_work_t *req, int status)
{
	struct ident_task *t = req->data;
	struct starget *st = t->st;
	struct sched *s = st->s;
	struct artifact *arts = NULL;
	size_t narts = 0;
	bool hit;

	(void)status;
	st->busy = false;
	if (s->draining && !s->stopping && !st->cancel) {
		/* Draining: it has not started; the next start builds it. */
		st->release = true;
		end_target(st, TARGET_QUEUED, -1, NULL, NULL, 0);
	} else if (s->stopping || st->cancel) {
		end_target(st, TARGET_CANCELED, -1, "canceled before it started",
		    NULL, 0);
	} else if (t->id == NULL) {
		log_info("job %" PRId64 " %s: not cached: %s", st->claim.job_id,
		    st->t.name, t->why);
		spawn_build(st);
	} else {
		st->toolid = xstrdup(t->id);
		st->cache_key = cache_key(st->j, st, t->id);
		hit = queue_cache_lookup(s->q, st->cache_key, &arts, &narts,
		    &st->cached_from) == 0;
		metrics_cache(hit);
		if (hit && !reusable(s, arts, narts)) {
			log_warn("job %" PRId64 " %s: an equal build is on record "
			    "but its files are gone from the store; building",
			    st->claim.job_id, st->t.name);
			hit = false;
		}
		if (hit) {
			st->cached = true;
			record_toolchain(st);
			log_info("job %" PRId64 " %s: cached (job %" PRId64 " built "
			    "it: %.12s; %s)", st->claim.job_id, st->t.name,
			    st->cached_from, st->j->job->commit, t->id);
			cached_log(st);
			end_target(st, TARGET_SUCCEEDED, -1, NULL, arts, narts);
		} else
			spawn_build(st);
		artifacts_free(arts, narts);
	}
	free(t->recipe);
	free(t->triple);
	free(t->go);
	free(t->id);
	free(t);
	task_done(s);
}

/* Build the target, unless an equal build's artifacts can be reused. */
static void
launch(struct starget *st)
{
	struct ident_task *t;

	if (!st->j->job->cache || st->j->job->commit == NULL ||
	    st->j->recipe == NULL) {
		spawn_build(st);
		return;
	}
	t = xcalloc(1, sizeof *t);
	t->req.data = t;
	t->st = st;
	t->recipe = xstrdup(st->j->recipe);
	{
		const char *tr = conf_toolchain(st->s->conf, st->t.name);
		t->triple = tr ? xstrdup(tr) : NULL;
	}
	t->go = st->j->plan.go_path ? xstrdup(st->j->plan.go_path) : NULL;
	st->busy = true;
	queue_task(st->s, &t->req, ident_work, ident_after);
}

/* --- signing ------------------------------------------------------------------ */

struct signing {
	uv_work_t req;
	struct sched *s;
	struct job *job;
	char sums[STORE_HEX_LEN + 1], sig[STORE_HEX_LEN + 1];
	char prov[STORE_HEX_LEN + 1];
	int rc;
	char why[256];
	struct signing *next;
};

/*
 * SHA256SUMS, its minisign signature and the DSSE-wrapped provenance,
 * each stored as a blob; the job records the three digests at once.
 */
static void
sign_work(uv_work_t *req)
{
	struct signing *g = req->data;
	struct sched *s = g->s;
	char *sums, *tc = NULL, *sig = NULL, *stmt = NULL, *env = NULL;
	size_t len;

	g->rc = -1;
	if ((sums = attest_sums(g->job, &len)) == NULL) {
		snprintf(g->why, sizeof g->why, "an artifact has no digest");
		return;
	}
	tc = attest_trusted_comment(g->job, util_now_ms());
	sig = sign_minisig(s->key, sums, len, tc);
	stmt = attest_statement(g->job, s->builder_id);
	if (stmt == NULL)
		snprintf(g->why, sizeof g->why, "cannot build the provenance");
	else
		env = attest_envelope(s->key, stmt, strlen(stmt));
	if (env != NULL &&
	    store_put_buf(s->store, sums, len, g->sums, g->why,
	    sizeof g->why) == 0 &&
	    store_put_buf(s->store, sig, strlen(sig), g->sig, g->why,
	    sizeof g->why) == 0 &&
	    store_put_buf(s->store, env, strlen(env), g->prov, g->why,
	    sizeof g->why) == 0)
		g->rc = 0;
	free(sums);
	free(tc);
	free(sig);
	free(stmt);
	free(env);
}

static void
sign_after(uv_work_t *req, int status)
{
	struct signing *g = req->data;
	struct sched *s = g->s;
	int rc;

	(void)status;
	for (struct signing **pp = &s->signing; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	metrics_sign(g->rc == 0);
	if (g->rc != 0)
		log_error("job %" PRId64 ": cannot sign: %s (kilnd tries again "
		    "at its next start)", g->job->id, g->why);
	else if ((rc = queue_set_signed(s->q, g->job->id, g->sums, g->sig,
	    g->prov)) == 0)
		log_info("job %" PRId64 ": signed SHA256SUMS %.12s, "
		    "provenance %.12s", g->job->id, g->sums, g->prov);
	else if (rc == QUEUE_ENOTFOUND)
		log_info("job %" PRId64 ": expired before it was signed",
		    g->job->id);
	else
		log_error("job %" PRId64 ": cannot record its signature",
		    g->job->id);
	job_free(g->job);
	free(g);
	task_done(s);
}

static void
sign_job(struct sched *s, int64_t job_id)
{
	struct signing *g;
	struct job *job = NULL;

	for (g = s->signing; g; g = g->next)
		if (g->job->id == job_id)
			return;
	if (queue_get(s->q, job_id, &job) != 0) {
		log_error("job %" PRId64 ": cannot be read for signing", job_id);
		return;
	}
	if (job->state != JOB_SUCCEEDED || job->sums_sha256 != NULL ||
	    job->expired_at != 0) {
		job_free(job);
		return;
	}
	g = xcalloc(1, sizeof *g);
	g->req.data = g;
	g->s = s;
	g->job = job;
	g->next = s->signing;
	s->signing = g;
	queue_task(s, &g->req, sign_work, sign_after);
}

/* --- retention ----------------------------------------------------------------- */

struct sweep_task {
	uv_work_t req;
	struct sched *s;
	struct queue_retention r;
	char *logs;
	size_t expired;
	struct store_stats st;
	int rc;
};

static void
sweep_work(uv_work_t *req)
{
	struct sweep_task *t = req->data;
	struct sched *s = t->s;
	int64_t *ids = NULL;
	char **keep = NULL;
	size_t nids = 0, nkeep = 0;

	t->rc = -1;
	if (queue_expire(s->q, &t->r, util_now_ms(), &ids, &nids) != 0)
		return;
	t->expired = nids;
	for (size_t i = 0; i < nids; i++) {
		char *p = xasprintf("%s/%" PRId64, t->logs, ids[i]);
		util_rmtree(p);
		free(p);
	}
	free(ids);
	/* After the expiry: what is referenced now stays referenced (a
	 * cache hit only reuses blobs of jobs that are not expired), and
	 * what a publication adds meanwhile is younger than the grace. */
	if (queue_referenced_blobs(s->q, &keep, &nkeep) != 0)
		return;
	t->rc = store_sweep(s->store, keep, nkeep, SWEEP_GRACE_MS, &t->st);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
}

static void
sweep_after(uv_work_t *req, int status)
{
	struct sweep_task *t = req->data;
	struct sched *s = t->s;

	(void)status;
	s->sweeping = false;
	if (t->rc == 0)
		metrics_store(t->st.blobs, t->st.bytes);
	if (t->rc != 0)
		log_error("retention sweep failed");
	else if (t->expired > 0 || t->st.removed > 0)
		log_info("retention: %zu job(s) expired, %" PRIu64 " blob(s) "
		    "removed (%" PRIu64 " bytes); the store holds %" PRIu64
		    " blob(s), %" PRIu64 " bytes", t->expired, t->st.removed,
		    t->st.removed_bytes, t->st.blobs, t->st.bytes);
	free(t->logs);
	free(t);
	task_done(s);
}

static void
on_sweep(uv_timer_t *h)
{
	struct sched *s = h->data;
	struct sweep_task *t;

	if (s->sweeping || s->stopping)
		return;
	t = xcalloc(1, sizeof *t);
	t->req.data = t;
	t->s = s;
	t->r.keep_jobs = s->conf->keep_jobs;
	t->r.keep_days = s->conf->keep_days;
	t->r.max_bytes = conf_store_max_size(s->conf,
	    store_fs_size(s->store));
	t->logs = state_path(s, "logs");
	s->sweeping = true;
	queue_task(s, &t->req, sweep_work, sweep_after);
}

/* --- fetch and deps --------------------------------------------------------- */

/* The deps step's output kept for the targets' logs, and its reason. */
#define DEPS_LOG_MAX (64 * 1024)

static void
fetch_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct fetch *f = container_of(c, struct fetch, child);
	struct sbuf *b = fd == 1 ? &f->out : fd == 2 ? &f->err : &f->status;
	size_t max = fd == 3 ? STATUS_MAX : f->deps ? DEPS_LOG_MAX :
	    FETCH_OUTPUT_MAX;

	if (b->len + n <= max)
		sbuf_add(b, buf, n);
}

/* The last non-empty line of the worker's stderr: its reason. */
static void
last_line(const struct sbuf *b, char *out, size_t size)
{
	const char *end, *start;

	snprintf(out, size, "fetch failed");
	if (b->len == 0)
		return;
	end = b->p + b->len;
	while (end > b->p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > b->p && start[-1] != '\n')
		start--;
	if (end > start)
		snprintf(out, size, "%.*s", (int)(end - start), start);
}

/* The last `size` bytes of a log, whole lines, newlines as "; ". */
static void
tail_lines(const struct sbuf *b, char *out, size_t size)
{
	const char *p = b->p ? b->p : "", *end = p + b->len;
	size_t o = 0;

	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if ((size_t)(end - p) > size - 1) {
		p = end - (size - 1);
		while (p < end && *p != '\n')
			p++;
		if (p < end)
			p++;
	}
	while (p < end && (*p == '\n' || *p == '\r'))
		p++;
	for (; p < end && o + 3 < size; p++) {
		if (*p == '\n') {
			/* One separator for a run of (blank) lines. */
			while (p + 1 < end && (p[1] == '\n' || p[1] == '\r'))
				p++;
			out[o++] = ';';
			out[o++] = ' ';
		} else if (*p == '\t')
			out[o++] = ' ';
		else if (*p != '\r')
			out[o++] = *p;
	}
	out[o] = '\0';
}

static void
fetch_closed(uv_handle_t *h)
{
	struct fetch *f = h->data;

	sbuf_free(&f->out);
	sbuf_free(&f->err);
	sbuf_free(&f->status);
	free(f->root);
	free(f->refused);
	free(f);
}

/* Write the deps step's output to a target's log, which never started. */
static void
deps_log_to(struct starget *st, const char *why)
{
	if (!open_unbuilt_log(st))
		return;
	log_plan(st);
	log_line(st, "%s: failed: %s", st->t.name, why);
	log_close(st);
}

/* The deps step ended: go's own message is the reason when it failed. */
static void
deps_result(struct fetch *f, char *why, size_t whysize)
{
	struct sjob *j = f->j;
	json_t *res = NULL;
	const char *status;
	char tail[768];

	sbuf_free(&j->deps_log);
	sbuf_add(&j->deps_log, f->out.p ? f->out.p : "", f->out.len);
	sbuf_add(&j->deps_log, f->err.p ? f->err.p : "", f->err.len);
	if (f->status.len > 0)
		res = json_loadb(f->status.p, f->status.len,
		    JSON_DISABLE_EOF_CHECK, NULL);
	status = json_string_value(json_object_get(res, "status"));
	if (f->timed_out)
		snprintf(why, whysize, "deps: go mod download took longer than "
		    "fetch_timeout (%u s)", j->s->conf->fetch_timeout);
	else if (status != NULL && strcmp(status, "exited") == 0 &&
	    json_integer_value(json_object_get(res, "code")) == 0)
		;	/* the module cache holds everything */
	else if (status != NULL && strcmp(status, "exited") == 0) {
		tail_lines(&j->deps_log, tail, sizeof tail);
		snprintf(why, whysize, "deps: go mod download failed: %s",
		    tail[0] ? tail : "(no output)");
	} else if (status != NULL && strcmp(status, "error") == 0)
		snprintf(why, whysize, "deps: %s", json_string_value(
		    json_object_get(res, "error")) ?: "kiln-worker failed");
	else if (f->child.spawned)
		snprintf(why, whysize, "deps: kiln-worker ended without a result");
	else
		last_line(&f->err, why, whysize);
	json_decref(res);
	if (f->root != NULL)
		remove_tree(j->s, f->root);
}

static void start_deps(struct sjob *j);

/*
 * The trust class of a job whose submitter may build protected: the ref it
 * named (as the fetch resolved it: a tag or branch that still points at
 * the commit) against the project's protected_refs, or tags and the
 * repository's default branch.
 */
static enum job_trust
trust_of(struct sched *s, const struct sjob *j, json_t *res)
{
	const struct conf_project *p = j->job->project ?
	    conf_project_by_name(s->conf, j->job->project) : NULL;
	const char *ref = json_string_value(json_object_get(res, "ref_name"));
	const char *def = json_string_value(json_object_get(res,
	    "default_branch"));

	return conf_ref_protected(p, ref, def) ? TRUST_PROTECTED :
	    TRUST_UNPROTECTED;
}

/*
 * The fetch ended: record the (peeled) commit and make the job's plan:
 * recipe, targets named by the repository, toolchain, deps step.
 */
static void
fetch_result(struct fetch *f, char *why, size_t whysize)
{
	struct child *c = &f->child;
	struct sjob *j = f->j;
	struct sched *s = j->s;
	struct starget *ph = NULL;
	json_t *res = NULL;
	const char *commit;
	enum job_trust trust;

	if (f->refused != NULL) {
		snprintf(why, whysize, "%s", f->refused);
		return;
	}
	if (f->timed_out) {
		snprintf(why, whysize, "fetch of %s took longer than "
		    "fetch_timeout (%u s)", j->job->repo, s->conf->fetch_timeout);
		return;
	}
	if (c->exit_status != 0 || c->term_signal != 0) {
		last_line(&f->err, why, whysize);
		return;
	}
	if ((res = json_loadb(f->out.p ? f->out.p : "", f->out.len,
	    JSON_DISABLE_EOF_CHECK, NULL)) == NULL ||
	    (commit = json_string_value(json_object_get(res, "commit"))) ==
	    NULL || strlen(commit) != 40) {
		snprintf(why, whysize, "kiln-worker fetch gave no commit");
		goto out;
	}
	j->commit_time = json_integer_value(json_object_get(res,
	    "commit_time"));
	/*
	 * A webhook's commit may be an annotated tag's object: the fetch
	 * peeled it, and the commit is what the job records and builds.
	 */
	trust = j->job->trust != TRUST_UNKNOWN ? j->job->trust :
	    trust_of(s, j, res);
	if (j->job->commit == NULL || strcmp(j->job->commit, commit) != 0 ||
	    trust != j->job->trust) {
		if (queue_set_commit(s->q, j->job->id, commit, trust) != 0) {
			snprintf(why, whysize, "cannot record the commit");
			goto out;
		}
		log_info("job %" PRId64 ": %s resolved to %s%s, %s", j->job->id,
		    j->job->ref, commit, j->job->commit ? " (peeled)" : "",
		    job_trust_name(trust));
		free(j->job->commit);
		j->job->commit = xstrdup(commit);
		j->job->trust = trust;
	}
	if (j->recipe != NULL)
		goto out;	/* planned by an earlier fetch */
	/* Canceled or stopping meanwhile: plan nothing, queue nothing. */
	if (j->cancel || s->stopping || s->draining)
		goto out;
	for (struct starget *st = j->targets; st; st = st->next)
		if (st->placeholder)
			ph = st;
	jobplan_free(&j->plan);
	if (jobplan_make(&j->plan, j->job, res, ph != NULL, s->toolchains,
	    s->conf, api_check_recipe, why, whysize) != 0)
		goto out;
	j->recipe = xstrdup(j->plan.recipe);
	if (ph != NULL) {
		if (queue_expand_targets(s->q, j->job->id, ph->claim.target_id,
		    j->plan.targets, j->plan.ntargets) != 0) {
			snprintf(why, whysize, "cannot record the targets");
			goto out;
		}
		log_info("job %" PRId64 ": targets from the repository: %zu",
		    j->job->id, j->plan.ntargets);
		/* Its row is gone: no outcome to record.  The job stays
		 * (FETCH_RUNNING or DONE) while it has no target. */
		j->fetch = j->plan.deps ? FETCH_RUNNING : FETCH_DONE;
		free_target(ph);
		j->fetch = FETCH_NONE;
	}
out:
	json_decref(res);
}

static void
fetch_done(struct child *c)
{
	struct fetch *f = container_of(c, struct fetch, child);
	struct sjob *j = f->j;
	struct sched *s = j->s;
	char why[1024] = "";
	bool deps = f->deps, none;
	/* Not started for want of a worker (not refused): given back. */
	bool unspawned = !c->spawned && f->refused == NULL;

	s->fetches--;
	j->fetch = FETCH_NONE;
	j->f = NULL;
	uv_timer_stop(&f->timer);
	f->timer.data = f;
	if (deps)
		deps_result(f, why, sizeof why);
	else {
		fetch_result(f, why, sizeof why);
		metrics_fetch(why[0] == '\0',
		    (util_now_ms() - f->start_ms) / 1000.0);
	}
	uv_close((uv_handle_t *)&f->timer, fetch_closed);

	if (unspawned && !s->stopping && !j->cancel)
		worker_unavailable(s, why);
	if (s->stopping || s->draining || unspawned ||
	    (why[0] != '\0' && !j->cancel)) {
		unsigned n = j->ntargets;
		bool giveback = s->stopping || s->draining || unspawned;

		if (!giveback) {
			log_info("job %" PRId64 ": failed: %s", j->job->id, why);
			hide_state_dir(s, why, sizeof why);
			/* A fetch's message quotes the remote and the URL,
			 * cut to fit: valid UTF-8 before it is stored. */
			utf8_fix(why, sizeof why);
			for (struct starget *st = j->targets; deps && st;
			    st = st->next)
				deps_log_to(st, why);
			/* The whole job fails: every target, queued or
			 * parked (none of them has started). */
			queue_fail_job(s->q, j->job->id, why);
		}
		if (n == 0)
			drop_job_if_idle(j);
		/* Freeing the last target frees j: count, do not walk j. */
		for (unsigned i = 0; i < n; i++) {
			struct starget *st = j->targets;
			if (giveback)
				queue_release(s->q, st->claim.target_id);
			free_target(st);
		}
		if (s->stopping)
			maybe_stopped(s);
		else if (s->draining)
			maybe_drained(s);
		else
			sched_kick(s);
		return;
	}
	if (!deps && j->plan.deps && !j->cancel) {
		start_deps(j);
		sched_kick(s);	/* targets named by the repository */
		return;
	}
	j->fetch = FETCH_DONE;
	/* Ending the last target frees j: decide now, never read j after. */
	none = j->ntargets == 0;
	/* Parked targets start now (or end, when canceled meanwhile); a
	 * placeholder still here was not planned (the job was canceled). */
	for (struct starget *st = j->targets, *next; st; st = next) {
		next = st->next;
		if (st->started && !st->placeholder)
			continue;
		if (j->cancel)
			end_target(st, TARGET_CANCELED, -1, "canceled before it "
			    "started", NULL, 0);
		else if (st->placeholder)
			end_target(st, TARGET_FAILED, -1, "the repository's "
			    "targets were not planned", NULL, 0);
		else
			launch(st);
	}
	if (none)
		drop_job_if_idle(j);
	sched_kick(s);
}

static void
on_fetch_timeout(uv_timer_t *h)
{
	struct fetch *f = h->data;

	/* A refused fetch ends here, on the next turn of the loop. */
	if (f->refused != NULL) {
		fetch_done(&f->child);
		return;
	}
	f->timed_out = true;
	child_kill(&f->child, SIGKILL);
}

static struct fetch *
fetch_new(struct sjob *j, bool deps)
{
	struct sched *s = j->s;
	struct fetch *f = xcalloc(1, sizeof *f);

	f->j = j;
	f->deps = deps;
	f->start_ms = util_now_ms();
	j->f = f;
	j->fetch = FETCH_RUNNING;
	s->fetches++;
	uv_timer_init(s->loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, on_fetch_timeout,
	    (uint64_t)s->conf->fetch_timeout * 1000, 0);
	return f;
}

/*
 * The project whose job this is, for what only a project's fetch gets:
 * its credentials and kilnd's ssh agent.  The job must name the
 * project's repository exactly, as it is today: a job queued before the
 * project's repo changed gets nothing.
 */
static const struct conf_project *
fetch_project(const struct sched *s, const struct job *job)
{
	const struct conf_project *p;

	if (job->project == NULL)
		return NULL;
	p = conf_project_by_name(s->conf, job->project);
	if (p == NULL || strcmp(p->repo, job->repo) != 0)
		return NULL;
	return p;
}

static void
start_fetch(struct sjob *j)
{
	struct sched *s = j->s;
	const struct conf_project *p = fetch_project(s, j->job);
	const char *agent = getenv("SSH_AUTH_SOCK");
	struct fetch *f;
	struct creds *cr = NULL;
	char key[33], *mirror, *mirrors, why[600];
	char *home = getenv("HOME") ? xasprintf("HOME=%s", getenv("HOME")) :
	    xstrdup("HOME=/");
	char *sock = NULL, *text = NULL, *fd_args[2] = { NULL, NULL };
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", home, NULL, NULL };
	char *argv[15];
	size_t len = 0;
	int rc;

	f = fetch_new(j, false);
	/*
	 * Submissions were checked; this is for a job queued before the
	 * configuration changed (allow_local_repos turned off, -d moved).
	 */
	if (api_check_repo_allowed(s->conf, j->job->repo, why,
	    sizeof why) != 0) {
		f->refused = xstrdup(why);
		goto refused;
	}
	/*
	 * The project's credentials, read now so that a rotated file needs
	 * no restart, and handed over on a memfd (child_spawn_args): never
	 * argv, the environment or a log line.
	 */
	if (p != NULL && p->credentials != NULL) {
		if (creds_read_file(&text, &len, p->credentials, why,
		    sizeof why) != 0 ||
		    creds_parse(&cr, text, len, why, sizeof why) != 0) {
			/* Where the operator keeps the file and what is
			 * wrong with it is the operator's business: the
			 * job's readers get the project's name only. */
			log_warn("job %" PRId64 ": project %s: credentials: %s",
			    j->job->id, p->name, why);
			f->refused = xasprintf("project %s: its credentials "
			    "file cannot be used (kilnd's log says why)",
			    p->name);
			goto refused;
		}
		creds_free(cr);
		fd_args[0] = text;
	}
	/*
	 * kilnd's ssh agent signs for whatever host a fetch names: only a
	 * project's repository, which the operator chose, gets it, never a
	 * URL a client submitted.
	 */
	if (p != NULL && strncmp(j->job->repo, "ssh://", 6) == 0 &&
	    agent != NULL && agent[0] == '/') {
		sock = xasprintf("SSH_AUTH_SOCK=%s", agent);
		env[2] = sock;
	}

	repo_key(key, j->job->repo);
	mirrors = state_path(s, "mirrors");
	mirror = xasprintf("%s/%s.git", mirrors, key);
	util_mkdir_p(mirrors, 0750);
	argv[0] = s->worker;
	argv[1] = "fetch";
	argv[2] = "--mirror";
	argv[3] = mirror;
	argv[4] = "--url";
	argv[5] = j->job->repo;
	argv[6] = "--ref";
	/* A job whose ref was resolved before a restart keeps its commit. */
	argv[7] = j->job->commit ? j->job->commit : j->job->ref;
	/* The job's ref names the tag or branch of version stamping. */
	argv[8] = "--job-ref";
	argv[9] = j->job->ref;
	/* A local URL never shows the fetch anything of the state dir. */
	argv[10] = "--keep-out";
	argv[11] = s->conf->state_dir;
	argv[12] = NULL;
	if (text != NULL) {
		/* The memfd is the child's fd 3, after its stdout and stderr. */
		argv[12] = "--credentials-fd";
		argv[13] = "3";
		argv[14] = NULL;
	}
	rc = child_spawn_args(&f->child, s->loop, argv, env, 2,
	    text != NULL ? fd_args : NULL, fetch_data, fetch_done, f);
	if (rc != 0) {
		sbuf_adds(&f->err, "cannot start kiln-worker: ");
		sbuf_adds(&f->err, uv_strerror(rc));
	}
	log_debug("job %" PRId64 ": fetching %s %s%s", j->job->id,
	    j->job->repo, argv[7], text != NULL ? " with the project's "
	    "credentials" : "");
	free(mirror);
	free(mirrors);
	goto out;
refused:
	/* Ends through fetch_done, as a failed fetch, on the next turn. */
	uv_timer_start(&f->timer, on_fetch_timeout, 0, 0);
out:
	creds_text_free(text, len);
	free(sock);
	free(home);
}

/*
 * The deps step: kiln's own `go mod download`, once per job, in a build
 * sandbox with the network and the farm's module cache writable; builds
 * then find every module there, offline and read-only.
 */
static void
start_deps(struct sjob *j)
{
	struct sched *s = j->s;
	const struct kiln_config *conf = s->conf;
	struct recipe_plan plan = { 0 };
	struct recipe_ctx ctx;
	struct fetch *f;
	char key[33], why[256], *dir, *modcache;
	char **argv;
	int rc;

	recipe_ctx_of(&ctx, j);
	recipe_deps_plan(&plan, &ctx, conf, j->job->project ?
	    conf_project_by_name(conf, j->job->project) : NULL, why,
	    sizeof why);
	repo_key(key, j->job->repo);
	dir = state_path(s, "work/%" PRId64, j->job->id);
	modcache = state_path(s, "gomod-%s", trust_word(j));
	util_mkdir_p(dir, 0750);
	util_mkdir_p(modcache, 0750);
	f = fetch_new(j, true);
	f->root = xasprintf("%s/deps.%" PRId64, dir, util_now_ms());
	{
		char *mirror = state_path(s, "mirrors/%s.git", key);
		/* The host's own platform: nothing is built. */
		/*
		 * The host's network, unlike a network = yes build (slirp4netns,
		 * none of the host's addresses): it runs only kiln's own `go
		 * mod download`, which must reach the module proxy wherever
		 * the operator runs it, on the host's loopback too.
		 */
		const char *extra[] = { "--modcache", modcache, "--modcache-rw",
		    "--host-network", NULL };

		argv = worker_build_argv(s, mirror, j->job->commit, f->root,
		    "linux/amd64", conf->fetch_timeout, extra, &plan);
		free(mirror);
	}
	rc = spawn_worker_build(s, &f->child, argv, fetch_data, fetch_done,
	    f);
	if (rc != 0) {
		sbuf_adds(&f->err, "cannot start kiln-worker: ");
		sbuf_adds(&f->err, uv_strerror(rc));
	} else
		log_info("job %" PRId64 ": deps: go mod download with %s",
		    j->job->id, j->plan.go_version);
	argv_free(argv);
	free(dir);
	free(modcache);
	recipe_plan_free(&plan);
}

/* --- scheduling --------------------------------------------------------------- */

/*
 * What the job's targets already stored: after a restart, or once its
 * sjob was dropped while idle, its cap is not counted afresh.  Reused
 * artifacts wrote nothing.
 */
static int64_t
job_output_bytes(const struct job *job)
{
	int64_t n = 0;

	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *t = &job->targets[i];
		if (t->state != TARGET_SUCCEEDED || t->cached)
			continue;
		for (size_t k = 0; k < t->nartifacts; k++)
			n += t->artifacts[k].size;
	}
	return n;
}

static void
start_claim(struct sched *s, const struct queue_claim *c)
{
	struct sjob *j = find_job(s, c->job_id);
	struct starget *st;
	char err[160];

	if (j == NULL) {
		struct job *job = NULL;
		if (queue_get(s->q, c->job_id, &job) != 0) {
			log_error("job %" PRId64 ": claimed but cannot be read",
			    c->job_id);
			queue_release(s->q, c->target_id);
			return;
		}
		j = xcalloc(1, sizeof *j);
		j->s = s;
		j->job = job;
		store_budget_init(&j->output, job_output_bytes(job));
		j->next = s->jobs;
		s->jobs = j;
	}
	st = xcalloc(1, sizeof *st);
	st->s = s;
	st->j = j;
	st->claim = *c;
	st->log_fd = -1;
	st->marks_fd = -1;
	st->next = j->targets;
	j->targets = st;
	j->ntargets++;
	s->running++;
	if (strcmp(c->target, JOB_TARGETS_FROM_REPO) == 0) {
		/* Replaced by the targets the repository names, once the
		 * commit is fetched (fetch_result). */
		st->placeholder = true;
		st->started = true;	/* never launched */
		snprintf(st->t.name, sizeof st->t.name, "%s",
		    JOB_TARGETS_FROM_REPO);
		snprintf(st->url_name, sizeof st->url_name, "_");
		if (j->fetch == FETCH_NONE)
			start_fetch(j);
		else if (j->fetch == FETCH_DONE)
			fail_now(st, "the repository's targets were already "
			    "planned");
		return;
	}
	if (target_parse(&st->t, c->target, err, sizeof err) != 0) {
		fail_now(st, err);
		return;
	}
	target_url_name(st->url_name, &st->t);
	if (j->fetch == FETCH_DONE)
		launch(st);
	else if (j->fetch == FETCH_NONE)
		start_fetch(j);
}

void
sched_kick(struct sched *s)
{
	struct queue_next next[16];
	struct queue_claim c;
	size_t n;

	if (s->backoff_until > util_now_ms())
		return;		/* on_tick tries again */
	while (!s->stopping && !s->draining && !s->paused &&
	    s->running < s->conf->workers) {
		size_t best = 0;
		unsigned best_running = ~0U;

		if (queue_next_jobs(s->q, next, ARRAY_SIZE(next), &n) != 0 ||
		    n == 0)
			return;
		/* Among the jobs of the top priority, the one with the
		 * fewest builds running; the oldest on a tie. */
		for (size_t i = 0; i < n && next[i].priority ==
		    next[0].priority; i++) {
			struct sjob *j = find_job(s, next[i].job_id);
			unsigned r = j ? j->ntargets : 0;
			if (r < best_running) {
				best_running = r;
				best = i;
			}
		}
		if (queue_claim_job(s->q, next[best].job_id, &c) != 0)
			return;
		start_claim(s, &c);
	}
}

void
sched_cancel(struct sched *s, int64_t job_id)
{
	struct sjob *j = find_job(s, job_id);

	if (j == NULL)
		return;
	j->cancel = true;
	/* Nothing has started: the fetch is of no use any more. */
	if (j->f != NULL)
		child_kill(&j->f->child, SIGKILL);
	for (struct starget *st = j->targets, *next; st; st = next) {
		next = st->next;
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
sched_set_toolchains(struct sched *s, const struct toolchains *tc)
{
	s->toolchains = tc;
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
	for (struct sjob *j = s->jobs; j; j = j->next) {
		for (struct starget *st = j->targets; st; st = st->next) {
			wake_watchers(st);
			if (st->started && s->ticks % 15 == 0)
				queue_heartbeat(s->q, st->claim.target_id);
		}
	}
	/* Work that arrived without a kick (another process, a race). */
	sched_kick(s);
}

struct sched *
sched_new(uv_loop_t *loop, struct queue *q, const struct kiln_config *conf,
    const char *worker_path, struct store *store, const struct sign_key *key)
{
	struct sched *s = xcalloc(1, sizeof *s);
	uint64_t sweep_ms = (uint64_t)conf->sweep_interval * 1000;
	int64_t *ids = NULL;
	size_t n = 0;
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
	uv_timer_init(loop, &s->sweep_timer);
	s->sweep_timer.data = s;
	uv_timer_init(loop, &s->drain_timer);
	s->drain_timer.data = s;
	uv_timer_start(&s->sweep_timer, on_sweep,
	    sweep_ms < 30000 ? sweep_ms : 30000, sweep_ms);
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
	/* Jobs that succeeded just before a crash, not yet signed. */
	if (queue_unsigned_jobs(q, &ids, &n) == 0)
		for (size_t i = 0; i < n; i++)
			sign_job(s, ids[i]);
	free(ids);
	return s;
}

/* --- logs for the API ----------------------------------------------------------- */

static struct starget *
find_target(struct sched *s, int64_t job_id, const char *target)
{
	struct sjob *j = find_job(s, job_id);

	if (j == NULL)
		return NULL;
	for (struct starget *st = j->targets; st; st = st->next)
		if (strcmp(st->t.name, target) == 0 && st->started &&
		    !st->ended)
			return st;
	return NULL;
}

int
sched_log_open(struct sched *s, int64_t job_id, const char *target, int *fd)
{
	struct target t;
	char err[160], url[TARGET_NAME_MAX], *p;

	if (target_parse(&t, target, err, sizeof err) != 0)
		return -ENOENT;
	target_url_name(url, &t);
	p = log_path(s, job_id, url);
	*fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(p);
	return *fd < 0 ? -errno : 0;
}

int
sched_log_marks_open(struct sched *s, int64_t job_id, const char *target,
    int *fd)
{
	struct target t;
	char err[160], url[TARGET_NAME_MAX], *p, *m;

	if (target_parse(&t, target, err, sizeof err) != 0)
		return -ENOENT;
	target_url_name(url, &t);
	p = log_path(s, job_id, url);
	m = xasprintf("%s.kiln", p);
	*fd = open(m, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(p);
	free(m);
	return *fd < 0 ? -errno : 0;
}

bool
sched_log_live(struct sched *s, int64_t job_id, const char *target)
{
	return find_target(s, job_id, target) != NULL;
}

/*
 * A follower's handle.  While its target runs, the target's watchers hold
 * it (woken by each write, at the end and on every tick).  Before the
 * target starts, nothing here writes to it (it may be only a row in the
 * queue, or parked while its job is fetched, and parked targets are freed
 * without telling watchers), so a timer of its own wakes the follower
 * every tick to look again, and puts it on the target's list once the
 * target runs.
 */
struct follower {
	struct watcher w;
	struct sched *s;
	int64_t job_id;
	char target[TARGET_NAME_MAX];
	uv_timer_t timer;		/* runs while the target has not started */
};

static void
follower_attach(struct follower *f, struct starget *st)
{
	f->w.t = st;
	f->w.next = st->watchers;
	st->watchers = &f->w;
}

static void
on_follower_tick(uv_timer_t *h)
{
	struct follower *f = container_of(h, struct follower, timer);
	struct starget *st = find_target(f->s, f->job_id, f->target);

	if (st != NULL) {
		uv_timer_stop(h);
		follower_attach(f, st);
	}
	f->w.wake(f->w.data);
}

static void
on_follower_closed(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct follower, timer));
}

void *
sched_log_watch(struct sched *s, int64_t job_id, const char *target,
    void (*wake)(void *), void *data)
{
	struct starget *st = find_target(s, job_id, target);
	struct follower *f = xcalloc(1, sizeof *f);

	f->w.wake = wake;
	f->w.data = data;
	f->s = s;
	f->job_id = job_id;
	snprintf(f->target, sizeof f->target, "%s", target);
	uv_timer_init(s->loop, &f->timer);
	if (st != NULL)
		follower_attach(f, st);
	else
		uv_timer_start(&f->timer, on_follower_tick, TICK_MS, TICK_MS);
	return &f->w;
}

void
sched_log_unwatch(struct sched *s, void *handle)
{
	struct follower *f;

	(void)s;
	if (handle == NULL)
		return;
	f = container_of((struct watcher *)handle, struct follower, w);
	if (f->w.t != NULL) {
		for (struct watcher **pp = &f->w.t->watchers; *pp;
		    pp = &(*pp)->next) {
			if (*pp == &f->w) {
				*pp = f->w.next;
				break;
			}
		}
	}
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, on_follower_closed);
}

/* --- drain ---------------------------------------------------------------------- */

static void
maybe_drained(struct sched *s)
{
	void (*done)(void *) = s->drained;

	if (!s->draining || done == NULL || s->running > 0 || s->fetches > 0)
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

static void
maybe_stopped(struct sched *s)
{
	if (!s->stopping || s->running > 0 || s->fetches > 0 || s->jobs != NULL ||
	    s->works > 0 || uv_is_closing((uv_handle_t *)&s->tick))
		return;
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
