/*
 * The build sandbox (kiln-worker(8), "The sandbox").  One mechanism per file, as
 * OpenSSH splits its sandbox-*.c:
 *
 *   sandbox-ns.c       namespaces, the pid-1 init, and the life cycle
 *                      below (start, release, kill, wait)
 *   sandbox-fs.c       the mount tree pid 1 builds and pivots into
 *   sandbox-rlimit.c   resource limits of the build process
 *   sandbox-seccomp.c  the system-call filter of the build process
 *   sandbox-run.c      the fetch's and the checkout's sandbox, built from
 *                      the same steps (sandbox-int.h)
 *   sandbox-net.c      the network of a network build: slirp4netns, and
 *                      the host's addresses made unreachable inside
 *   cgroup*.c          memory and pids limits and whole-tree kill (cgroup.h)
 *
 * Life cycle, in the worker:
 *   sandbox_start    clone the new namespaces; pid 1 waits on a sync pipe
 *   (the caller moves sandbox_pid() into its cgroups here, and starts
 *   slirp4netns for a network build: sandbox_slirp_start)
 *   sandbox_release  let pid 1 build the mount tree and start the build
 *   sandbox_kill     SIGKILL pid 1: the kernel kills its whole namespace
 *   sandbox_wait     reap pid 1 and read what happened to the build
 */
#ifndef KILN_WORKER_SANDBOX_H
#define KILN_WORKER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The build's uid and gid inside its user namespace: never 0. */
#define SANDBOX_UID 1000
#define SANDBOX_GID 1000
#define SANDBOX_HOSTNAME "kiln-build"

/* The build's network (kiln-worker(8) --network, --host-network). */
enum sandbox_network {
	SANDBOX_NET_NONE,	/* own namespace with loopback only */
	SANDBOX_NET_SLIRP,	/* own namespace, slirp4netns: never the host */
	SANDBOX_NET_HOST,	/* the host's namespace: kilnd's deps step only */
};
struct sandbox_hostaddrs;

struct sandbox_config {
	const char *root;	/* holds src/, out/ and tmp/ */
	const char *cache;	/* bound at /cache, or NULL */
	/* Go's module cache, bound at /gomod: read-only for builds, writable
	 * only for the deps step that fills it (go mod download). */
	const char *modcache;
	bool modcache_rw;
	enum sandbox_network network;
	/* SANDBOX_NET_SLIRP: what pid 1 makes unreachable (sandbox-net.c) */
	const struct sandbox_hostaddrs *hostaddrs;
	uid_t outer_uid;	/* host uid/gid that SANDBOX_UID/GID map to */
	gid_t outer_gid;
	/* outer_uid/gid are subordinate ids of an unprivileged worker: only
	 * newuidmap/newgidmap may map them (idmap.h). */
	bool subids;
	rlim_t nofile;		/* RLIMIT_NOFILE */
	rlim_t fsize;		/* RLIMIT_FSIZE */
	rlim_t nproc;		/* RLIMIT_NPROC, or 0 to leave it alone */
	/*
	 * Where the work tree is mounted and the build starts (its cwd):
	 * NULL for /src.  Its parents are made on the sandbox's root.
	 */
	const char *src_inside;
	/* The build's ids inside its user namespace, mapped to outer_uid and
	 * outer_gid: 0 for SANDBOX_UID and SANDBOX_GID, never root. */
	uid_t inside_uid;
	gid_t inside_gid;
	mode_t umask;		/* the build's umask */
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
	/* When the build's exec began (CLOCK_MONOTONIC, ms), or 0. */
	int64_t exec_ms;
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
/* The build's ids inside its namespace, and where it sees its work tree:
 * cfg's, or the defaults. */
uid_t sandbox_inside_uid(const struct sandbox_config *cfg);
gid_t sandbox_inside_gid(const struct sandbox_config *cfg);
const char *sandbox_src_inside(const struct sandbox_config *cfg);

/* sandbox-rlimit.c: in the build process, before exec. */
int sandbox_rlimit_apply(const struct sandbox_config *cfg, char *err,
    size_t errsize);

/* sandbox-seccomp.c: in the build process, the last step before exec. */
int sandbox_seccomp_apply(char *err, size_t errsize);

/*
 * sandbox-net.c.  In the worker, in the host's namespace, before
 * sandbox_start: the host's own addresses (getifaddrs(3)).
 */
int sandbox_hostaddrs_collect(struct sandbox_hostaddrs **out, char *err,
    size_t errsize);
void sandbox_hostaddrs_free(struct sandbox_hostaddrs *h);
/* In pid 1, in the build's namespace, while it has CAP_NET_ADMIN there:
 * a prohibit route for each of them. */
int sandbox_net_block_host(const struct sandbox_hostaddrs *h, char *err,
    size_t errsize);

struct sandbox_slirp;
/*
 * After sandbox_start, before sandbox_release: start slirp4netns on the
 * namespace of pid 1 and wait until tap0 is configured.  program: NULL
 * for /usr/bin or /bin, or an absolute path (KILN_SLIRP4NETNS, tests).
 * Fails (naming the package) when slirp4netns is missing or does not get
 * ready.
 */
int sandbox_slirp_start(struct sandbox_slirp **out, pid_t pid1,
    const char *program, char *err, size_t errsize);
pid_t sandbox_slirp_pid(const struct sandbox_slirp *s);
/* Close its exit fd, reap it (SIGKILL if it lingers), free s.  NULL is
 * fine. */
void sandbox_slirp_stop(struct sandbox_slirp *s);

/*
 * sandbox-run.c: a function of the worker run in a sandbox of its own
 * (the fetch, the checkout): new user, mount, pid, IPC, UTS and cgroup
 * namespaces, the worker's uid and gid mapped to themselves, no
 * capabilities, no_new_privs, the build's seccomp filter and no execve.
 * Its file system: /usr, the dynamic linker's files, /dev/null and the
 * random devices, its own /proc, and the binds below; with `network`, the
 * host's network namespace and the files name lookups and TLS read.
 */
struct sandbox_bind {
	const char *host;	/* on the host: directory or file */
	const char *inside;	/* absolute; not under /usr, /etc, /dev... */
	bool writable;
	bool optional;		/* nothing there when missing on the host */
	/* Refused when what host names (symlinks followed) is in or
	 * above this real path. */
	const char *keep_out;
};

struct sandbox_run_config {
	const struct sandbox_bind *binds;
	size_t nbinds;
	bool network;		/* the host's network namespace */
	bool ca_certs;		/* /etc/ssl read-only without the network */
	const char *hostname;
	/* Runs in the sandbox: an exit code (not 125), and a message in
	 * err when it is not 0. */
	int (*fn)(void *data, char *err, size_t errsize);
	void *data;
	/* Descriptors of the worker's that fn uses (files opened before,
	 * outside): kept open across, at the same numbers.  Every other is
	 * closed. */
	const int *keep_fds;
	size_t nkeep_fds;
};

/*
 * Run cfg->fn in the sandbox and wait for it.  0 when it ran: *code is
 * its exit code, or 128 + the signal that killed it, and err what it
 * wrote into its err (or the signal).  -1 with err when the sandbox could
 * not be set up.
 */
int sandbox_run(int *code, const struct sandbox_run_config *cfg, char *err,
    size_t errsize);
/*
 * sandbox_run in two halves, so that the worker can do other work while
 * fn runs: start (0, or -1 with err), then exactly one of wait (as
 * sandbox_run) or kill (SIGKILL, reap; NULL is fine).  cfg and what it
 * points to may go once start returned: the sandbox has its own copy.
 */
struct sandbox_running;
int sandbox_run_start(struct sandbox_running **out,
    const struct sandbox_run_config *cfg, char *err, size_t errsize);
int sandbox_run_wait(struct sandbox_running *r, int *code, char *err,
    size_t errsize);
void sandbox_run_kill(struct sandbox_running *r);
/* Its process, for waitid(2) with WNOWAIT: only wait or kill reap it. */
pid_t sandbox_run_pid(const struct sandbox_running *r);

/* Where a fetch or a checkout sees the repository's mirror.  No URL kilnd
 * accepts holds a space, so hiding this path in messages never changes
 * the URL's text. */
#define SANDBOX_MIRROR "/kiln mirror"

#endif
