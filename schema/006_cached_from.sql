-- The job whose build a cached target reused (its provenance and log
-- name it); NULL for a target that was built.
ALTER TABLE job_targets ADD COLUMN cached_from INTEGER;
