-- kiln schema 13: facts of the farm every host must agree on, as
-- PostgreSQL's kiln_farm (schema/pg/001_init.sql), one row each.
-- 'public_key' is the signing key (minisign's base64 line), recorded by
-- the first kilnd that opens the database: a kilnd whose kiln.key
-- differs refuses to start, so that a state directory moved under
-- another key does not sign part of its jobs with each.
CREATE TABLE kiln_farm (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
