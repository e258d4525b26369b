/* The SQL migrations in schema/, compiled in by scripts/embed-schema. */
#ifndef KILN_SCHEMA_H
#define KILN_SCHEMA_H

struct schema_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct schema_migration schema_migrations[];
extern const unsigned schema_migration_count;
/* The PostgreSQL backend's (schema/pg/), numbered on their own. */
extern const struct schema_migration pg_schema_migrations[];
extern const unsigned pg_schema_migration_count;

#endif
