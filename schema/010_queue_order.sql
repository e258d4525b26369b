-- kiln schema 10: the queue's order as indexes the planner cannot pass by.

-- Without statistics (kilnd never runs ANALYZE), SQLite takes an equality
-- on an indexed column to select about ten rows.  job_targets_state
-- (state) therefore won over the partial claim index for every query
-- that says "state = 'queued'": claiming the next target, listing the
-- next jobs and claiming a job's own target each read every queued row
-- and sorted them, 250-560 ms at 200,000 queued jobs instead of well
-- under a millisecond; cancelling and reprioritising a job walked the
-- same rows.
DROP INDEX job_targets_state;
DROP INDEX job_targets_claim;
DROP INDEX job_targets_running;

-- The scheduler's order within each state: the next queued target is the
-- first entry after ('queued'), highest priority, oldest job (job ids grow
-- with submission time), then the job's targets in order (the rowid, id,
-- ends every entry).  Counts by state are a pass over it, as they were
-- over job_targets_state.
CREATE INDEX job_targets_queue ON job_targets (state, priority DESC, job_id);

-- A job's targets in one state (its queued target to claim, its running
-- builds, cancel, a new priority): two equalities, which the planner
-- prefers to the state prefix above, and a walk of that job's targets
-- alone, in id order.
CREATE INDEX job_targets_job_state ON job_targets (job_id, state);
