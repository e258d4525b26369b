-- kiln schema 4: projects, webhook deliveries, result callbacks.

-- The [project NAME] a job was made for (by a webhook, or a POST of its
-- repo), NULL for none.
ALTER TABLE jobs ADD COLUMN project TEXT;
-- Builds keep the host network (the project allows it).
ALTER TABLE jobs ADD COLUMN network INTEGER NOT NULL DEFAULT 0;
-- Result callback: POSTed the job when it ends.  notify_state is NULL
-- (none, or the job has not ended), 'pending', 'delivered' or 'failed'.
ALTER TABLE jobs ADD COLUMN notify_url TEXT;
ALTER TABLE jobs ADD COLUMN notify_state TEXT
	CHECK (notify_state IN ('pending', 'delivered', 'failed'));
ALTER TABLE jobs ADD COLUMN notify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN notify_next_at INTEGER;
ALTER TABLE jobs ADD COLUMN notify_error TEXT;
CREATE INDEX jobs_notify ON jobs (notify_next_at)
	WHERE notify_state = 'pending';

-- Webhook deliveries already turned into jobs: a redelivery (same forge,
-- same delivery id) answers with the first job instead of a new one.
CREATE TABLE deliveries (
	forge      TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (forge, id)
);
