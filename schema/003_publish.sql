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
-- Succeeded jobs still to be signed (after a crash between the last
-- target and the signature).
CREATE INDEX jobs_unsigned ON jobs (id)
	WHERE state = 'succeeded' AND sums_sha256 IS NULL AND expired_at IS NULL;
-- The sweep: which blobs are referenced.
CREATE INDEX artifacts_sha256 ON artifacts (sha256);
