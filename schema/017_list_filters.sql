-- kiln schema 17: listing jobs by project or by repository.
--
-- GET /v1/jobs?project=NAME and ?repo=URL run on the loop thread, so
-- each must stay an index lookup of at most one page of rows, newest
-- first from the cursor (id < after ORDER BY id DESC), like the listing
-- by state (jobs_state_id).
CREATE INDEX jobs_project_id ON jobs (project, id);
CREATE INDEX jobs_repo_id ON jobs (repo, id);
