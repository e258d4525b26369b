-- kiln PostgreSQL schema 5: fencing by attempt.  The writes of a claimed
-- target -- its heartbeat, giving it back, finishing it -- carry the
-- attempt its claim returned, and apply only while the target is running
-- that attempt.  A host that was paused or cut off past its lease, whose
-- target was meanwhile given back (and perhaps claimed again, by another
-- host), is refused with KL409 instead of overwriting the newer run;
-- KL404 stays for a target that does not exist.  Conventions as in
-- 002_queue.sql and 003_targets.sql (one call per write, locks targets
-- then job, times are the caller's milliseconds).
--
-- And change notifications: every write that gives the queue something
-- to claim -- a submission, a target given back (released, reclaimed,
-- recovered) -- sends NOTIFY kiln_queue, without a payload, so that
-- every host's LISTEN wakes its scheduler at once instead of at its
-- next poll.  It is sent at commit, never for a rolled-back write, and
-- PostgreSQL folds the duplicates of one transaction into one.

-- The refusal of a fenced write that changed nothing: KL404 when there is
-- no target tid, else KL409 (not running attempt att: superseded).
CREATE FUNCTION kiln_not_running(tid bigint, att integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM job_targets t WHERE t.id = tid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no target %', tid USING ERRCODE = 'KL404';
	END IF;
	RAISE EXCEPTION 'target % is not running attempt %', tid, att
	    USING ERRCODE = 'KL409';
END $$;

DROP FUNCTION kiln_heartbeat(bigint, bigint);
DROP FUNCTION kiln_release(bigint, bigint);
DROP FUNCTION kiln_finish_build(bigint, bigint, text, jsonb);

-- Mark attempt att of target tid alive.
CREATE FUNCTION kiln_heartbeat(tid bigint, att integer, now_ms bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE job_targets t SET heartbeat_at = now_ms
	WHERE t.id = tid AND t.attempt = att AND t.state = 'running';
	IF NOT FOUND THEN
		PERFORM kiln_not_running(tid, att);
	END IF;
	RETURN 0;
END $$;

-- Give attempt att of target tid back (its host is stopping): queued
-- again with the run not counted, or canceled when its job is being
-- canceled.
CREATE FUNCTION kiln_release(tid bigint, att integer, now_ms bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
	canceled boolean;
BEGIN
	SELECT t.job_id INTO jid FROM job_targets t
	WHERE t.id = tid AND t.attempt = att AND t.state = 'running'
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		PERFORM kiln_not_running(tid, att);
	END IF;
	PERFORM kiln_lock_job(jid);
	SELECT j.cancel_requested = 1 INTO canceled FROM jobs j
	WHERE j.id = jid;
	UPDATE job_targets t SET
	    state = CASE WHEN canceled THEN 'canceled' ELSE 'queued' END,
	    finished_at = CASE WHEN canceled THEN now_ms END,
	    attempt = greatest(t.attempt - 1, 0), started_at = NULL,
	    heartbeat_at = NULL, lease_expires_at = NULL
	WHERE t.id = tid;
	PERFORM kiln_job_derive(jid, now_ms);
	IF NOT canceled THEN
		PERFORM pg_notify('kiln_queue', '');
	END IF;
	RETURN 0;
END $$;

-- End attempt att of target tid in a terminal state, with its files and
-- cache key, and derive its job's state, which it returns (outcome as in
-- 003_targets.sql).  The target's row is locked by its UPDATE, then the
-- job's row (kiln_lock_job, FOR NO KEY UPDATE) before the job's state is
-- derived: of two hosts ending a job's last two targets, the second
-- waits for the first's commit and sees it, so exactly one sees the job
-- end (and it alone is to sign it).
CREATE FUNCTION kiln_finish_build(tid bigint, att integer, now_ms bigint,
    by_host text, outcome jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text := outcome->>'state';
	jid bigint;
BEGIN
	IF st IS NULL OR st NOT IN ('succeeded', 'failed', 'timed_out',
	    'canceled') THEN
		RAISE EXCEPTION 'finish: "%" is not a state a target ends in',
		    st;
	END IF;
	-- A cached target never ran: it gets a start time now.
	UPDATE job_targets t SET state = st,
	    exit_status = (outcome->>'exit_status')::integer,
	    error = outcome->>'error', finished_at = now_ms,
	    cache_key = CASE WHEN st = 'succeeded'
	        THEN outcome->>'cache_key' END,
	    cached = coalesce((outcome->>'cached')::integer, 0),
	    cached_from = (outcome->>'cached_from')::bigint,
	    started_at = coalesce(t.started_at, now_ms),
	    lease_expires_at = NULL
	WHERE t.id = tid AND t.attempt = att AND t.state = 'running'
	RETURNING t.job_id INTO jid;
	IF NOT FOUND THEN
		PERFORM kiln_not_running(tid, att);
	END IF;
	INSERT INTO artifacts (target_id, name, size, sha256, host)
	SELECT tid, a.e->>0, (a.e->>1)::bigint, a.e->>2, by_host
	FROM jsonb_array_elements(coalesce(outcome->'artifacts', '[]'))
	    WITH ORDINALITY AS a (e, ord)
	ORDER BY a.ord;
	PERFORM kiln_lock_job(jid);
	RETURN kiln_job_derive(jid, now_ms);
END $$;

-- --- change notifications ------------------------------------------------

-- kiln_submit (002_queue.sql), which now tells the other hosts.
CREATE OR REPLACE FUNCTION kiln_submit(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	j jsonb;
	t text;
	id bigint;
	tid bigint;
	ids jsonb;
	res jsonb := '[]';
BEGIN
	FOR j IN SELECT e FROM jsonb_array_elements(batch)
	    WITH ORDINALITY AS a (e, ord) ORDER BY ord LOOP
		INSERT INTO jobs (repo, ref, recipe, priority, state,
		    created_at, timeout, cache, "commit", project, network,
		    notify_url, trust, submitted_by)
		VALUES (j->>'repo', j->>'ref', j->>'recipe',
		    (j->>'priority')::integer, 'queued',
		    (j->>'created_at')::bigint, (j->>'timeout')::integer,
		    (j->>'cache')::integer, j->>'commit', j->>'project',
		    (j->>'network')::integer, j->>'notify_url', j->>'trust',
		    j->>'submitted_by')
		RETURNING jobs.id INTO id;
		IF j->>'delivery_id' IS NOT NULL THEN
			INSERT INTO deliveries (forge, id, job_id, created_at)
			VALUES (j->>'delivery_forge', j->>'delivery_id', id,
			    (j->>'created_at')::bigint)
			ON CONFLICT DO NOTHING;
			-- A webhook's job: its push is a redelivery key too.
			IF j->>'project' IS NOT NULL AND
			    j->>'commit' IS NOT NULL THEN
				INSERT INTO pushes (project, ref,
				    pushed_commit, job_id, created_at)
				VALUES (j->>'project', j->>'ref',
				    j->>'commit', id,
				    (j->>'created_at')::bigint)
				ON CONFLICT DO NOTHING;
			END IF;
		END IF;
		ids := jsonb_build_array(id);
		FOR t IN SELECT e FROM jsonb_array_elements_text(j->'targets')
		    WITH ORDINALITY AS a (e, ord) ORDER BY ord LOOP
			INSERT INTO job_targets (job_id, target, priority,
			    state)
			VALUES (id, t, (j->>'priority')::integer, 'queued')
			RETURNING job_targets.id INTO tid;
			ids := ids || to_jsonb(tid);
		END LOOP;
		res := res || jsonb_build_array(ids);
	END LOOP;
	PERFORM pg_notify('kiln_queue', '');
	RETURN res;
END $$;

-- kiln_reclaim (003_targets.sql), telling when the target is queued
-- again (not when it ended, canceled or failed).
CREATE OR REPLACE FUNCTION kiln_reclaim(tid bigint, stale_before bigint,
    max_attempts integer, now_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
	canceled boolean;
	requeued boolean;
BEGIN
	SELECT t.job_id INTO jid FROM job_targets t
	WHERE t.id = tid AND t.state = 'running'
	    AND coalesce(t.heartbeat_at, 0) < stale_before
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

-- kiln_recover (003_targets.sql), telling when a target is queued again.
CREATE OR REPLACE FUNCTION kiln_recover(by_host text, max_attempts integer,
    now_ms bigint, OUT requeued integer, OUT failed integer)
LANGUAGE plpgsql AS $$
DECLARE
	tids bigint[];
	jids bigint[];
BEGIN
	SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}'),
	    coalesce(array_agg(DISTINCT l.job_id), '{}')
	INTO tids, jids
	FROM (SELECT t.id, t.job_id FROM job_targets t
	    WHERE (t.state = 'running' AND t.host = by_host)
	        OR (t.state = 'queued' AND t.job_id IN
	            (SELECT j.id FROM jobs j WHERE j.cancel_requested = 1))
	    ORDER BY t.id FOR NO KEY UPDATE) AS l;
	PERFORM 1 FROM jobs j WHERE j.id = ANY (jids) ORDER BY j.id
	    FOR NO KEY UPDATE;
	UPDATE job_targets t SET state = 'canceled', finished_at = now_ms,
	    error = 'canceled; kilnd stopped while it ran',
	    lease_expires_at = NULL
	WHERE t.id = ANY (tids) AND t.state IN ('running', 'queued')
	    AND t.job_id IN (SELECT j.id FROM jobs j
	        WHERE j.id = ANY (jids) AND j.cancel_requested = 1);
	UPDATE job_targets t SET state = 'failed',
	    error = 'interrupted: kilnd stopped during the build ' ||
	        t.attempt || ' time(s)',
	    finished_at = now_ms, lease_expires_at = NULL
	WHERE t.id = ANY (tids) AND t.state = 'running'
	    AND t.attempt >= max_attempts;
	GET DIAGNOSTICS failed = ROW_COUNT;
	UPDATE job_targets t SET state = 'queued', started_at = NULL,
	    heartbeat_at = NULL, lease_expires_at = NULL
	WHERE t.id = ANY (tids) AND t.state = 'running';
	GET DIAGNOSTICS requeued = ROW_COUNT;
	PERFORM kiln_job_derive(u.id, now_ms)
	FROM unnest(jids) AS u (id) ORDER BY u.id;
	IF requeued > 0 THEN
		PERFORM pg_notify('kiln_queue', '');
	END IF;
END $$;
