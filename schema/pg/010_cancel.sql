-- kiln PostgreSQL schema 10: a cancel stops the running builds of the job
-- on every host of the farm, not only on the host that took the request.
-- Two ways, so that one missed is made up by the other:
-- - kiln_cancel tells every host at once (NOTIFY kiln_cancel, the job's
--   id as the payload) when targets of the job still run; the host that
--   runs them stops them.
-- - kiln_heartbeat answers 1 instead of 0 for a target whose job is
--   being canceled: a host that missed the notification (its LISTEN
--   connection was down) stops the build at its next beat.  The beat is
--   recorded all the same: the lease holds while the build stops.
-- Conventions as in 002_queue.sql and 003_targets.sql.

-- kiln_cancel (002_queue.sql), with the notification.  Sent at commit,
-- so a host told reads the job as canceled.
CREATE OR REPLACE FUNCTION kiln_cancel(job_id bigint, now bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	running bigint;
BEGIN
	PERFORM 1 FROM job_targets t WHERE t.job_id = kiln_cancel.job_id
	    ORDER BY t.id FOR NO KEY UPDATE;
	st := kiln_lock_job(job_id);
	IF st IN ('succeeded', 'failed') THEN
		RAISE EXCEPTION 'job % has ended', job_id
		    USING ERRCODE = 'KL409';
	END IF;
	UPDATE jobs SET cancel_requested = 1 WHERE id = job_id;
	UPDATE job_targets t SET state = 'canceled', finished_at = now,
	    error = 'canceled before it started'
	WHERE t.job_id = kiln_cancel.job_id AND t.state = 'queued';
	SELECT count(*) INTO running FROM job_targets t
	WHERE t.job_id = kiln_cancel.job_id AND t.state = 'running';
	PERFORM kiln_job_derive(job_id, now);
	IF running > 0 THEN
		PERFORM pg_notify('kiln_cancel', job_id::text);
	END IF;
	RETURN running;
END $$;

-- kiln_heartbeat (009_lease.sql): 1 when the target's job is being
-- canceled, else 0 as before.
CREATE OR REPLACE FUNCTION kiln_heartbeat(tid bigint, att integer,
    now_ms bigint, lease_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
BEGIN
	UPDATE job_targets t SET heartbeat_at = now_ms,
	    lease_expires_at = now_ms + lease_ms
	WHERE t.id = tid AND t.attempt = att AND t.state = 'running'
	RETURNING t.job_id INTO jid;
	IF NOT FOUND THEN
		PERFORM kiln_not_running(tid, att);
	END IF;
	RETURN CASE WHEN EXISTS (SELECT 1 FROM jobs j
	    WHERE j.id = jid AND j.cancel_requested = 1) THEN 1 ELSE 0 END;
END $$;
