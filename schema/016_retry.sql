-- kiln schema 16: retried jobs.
--
-- retry_of: the job that POST /v1/jobs/{id}/retry made this one from (the
-- same repository, pinned commit, ref, targets, recipe and outputs), NULL
-- for any other job.  A plain number, not a foreign key: retention may
-- remove the retried job long before the retry, and the retry's record
-- of where it came from stays true all the same.
ALTER TABLE jobs ADD COLUMN retry_of INTEGER;
