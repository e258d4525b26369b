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
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cgroup.h"
#include "mirror.h"
#include "sandbox.h"
#include "target.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define DEFAULT_MEMORY (4ULL << 30)
#define DEFAULT_PIDS 1024
#define DEFAULT_FILE_SIZE (2ULL << 30)
#define DEFAULT_NOFILE 4096
#define DEFAULT_BUILD_UID 65534
#define MAX_TIMEOUT (7 * 24 * 3600)
/* Directory levels chown_tree descends (two fds per level). */
#define MAX_TREE_DEPTH 200

struct build_args {
	const char *mirror;
	const char *commit;
	const char *root;
	const char *target;
	const char *cache;
	const char *modcache;
	bool modcache_rw;
	int64_t timeout;
	bool network;
	uint64_t memory;
	int64_t pids;
	uint64_t file_size;
	int64_t nofile;
	int64_t build_uid;
	int status_fd;
	char **env;		/* NULL-terminated, pointers into argv */
	size_t nenv;
	char **argv;		/* the program and its arguments */
};

enum build_status { ST_EXITED, ST_SIGNALED, ST_TIMED_OUT, ST_ERROR };

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
		O_STATUS_FD, O_ENV, O_MODCACHE, O_MODCACHE_RW,
	};
	static const struct option opts[] = {
		{ "mirror", required_argument, NULL, O_MIRROR },
		{ "commit", required_argument, NULL, O_COMMIT },
		{ "root", required_argument, NULL, O_ROOT },
		{ "target", required_argument, NULL, O_TARGET },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "cache", required_argument, NULL, O_CACHE },
		{ "network", no_argument, NULL, O_NETWORK },
		{ "memory", required_argument, NULL, O_MEMORY },
		{ "pids", required_argument, NULL, O_PIDS },
		{ "file-size", required_argument, NULL, O_FILE_SIZE },
		{ "nofile", required_argument, NULL, O_NOFILE },
		{ "build-uid", required_argument, NULL, O_BUILD_UID },
		{ "status-fd", required_argument, NULL, O_STATUS_FD },
		{ "env", required_argument, NULL, O_ENV },
		{ "modcache", required_argument, NULL, O_MODCACHE },
		{ "modcache-rw", no_argument, NULL, O_MODCACHE_RW },
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
		case O_NETWORK: a->network = true; break;
		case O_MODCACHE: a->modcache = optarg; break;
		case O_MODCACHE_RW: a->modcache_rw = true; break;
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

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/*
 * chown -R without following anything: every step is relative to an open
 * directory and refuses symlinks, because the cache was written by earlier
 * builds, which may have planted symlinks (or swap a directory for one
 * while we walk) to make a root worker hand /etc/shadow to the build uid.
 * A non-directory that is not ours and has other hard links is left
 * alone: it could be a link to a file outside the tree.
 */
static int
chown_tree_fd(int dirfd, const char *path, uid_t uid, gid_t gid, int depth,
    char *err, size_t errsize)
{
	struct dirent *e;
	DIR *d = NULL;
	int fd = -1, ret = -1;

	if (depth > MAX_TREE_DEPTH) {
		snprintf(err, errsize, "%s: directories nested too deep", path);
		goto out;
	}
	if (fchown(dirfd, uid, gid) != 0) {
		snprintf(err, errsize, "chown %s: %s", path, strerror(errno));
		goto out;
	}
	fd = dup(dirfd);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		snprintf(err, errsize, "read %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;	/* owned by d */
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;
			snprintf(err, errsize, "stat %s/%s: %s", path, e->d_name,
			    strerror(errno));
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			char *subpath;
			int rc;
			if (sub < 0) {
				snprintf(err, errsize, "open %s/%s: %s", path,
				    e->d_name, strerror(errno));
				goto out;
			}
			subpath = xasprintf("%s/%s", path, e->d_name);
			rc = chown_tree_fd(sub, subpath, uid, gid, depth + 1, err,
			    errsize);
			free(subpath);
			close(sub);
			if (rc != 0)
				goto out;
			continue;
		}
		if (st.st_uid == uid && st.st_gid == gid)
			continue;
		if (st.st_nlink > 1 && !S_ISLNK(st.st_mode))
			continue;
		if (fchownat(dirfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 &&
		    errno != ENOENT) {
			snprintf(err, errsize, "chown %s/%s: %s", path, e->d_name,
			    strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	if (d != NULL)
		closedir(d);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int
chown_tree(const char *path, uid_t uid, gid_t gid, char *err, size_t errsize)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsize, "open %s: %s", path, strerror(errno));
		return -1;
	}
	rc = chown_tree_fd(fd, path, uid, gid, 0, err, errsize);
	close(fd);
	return rc;
}

/*
 * The module cache is shared by every deps step and holds every module
 * the farm ever fetched: walking it on each job would cost seconds.  The
 * build user made everything in it, so the walk is needed only when the
 * build uid changed or an earlier walk did not finish.  A walk that
 * finished is recorded beside the cache (DIR.owner, written by us, out
 * of every sandbox's reach), never inside it.
 */
static int
modcache_own(const char *dir, uid_t uid, gid_t gid, char *err,
    size_t errsize)
{
	char path[PATH_MAX], want[64], have[64] = "";
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "%s.owner", dir);
	snprintf(want, sizeof want, "%u:%u\n", (unsigned)uid, (unsigned)gid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		n = read(fd, have, sizeof have - 1);
		have[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (strcmp(have, want) == 0 && stat(dir, &st) == 0 &&
	    st.st_uid == uid && st.st_gid == gid)
		return 0;
	unlink(path);
	if (chown_tree(dir, uid, gid, err, errsize) != 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (fd < 0 || worker_write_all(fd, want, strlen(want)) != 0) {
		/* Only the shortcut is lost: the next step walks again. */
		if (fd >= 0)
			close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	return 0;
}

static int
checkout(const struct build_args *a, char *err, size_t errsize)
{
	char src[PATH_MAX];
	int rc;

	snprintf(src, sizeof src, "%s/src", a->root);
	if (mirror_init() != 0) {
		snprintf(err, errsize, "cannot initialize libgit2");
		return -1;
	}
	rc = mirror_checkout(a->mirror, a->commit, src, err, errsize);
	mirror_shutdown();
	return rc;
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
static void
hide_paths(char *err, size_t errsize, const struct build_args *a)
{
	static const char *const parts[] = { "/src", "/out", "/tmp" };
	char path[PATH_MAX];

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

static void
write_status(int fd, enum build_status st, int value, const char *error)
{
	json_t *o = NULL;
	char *line = NULL;

	if (fd < 0)
		return;
	switch (st) {
	case ST_EXITED:
		o = json_pack("{s:s, s:i}", "status", "exited", "code", value);
		break;
	case ST_SIGNALED:
		o = json_pack("{s:s, s:i}", "status", "signaled", "signal", value);
		break;
	case ST_TIMED_OUT:
		o = json_pack("{s:s}", "status", "timed_out");
		break;
	case ST_ERROR:
		o = json_pack("{s:s, s:s}", "status", "error", "error", error);
		break;
	}
	if (o != NULL)
		line = json_dumps(o, JSON_COMPACT);
	if (line != NULL) {
		size_t len = strlen(line);
		line = xrealloc(line, len + 2);
		line[len] = '\n';
		line[len + 1] = '\0';
		if (worker_write_all(fd, line, len + 1) != 0)
			worker_msg("cannot write the status to fd %d: %s", fd,
			    strerror(errno));
	}
	free(line);
	json_decref(o);
}

int
build_main(int argc, char **argv)
{
	struct build_args a;
	struct sandbox_config cfg;
	struct sandbox_result res;
	struct sandbox *sb = NULL;
	struct cgroup *cg = NULL;
	char *cgname = NULL;
	char err[PATH_MAX + 512] = "";
	enum build_status st = ST_ERROR;
	int value = 0, sfd = -1, cancel_sig = 0, ret = WORKER_EXIT_ERROR;
	bool root_user = geteuid() == 0;
	sigset_t mask;
	int64_t deadline;
	char path[PATH_MAX];

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

	if (prepare_root(a.root, err, sizeof err) != 0)
		goto out;
	if (checkout(&a, err, sizeof err) != 0)
		goto out;
	if (a.cache != NULL) {
		int rc = util_mkdir_p(a.cache, 0755);
		if (rc != 0) {
			snprintf(err, sizeof err, "cannot create the build "
			    "cache: %s", strerror(-rc));
			goto out;
		}
	}

	memset(&cfg, 0, sizeof cfg);
	cfg.root = a.root;
	cfg.cache = a.cache;
	cfg.modcache = a.modcache;
	cfg.modcache_rw = a.modcache_rw;
	cfg.network = a.network;
	cfg.nofile = (rlim_t)a.nofile;
	cfg.fsize = (rlim_t)a.file_size;
	cfg.argv = a.argv;
	cfg.envp = a.env;
	/*
	 * Root runs the build as a dedicated uid (nobody by default) and gives
	 * it the work tree; an unprivileged worker can map only itself.
	 */
	if (root_user) {
		static const char *const subdirs[] = { "src", "out", "tmp" };
		cfg.outer_uid = (uid_t)a.build_uid;
		cfg.outer_gid = (gid_t)a.build_uid;
		for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
			snprintf(path, sizeof path, "%s/%s", a.root, subdirs[i]);
			if (chown_tree(path, cfg.outer_uid, cfg.outer_gid, err,
			    sizeof err) != 0)
				goto out;
		}
		if (a.cache != NULL && chown_tree(a.cache, cfg.outer_uid,
		    cfg.outer_gid, err, sizeof err) != 0)
			goto out;
		/* Builds only read the module cache (Go makes it world
		 * readable); the deps step writes it as the build user. */
		if (a.modcache_rw && modcache_own(a.modcache, cfg.outer_uid,
		    cfg.outer_gid, err, sizeof err) != 0)
			goto out;
	} else {
		cfg.outer_uid = getuid();
		cfg.outer_gid = getgid();
	}

	cgname = cgroup_name(a.root);
	if (cgroup_create(&cg, cgname, a.memory, (uint64_t)a.pids, err,
	    sizeof err) != 0) {
		/*
		 * Unprivileged without a delegated subtree: no memory limit and
		 * no pids cgroup.  RLIMIT_NPROC on the build's uid is the only
		 * cap on a fork bomb then; it counts every process of that uid
		 * on the host, so it is only a backstop.
		 */
		worker_msg("warning: no cgroups (%s): no memory limit, process "
		    "limit by RLIMIT_NPROC only", err);
		cg = NULL;
		err[0] = '\0';
		cfg.nproc = (rlim_t)a.pids;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, sizeof err, "signalfd: %s", strerror(errno));
		goto out;
	}

	if (sandbox_start(&sb, &cfg, err, sizeof err) != 0)
		goto out;
	/* Into the cgroups before it runs anything: all it forks follows. */
	if (cg != NULL && cgroup_attach(cg, sandbox_pid(sb), err,
	    sizeof err) != 0)
		goto out;
	if (sandbox_release(sb, err, sizeof err) != 0)
		goto out;

	deadline = mono_ms() + a.timeout * 1000;
	for (;;) {
		struct signalfd_siginfo si;
		struct pollfd p = { sfd, POLLIN, 0 };
		int64_t left;

		if (sandbox_try_wait(sb))
			break;
		left = deadline - mono_ms();
		if (left <= 0) {
			st = ST_TIMED_OUT;
			break;
		}
		if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 &&
		    errno != EINTR) {
			snprintf(err, sizeof err, "poll: %s", strerror(errno));
			break;
		}
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				cancel_sig = (int)si.ssi_signo;
		if (cancel_sig != 0)
			break;
	}

	/*
	 * Timeout, cancel, or the build ended: kill the whole tree.  The cgroup
	 * catches every process; SIGKILL to pid 1 makes the kernel kill the
	 * rest of the pid namespace (double-forked daemons included).
	 */
	cgroup_kill(cg);
	sandbox_kill(sb);
	sandbox_wait(sb, &res);
	cgroup_destroy(cg);
	cg = NULL;

	if (err[0] != '\0') {
		st = ST_ERROR;
	} else if (st == ST_TIMED_OUT) {
		worker_msg("timed out after %lld s: build killed",
		    (long long)a.timeout);
		ret = WORKER_EXIT_TIMEOUT;
	} else if (cancel_sig != 0) {
		worker_msg("canceled by signal %d: build killed", cancel_sig);
		st = ST_SIGNALED;
		value = cancel_sig;
		ret = 128 + cancel_sig;
	} else if (res.outcome == SANDBOX_FAILED) {
		st = ST_ERROR;
		snprintf(err, sizeof err, "%s", res.error);
	} else if (res.outcome == SANDBOX_EXITED) {
		st = ST_EXITED;
		value = res.code;
		ret = res.code;
	} else {
		st = ST_SIGNALED;
		value = res.signal;
		ret = 128 + res.signal;
	}
out:
	if (st == ST_ERROR) {
		if (err[0] == '\0')
			snprintf(err, sizeof err, "unknown error");
		hide_paths(err, sizeof err, &a);
		worker_msg("%s", err);
		ret = WORKER_EXIT_ERROR;
	}
	sandbox_free(sb);
	cgroup_destroy(cg);
	write_status(a.status_fd, st, value, err);
	if (sfd >= 0)
		close(sfd);
	free(cgname);
	free(a.env);
	return ret;
}
