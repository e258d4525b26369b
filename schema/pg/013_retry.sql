-- PostgreSQL schema 13: retried jobs, as SQLite's schema 16
-- (schema/016_retry.sql) has them: the job a retry was made from, NULL
-- for any other job; a plain number (retention may remove that job).
ALTER TABLE jobs ADD COLUMN retry_of bigint;

-- kiln_submit stores the jobs as before (012_outputs.sql), then each
-- job's retry_of from its object in the batch.
ALTER FUNCTION kiln_submit(jsonb) RENAME TO kiln_submit_012;
CREATE FUNCTION kiln_submit(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	res jsonb;
BEGIN
	res := kiln_submit_012(batch);
	UPDATE jobs SET retry_of = (b.e->>'retry_of')::bigint
	FROM jsonb_array_elements(batch) WITH ORDINALITY AS b (e, ord)
	WHERE jobs.id = (res->((b.ord - 1)::integer)->>0)::bigint
	    AND b.e->>'retry_of' IS NOT NULL;
	RETURN res;
END $$;
