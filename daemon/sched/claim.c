/*
 * Claims: which job's target to build next and the claim of it.  A kick
 * reads the first jobs with queued targets (queue_next_jobs), picks the
 * top priority's job with the fewest builds running here, and claims
 * one of its targets; the claim's completion starts it, reading its job
 * first when this kilnd does not hold it yet, and kicks again for the
 * next free slot.  One read of the next jobs and one claim in flight at
 * a time: a kick meanwhile is remembered (kick_again), not repeated.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sched-int.h"
#include "util.h"
#include "xmalloc.h"

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

/* Start the claimed target c of job j. */
static void
start_target(struct sjob *j, const struct queue_claim *c)
{
	struct sched *s = j->s;
	struct starget *st;
	char err[160];

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
	if (target_parse_row(&st->t, c->target, err, sizeof err) != 0) {
		fail_now(st, err);
		return;
	}
	st->packaging = strcmp(st->t.name, TARGET_RELEASE) == 0;
	target_url_name(st->url_name, &st->t);
	if (j->fetch == FETCH_DONE)
		launch(st);
	else if (j->fetch == FETCH_NONE)
		start_fetch(j);
}

/*
 * A claimed target whose job this kilnd does not hold yet: the job is
 * read first.  Meanwhile the claim holds a build slot (s->running), so
 * that kicks do not claim past `workers`; a cancel of its job is noted
 * here (sched_cancel) and applied once the target exists.
 */
struct claim_read {
	struct sched *s;
	struct queue_claim c;
	struct job *job;
	bool cancel;
	struct claim_read *next;
};

static void
claim_read_done(void *data, int rc)
{
	struct claim_read *cr = data;
	struct sched *s = cr->s;
	struct sjob *j;

	for (struct claim_read **pp = &s->claim_reads; *pp; pp = &(*pp)->next)
		if (*pp == cr) {
			*pp = cr->next;
			break;
		}
	s->reads--;
	s->running--;		/* the slot goes to the target, or back */
	if (rc != 0 || s->stopping || s->draining) {
		/* Stopping or draining since: not started, the queue has it
		 * back (as claimed() does). */
		if (rc != 0)
			log_error("job %" PRId64 ": claimed but cannot be read",
			    cr->c.job_id);
		queue_release(s->q, cr->c.target_id, cr->c.attempt, NULL,
		    NULL);
		job_free(cr->job);
	} else {
		/* Another claim of the job may have brought it meanwhile. */
		if ((j = find_job(s, cr->c.job_id)) != NULL)
			job_free(cr->job);
		else {
			j = xcalloc(1, sizeof *j);
			j->s = s;
			j->job = cr->job;
			store_budget_init(&j->output,
			    job_output_bytes(cr->job));
			j->next = s->jobs;
			s->jobs = j;
		}
		start_target(j, &cr->c);
		if (cr->cancel)
			sched_cancel(s, cr->c.job_id);
	}
	free(cr);
	sched_settle(s, false);
}

static void
start_claim(struct sched *s, const struct queue_claim *c)
{
	struct sjob *j = find_job(s, c->job_id);
	struct claim_read *cr;

	if (j != NULL) {
		start_target(j, c);
		return;
	}
	cr = xcalloc(1, sizeof *cr);
	cr->s = s;
	cr->c = *c;
	cr->next = s->claim_reads;
	s->claim_reads = cr;
	s->reads++;
	s->running++;
	queue_get(s->q, c->job_id, &cr->job, claim_read_done, cr);
}

/* How many claims in a row may find nothing before kicks wait for the
 * next tick: the jobs read as having queued targets lost them meanwhile
 * (canceled, failed), and a fresh read sees that. */
#define EMPTY_CLAIMS_MAX 3

static void
claimed(void *data, int rc)
{
	struct sched *s = data;
	bool again = s->kick_again;

	s->claiming = false;
	s->kick_again = false;
	s->writes--;
	if (rc == 0) {
		s->empty_claims = 0;
		/* Stopping or draining since it was asked: not started. */
		if (s->stopping || s->draining)
			queue_release(s->q, s->claim.target_id,
			    s->claim.attempt, NULL, NULL);
		else {
			/* The job's first claim here: it runs now (a later
			 * one changes the target only). */
			if (find_job(s, s->claim.job_id) == NULL)
				events_job(s->events, s->claim.job_id,
				    job_state_name(JOB_RUNNING));
			events_target(s->events, s->claim.job_id,
			    s->claim.target, target_state_name(TARGET_RUNNING));
			start_claim(s, &s->claim);
		}
		again = true;
	} else if (rc == QUEUE_EEMPTY)
		again |= ++s->empty_claims <= EMPTY_CLAIMS_MAX;
	else
		log_error("builds: a claim failed (the database); trying "
		    "again at the next tick");
	sched_settle(s, again);
}

/* Whether a claim may be made now (a kick, or a read's completion). */
static bool
may_claim(const struct sched *s)
{
	return s->backoff_until <= util_now_ms() && !s->stopping &&
	    !s->draining && !s->paused && s->running < s->conf->workers;
}

/*
 * The next jobs were read: claim among them.  A kick that came while
 * the read was in flight stays in kick_again for the claim's completion
 * (it kicks again), or kicks now when there is nothing to claim.
 */
static void
next_read(void *data, int rc)
{
	struct sched *s = data;
	size_t n = s->nnext, best = 0;
	unsigned best_running = ~0U;
	bool again = s->kick_again;

	s->reads--;
	s->reading_next = false;
	if (rc != 0 || n == 0 || !may_claim(s)) {
		s->kick_again = false;
		sched_settle(s, again);
		return;
	}
	/* Among the jobs of the top priority, the one with the fewest
	 * builds running; the oldest on a tie. */
	for (size_t i = 0; i < n && s->next[i].priority == s->next[0].priority;
	    i++) {
		struct sjob *j = find_job(s, s->next[i].job_id);
		unsigned r = j ? j->ntargets : 0;
		if (r < best_running) {
			best_running = r;
			best = i;
		}
	}
	/* Its completion starts the build and kicks again for the next
	 * free slot. */
	s->claiming = true;
	s->writes++;
	queue_claim_job(s->q, s->next[best].job_id, &s->claim, claimed, s);
}

void
sched_kick(struct sched *s)
{
	if (s->backoff_until > util_now_ms())
		return;		/* on_tick tries again */
	if (s->claiming || s->reading_next) {
		s->kick_again = true;
		return;
	}
	if (!may_claim(s))
		return;
	s->reading_next = true;
	s->reads++;
	queue_next_jobs(s->q, s->next, ARRAY_SIZE(s->next), &s->nnext,
	    next_read, s);
}

void
claims_cancel(struct sched *s, int64_t job_id)
{
	for (struct claim_read *cr = s->claim_reads; cr; cr = cr->next)
		if (cr->c.job_id == job_id)
			cr->cancel = true;
}
