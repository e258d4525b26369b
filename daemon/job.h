/*
 * Jobs and their targets as the rest of kilnd sees them.  The queue
 * (queue.h) stores and loads them; the API renders them.
 */
#ifndef KILN_JOB_H
#define KILN_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "target.h"

enum job_state {
	JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELED,
	JOB_STATE_COUNT
};

enum target_state {
	TARGET_QUEUED, TARGET_RUNNING, TARGET_SUCCEEDED, TARGET_FAILED,
	TARGET_TIMED_OUT, TARGET_CANCELED, TARGET_STATE_COUNT
};

#define JOB_MAX_TARGETS TARGETS_MAX
/* The range of a job's priority (higher builds first; 0 is normal). */
#define JOB_PRIORITY_MIN (-1000)
#define JOB_PRIORITY_MAX 1000
/*
 * The one target row of a job submitted without targets: the repository
 * names them (.kiln.json, .goreleaser.yaml), and once its commit is
 * fetched the row is replaced by one row per target it names.
 */
#define JOB_TARGETS_FROM_REPO "*"

struct artifact {
	char *name;
	int64_t size;
	char *sha256;		/* NULL until stored */
};

struct job_target {
	int64_t id;
	char target[TARGET_NAME_MAX];
	enum target_state state;
	int attempt;
	bool has_exit_status;
	int exit_status;
	char *error;
	int64_t started_at;	/* ms since the epoch, 0 = not yet */
	int64_t finished_at;
	bool cached;		/* artifacts reused from an equal build */
	char *toolchain;	/* "go1.22.12", or NULL before it started */
	int64_t cached_from;	/* the job whose build it reused, or 0 */
	char *host;		/* the kilnd host that claimed it, or NULL */
	/* A verifying rebuild's result, JSON (schema/015_outputs.sql), or
	 * NULL when not verified. */
	char *verified;
	size_t nartifacts;
	struct artifact *artifacts;
};

/*
 * Which caches a job's builds may write and which earlier results they may
 * reuse (SECURITY.md, "Caches by trust").  UNKNOWN until the fetch names
 * the ref the job builds.
 */
enum job_trust { TRUST_UNKNOWN, TRUST_PROTECTED, TRUST_UNPROTECTED };

struct job {
	int64_t id;
	char *repo;
	char *ref;
	char *commit;		/* NULL until the ref is resolved */
	char *recipe;		/* recipe JSON text, NULL = from the repository */
	int priority;
	int timeout;		/* s, 0 = the farm's build_timeout */
	bool cache;		/* false: "cache": false, always build */
	enum job_state state;
	char *error;
	int64_t created_at;	/* ms since the epoch */
	int64_t started_at;	/* 0 = not yet */
	int64_t finished_at;
	/* Blobs of the signed files, all NULL until the job is signed. */
	char *sums_sha256, *sig_sha256, *prov_sha256;
	int64_t expired_at;	/* retention removed its files; 0 = not */
	char *project;		/* [project NAME], NULL = none */
	bool network;		/* builds keep the host network */
	/* Result callback; state NULL until the job ends. */
	char *notify_url, *notify_state, *notify_error;
	int notify_attempts;
	/* The webhook delivery that made it (stored at submission). */
	char *delivery_forge, *delivery_id;
	enum job_trust trust;
	/* The [tokens] name of the token that submitted it; NULL: none (a
	 * farm without tokens, a webhook). */
	char *submitted_by;
	/* The farm's host that signed it (it holds the signed files' blobs);
	 * NULL: not signed, or a queue of one host (SQLite). */
	char *signed_by;
	/* Canonical "outputs" (lib/outputs.h), NULL: none; release: they
	 * need the release row, added once every build succeeded. */
	char *outputs;
	bool release;
	/* The job this one retries (POST /v1/jobs/{id}/retry), 0: none. */
	int64_t retry_of;
	size_t ntargets;
	struct job_target *targets;
};

void job_free(struct job *job);
/* Free an array of n artifacts and their strings. */
void artifacts_free(struct artifact *arts, size_t n);
void job_free_array(struct job **jobs, size_t n);

const char *job_state_name(enum job_state s);
int job_state_parse(const char *s, enum job_state *out);
const char *target_state_name(enum target_state s);
int target_state_parse(const char *s, enum target_state *out);
bool target_state_terminal(enum target_state s);
bool job_state_terminal(enum job_state s);
/* "protected", "unprotected", or NULL for TRUST_UNKNOWN; and back
 * (NULL and unknown words give TRUST_UNKNOWN). */
const char *job_trust_name(enum job_trust t);
enum job_trust job_trust_parse(const char *s);

#endif
