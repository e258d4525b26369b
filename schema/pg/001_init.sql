-- kiln PostgreSQL schema 1: the queue of schema/001..010 (SQLite) as one
-- PostgreSQL 15 migration, plus the columns and tables of a farm of kilnd
-- hosts sharing this database.
--
-- kilnd applies it once, in one transaction, and records version 1 in
-- kiln_schema (version, name, applied_at), the table the PostgreSQL
-- backend keeps its migrations in (SQLite uses PRAGMA user_version).  The
-- two backends number their migrations on their own: a later change to
-- the queue gets a file in schema/ and one in schema/pg/.
--
-- Meaning and types, against the SQLite schema:
-- - Ids are bigint identity columns.  Like SQLite's AUTOINCREMENT they are
--   never reused; ALWAYS refuses an id written by hand (a copy of old rows
--   says OVERRIDING SYSTEM VALUE and moves the sequence past them).  Ids
--   still grow with submission time, but with several hosts inserting at
--   once a smaller id may commit a little after a greater one, and an
--   insert that fails or rolls back leaves a gap.
-- - Times are bigint milliseconds since the Unix epoch (UTC), as there.
-- - Flags stay integers 0/1, not boolean: the queue's SQL compares them
--   with numbers ("cancel_requested = 1", "sign_pending = 0", binds of
--   0/1) and its rows are read as numbers; a boolean would come back as
--   't'/'f' and refuse "= 1".  A CHECK keeps each to 0 or 1, which
--   SQLite's integers did not enforce.
-- - The CHECKs on states, the foreign keys with their cascades, and the
--   indexes are those the SQLite schema has after migration 10.
-- - SQLite's TEMP triggers that keep counts by state are not here: this
--   backend counts with SELECT ... GROUP BY state.
-- - Migration 9 filled pushes from old deliveries; a new database has
--   none, so there is nothing to copy.

-- Jobs: one submission of a repository at a ref, and its outcome.
CREATE TABLE jobs (
	id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	repo        text    NOT NULL,
	ref         text    NOT NULL,
	"commit"    text,                         -- resolved 40-hex commit, NULL until fetched
	recipe      text,                         -- recipe JSON from the request, NULL = from repo
	priority    integer NOT NULL DEFAULT 0,
	state       text    NOT NULL DEFAULT 'queued'
	            CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
	error       text,
	-- Set by cancel; running targets are stopped, and recovery after a
	-- crash must not queue them again.
	cancel_requested integer NOT NULL DEFAULT 0
	            CHECK (cancel_requested IN (0, 1)),
	created_at  bigint  NOT NULL,
	started_at  bigint,
	finished_at bigint,
	-- A per-job wall-clock limit for each target, in seconds; NULL = the
	-- farm's build_timeout.  It may only lower the farm's limit.
	timeout     integer,
	-- 0 when the request said "cache": false: build every target even
	-- when an equal build is on record.
	cache       integer NOT NULL DEFAULT 1 CHECK (cache IN (0, 1)),
	-- A succeeded job's signed files, as blobs of the content-addressed
	-- store, set together in one statement once all three are stored: a
	-- job is either signed or not, never half.
	sums_sha256 text,                         -- SHA256SUMS
	sig_sha256  text,                         -- SHA256SUMS.minisig
	prov_sha256 text,                         -- provenance.intoto.jsonl
	-- Retention removed the job's artifacts, signed files and logs; the
	-- job itself stays on record.
	expired_at  bigint,
	-- 1 from the transaction in which a job succeeds until its signed
	-- files are recorded: after a crash in between, a host signs it.
	sign_pending integer NOT NULL DEFAULT 0 CHECK (sign_pending IN (0, 1)),
	-- The [project NAME] a job was made for (by a webhook, or a POST of
	-- its repo), NULL for none.
	project     text,
	-- Builds keep the host network (the project allows it).
	network     integer NOT NULL DEFAULT 0 CHECK (network IN (0, 1)),
	-- Result callback: POSTed the job when it ends.  notify_state is NULL
	-- (none, or the job has not ended), 'pending', 'delivered' or
	-- 'failed'.
	notify_url  text,
	notify_state text
	            CHECK (notify_state IN ('pending', 'delivered', 'failed')),
	notify_attempts integer NOT NULL DEFAULT 0,
	notify_next_at bigint,
	notify_error text,
	-- The job's trust class, which chooses the caches its builds may
	-- write and the earlier results they may reuse: 'protected' (a
	-- protected ref of a trusted submission) or 'unprotected'.  NULL until
	-- the fetch names the ref; a submission without the admin scope is
	-- 'unprotected' from the start.
	trust       text
	            CHECK (trust IS NULL OR trust IN ('protected', 'unprotected')),
	-- The name of the [tokens] entry whose token submitted the job: a
	-- submit token may cancel or reprioritise only the jobs it submitted.
	-- NULL for jobs of a farm without tokens and of webhooks.
	submitted_by text,
	-- Farm: the host (hosts.name) that signed the job, in the transaction
	-- that records its signed files.  Exactly one host signs a job: the
	-- one that ends its last target, under the job's row lock.  NULL
	-- until signed.
	signed_by   text
);

-- Listing newest first, optionally by state (GET /v1/jobs?state=&after=).
CREATE INDEX jobs_state_id ON jobs (state, id);
-- Succeeded jobs still to sign.
CREATE INDEX jobs_unsigned ON jobs (id) WHERE sign_pending = 1;
-- Result callbacks due.
CREATE INDEX jobs_notify ON jobs (notify_next_at)
	WHERE notify_state = 'pending';

-- Targets: one os/arch[/variant] of a job, the unit a host claims and
-- builds.
CREATE TABLE job_targets (
	id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job_id       bigint  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	target       text    NOT NULL,            -- normalized os/arch[/variant]
	-- Copied from the job so that the queue's index below covers it.
	priority     integer NOT NULL DEFAULT 0,
	state        text    NOT NULL DEFAULT 'queued'
	             CHECK (state IN ('queued', 'running', 'succeeded', 'failed',
	                              'timed_out', 'canceled')),
	-- Runs so far.  With several hosts it is also the fencing token: a
	-- claim adds one, and a heartbeat or a result is taken only
	-- "WHERE id = $1 AND attempt = $2", so a host that comes back after
	-- its lease ran out cannot overwrite a newer run.
	attempt      integer NOT NULL DEFAULT 0,
	exit_status  integer,
	error        text,
	heartbeat_at bigint,
	started_at   bigint,
	finished_at  bigint,
	-- 1: the target's artifacts were those of an earlier equal build.
	cached       integer NOT NULL DEFAULT 0 CHECK (cached IN (0, 1)),
	-- SHA-256 over (commit, target, recipe, toolchain identity); set on a
	-- succeeded target whose artifacts later equal builds may reuse.
	cache_key    text,
	-- Which toolchain built the target: "go1.22.12" for go recipes, the C
	-- compiler's identity for command recipes; NULL before it starts.
	toolchain    text,
	-- The job whose build a cached target reused (its provenance and log
	-- name it); NULL for a target that was built.  No foreign key, as in
	-- SQLite: it is a record, not a link that must stay valid.
	cached_from  bigint,
	-- Farm: the host (hosts.name) that runs the target or ran it last;
	-- NULL before the first claim.  It stays after the target ends (GET
	-- shows who built it).  No foreign key: the record outlives a host
	-- that leaves the farm.
	host         text,
	-- Farm: while running, until when the claiming host holds it
	-- (heartbeats move it on).  Once it has passed, any host may requeue
	-- the target (the attempt counts).  Only a running target has one:
	-- whatever ends a run or gives the target back clears it.
	lease_expires_at bigint,
	UNIQUE (job_id, target),
	CONSTRAINT job_targets_lease_running
	             CHECK (lease_expires_at IS NULL OR state = 'running')
);

-- The scheduler's order within each state: the next queued target is the
-- first entry after ('queued'), highest priority, oldest job, then the
-- job's targets in id order; a claim is "WHERE state = 'queued' ORDER BY
-- priority DESC, job_id, id LIMIT n FOR UPDATE SKIP LOCKED" along it.
-- Counts by state are a pass over it.  SQLite's migration 10 replaced a
-- partial claim index with this one because SQLite's planner, without
-- statistics, chose a worse index; PostgreSQL has statistics, but one
-- index that serves every state's order is still one index less to write
-- on each state change.  id ends the key because PostgreSQL has no rowid
-- there.
CREATE INDEX job_targets_queue ON job_targets (state, priority DESC, job_id, id);
-- A job's targets in one state (its queued target to claim, its running
-- builds, cancel, a new priority), and the cascade from jobs.
CREATE INDEX job_targets_job_state ON job_targets (job_id, state);
-- Earlier equal builds that a new target may reuse.
CREATE INDEX job_targets_cache ON job_targets (cache_key)
	WHERE cache_key IS NOT NULL AND state = 'succeeded';
-- Farm: leases that ran out, for whichever host looks first.  Only
-- running targets are in it, so it stays as small as the farm's slots.
CREATE INDEX job_targets_lease ON job_targets (lease_expires_at)
	WHERE state = 'running';

-- The files a succeeded target left in its out directory, recorded in the
-- same transaction that marks it succeeded.  sha256 is filled in when the
-- file is moved into the content-addressed store.
CREATE TABLE artifacts (
	id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target_id bigint  NOT NULL REFERENCES job_targets (id) ON DELETE CASCADE,
	-- Byte order, as SQLite's BINARY collation: SHA256SUMS lists the
	-- files by name, and must not change with the database's locale.
	name      text    COLLATE "C" NOT NULL,
	size      bigint  NOT NULL,
	sha256    text,
	-- Farm: the host whose content-addressed store holds the blob.  The
	-- other hosts send downloads there (or answer 503 while it is gone),
	-- unless they find the blob in their own store (hosts that share one
	-- store directory).
	host      text,
	UNIQUE (target_id, name)
);
-- The sweep: which blobs are referenced.
CREATE INDEX artifacts_sha256 ON artifacts (sha256);

-- Webhook deliveries already turned into jobs: a redelivery (same forge,
-- same delivery id) answers with the first job instead of a new one.  The
-- primary key makes that hold across hosts too.
CREATE TABLE deliveries (
	forge      text    NOT NULL,
	id         text    NOT NULL,
	job_id     bigint  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	created_at bigint  NOT NULL,
	PRIMARY KEY (forge, id)
);
-- PostgreSQL does not index a referencing column by itself: without this
-- a deleted job's cascade would read every delivery.
CREATE INDEX deliveries_job ON deliveries (job_id);

-- Webhook pushes already turned into jobs.  A push whose (project, ref,
-- pushed commit) equals one already turned into a job is a redelivery,
-- whatever its delivery id: a validly signed body replayed with a new or
-- made-up id answers with the first job instead of making another.
-- pushed_commit is the commit the payload names (GitHub's and Gitea's
-- "after", GitLab's "checkout_sha"), kept as sent.
CREATE TABLE pushes (
	project       text    NOT NULL,
	ref           text    NOT NULL,
	pushed_commit text    NOT NULL,
	job_id        bigint  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	created_at    bigint  NOT NULL,
	PRIMARY KEY (project, ref, pushed_commit)
);
-- Retention deletes jobs: the cascade finds their pushes by job.
CREATE INDEX pushes_job ON pushes (job_id);

-- Farm: one row per kilnd host, written when it starts and on every
-- heartbeat (GET /v1/hosts shows them).  A host whose heartbeat_at is
-- old is gone: its leases run out and its artifacts answer 503.
CREATE TABLE hosts (
	name         text    COLLATE "C" PRIMARY KEY,  -- [kilnd] host, else the hostname
	base_url     text    NOT NULL,            -- where the other hosts reach its API
	slots        integer NOT NULL DEFAULT 0 CHECK (slots >= 0),  -- concurrent builds
	running      integer NOT NULL DEFAULT 0 CHECK (running >= 0), -- builds now
	version      text    NOT NULL,            -- kilnd's version
	started_at   bigint  NOT NULL,
	heartbeat_at bigint  NOT NULL,
	-- The targets it can build (its toolchain map, as JSON): a host
	-- claims only those.  NULL until it has looked.
	toolchains   text
);

-- Farm: facts every host must agree on, one row each.  'public_key' is
-- the farm's signing key (minisign, base64), recorded by the first host
-- that starts; a kilnd whose own key differs refuses to start, so that
-- no two hosts sign one farm's jobs with different keys.
CREATE TABLE kiln_farm (
	key   text PRIMARY KEY,
	value text NOT NULL
);
