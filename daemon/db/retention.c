/*
 * Retention: which finished jobs the policy no longer keeps (age, count
 * per repository, artifact bytes), expiring them, and the store digests
 * still referenced.  The selection and the digests are read on the `bg`
 * connection on a pool thread; the expiry itself is a writer operation
 * (db_expire_jobs), given at most QUEUE_EXPIRE_BATCH jobs at a time so
 * that no transaction holds the write lock for long.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db-int.h"
#include "xmalloc.h"

#define TERMINAL "('succeeded', 'failed', 'canceled')"

/* Append the ids a one-column query returns. */
static int
collect_ids(sqlite3 *db, sqlite3_stmt *st, int64_t **ids, size_t *n,
    size_t *cap)
{
	int step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*ids = xreallocarray(*ids, *cap, sizeof **ids);
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (step != SQLITE_DONE) {
		db_log(db, "retention");
		return QUEUE_ERROR;
	}
	return 0;
}

/*
 * A set of blob digests (the 64 hex characters of a sha256), open
 * addressing: retention meets each artifact row once.
 */
struct blobset {
	char (*slot)[65];
	size_t cap, n;
};

static size_t
blobset_home(const struct blobset *b, const char *sha)
{
	size_t h = 5381;

	for (const char *p = sha; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % b->cap;
}

static bool
blobset_has(const struct blobset *b, const char *sha)
{
	if (b->cap == 0)
		return false;
	for (size_t i = blobset_home(b, sha); b->slot[i][0] != '\0';
	    i = (i + 1) % b->cap)
		if (strcmp(b->slot[i], sha) == 0)
			return true;
	return false;
}

/* true when `sha` was added, false when it was there already. */
static bool
blobset_add(struct blobset *b, const char *sha)
{
	size_t i;

	if (blobset_has(b, sha))
		return false;
	if (2 * (b->n + 1) > b->cap) {
		struct blobset big = { NULL, b->cap ? b->cap * 2 : 256, 0 };
		big.slot = xcalloc(big.cap, sizeof *big.slot);
		for (size_t j = 0; j < b->cap; j++)
			if (b->slot[j][0] != '\0')
				blobset_add(&big, b->slot[j]);
		free(b->slot);
		*b = big;
	}
	for (i = blobset_home(b, sha); b->slot[i][0] != '\0';
	    i = (i + 1) % b->cap)
		;
	snprintf(b->slot[i], sizeof b->slot[i], "%s", sha);
	b->n++;
	return true;
}

static void
blobset_clear(struct blobset *b)
{
	if (b->n > 0)
		memset(b->slot, 0, b->cap * sizeof *b->slot);
	b->n = 0;
}

static void
add_id(int64_t id, int64_t **ids, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*ids = xreallocarray(*ids, *cap, sizeof **ids);
	}
	(*ids)[(*n)++] = id;
}

/* The blobs of one job, until retention decides to keep it or not. */
struct job_blobs {
	int64_t id;
	struct { char sha[65]; uint64_t size; } *v;
	size_t n, cap;
	uint64_t fresh;		/* bytes of the blobs no kept job holds */
	struct blobset seen;	/* its own, to count a blob once */
};

/*
 * Keep the job when its fresh bytes fit, or when it costs nothing more
 * (expiring it would free nothing); expire it otherwise, and from then
 * on every older job that costs something: the newest are kept.  *sum
 * is UINT64_MAX once the store is full.
 */
static void
decide(struct job_blobs *jb, struct blobset *kept, uint64_t *sum,
    uint64_t max_bytes, int64_t **ids, size_t *n, size_t *cap)
{
	if (jb->fresh == 0 || (*sum != UINT64_MAX &&
	    jb->fresh <= max_bytes - *sum)) {
		for (size_t i = 0; i < jb->n; i++)
			blobset_add(kept, jb->v[i].sha);
		if (*sum != UINT64_MAX)
			*sum += jb->fresh;
	} else {
		add_id(jb->id, ids, n, cap);
		*sum = UINT64_MAX;
	}
	jb->n = 0;
	jb->fresh = 0;
	blobset_clear(&jb->seen);
}

/*
 * The jobs to expire, newest kept first, so that the blobs of the kept
 * ones fit in max_bytes.  A blob counts once however many jobs share it
 * (a reused build points at the blobs of the job that built it): a job is
 * charged only the blobs no newer kept job holds.
 */
static int
over_cap(sqlite3 *db, uint64_t max_bytes, int64_t **ids, size_t *n,
    size_t *cap)
{
	struct blobset kept = { NULL, 0, 0 };
	struct job_blobs jb = { 0 };
	sqlite3_stmt *st = NULL;
	uint64_t sum = 0;
	int step, ret = QUEUE_ERROR;

	if (sqlite3_prepare_v2(db, "SELECT j.id, a.sha256, a.size "
	    "FROM jobs j JOIN job_targets t ON t.job_id = j.id "
	    "JOIN artifacts a ON a.target_id = t.id "
	    "WHERE j.state IN " TERMINAL " AND j.expired_at IS NULL "
	    "ORDER BY j.id DESC", -1, &st, NULL) != SQLITE_OK) {
		db_log(db, "retention");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *sha = (const char *)sqlite3_column_text(st, 1);
		sqlite3_int64 size = sqlite3_column_int64(st, 2);

		if (jb.id != 0 && id != jb.id)
			decide(&jb, &kept, &sum, max_bytes, ids, n, cap);
		jb.id = id;
		if (sha == NULL || strlen(sha) != 64 || !blobset_add(&jb.seen, sha))
			continue;
		if (jb.n == jb.cap) {
			jb.cap = jb.cap ? jb.cap * 2 : 16;
			jb.v = xreallocarray(jb.v, jb.cap, sizeof *jb.v);
		}
		memcpy(jb.v[jb.n].sha, sha, 65);
		jb.v[jb.n].size = size > 0 ? (uint64_t)size : 0;
		if (!blobset_has(&kept, sha))
			jb.fresh += jb.v[jb.n].size;
		jb.n++;
	}
	if (jb.id != 0 && step == SQLITE_DONE)
		decide(&jb, &kept, &sum, max_bytes, ids, n, cap);
	if (step != SQLITE_DONE)
		db_log(db, "retention");
	else
		ret = 0;
	sqlite3_finalize(st);
	free(jb.v);
	free(jb.seen.slot);
	free(kept.slot);
	return ret;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
sqlite_expire_select(struct queue *base, const struct queue_retention *r,
    int64_t now, int64_t **out, size_t *nout)
{
	struct sqlq *q = (struct sqlq *)base;
	sqlite3 *db = q->bg;
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0, u = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	/* A read transaction: the rules see one snapshot, and the writer
	 * goes on meanwhile (WAL). */
	if ((rc = db_exec(db, "BEGIN")) != 0)
		return rc;
	if (r->keep_days > 0) {
		if (sqlite3_prepare_v2(db, "SELECT id FROM jobs WHERE state IN "
		    TERMINAL " AND expired_at IS NULL AND finished_at < ?",
		    -1, &st, NULL) != SQLITE_OK)
			rc = QUEUE_ERROR;
		else {
			sqlite3_bind_int64(st, 1, now -
			    (int64_t)r->keep_days * 86400000);
			rc = collect_ids(db, st, &ids, &n, &cap);
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc == 0 && r->keep_jobs > 0) {
		if (sqlite3_prepare_v2(db, "SELECT id FROM (SELECT id, "
		    "expired_at, row_number() OVER (PARTITION BY repo ORDER BY "
		    "id DESC) AS rn FROM jobs WHERE state IN " TERMINAL ") "
		    "WHERE rn > ? AND expired_at IS NULL", -1, &st, NULL) !=
		    SQLITE_OK)
			rc = QUEUE_ERROR;
		else {
			sqlite3_bind_int64(st, 1, r->keep_jobs);
			rc = collect_ids(db, st, &ids, &n, &cap);
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc == 0 && r->max_bytes > 0)
		rc = over_cap(db, r->max_bytes, &ids, &n, &cap);
	if (rc == QUEUE_ERROR)
		db_log(db, "retention");
	db_exec(db, "COMMIT");	/* ends the read; nothing was written */
	if (rc != 0) {
		free(ids);
		return rc;
	}
	/* One job may be chosen by several rules. */
	if (n > 1)
		qsort(ids, n, sizeof *ids, cmp_id);
	for (size_t i = 0; i < n; i++)
		if (u == 0 || ids[u - 1] != ids[i])
			ids[u++] = ids[i];
	*out = ids;
	*nout = u;
	return 0;
}

/*
 * Expire the given jobs (writer thread).  Each is checked again: a job
 * that is not finished, or already expired, is left as it is.
 */
int
db_expire_jobs(struct sqlq *q, const int64_t *ids, size_t n, int64_t now)
{
	int rc;

	if ((rc = db_begin(q)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int64_t p[2] = { ids[i], now };
		int c;

		if ((c = db_run(q, "UPDATE jobs SET expired_at = ?2, "
		    "sums_sha256 = NULL, sig_sha256 = NULL, prov_sha256 = NULL, "
		    "sign_pending = 0 WHERE id = ?1 AND expired_at IS NULL AND "
		    "state IN " TERMINAL, 2, p)) < 0)
			rc = QUEUE_ERROR;
		else if (c == 1 && (db_run(q, "DELETE FROM artifacts "
		    "WHERE target_id IN (SELECT id FROM job_targets WHERE "
		    "job_id = ?1)", 1, p) < 0 ||
		    db_run(q, "UPDATE job_targets SET cache_key = NULL "
		    "WHERE job_id = ?1", 1, p) < 0))
			rc = QUEUE_ERROR;
	}
	return db_end(q, rc);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
sqlite_referenced_blobs(struct queue *base, char ***out, size_t *nout)
{
	struct sqlq *q = (struct sqlq *)base;
	sqlite3 *db = q->bg;
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int step;

	*out = NULL;
	*nout = 0;
	if (sqlite3_prepare_v2(db, "SELECT sha256 FROM artifacts "
	    "WHERE sha256 IS NOT NULL UNION "
	    "SELECT sums_sha256 FROM jobs WHERE sums_sha256 IS NOT NULL UNION "
	    "SELECT sig_sha256 FROM jobs WHERE sig_sha256 IS NOT NULL UNION "
	    "SELECT prov_sha256 FROM jobs WHERE prov_sha256 IS NOT NULL",
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(db, "referenced blobs");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof *v);
		}
		v[n++] = db_col_strdup(st, 0);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(db, "referenced blobs");
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return QUEUE_ERROR;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_str);
	*out = v;
	*nout = n;
	return 0;
}
