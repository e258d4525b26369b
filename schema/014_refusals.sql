-- kiln schema 14: targets a host refused for want of a toolchain, as
-- PostgreSQL's schema 8 (schema/pg/008_refusals.sql) has them.  On
-- SQLite kilnd itself never refuses (one host: a target it cannot build
-- fails), but the queue answers queue_refuse() the same on both
-- backends.
--
-- One row per (target, host): the host's reason, shown in the target's
-- error when every live host has refused it, and until when the refusal
-- holds (claims of that host skip the target until then; after it, the
-- host plans the target again, in case its toolchains changed).
CREATE TABLE target_refusals (
	target_id  INTEGER NOT NULL REFERENCES job_targets (id)
	    ON DELETE CASCADE,
	host       TEXT    NOT NULL,		-- hosts.name; byte order
	why        TEXT    NOT NULL,
	refused_at INTEGER NOT NULL,		-- ms
	expires_at INTEGER NOT NULL,		-- ms
	PRIMARY KEY (target_id, host)
);
