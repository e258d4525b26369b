-- kiln schema 9: webhook pushes already turned into jobs.

-- A push whose (project, ref, pushed commit) equals one already turned
-- into a job is a redelivery, whatever its delivery id: a validly signed
-- body replayed with a new or made-up id answers with the first job
-- instead of making another.  pushed_commit is the commit the payload
-- names (GitHub's and Gitea's "after", GitLab's "checkout_sha"), kept as
-- sent: for an annotated tag it is the tag object, while the job's own
-- commit becomes the commit the tag points to once it is fetched.
CREATE TABLE pushes (
	project       TEXT    NOT NULL,
	ref           TEXT    NOT NULL,
	pushed_commit TEXT    NOT NULL,
	job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (project, ref, pushed_commit)
);
-- Retention deletes jobs: the cascade finds their pushes by job.
CREATE INDEX pushes_job ON pushes (job_id);

-- The pushes of webhook jobs made before this version, from their
-- deliveries.  A job's commit is the pushed one except after an annotated
-- tag was peeled; such an old tag push is then not recognised, and its
-- replay builds it once more.
INSERT OR IGNORE INTO pushes (project, ref, pushed_commit, job_id,
    created_at)
	SELECT j.project, j.ref, j."commit", d.job_id, d.created_at
	FROM deliveries d JOIN jobs j ON j.id = d.job_id
	WHERE j.project IS NOT NULL AND j."commit" IS NOT NULL
	ORDER BY d.job_id;
