-- kiln PostgreSQL schema 11: a host's beat records the lease it holds
-- for ([kilnd] target_lease, ms), so that every host judges it alive by
-- its own lease (within two of its last beat), as the targets it holds
-- are judged since 009_lease.sql.  Before, a reader judged every host by
-- its own target_lease: a host with a longer lease (beating every
-- quarter of it) looked gone between its beats to a host with a short
-- one, which answered 503 for its files.  NULL (a row from before):
-- the reader's lease, as before.
ALTER TABLE hosts ADD COLUMN lease_ms bigint;

-- kiln_host_beat (008_refusals.sql), with the host's lease.
DROP FUNCTION kiln_host_beat(text, text, integer, integer, text, bigint,
    bigint, text);
CREATE FUNCTION kiln_host_beat(host_name text, url text, host_slots integer,
    host_running integer, host_version text, host_started_at bigint,
    now bigint, host_toolchains text, host_lease_ms bigint)
RETURNS integer
LANGUAGE sql AS $$
	DELETE FROM target_refusals r WHERE r.host = host_name
	    AND host_toolchains IS NOT NULL
	    AND host_toolchains IS DISTINCT FROM (SELECT h.toolchains
	        FROM hosts h WHERE h.name = host_name);
	INSERT INTO hosts AS h (name, base_url, slots, running, version,
	    started_at, heartbeat_at, toolchains, lease_ms)
	VALUES (host_name, url, host_slots, host_running, host_version,
	    host_started_at, now, host_toolchains, host_lease_ms)
	ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url,
	    slots = excluded.slots, running = excluded.running,
	    version = excluded.version, started_at = excluded.started_at,
	    heartbeat_at = excluded.heartbeat_at,
	    toolchains = coalesce(excluded.toolchains, h.toolchains),
	    lease_ms = excluded.lease_ms;
	SELECT 0;
$$;

-- kiln_refuse (008_refusals.sql), judging which hosts are alive the same
-- way: within two of each host's own leases of its last beat (the
-- caller's window for a row without one).
CREATE OR REPLACE FUNCTION kiln_refuse(tid bigint, att integer, by_host text,
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
	    WHERE h.heartbeat_at >= now_ms - coalesce(2 * h.lease_ms, window_ms)
	        AND h.name <> by_host
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
		        WHERE h.heartbeat_at >=
		            now_ms - coalesce(2 * h.lease_ms, window_ms)));
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
