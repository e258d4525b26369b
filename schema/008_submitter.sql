-- The name of the [tokens] entry whose token submitted the job: a submit
-- token may cancel or reprioritise only the jobs it submitted.  NULL for
-- jobs of a farm without tokens, of webhooks, and of earlier versions.
ALTER TABLE jobs ADD COLUMN submitted_by TEXT;
