-- kiln PostgreSQL schema 9: the lease a host holds on a running target
-- is its own, written where the target is.  A claim and each heartbeat
-- set lease_expires_at (001_init.sql) to the host's clock plus the lease
-- it holds for ([kilnd] target_lease, lease_ms), and any host takes back
-- a target whose lease_expires_at has passed by its clock (now_ms).
-- Until this schema the lease was the reader's: heartbeat_at plus the
-- reader's target_lease, which only held while every host had the same.
-- The partial index job_targets_lease (001_init.sql) serves the walk.

-- Targets running when this schema comes: their last beat plus the
-- default lease, as the hosts before it counted.
UPDATE job_targets SET lease_expires_at = coalesce(heartbeat_at, 0) + 120000
WHERE state = 'running';

-- kiln_claim (008_refusals.sql), holding the claimed target for lease_ms.
DROP FUNCTION kiln_claim(text, bigint, bigint);
CREATE FUNCTION kiln_claim(by_host text, now_ms bigint, of_job bigint,
    lease_ms bigint, OUT claimed bigint, OUT claimed_job bigint,
    OUT claimed_target text, OUT claimed_attempt integer)
LANGUAGE plpgsql AS $$
BEGIN
	IF of_job IS NULL THEN
		SELECT t.id, t.job_id, t.target, t.attempt + 1
		INTO claimed, claimed_job, claimed_target, claimed_attempt
		FROM job_targets t WHERE t.state = 'queued'
		    AND NOT EXISTS (SELECT 1 FROM target_refusals r
		        WHERE r.target_id = t.id AND r.host = by_host
		            AND r.expires_at > now_ms)
		ORDER BY t.priority DESC, t.job_id, t.id
		LIMIT 1 FOR NO KEY UPDATE OF t SKIP LOCKED;
	ELSE
		SELECT t.id, t.job_id, t.target, t.attempt + 1
		INTO claimed, claimed_job, claimed_target, claimed_attempt
		FROM job_targets t WHERE t.state = 'queued' AND t.job_id = of_job
		    AND NOT EXISTS (SELECT 1 FROM target_refusals r
		        WHERE r.target_id = t.id AND r.host = by_host
		            AND r.expires_at > now_ms)
		ORDER BY t.id
		LIMIT 1 FOR NO KEY UPDATE OF t SKIP LOCKED;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'nothing queued' USING ERRCODE = 'KL204';
	END IF;
	UPDATE job_targets t SET state = 'running', attempt = t.attempt + 1,
	    started_at = now_ms, heartbeat_at = now_ms, finished_at = NULL,
	    exit_status = NULL, error = NULL, host = by_host,
	    lease_expires_at = now_ms + lease_ms
	WHERE t.id = claimed;
	UPDATE jobs j SET state = 'running',
	    started_at = coalesce(j.started_at, now_ms)
	WHERE j.id = claimed_job
	    AND (j.state <> 'running' OR j.started_at IS NULL);
END $$;

-- kiln_heartbeat (005_fence.sql), moving the lease on by lease_ms.
DROP FUNCTION kiln_heartbeat(bigint, integer, bigint);
CREATE FUNCTION kiln_heartbeat(tid bigint, att integer, now_ms bigint,
    lease_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE job_targets t SET heartbeat_at = now_ms,
	    lease_expires_at = now_ms + lease_ms
	WHERE t.id = tid AND t.attempt = att AND t.state = 'running';
	IF NOT FOUND THEN
		PERFORM kiln_not_running(tid, att);
	END IF;
	RETURN 0;
END $$;

-- kiln_reclaim (005_fence.sql) for a target whose lease passed before
-- now_ms (the second argument was the oldest heartbeat still alive).
DROP FUNCTION kiln_reclaim(bigint, bigint, integer, bigint);
CREATE FUNCTION kiln_reclaim(tid bigint, max_attempts integer, now_ms bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
	canceled boolean;
	requeued boolean;
BEGIN
	SELECT t.job_id INTO jid FROM job_targets t
	WHERE t.id = tid AND t.state = 'running'
	    AND coalesce(t.lease_expires_at, 0) < now_ms
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'target % is not a stale build', tid
		    USING ERRCODE = 'KL404';
	END IF;
	PERFORM kiln_lock_job(jid);
	SELECT j.cancel_requested = 1 INTO canceled FROM jobs j
	WHERE j.id = jid;
	SELECT t.attempt < max_attempts INTO requeued FROM job_targets t
	WHERE t.id = tid;
	UPDATE job_targets t SET
	    state = CASE WHEN canceled THEN 'canceled'
	        WHEN t.attempt >= max_attempts THEN 'failed'
	        ELSE 'queued' END,
	    error = CASE WHEN canceled THEN t.error
	        WHEN t.attempt >= max_attempts THEN 'lost: its build stopped ' ||
	            'reporting (no heartbeat within target_lease), ' ||
	            t.attempt || ' run(s)'
	        ELSE t.error END,
	    finished_at = CASE WHEN canceled OR t.attempt >= max_attempts
	        THEN now_ms END,
	    started_at = CASE WHEN canceled OR t.attempt >= max_attempts
	        THEN t.started_at END,
	    heartbeat_at = NULL, lease_expires_at = NULL
	WHERE t.id = tid;
	PERFORM kiln_job_derive(jid, now_ms);
	IF NOT canceled AND requeued THEN
		PERFORM pg_notify('kiln_queue', '');
	END IF;
	RETURN 0;
END $$;
