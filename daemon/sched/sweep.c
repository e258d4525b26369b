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

struct sweep_task {
	uv_work_t req;
	struct sched *s;
	struct queue_retention r;
	char *logs;
	size_t expired;
	struct store_stats st;
	int rc;
};

static void
sweep_work(uv_work_t *req)
{
	struct sweep_task *t = req->data;
	struct sched *s = t->s;
	int64_t *ids = NULL;
	char **keep = NULL;
	size_t nids = 0, nkeep = 0;

	t->rc = -1;
	if (queue_expire(s->q, &t->r, util_now_ms(), &ids, &nids) != 0)
		return;
	t->expired = nids;
	for (size_t i = 0; i < nids; i++) {
		char *p = xasprintf("%s/%" PRId64, t->logs, ids[i]);
		util_rmtree(p);
		free(p);
	}
	free(ids);
	/* After the expiry: what is referenced now stays referenced (a
	 * cache hit only reuses blobs of jobs that are not expired), and
	 * what a publication adds meanwhile is younger than the grace. */
	if (queue_referenced_blobs(s->q, &keep, &nkeep) != 0)
		return;
	t->rc = store_sweep(s->store, keep, nkeep, SWEEP_GRACE_MS, &t->st);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
}

static void
sweep_after(uv_work_t *req, int status)
{
	struct sweep_task *t = req->data;
	struct sched *s = t->s;

	(void)status;
	s->sweeping = false;
	if (t->rc == 0)
		metrics_store(t->st.blobs, t->st.bytes);
	if (t->rc != 0)
		log_error("retention sweep failed");
	else if (t->expired > 0 || t->st.removed > 0)
		log_info("retention: %zu job(s) expired, %" PRIu64 " blob(s) "
		    "removed (%" PRIu64 " bytes); the store holds %" PRIu64
		    " blob(s), %" PRIu64 " bytes", t->expired, t->st.removed,
		    t->st.removed_bytes, t->st.blobs, t->st.bytes);
	free(t->logs);
	free(t);
	task_done(s);
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
	t->r.keep_jobs = s->conf->keep_jobs;
	t->r.keep_days = s->conf->keep_days;
	t->r.max_bytes = conf_store_max_size(s->conf,
	    store_fs_size(s->store));
	t->logs = state_path(s, "logs");
	s->sweeping = true;
	queue_task(s, &t->req, sweep_work, sweep_after);
}
