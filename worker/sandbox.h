/*
 * The build sandbox (kiln-worker(8), "The sandbox").  One mechanism per file, as
 * OpenSSH splits its sandbox-*.c:
 *
 *   sandbox-ns.c       namespaces, the mount tree, the pid-1 init, and the
 *                      life cycle below (start, release, kill, wait)
 *   sandbox-rlimit.c   resource limits of the build process
 *   sandbox-seccomp.c  the system-call filter of the build process
 *   cgroup*.c          memory and pids limits and whole-tree kill (cgroup.h)
 *
 * Life cycle, in the worker:
 *   sandbox_start    clone the new namespaces; pid 1 waits on a sync pipe
 *   (the caller moves sandbox_pid() into its cgroups here)
 *   sandbox_release  let pid 1 build the mount tree and start the build
 *   sandbox_kill     SIGKILL pid 1: the kernel kills its whole namespace
 *   sandbox_wait     reap pid 1 and read what happened to the build
 */
#ifndef KILN_WORKER_SANDBOX_H
#define KILN_WORKER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The build's uid and gid inside its user namespace: never 0. */
#define SANDBOX_UID 1000
#define SANDBOX_GID 1000
#define SANDBOX_HOSTNAME "kiln-build"

struct sandbox_config {
	const char *root;	/* holds src/, out/ and tmp/ */
	const char *cache;	/* bound at /cache, or NULL */
	/* Go's module cache, bound at /gomod: read-only for builds, writable
	 * only for the deps step that fills it (go mod download). */
	const char *modcache;
	bool modcache_rw;
	bool network;		/* keep the host's network namespace */
	uid_t outer_uid;	/* host uid/gid that SANDBOX_UID/GID map to */
	gid_t outer_gid;
	rlim_t nofile;		/* RLIMIT_NOFILE */
	rlim_t fsize;		/* RLIMIT_FSIZE */
	rlim_t nproc;		/* RLIMIT_NPROC, or 0 to leave it alone */
	char *const *argv;	/* the build: argv[0] is searched in its PATH */
	char *const *envp;	/* its whole environment */
};

enum sandbox_outcome {
	SANDBOX_EXITED,		/* code */
	SANDBOX_SIGNALED,	/* signal */
	SANDBOX_FAILED,		/* error: the sandbox could not be set up */
};

struct sandbox_result {
	enum sandbox_outcome outcome;
	int code;
	int signal;
	char error[256];
};

struct sandbox;

/* sandbox-ns.c */
int sandbox_start(struct sandbox **out, const struct sandbox_config *cfg,
    char *err, size_t errsize);
pid_t sandbox_pid(const struct sandbox *sb);
int sandbox_release(struct sandbox *sb, char *err, size_t errsize);
void sandbox_kill(struct sandbox *sb);
/* Reap pid 1 if it has exited: 1 when it is gone, 0 while it runs. */
int sandbox_try_wait(struct sandbox *sb);
/* Blocks until pid 1 is reaped; call after it exited or was killed. */
void sandbox_wait(struct sandbox *sb, struct sandbox_result *out);
/* Kills pid 1 first when it still runs. */
void sandbox_free(struct sandbox *sb);

/* sandbox-rlimit.c: in the build process, before exec. */
int sandbox_rlimit_apply(const struct sandbox_config *cfg, char *err,
    size_t errsize);

/* sandbox-seccomp.c: in the build process, the last step before exec. */
int sandbox_seccomp_apply(char *err, size_t errsize);

#endif
