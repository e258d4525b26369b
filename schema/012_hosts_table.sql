-- kiln schema 12: the hosts of the farm, as PostgreSQL's schema 1 has
-- them (schema/pg/001_init.sql), with the same columns.

-- One row per kilnd host, named by its [kilnd] host_name: written when
-- it starts, with its target heartbeats (every quarter of target_lease)
-- and once more when it stops, with nothing running.  GET /v1/hosts
-- shows them; a host whose heartbeat_at is older than two leases is not
-- alive.  On SQLite there is one host, the kilnd that owns the database;
-- a host_name changed between starts leaves the old row behind, which
-- GET shows as not alive.
CREATE TABLE hosts (
	name         TEXT    PRIMARY KEY,         -- host_name; byte order
	base_url     TEXT    NOT NULL,            -- where clients reach its API
	slots        INTEGER NOT NULL DEFAULT 0 CHECK (slots >= 0),  -- workers
	running      INTEGER NOT NULL DEFAULT 0 CHECK (running >= 0), -- builds now
	version      TEXT    NOT NULL,            -- kilnd's version
	started_at   INTEGER NOT NULL,            -- ms, this run's start
	heartbeat_at INTEGER NOT NULL,            -- ms, its last beat
	-- The targets it can build (its toolchain map, as JSON), as in
	-- PostgreSQL; NULL until it has looked.
	toolchains   TEXT
);
