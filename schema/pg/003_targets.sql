-- kiln PostgreSQL schema 3: the queue's writes on targets (claims,
-- heartbeats, giving one back, finishing one, recovery after a crash,
-- reclaiming a lost build) and on what a job leaves (signing, retention),
-- as functions.
--
-- As in 002_queue.sql: each write of daemon/pg/ is one call of one of
-- these, in the statement's own transaction; the meaning is that of the
-- SQLite operation of the same name in daemon/db/; kiln's SQLSTATEs
-- KL404 (no such row), KL409 (the state forbids it) and KL204 (nothing
-- to claim) are expected refusals; times are milliseconds given by the
-- calling host.
--
-- Locks follow 002's order, against deadlocks between hosts: targets
-- first (in id order when several), then their jobs' rows (in id order
-- when several).  A function that reads something another host may be
-- changing at the same time (a job's cancel_requested) locks first and
-- reads in a later statement: in READ COMMITTED each statement of a
-- function takes a new snapshot, so what it reads after a lock was
-- granted includes whatever the holder committed.  (A single statement
-- that waits for a row re-checks only that row, not its subqueries.)
--
-- Parameter names never equal a column's: plpgsql would refuse the
-- ambiguity ("tid", "now_ms", "by_host", ...).

-- A job's targets in one state, now also in id order: a claim among one
-- job's targets ("state = 'queued' AND job_id = $1 ORDER BY id LIMIT 1")
-- is then a walk of that job's queued entries.  With (job_id, state)
-- alone the planner walked the primary key in id order instead, through
-- every older target on record, ended or not.  The longer key serves
-- everything the old one did (same prefix), so it replaces it.
DROP INDEX job_targets_job_state;
CREATE INDEX job_targets_job_state ON job_targets (job_id, state, id);

-- Claim the next queued target, of the job of_job when it is not NULL,
-- for the host by_host: highest priority, oldest job, then the job's
-- targets in order (the index job_targets_queue), skipping what another
-- host has locked.  The target runs from now on (attempt + 1); its job
-- runs too, keeping its first start.  KL204 when nothing is queued.
CREATE FUNCTION kiln_claim(by_host text, now_ms bigint, of_job bigint,
    OUT claimed bigint, OUT claimed_job bigint, OUT claimed_target text,
    OUT claimed_attempt integer)
LANGUAGE plpgsql AS $$
BEGIN
	-- SKIP LOCKED: two hosts claiming at once take different targets
	-- instead of one waiting for the other.  A row claimed and
	-- committed meanwhile is re-checked (no longer queued) and passed
	-- over.  NO KEY UPDATE is the lock an UPDATE of the row takes
	-- anyway, and what the other functions take.  Two statements,
	-- not one with "of_job IS NULL OR ...", so that each has its own
	-- plan: the queue's index, or the job's few targets.
	IF of_job IS NULL THEN
		SELECT t.id, t.job_id, t.target, t.attempt + 1
		INTO claimed, claimed_job, claimed_target, claimed_attempt
		FROM job_targets t WHERE t.state = 'queued'
		ORDER BY t.priority DESC, t.job_id, t.id
		LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
	ELSE
		SELECT t.id, t.job_id, t.target, t.attempt + 1
		INTO claimed, claimed_job, claimed_target, claimed_attempt
		FROM job_targets t WHERE t.state = 'queued' AND t.job_id = of_job
		ORDER BY t.id
		LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'nothing queued' USING ERRCODE = 'KL204';
	END IF;
	UPDATE job_targets t SET state = 'running', attempt = t.attempt + 1,
	    started_at = now_ms, heartbeat_at = now_ms, finished_at = NULL,
	    exit_status = NULL, error = NULL, host = by_host
	WHERE t.id = claimed;
	-- Only a job not yet running is written (and locked): claims of
	-- one job's targets by several hosts do not queue on its row.  A
	-- row changed meanwhile is re-checked, so the first start stays.
	UPDATE jobs j SET state = 'running',
	    started_at = coalesce(j.started_at, now_ms)
	WHERE j.id = claimed_job
	    AND (j.state <> 'running' OR j.started_at IS NULL);
END $$;

-- Mark a running target alive.  KL404 when it is not running.
CREATE FUNCTION kiln_heartbeat(tid bigint, now_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE job_targets t SET heartbeat_at = now_ms
	WHERE t.id = tid AND t.state = 'running';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'target % is not running', tid
		    USING ERRCODE = 'KL404';
	END IF;
	RETURN 0;
END $$;

-- Give a running target back (its host is stopping): queued again with
-- the run not counted, or canceled when its job is being canceled.
-- KL404 when it is not running.
CREATE FUNCTION kiln_release(tid bigint, now_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
	canceled boolean;
BEGIN
	SELECT t.job_id INTO jid FROM job_targets t
	WHERE t.id = tid AND t.state = 'running' FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'target % is not running', tid
		    USING ERRCODE = 'KL404';
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
	RETURN 0;
END $$;

-- End a running target in a terminal state, with its files and cache key
-- in the same transaction, and derive its job's state, which it returns.
-- outcome is a JSON object: state, exit_status (null: none), error,
-- cache_key (kept only for a succeeded target), cached (0/1),
-- cached_from (null: built), artifacts ([[name, size, sha256], ...]).
-- The files record the host whose store holds them, by_host.  KL404 when
-- the target is not running (a second finish, or it was reclaimed).
CREATE FUNCTION kiln_finish_build(tid bigint, now_ms bigint, by_host text,
    outcome jsonb) RETURNS text
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
	WHERE t.id = tid AND t.state = 'running'
	RETURNING t.job_id INTO jid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'target % is not running', tid
		    USING ERRCODE = 'KL404';
	END IF;
	INSERT INTO artifacts (target_id, name, size, sha256, host)
	SELECT tid, a.e->>0, (a.e->>1)::bigint, a.e->>2, by_host
	FROM jsonb_array_elements(coalesce(outcome->'artifacts', '[]'))
	    WITH ORDINALITY AS a (e, ord)
	ORDER BY a.ord;
	-- The job's row after the target's (the lock order), then the
	-- derivation sees every other host's finish that committed first.
	PERFORM kiln_lock_job(jid);
	RETURN kiln_job_derive(jid, now_ms);
END $$;

-- A lease that ran out: give the running target tid back to the queue,
-- or end it -- canceled when its job is being canceled, failed once it
-- had max_attempts runs (it keeps its start and gets its end; one queued
-- again has neither).  KL404 when it is no longer running or a heartbeat
-- came at or after stale_before.
CREATE FUNCTION kiln_reclaim(tid bigint, stale_before bigint,
    max_attempts integer, now_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
	canceled boolean;
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
	RETURN 0;
END $$;

-- After host by_host crashed, before it starts again: the targets it left
-- running are queued again (the run counts), or failed once they had
-- max_attempts runs, or canceled when their job is being canceled.  Only
-- its own: the other hosts' builds go on.  Queued targets of a job being
-- canceled (planned after the cancel) are canceled too, whoever's.
CREATE FUNCTION kiln_recover(by_host text, max_attempts integer,
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
END $$;

-- Record a succeeded job's signed files (store digests), all three at
-- once, and the host that signed it.  KL404 when the job is not
-- succeeded or was expired meanwhile.
CREATE FUNCTION kiln_set_signed(jid bigint, sums text, sig text, prov text,
    by_host text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jobs j SET sums_sha256 = sums, sig_sha256 = sig,
	    prov_sha256 = prov, sign_pending = 0, signed_by = by_host
	WHERE j.id = jid AND j.state = 'succeeded' AND j.expired_at IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job % is not a succeeded job on record', jid
		    USING ERRCODE = 'KL404';
	END IF;
	RETURN 0;
END $$;

-- Expire the jobs ids: their artifact rows, signed files and cache keys
-- go; each job stays on record with expired_at set.  A job not finished,
-- or already expired, is left alone.  Returns how many were expired.
CREATE FUNCTION kiln_expire_jobs(ids bigint[], now_ms bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	gone bigint[];
BEGIN
	PERFORM 1 FROM job_targets t WHERE t.job_id = ANY (ids)
	    ORDER BY t.id FOR NO KEY UPDATE;
	PERFORM 1 FROM jobs j WHERE j.id = ANY (ids) ORDER BY j.id
	    FOR NO KEY UPDATE;
	WITH e AS (
		UPDATE jobs j SET expired_at = now_ms, sums_sha256 = NULL,
		    sig_sha256 = NULL, prov_sha256 = NULL, sign_pending = 0
		WHERE j.id = ANY (ids) AND j.expired_at IS NULL
		    AND j.state IN ('succeeded', 'failed', 'canceled')
		RETURNING j.id)
	SELECT coalesce(array_agg(e.id), '{}') INTO gone FROM e;
	DELETE FROM artifacts a USING job_targets t
	WHERE a.target_id = t.id AND t.job_id = ANY (gone);
	UPDATE job_targets t SET cache_key = NULL
	WHERE t.job_id = ANY (gone) AND t.cache_key IS NOT NULL;
	RETURN cardinality(gone);
END $$;
