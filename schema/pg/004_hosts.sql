-- kiln PostgreSQL schema 4: a host's beat, the write of its row in hosts
-- (001_init.sql), as one function like the queue's other writes
-- (002_queue.sql says why each write is one).

-- Insert or replace the row of host_name with what the host says of
-- itself; heartbeat_at is the host's clock at the call (schema/pg's
-- times are the callers', as with SQLite).  toolchains is left as it is:
-- another write's.  Returns 0, the one row every write returns.
CREATE FUNCTION kiln_host_beat(host_name text, url text, host_slots integer,
    host_running integer, host_version text, host_started_at bigint,
    now bigint) RETURNS integer
LANGUAGE sql AS $$
	INSERT INTO hosts AS h (name, base_url, slots, running, version,
	    started_at, heartbeat_at)
	VALUES (host_name, url, host_slots, host_running, host_version,
	    host_started_at, now)
	ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url,
	    slots = excluded.slots, running = excluded.running,
	    version = excluded.version, started_at = excluded.started_at,
	    heartbeat_at = excluded.heartbeat_at;
	SELECT 0;
$$;
