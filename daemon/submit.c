#include "config.h"

#include <assert.h>
#include <stdlib.h>

#include "events.h"
#include "log.h"
#include "submit.h"
#include "util.h"
#include "xmalloc.h"

struct pending {
	struct job *job;
	submit_done_fn done;
	void *data;
};

struct submitter {
	uv_loop_t *loop;
	struct queue *q;
	uv_check_t check;
	uv_idle_t idle;		/* keeps poll from blocking before check */
	int busy;		/* a batch is being committed */
	int closing, stopped;
	int handles_open;
	struct pending *waiting;	/* gathered for the next batch */
	size_t nwaiting, capwaiting;
	struct pending *batch;		/* being committed */
	size_t nbatch, capbatch;
	struct job **jobs;		/* the batch's jobs, for queue_submit */
	/*
	 * An upper bound of the queued targets: counted exactly at start
	 * and when it reaches max_queued, increased by each commit.  Targets
	 * that leave the queued state are only noticed at the next count,
	 * so the bound errs on the side of refusing.
	 */
	int64_t queued;
	int64_t pending;	/* targets of the jobs waiting or committing */
	int64_t counted_at;	/* ms, to recount at most once a second */
	unsigned max_queued;
	struct events *events;	/* told of each job committed, or NULL */
	void (*closed)(void *);
	void *closed_data;
	void (*committed)(void *);
	void *committed_data;
};

static void start_batch(struct submitter *s);

static void
on_idle(uv_idle_t *h)
{
	(void)h;
}

static void
on_closed(uv_handle_t *h)
{
	struct submitter *s = h->data;
	void (*done)(void *) = s->closed;
	void *data = s->closed_data;

	if (--s->handles_open > 0)
		return;

	free(s->waiting);
	free(s->batch);
	free(s->jobs);
	free(s);
	if (done)
		done(data);
}

static void
maybe_close(struct submitter *s)
{
	if (s->closing && !s->busy && s->nwaiting == 0 &&
	    !uv_is_closing((uv_handle_t *)&s->check)) {
		uv_close((uv_handle_t *)&s->check, on_closed);
		uv_close((uv_handle_t *)&s->idle, on_closed);
	}
}

static void
batch_done(void *data, int rc)
{
	struct submitter *s = data;
	size_t n = s->nbatch;
	int64_t targets = 0;

	s->busy = 0;
	for (size_t i = 0; i < n; i++)
		targets += (int64_t)s->batch[i].job->ntargets;
	s->pending -= targets;
	if (rc == 0)
		s->queued += targets;
	else
		log_error("submit: a batch of %zu job(s) failed to commit; "
		    "all were refused", n);
	log_debug("submit: committed %zu job(s)", n);
	s->nbatch = 0;
	/* Before the callbacks, which may free the jobs. */
	for (size_t i = 0; rc == 0 && i < n; i++)
		events_job(s->events, s->batch[i].job->id,
		    job_state_name(s->batch[i].job->state));
	/* Callbacks may submit again (they resume connections): let the
	 * next batch start from what gathered meanwhile, then call back. */
	for (size_t i = 0; i < n; i++)
		s->batch[i].done(s->batch[i].job, rc, s->batch[i].data);
	if (rc == 0 && s->committed != NULL)
		s->committed(s->committed_data);
	if (s->nwaiting > 0)
		start_batch(s);
	maybe_close(s);
}

static void
start_batch(struct submitter *s)
{
	struct pending *tmp = s->batch;
	size_t tmpcap = s->capbatch;

	assert(!s->busy && s->nwaiting > 0);
	/* Swap the arrays: what gathered becomes the batch. */
	s->batch = s->waiting;
	s->capbatch = s->capwaiting;
	s->nbatch = s->nwaiting;
	s->waiting = tmp;
	s->capwaiting = tmpcap;
	s->nwaiting = 0;
	s->jobs = xreallocarray(s->jobs, s->nbatch, sizeof *s->jobs);
	for (size_t i = 0; i < s->nbatch; i++)
		s->jobs[i] = s->batch[i].job;
	s->busy = 1;
	queue_submit(s->q, s->jobs, s->nbatch, batch_done, s);
}

static void
on_check(uv_check_t *h)
{
	struct submitter *s = container_of(h, struct submitter, check);

	uv_check_stop(h);
	uv_idle_stop(&s->idle);
	if (!s->busy && s->nwaiting > 0)
		start_batch(s);
}

struct submitter *
submitter_new(uv_loop_t *loop, struct queue *q, unsigned max_queued)
{
	struct submitter *s = xcalloc(1, sizeof *s);

	s->loop = loop;
	s->q = q;
	s->max_queued = max_queued;
	uv_check_init(loop, &s->check);
	uv_idle_init(loop, &s->idle);
	s->check.data = s->idle.data = s;
	s->handles_open = 2;
	if (queue_count_targets(q, TARGET_QUEUED, &s->queued) != 0)
		s->queued = 0;
	s->counted_at = util_now_ms();
	return s;
}

/* Whether `more` targets would pass max_queued queued targets. */
static int
full(struct submitter *s, int64_t more)
{
	int64_t now;

	if (s->queued + s->pending + more <= s->max_queued)
		return 0;
	/* At the bound: count for real, at most once a second. */
	now = util_now_ms();
	if (now - s->counted_at >= 1000) {
		if (queue_count_targets(s->q, TARGET_QUEUED, &s->queued) != 0)
			return 1;
		s->counted_at = now;
	}
	return s->queued + s->pending + more > s->max_queued;
}

int
submitter_submit(void *ctx, struct job *job, submit_done_fn done, void *data)
{
	struct submitter *s = ctx;

	if (s->stopped || s->closing)
		return SUBMIT_ESTOPPING;
	if (full(s, (int64_t)job->ntargets))
		return SUBMIT_EFULL;
	s->pending += (int64_t)job->ntargets;
	if (s->nwaiting == s->capwaiting) {
		size_t cap = s->capwaiting ? s->capwaiting * 2 : 64;
		s->waiting = xreallocarray(s->waiting, cap, sizeof *s->waiting);
		s->capwaiting = cap;
	}
	s->waiting[s->nwaiting].job = job;
	s->waiting[s->nwaiting].done = done;
	s->waiting[s->nwaiting].data = data;
	s->nwaiting++;
	/* Commit at the end of this loop iteration, unless one is in flight
	 * (then this one joins the next batch when it returns). */
	if (!s->busy) {
		uv_check_start(&s->check, on_check);
		/* An active idle handle makes this iteration's poll return at
		 * once, so the check runs even when the submission did not
		 * come from an I/O callback. */
		uv_idle_start(&s->idle, on_idle);
	}
	return 0;
}

void
submitter_on_commit(struct submitter *s, void (*fn)(void *), void *data)
{
	s->committed = fn;
	s->committed_data = data;
}

void
submitter_set_events(struct submitter *s, struct events *ev)
{
	s->events = ev;
}

void
submitter_set_max_queued(struct submitter *s, unsigned max_queued)
{
	s->max_queued = max_queued;
}

void
submitter_stop_accepting(struct submitter *s)
{
	s->stopped = 1;
}

size_t
submitter_inflight(const struct submitter *s)
{
	return s->nwaiting + s->nbatch;
}

void
submitter_close(struct submitter *s, void (*done)(void *), void *data)
{
	s->closing = 1;
	s->stopped = 1;
	s->closed = done;
	s->closed_data = data;
	maybe_close(s);
}
