-- kiln schema 15: what a job ships beyond its builds' files (archives,
-- SBOMs, a universal macOS binary, an image, a verifying rebuild).
--
-- outputs: the job's canonical "outputs" object (lib/outputs.h), NULL for
-- none.  release: 1 when they need a packaging step: once every build of
-- the job has succeeded, the same transaction adds one more target row,
-- named 'release', queued like any other, which packages the builds'
-- files (kiln-worker package) and holds what it makes as its artifacts.
-- A job whose build failed gets no such row.
ALTER TABLE jobs ADD COLUMN outputs TEXT;
ALTER TABLE jobs ADD COLUMN release INTEGER NOT NULL DEFAULT 0;

-- A target of a job that asked "verify": "rebuild": what the second,
-- different build showed, as JSON {"reproducible": true|false,
-- "differences": [PATH...]?, "more_differences": N?}; NULL: not
-- verified.  Recorded just before the target's end.
ALTER TABLE job_targets ADD COLUMN verified TEXT;
