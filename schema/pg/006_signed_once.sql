-- kiln PostgreSQL schema 6: a job's signature is recorded once.
--
-- Any host may sign a job: the one that ended its last target, and every
-- host that reads the unsigned jobs (at its start, after a failed
-- signing).  A host that starts while another is signing a job signs it
-- too, and each signature carries its own time, so the second record
-- would replace the first one's files with different ones: a signature
-- or provenance already handed out would no longer be the job's.  The
-- first record stands; a later one is refused with KL409 (the job is
-- signed already), and that host's files are left to the store's sweep.
CREATE OR REPLACE FUNCTION kiln_set_signed(jid bigint, sums text, sig text,
    prov text, by_host text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	had text;
BEGIN
	-- The row's lock: of two hosts recording at once, the second sees
	-- the first's digests.
	SELECT j.sums_sha256 INTO had FROM jobs j
	WHERE j.id = jid AND j.state = 'succeeded' AND j.expired_at IS NULL
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job % is not a succeeded job on record', jid
		    USING ERRCODE = 'KL404';
	END IF;
	IF had IS NOT NULL THEN
		RAISE EXCEPTION 'job % is signed already', jid
		    USING ERRCODE = 'KL409';
	END IF;
	UPDATE jobs j SET sums_sha256 = sums, sig_sha256 = sig,
	    prov_sha256 = prov, sign_pending = 0, signed_by = by_host
	WHERE j.id = jid;
	RETURN 0;
END $$;
