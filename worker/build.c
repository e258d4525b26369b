/*
 * kiln-worker build: check one commit out of a mirror into a fresh work
 * directory, run one program in the sandbox (sandbox.h) under cgroup
 * limits (cgroup.h) and a wall clock, and say what happened.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "build-int.h"
#include "cgroup.h"
#include "idmap.h"
#include "mirror.h"
#include "rebuild.h"
#include "owner.h"
#include "sandbox.h"
#include "target.h"
#include "tree.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define DEFAULT_MEMORY (4ULL << 30)
#define DEFAULT_PIDS 1024
#define DEFAULT_FILE_SIZE (2ULL << 30)
#define DEFAULT_NOFILE 4096
#define DEFAULT_BUILD_UID 65534
#define MAX_TIMEOUT (7 * 24 * 3600)

struct build_args {
	const char *mirror;
	const char *commit;
	const char *root;
	const char *target;
	const char *cache;
	const char *modcache;
	bool modcache_rw;
	int64_t timeout;
	enum sandbox_network network;
	uint64_t memory;
	int64_t pids;
	uint64_t file_size;
	int64_t nofile;
	int64_t build_uid;
	bool allow_same_uid;	/* unprivileged without subordinate ids */
	int status_fd;
	bool times;		/* stage times in the status line */
	bool rebuild;		/* build twice and compare (rebuild.h) */
	char **env;		/* NULL-terminated, pointers into argv */
	size_t nenv;
	char **argv;		/* the program and its arguments */
};


static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	worker_msg("build: %s (see kiln-worker --help)", msg);
	return -1;
}

static bool
valid_env_name(const char *s, size_t len)
{
	if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static int
add_env(struct build_args *a, char *def)
{
	const char *eq = strchr(def, '=');
	size_t len;

	if (eq == NULL || !valid_env_name(def, (size_t)(eq - def)))
		return usage_error("--env wants NAME=VALUE, got '%s'", def);
	len = (size_t)(eq - def) + 1;
	/* A later --env NAME=... replaces an earlier one: one value per name. */
	for (size_t i = 0; i < a->nenv; i++) {
		if (strncmp(a->env[i], def, len) == 0) {
			a->env[i] = def;
			return 0;
		}
	}
	a->env = xreallocarray(a->env, a->nenv + 2, sizeof *a->env);
	a->env[a->nenv++] = def;
	a->env[a->nenv] = NULL;
	return 0;
}

static int
parse_args(struct build_args *a, int argc, char **argv)
{
	enum {
		O_MIRROR = 256, O_COMMIT, O_ROOT, O_TARGET, O_TIMEOUT, O_CACHE,
		O_NETWORK, O_MEMORY, O_PIDS, O_FILE_SIZE, O_NOFILE, O_BUILD_UID,
		O_STATUS_FD, O_ENV, O_MODCACHE, O_MODCACHE_RW, O_ALLOW_SAME_UID,
		O_HOST_NETWORK, O_TIMES, O_REBUILD,
	};
	static const struct option opts[] = {
		{ "mirror", required_argument, NULL, O_MIRROR },
		{ "commit", required_argument, NULL, O_COMMIT },
		{ "root", required_argument, NULL, O_ROOT },
		{ "target", required_argument, NULL, O_TARGET },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "cache", required_argument, NULL, O_CACHE },
		{ "network", no_argument, NULL, O_NETWORK },
		{ "host-network", no_argument, NULL, O_HOST_NETWORK },
		{ "memory", required_argument, NULL, O_MEMORY },
		{ "pids", required_argument, NULL, O_PIDS },
		{ "file-size", required_argument, NULL, O_FILE_SIZE },
		{ "nofile", required_argument, NULL, O_NOFILE },
		{ "build-uid", required_argument, NULL, O_BUILD_UID },
		{ "status-fd", required_argument, NULL, O_STATUS_FD },
		{ "env", required_argument, NULL, O_ENV },
		{ "modcache", required_argument, NULL, O_MODCACHE },
		{ "modcache-rw", no_argument, NULL, O_MODCACHE_RW },
		{ "allow-same-uid", no_argument, NULL, O_ALLOW_SAME_UID },
		{ "times", no_argument, NULL, O_TIMES },
		{ "rebuild", no_argument, NULL, O_REBUILD },
		{ NULL, 0, NULL, 0 },
	};
	struct target t;
	char terr[128];
	int64_t fd;
	int c;

	memset(a, 0, sizeof *a);
	a->memory = DEFAULT_MEMORY;
	a->pids = DEFAULT_PIDS;
	a->file_size = DEFAULT_FILE_SIZE;
	a->nofile = DEFAULT_NOFILE;
	a->build_uid = DEFAULT_BUILD_UID;
	a->status_fd = -1;
	a->env = xcalloc(1, sizeof *a->env);

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case O_MIRROR: a->mirror = optarg; break;
		case O_COMMIT: a->commit = optarg; break;
		case O_ROOT: a->root = optarg; break;
		case O_TARGET: a->target = optarg; break;
		case O_CACHE: a->cache = optarg; break;
		case O_NETWORK:
		case O_HOST_NETWORK:
			if (a->network != SANDBOX_NET_NONE)
				return usage_error("%s", "--network and "
				    "--host-network: one of them, once");
			a->network = c == O_NETWORK ? SANDBOX_NET_SLIRP :
			    SANDBOX_NET_HOST;
			break;
		case O_MODCACHE: a->modcache = optarg; break;
		case O_MODCACHE_RW: a->modcache_rw = true; break;
		case O_ALLOW_SAME_UID: a->allow_same_uid = true; break;
		case O_TIMES: a->times = true; break;
		case O_REBUILD: a->rebuild = true; break;
		case O_TIMEOUT:
			if (util_parse_int64(optarg, 1, MAX_TIMEOUT, &a->timeout) != 0)
				return usage_error("--timeout wants seconds in "
				    "[1, 604800], got '%s'", optarg);
			break;
		case O_MEMORY:
			if (worker_parse_size(optarg, 1ULL << 20, 1ULL << 50,
			    &a->memory) != 0)
				return usage_error("--memory wants bytes (K/M/G/T "
				    "suffix), at least 1M, got '%s'", optarg);
			break;
		case O_PIDS:
			if (util_parse_int64(optarg, 8, 4194304, &a->pids) != 0)
				return usage_error("--pids wants [8, 4194304], got "
				    "'%s'", optarg);
			break;
		case O_FILE_SIZE:
			if (worker_parse_size(optarg, 1, 1ULL << 50,
			    &a->file_size) != 0)
				return usage_error("--file-size wants bytes (K/M/G/T "
				    "suffix), got '%s'", optarg);
			break;
		case O_NOFILE:
			if (util_parse_int64(optarg, 16, 1048576, &a->nofile) != 0)
				return usage_error("--nofile wants [16, 1048576], got "
				    "'%s'", optarg);
			break;
		case O_BUILD_UID:
			/* Never root: the build would own the host's files. */
			if (util_parse_int64(optarg, 1, 4294967294LL,
			    &a->build_uid) != 0)
				return usage_error("--build-uid wants a uid other "
				    "than 0, got '%s'", optarg);
			break;
		case O_STATUS_FD:
			if (util_parse_int64(optarg, 3, INT_MAX, &fd) != 0 ||
			    fcntl((int)fd, F_GETFD) < 0)
				return usage_error("--status-fd wants an open fd "
				    "above 2, got '%s'", optarg);
			a->status_fd = (int)fd;
			break;
		case O_ENV:
			if (add_env(a, optarg) != 0)
				return -1;
			break;
		default:
			return usage_error("%s", "unknown option");
		}
	}
	if (a->mirror == NULL || a->commit == NULL || a->root == NULL ||
	    a->target == NULL || a->timeout == 0)
		return usage_error("%s", "--mirror, --commit, --root, --target "
		    "and --timeout are required");
	if (!worker_is_sha1_hex(a->commit))
		return usage_error("--commit wants a 40-hex commit id, got '%s'",
		    a->commit);
	if (a->root[0] != '/')
		return usage_error("--root wants an absolute path, got '%s'",
		    a->root);
	if (a->cache != NULL && a->cache[0] != '/')
		return usage_error("--cache wants an absolute path, got '%s'",
		    a->cache);
	if (a->modcache != NULL && a->modcache[0] != '/')
		return usage_error("--modcache wants an absolute path, got '%s'",
		    a->modcache);
	if (a->modcache_rw && a->modcache == NULL)
		return usage_error("%s", "--modcache-rw needs --modcache");
	if (a->rebuild && a->modcache_rw)
		return usage_error("%s", "--rebuild is for builds, not for the "
		    "deps step (--modcache-rw)");
	if (target_parse(&t, a->target, terr, sizeof terr) != 0)
		return usage_error("--target: %s", terr);
	if (optind >= argc)
		return usage_error("%s", "no program: -- PROGRAM [ARG...]");
	a->argv = argv + optind;
	return 0;
}

/* 0, 1 and 2 open: the pipes made later must not land on them. */
static void
ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

/*
 * ROOT must be new or empty: a build never starts from another's leftovers.
 * Its messages call ROOT "the work root" and its parts by the names the
 * build sees (/src, /out, /tmp): the path is kilnd's business.
 */
static int
prepare_root(const char *root, char *err, size_t errsize)
{
	static const char *const subdirs[] = { "src", "out", "tmp" };
	struct stat st;

	if (lstat(root, &st) == 0) {
		DIR *d;
		struct dirent *e;
		bool empty = true;

		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errsize, "the work root is not a directory");
			return -1;
		}
		d = opendir(root);
		if (d == NULL) {
			snprintf(err, errsize, "cannot read the work root: %s",
			    strerror(errno));
			return -1;
		}
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				empty = false;
		closedir(d);
		if (!empty) {
			snprintf(err, errsize, "the work root is not empty: no "
			    "build starts from another's leftovers");
			return -1;
		}
	} else if (errno != ENOENT || mkdir(root, 0700) != 0) {
		snprintf(err, errsize, "cannot create the work root: %s",
		    strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", root, subdirs[i]);
		if (mkdir(path, 0755) != 0) {
			snprintf(err, errsize, "cannot create /%s in the work "
			    "root: %s", subdirs[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* In the checkout's sandbox: the mirror at SANDBOX_MIRROR, the work
 * tree at /src. */
static int
checkout_in_sandbox(void *data, char *err, size_t errsize)
{
	const char *commit = data;
	int rc;

	if (mirror_init() != 0) {
		snprintf(err, errsize, "cannot initialize libgit2");
		return 1;
	}
	rc = mirror_checkout(SANDBOX_MIRROR, commit, "/src", err, errsize);
	mirror_shutdown();
	return rc == 0 ? 0 : 1;
}

/*
 * libgit2 reads the commit's objects, which the repository wrote, so it
 * does so in a sandbox of its own (sandbox_run): the mirror read-only,
 * ROOT/src writable, no network, nothing else of the host's files.
 * It runs while the worker sets up the build's sandbox and cgroups
 * (sandbox_run_start): most of either is waiting on the kernel (a
 * namespace's mounts, a move between cgroups), and one need not wait
 * for the other.  checkout_wait collects it before anything touches
 * ROOT/src.
 */
static int
checkout_start(const struct build_args *a, const char *root,
    struct sandbox_running **out, char *err, size_t errsize)
{
	char src[PATH_MAX];
	struct sandbox_bind binds[2] = {
		{ .host = a->mirror, .inside = SANDBOX_MIRROR },
		{ .host = src, .inside = "/src", .writable = true },
	};
	struct sandbox_run_config cfg = {
		.binds = binds, .nbinds = 2, .hostname = "kiln-checkout",
		.fn = checkout_in_sandbox, .data = (void *)a->commit,
	};

	snprintf(src, sizeof src, "%s/src", root);
	return sandbox_run_start(out, &cfg, err, errsize);
}

/* Read SIGTERM or SIGINT (kilnd cancels) from sfd into *sig. */
static void
read_signals(int sfd, int *sig)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			*sig = (int)si.ssi_signo;
}

/*
 * The checkout's end, or a cancel (SIGTERM, SIGINT on sfd: *cancel_sig
 * set, 0 returned, the checkout left running for sandbox_run_kill).
 */
static int
checkout_wait(const struct build_args *a, struct sandbox_running **r,
    int sfd, int *cancel_sig, char *err, size_t errsize)
{
	siginfo_t info;
	int code, rc;

	for (;;) {
		struct pollfd p = { sfd, POLLIN, 0 };

		memset(&info, 0, sizeof info);
		if (waitid(P_PID, sandbox_run_pid(*r), &info, WEXITED |
		    WNOHANG | WNOWAIT) != 0 && errno != EINTR) {
			snprintf(err, errsize, "waitid: %s", strerror(errno));
			return -1;
		}
		if (info.si_pid != 0)
			break;
		if (poll(&p, 1, -1) < 0 && errno != EINTR) {
			snprintf(err, errsize, "poll: %s", strerror(errno));
			return -1;
		}
		read_signals(sfd, cancel_sig);
		if (*cancel_sig != 0)
			return 0;
	}
	rc = sandbox_run_wait(*r, &code, err, errsize);
	*r = NULL;
	if (rc != 0)
		return -1;
	if (code != 0 && err[0] == '\0')
		snprintf(err, errsize, "checkout of %s failed (exit %d)",
		    a->commit, code);
	return code == 0 ? 0 : -1;
}

/* "kiln-<basename of ROOT>-<worker pid>"; the pid lets a later worker
 * remove the group of a worker that was SIGKILLed. */
static char *
cgroup_name(const char *root)
{
	char base[49];
	const char *end = root + strlen(root), *start;
	size_t n = 0;

	while (end > root + 1 && end[-1] == '/')
		end--;
	start = end;
	while (start > root && start[-1] != '/')
		start--;
	for (const char *p = start; p < end && n < sizeof base - 1; p++)
		base[n++] = (isalnum((unsigned char)*p) || *p == '-' ||
		    *p == '_' || *p == '.') ? *p : '_';
	base[n] = '\0';
	return xasprintf("kiln-%s-%ld", n > 0 ? base : "build", (long)getpid());
}

/*
 * The error reaches the build log and the target's error, which users
 * read: paths in kilnd's state directory (the work root, the mirror, the
 * caches) are shown as the build sees them (/src, /cache...) or by what
 * they are.  Messages of lower layers (the sandbox, libgit2) name them
 * too, hence one pass over the final message.
 */
/*
 * A cgroup's path shows where kilnd runs in the host's cgroup tree
 * (its service and slice) and the build group's name: "<cgroup>/" and
 * the path's last component say enough to find it from the host.
 */
static void
hide_cgroup_paths(char *msg, size_t size)
{
	static const char root[] = "/sys/fs/cgroup";
	char *p = msg;

	while ((p = strstr(p, root)) != NULL) {
		size_t len = strcspn(p, " :;,'\"\n"), off = (size_t)(p - msg);
		char path[PATH_MAX], *last, shown[PATH_MAX];
		size_t tail, nlen;

		if (len >= sizeof path) {
			p += len;
			continue;
		}
		memcpy(path, p, len);
		path[len] = '\0';
		last = strrchr(path, '/');
		snprintf(shown, sizeof shown, "<cgroup>%s",
		    len > sizeof root - 1 ? last : "");
		nlen = strlen(shown);
		tail = strlen(p + len);
		if (off + nlen + tail >= size)
			tail = off + nlen < size ? size - 1 - off - nlen : 0;
		if (off + nlen >= size) {
			snprintf(p, size - off, "%s", shown);
			return;
		}
		memmove(p + nlen, p + len, tail);
		memcpy(p, shown, nlen);
		p[nlen + tail] = '\0';
		p += nlen;
	}
}

static void
hide_paths(char *err, size_t errsize, const struct build_args *a)
{
	static const char *const parts[] = { "/src", "/out", "/tmp" };
	char path[PATH_MAX];

	hide_cgroup_paths(err, errsize);

	if (a->root != NULL) {
		for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
			snprintf(path, sizeof path, "%s%s", a->root, parts[i]);
			mirror_hide_path(err, errsize, path, parts[i]);
		}
		mirror_hide_path(err, errsize, a->root, "<work root>");
	}
	if (a->cache != NULL)
		mirror_hide_path(err, errsize, a->cache, "/cache");
	if (a->modcache != NULL)
		mirror_hide_path(err, errsize, a->modcache, "/gomod");
	if (a->mirror != NULL)
		mirror_hide_path(err, errsize, a->mirror, "<mirror>");
}

/*
 * After a build under subordinate ids its work tree goes back to us:
 * kilnd reads /out and removes the tree as itself.  When that fails the
 * build failed, as kilnd cannot publish what it cannot read.  (A tree
 * that a killed worker never gave back, kilnd reclaims with kiln-worker
 * reclaim before it removes it.)
 */
static void
give_back(const struct build_args *a, const char *root,
    const struct subid *ids, enum build_status *st, char *err, size_t errsize)
{
	char why[PATH_MAX];

	if (idmap_chown(ids, &root, 1, IDMAP_TO_SELF, why, sizeof why) == 0)
		return;
	if (*st == ST_ERROR) {
		hide_paths(why, sizeof why, a);
		worker_msg("cannot give the work tree back to kilnd: %s", why);
		return;
	}
	snprintf(err, errsize, "cannot give the work tree back to kilnd: %s",
	    why);
	*st = ST_ERROR;
}

/*
 * The caches to the build user (owner_cache): a root worker's build uid
 * (ids NULL), or the subordinate ids `ids`.
 */
static int
give_caches(const struct build_args *a, const struct sandbox_config *cfg,
    const struct subid *ids, char *err, size_t errsize)
{
	if (cfg->cache != NULL && owner_cache(cfg->cache, cfg->outer_uid,
	    cfg->outer_gid, ids, err, errsize) != 0)
		return -1;
	/* Builds only read the module cache (Go makes it world readable);
	 * the deps step writes it as the build user. */
	if (a->modcache_rw && owner_cache(a->modcache, cfg->outer_uid,
	    cfg->outer_gid, ids, err, errsize) != 0)
		return -1;
	return 0;
}

/* Who the worker is and whom builds run as (owner_identity). */
struct ident {
	bool root_user, use_subids;
	struct subid ids;
};

/* One run of the build: the first, or --rebuild's second. */
struct run {
	const char *root;	/* holds src/, out/ and tmp/ */
	const char *cache;	/* bound at /cache, or NULL */
	const struct rebuild_run *v;
	enum build_status st;
	int value, ret;
	struct stage_times tm;
};

/*
 * Check the commit out into r->root, run the build there in a sandbox of
 * its own and its own cgroup, and set r's outcome; err set when st is
 * ST_ERROR.  A cancel (SIGTERM, SIGINT on sfd) sets *cancel_sig.
 */
static void
run_build(const struct build_args *a, const struct ident *id,
    const struct sandbox_hostaddrs *hostaddrs, int sfd, int *cancel_sig,
    struct run *r, char *err, size_t errsize)
{
	struct sandbox_config cfg;
	struct sandbox_result res;
	struct sandbox *sb = NULL;
	struct sandbox_slirp *slirp = NULL;
	/* Read at start: kiln-worker(8), ENVIRONMENT. */
	const char *slirp_program = getenv("KILN_SLIRP4NETNS");
	struct cgroup *cg = NULL;
	char *cgname = NULL;
	struct sandbox_running *co = NULL;	/* the checkout, running */
	bool handed = false;
	int64_t deadline, t;
	int rc;

	r->st = ST_ERROR;
	r->value = 0;
	r->ret = WORKER_EXIT_ERROR;
	memset(&r->tm, 0, sizeof r->tm);
	r->tm.start = worker_mono_ms();
	if (prepare_root(r->root, err, errsize) != 0)
		goto out;
	if (checkout_start(a, r->root, &co, err, errsize) != 0)
		goto out;
	if (r->cache != NULL && (rc = util_mkdir_p(r->cache, 0755)) != 0) {
		snprintf(err, errsize, "cannot create the build cache: %s",
		    strerror(-rc));
		goto out;
	}

	memset(&cfg, 0, sizeof cfg);
	cfg.root = r->root;
	cfg.cache = r->cache;
	cfg.modcache = a->modcache;
	cfg.modcache_rw = a->modcache_rw;
	cfg.network = a->network;
	cfg.hostaddrs = hostaddrs;
	cfg.nofile = (rlim_t)a->nofile;
	cfg.fsize = (rlim_t)a->file_size;
	cfg.argv = a->argv;
	cfg.envp = r->v->env;
	cfg.src_inside = r->v->src_inside;
	cfg.inside_uid = r->v->inside_uid;
	cfg.inside_gid = r->v->inside_gid;
	cfg.umask = r->v->umask;
	/*
	 * Root runs the build as a dedicated uid (nobody by default) and gives
	 * it the work tree and the caches; an unprivileged worker as its first
	 * subordinate ids (owner_identity), or, where kilnd allows it, as
	 * itself.
	 */
	if (id->root_user) {
		cfg.outer_uid = (uid_t)a->build_uid;
		cfg.outer_gid = (gid_t)a->build_uid;
	} else if (id->use_subids) {
		cfg.outer_uid = id->ids.uid;
		cfg.outer_gid = id->ids.gid;
		cfg.subids = true;
	} else {
		cfg.outer_uid = getuid();
		cfg.outer_gid = getgid();
	}
	/* A worker building as itself owns all of it already. */
	r->tm.chown = worker_mono_ms();
	if ((id->root_user || id->use_subids) && give_caches(a, &cfg,
	    id->use_subids ? &id->ids : NULL, err, errsize) != 0)
		goto out;
	r->tm.chown = worker_mono_ms() - r->tm.chown;

	r->tm.cgroup = worker_mono_ms();
	cgname = cgroup_name(r->root);
	if (cgroup_create(&cg, cgname, a->memory, (uint64_t)a->pids, err,
	    errsize) != 0) {
		/*
		 * Unprivileged without a delegated subtree: no memory limit and
		 * no pids cgroup.  RLIMIT_NPROC on the build's uid is the only
		 * cap on a fork bomb then; it counts every process of that uid
		 * on the host, so it is only a backstop.
		 */
		hide_paths(err, errsize, a);
		worker_msg("warning: no cgroups (%s): no memory limit, process "
		    "limit by RLIMIT_NPROC only", err);
		cg = NULL;
		err[0] = '\0';
		cfg.nproc = (rlim_t)a->pids;
	}
	r->tm.cgroup = worker_mono_ms() - r->tm.cgroup;

	if (sandbox_start(&sb, &cfg, err, errsize) != 0)
		goto out;
	/* Into the cgroups before it runs anything: all it forks follows. */
	if (cg != NULL && cgroup_attach(cg, sandbox_pid(sb), err,
	    errsize) != 0)
		goto out;
	/*
	 * A network build's tap0 is configured before pid 1 goes on, and
	 * slirp4netns goes into the build's cgroups: its memory is the
	 * build's, and the cgroup kill below takes it too.
	 */
	if (a->network == SANDBOX_NET_SLIRP) {
		if (sandbox_slirp_start(&slirp, sandbox_pid(sb), slirp_program,
		    err, errsize) != 0)
			goto out;
		if (cg != NULL && cgroup_attach(cg, sandbox_slirp_pid(slirp),
		    err, errsize) != 0)
			goto out;
	}
	/* Once the checkout ended, the work tree goes to the build user. */
	r->tm.checkout = worker_mono_ms();
	if (checkout_wait(a, &co, sfd, cancel_sig, err, errsize) != 0)
		goto out;
	r->tm.checkout = worker_mono_ms() - r->tm.checkout;
	if (*cancel_sig != 0)
		goto ended;	/* nothing built: the sandbox goes */
	t = worker_mono_ms();
	/* Under subordinate ids the tree goes back to us at the end,
	 * whatever happens: kilnd reads /out and removes it as itself. */
	handed = id->use_subids;
	if ((id->root_user || id->use_subids) && owner_work_tree(r->root,
	    cfg.outer_uid, cfg.outer_gid, id->use_subids ? &id->ids : NULL,
	    err, errsize) != 0)
		goto out;
	r->tm.chown += worker_mono_ms() - t;
	if (sandbox_release(sb, err, errsize) != 0)
		goto out;

	deadline = worker_mono_ms() + a->timeout * 1000;
	for (;;) {
		struct pollfd p = { sfd, POLLIN, 0 };
		int64_t left;

		if (sandbox_try_wait(sb))
			break;
		left = deadline - worker_mono_ms();
		if (left <= 0) {
			r->st = ST_TIMED_OUT;
			break;
		}
		if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 &&
		    errno != EINTR) {
			snprintf(err, errsize, "poll: %s", strerror(errno));
			break;
		}
		read_signals(sfd, cancel_sig);
		if (*cancel_sig != 0)
			break;
	}

ended:
	r->tm.ended = worker_mono_ms();
	/*
	 * Timeout, cancel, or the build ended: kill the whole tree.  The cgroup
	 * catches every process; SIGKILL to pid 1 makes the kernel kill the
	 * rest of the pid namespace (double-forked daemons included).
	 */
	cgroup_kill(cg);
	sandbox_kill(sb);
	sandbox_wait(sb, &res);
	r->tm.exec = res.exec_ms;
	sandbox_slirp_stop(slirp);
	slirp = NULL;
	cgroup_destroy(cg);
	cg = NULL;

	if (err[0] != '\0') {
		r->st = ST_ERROR;
	} else if (r->st == ST_TIMED_OUT) {
		r->ret = WORKER_EXIT_TIMEOUT;
	} else if (*cancel_sig != 0) {
		r->st = ST_SIGNALED;
		r->value = *cancel_sig;
		r->ret = 128 + *cancel_sig;
	} else if (res.outcome == SANDBOX_FAILED) {
		r->st = ST_ERROR;
		snprintf(err, errsize, "%s", res.error);
	} else if (res.outcome == SANDBOX_EXITED) {
		r->st = ST_EXITED;
		r->value = res.code;
		r->ret = res.code;
	} else {
		r->st = ST_SIGNALED;
		r->value = res.signal;
		r->ret = 128 + res.signal;
	}
out:
	/* Killed and reaped, and with it its whole pid namespace, before
	 * the tree changes hands. */
	sandbox_run_kill(co);
	sandbox_free(sb);
	sandbox_slirp_stop(slirp);
	if (handed)
		give_back(a, r->root, &id->ids, &r->st, err, errsize);
	cgroup_destroy(cg);
	free(cgname);
}

/* What kept the second run from being compared, or NULL when it ended
 * with 0. */
static const char *
second_failed(const struct run *r, char *buf, size_t size)
{
	switch (r->st) {
	case ST_EXITED:
		if (r->value == 0)
			return NULL;
		snprintf(buf, size, "second build exited %d", r->value);
		break;
	case ST_SIGNALED:
		snprintf(buf, size, "second build killed by signal %d",
		    r->value);
		break;
	case ST_TIMED_OUT:
		snprintf(buf, size, "second build timed out");
		break;
	case ST_ERROR:
		snprintf(buf, size, "second build failed to run");
		break;
	}
	return buf;
}

/* kiln-worker build --rebuild's second run (rebuild_fn). */
struct second {
	const struct build_args *a;
	const struct ident *id;
	const struct sandbox_hostaddrs *hostaddrs;
	int sfd;
	int *cancel_sig;
};

static const char *
run_second(void *data, const char *top, const char *cache,
    const struct rebuild_run *v, char *why, size_t whysize)
{
	struct second *s = data;
	struct run r = { .root = top, .cache = cache, .v = v };
	char err[PATH_MAX + 512] = "";

	run_build(s->a, s->id, s->hostaddrs, s->sfd, s->cancel_sig, &r, err,
	    sizeof err);
	if (r.st == ST_ERROR) {
		hide_paths(err, sizeof err, s->a);
		worker_msg("rebuild: %s", err);
	}
	return second_failed(&r, why, whysize);
}

int
build_main(int argc, char **argv)
{
	struct build_args a;
	struct ident id = { .root_user = geteuid() == 0 };
	struct sandbox_hostaddrs *hostaddrs = NULL;
	struct rebuild_run first = { 0 };
	struct run r = { .st = ST_ERROR, .ret = WORKER_EXIT_ERROR };
	char err[PATH_MAX + 512] = "";
	int sfd = -1, cancel_sig = 0;
	sigset_t mask;
	json_t *extra = NULL;
	time_t started = time(NULL);

	r.tm.start = worker_mono_ms();
	if (parse_args(&a, argc, argv) != 0) {
		free(a.env);
		return WORKER_EXIT_USAGE;
	}
	if (worker_tie_to_parent() != 0) {
		snprintf(err, sizeof err, "parent exited");
		goto out;
	}
	ensure_std_fds();
	if (a.status_fd >= 0)
		(void)fcntl(a.status_fd, F_SETFD, FD_CLOEXEC);
	/* A closed status pipe must give EPIPE, not kill us before cleanup. */
	signal(SIGPIPE, SIG_IGN);
	/* SIG_IGN here would make the kernel reap pid 1 behind our back. */
	signal(SIGCHLD, SIG_DFL);

	if (!id.root_user && owner_identity(&id.ids, &id.use_subids,
	    a.allow_same_uid, err, sizeof err) != 0)
		goto out;
	/* Seen from here, the host's namespace: pid 1 blocks them inside. */
	if (a.network == SANDBOX_NET_SLIRP &&
	    sandbox_hostaddrs_collect(&hostaddrs, err, sizeof err) != 0)
		goto out;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, sizeof err, "signalfd: %s", strerror(errno));
		goto out;
	}

	rebuild_first(&first, a.env, a.rebuild);
	r.root = a.root;
	r.cache = a.cache;
	r.v = &first;
	started = time(NULL);
	run_build(&a, &id, hostaddrs, sfd, &cancel_sig, &r, err, sizeof err);
	if (r.st == ST_TIMED_OUT)
		worker_msg("timed out after %lld s: build killed",
		    (long long)a.timeout);
	else if (cancel_sig != 0 && r.st == ST_SIGNALED)
		worker_msg("canceled by signal %d: build killed", cancel_sig);
	/* The target is built; the second run only adds the proof. */
	if (a.rebuild && r.st == ST_EXITED && r.value == 0) {
		struct second sec = { &a, &id, hostaddrs, sfd, &cancel_sig };

		extra = rebuild_run(a.root, a.cache != NULL, started, sfd,
		    &cancel_sig, &first, run_second, &sec);
		if (cancel_sig != 0) {
			worker_msg("canceled by signal %d: rebuild killed",
			    cancel_sig);
			r.st = ST_SIGNALED;
			r.value = cancel_sig;
			r.ret = 128 + cancel_sig;
		}
	}
out:
	if (r.st == ST_ERROR) {
		if (err[0] == '\0')
			snprintf(err, sizeof err, "unknown error");
		hide_paths(err, sizeof err, &a);
		worker_msg("%s", err);
		r.ret = WORKER_EXIT_ERROR;
	}
	write_status(a.status_fd, r.st, r.value, err, a.times ?
	    stage_times_json(&r.tm) : NULL, extra);
	if (sfd >= 0)
		close(sfd);
	rebuild_run_free(&first);
	free(a.env);
	sandbox_hostaddrs_free(hostaddrs);
	return r.ret;
}
