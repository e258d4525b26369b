/*
 * What the queue's tests share: a fresh database, jobs made by hand,
 * submitting and claiming with checks (writes go through qsync.h).
 * Included by each test file, so that its checks count in that test
 * (unit.h's state is per file).
 */
#ifndef KILN_TEST_QUEUEFIX_H
#define KILN_TEST_QUEUEFIX_H

#include <stdarg.h>
#include <string.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "unit.h"

static char db_path[512];

/* A fresh database in a fresh directory; NULL (and a failure) if not. */
static __attribute__((unused)) struct queue *
fresh_queue(void)
{
	struct queue *q = NULL;
	char err[512] = "";

	snprintf(db_path, sizeof db_path, "%s/kiln.db", unit_tmpdir());
	if (queue_open(&q, db_path, err, sizeof err) != 0) {
		fprintf(stderr, "  queue_open %s: %s\n", db_path, err);
		CHECK(0);
		return NULL;
	}
	return q;
}

/* A job by hand: repo, ref, priority, then NULL-ended target names. */
static __attribute__((unused)) struct job *
make_job(int priority, ...)
{
	struct job *j = xcalloc(1, sizeof *j);
	va_list ap;
	const char *t;

	j->repo = xstrdup("https://example.com/x.git");
	j->ref = xstrdup("main");
	j->priority = priority;
	j->state = JOB_QUEUED;
	j->created_at = 1700000000000;
	j->targets = xcalloc(JOB_MAX_TARGETS, sizeof *j->targets);
	va_start(ap, priority);
	while ((t = va_arg(ap, const char *)) != NULL) {
		struct job_target *jt = &j->targets[j->ntargets++];
		snprintf(jt->target, sizeof jt->target, "%s", t);
		jt->state = TARGET_QUEUED;
	}
	va_end(ap);
	return j;
}

/* Submit one job by itself; its id, or 0 after a failed check. */
static __attribute__((unused)) int64_t
submit1(struct queue *q, struct job *j)
{
	int64_t id;

	CHECK_INT(qs_submit(q, &j, 1), 0);
	id = j->id;
	job_free(j);
	return id;
}

static __attribute__((unused)) struct job *
get(struct queue *q, int64_t id)
{
	struct job *j = NULL;
	int rc = qs_get(q, id, &j);

	CHECK_INT(rc, 0);
	return rc == 0 ? j : NULL;
}

static __attribute__((unused)) void
expect_claim(struct queue *q, int64_t job_id, const char *target)
{
	struct queue_claim c;

	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, job_id);
	CHECK_STR(c.target, target);
	CHECK_INT(c.attempt, 1);
}

#endif
