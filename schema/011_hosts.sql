-- kiln schema 11: which host runs or ran each target.

-- The name of the kilnd host that claimed the target (its [kilnd]
-- host_name), kept after the target ends.  On one host it is always that
-- host; in a farm on a shared database it says where the build ran and so
-- where its log and files are.  NULL for targets that never started.
ALTER TABLE job_targets ADD COLUMN host TEXT;
