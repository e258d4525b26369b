/*
 * Jobs as a whole, on PostgreSQL: storing new ones, reading one or a page
 * of them with their targets and artifacts, the changes a client or the
 * scheduler makes to a job (cancel, priority, resolved commit, toolchain,
 * its targets from the repository, failing it before it builds), and
 * what a job owes the outside (the webhook deliveries and pushes that
 * made it, its result callback).  Each write is one call of a function of
 * schema/pg/002_queue.sql; each read one SELECT.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "pg-int.h"
#include "util.h"
#include "xmalloc.h"

#define Q(base) ((struct pgq *)(base))

/* --- submit ----------------------------------------------------------- */

/* Strings as given: the database checks their encoding (a bad one fails
 * the submission there, logged, in its turn). */
static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string_nocheck(s) : json_null();
}

static json_t *
job_json(const struct job *j)
{
	json_t *o = json_object(), *t = json_array();

	json_object_set_new(o, "repo", str_or_null(j->repo));
	json_object_set_new(o, "ref", str_or_null(j->ref));
	json_object_set_new(o, "recipe", str_or_null(j->recipe));
	json_object_set_new(o, "priority", json_integer(j->priority));
	json_object_set_new(o, "created_at", json_integer(j->created_at));
	json_object_set_new(o, "timeout", j->timeout > 0 ?
	    json_integer(j->timeout) : json_null());
	json_object_set_new(o, "cache", json_integer(j->cache));
	json_object_set_new(o, "commit", str_or_null(j->commit));
	json_object_set_new(o, "project", str_or_null(j->project));
	json_object_set_new(o, "network", json_integer(j->network));
	json_object_set_new(o, "notify_url", str_or_null(j->notify_url));
	json_object_set_new(o, "trust", str_or_null(job_trust_name(j->trust)));
	json_object_set_new(o, "submitted_by", str_or_null(j->submitted_by));
	json_object_set_new(o, "outputs", str_or_null(j->outputs));
	json_object_set_new(o, "release", json_integer(j->release));
	json_object_set_new(o, "retry_of", j->retry_of > 0 ?
	    json_integer(j->retry_of) : json_null());
	json_object_set_new(o, "delivery_forge",
	    str_or_null(j->delivery_forge));
	json_object_set_new(o, "delivery_id", str_or_null(j->delivery_id));
	for (size_t i = 0; i < j->ntargets; i++)
		json_array_append_new(t, json_string_nocheck(
		    j->targets[i].target));
	json_object_set_new(o, "targets", t);
	return o;
}

/* [[job id, target ids...], ...], one per job in order. */
static int
submit_parse(struct pgq_call *c, const PGresult *res)
{
	struct job *const *jobs = c->out[0];
	size_t n = (size_t)c->arg[0], i;
	json_t *a, *e;
	int rc = 0;

	if (PQntuples(res) != 1 ||
	    (a = json_loads(PQgetvalue(res, 0, 0), 0, NULL)) == NULL) {
		log_error("queue: submit: an answer not understood");
		return QUEUE_ERROR;
	}
	if (!json_is_array(a) || json_array_size(a) != n)
		rc = QUEUE_ERROR;
	json_array_foreach(a, i, e) {
		struct job *j;

		if (rc != 0)
			break;
		j = jobs[i];
		if (json_array_size(e) != j->ntargets + 1) {
			rc = QUEUE_ERROR;
			break;
		}
		j->id = json_integer_value(json_array_get(e, 0));
		for (size_t t = 0; t < j->ntargets; t++)
			j->targets[t].id = json_integer_value(
			    json_array_get(e, t + 1));
	}
	json_decref(a);
	if (rc != 0) {
		log_error("queue: submit: an answer not understood");
		for (i = 0; i < n; i++)
			jobs[i]->id = 0;
	}
	return rc;
}

void
pg_submit(struct queue *base, struct job *const *jobs, size_t n,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "submit", submit_parse, done,
	    data);
	json_t *a = json_array();
	const char *params[1];
	char *text;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, job_json(jobs[i]));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	c->out[0] = (void *)jobs;
	c->arg[0] = (int64_t)n;
	if (text == NULL) {
		log_error("queue: submit: a job's text is not UTF-8");
		pgq_write_failed(c);
		return;
	}
	params[0] = text;
	pgq_write(c, "kiln_submit($1::jsonb)", 1, params);
	free(text);
}

/* --- reading jobs ----------------------------------------------------- */

#define JOB_SELECT "SELECT " PGQ_JOB_COLS("j.") ", " PGQ_TARGET_COLS("t.")
#define TCOL PGQ_JOB_NCOLS	/* where a row's target starts */

/*
 * The jobs of rows of JOB_SELECT, ordered by job and then target: at
 * most max of them in *out (malloc'd, *n).  *more: a row of another job
 * came after the max-th.
 */
static int
jobs_from_rows(const PGresult *res, size_t max, struct job ***out,
    size_t *n, bool *more)
{
	struct job **v = xcalloc(max ? max : 1, sizeof *v), *j = NULL;
	int rows = PQntuples(res);
	size_t k = 0;

	*more = false;
	for (int r = 0; r < rows; r++) {
		if (j == NULL || pgq_get_int(res, r, 0) != j->id) {
			if (k == max) {
				*more = true;
				break;
			}
			if ((j = pgq_job_from_row(res, r, 0)) == NULL)
				goto fail;
			v[k++] = j;
		}
		if (!pgq_is_null(res, r, TCOL) &&
		    pgq_add_target(j, res, r, TCOL) != 0)
			goto fail;
	}
	*out = v;
	*n = k;
	return 0;
fail:
	job_free_array(v, k);
	return QUEUE_ERROR;
}

static int
get_parse(struct pgq_call *c, const PGresult *res)
{
	struct job **v;
	size_t n;
	bool more;

	if (PQntuples(res) == 0)
		return QUEUE_ENOTFOUND;
	if (jobs_from_rows(res, 1, &v, &n, &more) != 0)
		return QUEUE_ERROR;
	*(struct job **)c->out[0] = v[0];
	free(v);
	return 0;
}

void
pg_get(struct queue *base, int64_t id, struct job **out, queue_done done,
    void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "get job", get_parse, done,
	    data);
	char b[PGQ_INT_BUF];
	const char *params[1] = { pgq_int(b, id) };

	*out = NULL;
	c->out[0] = out;
	pgq_read(c, JOB_SELECT " FROM jobs j LEFT JOIN job_targets t "
	    "ON t.job_id = j.id WHERE j.id = $1 ORDER BY t.id", 1, params);
}

static int
list_parse(struct pgq_call *c, const PGresult *res)
{
	struct job **v;
	size_t n;
	bool more;

	if (jobs_from_rows(res, (size_t)c->arg[0], &v, &n, &more) != 0)
		return QUEUE_ERROR;
	*(struct job ***)c->out[0] = v;
	*(size_t *)c->out[1] = n;
	/* One job more than asked was selected to tell another page. */
	*(int64_t *)c->out[2] = more ? v[n - 1]->id : 0;
	return 0;
}

/* " AND col = $n" appended to where (sized for the three). */
static void
append_cond(char *where, size_t size, const char *col, int n)
{
	size_t len = strlen(where);

	snprintf(where + len, size - len, " AND %s = $%d", col, n);
}

/*
 * Each filter is an equality on the first column of an index whose
 * second is id (jobs_state_id, jobs_project_id, jobs_repo_id), so the
 * page is read from an index, newest first from the cursor.  $1 is the
 * cursor, $2 the rows to read, then the state, the project and the
 * repository, those of them given, in that order.  The values travel as
 * parameters, never in the text.
 */
char *
pg_list_sql(bool state, bool project, bool repo)
{
	char where[160] = "";
	int np = 2;

	if (state)
		append_cond(where, sizeof where, "state", ++np);
	if (project)
		append_cond(where, sizeof where, "project", ++np);
	if (repo)
		append_cond(where, sizeof where, "repo", ++np);
	return xasprintf(JOB_SELECT " FROM (SELECT * FROM jobs "
	    "WHERE id < $1%s ORDER BY id DESC LIMIT $2) j "
	    "LEFT JOIN job_targets t ON t.job_id = j.id "
	    "ORDER BY j.id DESC, t.id", where);
}

void
pg_list(struct queue *base, const struct queue_filter *f, struct job ***out,
    size_t *nout, int64_t *next, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "list jobs", list_parse, done,
	    data);
	size_t limit = f->limit;
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF], *sql;
	const char *params[5];
	int np = 2;

	if (limit == 0 || limit > QUEUE_LIST_MAX)
		limit = QUEUE_LIST_MAX;
	*out = NULL;
	*nout = 0;
	*next = 0;
	c->out[0] = out;
	c->out[1] = nout;
	c->out[2] = next;
	c->arg[0] = (int64_t)limit;
	params[0] = pgq_int(b1, f->after > 0 ? f->after : INT64_MAX);
	params[1] = pgq_int(b2, (int64_t)limit + 1);
	if (f->has_state)
		params[np++] = job_state_name(f->state);
	if (f->project != NULL)
		params[np++] = f->project;
	if (f->repo != NULL)
		params[np++] = f->repo;
	/* pgq_read() copies the text and the parameters. */
	sql = pg_list_sql(f->has_state, f->project != NULL, f->repo != NULL);
	pgq_read(c, sql, np, params);
	free(sql);
}

/* --- changes to a job ------------------------------------------------- */

static int
cancel_parse(struct pgq_call *c, const PGresult *res)
{
	if (PQntuples(res) != 1)
		return QUEUE_ERROR;
	*(size_t *)c->out[0] = (size_t)pgq_get_int(res, 0, 0);
	return 0;
}

void
pg_cancel(struct queue *base, int64_t id, size_t *nrunning, queue_done done,
    void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "cancel", cancel_parse, done,
	    data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[2] = { pgq_int(b1, id),
	    pgq_int(b2, util_now_ms()) };

	c->out[0] = nrunning;
	pgq_write(c, "kiln_cancel($1, $2)", 2, params);
}

void
pg_set_priority(struct queue *base, int64_t id, int priority,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "set priority", NULL, done,
	    data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[2] = { pgq_int(b1, id), pgq_int(b2, priority) };

	pgq_write(c, "kiln_set_priority($1, $2)", 2, params);
}

void
pg_set_commit(struct queue *base, int64_t job_id, const char *commit,
    enum job_trust trust, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "set commit", NULL, done,
	    data);
	char b[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b, job_id), commit,
	    job_trust_name(trust) };

	pgq_write(c, "kiln_set_commit($1, $2, $3)", 3, params);
}

void
pg_set_toolchain(struct queue *base, int64_t target_id,
    const char *toolchain, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "set toolchain", NULL, done,
	    data);
	char b[PGQ_INT_BUF];
	const char *params[2] = { pgq_int(b, target_id), toolchain };

	pgq_write(c, "kiln_set_toolchain($1, $2)", 2, params);
}

void
pg_set_outputs(struct queue *base, int64_t job_id, const char *outputs,
    bool release, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "set outputs", NULL, done,
	    data);
	char b[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b, job_id), outputs,
	    release ? "1" : "0" };

	pgq_write(c, "kiln_set_outputs($1, $2, $3)", 3, params);
}

void
pg_set_verified(struct queue *base, int64_t target_id, int attempt,
    const char *verified, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "set verified", NULL, done,
	    data);
	char b[PGQ_INT_BUF], a[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b, target_id), pgq_int(a, attempt),
	    verified };

	pgq_write(c, "kiln_set_verified($1, $2, $3)", 3, params);
}

void
pg_fail_job(struct queue *base, int64_t job_id, const char *error,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "fail job", NULL, done, data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[3] = { pgq_int(b1, job_id), error,
	    pgq_int(b2, util_now_ms()) };

	pgq_write(c, "kiln_fail_job($1, $2, $3)", 3, params);
}

void
pg_expand_targets(struct queue *base, int64_t job_id, int64_t placeholder_id,
    char *const *targets, size_t n, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "expand targets", NULL, done,
	    data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	json_t *a = json_array();
	const char *params[3];
	char *text;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string_nocheck(targets[i]));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (text == NULL) {
		log_error("queue: expand targets: a name is not UTF-8");
		pgq_write_failed(c);
		return;
	}
	params[0] = pgq_int(b1, job_id);
	params[1] = pgq_int(b2, placeholder_id);
	params[2] = text;
	pgq_write(c, "kiln_expand_targets($1, $2, $3::jsonb)", 3, params);
	free(text);
}

/* --- deliveries, pushes, callbacks ------------------------------------ */

/* The job id in the one row, or QUEUE_ENOTFOUND. */
static int
job_id_parse(struct pgq_call *c, const PGresult *res)
{
	if (PQntuples(res) == 0)
		return QUEUE_ENOTFOUND;
	*(int64_t *)c->out[0] = pgq_get_int(res, 0, 0);
	return 0;
}

void
pg_delivery_job(struct queue *base, const char *forge, const char *id,
    int64_t *job_id, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "delivery", job_id_parse, done,
	    data);
	const char *params[2] = { forge, id };

	*job_id = 0;
	c->out[0] = job_id;
	pgq_read(c, "SELECT job_id FROM deliveries WHERE forge = $1 AND "
	    "id = $2", 2, params);
}

void
pg_push_job(struct queue *base, const char *project, const char *ref,
    const char *commit, int64_t *job_id, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "push", job_id_parse, done,
	    data);
	const char *params[3] = { project, ref, commit };

	*job_id = 0;
	c->out[0] = job_id;
	pgq_read(c, "SELECT job_id FROM pushes WHERE project = $1 AND "
	    "ref = $2 AND pushed_commit = $3", 3, params);
}

static int
notify_parse(struct pgq_call *c, const PGresult *res)
{
	int rows = PQntuples(res);
	struct queue_notify *v = NULL;

	if (rows > 0)
		v = xcalloc((size_t)rows, sizeof *v);
	for (int r = 0; r < rows; r++) {
		v[r].job_id = pgq_get_int(res, r, 0);
		v[r].attempts = (int)pgq_get_int(res, r, 1);
		v[r].finished_at = pgq_get_int(res, r, 2);
	}
	*(struct queue_notify **)c->out[0] = v;
	*(size_t *)c->out[1] = (size_t)rows;
	return 0;
}

void
pg_notify_due(struct queue *base, int64_t now, struct queue_notify **out,
    size_t *n, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "notify due", notify_parse,
	    done, data);
	char b[PGQ_INT_BUF];
	const char *params[1] = { pgq_int(b, now) };

	*out = NULL;
	*n = 0;
	c->out[0] = out;
	c->out[1] = n;
	/* A succeeded job is announced once it is signed, so that the
	 * receiver can fetch its SHA256SUMS. */
	pgq_read(c, "SELECT id, notify_attempts, coalesce(finished_at, 0) "
	    "FROM jobs WHERE notify_state = 'pending' AND notify_next_at <= $1 "
	    "AND (state <> 'succeeded' OR sums_sha256 IS NOT NULL OR "
	    "expired_at IS NOT NULL) ORDER BY notify_next_at, id LIMIT 64", 1,
	    params);
}

void
pg_notify_result(struct queue *base, int64_t job_id, const char *state,
    const char *error, int64_t next_at, queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "notify result", NULL, done,
	    data);
	char b1[PGQ_INT_BUF], b2[PGQ_INT_BUF];
	const char *params[4] = { pgq_int(b1, job_id), state, error,
	    next_at > 0 ? pgq_int(b2, next_at) : NULL };

	pgq_write(c, "kiln_notify_result($1, $2, $3, $4)", 4, params);
}
