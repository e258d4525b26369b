/*
 * What becomes of a build's files: publication of a succeeded build
 * into the store (checked, hashed and stored on the thread pool), and
 * the build cache, which reuses an equal build's artifacts instead of
 * building the target again.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "metrics.h"
#include "outputs.h"
#include "sched-int.h"
#include "toolid.h"
#include "util.h"
#include "xmalloc.h"

/*
 * Publication of a succeeded build: kilnd (never the sandbox) checks
 * the out directory, hashes and stores every file; the target stays
 * running, holding its slot, until it is done.  Then the work tree
 * goes, on a task of its own.
 */
struct publish_task {
	uv_work_t req;
	struct starget *st;
	char *dir, *root;
	struct store_limits lim;
	struct artifact *arts;
	size_t narts;
	int code;
	int rc;
	char why[512];
	int64_t start_ms;		/* for the log */
};

static void
publish_work(uv_work_t *req)
{
	struct publish_task *t = req->data;
	struct sched *s = t->st->s;

	t->rc = store_publish_dir(s->store, t->dir, &t->lim, &t->arts,
	    &t->narts, t->why, sizeof t->why);
}

static void
publish_after(uv_work_t *req, int status)
{
	struct publish_task *t = req->data;
	struct starget *st = t->st;
	struct sched *s = st->s;
	uint64_t bytes = 0;

	(void)status;
	st->busy = false;
	for (size_t i = 0; i < t->narts; i++)
		bytes += (uint64_t)t->arts[i].size;
	/* Stage times for the operator (bench/matrix reads them). */
	log_debug("job %" PRId64 " %s: kiln-worker ran %" PRId64 " ms; "
	    "publish %" PRId64 " ms", st->claim.job_id, st->t.name,
	    t->start_ms - st->start_ms, util_now_ms() - t->start_ms);
	/* The work tree goes on a task of its own: the target's result and
	 * its slot do not wait for it. */
	remove_tree(s, t->root);
	if (t->rc == 0)
		log_line(st, "published %zu file(s), %" PRIu64 " bytes",
		    t->narts, bytes);
	else
		log_line(st, "not published: %s", t->why);
	end_target(st, t->rc == 0 ? TARGET_SUCCEEDED : TARGET_FAILED,
	    t->code, t->rc == 0 ? NULL : t->why, t->arts, t->narts);
	artifacts_free(t->arts, t->narts);
	free(t->dir);
	free(t->root);
	free(t);
	task_done(s);
}

void
start_publish(struct starget *st, int code)
{
	struct publish_task *t = xcalloc(1, sizeof *t);

	t->req.data = t;
	t->st = st;
	t->code = code;
	t->start_ms = util_now_ms();
	t->dir = xasprintf("%s/out", st->root);
	t->root = xstrdup(st->root);
	t->lim.max_files = st->s->conf->max_artifacts;
	t->lim.max_bytes = (int64_t)st->s->conf->max_artifact_size;
	t->lim.budget = &st->j->output;
	t->lim.max_total = (int64_t)st->s->conf->max_job_output_size;
	st->busy = true;
	queue_task(st->s, &t->req, publish_work, publish_after);
}

/* --- the build cache ---------------------------------------------------------- */

/*
 * A target is not built again when an equal build succeeded on this farm:
 * same commit, target, recipe and toolchain identity (and kiln version,
 * whose worker sets the build's environment).
 */
static char *
cache_key(const struct sjob *j, const struct starget *st, const char *tool)
{
	crypto_hash_sha256_state h;
	unsigned char d[crypto_hash_sha256_BYTES];
	/*
	 * What makes the result trusted, not only equal: the repository's
	 * identity (a fork holding the commit is another repository, whose
	 * builds had other caches), the project, the network setting and
	 * the trust class (whose caches the build read).
	 * The tag and branch reach the binary through templates
	 * ({{.Version}}, {{.Branch}}); vendored changes -mod.
	 */
	char *id = util_repo_identity(j->job->repo);
	const char *parts[] = { "kiln-build-cache-v4", PACKAGE_VERSION,
	    j->job->commit, st->t.name, j->recipe, tool,
	    j->plan.tag ? j->plan.tag : "", j->plan.branch ? j->plan.branch : "",
	    j->plan.vendored ? "vendored" : "modules", id,
	    j->job->project ? j->job->project : "",
	    j->job->network ? "network" : "offline", trust_word(j) };
	char hex[65];

	crypto_hash_sha256_init(&h);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		/* With the NUL: no two splits give the same bytes. */
		crypto_hash_sha256_update(&h, (const unsigned char *)parts[i],
		    strlen(parts[i]) + 1);
	crypto_hash_sha256_final(&h, d);
	sodium_bin2hex(hex, sizeof hex, d, sizeof d);
	free(id);
	return xstrdup(hex);
}

struct ident_task {
	uv_work_t req;
	struct starget *st;
	char *recipe;
	char *triple;
	char *go;			/* the chosen go binary, or NULL */
	char *id;
	char why[256];
	struct artifact *arts;		/* the cache lookup's answer */
	size_t narts;
	int64_t from_job;
};

/* Its target may be freed already: s is passed. */
static void
ident_free(struct sched *s, struct ident_task *t)
{
	artifacts_free(t->arts, t->narts);
	free(t->recipe);
	free(t->triple);
	free(t->go);
	free(t->id);
	free(t);
	task_done(s);
}

/*
 * Before a build starts: a drain gives the target back to the queue, a
 * stop or a cancel ends it.  True when it ended so.
 */
bool
ended_before_start(struct starget *st)
{
	struct sched *s = st->s;

	if (s->draining && !s->stopping && !st->cancel) {
		/* Draining: it has not started; the next start builds it. */
		st->release = true;
		end_target(st, TARGET_QUEUED, -1, NULL, NULL, 0);
		return true;
	}
	if (s->stopping || st->cancel) {
		end_target(st, TARGET_CANCELED, -1, "canceled before it started",
		    NULL, 0);
		return true;
	}
	return false;
}

/*
 * The blobs of a cache hit, marked as just used: a retention sweep that
 * runs now keeps them (it deletes only blobs older than its grace); one
 * already gone makes the hit unusable.
 */
static bool
reusable(struct sched *s, const struct artifact *arts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (store_touch(s->store, arts[i].sha256) != 0)
			return false;
	return true;
}

/*
 * The log of a target that runs no build (reused, or its job failed
 * before building), opened with its first line; false when it cannot
 * be written (the target's result is recorded all the same).
 */
bool
open_unbuilt_log(struct starget *st)
{
	char *lp = log_path(st->s, st->j->job->id, st->url_name);
	char *logdir = state_path(st->s, "logs/%" PRId64, st->j->job->id);

	if (util_mkdir_p(logdir, 0750) == 0 && log_create(st, lp) == 0)
		log_line(st, "job %" PRId64 " target %s, commit %s",
		    st->j->job->id, st->t.name, st->j->job->commit);
	free(lp);
	free(logdir);
	return st->log_fd >= 0;
}

/* A reused target's log says where its files came from. */
static void
cached_log(struct starget *st)
{
	if (open_unbuilt_log(st))
		log_line(st, "cached: not built again: job %" PRId64 " built "
		    "it from the same repository, commit, recipe, toolchain, "
		    "project and network setting", st->cached_from);
}

static void
ident_work(uv_work_t *req)
{
	struct ident_task *t = req->data;

	t->id = toolid_for(t->recipe, t->triple, t->go, t->why, sizeof t->why);
}

/*
 * The cache lookup answered.  The target stayed busy meanwhile, so that
 * a cancel or a stop left it to this completion (sched_cancel,
 * sched_shutdown), and the task (s->works) kept the scheduler from
 * being freed; what changed meanwhile is looked at again here.
 */
static void
cache_looked(void *data, int rc)
{
	struct ident_task *t = data;
	struct starget *st = t->st;
	struct sched *s = st->s;
	bool hit = rc == 0;

	st->busy = false;
	if (ended_before_start(st)) {
		ident_free(s, t);
		return;
	}
	metrics_cache(hit);
	if (hit && !reusable(s, t->arts, t->narts)) {
		/* On a farm, most likely another host's build: its files
		 * are in that host's store, unless the hosts share one. */
		log_warn("job %" PRId64 " %s: an equal build is on record "
		    "but its files are not in this host's store%s; building",
		    st->claim.job_id, st->t.name, queue_shared(s->q) ?
		    " (another host's build? hosts that share one store "
		    "reuse each other's)" : "");
		hit = false;
	}
	if (hit) {
		st->cached = true;
		st->cached_from = t->from_job;
		record_toolchain(st);
		log_info("job %" PRId64 " %s: cached (job %" PRId64 " built "
		    "it: %.12s; %s)", st->claim.job_id, st->t.name,
		    st->cached_from, st->j->job->commit, t->id);
		cached_log(st);
		end_target(st, TARGET_SUCCEEDED, -1, NULL, t->arts, t->narts);
	} else
		spawn_build(st);
	ident_free(s, t);
}

static void
ident_after(uv_work_t *req, int status)
{
	struct ident_task *t = req->data;
	struct starget *st = t->st;
	struct sched *s = st->s;

	(void)status;
	st->busy = false;
	if (ended_before_start(st))
		;
	else if (t->id == NULL) {
		log_info("job %" PRId64 " %s: not cached: %s", st->claim.job_id,
		    st->t.name, t->why);
		spawn_build(st);
	} else {
		st->toolid = xstrdup(t->id);
		st->cache_key = cache_key(st->j, st, t->id);
		/* Busy again, and the task not done, until it answers. */
		st->busy = true;
		queue_cache_lookup(s->q, st->cache_key, &t->arts, &t->narts,
		    &t->from_job, cache_looked, t);
		return;
	}
	ident_free(s, t);
}

/* Build the target, unless an equal build's artifacts can be reused. */
void
launch(struct starget *st)
{
	struct ident_task *t;

	if (st->packaging) {
		spawn_package(st);
		return;
	}
	if (plan_refuses(st))
		return;		/* left to a host that can build it */
	/* A verifying rebuild proves what it builds: no cache hit. */
	if (!st->j->job->cache || st->j->job->commit == NULL ||
	    st->j->recipe == NULL || outputs_verify_rebuild(st->j->job->outputs)) {
		spawn_build(st);
		return;
	}
	t = xcalloc(1, sizeof *t);
	t->req.data = t;
	t->st = st;
	t->recipe = xstrdup(st->j->recipe);
	{
		const char *tr = conf_toolchain(st->s->conf, st->t.name);
		t->triple = tr ? xstrdup(tr) : NULL;
	}
	t->go = st->j->plan.go_path ? xstrdup(st->j->plan.go_path) : NULL;
	st->busy = true;
	queue_task(st->s, &t->req, ident_work, ident_after);
}
