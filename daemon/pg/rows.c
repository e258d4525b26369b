/*
 * Reading the PostgreSQL queue's rows: a job, a target with its
 * artifacts, the values of a text result.  One place for the columns'
 * meaning, so that a GET, a page of jobs and a cache lookup read them
 * alike.  Results come in text format: numbers through strtoll, NULL
 * told apart with PQgetisnull.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "pg-int.h"
#include "xmalloc.h"

bool
pgq_is_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) != 0;
}

int64_t
pgq_get_int(const PGresult *res, int row, int col)
{
	const char *s;

	if (PQgetisnull(res, row, col))
		return 0;
	s = PQgetvalue(res, row, col);
	/* The columns are bigint or integer: always digits.  A 0/1 flag of
	 * type boolean would come as "t"/"f"; none is (001_init.sql). */
	return strtoll(s, NULL, 10);
}

char *
pgq_get_str(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return xstrdup(PQgetvalue(res, row, col));
}

const char *
pgq_int(char *buf, int64_t v)
{
	snprintf(buf, PGQ_INT_BUF, "%" PRId64, v);
	return buf;
}

struct job *
pgq_job_from_row(const PGresult *res, int row, int c)
{
	struct job *j = xcalloc(1, sizeof *j);
	const char *s;

	j->id = pgq_get_int(res, row, c);
	j->repo = pgq_get_str(res, row, c + 1);
	j->ref = pgq_get_str(res, row, c + 2);
	j->commit = pgq_get_str(res, row, c + 3);
	j->recipe = pgq_get_str(res, row, c + 4);
	j->priority = (int)pgq_get_int(res, row, c + 5);
	s = PQgetisnull(res, row, c + 6) ? NULL : PQgetvalue(res, row, c + 6);
	if (s == NULL || job_state_parse(s, &j->state) != 0) {
		log_error("queue: job %" PRId64 " has unknown state '%s'", j->id,
		    s ? s : "NULL");
		job_free(j);
		return NULL;
	}
	j->error = pgq_get_str(res, row, c + 7);
	j->created_at = pgq_get_int(res, row, c + 8);
	j->started_at = pgq_get_int(res, row, c + 9);
	j->finished_at = pgq_get_int(res, row, c + 10);
	j->timeout = (int)pgq_get_int(res, row, c + 11);
	j->cache = pgq_get_int(res, row, c + 12) != 0;
	j->sums_sha256 = pgq_get_str(res, row, c + 13);
	j->sig_sha256 = pgq_get_str(res, row, c + 14);
	j->prov_sha256 = pgq_get_str(res, row, c + 15);
	j->expired_at = pgq_get_int(res, row, c + 16);
	j->project = pgq_get_str(res, row, c + 17);
	j->network = pgq_get_int(res, row, c + 18) != 0;
	j->notify_url = pgq_get_str(res, row, c + 19);
	j->notify_state = pgq_get_str(res, row, c + 20);
	j->notify_attempts = (int)pgq_get_int(res, row, c + 21);
	j->notify_error = pgq_get_str(res, row, c + 22);
	j->trust = job_trust_parse(PQgetisnull(res, row, c + 23) ? NULL :
	    PQgetvalue(res, row, c + 23));
	j->submitted_by = pgq_get_str(res, row, c + 24);
	j->signed_by = pgq_get_str(res, row, c + 25);
	j->outputs = pgq_get_str(res, row, c + 26);
	j->release = pgq_get_int(res, row, c + 27) != 0;
	j->retry_of = pgq_get_int(res, row, c + 28);
	return j;
}

int
pgq_artifacts_from_json(const char *text, struct artifact **arts, size_t *n)
{
	json_error_t jerr;
	json_t *a, *e;
	struct artifact *v;
	size_t i, len;

	*arts = NULL;
	*n = 0;
	if (text == NULL)
		return 0;
	if ((a = json_loads(text, 0, &jerr)) == NULL || !json_is_array(a)) {
		log_error("queue: artifacts: not a JSON array: %s",
		    a == NULL ? jerr.text : "another value");
		json_decref(a);
		return QUEUE_ERROR;
	}
	len = json_array_size(a);
	v = xcalloc(len ? len : 1, sizeof *v);
	json_array_foreach(a, i, e) {
		json_t *name = json_array_get(e, 0), *size = json_array_get(e, 1),
		    *sha = json_array_get(e, 2);

		if (!json_is_string(name) || !json_is_integer(size) ||
		    !(json_is_string(sha) || json_is_null(sha))) {
			log_error("queue: artifacts: a malformed entry");
			artifacts_free(v, i);
			json_decref(a);
			return QUEUE_ERROR;
		}
		v[i].name = xstrdup(json_string_value(name));
		v[i].size = json_integer_value(size);
		v[i].sha256 = json_is_string(sha) ?
		    xstrdup(json_string_value(sha)) : NULL;
	}
	json_decref(a);
	*arts = v;
	*n = len;
	return 0;
}

int
pgq_add_target(struct job *j, const PGresult *res, int row, int c)
{
	struct job_target *t;
	const char *s;

	/* A job has at most JOB_MAX_TARGETS targets: grow in steps of 4. */
	if (j->ntargets % 4 == 0)
		j->targets = xreallocarray(j->targets, j->ntargets + 4,
		    sizeof *j->targets);
	t = &j->targets[j->ntargets];
	memset(t, 0, sizeof *t);
	t->id = pgq_get_int(res, row, c);
	snprintf(t->target, sizeof t->target, "%s",
	    PQgetvalue(res, row, c + 1));
	s = PQgetisnull(res, row, c + 2) ? NULL : PQgetvalue(res, row, c + 2);
	if (s == NULL || target_state_parse(s, &t->state) != 0) {
		log_error("queue: target %" PRId64 " has unknown state", t->id);
		return QUEUE_ERROR;
	}
	t->attempt = (int)pgq_get_int(res, row, c + 3);
	t->has_exit_status = !PQgetisnull(res, row, c + 4);
	t->exit_status = (int)pgq_get_int(res, row, c + 4);
	t->error = pgq_get_str(res, row, c + 5);
	t->started_at = pgq_get_int(res, row, c + 6);
	t->finished_at = pgq_get_int(res, row, c + 7);
	t->cached = pgq_get_int(res, row, c + 8) != 0;
	t->toolchain = pgq_get_str(res, row, c + 9);
	t->cached_from = pgq_get_int(res, row, c + 10);
	t->host = pgq_get_str(res, row, c + 11);
	t->verified = pgq_get_str(res, row, c + 12);
	/* Counted only once its strings are in, so that job_free() frees
	 * them with the job when the artifacts fail. */
	j->ntargets++;
	if (pgq_artifacts_from_json(PQgetisnull(res, row, c + 13) ? NULL :
	    PQgetvalue(res, row, c + 13), &t->artifacts, &t->nartifacts) != 0)
		return QUEUE_ERROR;
	return 0;
}
