/*
 * The PostgreSQL schema at start-up: synchronous, before the loop runs
 * (like the SQLite queue's open), since nothing can be served before the
 * tables are right.
 */
#ifndef KILN_PG_MIGRATE_H
#define KILN_PG_MIGRATE_H

#include <stddef.h>

#include "db/schema.h"

/*
 * Bring the database of conninfo to migration n of m[] (m[i].version is
 * i + 1): connect, take a session advisory lock (hosts of a farm start
 * at once; one migrates, the others wait and then find nothing to do),
 * create the kiln_schema table (version, name, applied_at: seconds since
 * the epoch) if missing, apply each missing migration in a transaction
 * of its own, unlock and disconnect.  Refuses a database whose schema is
 * newer than n, or whose recorded migrations are not m's.  Returns 0, or
 * -1 with the reason in err, which names the host, port and database but
 * never a password.
 */
int pg_migrate(const char *conninfo, const struct schema_migration *m,
    unsigned n, char *err, size_t errsize);

#endif
