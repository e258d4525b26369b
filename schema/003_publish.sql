-- kiln schema 3: signed results, the build cache, retention.

-- "cache": false in the request: build every target even when an equal
-- build is on record.
ALTER TABLE jobs ADD COLUMN cache INTEGER NOT NULL DEFAULT 1;
-- A succeeded job's signed files, as blobs of the content-addressed
-- store, set together in one statement once all three are stored: a job
-- is either signed or not, never half.
ALTER TABLE jobs ADD COLUMN sums_sha256 TEXT;	-- SHA256SUMS
ALTER TABLE jobs ADD COLUMN sig_sha256 TEXT;	-- SHA256SUMS.minisig
ALTER TABLE jobs ADD COLUMN prov_sha256 TEXT;	-- provenance.intoto.jsonl
-- Retention removed the job's artifacts, signed files and logs; the job
-- itself stays on record.
ALTER TABLE jobs ADD COLUMN expired_at INTEGER;

-- The target's artifacts were those of an earlier equal build.
ALTER TABLE job_targets ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
-- SHA-256 over (commit, target, recipe, toolchain identity); set on a
-- succeeded target whose artifacts later equal builds may reuse.
ALTER TABLE job_targets ADD COLUMN cache_key TEXT;

CREATE INDEX job_targets_cache ON job_targets (cache_key)
	WHERE cache_key IS NOT NULL AND state = 'succeeded';
-- 1 from the transaction in which a job succeeds until its signed files
-- are recorded: after a crash in between, the next start signs it.
-- Jobs that succeeded before this schema have no digests to sign and
-- keep 0 (deriving "to sign" from sums_sha256 IS NULL would make kilnd
-- try, and fail, to sign every old job at every start).
ALTER TABLE jobs ADD COLUMN sign_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_unsigned ON jobs (id) WHERE sign_pending = 1;
-- The sweep: which blobs are referenced.
CREATE INDEX artifacts_sha256 ON artifacts (sha256);
-- Targets by state (GET /metrics, the queue bound): a pass over this
-- index instead of a scan and sort of the table, 25 ms instead of 130 ms
-- for 400,000 targets.
CREATE INDEX job_targets_state ON job_targets (state);
