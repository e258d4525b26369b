-- The job's trust class, which chooses the caches its builds may write and
-- the earlier results they may reuse: 'protected' (a protected ref of a
-- trusted submission) or 'unprotected'.  NULL until the fetch names the
-- ref; a submission without the admin scope is 'unprotected' from the
-- start.
ALTER TABLE jobs ADD COLUMN trust TEXT
	CHECK (trust IS NULL OR trust IN ('protected', 'unprotected'));
