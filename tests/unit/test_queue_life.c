/*
 * The queue's contract, part two: what happens after builds -- recovery
 * after a crash, release, a failed job, the commit, counts, webhook
 * pushes, durability across close, retention by size.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "daemon/db/queue.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "queuefix.h"
#include "unit.h"

static void
test_recover_requeues_then_fails(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int requeued = -1, failed = -1;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	/* Nothing running: nothing to do. */
	CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
	CHECK_INT(requeued, 0);
	CHECK_INT(failed, 0);

	for (int attempt = 1; attempt <= 3; attempt++) {
		CHECK_INT(qs_claim(q, &c), 0);
		CHECK_INT(c.job_id, id);
		CHECK_INT(c.attempt, attempt);
		/* kilnd "crashes" here. */
		CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
		j = get(q, id);
		if (j == NULL)
			break;
		if (attempt < 3) {
			CHECK_INT(requeued, 1);
			CHECK_INT(failed, 0);
			CHECK_INT(j->state, JOB_QUEUED);
			CHECK_INT(j->targets[0].state, TARGET_QUEUED);
			CHECK_INT(j->targets[0].attempt, attempt);
			CHECK_INT(j->targets[0].started_at, 0);
		} else {
			CHECK_INT(requeued, 0);
			CHECK_INT(failed, 1);
			CHECK_INT(j->state, JOB_FAILED);
			CHECK(j->finished_at > 0);
			CHECK_INT(j->targets[0].state, TARGET_FAILED);
			CHECK(j->targets[0].error != NULL &&
			    strstr(j->targets[0].error, "interrupted") != NULL);
		}
		job_free(j);
	}
	CHECK_INT(qs_claim(q, &c), QUEUE_EEMPTY);
	qs_close(q);
}

static void
test_recover_keeps_other_targets(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c1, c2;
	struct job *j;
	int requeued = -1, failed = -1;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c1), 0);
	CHECK_INT(qs_finish(q, c1.target_id, c1.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
	CHECK_INT(requeued, 1);
	CHECK_INT(failed, 0);
	j = get(q, id);
	if (j != NULL) {
		/* One ended, one waiting again: the job is under way. */
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->targets[0].state, TARGET_SUCCEEDED);
		CHECK_INT(j->targets[1].state, TARGET_QUEUED);
		job_free(j);
	}
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(c2.attempt, 2);
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_SUCCEEDED);
		job_free(j);
	}
	qs_close(q);
}

/*
 * A job canceled while a target ran, then kilnd stopped before that
 * target was finished as canceled: after recovery the job must not build
 * again.
 */
static void
test_recover_after_cancel_does_not_rebuild(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int requeued = -1, failed = -1;
	size_t nrunning = 0;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	/* kilnd "crashes" before finishing the target. */
	CHECK_INT(queue_recover(q, 3, &requeued, &failed), 0);
	CHECK_INT(qs_claim(q, &c), QUEUE_EEMPTY);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		job_free(j);
	}
	qs_close(q);
}

/* kilnd stopping gives a running target back, unless its job was
 * canceled: then it ends canceled, and nothing can claim it. */
static void
test_release_requeues_but_not_canceled(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	size_t nrunning = 0;
	int64_t id, id2;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.attempt, 1);
	CHECK_INT(qs_release(q, c.target_id, c.attempt), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		CHECK_INT(j->targets[0].attempt, 0);	/* did not count */
		job_free(j);
	}
	CHECK_INT(qs_release(q, c.target_id, c.attempt), QUEUE_ECONFLICT);
	CHECK_INT(qs_release(q, c.target_id + 1000, 1), QUEUE_ENOTFOUND);

	id2 = submit1(q, make_job(0, "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);	/* id's target again */
	CHECK_INT(c.job_id, id);
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(qs_release(q, c.target_id, c.attempt), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		CHECK(j->finished_at > 0);
		job_free(j);
	}
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id2);		/* never the canceled one */
	qs_close(q);
}

/*
 * A cancel told by the heartbeat (on a farm, to the host that runs the
 * build when the cancel was another's and its notification was
 * missed): QUEUE_ECANCELED while the target runs, and the run still
 * holds it -- its finish as canceled applies, not superseded.
 */
static void
test_heartbeat_tells_the_cancel(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c, other;
	struct job *j;
	size_t nrunning = 0;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	submit1(q, make_job(0, "linux/arm64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id);
	CHECK_INT(qs_claim(q, &other), 0);
	CHECK(other.job_id != id);
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), 0);
	CHECK_INT(qs_cancel(q, id, &nrunning), 0);
	CHECK_INT(nrunning, 1);
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), QUEUE_ECANCELED);
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), QUEUE_ECANCELED);
	/* Another job's target is not told. */
	CHECK_INT(qs_heartbeat(q, other.target_id, other.attempt), 0);
	/* Fencing first: a stale attempt is superseded, not canceled. */
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt + 1),
	    QUEUE_ECONFLICT);
	CHECK_INT(qs_finish(q, c.target_id, c.attempt, TARGET_CANCELED, -1,
	    "canceled while it ran", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_CANCELED);
		CHECK_INT(j->targets[0].state, TARGET_CANCELED);
		job_free(j);
	}
	/* Ended: no longer running, so no longer told. */
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), QUEUE_ECONFLICT);
	qs_close(q);
}

/*
 * Fencing by attempt: a run whose lease ran out and whose target was
 * claimed again (attempt 2) can no longer write: its finish and its
 * heartbeat are refused, and nothing of it is recorded.
 */
static void
test_superseded_attempt_is_refused(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c1, c2;
	struct artifact a = { .name = "late.tar.gz", .size = 3,
	    .sha256 = "ab" };
	struct job *j;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c1), 0);
	CHECK_INT(c1.attempt, 1);
	/* Its lease ran out: a `now` past the lease makes it stale. */
	CHECK_INT(qs_reclaim(q, c1.target_id, util_now_ms() + QUEUE_LEASE_MS +
	    60000, 3), 0);
	CHECK_INT(qs_claim(q, &c2), 0);
	CHECK_INT(c2.target_id, c1.target_id);
	CHECK_INT(c2.attempt, 2);
	/* The first run comes back late. */
	CHECK_INT(qs_finish(q, c1.target_id, c1.attempt, TARGET_SUCCEEDED, 0,
	    NULL, &a, 1), QUEUE_ECONFLICT);
	CHECK_INT(qs_heartbeat(q, c1.target_id, c1.attempt), QUEUE_ECONFLICT);
	CHECK_INT(qs_release(q, c1.target_id, c1.attempt), QUEUE_ECONFLICT);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK_INT(j->targets[0].state, TARGET_RUNNING);
		CHECK_INT(j->targets[0].attempt, 2);
		CHECK_INT(j->targets[0].nartifacts, 0);
		job_free(j);
	}
	/* The current run's writes apply. */
	CHECK_INT(qs_heartbeat(q, c2.target_id, c2.attempt), 0);
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt, TARGET_FAILED, 1,
	    "it failed", NULL, 0), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK_INT(j->targets[0].state, TARGET_FAILED);
		CHECK_INT(j->targets[0].nartifacts, 0);
		job_free(j);
	}
	/* Ended: no attempt writes any more. */
	CHECK_INT(qs_finish(q, c2.target_id, c2.attempt, TARGET_SUCCEEDED, 0,
	    NULL, NULL, 0), QUEUE_ECONFLICT);
	qs_close(q);
}

/*
 * A claim holds a target for the claiming host's lease and a heartbeat
 * holds it on for the lease set then; until it runs out the target is
 * not stale and cannot be taken back.
 */
static void
test_lease_is_the_holders(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	int64_t stale[4], t0;
	size_t n = 9;

	if (q == NULL)
		return;
	queue_set_lease(q, 60000);
	submit1(q, make_job(0, "linux/amd64", NULL));
	t0 = util_now_ms();
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_stale_targets(q, t0 + 30000, stale, 4, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(qs_reclaim(q, c.target_id, t0 + 30000, 3), QUEUE_ENOTFOUND);
	CHECK_INT(qs_stale_targets(q, util_now_ms() + 61000, stale, 4, &n), 0);
	CHECK_INT(n, 1);
	/* A longer lease from the next heartbeat on. */
	queue_set_lease(q, 600000);
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), 0);
	CHECK_INT(qs_stale_targets(q, util_now_ms() + 61000, stale, 4, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(qs_stale_targets(q, util_now_ms() + 601000, stale, 4, &n),
	    0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(stale[0], c.target_id);
	CHECK_INT(qs_reclaim(q, c.target_id, util_now_ms() + 601000, 3), 0);
	CHECK_INT(qs_heartbeat(q, c.target_id, c.attempt), QUEUE_ECONFLICT);
	qs_close(q);
}

static void
test_fail_job(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	struct job *j;
	int64_t id, id2;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", "linux/arm64", NULL));
	id2 = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_fail_job(q, id, "fetch failed: no such ref"), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_FAILED);
		CHECK_STR(j->error, "fetch failed: no such ref");
		CHECK(j->finished_at > 0);
		for (size_t i = 0; i < j->ntargets; i++) {
			CHECK_INT(j->targets[i].state, TARGET_FAILED);
			CHECK_STR(j->targets[i].error,
			    "fetch failed: no such ref");
		}
		job_free(j);
	}
	CHECK_INT(qs_fail_job(q, id, "again"), QUEUE_ECONFLICT);
	CHECK_INT(qs_fail_job(q, id2 + 100, "x"), QUEUE_ENOTFOUND);
	/* The other job is untouched and is what gets claimed next. */
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(c.job_id, id2);
	j = get(q, id2);
	if (j != NULL) {
		CHECK_INT(j->state, JOB_RUNNING);
		CHECK(j->error == NULL);
		job_free(j);
	}
	qs_close(q);
}

static void
test_set_commit(void)
{
	static const char sha[] = "0123456789abcdef0123456789abcdef01234567";
	struct queue *q = fresh_queue();
	struct job *j;
	int64_t id;

	if (q == NULL)
		return;
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	j = get(q, id);
	if (j != NULL) {
		CHECK(j->trust == TRUST_UNKNOWN);
		job_free(j);
	}
	CHECK_INT(qs_set_commit(q, id, sha, TRUST_PROTECTED), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_STR(j->commit, sha);
		CHECK_STR(job_trust_name(j->trust), "protected");
		job_free(j);
	}
	CHECK_INT(qs_set_commit(q, id, sha, TRUST_UNPROTECTED), 0);
	j = get(q, id);
	if (j != NULL) {
		CHECK_STR(job_trust_name(j->trust), "unprotected");
		job_free(j);
	}
	CHECK_INT(qs_set_commit(q, id + 1, sha, TRUST_PROTECTED),
	    QUEUE_ENOTFOUND);
	qs_close(q);
}

static void
test_count_jobs(void)
{
	struct queue *q = fresh_queue();
	struct queue_claim c;
	int64_t n = -1, id;
	size_t nr;

	if (q == NULL)
		return;
	for (int i = 0; i < 4; i++)
		submit1(q, make_job(0, "linux/amd64", NULL));
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	CHECK_INT(qs_cancel(q, id, &nr), 0);
	CHECK_INT(qs_claim(q, &c), 0);
	CHECK_INT(qs_finish(q, c.target_id, c.attempt,
	    TARGET_SUCCEEDED, 0, NULL, NULL, 0), 0);
	CHECK_INT(qs_claim(q, &c), 0);

	CHECK_INT(queue_count_jobs(q, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(queue_count_jobs(q, JOB_RUNNING, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_SUCCEEDED, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_CANCELED, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(queue_count_jobs(q, JOB_FAILED, &n), 0);
	CHECK_INT(n, 0);
	qs_close(q);
}

/*
 * A webhook's job is found again by its push (project, ref, pushed
 * commit), also after the fetch peeled an annotated tag and after a
 * reopen; a job without a delivery is no push.
 */
static void
test_push_finds_the_webhook_job(void)
{
	static const char tagobj[] = "1111111111111111111111111111111111111111";
	static const char peeled[] = "2222222222222222222222222222222222222222";
	struct queue *q = fresh_queue();
	struct job *j;
	char err[512] = "";
	int64_t id, plain, got = 0;

	if (q == NULL)
		return;
	j = make_job(0, "linux/amd64", NULL);
	j->project = xstrdup("app");
	j->commit = xstrdup(tagobj);
	free(j->ref);
	j->ref = xstrdup("refs/tags/v1.0.0");
	j->delivery_forge = xstrdup("github");
	j->delivery_id = xstrdup("d-1");
	id = submit1(q, j);
	j = make_job(0, "linux/amd64", NULL);
	j->project = xstrdup("app");
	j->commit = xstrdup(peeled);
	plain = submit1(q, j);
	CHECK(plain > id);

	CHECK_INT(qs_push_job(q, "app", "refs/tags/v1.0.0", tagobj, &got),
	    0);
	CHECK_INT(got, id);
	CHECK_INT(qs_delivery_job(q, "github", "d-1", &got), 0);
	CHECK_INT(got, id);
	CHECK_INT(qs_push_job(q, "app", "refs/tags/v1.0.1", tagobj, &got),
	    QUEUE_ENOTFOUND);
	CHECK_INT(qs_push_job(q, "other", "refs/tags/v1.0.0", tagobj, &got),
	    QUEUE_ENOTFOUND);
	/* A POSTed job of the project is no push. */
	CHECK_INT(qs_push_job(q, "app", "main", peeled, &got),
	    QUEUE_ENOTFOUND);
	/* The fetch peels the tag: the push is still the tag object. */
	CHECK_INT(qs_set_commit(q, id, peeled, TRUST_PROTECTED), 0);
	CHECK_INT(qs_push_job(q, "app", "refs/tags/v1.0.0", peeled, &got),
	    QUEUE_ENOTFOUND);
	qs_close(q);

	q = NULL;
	CHECK_INT(queue_open(&q, db_path, err, sizeof err), 0);
	if (q == NULL)
		return;
	got = 0;
	CHECK_INT(qs_push_job(q, "app", "refs/tags/v1.0.0", tagobj, &got),
	    0);
	CHECK_INT(got, id);
	qs_close(q);
}

static void
test_submitted_job_survives_close(void)
{
	struct queue *q = fresh_queue();
	struct job *j;
	char err[512] = "";
	int64_t id;

	if (q == NULL)
		return;
	j = make_job(7, "linux/arm/v6", "linux/amd64/v3", NULL);
	j->recipe = xstrdup("{\"command\":\"make\",\"kind\":\"command\"}");
	id = submit1(q, j);
	qs_close(q);

	q = NULL;
	CHECK_INT(queue_open(&q, db_path, err, sizeof err), 0);
	if (q == NULL)
		return;
	j = get(q, id);
	if (j != NULL) {
		CHECK_INT(j->id, id);
		CHECK_INT(j->priority, 7);
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_STR(j->recipe, "{\"command\":\"make\",\"kind\":\"command\"}");
		CHECK_INT(j->ntargets, 2);
		if (j->ntargets == 2) {
			CHECK_STR(j->targets[0].target, "linux/arm/v6");
			CHECK_STR(j->targets[1].target, "linux/amd64/v3");
		}
		job_free(j);
	}
	/* New ids keep growing after a reopen. */
	CHECK(submit1(q, make_job(0, "linux/amd64", NULL)) > id);
	qs_close(q);
}

/* One job of one target that succeeded with one artifact of blob `sha`. */
static int64_t
job_with_blob(struct queue *q, char c, int64_t size)
{
	char sha[65];
	struct artifact a = { "app", size, sha };
	struct queue_claim cl;
	int64_t id;

	memset(sha, c, 64);
	sha[64] = '\0';
	id = submit1(q, make_job(0, "linux/amd64", NULL));
	memset(&cl, 0, sizeof cl);
	CHECK_INT(qs_claim(q, &cl), 0);
	CHECK_INT(qs_finish(q, cl.target_id, cl.attempt,
	    TARGET_SUCCEEDED, 0, NULL, &a,
	    1), 0);
	return id;
}

static size_t
expire_over(uint64_t max_bytes, int64_t **ids)
{
	struct queue *q = fresh_queue();
	struct queue_retention r = { 0, 0, max_bytes };
	size_t n = 0;

	*ids = NULL;
	if (q == NULL)
		return 0;
	/* Job 1 built blob a, job 2 reused it (a cache hit points at the
	 * same blob), job 3 built blob b: 1200 bytes in the store. */
	job_with_blob(q, 'a', 600);
	job_with_blob(q, 'a', 600);
	job_with_blob(q, 'b', 600);
	CHECK_INT(qs_expire(q, &r, (int64_t)time(NULL) * 1000, ids, &n), 0);
	qs_close(q);
	return n;
}

/*
 * The store cap counts a blob once, however many jobs share it: a reused
 * build must not make retention expire jobs that free nothing.
 */
static void
test_expire_by_size_counts_blobs_once(void)
{
	int64_t *ids = NULL;
	size_t n;

	n = expire_over(1200, &ids);
	CHECK_INT(n, 0);
	free(ids);
	/* b (job 3) and a (job 2) fit; job 1 costs nothing more. */
	n = expire_over(1250, &ids);
	CHECK_INT(n, 0);
	free(ids);
	/* Only b fits: job 2 goes, and job 1, which alone holds a then. */
	n = expire_over(1000, &ids);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(ids[0], 1);
		CHECK_INT(ids[1], 2);
	}
	free(ids);
	/* Nothing fits: all three. */
	n = expire_over(100, &ids);
	CHECK_INT(n, 3);
	free(ids);
}

UNIT_MAIN(
	TEST(test_recover_requeues_then_fails),
	TEST(test_recover_keeps_other_targets),
	TEST(test_recover_after_cancel_does_not_rebuild),
	TEST(test_release_requeues_but_not_canceled),
	TEST(test_heartbeat_tells_the_cancel),
	TEST(test_superseded_attempt_is_refused),
	TEST(test_lease_is_the_holders),
	TEST(test_fail_job),
	TEST(test_set_commit),
	TEST(test_count_jobs),
	TEST(test_push_finds_the_webhook_job),
	TEST(test_submitted_job_survives_close),
	TEST(test_expire_by_size_counts_blobs_once)
)
