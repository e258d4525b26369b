-- kiln PostgreSQL schema 7: one job per webhook delivery, across hosts.
--
-- A host looks a delivery (and its push) up before it submits the job,
-- and holds the keys only in its own memory meanwhile; a forge that
-- redelivers to another host of the farm (behind a load balancer, after
-- a time-out) finds nothing on record there either, and both hosts
-- submitted a job for the one push.  kiln_submit now refuses a job whose
-- delivery id or push is already on record, with KL409, all of its batch
-- rolled back (the unique keys wait for the other host's commit, so the
-- second of two concurrent submissions sees the first); kilnd answers
-- 409 with Retry-After, and the delivery made again finds the first job.
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
			IF NOT FOUND THEN
				RAISE EXCEPTION 'delivery % % made a job already',
				    j->>'delivery_forge', j->>'delivery_id'
				    USING ERRCODE = 'KL409';
			END IF;
			-- A webhook's job: its push is a redelivery key too.
			IF j->>'project' IS NOT NULL AND
			    j->>'commit' IS NOT NULL THEN
				INSERT INTO pushes (project, ref,
				    pushed_commit, job_id, created_at)
				VALUES (j->>'project', j->>'ref',
				    j->>'commit', id,
				    (j->>'created_at')::bigint)
				ON CONFLICT DO NOTHING;
				IF NOT FOUND THEN
					RAISE EXCEPTION 'the push of % % '
					    'made a job already',
					    j->>'ref', j->>'commit'
					    USING ERRCODE = 'KL409';
				END IF;
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
	-- New work for every host (005_fence.sql).
	PERFORM pg_notify('kiln_queue', '');
	RETURN res;
END $$;
