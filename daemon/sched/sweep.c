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
 * The sweep in three steps, so that no step holds the write lock for
 * long and the loop never waits: select the jobs to expire (pool thread,
 * a read), expire them QUEUE_EXPIRE_BATCH at a time (the queue's writer,
 * one short transaction each), then remove their logs and the blobs
 * nothing references any more (pool thread).
 */
struct sweep_task {
	uv_work_t req;
	struct sched *s;
	struct queue_retention r;
	int64_t now;
	char *logs;
	int64_t *ids;
	size_t nids, done;		/* selected; expired so far */
	struct store_stats st;
	int rc;
};

static void
sweep_free(struct sweep_task *t)
{
	struct sched *s = t->s;

	s->sweeping = false;
	free(t->ids);
	free(t->logs);
	free(t);
	task_done(s);
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
	char **keep = NULL;
	size_t nkeep = 0;

	for (size_t i = 0; i < t->done; i++) {
		char *p = xasprintf("%s/%" PRId64, t->logs, t->ids[i]);
		util_rmtree(p);
		free(p);
	}
	/* After the expiry: what is referenced now stays referenced (a
	 * cache hit only reuses blobs of jobs that are not expired), and
	 * what a publication adds meanwhile is younger than the grace. */
	t->rc = -1;
	if (queue_referenced_blobs(s->q, &keep, &nkeep) != 0)
		return;
	t->rc = store_sweep(s->store, keep, nkeep, SWEEP_GRACE_MS, &t->st);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
}

static void
clean_after(uv_work_t *req, int status)
{
	struct sweep_task *t = req->data;

	(void)status;
	if (t->rc == 0)
		metrics_store(t->st.blobs, t->st.bytes);
	if (t->rc != 0)
		log_error("retention sweep failed");
	else if (t->done > 0 || t->st.removed > 0)
		log_info("retention: %zu job(s) expired, %" PRIu64 " blob(s) "
		    "removed (%" PRIu64 " bytes); the store holds %" PRIu64
		    " blob(s), %" PRIu64 " bytes", t->done, t->st.removed,
		    t->st.removed_bytes, t->st.blobs, t->st.bytes);
	sweep_free(t);
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
	t->req.data = t;
	s->works--;	/* queue_task() counts the last step again */
	queue_task(s, &t->req, clean_work, clean_after);
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
