/*
 * PostgreSQL migrations (migrate.h): blocking libpq, which is right here
 * and only here: it runs once, before the loop, and kilnd cannot serve
 * anything until the schema is the one it was built for.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pg/migrate.h"
#include "pg/pgconn-int.h"
#include "util.h"

/* One advisory lock key for kiln's schema in any database: "kilnschm". */
#define SCHEMA_LOCK "7739836656251005037"

/* "host=... port=... dbname=...": what errors name (never a password). */
static int
describe(const char *conninfo, char *where, size_t size, char *err,
    size_t errsize)
{
	PQconninfoOption *opts;
	char *perr = NULL, msg[256];
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;

	if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		util_errorf(err, errsize, "postgresql connection string: %s",
		    pg_oneline(msg, sizeof msg, perr != NULL ? perr :
		    "out of memory"));
		PQfreemem(perr);
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val != NULL && *o->val ? o->val : NULL;

		if (strcmp(o->keyword, "hostaddr") == 0 && v != NULL)
			host = v;
		else if (strcmp(o->keyword, "host") == 0 && host == NULL)
			host = v;
		else if (strcmp(o->keyword, "port") == 0)
			port = v;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = v;
		else if (strcmp(o->keyword, "user") == 0)
			user = v;
	}
	snprintf(where, size, "host=%s port=%s dbname=%s",
	    host != NULL ? host : "(default)", port != NULL ? port : "(default)",
	    db != NULL ? db : user != NULL ? user : "(default)");
	PQconninfoFree(opts);
	return 0;
}

static void
on_notice(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	/* "relation kiln_schema already exists, skipping" on every start. */
	log_msg(sev != NULL && strcmp(sev, "WARNING") == 0 ? LOG_LVL_WARN :
	    LOG_LVL_DEBUG, "postgresql %s: server %s: %s", (const char *)arg,
	    sev != NULL ? sev : "NOTICE", msg != NULL ? msg : "");
}

/* Run sql (maybe several statements); 0, or -1 with what went wrong. */
static int
run(PGconn *conn, const char *sql, int nparams, const char *const *params,
    PGresult **out, const char *where, const char *what, char *err,
    size_t errsize)
{
	PGresult *r = nparams > 0 ? PQexecParams(conn, sql, nparams, NULL,
	    params, NULL, NULL, 0) : PQexec(conn, sql);
	char msg[512];
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (out != NULL)
			*out = r;
		else
			PQclear(r);
		return 0;
	}
	util_errorf(err, errsize, "postgresql %s: %s: %s", where, what,
	    pg_oneline(msg, sizeof msg, r != NULL ? PQresultErrorMessage(r) :
	    PQerrorMessage(conn)));
	PQclear(r);
	return -1;
}

static int
apply(PGconn *conn, const struct schema_migration *m, const char *where,
    char *err, size_t errsize)
{
	char version[16], what[300];
	const char *params[2] = { version, m->name };

	snprintf(version, sizeof version, "%d", m->version);
	snprintf(what, sizeof what, "migration %s", m->name);
	if (run(conn, "BEGIN", 0, NULL, NULL, where, what, err, errsize) != 0)
		return -1;
	if (run(conn, m->sql, 0, NULL, NULL, where, what, err, errsize) != 0 ||
	    run(conn, "INSERT INTO kiln_schema (version, name, applied_at) "
	    "VALUES ($1, $2, extract(epoch FROM now())::bigint)", 2, params,
	    NULL, where, what, err, errsize) != 0 ||
	    run(conn, "COMMIT", 0, NULL, NULL, where, what, err, errsize) != 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	log_info("postgresql %s: applied schema migration %s", where, m->name);
	return 0;
}

/* The recorded migrations are m's first ones; how many in *have. */
static int
check_recorded(PGconn *conn, const struct schema_migration *m, unsigned n,
    unsigned *have, const char *where, char *err, size_t errsize)
{
	PGresult *r = NULL;
	int rows, last, rc = -1;

	if (run(conn, "SELECT version, name FROM kiln_schema ORDER BY version",
	    0, NULL, &r, where, "reading kiln_schema", err, errsize) != 0)
		return -1;
	rows = PQntuples(r);
	last = rows > 0 ? atoi(PQgetvalue(r, rows - 1, 0)) : 0;
	if (last > (int)n) {
		util_errorf(err, errsize, "postgresql %s: the database's schema "
		    "is version %d, newer than this kilnd's %u: run a kilnd at "
		    "least as new as the one that migrated it", where, last, n);
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		int v = atoi(PQgetvalue(r, i, 0));
		const char *name = PQgetvalue(r, i, 1);

		if (v != i + 1 || strcmp(name, m[i].name) != 0) {
			util_errorf(err, errsize, "postgresql %s: kiln_schema "
			    "records migration %d as \"%s\", this kilnd has "
			    "%d \"%s\": not this kilnd's database", where, v,
			    name, i + 1, m[i].name);
			goto out;
		}
	}
	*have = (unsigned)rows;
	rc = 0;
out:
	PQclear(r);
	return rc;
}

int
pg_migrate(const char *conninfo, const struct schema_migration *m,
    unsigned n, char *err, size_t errsize)
{
	/* Defaults first: the conninfo, expanded from dbname, overrides. */
	const char *kw[] = { "fallback_application_name", "connect_timeout",
	    "dbname", NULL };
	const char *val[] = { "kilnd-migrate", "10", conninfo, NULL };
	PGconn *conn = NULL;
	PGresult *r = NULL;
	char where[300], msg[512];
	unsigned have = 0;
	bool locked = false;
	int rc = -1;

	if (describe(conninfo, where, sizeof where, err, errsize) != 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (m[i].version != (int)i + 1)
			return util_errorf(err, errsize, "schema migration %s: "
			    "version %d at place %u", m[i].name, m[i].version,
			    i + 1);
	conn = PQconnectdbParams(kw, val, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		util_errorf(err, errsize, "postgresql %s: cannot connect: %s",
		    where, pg_oneline(msg, sizeof msg, conn != NULL ?
		    PQerrorMessage(conn) : "out of memory"));
		goto out;
	}
	PQsetNoticeReceiver(conn, on_notice, where);
	if (run(conn, "SELECT pg_try_advisory_lock(" SCHEMA_LOCK ")", 0, NULL,
	    &r, where, "taking the schema lock", err, errsize) != 0)
		goto out;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		log_info("postgresql %s: another kilnd holds the schema lock "
		    "(migrating?): waiting", where);
		if (run(conn, "SELECT pg_advisory_lock(" SCHEMA_LOCK ")", 0,
		    NULL, NULL, where, "taking the schema lock", err,
		    errsize) != 0)
			goto out;
	}
	locked = true;
	if (run(conn, "CREATE TABLE IF NOT EXISTS kiln_schema ("
	    "version int PRIMARY KEY, name text NOT NULL, "
	    "applied_at bigint NOT NULL)", 0, NULL, NULL, where,
	    "creating kiln_schema", err, errsize) != 0 ||
	    check_recorded(conn, m, n, &have, where, err, errsize) != 0)
		goto out;
	for (unsigned i = have; i < n; i++)
		if (apply(conn, &m[i], where, err, errsize) != 0)
			goto out;
	rc = 0;
out:
	PQclear(r);
	if (locked)
		PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" SCHEMA_LOCK
		    ")"));
	PQfinish(conn);
	return rc;
}
