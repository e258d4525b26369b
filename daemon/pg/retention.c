/*
 * What a job leaves, on PostgreSQL: the succeeded jobs waiting to be
 * signed and recording their signed files; retention -- which finished
 * jobs the policy no longer keeps (age, count per repository, artifact
 * bytes), expiring them, and the store digests still referenced.
 *
 * The selection and the digests are synchronous: they run on a pool
 * thread (one at a time) on the queue's blocking connection, inside one
 * read-only snapshot, never on the loop.  Expiring is a write like the
 * others (kiln_expire_jobs of schema/pg/003_targets.sql).
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg-int.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"

#define Q(base) ((struct pgq *)(base))
#define TERMINAL "('succeeded', 'failed', 'canceled')"

/* --- signing ---------------------------------------------------------- */

static int
unsigned_parse(struct pgq_call *c, const PGresult *res)
{
	int rows = PQntuples(res);
	int64_t *ids = NULL;

	if (rows > 0)
		ids = xcalloc((size_t)rows, sizeof *ids);
	for (int r = 0; r < rows; r++)
		ids[r] = pgq_get_int(res, r, 0);
	*(int64_t **)c->out[0] = ids;
	*(size_t *)c->out[1] = (size_t)rows;
	return 0;
}

void
pg_unsigned_jobs(struct queue *base, int64_t **ids, size_t *n,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "unsigned jobs",
	    unsigned_parse, done, data);

	*ids = NULL;
	*n = 0;
	c->out[0] = ids;
	c->out[1] = n;
	/* The partial index jobs_unsigned, oldest first, bounded. */
	pgq_read(c, "SELECT id FROM jobs WHERE sign_pending = 1 ORDER BY id "
	    "LIMIT " QUEUE_STR(QUEUE_UNSIGNED_MAX), 0, NULL);
}

void
pg_set_signed(struct queue *base, int64_t job_id, const char *sums,
    const char *sig, const char *prov, queue_done done, void *data)
{
	struct pgq *q = Q(base);
	struct pgq_call *c = pgq_call(q, "set signed", NULL, done, data);
	char b[PGQ_INT_BUF];
	const char *params[5] = { pgq_int(b, job_id), sums, sig, prov,
	    q->host };

	pgq_write(c, "kiln_set_signed($1, $2, $3, $4, $5)", 5, params);
}

/* --- choosing what to expire ------------------------------------------ */

struct ids {
	int64_t *v;
	size_t n, cap;
};

static void
ids_add(struct ids *s, int64_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xreallocarray(s->v, s->cap, sizeof *s->v);
	}
	s->v[s->n++] = id;
}

/* The ids of a one-column statement's rows. */
static int
select_ids(struct pgq *q, const char *sql, int64_t arg, struct ids *s)
{
	char b[PGQ_INT_BUF];
	const char *params[1] = { pgq_int(b, arg) };
	PGresult *res;

	if (pgq_sync_exec(q, "retention", sql, 1, params, &res) != 0)
		return QUEUE_ERROR;
	for (int r = 0; r < PQntuples(res); r++)
		ids_add(s, pgq_get_int(res, r, 0));
	PQclear(res);
	return 0;
}

/*
 * The walk over the store's blobs, newest job first.  Each blob is
 * numbered by the query (dense_rank over its digest), so that the blobs
 * kept so far are a bitmap; each job's rows name each of its blobs once.
 */
struct cap {
	uint64_t max, sum;	/* sum: UINT64_MAX once the store is full */
	bool *kept;		/* by blob number */
	size_t nkept;
	int64_t job;		/* the job being read, 0 before the first */
	size_t *blobs;		/* its blobs */
	size_t nblobs, cblobs;
	uint64_t fresh;		/* bytes of its blobs no kept job holds */
};

static bool
cap_kept(const struct cap *c, size_t blob)
{
	return blob < c->nkept && c->kept[blob];
}

/*
 * Keep the job when its fresh bytes fit, or when it costs nothing more
 * (expiring it would free nothing); expire it otherwise, and from then
 * on every older job that costs something: the newest are kept.
 */
static void
cap_decide(struct cap *c, struct ids *out)
{
	if (c->fresh == 0 || (c->sum != UINT64_MAX &&
	    c->fresh <= c->max - c->sum)) {
		for (size_t i = 0; i < c->nblobs; i++) {
			size_t b = c->blobs[i];

			if (b >= c->nkept) {
				size_t n = b + 1 > 2 * c->nkept ? b + 1 :
				    2 * c->nkept;

				c->kept = xreallocarray(c->kept, n,
				    sizeof *c->kept);
				memset(c->kept + c->nkept, 0,
				    (n - c->nkept) * sizeof *c->kept);
				c->nkept = n;
			}
			c->kept[b] = true;
		}
		if (c->sum != UINT64_MAX)
			c->sum += c->fresh;
	} else {
		ids_add(out, c->job);
		c->sum = UINT64_MAX;
	}
	c->nblobs = 0;
	c->fresh = 0;
}

static void
cap_row(struct cap *c, int64_t job, size_t blob, int64_t size,
    struct ids *out)
{
	if (c->job != 0 && job != c->job)
		cap_decide(c, out);
	c->job = job;
	if (c->nblobs == c->cblobs) {
		c->cblobs = c->cblobs ? c->cblobs * 2 : 16;
		c->blobs = xreallocarray(c->blobs, c->cblobs,
		    sizeof *c->blobs);
	}
	c->blobs[c->nblobs++] = blob;
	if (!cap_kept(c, blob))
		c->fresh += size > 0 ? (uint64_t)size : 0;
}

/*
 * The jobs to expire so that the blobs of the kept ones fit in max
 * bytes.  A blob counts once however many jobs share it (a reused build
 * points at the blobs of the job that built it): a job is charged only
 * the blobs no newer kept job holds.  Rows come one at a time (libpq's
 * single-row mode): the walk holds the bitmap, not the whole store.
 */
static int
over_cap(struct pgq *q, uint64_t max, struct ids *out)
{
	static const char sql[] = "SELECT b.job, b.blob, b.size FROM ("
	    "SELECT t.job_id AS job, a.size, "
	    "dense_rank() OVER (ORDER BY a.sha256) AS blob, "
	    "row_number() OVER (PARTITION BY t.job_id, a.sha256 "
	    "ORDER BY a.id) AS k "
	    "FROM jobs j JOIN job_targets t ON t.job_id = j.id "
	    "JOIN artifacts a ON a.target_id = t.id "
	    "WHERE j.state IN " TERMINAL " AND j.expired_at IS NULL "
	    "AND length(a.sha256) = 64) AS b "
	    "WHERE b.k = 1 ORDER BY b.job DESC";
	struct cap c = { .max = max };
	PGconn *conn;
	PGresult *res;
	int rc = 0;

	if ((conn = pgq_sync_conn(q)) == NULL)
		return pgq_error("retention", NULL, PG_EDOWN);
	if (!PQsendQuery(conn, sql) || !PQsetSingleRowMode(conn)) {
		log_error("queue: retention: %s", PQerrorMessage(conn));
		while ((res = PQgetResult(conn)) != NULL)
			PQclear(res);
		return QUEUE_ERROR;
	}
	while ((res = PQgetResult(conn)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			if (rc == 0)
				cap_row(&c, pgq_get_int(res, 0, 0),
				    (size_t)pgq_get_int(res, 0, 1),
				    pgq_get_int(res, 0, 2), out);
			break;
		case PGRES_TUPLES_OK:	/* the end: no rows of its own */
			break;
		default:
			if (rc == 0)
				rc = pgq_error("retention", res,
				    PQstatus(conn) == CONNECTION_OK ? PG_ESQL :
				    PG_ELOST);
			break;
		}
		PQclear(res);
	}
	if (rc == 0 && c.job != 0)
		cap_decide(&c, out);
	free(c.kept);
	free(c.blobs);
	return rc;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
pg_expire_select(struct queue *base, const struct queue_retention *r,
    int64_t now, int64_t **out, size_t *nout)
{
	struct pgq *q = Q(base);
	struct ids s = { NULL, 0, 0 };
	PGresult *res;
	size_t u = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	/* One snapshot for the three rules; the writes go on meanwhile. */
	if (pgq_sync_exec(q, "retention", "BEGIN ISOLATION LEVEL REPEATABLE "
	    "READ READ ONLY", 0, NULL, &res) != 0)
		return QUEUE_ERROR;
	PQclear(res);
	if (r->keep_days > 0)
		rc = select_ids(q, "SELECT id FROM jobs WHERE state IN "
		    TERMINAL " AND expired_at IS NULL AND finished_at < $1",
		    now - (int64_t)r->keep_days * 86400000, &s);
	if (rc == 0 && r->keep_jobs > 0)
		rc = select_ids(q, "SELECT id FROM (SELECT id, expired_at, "
		    "row_number() OVER (PARTITION BY repo ORDER BY id DESC) "
		    "AS rn FROM jobs WHERE state IN " TERMINAL ") AS k "
		    "WHERE rn > $1 AND expired_at IS NULL", r->keep_jobs, &s);
	if (rc == 0 && r->max_bytes > 0)
		rc = over_cap(q, r->max_bytes, &s);
	/* Ends the read (nothing was written), or what an error left. */
	if (pgq_sync_exec(q, "retention", rc == 0 ? "COMMIT" : "ROLLBACK", 0,
	    NULL, &res) == 0)
		PQclear(res);
	else
		rc = QUEUE_ERROR;
	if (rc != 0) {
		free(s.v);
		return QUEUE_ERROR;
	}
	/* One job may be chosen by several rules. */
	if (s.n > 1)
		qsort(s.v, s.n, sizeof *s.v, cmp_id);
	for (size_t i = 0; i < s.n; i++)
		if (u == 0 || s.v[u - 1] != s.v[i])
			s.v[u++] = s.v[i];
	*out = s.v;
	*nout = u;
	return 0;
}

/* --- expiring --------------------------------------------------------- */

void
pg_expire_jobs(struct queue *base, const int64_t *ids, size_t n, int64_t now,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "expire jobs", NULL, done,
	    data);
	char b[PGQ_INT_BUF], *list;
	const char *params[2];
	struct sbuf s = { NULL, 0, 0 };

	if (n > QUEUE_EXPIRE_BATCH)
		n = QUEUE_EXPIRE_BATCH;
	/* An array literal: "{1,2,3}". */
	sbuf_addc(&s, '{');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			sbuf_addc(&s, ',');
		sbuf_addi(&s, ids[i]);
	}
	sbuf_addc(&s, '}');
	list = sbuf_steal(&s, NULL);
	params[0] = list;
	params[1] = pgq_int(b, now);
	pgq_write(c, "kiln_expire_jobs($1::bigint[], $2)", 2, params);
	free(list);
}

/* --- the sweep -------------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
pg_referenced_blobs(struct queue *base, char ***out, size_t *nout)
{
	struct pgq *q = Q(base);
	PGresult *res;
	char **v;
	int rows;

	*out = NULL;
	*nout = 0;
	if (pgq_sync_exec(q, "referenced blobs", "SELECT sha256 FROM "
	    "artifacts WHERE sha256 IS NOT NULL UNION "
	    "SELECT sums_sha256 FROM jobs WHERE sums_sha256 IS NOT NULL UNION "
	    "SELECT sig_sha256 FROM jobs WHERE sig_sha256 IS NOT NULL UNION "
	    "SELECT prov_sha256 FROM jobs WHERE prov_sha256 IS NOT NULL",
	    0, NULL, &res) != 0)
		return QUEUE_ERROR;
	rows = PQntuples(res);
	v = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof *v);
	for (int r = 0; r < rows; r++)
		v[r] = xstrdup(PQgetvalue(res, r, 0));
	PQclear(res);
	/* Byte order (strcmp), whatever the database's collation. */
	if (rows > 1)
		qsort(v, (size_t)rows, sizeof *v, cmp_str);
	*out = v;
	*nout = (size_t)rows;
	return 0;
}
