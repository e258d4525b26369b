-- PostgreSQL schema 14: listing jobs by project or by repository, as
-- SQLite's schema 17 (schema/017_list_filters.sql) has it: each filter
-- of GET /v1/jobs walks an index newest first from the cursor, never
-- the whole jobs table.
CREATE INDEX jobs_project_id ON jobs (project, id);
CREATE INDEX jobs_repo_id ON jobs (repo, id);
