/*
 * A target's outcome on its way to the database, until the database has
 * a final answer for it.  The build's memory (struct starget) is freed
 * when the target ends; what is to be written (the finish, with its
 * files, or the target given back) is kept here in a struct ended with
 * copies of its strings, and written through the queue.
 *
 * A write that fails for a reason that passes -- QUEUE_EDOWN, the
 * database out of reach or restarting; QUEUE_ERROR, say SQLite's disk
 * full -- is tried again, 250 ms later, then twice as late each time up
 * to 5 s, until the answer is final: stored (0), superseded
 * (QUEUE_ECONFLICT: another run has the target), or gone
 * (QUEUE_ENOTFOUND).  Meanwhile the target keeps its lease: the
 * reconciler (reconcile.c) beats it with the running ones, so that no
 * host builds a finished build again during a short outage, and does
 * not claim it back; a heartbeat refused with QUEUE_ECONFLICT means the
 * lease ran out and the target was given away, and the result is
 * discarded.
 *
 * QUEUE_EDOWN may come from a write the server did commit before the
 * connection broke.  Its retry then finds the target no longer running
 * that attempt (QUEUE_ECONFLICT) although the result is ours: after a
 * QUEUE_EDOWN a conflict is settled by reading the job, and the target
 * found ended in our state at our attempt is our result, stored.  A
 * target given back is never given back again blindly: the release
 * lowers the attempt, so the next claim (another host's, at once, on
 * the release's notification) runs the same attempt, and a second
 * release would take that build away.  After a QUEUE_EDOWN the job is
 * read first; the release is written again only while the target still
 * runs our attempt on this host.
 *
 * Nothing waits for ever: QUEUE_ERROR (a storage that may refuse this
 * write for good) is tried for three leases, and a stop tries until its
 * deadline (s->stop_by); then the result is given up, and the target is
 * built again once its lease ran out.  The log's followers are woken
 * when the answer is final, whatever it is.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "sched-int.h"
#include "util.h"
#include "xmalloc.h"

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 5000
/* QUEUE_ERROR is tried this many target_lease, then given up. */
#define ERROR_LEASES 3

static void try_write(struct ended *e);
static void written(void *data, int rc);

static void
on_ended_closed(uv_handle_t *h)
{
	struct ended *e = h->data;
	struct sched *s = e->s;

	free(e);
	s->writes--;
	sched_settle(s, false);
}

/*
 * The answer is final.  Its followers wake once more and find the
 * target ended; a job whose last target succeeded is signed.
 */
static void
settle(struct ended *e, int rc)
{
	struct sched *s = e->s;
	struct watcher *w, *next;

	for (struct ended **pp = &s->ending; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	for (w = e->watchers; w; w = next) {
		next = w->next;
		w->e = NULL;
		w->next = NULL;
		w->wake(w->data);
	}
	e->watchers = NULL;
	if (e->waiting_since != 0) {
		metrics_results_waiting(-1);
		if (rc == 0)
			log_info("job %" PRId64 " %s: %s stored after waiting "
			    "%.1f s for the database", e->job_id, e->target,
			    e->release ? "the target given back is" :
			    "the result is",
			    (util_now_ms() - e->waiting_since) / 1000.0);
	}
	if (rc == 0 && e->release)
		/* Given back: queued again, for any host to claim. */
		events_target(s->events, e->job_id, e->target,
		    target_state_name(TARGET_QUEUED));
	else if (rc == 0) {
		events_target(s->events, e->job_id, e->target,
		    target_state_name(e->o.state));
		/* Its last target: the job ended (or its release row
		 * follows, and its claim tells). */
		if (job_state_terminal(e->js))
			events_job(s->events, e->job_id,
			    job_state_name(e->js));
	}
	if (rc == QUEUE_ECONFLICT && !e->superseded)
		superseded_result(e->target_id, e->attempt);
	else if (rc == 0 && !e->release && !s->stopping &&
	    e->js == JOB_SUCCEEDED)
		sign_job(s, e->job_id);
	else if (rc == 0 && !e->release && e->js == JOB_RUNNING &&
	    e->o.state == TARGET_SUCCEEDED)
		/* The job's last build may have added its release row
		 * (schema/015_outputs.sql) in this very write: claim it now,
		 * not at the next tick. */
		sched_kick(s);
	free((char *)e->o.error);
	free((char *)e->o.cache_key);
	artifacts_free((struct artifact *)e->o.arts, e->o.narts);
	job_free(e->check);
	if (e->timer_init) {
		uv_timer_stop(&e->timer);
		e->timer.data = e;
		uv_close((uv_handle_t *)&e->timer, on_ended_closed);
		return;
	}
	free(e);
	s->writes--;
	sched_settle(s, false);
}

static void
on_retry(uv_timer_t *h)
{
	try_write(h->data);
}

/* A try failed for a reason that passes: wait, then try again. */
static void
wait_more(struct ended *e, int rc)
{
	struct sched *s = e->s;
	int64_t now = util_now_ms(), delay;

	if (e->waiting_since == 0) {
		e->waiting_since = now;
		e->delay_ms = RETRY_FIRST_MS;
		metrics_results_waiting(1);
		log_warn("job %" PRId64 " %s: the %s waits for the database: "
		    "%s; retried", e->job_id, e->target, e->release ?
		    "target given back" : "result", rc == QUEUE_EDOWN ?
		    "it cannot be reached" : "it failed to store it");
	}
	if (s->stopping && now >= s->stop_by) {
		log_error("job %" PRId64 " %s: kilnd is stopping and the "
		    "database still does not take the %s; given up: the "
		    "target will be built again after its lease (%u s)",
		    e->job_id, e->target, e->release ? "target given back" :
		    "result", s->conf->target_lease);
		settle(e, QUEUE_ERROR);
		return;
	}
	if (rc == QUEUE_ERROR && now - e->waiting_since >=
	    (int64_t)ERROR_LEASES * s->conf->target_lease * 1000) {
		log_error("job %" PRId64 " %s: the database did not take the "
		    "%s for %.0f s; given up: the target will be built again "
		    "after its lease", e->job_id, e->target, e->release ?
		    "target given back" : "result",
		    (now - e->waiting_since) / 1000.0);
		settle(e, QUEUE_ERROR);
		return;
	}
	delay = e->delay_ms;
	if (s->stopping && s->stop_by - now < delay)
		delay = s->stop_by - now;
	e->delay_ms = e->delay_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS :
	    e->delay_ms * 2;
	if (!e->timer_init) {
		uv_timer_init(s->loop, &e->timer);
		e->timer.data = e;
		e->timer_init = true;
	}
	uv_timer_start(&e->timer, on_retry, (uint64_t)delay, 0);
}

/*
 * Whether target t ended as outcome o says.  The state alone is not
 * enough: another host that found our lease run out may have ended our
 * attempt itself (kiln_reclaim: failed, "lost: ...", once max_attempts
 * runs were made; canceled when the job is), in the state ours has.
 */
static bool
same_outcome(const struct job_target *t, const struct queue_outcome *o)
{
	int code = t->has_exit_status ? t->exit_status : -1;

	if (t->state != o->state || code != (o->exit_status < 0 ? -1 :
	    o->exit_status))
		return false;
	if (t->error == NULL || o->error == NULL)
		return t->error == o->error;
	return strcmp(t->error, o->error) == 0;
}

/*
 * A release whose try broke off, and its target as the job shows it.
 * Still running our attempt on this host: nobody else can have it, so
 * the release is written again.  At the attempt before ours, or running
 * ours on another host (it claimed the target after our release): our
 * release was done.  Anything else: the target was taken from us.
 */
static void
released(struct ended *e, const struct job_target *t)
{
	struct sched *s = e->s;
	const char *me = s->conf->host_name != NULL ? s->conf->host_name :
	    "localhost";
	bool here = t->host == NULL || strcmp(t->host, me) == 0;

	if (t->state == TARGET_RUNNING && t->attempt == e->attempt && here) {
		job_free(e->check);
		e->check = NULL;
		e->busy = true;
		queue_release(s->q, e->target_id, e->attempt, written, e);
		return;
	}
	if (t->attempt == e->attempt - 1 ||
	    (t->state == TARGET_RUNNING && t->attempt == e->attempt)) {
		log_info("job %" PRId64 " %s: the target was given back before "
		    "the connection broke", e->job_id, e->target);
		settle(e, 0);
		return;
	}
	settle(e, QUEUE_ECONFLICT);
}

/*
 * The job, read after a conflict that followed a QUEUE_EDOWN: our
 * attempt of the target, ended with our outcome, is our write that the
 * server committed before the connection broke.
 */
static void
checked(void *data, int rc)
{
	struct ended *e = data;
	const struct job *job = e->check;

	e->busy = false;
	if (rc == QUEUE_EDOWN || rc == QUEUE_ERROR) {
		job_free(e->check);
		e->check = NULL;
		wait_more(e, rc);
		return;
	}
	if (rc != 0) {
		settle(e, rc);
		return;
	}
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *t = &job->targets[i];

		if (t->id != e->target_id)
			continue;
		if (e->release) {
			released(e, t);
			return;
		}
		if (t->attempt == e->attempt && same_outcome(t, &e->o)) {
			log_info("job %" PRId64 " %s: the result was stored "
			    "before the connection broke", e->job_id,
			    e->target);
			e->js = job->state;
			settle(e, 0);
			return;
		}
		break;
	}
	settle(e, QUEUE_ECONFLICT);
}

/* Superseded, or our own write committed unseen: settled here. */
static void
conflict(struct ended *e)
{
	if (!e->unsure) {
		settle(e, QUEUE_ECONFLICT);
		return;
	}
	e->busy = true;
	queue_get(e->s->q, e->job_id, &e->check, checked, e);
}

static void
written(void *data, int rc)
{
	struct ended *e = data;

	e->busy = false;
	switch (rc) {
	case 0:
	case QUEUE_ENOTFOUND:
		settle(e, rc);
		break;
	case QUEUE_ECONFLICT:
		conflict(e);
		break;
	case QUEUE_EDOWN:
		e->unsure = true;
		wait_more(e, rc);
		break;
	default:
		wait_more(e, QUEUE_ERROR);
		break;
	}
}

static void
try_write(struct ended *e)
{
	struct sched *s = e->s;

	/* A release that may have been done: read first (released()). */
	if (e->release && e->unsure) {
		conflict(e);
		return;
	}
	e->busy = true;
	if (e->release)
		queue_release(s->q, e->target_id, e->attempt, written, e);
	else
		queue_finish_build(s->q, e->target_id, e->attempt, &e->o,
		    &e->js, written, e);
}

void
result_write(struct ended *e, const struct queue_outcome *o)
{
	struct sched *s = e->s;

	if (o != NULL) {
		struct artifact *arts = NULL;

		e->o = *o;
		e->o.error = o->error ? xstrdup(o->error) : NULL;
		e->o.cache_key = o->cache_key ? xstrdup(o->cache_key) : NULL;
		if (o->narts > 0) {
			arts = xcalloc(o->narts, sizeof *arts);
			for (size_t i = 0; i < o->narts; i++) {
				arts[i].name = o->arts[i].name ?
				    xstrdup(o->arts[i].name) : NULL;
				arts[i].size = o->arts[i].size;
				arts[i].sha256 = o->arts[i].sha256 ?
				    xstrdup(o->arts[i].sha256) : NULL;
			}
		}
		e->o.arts = arts;
	} else
		e->release = true;
	e->next = s->ending;
	s->ending = e;
	s->writes++;
	try_write(e);
}

bool
result_waiting(const struct ended *e)
{
	return e->waiting_since != 0;
}

void
result_refused(struct sched *s, int64_t target_id, int attempt)
{
	for (struct ended *e = s->ending; e; e = e->next) {
		if (e->target_id != target_id || e->attempt != attempt)
			continue;
		/* A try in flight answers for itself. */
		if (e->busy || e->waiting_since == 0)
			return;
		uv_timer_stop(&e->timer);
		conflict(e);
		return;
	}
}
