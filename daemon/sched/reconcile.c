/*
 * Heartbeats and the lease on running targets, and this host's beat.
 *
 * Every target this kilnd holds (claimed, fetching, building,
 * publishing) has its heartbeat written every quarter of target_lease.
 * A target the database shows running whose lease ran out (its holder's
 * last claim or heartbeat plus that host's target_lease: queue_set_lease),
 * and which this kilnd does not hold, has nobody behind it: the
 * process that claimed it is gone, or gave up storing its result.  A
 * result that waits for the database to take it (result.c) is held and
 * beaten like a build.  The reconciler gives a stale target back to the
 * queue (the run counts as an attempt) or fails it after max_attempts.
 * It runs on the tick, reads a bounded list, and writes through the
 * queue's writer.
 *
 * With the targets' heartbeats goes the host's own beat: its row in the
 * queue's hosts table (name, base_url, slots, builds running), which
 * GET /v1/hosts lists, written at start, every quarter of target_lease,
 * and once more when the scheduler stops, with nothing running.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "sched-int.h"
#include "toolchains.h"
#include "util.h"
#include "xmalloc.h"

/* Stale targets looked at per pass; the next pass takes the rest. */
#define RECLAIM_MAX 64

static bool
held(const struct sched *s, int64_t target_id)
{
	for (const struct sjob *j = s->jobs; j; j = j->next)
		for (const struct starget *st = j->targets; st; st = st->next)
			if (st->claim.target_id == target_id)
				return true;
	/* Ended here, its result not yet stored (result.c). */
	for (const struct ended *e = s->ending; e; e = e->next)
		if (e->target_id == target_id)
			return true;
	return false;
}

struct reclaim {
	struct sched *s;
	int64_t target_id;
};

static void
reclaimed(void *data, int rc)
{
	struct reclaim *r = data;
	struct sched *s = r->s;

	s->writes--;
	if (rc == 0) {
		log_warn("target %" PRId64 ": its build stopped reporting "
		    "(no heartbeat for target_lease, %u s): claimed back",
		    r->target_id, s->conf->target_lease);
		s->reclaimed++;
	} else if (rc != QUEUE_ENOTFOUND)
		log_error("target %" PRId64 ": cannot claim it back (the "
		    "database); tried again", r->target_id);
	free(r);
	sched_settle(s, rc == 0);
}

/* The stale targets, read (one read in flight at a time). */
struct stale_read {
	struct sched *s;
	int64_t now;
	int64_t ids[RECLAIM_MAX];
	size_t n;
};

/*
 * Held is decided now, not when the read was asked: a target claimed or
 * ended meanwhile is seen as it is.  Stopping meanwhile, nothing is
 * claimed back (the next start's reconciler does it).
 */
static void
stale_read(void *data, int rc)
{
	struct stale_read *sr = data;
	struct sched *s = sr->s;

	s->reads--;
	s->reading_stale = false;
	for (size_t i = 0; rc == 0 && !s->stopping && i < sr->n; i++) {
		struct reclaim *r;

		if (held(s, sr->ids[i]))
			continue;
		r = xcalloc(1, sizeof *r);
		r->s = s;
		r->target_id = sr->ids[i];
		s->writes++;
		queue_reclaim(s->q, sr->ids[i], sr->now,
		    (int)s->conf->max_attempts, reclaimed, r);
	}
	free(sr);
	sched_settle(s, false);
}

/* A target's heartbeat, fenced by its claim's attempt. */
struct beat {
	struct sched *s;
	int64_t target_id;
	int attempt;
};

/*
 * QUEUE_ECONFLICT: the lease ran out meanwhile (this host was paused or
 * cut off) and the target was given back, perhaps claimed again: the
 * build is no longer ours.  The same claim is looked up, not just the
 * target: a newer claim of it by this host is left alone.
 * QUEUE_ECANCELED: its job is being canceled, perhaps by another host
 * whose notification was missed: the job's builds here stop (and end
 * canceled, not superseded: the claim is still theirs).  A result that
 * waits for the database keeps it.
 */
static void
beat_done(void *data, int rc)
{
	struct beat *b = data;
	struct sched *s = b->s;

	s->writes--;
	if (rc == QUEUE_ECANCELED && !s->stopping) {
		for (struct sjob *j = s->jobs; j; j = j->next)
			for (struct starget *st = j->targets; st; st = st->next)
				if (st->claim.target_id == b->target_id &&
				    st->claim.attempt == b->attempt) {
					if (!st->cancel)
						log_info("job %" PRId64 ": "
						    "being canceled (its "
						    "heartbeat says); stopping "
						    "its builds here",
						    st->claim.job_id);
					sched_cancel(s, st->claim.job_id);
					goto found;
				}
	}
	if (rc == QUEUE_ECONFLICT && !s->stopping) {
		for (struct sjob *j = s->jobs; j; j = j->next)
			for (struct starget *st = j->targets; st; st = st->next)
				if (st->claim.target_id == b->target_id &&
				    st->claim.attempt == b->attempt) {
					stop_superseded(st);
					goto found;
				}
	}
	/* Or a result that waits for the database: discarded. */
	if (rc == QUEUE_ECONFLICT)
		result_refused(s, b->target_id, b->attempt);
found:
	free(b);
	sched_settle(s, false);
}

static void
heartbeat(struct sched *s, int64_t target_id, int attempt)
{
	struct beat *b = xcalloc(1, sizeof *b);

	b->s = s;
	b->target_id = target_id;
	b->attempt = attempt;
	s->writes++;
	queue_heartbeat(s->q, b->target_id, b->attempt, beat_done, b);
}

static void
beaten(void *data, int rc)
{
	struct sched *s = data;

	s->writes--;
	s->beating = false;
	/* Once per run of failures: the queue logs each one's cause. */
	if (rc != 0 && !s->beat_failed)
		log_warn("host %s: cannot record this host in the database; "
		    "tried again with the heartbeats", s->conf->host_name);
	else if (rc == 0 && s->beat_failed)
		log_info("host %s: recorded in the database again",
		    s->conf->host_name);
	s->beat_failed = rc != 0;
	sched_settle(s, false);
}

void
host_beat(struct sched *s)
{
	struct queue_host h = {
		.base_url = s->builder_id,
		.version = PACKAGE_VERSION,
		.slots = s->conf->workers,
		.running = s->running,
		.started_at = s->started_at,
	};

	/* A beat still on its way (a slow database): the next one says
	 * the same, later. */
	if (s->beating)
		return;
	snprintf(h.name, sizeof h.name, "%s", s->conf->host_name != NULL ?
	    s->conf->host_name : "localhost");
	/* What it can build, read afresh (a reload may change it); not
	 * known before the Go toolchains are (NULL: the last map stays). */
	h.toolchains = s->toolchains != NULL ?
	    toolchains_map(s->toolchains, s->conf) : NULL;
	s->beating = true;
	s->writes++;
	queue_host_beat(s->q, &h, beaten, s);
	free(h.toolchains);
}

void
reconcile(struct sched *s)
{
	int64_t now = util_now_ms(), lease = (int64_t)s->conf->target_lease *
	    1000;
	struct stale_read *sr;

	if (s->stopping)
		return;
	if (now - s->heartbeat_at >= lease / 4) {
		s->heartbeat_at = now;
		host_beat(s);
		for (struct sjob *j = s->jobs; j; j = j->next)
			for (struct starget *st = j->targets; st; st = st->next)
				heartbeat(s, st->claim.target_id,
				    st->claim.attempt);
		/* A build ended whose result waits for the database keeps
		 * its lease: nobody builds it again during a short outage. */
		for (struct ended *e = s->ending; e; e = e->next)
			if (result_waiting(e))
				heartbeat(s, e->target_id, e->attempt);
	}
	if (now - s->reconciled_at < lease / 2 || s->reading_stale)
		return;
	s->reconciled_at = now;
	sr = xcalloc(1, sizeof *sr);
	sr->s = s;
	sr->now = now;
	s->reads++;
	s->reading_stale = true;
	queue_stale_targets(s->q, sr->now, sr->ids, RECLAIM_MAX, &sr->n,
	    stale_read, sr);
}
