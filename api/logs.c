/*
 * GET /v1/jobs/{id}/targets/{target}/log[?follow=1][&raw=1]: a target's
 * build log.  Without follow, the log as it is now.  With follow=1, a
 * chunked stream of everything so far and then every new byte until the
 * target ends: the connection is suspended while nothing new is there (no
 * polling), and the scheduler wakes it when the log grows.  A target that
 * has not started yet (queued, or its job is being fetched) is waited
 * for: the scheduler wakes the follower every few seconds to look again,
 * and the stream ends, with nothing in it, if the target ends without
 * ever starting (canceled while queued, its job failed to fetch).  A
 * target that has already ended without a log gets a 404 that says how
 * it ended, followed or not.  On a farm, the log of a target another
 * host claimed is in that host's state directory: a request for one that
 * is not here is sent there (307, or 503 while that host is gone), so
 * that `curl -L` follows it live from there.  A follower of a target that
 * is still queued on a farm is not answered until some host claims it
 * (the queue is read again every second): any host may build it, and
 * only the one that does has its log, so the answer waits until it is
 * known which one that is.
 *
 * By default the log is shown as it is meant for people (logview.h):
 * kilnd's own lines (known by the offsets kilnd recorded, not by their
 * text) as they are, a build's lines that look like them prefixed,
 * control sequences other than colours escaped, invalid UTF-8 replaced.
 * A build's output is not to be trusted with a terminal or with passing
 * for kilnd.  raw=1 serves the file's bytes exactly.  Rendering is
 * incremental, a buffer at a time in the stream's reader, so neither a
 * large log nor a slow reader holds up the loop.
 *
 * A follower whose Accept header names text/event-stream gets the same
 * stream as server-sent events (api/logs-sse.c).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "api.h"
#include "../daemon/logview.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

struct follow {
	const struct api_env *env;
	int64_t job_id;
	char target[TARGET_NAME_MAX];
	int fd;			/* -1 while the target has not started */
	void *watch;
	bool following;		/* to the target's end, not only to EOF */
	/* The view (not raw=1): */
	struct logview *view;
	int marks_fd;		/* -1: none (a log older than the marks) */
	struct sbuf out;	/* rendered, not yet sent from out_off */
	size_t out_off;
	bool done;		/* the view is complete in out */
	/*
	 * Before the target starts, each wake-up asks the queue whether it
	 * still may (one read at a time); the read's completion wakes the
	 * stream, whose next call takes the answer.
	 */
	struct job *job;	/* the read's, while it is in flight */
	bool reading;		/* a read is in flight */
	bool looked;		/* its answer is in may */
	bool may;		/* the target may still start */
	bool freed;		/* the stream let go of it during the read */
	void (*wake)(void *);
	void *waker;
};

/* How a target that ended without a build ended, and why (malloc'd). */
static char *
unbuilt_why(const struct job *job, const struct job_target *jt)
{
	const char *why = jt->error ? jt->error : job->error;

	if (jt->state == TARGET_CANCELED)
		return xasprintf("job %lld %s was canceled before it started",
		    (long long)job->id, jt->target);
	return xasprintf("job %lld %s %s before its build started%s%s",
	    (long long)job->id, jt->target, target_state_name(jt->state),
	    why ? ": " : "", why ? why : "");
}

/*
 * Whether the target may still start here: it has not ended (in the
 * queue), and no other host of a farm claimed it (its log is there).
 * When not, the view's reader gets one line that says why, so that a
 * follower that waited sees why the stream is empty.
 */
static bool
may_start(struct follow *f, const struct job *job)
{
	bool yes = false;

	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *jt = &job->targets[i];
		const char *other = api_host_other(f->env, jt->host);
		char *line;

		if (strcmp(jt->target, f->target) != 0)
			continue;
		yes = !target_state_terminal(jt->state) && other == NULL;
		if (yes || f->view == NULL)
			continue;
		/* kilnd's own line, as the view shows those: escaped. */
		line = other != NULL ? xasprintf("job %lld %s is %s on host "
		    "%s, which has its log: ask again to be sent there",
		    (long long)job->id, jt->target,
		    target_state_terminal(jt->state) ? "built" : "building",
		    other) : unbuilt_why(job, jt);
		sbuf_adds(&f->out, "[kiln] ");
		logview_clean(&f->out, line, strlen(line));
		sbuf_addc(&f->out, '\n');
		free(line);
	}
	return yes;
}

/* The queue's answer about the job, for the stream's next call. */
static void
looked(void *data, int rc)
{
	struct follow *f = data;

	f->reading = false;
	if (f->freed) {
		/* Everything else went in follow_free(). */
		job_free(f->job);
		free(f);
		return;
	}
	f->may = rc == 0 && may_start(f, f->job);
	job_free(f->job);
	f->job = NULL;
	f->looked = true;
	f->wake(f->waker);
}

/*
 * Before the target has a log: 1 once it has (f->fd is open), 0 to wait
 * for the next wake-up, API_STREAM_END when it ended without starting.
 * Each wake-up looks at the log, then asks the queue about the job and
 * waits for the answer; the call the answer wakes looks at the log again
 * before it takes the answer and watches, so that nothing starts
 * unnoticed between the look and the watch (the loop is one thread).
 */
static long
wait_start(struct follow *f, void (*wake)(void *), void *waker)
{
	const struct api_env *env = f->env;

	if (env->log_open(env->build_ctx, f->job_id, f->target, &f->fd) == 0) {
		/* It started: from here on, watch its build. */
		if (f->watch != NULL)
			env->log_unwatch(env->build_ctx, f->watch);
		f->watch = NULL;
		f->looked = false;
		return 1;
	}
	f->fd = -1;
	if (f->reading)
		return 0;	/* its completion wakes us */
	if (!f->looked) {
		f->wake = wake;
		f->waker = waker;
		f->reading = true;
		queue_get(env->queue, f->job_id, &f->job, looked, f);
		return 0;
	}
	f->looked = false;	/* the next wake-up asks again */
	if (!f->may)
		return API_STREAM_END;
	if (f->watch == NULL)
		f->watch = env->log_watch(env->build_ctx, f->job_id, f->target,
		    wake, waker);
	/* Without a watch nothing would wake us: end rather than hang. */
	return f->watch != NULL ? 0 : API_STREAM_END;
}

static long
follow_read(void *cls, char *buf, size_t max, void (*wake)(void *),
    void *waker)
{
	struct follow *f = cls;
	ssize_t n;

	if (f->fd < 0 && (n = wait_start(f, wake, waker)) <= 0)
		return n;
	for (;;) {
		n = read(f->fd, buf, max);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return API_STREAM_ERROR;
		/* At the end of what is written: more only while it runs.
		 * Watch first, then look again, so a byte written in
		 * between is not missed. */
		if (f->watch == NULL)
			f->watch = f->env->log_watch(f->env->build_ctx,
			    f->job_id, f->target, wake, waker);
		if (f->watch == NULL ||
		    !f->env->log_live(f->env->build_ctx, f->job_id, f->target)) {
			n = read(f->fd, buf, max);
			return n > 0 ? n : API_STREAM_END;
		}
		n = read(f->fd, buf, max);
		if (n > 0)
			return n;
		return 0;
	}
}

/* The log's marks, opened with the log itself (same generation: a
 * target that runs again truncates both on the loop thread). */
static void
open_marks(struct follow *f)
{
	const struct api_env *env = f->env;

	if (env->log_marks_open == NULL || env->log_marks_open(env->build_ctx,
	    f->job_id, f->target, &f->marks_fd) != 0)
		f->marks_fd = -1;
}

/* Every mark written so far.  kilnd writes a mark right after its line,
 * on the loop thread we run on: read before the log, they cover every
 * byte read from it. */
static void
read_marks(struct follow *f)
{
	char buf[LOGVIEW_MARK_LEN * 64];
	ssize_t n;

	while (f->marks_fd >= 0) {
		n = read(f->marks_fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		logview_marks(f->view, buf, (size_t)n);
	}
}

/* Raw bytes into buf (scratch) and on into the view; the outcome of the
 * read: > 0, 0 at the end of what is written, < 0 an error. */
static ssize_t
render_more(struct follow *f, char *buf, size_t max)
{
	ssize_t n;

	read_marks(f);
	do
		n = read(f->fd, buf, max);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		logview_feed(f->view, buf, (size_t)n, &f->out);
	return n;
}

static long
view_read(void *cls, char *buf, size_t max, void (*wake)(void *),
    void *waker)
{
	struct follow *f = cls;
	ssize_t n;

	for (;;) {
		if (f->out_off < f->out.len) {
			size_t k = f->out.len - f->out_off;

			if (k > max)
				k = max;
			memcpy(buf, f->out.p + f->out_off, k);
			f->out_off += k;
			if (f->out_off == f->out.len)
				f->out.len = f->out_off = 0;
			return (long)k;
		}
		if (f->done)
			return API_STREAM_END;
		if (f->fd < 0) {
			if ((n = wait_start(f, wake, waker)) == 0)
				return 0;
			if (n < 0 && f->out.len == 0)
				return n;
			if (n < 0) {
				/* Ended without a build: may_start's line. */
				f->done = true;
				continue;
			}
			open_marks(f);
		}
		if ((n = render_more(f, buf, max)) > 0)
			continue;
		if (n < 0)
			return API_STREAM_ERROR;
		if (f->following) {
			/* As follow_read: watch, then look again. */
			if (f->watch == NULL)
				f->watch = f->env->log_watch(f->env->build_ctx,
				    f->job_id, f->target, wake, waker);
			if (f->watch != NULL && f->env->log_live(
			    f->env->build_ctx, f->job_id, f->target)) {
				if ((n = render_more(f, buf, max)) > 0)
					continue;
				if (n < 0)
					return API_STREAM_ERROR;
				return 0;
			}
			if (render_more(f, buf, max) > 0)
				continue;
		}
		/* The end: what the view held back goes out too. */
		logview_finish(f->view, &f->out);
		f->done = true;
	}
}

static void
follow_free(void *cls)
{
	struct follow *f = cls;

	if (f->watch != NULL)
		f->env->log_unwatch(f->env->build_ctx, f->watch);
	if (f->fd >= 0)
		close(f->fd);
	if (f->marks_fd >= 0)
		close(f->marks_fd);
	logview_free(f->view);
	sbuf_free(&f->out);
	/* A read in flight writes into f: its completion frees it. */
	if (f->reading)
		f->freed = true;
	else
		free(f);
}

static bool
query_yes(struct api_req *req, const char *name)
{
	const char *v = req->query(req, name);

	return v != NULL && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

/*
 * A farm's follower waits this long at most for a queued target to be
 * claimed before it gets the stream this host can give (which waits on
 * this host's builds only, as on a single host).  A pending request's
 * connection is suspended and its client leaving goes unnoticed until
 * it is answered: the bound is what a client that left costs (a queue
 * read a second), and the stream notices a client gone at its next
 * wake-up.
 */
#define CLAIM_WAIT_MS (10 * 60 * 1000)
#define CLAIM_POLL_MS 1000

struct log_req;

/* The wait for a claim.  Not the request's state: the timer's handle
 * outlives the request until it is closed, and so does a read in flight
 * (it writes into job). */
struct log_wait {
	uv_timer_t timer;
	struct log_req *s;		/* NULL once the request is gone */
	struct job *job;		/* the read's */
	bool reading;			/* a read is in flight */
};

/* GET .../log: what the request asked, while the job is read. */
struct log_req {
	struct api_req *req;
	int64_t id;
	struct target t;
	bool following, raw;
	bool sse;			/* following, as server-sent events */
	struct job *job;		/* queue_get's */
	struct log_wait *wait;		/* waiting for a claim, or NULL */
	bool waiting;			/* reply_log() waits (again) */
	int64_t wait_until;		/* ms: the stream after this */
};

static enum api_result reply_log(struct log_req *s);
static void wait_tick(uv_timer_t *h);
static void wait_gone(void *data);

static void
wait_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Let go of the wait: the timer closes, and a read in flight frees what
 * is left once it returns. */
static void
wait_end(struct log_req *s)
{
	struct log_wait *w = s->wait;

	if (w == NULL)
		return;
	s->wait = NULL;
	if (s->req->gone == wait_gone)
		s->req->gone = NULL;
	w->s = NULL;
	uv_timer_stop(&w->timer);
	if (!w->reading)
		uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void
log_req_release(void *data)
{
	struct log_req *s = data;

	wait_end(s);
	job_free(s->job);
}

/* The job as the queue has it now: answer, unless the target is still
 * waiting for a claim. */
static void
wait_read(void *data, int rc)
{
	struct log_wait *w = data;
	struct log_req *s = w->s;
	struct api_req *req;
	enum api_result r;

	w->reading = false;
	if (s == NULL) {
		job_free(w->job);
		uv_close((uv_handle_t *)&w->timer, wait_closed);
		return;
	}
	req = s->req;
	if (rc != 0) {
		job_free(w->job);
		w->job = NULL;
	}
	if (rc == QUEUE_EDOWN) {
		/* The database is away for a while: look again later. */
		uv_timer_start(&w->timer, wait_tick, CLAIM_POLL_MS, 0);
		return;
	}
	if (rc != 0) {
		wait_end(s);
		api_reply_problem(req, rc == QUEUE_ENOTFOUND ? 404 : 500,
		    "no job %lld", (long long)s->id);
		req->complete(req);
		return;
	}
	job_free(s->job);
	s->job = w->job;
	w->job = NULL;
	s->waiting = false;
	req->gone = NULL;
	r = reply_log(s);
	if (r == API_PENDING && s->waiting)
		return;
	/* Answered, or api_reply_from_owner() answers and completes. */
	wait_end(s);
	if (r == API_DONE)
		req->complete(req);
}

static void
wait_tick(uv_timer_t *h)
{
	struct log_wait *w = h->data;

	w->reading = true;
	queue_get(w->s->req->env->queue, w->s->id, &w->job, wait_read, w);
}

/* The HTTP layer lets go of the request (kilnd stops): answer now. */
static void
wait_gone(void *data)
{
	struct log_wait *w = data;
	struct log_req *s = w->s;
	struct api_req *req = s->req;

	wait_end(s);
	api_reply_problem(req, 503, "kilnd is stopping");
	req->complete(req);
}

/*
 * Wait for the target's claim: API_PENDING, and wait_read() answers once
 * a host claimed it or it ended.  API_DONE when it cannot wait (no loop).
 */
static enum api_result
wait_claim(struct log_req *s)
{
	struct api_req *req = s->req;
	struct log_wait *w = s->wait;

	if (w == NULL) {
		if (req->env->loop == NULL)
			return API_DONE;
		w = xcalloc(1, sizeof *w);
		w->s = s;
		uv_timer_init(req->env->loop, &w->timer);
		w->timer.data = w;
		s->wait = w;
		s->wait_until = util_now_ms() + CLAIM_WAIT_MS;
	}
	s->waiting = true;
	req->gone = wait_gone;
	req->gone_data = w;
	req->gone_at_stop = true;
	uv_timer_start(&w->timer, wait_tick, CLAIM_POLL_MS, 0);
	return API_PENDING;
}

/* Answer with the log of target s->t of the job read: API_PENDING when
 * the answer waits on the farm's hosts (which then completes). */
static enum api_result
reply_log(struct log_req *s)
{
	struct api_req *req = s->req;
	const struct job *job = s->job;
	const struct job_target *jt = NULL;
	const char *name = s->t.name;
	int64_t id = s->id;
	int fd = -1;

	for (size_t i = 0; i < job->ntargets; i++)
		if (strcmp(job->targets[i].target, name) == 0)
			jt = &job->targets[i];
	if (jt == NULL) {
		api_reply_problem(req, 404, "job %lld has no target %s",
		    (long long)id, name);
		return API_DONE;
	}
	/* Claimed by another host: the log is there, even when this host
	 * has one of an earlier attempt (it ran the target, then lost it). */
	if (api_host_other(req->env, jt->host) != NULL) {
		char *what = xasprintf("the log of job %lld %s",
		    (long long)id, name);

		api_reply_from_owner(req, jt->host, what, s->following ?
		    (s->raw ? "follow=1&raw=1" : "follow=1") :
		    s->raw ? "raw=1" : NULL);
		free(what);
		return API_PENDING;
	}
	if (req->env->log_open(req->env->build_ctx, id, name, &fd) != 0) {
		fd = -1;
		/*
		 * Ended without a build (its job failed to fetch, or it was
		 * canceled while queued): it never will have a log.  Say so,
		 * with the reason, to a follower too, rather than an empty
		 * stream that reads like a build that printed nothing.
		 */
		if (target_state_terminal(jt->state) && jt->started_at == 0) {
			char *why = unbuilt_why(job, jt);

			api_reply_problem(req, 404, "%s", why);
			free(why);
			return API_DONE;
		}
		if (target_state_terminal(jt->state)) {
			api_reply_problem(req, 404, "job %lld %s has no log "
			    "(it has ended: %s)", (long long)id, name,
			    target_state_name(jt->state));
			return API_DONE;
		}
		if (!s->following) {
			api_reply_problem(req, 404, "job %lld %s has no log "
			    "yet (it has not started)", (long long)id, name);
			return API_DONE;
		}
		/*
		 * Queued on a farm: whichever host claims it will have its
		 * log, and only this host's builds would wake a stream
		 * started here.  Wait for the claim, then answer as for a
		 * claimed target (bounded: CLAIM_WAIT_MS).
		 */
		if (queue_shared(req->env->queue) &&
		    jt->state == TARGET_QUEUED &&
		    (s->wait == NULL || util_now_ms() < s->wait_until) &&
		    wait_claim(s) == API_PENDING)
			return API_PENDING;
	}
	if (s->raw && !s->following) {
		/* The bytes as written: not necessarily UTF-8 text. */
		api_reply_fd(req, 200, "application/octet-stream", fd);
		return API_DONE;
	}
	{
		struct follow *f = xcalloc(1, sizeof *f);
		struct api_stream st = { s->raw ? follow_read : view_read,
		    follow_free, f, 0, false };

		f->env = req->env;
		f->job_id = id;
		snprintf(f->target, sizeof f->target, "%s", name);
		f->fd = fd;
		f->following = s->following;
		f->marks_fd = -1;
		if (!s->raw) {
			f->view = logview_new();
			if (fd >= 0)
				open_marks(f);
		}
		if (s->sse)
			api_log_sse(req, &st);
		else
			api_reply_stream(req, 200, s->raw ?
			    "application/octet-stream" :
			    "text/plain; charset=utf-8", &st);
	}
	return API_DONE;
}

static void
log_job_read(void *data, int rc)
{
	struct log_req *s = data;
	struct api_req *req = s->req;

	if (rc != 0)
		api_reply_problem(req, rc == QUEUE_ENOTFOUND ? 404 : 500,
		    "no job %lld", (long long)s->id);
	else if (reply_log(s) == API_PENDING)
		return;
	req->complete(req);
}

static enum api_result
get_log(struct api_req *req)
{
	struct log_req *s;
	char err[160];
	struct target t;
	int64_t id;

	if (util_parse_int64(req->params[0], 1, INT64_MAX, &id) != 0) {
		api_reply_problem(req, 404, "no job '%.64s'", req->params[0]);
		return API_DONE;
	}
	if (target_parse_url_row(&t, req->params[1], err, sizeof err) != 0 &&
	    target_parse_row(&t, req->params[1], err, sizeof err) != 0) {
		api_reply_problem(req, 404, "no target '%.64s': %s (targets "
		    "are written like linux_arm_v7 in URLs)", req->params[1],
		    err);
		return API_DONE;
	}
	s = api_req_state(req, sizeof *s, log_req_release);
	s->req = req;
	s->id = id;
	s->t = t;
	s->following = query_yes(req, "follow");
	s->raw = query_yes(req, "raw");
	s->sse = s->following && api_wants_sse(req);
	queue_get(req->env->queue, id, &s->job, log_job_read, s);
	return API_PENDING;
}

const struct api_route api_logs_routes[] = {
	{ "GET", "/v1/jobs/{id}/targets/{target}/log", API_SCOPE_READ,
	    get_log },
	{ NULL, NULL, 0, NULL },
};
