-- kiln schema 1: the job queue.
-- Applied once, in one transaction, by kilnd at start (PRAGMA user_version).
-- Timestamps are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE jobs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	repo        TEXT    NOT NULL,
	ref         TEXT    NOT NULL,
	"commit"    TEXT,                         -- resolved 40-hex commit, NULL until fetched
	recipe      TEXT,                         -- recipe JSON from the request, NULL = from repo
	priority    INTEGER NOT NULL DEFAULT 0,
	state       TEXT    NOT NULL DEFAULT 'queued'
	            CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
	error       TEXT,
	-- Set by cancel; running targets are stopped, and recovery after a
	-- crash must not queue them again.
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	started_at  INTEGER,
	finished_at INTEGER
);

-- Listing newest first, optionally by state (GET /v1/jobs?state=&after=).
CREATE INDEX jobs_state_id ON jobs (state, id);

CREATE TABLE job_targets (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	target       TEXT    NOT NULL,            -- normalized os/arch[/variant]
	-- Copied from the job so that the claim index below covers it.
	priority     INTEGER NOT NULL DEFAULT 0,
	state        TEXT    NOT NULL DEFAULT 'queued'
	             CHECK (state IN ('queued', 'running', 'succeeded', 'failed',
	                              'timed_out', 'canceled')),
	attempt      INTEGER NOT NULL DEFAULT 0,
	exit_status  INTEGER,
	error        TEXT,
	heartbeat_at INTEGER,
	started_at   INTEGER,
	finished_at  INTEGER,
	UNIQUE (job_id, target)
);

-- Claiming "the next queued target by priority, then age" walks the first
-- entry of this partial index: O(log n) however many rows are finished.
-- Job ids grow with submission time, so job_id orders by age.
CREATE INDEX job_targets_claim ON job_targets (priority DESC, job_id, id)
	WHERE state = 'queued';
-- Running targets, for recovery after a crash and heartbeats.
CREATE INDEX job_targets_running ON job_targets (job_id)
	WHERE state = 'running';
