/*
 * Targets a host refuses for want of a toolchain (queue_refuse): the
 * target goes back to the queue with its run not counted, the claims of
 * the refusing host pass it over while the refusal holds, and once every
 * live host refused it, it fails naming each host's reason.  Part of the
 * conformance suite: written against queue.h only (and the fixtures), run
 * on SQLite and, by tests/unit/pgqueue.sh, on PostgreSQL.
 *
 * The queue's own host is "h1"; a refusal by "h2" is made through the
 * same queue (queue_refuse names its host), as another host's would be.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/db/queue.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "queuefix.h"
#include "qsync.h"
#include "unit.h"

#define MINUTE_MS 60000

struct fired {
	int n, rc;
};

static void
on_done(void *data, int rc)
{
	struct fired *f = data;

	f->n++;
	f->rc = rc;
}

static int
refuse(struct queue *q, const struct queue_claim *c, const char *host,
    const char *why, int64_t window_ms, bool *everyone)
{
	struct fired f = { 0, -99 };

	qs_attach(q);
	queue_refuse(q, c->target_id, c->attempt, host, why, window_ms,
	    everyone, on_done, &f);
	CHECK_INT(f.n, 0);	/* never inside the call */
	while (f.n == 0)
		uv_run(qs_loop(), UV_RUN_ONCE);
	return f.rc;
}

static void
beat_map(struct queue *q, const char *name, const char *map)
{
	struct queue_host h;

	memset(&h, 0, sizeof h);
	snprintf(h.name, sizeof h.name, "%s", name);
	h.toolchains = (char *)map;
	h.base_url = (char *)"http://127.0.0.1:1";
	h.version = (char *)"1";
	h.slots = 1;
	h.started_at = 1;
	CHECK_INT(qs_host_beat(q, &h), 0);
}

static void
beat(struct queue *q, const char *name)
{
	beat_map(q, name, NULL);
}

/* A queue of host h1; NULL after a failed check. */
static struct queue *
h1_queue(void)
{
	struct queue *q = fresh_queue();

	if (q != NULL)
		queue_set_host(q, "h1");
	return q;
}

static const struct job_target *
target_of(const struct job *j, const char *name)
{
	for (size_t i = 0; j != NULL && i < j->ntargets; i++)
		if (strcmp(j->targets[i].target, name) == 0)
			return &j->targets[i];
	CHECK(0);
	return NULL;
}

/*
 * A host alone (no other host's beat, not even its own: the refusing
 * host is alive by its call): the target fails at once, with no attempt
 * counted, and the job's state follows once its other target ends.
 */
static void
test_alone_fails(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c;
	const struct job_target *t;
	struct job *j;
	bool everyone = false;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/arm64", "linux/amd64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_STR(c.target, "linux/arm64");
	CHECK_INT(refuse(q, &c, "h1", "cgo: no C toolchain", MINUTE_MS,
	    &everyone), 0);
	CHECK(everyone);
	j = get(q, id);
	if ((t = target_of(j, "linux/arm64")) != NULL) {
		CHECK_INT(t->state, TARGET_FAILED);
		CHECK_STR(t->error, "no host of the farm can build it: h1: "
		    "cgo: no C toolchain");
		CHECK_INT(t->attempt, 0);
		CHECK(t->finished_at > 0);
	}
	job_free(j);
	expect_claim(q, id, "linux/amd64");
	j = get(q, id);
	if ((t = target_of(j, "linux/amd64")) != NULL) {
		struct queue_outcome o = { .state = TARGET_SUCCEEDED,
		    .exit_status = 0 };
		enum job_state js = JOB_QUEUED;

		CHECK_INT(qs_finish_build(q, t->id, 1, &o, &js), 0);
		CHECK_INT(js, JOB_FAILED);
	}
	job_free(j);
	qs_close(q);
}

/*
 * Two live hosts: h2's refusal leaves the target queued (no attempt
 * counted) for h1, whose claims still see it; h1's refusal then fails
 * it with both reasons, hosts in byte order.
 */
static void
test_two_hosts_then_everyone(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c;
	const struct job_target *t;
	struct job *j;
	bool everyone = true;
	int64_t id;

	if (q == NULL)
		return;
	beat(q, "h2");
	beat(q, "h1");
	id = submit1(q, make_job(0, "linux/arm64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(refuse(q, &c, "h2", "no go1.23", MINUTE_MS, &everyone), 0);
	CHECK(!everyone);
	j = get(q, id);
	if ((t = target_of(j, "linux/arm64")) != NULL) {
		CHECK_INT(t->state, TARGET_QUEUED);
		CHECK_INT(t->attempt, 0);
		CHECK_INT(t->started_at, 0);
	}
	job_free(j);
	/* h1 has not refused it: its claims take it, a first attempt. */
	expect_claim(q, id, "linux/arm64");
	memset(&c, 0, sizeof c);
	c.job_id = id;
	j = get(q, id);
	if ((t = target_of(j, "linux/arm64")) != NULL) {
		c.target_id = t->id;
		c.attempt = t->attempt;
	}
	job_free(j);
	CHECK_INT(refuse(q, &c, "h1", "cgo: no C toolchain", MINUTE_MS,
	    &everyone), 0);
	CHECK(everyone);
	j = get(q, id);
	if (j != NULL)
		CHECK_INT(j->state, JOB_FAILED);
	if ((t = target_of(j, "linux/arm64")) != NULL) {
		CHECK_INT(t->state, TARGET_FAILED);
		CHECK_STR(t->error, "no host of the farm can build it: h1: "
		    "cgo: no C toolchain; h2: no go1.23");
		CHECK_INT(t->attempt, 0);
	}
	job_free(j);
	qs_close(q);
}

/*
 * The refusing host's claims pass the target over while its refusal
 * holds: queue_claim takes the next job's, queue_claim_job finds
 * nothing, queue_next_jobs does not list the job.  After the refusal's
 * window the host may claim it again (its toolchains may have changed).
 */
static void
test_claims_skip_until_it_expires(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c, c2;
	struct queue_next next[4];
	size_t n = 9;
	bool everyone = true;
	int64_t a, b;

	if (q == NULL)
		return;
	beat(q, "h2");
	a = submit1(q, make_job(5, "linux/arm64", NULL));
	b = submit1(q, make_job(0, "linux/amd64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, a);
	/* h2 is alive for 500 ms after its beat; so holds the refusal. */
	CHECK_INT(refuse(q, &c, "h1", "cgo: no C toolchain", 500, &everyone),
	    0);
	CHECK(!everyone);
	CHECK_INT(qs_next_jobs(q, next, 4, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(next[0].job_id, b);
	memset(&c2, 0, sizeof c2);
	CHECK_INT(qs_claim_job(q, a, &c2), QUEUE_EEMPTY);
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(c2.job_id, b);
	CHECK_INT(qs_claim(q, &c2), QUEUE_EEMPTY);
	usleep(700 * 1000);
	CHECK_INT(qs_next_jobs(q, next, 4, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(next[0].job_id, a);
	memset(&c2, 0, sizeof c2);
	CHECK_INT(qs_claim_job(q, a, &c2), 0);
	CHECK_INT(c2.target_id, c.target_id);
	CHECK_INT(c2.attempt, 1);
	qs_close(q);
}

/*
 * A host whose beat is older than the window is not alive: its missing
 * refusal does not keep the target from failing, and it is not named.
 */
static void
test_dead_host_not_counted(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c;
	const struct job_target *t;
	struct job *j;
	bool everyone = false;
	int64_t id;

	if (q == NULL)
		return;
	/* h0's beat records a 50 ms lease: alive for 100 ms (PostgreSQL
	 * judges each host by its own lease, 011_host_lease.sql). */
	queue_set_lease(q, 50);
	beat(q, "h0");
	queue_set_lease(q, QUEUE_LEASE_MS);
	usleep(300 * 1000);
	id = submit1(q, make_job(0, "linux/riscv64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(refuse(q, &c, "h1", "no C toolchain", 100, &everyone), 0);
	CHECK(everyone);
	j = get(q, id);
	if ((t = target_of(j, "linux/riscv64")) != NULL)
		CHECK_STR(t->error, "no host of the farm can build it: h1: "
		    "no C toolchain");
	job_free(j);
	qs_close(q);
}

/*
 * Fenced like the other writes of a claim: another attempt is
 * QUEUE_ECONFLICT, no such target QUEUE_ENOTFOUND, and neither records
 * a refusal.  A target of a job being canceled is canceled.
 */
static void
test_fenced_and_canceled(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c, bad;
	const struct job_target *t;
	struct job *j;
	bool everyone = true;
	size_t nrunning = 0;
	int64_t id;

	if (q == NULL)
		return;
	beat(q, "h2");
	id = submit1(q, make_job(0, "linux/arm64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	bad = c;
	bad.attempt = c.attempt + 1;
	CHECK_INT(refuse(q, &bad, "h1", "x", MINUTE_MS, &everyone),
	    QUEUE_ECONFLICT);
	bad = c;
	bad.target_id = c.target_id + 1000;
	CHECK_INT(refuse(q, &bad, "h1", "x", MINUTE_MS, &everyone),
	    QUEUE_ENOTFOUND);
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	everyone = true;
	CHECK_INT(refuse(q, &c, "h1", "x", MINUTE_MS, &everyone), 0);
	CHECK(!everyone);
	j = get(q, id);
	if (j != NULL)
		CHECK_INT(j->state, JOB_CANCELED);
	if ((t = target_of(j, "linux/arm64")) != NULL) {
		CHECK_INT(t->state, TARGET_CANCELED);
		CHECK_INT(t->attempt, 0);
	}
	job_free(j);
	qs_close(q);
}

/* The host and the reason are copied: the caller's may go at once. */
static void
test_copies_strings(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c;
	const struct job_target *t;
	struct fired f = { 0, -99 };
	struct job *j;
	bool everyone = false;
	char *host, *why;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/arm64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	host = xstrdup("h1");
	why = xstrdup("gone");
	queue_refuse(q, c.target_id, c.attempt, host, why, MINUTE_MS,
	    &everyone, on_done, &f);
	memset(host, 'X', 2);
	memset(why, 'X', 4);
	free(host);
	free(why);
	while (f.n == 0)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(f.rc, 0);
	CHECK(everyone);
	j = get(q, id);
	if ((t = target_of(j, "linux/arm64")) != NULL)
		CHECK_STR(t->error, "no host of the farm can build it: h1: "
		    "gone");
	job_free(j);
	qs_close(q);
}

/*
 * A host whose toolchain map changed (a reload, a restart with a C
 * toolchain installed) forgets its refusals: it may build the target
 * now, so another host's refusal does not fail it naming the old
 * reason.  A beat with the same map (or none) keeps them.
 */
static void
test_new_map_forgets(void)
{
	struct queue *q = h1_queue();
	struct queue_claim c;
	const struct job_target *t;
	struct job *j;
	bool everyone = true;
	int64_t id;

	if (q == NULL)
		return;
	beat_map(q, "h2", "go1.22.12; cgo none");
	beat(q, "h1");
	id = submit1(q, make_job(0, "linux/arm64", NULL));
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(refuse(q, &c, "h2", "cgo: not installed", MINUTE_MS,
	    &everyone), 0);
	CHECK(!everyone);
	/* The same map again, and a beat without one: still refused. */
	beat_map(q, "h2", "go1.22.12; cgo none");
	beat(q, "h2");
	/* h2 reloaded with the C toolchain of linux/arm64. */
	beat_map(q, "h2", "go1.22.12; cgo linux/arm64");
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(refuse(q, &c, "h1", "cgo: no C toolchain", MINUTE_MS,
	    &everyone), 0);
	CHECK(!everyone);
	j = get(q, id);
	if ((t = target_of(j, "linux/arm64")) != NULL) {
		CHECK_INT(t->state, TARGET_QUEUED);
		CHECK_INT(t->attempt, 0);
	}
	job_free(j);
	/* h2 (its queue, here this one renamed) claims it again. */
	queue_set_host(q, "h2");
	memset(&c, 0, sizeof c);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	qs_close(q);
}

UNIT_MAIN(
	TEST(test_alone_fails),
	TEST(test_two_hosts_then_everyone),
	TEST(test_claims_skip_until_it_expires),
	TEST(test_dead_host_not_counted),
	TEST(test_fenced_and_canceled),
	TEST(test_copies_strings),
	TEST(test_new_map_forgets)
)
