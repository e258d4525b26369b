/*
 * Signing a job whose targets all succeeded: SHA256SUMS, its minisign
 * signature and the DSSE-wrapped provenance are made and stored on the
 * thread pool; the job records their digests on the loop thread.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "log.h"
#include "metrics.h"
#include "sched-int.h"
#include "sign.h"
#include "util.h"
#include "xmalloc.h"

/* --- signing ------------------------------------------------------------------ */

struct signing {
	uv_work_t req;
	struct sched *s;
	int64_t job_id;
	struct job *job;		/* NULL until read */
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

/* Signing failed (the store, the disk): try the unsigned jobs again
 * later, 5 s after the first failure, doubling to 5 minutes. */
static void
sign_failed(struct sched *s)
{
	int64_t b = s->sign_backoff_ms;

	b = b == 0 ? 5000 : b * 2 > 300000 ? 300000 : b * 2;
	s->sign_backoff_ms = b;
	s->sign_retry_at = util_now_ms() + b;
}

static void
signing_unlink(struct signing *g)
{
	struct sched *s = g->s;

	for (struct signing **pp = &s->signing; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	job_free(g->job);
	free(g);
}

/* Once its task was queued. */
static void
signing_free(struct signing *g)
{
	struct sched *s = g->s;

	signing_unlink(g);
	task_done(s);
}

static void
signed_recorded(void *data, int rc)
{
	struct signing *g = data;
	struct sched *s = g->s;

	if (rc == 0) {
		log_info("job %" PRId64 ": signed SHA256SUMS %.12s, "
		    "provenance %.12s", g->job->id, g->sums, g->prov);
		s->sign_backoff_ms = 0;
		events_job_signed(s->events, g->job->id,
		    job_state_name(JOB_SUCCEEDED));
	} else if (rc == QUEUE_ENOTFOUND)
		log_info("job %" PRId64 ": expired before it was signed",
		    g->job->id);
	else if (rc == QUEUE_ECONFLICT)
		/* Another host of the farm signed it first: its files stand,
		 * these are left to the store's sweep. */
		log_info("job %" PRId64 ": signed meanwhile by another host; "
		    "this signature is dropped", g->job->id);
	else {
		log_error("job %" PRId64 ": cannot record its signature; "
		    "tried again later", g->job->id);
		sign_failed(s);
	}
	signing_free(g);
}

static void
sign_after(uv_work_t *req, int status)
{
	struct signing *g = req->data;
	struct sched *s = g->s;

	(void)status;
	metrics_sign(g->rc == 0);
	if (g->rc != 0) {
		log_error("job %" PRId64 ": cannot sign: %s (tried again "
		    "later)", g->job->id, g->why);
		sign_failed(s);
		signing_free(g);
		return;
	}
	/* Still in s->signing (and a task) until the record is durable, so
	 * that nothing signs the job twice meanwhile. */
	queue_set_signed(s->q, g->job->id, g->sums, g->sig, g->prov,
	    signed_recorded, g);
}

/* The read of the unsigned jobs (one in flight at a time). */
struct unsigned_read {
	struct sched *s;
	int64_t *ids;
	size_t n;
};

static void
unsigned_read(void *data, int rc)
{
	struct unsigned_read *u = data;
	struct sched *s = u->s;

	s->reads--;
	s->reading_unsigned = false;
	if (rc != 0)
		sign_failed(s);
	else if (!s->stopping) {
		for (size_t i = 0; i < u->n; i++)
			sign_job(s, u->ids[i]);
		/* A backlog is taken QUEUE_UNSIGNED_MAX at a time, a tick
		 * apart. */
		if (u->n == QUEUE_UNSIGNED_MAX && s->sign_retry_at == 0)
			s->sign_retry_at = util_now_ms();
	}
	free(u->ids);
	free(u);
	sched_settle(s, false);
}

void
sign_retry(struct sched *s)
{
	struct unsigned_read *u;

	if (s->sign_retry_at == 0 || util_now_ms() < s->sign_retry_at ||
	    s->stopping || s->reading_unsigned)
		return;
	s->sign_retry_at = 0;
	u = xcalloc(1, sizeof *u);
	u->s = s;
	s->reads++;
	s->reading_unsigned = true;
	queue_unsigned_jobs(s->q, &u->ids, &u->n, unsigned_read, u);
}

/*
 * The job was read: sign it if it still needs it.  Stopping meanwhile
 * changes nothing: the stop waits for the task (s->works), as it would
 * have had the read answered at once, so that a job whose last build
 * ended during a drain is signed before the exit.
 */
static void
job_read(void *data, int rc)
{
	struct signing *g = data;
	struct sched *s = g->s;
	const struct job *job = g->job;

	s->reads--;
	if (rc != 0)
		log_error("job %" PRId64 ": cannot be read for signing",
		    g->job_id);
	if (rc != 0 || job->state != JOB_SUCCEEDED ||
	    job->sums_sha256 != NULL || job->expired_at != 0) {
		signing_unlink(g);
		sched_settle(s, false);
		return;
	}
	queue_task(s, &g->req, sign_work, sign_after);
}

void
sign_job(struct sched *s, int64_t job_id)
{
	struct signing *g;

	/* In s->signing from the read on: a second ask meanwhile (the
	 * retry's read, a build's end) does not sign it twice. */
	for (g = s->signing; g; g = g->next)
		if (g->job_id == job_id)
			return;
	g = xcalloc(1, sizeof *g);
	g->req.data = g;
	g->s = s;
	g->job_id = job_id;
	g->next = s->signing;
	s->signing = g;
	s->reads++;
	queue_get(s->q, job_id, &g->job, job_read, g);
}
