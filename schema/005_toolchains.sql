-- Which toolchain built each target: "go1.22.12" for go recipes, the C
-- compiler's identity for command recipes; NULL before it starts.
ALTER TABLE job_targets ADD COLUMN toolchain TEXT;
