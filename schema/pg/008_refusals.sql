-- kiln PostgreSQL schema 8: a host claims only targets it can build, and
-- tells which (its toolchain map, at the end).  This part first:
-- Every host plans the jobs it builds itself, with its own toolchains; a
-- target it cannot plan for want of a toolchain (the C toolchain of a
-- cgo target missing from its [toolchains], a Go release it lacks) it
-- refuses instead of failing: the refusal is recorded, the target goes
-- back to the queue without its attempt counted, and that host's claims
-- skip it while the refusal holds.  When every live host has refused it,
-- it fails, naming each host's reason.  Conventions as in 002_queue.sql
-- and 003_targets.sql (one call per write, locks targets then job, times
-- are the caller's milliseconds).

-- One row per (target, host): the host's reason and until when it holds
-- (after that the host may claim and plan the target again, in case its
-- toolchains changed).
CREATE TABLE target_refusals (
	target_id  bigint NOT NULL REFERENCES job_targets (id)
	    ON DELETE CASCADE,
	host       text   COLLATE "C" NOT NULL,
	why        text   NOT NULL,
	refused_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	PRIMARY KEY (target_id, host)
);

-- Attempt att of target tid, running on by_host, cannot be built there
-- (reason).  The refusal holds window_ms; a host is alive when its last
-- beat is within window_ms of now_ms, and by_host always is.  When every
-- live host holds a refusal of the target, it fails with all their
-- reasons; else it is queued again (canceled when its job is being
-- canceled), in both cases with the run not counted.  Returns whether it
-- failed.  KL404 / KL409 as the other fenced writes (005_fence.sql).
CREATE FUNCTION kiln_refuse(tid bigint, att integer, by_host text,
    reason text, window_ms bigint, now_ms bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	jid bigint;
	canceled boolean;
	everyone boolean;
	reasons text;
BEGIN
	SELECT t.job_id INTO jid FROM job_targets t
	WHERE t.id = tid AND t.attempt = att AND t.state = 'running'
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		PERFORM kiln_not_running(tid, att);
	END IF;
	INSERT INTO target_refusals AS r (target_id, host, why, refused_at,
	    expires_at)
	VALUES (tid, by_host, reason, now_ms, now_ms + window_ms)
	ON CONFLICT (target_id, host) DO UPDATE SET why = excluded.why,
	    refused_at = excluded.refused_at, expires_at = excluded.expires_at;
	PERFORM kiln_lock_job(jid);
	SELECT j.cancel_requested = 1 INTO canceled FROM jobs j
	WHERE j.id = jid;
	-- The live hosts without a refusal that holds: none -> everyone.
	SELECT NOT EXISTS (SELECT 1 FROM hosts h
	    WHERE h.heartbeat_at >= now_ms - window_ms AND h.name <> by_host
	        AND NOT EXISTS (SELECT 1 FROM target_refusals r
	            WHERE r.target_id = tid AND r.host = h.name
	                AND r.expires_at > now_ms))
	INTO everyone;
	everyone := everyone AND NOT canceled;
	IF everyone THEN
		SELECT string_agg(r.host || ': ' || r.why, '; ' ORDER BY r.host)
		INTO reasons FROM target_refusals r
		WHERE r.target_id = tid AND r.expires_at > now_ms
		    AND (r.host = by_host OR r.host IN (SELECT h.name FROM hosts h
		        WHERE h.heartbeat_at >= now_ms - window_ms));
		UPDATE job_targets t SET state = 'failed',
		    error = 'no host of the farm can build it: ' || reasons,
		    finished_at = now_ms, attempt = greatest(t.attempt - 1, 0),
		    started_at = NULL, heartbeat_at = NULL,
		    lease_expires_at = NULL
		WHERE t.id = tid;
	ELSE
		UPDATE job_targets t SET
		    state = CASE WHEN canceled THEN 'canceled' ELSE 'queued' END,
		    finished_at = CASE WHEN canceled THEN now_ms END,
		    attempt = greatest(t.attempt - 1, 0), started_at = NULL,
		    heartbeat_at = NULL, lease_expires_at = NULL
		WHERE t.id = tid;
	END IF;
	PERFORM kiln_job_derive(jid, now_ms);
	IF NOT canceled AND NOT everyone THEN
		PERFORM pg_notify('kiln_queue', '');
	END IF;
	RETURN everyone;
END $$;

-- kiln_claim (003_targets.sql), skipping the targets by_host refused
-- while the refusal holds.  A refused target is rare: the NOT EXISTS is
-- one probe of the primary key per queued row walked.
CREATE OR REPLACE FUNCTION kiln_claim(by_host text, now_ms bigint,
    of_job bigint, OUT claimed bigint, OUT claimed_job bigint,
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
	    exit_status = NULL, error = NULL, host = by_host
	WHERE t.id = claimed;
	UPDATE jobs j SET state = 'running',
	    started_at = coalesce(j.started_at, now_ms)
	WHERE j.id = claimed_job
	    AND (j.state <> 'running' OR j.started_at IS NULL);
END $$;

-- And the toolchain map of each host (toolchains_map() in
-- daemon/toolchains.c: its Go releases and the targets it has a C
-- toolchain for, "go1.22.12 go1.23.5; cgo linux/amd64 linux/arm64"), in
-- hosts.toolchains (001_init.sql), which each beat now writes; for the
-- operator (GET /v1/hosts).  NULL host_toolchains leaves the last map.
-- A new map (a reload, a restart with another C toolchain or Go) makes
-- the host's refusals void: it may build those targets now.
DROP FUNCTION kiln_host_beat(text, text, integer, integer, text, bigint,
    bigint);
CREATE FUNCTION kiln_host_beat(host_name text, url text, host_slots integer,
    host_running integer, host_version text, host_started_at bigint,
    now bigint, host_toolchains text) RETURNS integer
LANGUAGE sql AS $$
	DELETE FROM target_refusals r WHERE r.host = host_name
	    AND host_toolchains IS NOT NULL
	    AND host_toolchains IS DISTINCT FROM (SELECT h.toolchains
	        FROM hosts h WHERE h.name = host_name);
	INSERT INTO hosts AS h (name, base_url, slots, running, version,
	    started_at, heartbeat_at, toolchains)
	VALUES (host_name, url, host_slots, host_running, host_version,
	    host_started_at, now, host_toolchains)
	ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url,
	    slots = excluded.slots, running = excluded.running,
	    version = excluded.version, started_at = excluded.started_at,
	    heartbeat_at = excluded.heartbeat_at,
	    toolchains = coalesce(excluded.toolchains, h.toolchains);
	SELECT 0;
$$;
