-- PostgreSQL schema 12: a job's outputs and its release row, as SQLite's
-- schema 15 (schema/015_outputs.sql) has them.
ALTER TABLE jobs ADD COLUMN outputs text;
ALTER TABLE jobs ADD COLUMN release integer NOT NULL DEFAULT 0;
ALTER TABLE job_targets ADD COLUMN verified text;

-- A job's outputs once its repository's are known (the plan after the
-- fetch; every host plans the same).
CREATE FUNCTION kiln_set_outputs(jid bigint, outputs text, rel integer)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jobs j SET outputs = kiln_set_outputs.outputs, release = rel
	WHERE j.id = jid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no job %', jid USING ERRCODE = 'KL404';
	END IF;
	RETURN 0;
END $$;

-- What a verifying rebuild of the target showed (SQLite's schema 15),
-- for this attempt only.
CREATE FUNCTION kiln_set_verified(tid bigint, att integer, verified text)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE job_targets t SET verified = kiln_set_verified.verified
	WHERE t.id = tid AND t.attempt = att;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no target % at attempt %', tid, att
		    USING ERRCODE = 'KL409';
	END IF;
	RETURN 0;
END $$;

-- kiln_submit stores the jobs as before (007_delivery_once.sql), then
-- each job's outputs and release flag from its object in the batch.
ALTER FUNCTION kiln_submit(jsonb) RENAME TO kiln_submit_007;
CREATE FUNCTION kiln_submit(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	res jsonb;
BEGIN
	res := kiln_submit_007(batch);
	UPDATE jobs SET outputs = b.e->>'outputs',
	    release = coalesce((b.e->>'release')::integer, 0)
	FROM jsonb_array_elements(batch) WITH ORDINALITY AS b (e, ord)
	WHERE jobs.id = (res->((b.ord - 1)::integer)->>0)::bigint
	    AND b.e->>'outputs' IS NOT NULL;
	RETURN res;
END $$;

-- kiln_job_derive first adds the release row of a job that wants one
-- once every build succeeded (in the transaction of the last build's
-- end, under the job's row lock its callers hold), then derives the
-- job's state as before (002_queue.sql): with the new row queued the
-- job is still running.
CREATE OR REPLACE FUNCTION kiln_job_derive(job_id bigint, now bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	INSERT INTO job_targets (job_id, target, priority, state)
	SELECT j.id, 'release', j.priority, 'queued'
	FROM jobs j
	WHERE j.id = kiln_job_derive.job_id AND j.release = 1
	    AND EXISTS (SELECT 1 FROM job_targets t
	        WHERE t.job_id = j.id)
	    AND NOT EXISTS (SELECT 1 FROM job_targets t
	        WHERE t.job_id = j.id
	            AND (t.state <> 'succeeded' OR t.target = 'release'
	                OR t.target = '*'));
	IF FOUND THEN
		PERFORM pg_notify('kiln_queue', '');
	END IF;
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
