/*
 * kilnd's settings: embedded defaults, then kilnd.conf (INI, read with
 * libinih), then command-line flags.  Every key is documented in
 * kilnd.conf(5); an unknown key or a bad value is an error that names
 * file:line.
 */
#ifndef KILN_CONF_H
#define KILN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "log.h"

#define CONF_DEFAULT_PATH "/etc/kiln/kilnd.conf"
#define CONF_DEFAULT_LISTEN "127.0.0.1:8080"
#define CONF_DEFAULT_STATE_DIR "/var/lib/kiln"

#define CONF_MAX_TOOLCHAINS 64
#define CONF_MAX_GO_TOOLCHAINS 8
/* The triple that means "the host's own gcc". */
#define CONF_HOST_TRIPLE "host"

struct kiln_config {
	char *listen;			/* ADDR:PORT */
	char *state_dir;
	unsigned workers;		/* build slots */
	enum log_level log_level;
	unsigned http_timeout;		/* idle connection timeout, s */
	/* s from a connection's acceptance (or its previous request's end)
	 * by which a request's headers and body must be in whole. */
	unsigned header_timeout;
	unsigned max_connections;
	size_t max_body;		/* request body limit, bytes */
	unsigned max_queued;		/* queued targets before 503 */
	/* The highest priority a token below admin may ask for (a job's
	 * priority runs from -1000 to 1000; 0 is normal). */
	unsigned max_priority;
	unsigned shutdown_timeout;	/* grace for in-flight requests, s */
	unsigned max_attempts;		/* runs of a target across crashes */
	/* Seconds a running target's heartbeat stays good: older, and no
	 * build of this kilnd holds it, it is claimed back. */
	unsigned target_lease;
	unsigned drain_timeout;		/* s running builds may finish on SIGTERM */
	bool access_log;		/* a log line per HTTP request */
	unsigned ntokens;		/* API tokens ([tokens]) */

	/* Builds. */
	bool paused;			/* start with builds paused */
	char *worker_path;		/* kiln-worker; NULL = find it */
	unsigned build_timeout;		/* s, wall clock per target */
	unsigned fetch_timeout;		/* s, per fetch */
	size_t max_log_size;		/* bytes kept of a target's log */
	size_t build_memory;		/* bytes, cgroup memory limit */
	unsigned build_pids;		/* cgroup pids limit */
	unsigned build_uid;		/* host uid of builds when root */
	/* Not root and no /etc/subuid range: build as kilnd's own uid. */
	bool allow_same_uid_builds;
	size_t build_file_size;		/* RLIMIT_FSIZE of builds, bytes */
	char *goproxy;			/* GOPROXY of the deps step */
	char *gosumdb;			/* GOSUMDB of the deps step ("off") */

	/* The queue and the farm. */
	char *database;			/* postgresql:// URL; NULL = SQLite */
	char *host_name;		/* this host in the farm */
	/* Another host's file: fetched from it and passed on, not 307. */
	bool proxy_downloads;

	/* Artifacts. */
	char *base_url;			/* this farm's URL; NULL = http://listen */
	unsigned max_artifacts;		/* files per target */
	size_t max_artifact_size;	/* bytes per target, all files */
	size_t max_job_output_size;	/* bytes per job, all targets */
	unsigned keep_jobs;		/* finished jobs kept per repo, 0 = all */
	unsigned keep_days;		/* 0 = forever */
	/* Artifact bytes kept, 0 = no cap; CONF_STORE_MAX_AUTO (not set):
	 * conf_store_max_size() of the store's file system. */
	size_t store_max_size;
	unsigned sweep_interval;	/* s between retention sweeps */

	/* Exposure. */
	bool open_submissions;		/* POST /v1/jobs for any repo */
	/* file:// URLs and absolute paths may be built (never in or above
	 * state_dir): they read whatever the kilnd user can read. */
	bool allow_local_repos;
	bool public_read;		/* downloads, pubkey, healthz: no token */
	char *tls_cert, *tls_key;	/* PEM files: serve HTTPS */
	unsigned max_connections_per_ip;
	/* Secrets /v1/hooks/{forge} tries per delivery (an HMAC of the body
	 * each); a farm with more takes /v1/hooks/{forge}/{project} only. */
	unsigned max_hook_secrets;
	char *notify_secret;		/* signs callbacks without a project's */
	unsigned notify_timeout;	/* s a callback is retried for */
	unsigned notify_deadline;	/* s one attempt may take; then killed */
	unsigned notify_slots;		/* callbacks sent at once */
	/* Callbacks may go to loopback, link-local and the host's own
	 * addresses. */
	bool allow_private_callbacks;

	/* [tokens] NAME = SCOPE SHA256-HEX */
	struct conf_token {
		char name[64];
		unsigned char hash[32];	/* SHA-256 of the token */
		int scope;		/* enum api_scope: read, submit, admin */
	} *tokens;

	/* [project NAME] sections. */
	struct conf_project *projects;
	size_t nprojects;

	/* [toolchains]: target -> GNU triple of its C cross compiler. */
	struct conf_toolchain {
		char target[32];
		char triple[64];
	} toolchains[CONF_MAX_TOOLCHAINS];
	size_t ntoolchains;
	/* [toolchains] go = PATH...: go binaries beside /usr/lib/go-1.NN. */
	char *go_toolchains[CONF_MAX_GO_TOOLCHAINS];
	size_t ngo_toolchains;
};

/* store_max_size not set: a share of the disk, decided at start. */
#define CONF_STORE_MAX_AUTO SIZE_MAX
/* The store_max_size in force for a store file system of fs_size bytes. */
uint64_t conf_store_max_size(const struct kiln_config *c, uint64_t fs_size);

#define CONF_MAX_SECRETS 8
#define CONF_MAX_REFS 16

/* A repository kiln agrees to build, with its webhook secrets. */
struct conf_project {
	char *name;
	char *repo;			/* the URL builds fetch */
	char *secrets[CONF_MAX_SECRETS];	/* several: rotation */
	size_t nsecrets;
	char targets[64][32];		/* default targets, normalized */
	size_t ntargets;
	char *recipe;			/* compact JSON, NULL = the repo's */
	char *refs[CONF_MAX_REFS];	/* fnmatch patterns of full refs */
	size_t nrefs;
	/* Refs whose builds are protected (trusted caches): patterns, or
	 * none for the default (refs/tags/ and the default branch). */
	char *protected_refs[CONF_MAX_REFS];
	size_t nprotected;
	bool network;			/* builds keep the host network */
	unsigned timeout;		/* s, 0 = build_timeout */
	int priority;
	char *notify_url;
	char *notify_secret;		/* signs its callbacks; never a secret */
	char *goproxy;			/* overrides [kilnd] goproxy, or NULL */
	char *goprivate;		/* GOPRIVATE of its deps step, or NULL */
	/* Fetch credentials (creds.h), read when each fetch starts: a path,
	 * or NULL. */
	char *credentials;
	/* Where its release images go (HOST[:PORT]/NAME), or NULL; over
	 * http when registry_insecure (a registry on loopback, a test). */
	char *registry;
	bool registry_insecure;
	int line;			/* of its section header */
};

/* The project whose repo is url, however spelled (util_repo_identity:
 * the one mirror both share), or NULL. */
const struct conf_project *conf_project_by_repo(const struct kiln_config *c,
    const char *url);
/* The project named `name`, or NULL. */
const struct conf_project *conf_project_by_name(const struct kiln_config *c,
    const char *name);
/* Whether the full ref matches one of the project's patterns. */
bool conf_project_wants_ref(const struct conf_project *p, const char *ref);
/*
 * Whether builds of the full ref `ref` are protected: it matches the
 * project's protected_refs, or, without that key (or without a project),
 * it is a tag or the repository's default branch (`default_branch`, a
 * full ref, or NULL when unknown).  A NULL ref (a commit id) never is.
 */
bool conf_ref_protected(const struct conf_project *p, const char *ref,
    const char *default_branch);

/* The toolchain triple for a normalized target, or NULL. */
const char *conf_toolchain(const struct kiln_config *c, const char *target);

/* The longest host_name; a name is letters, digits, '-', '.', '_'. */
#define CONF_HOST_NAME_MAX 63
/* 0 when s may be a host_name, else -1. */
int conf_host_name_ok(const char *s);
void conf_defaults(struct kiln_config *c);
void conf_free(struct kiln_config *c);
/*
 * Read `path` over what `c` holds.  Returns 0; -1 with "path:line: why"
 * in err for a bad file; -2 when the file does not exist.
 */
int conf_load(struct kiln_config *c, const char *path, char *err,
    size_t errsize);

/* The same from an open stream; `name` is used in messages. */
int conf_load_stream(struct kiln_config *c, FILE *f, const char *name,
    char *err, size_t errsize);

/* Set one key as the file would ("workers", "4"); for flags and tests. */
int conf_set(struct kiln_config *c, const char *key, const char *value,
    char *err, size_t errsize);

/*
 * "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (numeric addresses
 * only, no DNS).  Port 0 picks a free port.
 */
int conf_parse_listen(const char *s, struct sockaddr_storage *out,
    socklen_t *outlen, char *err, size_t errsize);
bool conf_is_loopback(const struct sockaddr *sa);
/*
 * The listen address of `c` parsed into out, and refused (-1, why in err)
 * when it is not a loopback address and no API token is configured.
 * Used by kilnd at start and by --check-config.
 */
int conf_check_listen(const struct kiln_config *c,
    struct sockaddr_storage *out, socklen_t *outlen, char *err,
    size_t errsize);

#endif
