/*
 * Removal, on the thread pool: work trees, and the retention sweep
 * (jobs past keep_jobs, keep_days or the store's size expire with their
 * logs; then the blobs nothing references go).
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "sched-int.h"
#include "subid.h"
#include "util.h"
#include "xmalloc.h"

/* A blob this young may belong to a publication not yet recorded. */
#define SWEEP_GRACE_MS (10 * 60 * 1000)
/* The store's directories swept by one pool task: kilnd stopping waits
 * for one such batch at most, not for the whole store. */
#define SWEEP_DIRS_PER_TASK 8

/* rm -rf of a work tree, in the background; a tree that a killed worker
 * left to a build's subordinate ids is reclaimed first (subid.h). */
struct rmtree_task {
	uv_work_t req;
	struct sched *s;
	char *path;
};

static void
rmtree_work(uv_work_t *req)
{
	struct rmtree_task *t = req->data;
	int rc = subid_rmtree(t->s->worker, t->path);

	if (rc != 0)
		log_warn("cannot remove %s: %s", t->path, strerror(-rc));
}

static void
rmtree_after(uv_work_t *req, int status)
{
	struct rmtree_task *t = req->data;
	struct sched *s = t->s;

	(void)status;
	tidy_work_dir(s, t->path);
	free(t->path);
	free(t);
	task_done(s);
}

void
remove_tree(struct sched *s, const char *path)
{
	struct rmtree_task *t = xcalloc(1, sizeof *t);

	t->req.data = t;
	t->s = s;
	t->path = xstrdup(path);
	queue_task(s, &t->req, rmtree_work, rmtree_after);
}

/* --- retention ----------------------------------------------------------------- */

/*
 * The sweep in steps, so that no step holds the write lock for long and
 * the loop never waits: select the jobs to expire (pool thread, a read),
 * expire them QUEUE_EXPIRE_BATCH at a time (the queue's writer, one short
 * transaction each), remove their logs and read what the store must keep
 * (pool thread), then sweep the store SWEEP_DIRS_PER_TASK directories at
 * a time (pool thread).  Between two steps the loop sees whether kilnd
 * is stopping: then the sweep ends there, and the next one starts over.
 */
struct sweep_task {
	uv_work_t req;
	struct sched *s;
	struct queue_retention r;
	int64_t now;
	char *logs;
	int64_t *ids;
	size_t nids, done;		/* selected; expired so far */
	char **keep;			/* digests the rows name, sorted */
	size_t nkeep;
	int64_t cutoff;			/* store_sweep_cutoff() */
	unsigned dir;			/* the store's next directory */
	struct store_stats st;
	int rc;
};

static void
sweep_free(struct sweep_task *t)
{
	struct sched *s = t->s;

	s->sweeping = false;
	for (size_t i = 0; i < t->nkeep; i++)
		free(t->keep[i]);
	free(t->keep);
	free(t->ids);
	free(t->logs);
	free(t);
	task_done(s);
}

/* The next step of t, still counted as the same task (s->works). */
static void
next_step(struct sweep_task *t, uv_work_cb work, uv_after_work_cb after)
{
	t->req.data = t;
	t->s->works--;	/* queue_task() counts it again */
	queue_task(t->s, &t->req, work, after);
}

static void
select_work(uv_work_t *req)
{
	struct sweep_task *t = req->data;

	t->rc = queue_expire_select(t->s->q, &t->r, t->now, &t->ids,
	    &t->nids);
}

static void
clean_work(uv_work_t *req)
{
	struct sweep_task *t = req->data;
	struct sched *s = t->s;

	/* Even when kilnd is stopping: an expired job is never selected
	 * again, so its logs would stay for good. */
	for (size_t i = 0; i < t->done; i++) {
		char *p = xasprintf("%s/%" PRId64, t->logs, t->ids[i]);
		util_rmtree(p);
		free(p);
	}
	/*
	 * After the expiry: what is referenced now stays referenced (a
	 * cache hit only reuses blobs of jobs that are not expired).  The
	 * cutoff before the references: a blob that a publication or a
	 * cache hit stores or touches from now on, recorded only later,
	 * is younger than it.
	 */
	t->cutoff = store_sweep_cutoff(s->store, SWEEP_GRACE_MS);
	t->rc = queue_referenced_blobs(s->q, &t->keep, &t->nkeep) == 0 ? 0 :
	    -1;
}

static void
dirs_work(uv_work_t *req)
{
	struct sweep_task *t = req->data;

	if (store_sweep_dirs(t->s->store, t->keep, t->nkeep, t->cutoff,
	    t->dir, SWEEP_DIRS_PER_TASK, &t->st) != 0)
		t->rc = -1;
	t->dir += SWEEP_DIRS_PER_TASK;
}

static void dirs_after(uv_work_t *req, int status);

/* The next batch of the store's directories, or the end of the sweep. */
static void
sweep_dirs(struct sweep_task *t)
{
	struct sched *s = t->s;

	if (t->dir < STORE_DIRS && !s->stopping) {
		next_step(t, dirs_work, dirs_after);
		return;
	}
	if (t->dir < STORE_DIRS)
		log_info("retention: %zu job(s) expired; kilnd is stopping: "
		    "the store's sweep stops after %u of its %u directories "
		    "(%" PRIu64 " blob(s) removed), the next sweep goes through "
		    "it all", t->done, t->dir, STORE_DIRS, t->st.removed);
	else if (t->rc != 0)
		log_error("retention sweep failed (%" PRIu64 " blob(s) "
		    "removed)", t->st.removed);
	else {
		/* Only a whole sweep counts the store. */
		metrics_store(t->st.blobs, t->st.bytes);
		if (t->done > 0 || t->st.removed > 0)
			log_info("retention: %zu job(s) expired, %" PRIu64
			    " blob(s) removed (%" PRIu64 " bytes); the store "
			    "holds %" PRIu64 " blob(s), %" PRIu64 " bytes",
			    t->done, t->st.removed, t->st.removed_bytes,
			    t->st.blobs, t->st.bytes);
	}
	sweep_free(t);
}

static void
dirs_after(uv_work_t *req, int status)
{
	(void)status;
	sweep_dirs(req->data);
}

static void
clean_after(uv_work_t *req, int status)
{
	struct sweep_task *t = req->data;

	(void)status;
	if (t->rc != 0) {
		log_error("retention sweep failed (reading what the store "
		    "must keep)");
		sweep_free(t);
		return;
	}
	sweep_dirs(t);
}

static void expire_next(struct sweep_task *t);

static void
expired(void *data, int rc)
{
	struct sweep_task *t = data;
	size_t n = t->nids - t->done;

	if (rc != 0) {
		log_error("retention: cannot expire jobs (the database); "
		    "tried again at the next sweep");
		t->nids = t->done;	/* clean up what did expire */
	} else
		t->done += n < QUEUE_EXPIRE_BATCH ? n : QUEUE_EXPIRE_BATCH;
	expire_next(t);
}

static void
expire_next(struct sweep_task *t)
{
	struct sched *s = t->s;

	/* One batch at a time: other writes (claims, finishes) go in
	 * between, and stopping leaves the rest to the next start. */
	if (t->done < t->nids && !s->stopping) {
		queue_expire_jobs(s->q, t->ids + t->done, t->nids - t->done,
		    t->now, expired, t);
		return;
	}
	next_step(t, clean_work, clean_after);
}

static void
select_after(uv_work_t *req, int status)
{
	struct sweep_task *t = req->data;

	(void)status;
	if (t->rc != 0) {
		log_error("retention sweep failed (selecting jobs)");
		sweep_free(t);
		return;
	}
	/* Still counted as a task (s->works) while its writes are in
	 * flight: shutdown waits for them. */
	expire_next(t);
}

void
on_sweep(uv_timer_t *h)
{
	struct sched *s = h->data;
	struct sweep_task *t;

	if (s->sweeping || s->stopping)
		return;
	t = xcalloc(1, sizeof *t);
	t->req.data = t;
	t->s = s;
	t->now = util_now_ms();
	t->r.keep_jobs = s->conf->keep_jobs;
	t->r.keep_days = s->conf->keep_days;
	t->r.max_bytes = conf_store_max_size(s->conf,
	    store_fs_size(s->store));
	t->logs = state_path(s, "logs");
	s->sweeping = true;
	queue_task(s, &t->req, select_work, select_after);
}
