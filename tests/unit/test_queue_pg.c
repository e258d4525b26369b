/*
 * What is PostgreSQL's own in the queue: several kilnd hosts on one
 * database.  Two queue handles with different host names stand for two
 * hosts: claiming at once they never take the same target; the counts of
 * one see the other's submissions after the refresh; finishing a job's
 * last two targets at once, exactly one of them sees the job end; a
 * host's recovery takes back its own builds only; a lease that ran out
 * is reclaimed by the other host; the artifacts and the signature record
 * the host; and the build cache, signing and retention reads.
 *
 * The test starts its own PostgreSQL (tests/pgcluster.sh, found through
 * SRCDIR, else the source tree it was built from) unless KILN_TEST_PG_DIR
 * names one already running, and makes a fresh database per case
 * (queuefix.h).
 */
#include "config.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <libpq-fe.h>
#include <uv.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"
#include "log.h"
#include "util.h"
#include "qsync.h"
#include "queuefix.h"
#include "unit.h"

static char cluster_dir[256], script[1024];
static bool own_cluster;

/* tests/pgcluster.sh CMD DIR [ARG]; 0 when it succeeded. */
static int
cluster(const char *cmd, const char *arg)
{
	char line[1400];
	FILE *p;
	int st;

	snprintf(line, sizeof line, "bash '%s' %s '%s' %s", script, cmd,
	    cluster_dir, arg != NULL ? arg : "");
	if ((p = popen(line, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, p) != NULL)
		;
	st = pclose(p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void
stop_at_exit(void)
{
	char cmd[300];

	if (!own_cluster)
		return;
	own_cluster = false;
	cluster("stop", "immediate");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cluster_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", cluster_dir);
}

static void
on_signal(int sig)
{
	(void)sig;
	exit(99);
}

static void
cluster_starts(void)
{
	const char *src = getenv("SRCDIR"), *base = getenv("TMPDIR");

	log_set_level(LOG_LVL_WARN);
	if (src == NULL || *src == '\0') {
		src = KILN_SRCDIR;
		setenv("SRCDIR", src, 1);	/* queuefix.h's createdb */
	}
	snprintf(script, sizeof script, "%s/tests/pgcluster.sh", src);
	if (pg_dir() != NULL)
		return;
	atexit(stop_at_exit);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	snprintf(cluster_dir, sizeof cluster_dir, "%s/kiln-pgq-XXXXXX",
	    base ? base : "/tmp");
	if (mkdtemp(cluster_dir) == NULL) {
		CHECK(0);
		return;
	}
	own_cluster = true;
	CHECK_INT(cluster("start", NULL), 0);
	setenv("KILN_TEST_PG_DIR", cluster_dir, 1);
}

static void
cluster_stops(void)
{
	if (own_cluster)
		CHECK_INT(cluster("stop", "fast"), 0);
	stop_at_exit();
}

/* A second host on the database of the last fresh_queue(). */
static struct queue *
other_host(const char *name)
{
	struct queue *q = NULL;
	char err[512] = "";

	if (queue_open(&q, db_path, err, sizeof err) != 0) {
		fprintf(stderr, "  queue_open %s: %s\n", db_path, err);
		CHECK(0);
		return NULL;
	}
	queue_set_host(q, name);
	return q;
}

/* One value of the test's own look at the database, as a number. */
static int64_t
sql_int(const char *sql)
{
	PGconn *c = PQconnectdb(db_path);
	PGresult *r = NULL;
	int64_t v = -1;

	if (PQstatus(c) == CONNECTION_OK)
		r = PQexec(c, sql);
	if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK &&
	    PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, "  %s: %s", sql, r != NULL ?
		    PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* A job of n targets named linux/t000, linux/t001, ... */
static struct job *
job_of(size_t n)
{
	struct job *j = make_job(0, NULL);

	for (size_t i = 0; i < n && i < JOB_MAX_TARGETS; i++) {
		snprintf(j->targets[i].target, sizeof j->targets[i].target,
		    "linux/t%03zu", i);
		j->targets[i].state = TARGET_QUEUED;
		j->ntargets++;
	}
	return j;
}

/* --- claims from two hosts at once ------------------------------------ */

#define NJOBS 10
#define PER_JOB 50
#define NTARGETS (NJOBS * PER_JOB)
#define IN_FLIGHT 4		/* claims outstanding per host */

struct claimer {
	struct queue *q;
	struct queue_claim c[IN_FLIGHT];
	int64_t got[NTARGETS + 1];
	size_t n;
	int running, errors;
};

struct slot {
	struct claimer *who;
	int i;
};

static void
claimed(void *data, int rc)
{
	struct slot *s = data;
	struct claimer *w = s->who;

	if (rc == 0 && w->n < NTARGETS + 1) {
		w->got[w->n++] = w->c[s->i].target_id;
		queue_claim(w->q, &w->c[s->i], claimed, s);
		return;
	}
	if (rc != QUEUE_EEMPTY)
		w->errors++;
	w->running--;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* 500 targets, two hosts claiming until nothing is left, each with a few
 * claims in flight: every target is claimed exactly once, and it names
 * the host that claimed it. */
static void
two_hosts_never_claim_one_target(void)
{
	struct queue *a = fresh_queue(), *b;
	struct claimer ca = { 0 }, cb = { 0 };
	struct slot sa[IN_FLIGHT], sb[IN_FLIGHT];
	struct job *jobs[NJOBS];
	int64_t all[2 * (NTARGETS + 1)];
	size_t n = 0;
	char sql[128];

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	queue_set_host(a, "host-a");
	for (int i = 0; i < NJOBS; i++)
		jobs[i] = job_of(PER_JOB);
	CHECK_INT(qs_submit(a, jobs, NJOBS), 0);
	for (int i = 0; i < NJOBS; i++)
		job_free(jobs[i]);
	qs_attach(b);
	ca.q = a;
	cb.q = b;
	for (int i = 0; i < IN_FLIGHT; i++) {
		sa[i] = (struct slot){ &ca, i };
		sb[i] = (struct slot){ &cb, i };
		ca.running++;
		cb.running++;
		queue_claim(a, &ca.c[i], claimed, &sa[i]);
		queue_claim(b, &cb.c[i], claimed, &sb[i]);
	}
	while (ca.running > 0 || cb.running > 0)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(ca.errors, 0);
	CHECK_INT(cb.errors, 0);
	CHECK_INT(ca.n + cb.n, NTARGETS);
	/* Both took part (the claims interleave on the server). */
	CHECK(ca.n > 0 && cb.n > 0);
	memcpy(all, ca.got, ca.n * sizeof *all);
	memcpy(all + ca.n, cb.got, cb.n * sizeof *all);
	n = ca.n + cb.n;
	qsort(all, n, sizeof *all, cmp_id);
	for (size_t i = 1; i < n; i++)
		if (all[i] == all[i - 1]) {
			CHECK_INT(all[i], -1);	/* claimed twice */
			break;
		}
	CHECK_INT(sql_int("SELECT count(*) FROM job_targets WHERE "
	    "state = 'running' AND attempt = 1"), NTARGETS);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM job_targets WHERE "
	    "host = 'host-a'");
	CHECK_INT(sql_int(sql), ca.n);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM job_targets WHERE "
	    "host = 'host-b'");
	CHECK_INT(sql_int(sql), cb.n);
	qs_close(b);
	qs_close(a);
}

/* --- counts ----------------------------------------------------------- */

static void
counts_see_the_other_host(void)
{
	struct queue *a = fresh_queue(), *b;
	int64_t n = -1;
	uint64_t end;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	qs_attach(a);
	CHECK_INT(queue_count_jobs(a, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 0);
	for (int i = 0; i < 3; i++)
		submit1(b, make_job(0, "linux/amd64", "linux/arm64", NULL));
	/* b's own counts follow its writes at once. */
	CHECK_INT(queue_count_jobs(b, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 3);
	/* a's come with its next refresh (every few seconds); the bound
	 * only keeps a broken refresh from hanging the test. */
	end = uv_hrtime() / 1000000 + 30000;
	do {
		uv_run(qs_loop(), UV_RUN_ONCE);
		queue_count_jobs(a, JOB_QUEUED, &n);
	} while (n != 3 && uv_hrtime() / 1000000 < end);
	CHECK_INT(n, 3);
	CHECK_INT(queue_count_targets(a, TARGET_QUEUED, &n), 0);
	CHECK_INT(n, 6);
	qs_close(b);
	qs_close(a);
}

/* --- finishing a job from two hosts ----------------------------------- */

#define RACES 100

struct fin {
	enum job_state js;
	int rc, done;
};

static void
finished(void *data, int rc)
{
	struct fin *f = data;

	f->rc = rc;
	f->done = 1;
}

/* Each job's two targets run on the two hosts, and both finish at once:
 * of the two finishes exactly one sees the job succeed, and the job is
 * to be signed once. */
static void
last_two_finishes_end_the_job_once(void)
{
	struct queue *a = fresh_queue(), *b;
	struct queue_claim ca[RACES], cb[RACES];
	struct fin fa[RACES], fb[RACES];
	struct queue_outcome ok = { .state = TARGET_SUCCEEDED,
	    .exit_status = 0 };
	int ended = 0;
	bool all_done;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	queue_set_host(a, "host-a");
	for (int i = 0; i < RACES; i++) {
		int64_t id = submit1(a, make_job(0, "linux/amd64",
		    "linux/arm64", NULL));

		CHECK_INT(qs_claim_job(a, id, &ca[i]), 0);
		CHECK_INT(qs_claim_job(b, id, &cb[i]), 0);
	}
	memset(fa, 0, sizeof fa);
	memset(fb, 0, sizeof fb);
	for (int i = 0; i < RACES; i++) {
		queue_finish_build(a, ca[i].target_id, ca[i].attempt, &ok,
		    &fa[i].js, finished, &fa[i]);
		queue_finish_build(b, cb[i].target_id, cb[i].attempt, &ok,
		    &fb[i].js, finished, &fb[i]);
	}
	do {
		uv_run(qs_loop(), UV_RUN_ONCE);
		all_done = true;
		for (int i = 0; i < RACES; i++)
			all_done = all_done && fa[i].done && fb[i].done;
	} while (!all_done);
	for (int i = 0; i < RACES; i++) {
		int k = (fa[i].js == JOB_SUCCEEDED) +
		    (fb[i].js == JOB_SUCCEEDED);

		CHECK_INT(fa[i].rc, 0);
		CHECK_INT(fb[i].rc, 0);
		CHECK_INT(k, 1);
		CHECK(fa[i].js == JOB_RUNNING || fb[i].js == JOB_RUNNING);
		ended += k;
	}
	CHECK_INT(ended, RACES);
	CHECK_INT(sql_int("SELECT count(*) FROM jobs WHERE state = "
	    "'succeeded' AND sign_pending = 1"), RACES);
	qs_close(b);
	qs_close(a);
}

/* --- recovery and leases ---------------------------------------------- */

/* Host a crashed: its recovery takes back its build, not host b's. */
static void
recover_takes_back_only_its_own(void)
{
	struct queue *a = fresh_queue(), *b;
	struct queue_claim c1, c2;
	struct job *j;
	int requeued = -1, failed = -1;
	int64_t id;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	queue_set_host(a, "host-a");
	id = submit1(a, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_claim(a, &c1), 0);
	CHECK_INT(qs_claim(b, &c2), 0);
	CHECK_INT(queue_recover(a, 3, &requeued, &failed), 0);
	CHECK_INT(requeued, 1);
	CHECK_INT(failed, 0);
	/* The recovery's changes are in a's counts at once. */
	{
		int64_t n = -1;

		CHECK_INT(queue_count_targets(a, TARGET_QUEUED, &n), 0);
		CHECK_INT(n, 1);
		CHECK_INT(queue_count_targets(a, TARGET_RUNNING, &n), 0);
		CHECK_INT(n, 1);
	}
	j = get(a, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		CHECK_INT(j->targets[0].attempt, 1);
		CHECK_INT(j->targets[1].state, TARGET_RUNNING);
		CHECK_STR(j->targets[1].host, "host-b");
		job_free(j);
	}
	/* b goes on undisturbed; a's target is claimed again (2nd run). */
	CHECK_INT(qs_heartbeat(b, c2.target_id, c2.attempt), 0);
	CHECK_INT(qs_claim(b, &c1), 0);
	CHECK_INT(c1.attempt, 2);
	qs_close(b);
	qs_close(a);
}

/* Host a stopped reporting: host b finds its build stale and takes it
 * back; a late heartbeat or finish of a's is refused. */
static void
the_other_host_reclaims_a_lost_build(void)
{
	struct queue *a = fresh_queue(), *b;
	struct queue_claim c, c2;
	struct queue_outcome ok = { .state = TARGET_SUCCEEDED,
	    .exit_status = 0 };
	int64_t stale[4], cut;
	size_t n = 0;
	struct fin f = { 0 };

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	queue_set_host(a, "host-a");
	submit1(a, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(a, &c), 0);
	cut = util_now_ms() + QUEUE_LEASE_MS + 1000;
	CHECK_INT(qs_stale_targets(b, 0, stale, 4, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(qs_stale_targets(b, cut, stale, 4, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(stale[0], c.target_id);
	queue_reclaim(b, c.target_id, cut, 3, finished, &f);
	while (!f.done)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(f.rc, 0);
	/* Once more: it is no longer running. */
	f.done = 0;
	queue_reclaim(b, c.target_id, cut, 3, finished, &f);
	while (!f.done)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(f.rc, QUEUE_ENOTFOUND);
	CHECK_INT(qs_heartbeat(a, c.target_id, c.attempt), QUEUE_ECONFLICT);
	CHECK_INT(qs_finish_build(a, c.target_id, c.attempt, &ok, NULL),
	    QUEUE_ECONFLICT);
	CHECK_INT(qs_claim(b, &c2), 0);
	CHECK_INT(c2.attempt, 2);
	/* a, later still, against b's run: refused, b's stands. */
	CHECK_INT(qs_finish_build(a, c.target_id, c.attempt, &ok, NULL),
	    QUEUE_ECONFLICT);
	CHECK_INT(qs_heartbeat(a, c.target_id, c.attempt), QUEUE_ECONFLICT);
	CHECK_INT(qs_release(a, c.target_id, c.attempt), QUEUE_ECONFLICT);
	CHECK_INT(qs_finish_build(b, c2.target_id, c2.attempt, &ok, NULL), 0);
	qs_close(b);
	qs_close(a);
}

/* Host a holds its build for a's lease, not for the reader's: b with a
 * short lease does not take back what a holds for longer. */
static void
a_lease_is_its_holders(void)
{
	struct queue *a = fresh_queue(), *b;
	struct queue_claim c;
	int64_t stale[4];
	size_t n = 9;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	queue_set_host(a, "host-a");
	queue_set_lease(a, 600000);
	queue_set_lease(b, 5000);
	submit1(a, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(a, &c), 0);
	CHECK_INT(qs_stale_targets(b, util_now_ms() + 61000, stale, 4, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(qs_reclaim(b, c.target_id, util_now_ms() + 61000, 3),
	    QUEUE_ENOTFOUND);
	CHECK_INT(qs_stale_targets(b, util_now_ms() + 601000, stale, 4, &n),
	    0);
	CHECK_INT(n, 1);
	CHECK_INT(qs_reclaim(b, c.target_id, util_now_ms() + 601000, 3), 0);
	qs_close(b);
	qs_close(a);
}

/*
 * One push delivered to two hosts (a forge's redelivery through a load
 * balancer): each looked it up before the other committed, so both
 * submit.  The second is refused, whether by its delivery id or by its
 * push under another id, and only the first job is on record.
 */
static struct job *
hook_job(const char *delivery)
{
	struct job *j = make_job(0, "linux/amd64", NULL);

	j->project = xstrdup("app");
	j->commit = xstrdup("0123456789abcdef0123456789abcdef01234567");
	j->delivery_forge = xstrdup("github");
	j->delivery_id = xstrdup(delivery);
	return j;
}

static void
a_delivery_makes_one_job_across_hosts(void)
{
	struct queue *a = fresh_queue(), *b;
	struct job *j;
	int64_t first = 0, id = 0;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	qs_attach(b);
	j = hook_job("d-1");
	CHECK_INT(qs_submit(a, &j, 1), 0);
	first = j->id;
	job_free(j);
	j = hook_job("d-1");
	CHECK_INT(qs_submit(b, &j, 1), QUEUE_ECONFLICT);
	job_free(j);
	j = hook_job("d-2");
	CHECK_INT(qs_submit(b, &j, 1), QUEUE_ECONFLICT);
	job_free(j);
	CHECK_INT(sql_int("SELECT count(*) FROM jobs"), 1);
	CHECK_INT(qs_delivery_job(b, "github", "d-1", &id), 0);
	CHECK_INT(id, first);
	qs_close(b);
	qs_close(a);
}

/* --- what a build leaves ---------------------------------------------- */

static const char sha_a[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char sha_b[] =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char sha_s[] =
    "5555555555555555555555555555555555555555555555555555555555555555";

/*
 * The cache answers the newest equal build and the job that built it
 * (through a reuse); a build with a file of no digest is not reusable;
 * the artifacts and the signature name their host; the sweep sees every
 * digest, in byte order; retention expires and the cache forgets.
 */
static void
cache_signing_and_retention(void)
{
	struct queue *q = fresh_queue();
	struct artifact built[2] = { { "app", 10, (char *)sha_b },
	    { "README", 3, (char *)sha_a } };
	struct artifact nodigest = { "old", 1, NULL };
	struct queue_outcome o = { .state = TARGET_SUCCEEDED,
	    .exit_status = 0, .arts = built, .narts = 2, .cache_key = "k1" };
	struct queue_retention keep1 = { 1, 0, 0 };
	struct queue_claim c;
	struct artifact *arts = NULL;
	size_t narts = 0, n = 0;
	int64_t j1, j2, j3, from = 0, *ids = NULL;
	char **hex = NULL;
	enum job_state js = JOB_QUEUED;

	if (q == NULL)
		return;
	queue_set_host(q, "host-a");
	CHECK_INT(qs_cache_lookup(q, "k1", &arts, &narts, &from),
	    QUEUE_ENOTFOUND);
	j1 = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_finish_build(q, c.target_id, c.attempt, &o, &js), 0);
	CHECK_INT(js, JOB_SUCCEEDED);
	CHECK_INT(qs_cache_lookup(q, "k1", &arts, &narts, &from), 0);
	CHECK_INT(from, j1);
	CHECK_INT(narts, 2);
	if (narts == 2) {
		/* By name, in byte order: upper case first. */
		CHECK_STR(arts[0].name, "README");
		CHECK_STR(arts[0].sha256, sha_a);
		CHECK_STR(arts[1].name, "app");
		CHECK_INT(arts[1].size, 10);
	}
	artifacts_free(arts, narts);
	CHECK_INT(sql_int("SELECT count(*) FROM artifacts WHERE "
	    "host = 'host-a'"), 2);

	/* A reuse: the cache then names the job that built. */
	j2 = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	o.cached = true;
	o.cached_from = j1;
	CHECK_INT(qs_finish_build(q, c.target_id, c.attempt, &o, NULL), 0);
	from = 0;
	CHECK_INT(qs_cache_lookup(q, "k1", &arts, &narts, &from), 0);
	CHECK_INT(from, j1);
	artifacts_free(arts, narts);
	CHECK_INT(sql_int("SELECT max(id) FROM job_targets WHERE "
	    "cache_key = 'k1' AND cached = 1"), c.target_id);

	/* A newer equal build with a file of no digest is not reusable. */
	j3 = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	o = (struct queue_outcome){ .state = TARGET_SUCCEEDED,
	    .exit_status = 0, .arts = &nodigest, .narts = 1,
	    .cache_key = "k1" };
	CHECK_INT(qs_finish_build(q, c.target_id, c.attempt, &o, NULL), 0);
	CHECK_INT(qs_cache_lookup(q, "k1", &arts, &narts, &from),
	    QUEUE_ENOTFOUND);
	CHECK(arts == NULL);
	CHECK_INT(narts, 0);

	/* Signing, once per job, naming the host. */
	CHECK_INT(qs_unsigned_jobs(q, &ids, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3)
		CHECK_INT(ids[0], j1);
	free(ids);
	CHECK_INT(qs_set_signed(q, j1, sha_s, sha_s, sha_s), 0);
	CHECK_INT(qs_set_signed(q, j3 + 1, sha_s, sha_s, sha_s),
	    QUEUE_ENOTFOUND);
	CHECK_INT(sql_int("SELECT count(*) FROM jobs WHERE "
	    "signed_by = 'host-a'"), 1);
	/* A host that read j1 as unsigned and signed it too comes second:
	 * refused, the first signature stands. */
	CHECK_INT(qs_set_signed(q, j1, sha_a, sha_a, sha_a), QUEUE_ECONFLICT);
	CHECK_INT(sql_int("SELECT count(*) FROM jobs WHERE "
	    "sig_sha256 = repeat('5', 64) AND sums_sha256 = sig_sha256"), 1);
	CHECK_INT(queue_referenced_blobs(q, &hex, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(hex[0], sha_s);
		CHECK_STR(hex[1], sha_a);
		CHECK_STR(hex[2], sha_b);
	}
	for (size_t i = 0; i < n; i++)
		free(hex[i]);
	free(hex);

	/* Keep one job per repository: j1 and j2 go, their files and the
	 * signature with them, and the cache forgets them. */
	CHECK_INT(qs_expire(q, &keep1, util_now_ms(), &ids, &n), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(ids[0], j1);
		CHECK_INT(ids[1], j2);
	}
	free(ids);
	CHECK_INT(qs_set_signed(q, j1, sha_s, sha_s, sha_s), QUEUE_ENOTFOUND);
	CHECK_INT(queue_referenced_blobs(q, &hex, &n), 0);
	CHECK_INT(n, 0);
	free(hex);
	CHECK_INT(sql_int("SELECT count(*) FROM jobs WHERE "
	    "expired_at IS NOT NULL"), 2);
	CHECK_INT(sql_int("SELECT count(*) FROM job_targets WHERE "
	    "cache_key IS NOT NULL"), 1);
	/* Expiring again changes nothing. */
	CHECK_INT(qs_expire(q, &keep1, util_now_ms(), &ids, &n), 0);
	CHECK_INT(n, 0);
	free(ids);
	qs_close(q);
}

static void
count_change(void *data)
{
	(*(int *)data)++;
}

static void
deadline_passed(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop until *n reaches want or `ms` passed; *n then. */
static int
changes_within(int *n, int want, uint64_t ms)
{
	uv_timer_t t;
	int late = 0;

	uv_timer_init(qs_loop(), &t);
	t.data = &late;
	uv_timer_start(&t, deadline_passed, ms, 0);
	while (*n < want && !late)
		uv_run(qs_loop(), UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(qs_loop(), UV_RUN_NOWAIT);
	return *n;
}

/*
 * Host b watches: it is told once when it subscribed, then once after
 * host a's submission of two jobs in one call, and once after a gives a
 * target back -- never for a claim, which adds no work.
 */
static void
the_other_host_is_told_of_new_work(void)
{
	struct queue *a = fresh_queue(), *b;
	struct queue_claim c;
	struct job *jobs[2];
	int n = 0;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	CHECK(queue_shared(a));
	qs_attach(a);
	qs_attach(b);
	queue_watch(b, count_change, &n);
	CHECK_INT(changes_within(&n, 1, 10000), 1);	/* subscribed */
	n = 0;
	jobs[0] = make_job(0, "linux/amd64", NULL);
	jobs[1] = make_job(0, "linux/arm64", NULL);
	CHECK_INT(qs_submit(a, jobs, 2), 0);
	job_free(jobs[0]);
	job_free(jobs[1]);
	CHECK_INT(changes_within(&n, 1, 10000), 1);
	/* Coalesced: one transaction, one call, however long we wait. */
	CHECK_INT(changes_within(&n, 2, 300), 1);
	n = 0;
	CHECK_INT(qs_claim(a, &c), 0);
	CHECK_INT(changes_within(&n, 1, 300), 0);
	CHECK_INT(qs_release(a, c.target_id, c.attempt), 0);
	CHECK_INT(changes_within(&n, 1, 10000), 1);
	/* Unwatched: no more calls. */
	queue_watch(b, NULL, NULL);
	n = 0;
	submit1(a, make_job(0, "linux/386", NULL));
	CHECK_INT(changes_within(&n, 1, 300), 0);
	qs_close(b);
	qs_close(a);
}

struct cancels {
	int n;
	int64_t job_id;
};

static void
record_cancel(void *data, int64_t job_id)
{
	struct cancels *c = data;

	c->n++;
	c->job_id = job_id;
}

/*
 * Host a cancels a job whose target runs (on host b): b is told at once,
 * with the job's id.  A cancel with nothing running tells nobody; an
 * unwatched host is not told.
 */
static void
the_other_host_is_told_of_a_cancel(void)
{
	struct queue *a = fresh_queue(), *b;
	struct queue_claim c;
	struct cancels got = { 0, 0 };
	size_t nrunning = 0;
	int changed = 0;
	int64_t id, idle_id, third;

	if (a == NULL || (b = other_host("host-b")) == NULL) {
		queue_close(a);
		return;
	}
	qs_attach(a);
	qs_attach(b);
	/* A cancel sent before b listens is not told (the heartbeat tells
	 * it then).  Every LISTEN of b's pool names all its channels, and
	 * the changes' first call says one was made: wait for that. */
	queue_watch_cancels(b, record_cancel, &got);
	queue_watch(b, count_change, &changed);
	CHECK_INT(changes_within(&changed, 1, 10000), 1);
	id = submit1(a, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(b, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(got.n, 0);
	CHECK_INT(qs_cancel(a, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(changes_within(&got.n, 1, 10000), 1);
	CHECK_INT(got.job_id, id);
	/* A job with nothing running: its cancel is all done already. */
	got.n = 0;
	idle_id = submit1(a, make_job(0, "linux/arm64", NULL));
	CHECK_INT(qs_cancel(a, idle_id, &nrunning), 0);
	CHECK_INT(nrunning, 0);
	CHECK_INT(changes_within(&got.n, 1, 300), 0);
	/* Unwatched: no more calls. */
	queue_watch_cancels(b, NULL, NULL);
	third = submit1(a, make_job(0, "linux/386", NULL));
	CHECK_INT(qs_claim(a, &c), 0);
	CHECK_INT(c.job_id, third);
	CHECK_INT(qs_cancel(a, third, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(changes_within(&got.n, 1, 300), 0);
	queue_watch(b, NULL, NULL);
	qs_close(b);
	qs_close(a);
}

/* Turns of the loop until queue_reachable(q) is `want`, for up to ms. */
static bool
reachable_within(struct queue *q, bool want, int ms)
{
	uint64_t end = uv_hrtime() / 1000000 + (uint64_t)ms;

	while (queue_reachable(q) != want && uv_hrtime() / 1000000 < end) {
		uv_run(qs_loop(), UV_RUN_NOWAIT);
		usleep(10000);
	}
	return queue_reachable(q) == want;
}

/*
 * /healthz and kiln_queue_up say whether a host's PostgreSQL answers:
 * queue_reachable() follows the server down and, once the pool has
 * reconnected, up again.
 */
static void
reachable_follows_the_server(void)
{
	struct queue *q = fresh_queue();
	int64_t id;

	if (q == NULL)
		return;
	qs_attach(q);
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK(id > 0);
	CHECK(reachable_within(q, true, 10000));
	CHECK_INT(cluster("stop", "fast"), 0);
	CHECK(reachable_within(q, false, 10000));
	CHECK_INT(cluster("start", NULL), 0);
	CHECK(reachable_within(q, true, 30000));
	qs_close(q);
}

UNIT_MAIN(
	TEST(cluster_starts),
	TEST(two_hosts_never_claim_one_target),
	TEST(counts_see_the_other_host),
	TEST(last_two_finishes_end_the_job_once),
	TEST(recover_takes_back_only_its_own),
	TEST(the_other_host_reclaims_a_lost_build),
	TEST(a_lease_is_its_holders),
	TEST(the_other_host_is_told_of_new_work),
	TEST(the_other_host_is_told_of_a_cancel),
	TEST(cache_signing_and_retention),
	TEST(a_delivery_makes_one_job_across_hosts),
	TEST(reachable_follows_the_server),
	TEST(cluster_stops)
)
