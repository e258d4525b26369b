-- kiln PostgreSQL schema 2: the queue's writes on jobs as functions, and
-- the counts by state.
--
-- Each write of the queue (daemon/pg/) is one statement, "SELECT r.*,
-- current_setting('kiln.delta', true) FROM kiln_x(...) AS r", run in its
-- own transaction: a broken connection leaves either all of an operation
-- or none of it, and the farm's rules (row locks) live next to the data.
-- The meaning of each function is that of the SQLite operation of the
-- same name in daemon/db/ (queue.h says what callers may rely on).
--
-- Expected refusals are raised with SQLSTATEs of kiln's own, which the
-- backend turns into queue.h's codes without logging them; a raise rolls
-- back what the function did before it:
--   KL404  no such job or target         QUEUE_ENOTFOUND
--   KL409  the job's state forbids it    QUEUE_ECONFLICT
--   KL204  nothing to claim              QUEUE_EEMPTY
--
-- Row locks, in one order, so that two hosts never deadlock: a job's
-- targets first (in id order, when several), then the job's row, with
-- FOR NO KEY UPDATE (FOR UPDATE would also wait for inserts of targets
-- that reference the job).  A claim takes a target with SKIP LOCKED and
-- then its job, which fits the order.
--
-- Times are milliseconds since the epoch, given by the caller (the host's
-- clock, as with SQLite).

-- Counts by state.  A host reads them all once (kiln_counts) and then
-- keeps them from what each of its writes changed: the triggers below
-- gather, per transaction, how many rows entered and left each state, in
-- the transaction-local setting kiln.delta (jobs' five states, then the
-- targets' six, in the order of enum job_state and enum target_state),
-- which the write's statement returns with its result.  A transaction
-- that rolls back leaves no delta, as it leaves no rows.
CREATE FUNCTION kiln_count_delta() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	d bigint[] := coalesce(nullif(current_setting('kiln.delta', true),
	    '')::bigint[], '{0,0,0,0,0,0,0,0,0,0,0}'::bigint[]);
	base integer := 0;
	states text[] := ARRAY['queued', 'running', 'succeeded', 'failed',
	    'canceled'];
	i integer;
BEGIN
	IF TG_TABLE_NAME = 'job_targets' THEN
		base := 5;
		states := ARRAY['queued', 'running', 'succeeded', 'failed',
		    'timed_out', 'canceled'];
	END IF;
	IF TG_OP <> 'INSERT' THEN
		i := base + array_position(states, OLD.state);
		d[i] := d[i] - 1;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		i := base + array_position(states, NEW.state);
		d[i] := d[i] + 1;
	END IF;
	PERFORM set_config('kiln.delta', d::text, true);
	RETURN NULL;
END $$;

CREATE TRIGGER jobs_count AFTER INSERT OR DELETE ON jobs
	FOR EACH ROW EXECUTE FUNCTION kiln_count_delta();
CREATE TRIGGER jobs_count_state AFTER UPDATE OF state ON jobs
	FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
	EXECUTE FUNCTION kiln_count_delta();
CREATE TRIGGER job_targets_count AFTER INSERT OR DELETE ON job_targets
	FOR EACH ROW EXECUTE FUNCTION kiln_count_delta();
CREATE TRIGGER job_targets_count_state AFTER UPDATE OF state ON job_targets
	FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
	EXECUTE FUNCTION kiln_count_delta();

-- Every state's count, in the order of kiln.delta.  A pass over the
-- state indexes: run at open and every few seconds, never per request.
CREATE FUNCTION kiln_counts() RETURNS bigint[]
LANGUAGE sql STABLE AS $$
	SELECT array_agg(coalesce(c.n, 0) ORDER BY s.ord)
	FROM unnest(ARRAY['j:queued', 'j:running', 'j:succeeded', 'j:failed',
	    'j:canceled', 't:queued', 't:running', 't:succeeded', 't:failed',
	    't:timed_out', 't:canceled']) WITH ORDINALITY AS s (k, ord)
	LEFT JOIN (
		SELECT 'j:' || state AS k, count(*) AS n FROM jobs
		GROUP BY state
		UNION ALL
		SELECT 't:' || state, count(*) FROM job_targets
		GROUP BY state) AS c USING (k)
$$;

-- Lock job_id's row (after its targets: see the head) and return its
-- state; KL404 when there is no such job.
CREATE FUNCTION kiln_lock_job(job_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	SELECT j.state INTO st FROM jobs j WHERE j.id = job_id
	    FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no job %', job_id USING ERRCODE = 'KL404';
	END IF;
	RETURN st;
END $$;

-- A job that ended with a callback URL: its callback is due at now.
CREATE FUNCTION kiln_job_notify_due(job_id bigint, now bigint) RETURNS void
LANGUAGE sql AS $$
	UPDATE jobs SET notify_state = 'pending', notify_next_at = now
	WHERE id = job_id AND notify_url IS NOT NULL AND notify_state IS NULL
	    AND state IN ('succeeded', 'failed', 'canceled')
$$;

-- Derive the job's state from its targets' (SQLite's db_update_job_state):
-- any target not ended -> running once anything started or ended, else
-- queued; all ended -> succeeded if all succeeded, failed if any failed
-- or timed out, else canceled.  A job that just succeeded is to be
-- signed; one that ended owes its callback.  The caller holds the job's
-- row lock (kiln_lock_job), taken after its own change to the targets:
-- each statement here sees every target change committed before the
-- lock was granted, so of two hosts ending a job's last two targets at
-- once exactly one sees the job end.  Returns the new state.
CREATE FUNCTION kiln_job_derive(job_id bigint, now bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	UPDATE jobs SET state = CASE
	    WHEN s.open > 0 AND (s.running > 0 OR s.open < s.total)
	        THEN 'running'
	    WHEN s.open > 0 THEN 'queued'
	    WHEN s.ok = s.total THEN 'succeeded'
	    WHEN s.bad > 0 THEN 'failed'
	    ELSE 'canceled' END,
	    finished_at = CASE WHEN s.open = 0
	        THEN coalesce(jobs.finished_at, now) ELSE NULL END
	FROM (SELECT count(*) AS total,
	        count(*) FILTER (WHERE t.state IN ('queued', 'running'))
	            AS open,
	        count(*) FILTER (WHERE t.state = 'running') AS running,
	        count(*) FILTER (WHERE t.state = 'succeeded') AS ok,
	        count(*) FILTER (WHERE t.state IN ('failed', 'timed_out'))
	            AS bad
	    FROM job_targets t WHERE t.job_id = kiln_job_derive.job_id) AS s
	WHERE jobs.id = kiln_job_derive.job_id
	RETURNING jobs.state INTO st;
	UPDATE jobs SET sign_pending = 1
	WHERE id = job_id AND state = 'succeeded' AND sums_sha256 IS NULL
	    AND sign_pending = 0;
	PERFORM kiln_job_notify_due(job_id, now);
	RETURN st;
END $$;

-- Store new jobs, all or nothing.  batch is a JSON array of objects with
-- the columns of jobs (repo, ref, recipe, priority, created_at, timeout,
-- cache, commit, project, network, notify_url, trust, submitted_by), the
-- webhook delivery that made the job (delivery_forge, delivery_id) and
-- its target names (targets, in order).  Returns, per job in order, an
-- array of the job's id then its targets' ids.  A redelivered delivery
-- or push is kept as first recorded (SQLite's INSERT OR IGNORE).
CREATE FUNCTION kiln_submit(batch jsonb) RETURNS jsonb
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
	RETURN res;
END $$;

-- Cancel a job: its queued targets end at once; returns how many of its
-- targets still run (the caller stops them and finishes them canceled).
-- KL409 when it already ended other than canceled.
CREATE FUNCTION kiln_cancel(job_id bigint, now bigint) RETURNS bigint
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
	RETURN running;
END $$;

-- A job's new priority, and its queued targets'.  KL409 when the job
-- ended or is being canceled.
CREATE FUNCTION kiln_set_priority(job_id bigint, priority integer)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM job_targets t WHERE t.job_id = kiln_set_priority.job_id
	    ORDER BY t.id FOR NO KEY UPDATE;
	PERFORM kiln_lock_job(job_id);
	UPDATE jobs j SET priority = kiln_set_priority.priority
	WHERE j.id = job_id AND j.state IN ('queued', 'running')
	    AND j.cancel_requested = 0;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job % has ended or is being canceled',
		    job_id USING ERRCODE = 'KL409';
	END IF;
	-- Targets planned later copy the job's (kiln_expand_targets).
	UPDATE job_targets t SET priority = kiln_set_priority.priority
	WHERE t.job_id = kiln_set_priority.job_id AND t.state = 'queued';
	RETURN 0;
END $$;

-- The commit the job's ref resolved to, and its trust class.
CREATE FUNCTION kiln_set_commit(job_id bigint, resolved text, trust text)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jobs j SET "commit" = resolved, trust = kiln_set_commit.trust
	WHERE j.id = job_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no job %', job_id USING ERRCODE = 'KL404';
	END IF;
	RETURN 0;
END $$;

-- Which toolchain builds the target.
CREATE FUNCTION kiln_set_toolchain(target_id bigint, toolchain text)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE job_targets t SET toolchain = kiln_set_toolchain.toolchain
	WHERE t.id = target_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no target %', target_id
		    USING ERRCODE = 'KL404';
	END IF;
	RETURN 0;
END $$;

-- Replace the placeholder target ("*") of a job by queued targets named
-- by the JSON array targets, with the job's priority.
CREATE FUNCTION kiln_expand_targets(job_id bigint, placeholder_id bigint,
    targets jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM job_targets t WHERE t.id = placeholder_id
	    AND t.job_id = kiln_expand_targets.job_id AND t.target = '*';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no placeholder target % of job %',
		    placeholder_id, job_id USING ERRCODE = 'KL404';
	END IF;
	INSERT INTO job_targets (job_id, target, priority, state)
	SELECT j.id, e.name, j.priority, 'queued'
	FROM jobs j, jsonb_array_elements_text(targets)
	    WITH ORDINALITY AS e (name, ord)
	WHERE j.id = kiln_expand_targets.job_id
	ORDER BY e.ord;
	RETURN 0;
END $$;

-- Fail a whole job before its builds (its fetch or plan failed): every
-- target not ended fails with the reason; a target parked by a claim is
-- given back first, so that it shows no attempt and no start.  KL409
-- when the job already ended.
CREATE FUNCTION kiln_fail_job(job_id bigint, reason text, now bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM job_targets t WHERE t.job_id = kiln_fail_job.job_id
	    ORDER BY t.id FOR NO KEY UPDATE;
	IF kiln_lock_job(job_id) IN ('succeeded', 'failed', 'canceled') THEN
		RAISE EXCEPTION 'job % has ended', job_id
		    USING ERRCODE = 'KL409';
	END IF;
	UPDATE job_targets t SET state = 'failed', error = reason,
	    finished_at = now,
	    attempt = CASE WHEN t.state = 'running'
	        THEN greatest(t.attempt - 1, 0) ELSE t.attempt END,
	    started_at = NULL, heartbeat_at = NULL, lease_expires_at = NULL
	WHERE t.job_id = kiln_fail_job.job_id
	    AND t.state IN ('queued', 'running');
	UPDATE jobs j SET state = 'failed', error = reason, finished_at = now
	WHERE j.id = job_id;
	PERFORM kiln_job_notify_due(job_id, now);
	RETURN 0;
END $$;

-- Record an attempt of the job's result callback.
CREATE FUNCTION kiln_notify_result(job_id bigint, state text, error text,
    next_at bigint) RETURNS integer
LANGUAGE sql AS $$
	UPDATE jobs j SET notify_state = kiln_notify_result.state,
	    notify_error = kiln_notify_result.error, notify_next_at = next_at,
	    notify_attempts = j.notify_attempts + 1
	WHERE j.id = job_id;
	SELECT 0;
$$;
