-- kiln schema 2: what builds need and leave behind.

-- A per-job wall-clock limit for each target, in seconds; NULL = the
-- farm's build_timeout.  It may only lower the farm's limit.
ALTER TABLE jobs ADD COLUMN timeout INTEGER;

-- The files a succeeded target left in its out directory, recorded in the
-- same transaction that marks it succeeded.  sha256 is filled in when the
-- file is moved into the content-addressed store.
CREATE TABLE artifacts (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	target_id INTEGER NOT NULL REFERENCES job_targets (id) ON DELETE CASCADE,
	name      TEXT    NOT NULL,
	size      INTEGER NOT NULL,
	sha256    TEXT,
	UNIQUE (target_id, name)
);
