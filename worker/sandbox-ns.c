/*
 * The namespaces of a build, its mount tree, and its pid-1 init.
 *
 * The order is the one found to work here (root and unprivileged,
 * kernel 6.x):
 *
 *   worker                          pid 1 of the new namespaces
 *   ------                          ---------------------------
 *   clone(NEWUSER|NEWNS|NEWPID|...) PR_SET_PDEATHSIG(SIGKILL); wait on pipe
 *   setgroups deny, uid_map, gid_map
 *   (subordinate ids: newuidmap, newgidmap;
 *   pid 1 drops the supplementary groups)
 *   (caller: move pid 1 into cgroups)
 *   release ------------------->    new cgroup namespace root
 *                                   mount tree, pivot_root, hostname, lo
 *                                   fork the build; reap everything;
 *                                   exit with the build's status
 *                                     build: setsid, close fds, rlimits,
 *                                     drop caps, no_new_privs, seccomp,
 *                                     execvpe
 *
 * clone is the raw system call without a new stack, so the child goes on
 * like after fork(2) (as bubblewrap does), and leaves only with _exit(2)
 * or exec.  glibc's fork handlers do not run; malloc and stdio are still
 * safe in the child because the worker is single-threaded: no lock can be
 * held across the clone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/securebits.h>

#include "idmap.h"
#include "sandbox.h"
#include "sandbox-int.h"
#include "worker.h"
#include "xmalloc.h"

extern char **environ;

/* What pid 1 and the build tell the worker, one record per write(2). */
enum { REPORT_ERROR = 1, REPORT_STATUS = 2 };
struct report {
	int32_t kind;
	int32_t wstatus;	/* REPORT_STATUS: the build's wait status */
	char msg[248];		/* REPORT_ERROR: why the sandbox failed */
};

/* Exit codes of pid 1 when it could not even start the build. */
#define INIT_EXIT_SETUP 125

struct sandbox {
	pid_t pid;		/* pid 1 of the build, as the worker sees it */
	int sync_wr;		/* release pipe */
	int report_rd;		/* struct report records */
	bool reaped;
	int wstatus;		/* pid 1's own wait status once reaped */
};

/* --- helpers of the child ------------------------------------------------ */

static void
report(int fd, int kind, int wstatus, const char *msg)
{
	struct report r;

	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.wstatus = wstatus;
	if (msg != NULL)
		snprintf(r.msg, sizeof r.msg, "%s", msg);
	(void)worker_write_all(fd, &r, sizeof r);
}

static void __attribute__((noreturn))
child_fail(int report_fd, const char *msg)
{
	report(report_fd, REPORT_ERROR, 0, msg);
	_exit(INIT_EXIT_SETUP);
}

/* "what: strerror(errno)" into err; paths may be cut short, that is fine. */
static void __attribute__((format(printf, 3, 4)))
set_errno_msg(char *err, size_t errsize, const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	len = strlen(err);
	if (len < errsize)
		snprintf(err + len, errsize - len, ": %s", strerror(saved));
}

#define FAIL_ERRNO(...) do { \
	set_errno_msg(err, errsize, __VA_ARGS__); \
	return -1; \
} while (0)

int
open_src(struct bind_src *b, bool keep_symlink, char *err, size_t errsize)
{
	struct stat st;

	/*
	 * Messages name b->inside, never b->host: they reach the build log,
	 * and b->host of the work tree and the caches lies in kilnd's state
	 * directory.  (Cut short to fit a report, a host path could not even
	 * be recognised and hidden afterwards.)
	 */
	b->fd = -1;
	b->link = NULL;
	if (lstat(b->host, &st) != 0) {
		if (errno == ENOENT && b->optional)
			return 0;
		FAIL_ERRNO("%s", b->inside);
	}
	if (keep_symlink && S_ISLNK(st.st_mode)) {
		char buf[4096];
		ssize_t n = readlink(b->host, buf, sizeof buf - 1);
		if (n < 0)
			FAIL_ERRNO("readlink %s", b->inside);
		buf[n] = '\0';
		b->link = xstrdup(buf);
		return 0;
	}
	/*
	 * O_PATH before the new root is mounted: the tmpfs goes over the work
	 * directory, and later mounts could hide a source; the fd keeps
	 * pointing at the right object.
	 */
	b->fd = open(b->host, O_PATH | O_CLOEXEC);
	if (b->fd < 0) {
		if (errno == ENOENT && b->optional)
			return 0;
		FAIL_ERRNO("open %s", b->inside);
	}
	if (fstat(b->fd, &st) != 0)
		FAIL_ERRNO("stat %s", b->inside);
	b->is_dir = S_ISDIR(st.st_mode);
	return 0;
}

void
close_src(struct bind_src *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	free(b->link);
	b->link = NULL;
}

/* "shown" names path in err (as the build sees it). */
static int
set_attr(const char *path, const char *shown, uint64_t set, bool recursive,
    char *err, size_t errsize)
{
	struct mount_attr attr;

	memset(&attr, 0, sizeof attr);
	attr.attr_set = set;
	/* mount_setattr(2) (Linux 5.12) makes a whole bound tree read-only;
	 * MS_REMOUNT|MS_RDONLY would only change its top mount. */
	if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr,
	    sizeof attr) != 0)
		FAIL_ERRNO("mount_setattr %s", shown);
	return 0;
}

/* Bind b (already opened) at root + b->inside; mount point created here. */
int
bind_at(const char *root, const struct bind_src *b, char *err, size_t errsize)
{
	char dst[4096], src[64];
	uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

	/* A device node on a nodev mount cannot be opened; these five are
	 * harmless, and noexec instead. */
	if (b->device)
		attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;

	snprintf(dst, sizeof dst, "%s%s", root, b->inside);
	if (b->link != NULL) {
		if (symlink(b->link, dst) != 0)
			FAIL_ERRNO("symlink %s", b->inside);
		return 0;
	}
	if (b->fd < 0)
		return 0;	/* optional and missing */
	/* dst is under the work root on the host: messages name b->inside. */
	if (b->is_dir) {
		if (mkdir(dst, 0755) != 0 && errno != EEXIST)
			FAIL_ERRNO("mkdir %s", b->inside);
	} else {
		int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			FAIL_ERRNO("create %s", b->inside);
		close(fd);
	}
	snprintf(src, sizeof src, "/proc/self/fd/%d", b->fd);
	/*
	 * Recursive binds: mounts inherited from the host are locked in a user
	 * namespace, and a non-recursive bind of a tree with locked submounts
	 * is refused (it would uncover what they hide).
	 */
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
		FAIL_ERRNO("bind %s", b->inside);
	if (!b->writable)
		attrs |= MOUNT_ATTR_RDONLY;
	return set_attr(dst, b->inside, attrs, true, err, errsize);
}

/* Write text to path (opened O_WRONLY | extra); "shown" names it in err. */
static int
write_text(const char *path, int extra, const char *text, const char *shown,
    char *err, size_t errsize)
{
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC | extra, 0644);
	if (fd < 0 || worker_write_all(fd, text, strlen(text)) != 0) {
		set_errno_msg(err, errsize, "write %s", shown);
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int
write_file(const char *root, const char *path, const char *text, char *err,
    size_t errsize)
{
	char dst[4096];

	snprintf(dst, sizeof dst, "%s%s", root, path);
	return write_text(dst, O_CREAT | O_EXCL, text, path, err, errsize);
}

int
make_dir(const char *root, const char *path, mode_t mode, char *err,
    size_t errsize)
{
	char dst[4096];

	snprintf(dst, sizeof dst, "%s%s", root, path);
	if (mkdir(dst, mode) != 0 && errno != EEXIST)
		FAIL_ERRNO("mkdir %s", path);
	if (chmod(dst, mode) != 0)
		FAIL_ERRNO("chmod %s", path);
	return 0;
}

int
make_link(const char *root, const char *path, const char *target, char *err,
    size_t errsize)
{
	char dst[4096];

	snprintf(dst, sizeof dst, "%s%s", root, path);
	if (symlink(target, dst) != 0)
		FAIL_ERRNO("symlink %s", path);
	return 0;
}

/*
 * PR_SET_PDEATHSIG(SIGKILL): pid 1 dies with the worker, and the kernel
 * then kills the rest of the namespace.  The setting is cleared by every
 * change of our uid or gid, so it is set again after setresuid.  getppid()
 * is 0 across the pid namespace boundary and cannot tell whether the
 * worker died first; the report pipe can: the worker holds its read end
 * until it exits, and a pipe without readers polls as POLLERR.
 */
int
tie_to_worker(int report_fd)
{
	struct pollfd p = { report_fd, POLLOUT, 0 };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return -1;
	if (poll(&p, 1, 0) < 0 || (p.revents & (POLLERR | POLLHUP)) != 0)
		return -1;
	return 0;
}

/* The build user, and nobody for the ids that are not mapped. */
static const char passwd_text[] =
	"build:x:1000:1000:kiln build:/tmp:/bin/sh\n"
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group_text[] =
	"build:x:1000:\n"
	"nogroup:x:65534:\n";
/* Without the host's network: nothing of the host's names. */
static const char hosts_text[] =
	"127.0.0.1\tlocalhost " SANDBOX_HOSTNAME "\n"
	"::1\tlocalhost ip6-localhost ip6-loopback\n";
/* slirp4netns's DNS forwarder (port 53 only, to the host's resolver). */
static const char slirp_resolv_text[] = "nameserver 10.0.2.3\n";

enum {
	SRC_USR,
	SRC_BIN, SRC_SBIN, SRC_LIB, SRC_LIB32, SRC_LIB64, SRC_LIBX32,
	SRC_ETC_FIRST,
	SRC_LDCACHE = SRC_ETC_FIRST, SRC_LDCONF, SRC_LDCONFD, SRC_ALTERNATIVES,
	SRC_NSSWITCH, SRC_LOCALTIME, SRC_HOSTS, SRC_RESOLV, SRC_SSL,
	SRC_ETC_END,
	SRC_DEV_FIRST = SRC_ETC_END,
	SRC_NULL = SRC_DEV_FIRST, SRC_ZERO, SRC_FULL, SRC_RANDOM, SRC_URANDOM,
	SRC_DEV_END,
	SRC_SRC = SRC_DEV_END, SRC_OUT, SRC_TMP, SRC_CACHE, SRC_MODCACHE,
	SRC_COUNT
};

/*
 * Build the new root on a tmpfs mounted over cfg->root and pivot into it.
 * Runs in pid 1 with all capabilities in its own user namespace.
 */
static int
setup_fs(const struct sandbox_config *cfg, int report_fd, char *err,
    size_t errsize)
{
	char src_dir[4096], out_dir[4096], tmp_dir[4096];
	struct bind_src s[SRC_COUNT] = {
		[SRC_USR] = { "/usr", "/usr", false, false, false, -1, false, NULL },
		/* Debian 12 has merged /usr: these are symlinks into it, and are
		 * reproduced as symlinks; on other layouts they are bound. */
		[SRC_BIN] = { "/bin", "/bin", true, false, false, -1, false, NULL },
		[SRC_SBIN] = { "/sbin", "/sbin", true, false, false, -1, false, NULL },
		[SRC_LIB] = { "/lib", "/lib", true, false, false, -1, false, NULL },
		[SRC_LIB32] = { "/lib32", "/lib32", true, false, false, -1, false, NULL },
		[SRC_LIB64] = { "/lib64", "/lib64", true, false, false, -1, false, NULL },
		[SRC_LIBX32] = { "/libx32", "/libx32", true, false, false, -1, false, NULL },
		/*
		 * /etc: only what the dynamic linker, compilers (cc and friends
		 * are symlinks through /etc/alternatives), name lookups and time
		 * zones need.  Not shadow, not ssh keys, not kilnd's config.
		 */
		[SRC_LDCACHE] = { "/etc/ld.so.cache", "/etc/ld.so.cache", true, false, false, -1, false, NULL },
		[SRC_LDCONF] = { "/etc/ld.so.conf", "/etc/ld.so.conf", true, false, false, -1, false, NULL },
		[SRC_LDCONFD] = { "/etc/ld.so.conf.d", "/etc/ld.so.conf.d", true, false, false, -1, false, NULL },
		[SRC_ALTERNATIVES] = { "/etc/alternatives", "/etc/alternatives", true, false, false, -1, false, NULL },
		[SRC_NSSWITCH] = { "/etc/nsswitch.conf", "/etc/nsswitch.conf", true, false, false, -1, false, NULL },
		[SRC_LOCALTIME] = { "/etc/localtime", "/etc/localtime", true, false, false, -1, false, NULL },
		/* Names and resolver with the host's network only; the CAs
		 * with any network. */
		[SRC_HOSTS] = { "/etc/hosts", "/etc/hosts", true, false, false, -1, false, NULL },
		[SRC_RESOLV] = { "/etc/resolv.conf", "/etc/resolv.conf", true, false, false, -1, false, NULL },
		[SRC_SSL] = { "/etc/ssl", "/etc/ssl", true, false, false, -1, false, NULL },
		/* mknod is impossible in a user namespace: bind the nodes. */
		[SRC_NULL] = { "/dev/null", "/dev/null", false, true, true, -1, false, NULL },
		[SRC_ZERO] = { "/dev/zero", "/dev/zero", false, true, true, -1, false, NULL },
		[SRC_FULL] = { "/dev/full", "/dev/full", false, true, true, -1, false, NULL },
		[SRC_RANDOM] = { "/dev/random", "/dev/random", false, true, true, -1, false, NULL },
		[SRC_URANDOM] = { "/dev/urandom", "/dev/urandom", false, true, true, -1, false, NULL },
		[SRC_SRC] = { src_dir, "/src", false, true, false, -1, false, NULL },
		[SRC_OUT] = { out_dir, "/out", false, true, false, -1, false, NULL },
		[SRC_TMP] = { tmp_dir, "/tmp", false, true, false, -1, false, NULL },
		[SRC_CACHE] = { cfg->cache, "/cache", false, true, false, -1, false, NULL },
		[SRC_MODCACHE] = { cfg->modcache, "/gomod", false, cfg->modcache_rw, false, -1, false, NULL },
	};
	const char *root = cfg->root;
	int ret = -1;

	snprintf(src_dir, sizeof src_dir, "%s/src", root);
	snprintf(out_dir, sizeof out_dir, "%s/out", root);
	snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", root);

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(err, errsize, "make / private: %s", strerror(errno));
		goto out;
	}

	for (int i = 0; i < SRC_COUNT; i++) {
		bool keep_link = (i >= SRC_BIN && i <= SRC_LIBX32) ||
		    i == SRC_LOCALTIME;
		if ((i == SRC_CACHE && cfg->cache == NULL) ||
		    (i == SRC_MODCACHE && cfg->modcache == NULL))
			continue;
		if ((i == SRC_HOSTS || i == SRC_RESOLV) &&
		    cfg->network != SANDBOX_NET_HOST)
			continue;
		if (i == SRC_SSL && cfg->network == SANDBOX_NET_NONE)
			continue;
		if (open_src(&s[i], keep_link, err, errsize) != 0)
			goto out;
	}

	/*
	 * Become the build user now (all capabilities in this namespace stay,
	 * as its uid 0 is not mapped), so that everything created from here on
	 * is the build user's: a tmpfs of this user namespace accepts only
	 * mapped owners.  Under subordinate ids uid 0 is mapped (to the
	 * worker, for slirp4netns) and we are it: the capabilities are kept
	 * across the change by SECBIT_NO_SETUID_FIXUP, set only around it.
	 * The worker's supplementary groups go first (setgroups is allowed
	 * there): kilnd's group would open kilnd's group-readable files.
	 */
	if ((cfg->subids && (setgroups(0, NULL) != 0 ||
	    prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0)) ||
	    setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) != 0 ||
	    setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) != 0 ||
	    (cfg->subids && prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) != 0)) {
		snprintf(err, errsize, "become uid %d: %s", SANDBOX_UID,
		    strerror(errno));
		goto out;
	}
	if (tie_to_worker(report_fd) != 0) {
		snprintf(err, errsize, "the worker exited");
		goto out;
	}

	/*
	 * The new root: a fresh tmpfs that only this mount namespace sees.  It
	 * holds mount points and a few small files, and is made read-only
	 * before the build starts.
	 *
	 * It goes over /tmp, not over the work directory: from here on this
	 * process is the build user, whose host uid (build_uid, 65534 when
	 * kilnd is root) may not traverse the directories above the work
	 * tree (a 0700 /root, a 0750 state directory).  Everything it needs
	 * from there was opened with O_PATH above; /tmp is reachable by
	 * anyone, and covering it changes nothing outside this namespace.
	 */
	root = "/tmp";
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV,
	    "mode=0755,size=4m,nr_inodes=4096") != 0) {
		snprintf(err, errsize, "mount the new root: %s", strerror(errno));
		goto out;
	}
	if (make_dir(root, "/etc", 0755, err, errsize) != 0 ||
	    make_dir(root, "/dev", 0755, err, errsize) != 0 ||
	    make_dir(root, "/proc", 0555, err, errsize) != 0)
		goto out;

	for (int i = SRC_USR; i < SRC_ETC_END; i++)
		if (bind_at(root, &s[i], err, errsize) != 0)
			goto out;
	if (write_file(root, "/etc/passwd", passwd_text, err, errsize) != 0 ||
	    write_file(root, "/etc/group", group_text, err, errsize) != 0)
		goto out;
	if (cfg->network != SANDBOX_NET_HOST &&
	    write_file(root, "/etc/hosts", hosts_text, err, errsize) != 0)
		goto out;
	if (cfg->network == SANDBOX_NET_SLIRP && write_file(root,
	    "/etc/resolv.conf", slirp_resolv_text, err, errsize) != 0)
		goto out;

	/*
	 * /dev: a small tmpfs with the harmless nodes bound in, made read-only
	 * afterwards; no ttys, no disks, no /dev/mem.
	 */
	{
		char dev[4096], shm[4096];
		snprintf(dev, sizeof dev, "%s/dev", root);
		snprintf(shm, sizeof shm, "%s/dev/shm", root);
		if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC,
		    "mode=0755,size=64k,nr_inodes=64") != 0) {
			snprintf(err, errsize, "mount /dev: %s", strerror(errno));
			goto out;
		}
		for (int i = SRC_DEV_FIRST; i < SRC_DEV_END; i++)
			if (bind_at(root, &s[i], err, errsize) != 0)
				goto out;
		if (make_link(root, "/dev/fd", "/proc/self/fd", err, errsize) != 0 ||
		    make_link(root, "/dev/stdin", "/proc/self/fd/0", err, errsize) != 0 ||
		    make_link(root, "/dev/stdout", "/proc/self/fd/1", err, errsize) != 0 ||
		    make_link(root, "/dev/stderr", "/proc/self/fd/2", err, errsize) != 0 ||
		    make_dir(root, "/dev/shm", 0755, err, errsize) != 0)
			goto out;
		/* Charged to the build's memory cgroup like any tmpfs page. */
		if (mount("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV,
		    "mode=1777") != 0) {
			snprintf(err, errsize, "mount /dev/shm: %s", strerror(errno));
			goto out;
		}
		if (mount(NULL, dev, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
		    MS_NOSUID | MS_NOEXEC, NULL) != 0) {
			snprintf(err, errsize, "make /dev read-only: %s",
			    strerror(errno));
			goto out;
		}
	}

	/* The only writable places: the work tree, the outputs, /tmp, the
	 * cache (nosuid, nodev); the module cache only for the deps step. */
	for (int i = SRC_SRC; i < SRC_COUNT; i++) {
		if ((i == SRC_CACHE && cfg->cache == NULL) ||
		    (i == SRC_MODCACHE && cfg->modcache == NULL))
			continue;
		if (bind_at(root, &s[i], err, errsize) != 0)
			goto out;
	}

	/*
	 * A /proc of the new pid namespace: the build sees only its own
	 * processes.  The kernel allows it only while the host's /proc is
	 * still visible in this mount namespace, so before the pivot.
	 */
	{
		char proc[4096];
		snprintf(proc, sizeof proc, "%s/proc", root);
		if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		    NULL) != 0) {
			snprintf(err, errsize, "mount /proc: %s", strerror(errno));
			goto out;
		}
	}
	/*
	 * /proc/cmdline is the host kernel's command line: its boot device,
	 * and in a virtual machine what the host passed (vsock ports of its
	 * agents, say).  Nothing a build needs: /dev/null over it, read-only.
	 */
	{
		char null[4096], cmdline[4096];
		snprintf(null, sizeof null, "%s/dev/null", root);
		snprintf(cmdline, sizeof cmdline, "%s/proc/cmdline", root);
		if (mount(null, cmdline, NULL, MS_BIND, NULL) != 0) {
			snprintf(err, errsize, "hide /proc/cmdline: %s",
			    strerror(errno));
			goto out;
		}
		if (set_attr(cmdline, "/proc/cmdline", MOUNT_ATTR_RDONLY |
		    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false, err,
		    errsize) != 0)
			goto out;
	}

	/*
	 * pivot_root(".", ".") stacks the old root on top of the new one;
	 * the lazy unmount then takes the whole host tree away.
	 */
	if (chdir(root) != 0) {
		snprintf(err, errsize, "chdir to the new root: %s", strerror(errno));
		goto out;
	}
	if (syscall(SYS_pivot_root, ".", ".") != 0) {
		snprintf(err, errsize, "pivot_root: %s", strerror(errno));
		goto out;
	}
	if (umount2(".", MNT_DETACH) != 0) {
		snprintf(err, errsize, "detach the old root: %s", strerror(errno));
		goto out;
	}
	if (chdir("/") != 0) {
		snprintf(err, errsize, "chdir /: %s", strerror(errno));
		goto out;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NODEV, NULL) != 0) {
		snprintf(err, errsize, "make / read-only: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	for (int i = 0; i < SRC_COUNT; i++)
		close_src(&s[i]);
	return ret;
}

/* A new network namespace has lo, down: builds may talk to themselves. */
static int
loopback_up(char *err, size_t errsize)
{
	struct ifreq ifr;
	int fd, ret = -1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		snprintf(err, errsize, "SIOCGIFFLAGS lo: %s", strerror(errno));
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
		snprintf(err, errsize, "bring up lo: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

int
drop_capabilities(char *err, size_t errsize)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	/*
	 * exec as a non-root uid would clear them anyway; say it explicitly,
	 * including the inheritable and ambient sets that exec keeps.
	 */
	memset(data, 0, sizeof data);
	/* The bounding set too, while we still hold CAP_SETPCAP. */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
			snprintf(err, errsize, "drop capability %d: %s", cap,
			    strerror(errno));
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
	    errno != EINVAL) {
		snprintf(err, errsize, "clear ambient capabilities: %s",
		    strerror(errno));
		return -1;
	}
	if (syscall(SYS_capset, &hdr, data) != 0) {
		snprintf(err, errsize, "capset: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The build process: last steps, then exec. */
static void __attribute__((noreturn))
exec_build(const struct sandbox_config *cfg, int report_fd)
{
	char err[240], msg[248];
	sigset_t none;
	int fd;

	/* Its own session: no controlling terminal shared with the worker. */
	(void)setsid();

	/* The worker blocked and ignored some signals; exec keeps both. */
	for (int sig = 1; sig < NSIG; sig++)
		(void)signal(sig, SIG_DFL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/*
	 * Nothing but stdin, stdout and stderr crosses into the build.  The
	 * report pipe moves to fd 3, close-on-exec, so that an exec failure
	 * can still be reported.
	 */
	fd = report_fd;
	if (fd != 3) {
		fd = dup3(report_fd, 3, O_CLOEXEC);
		if (fd < 0)
			child_fail(report_fd, "dup3 of the report pipe failed");
	}
	if (close_range(4, ~0U, 0) != 0)
		child_fail(fd, "close_range failed");

	if (chdir("/src") != 0)
		child_fail(fd, "chdir /src failed");
	if (sandbox_rlimit_apply(cfg, err, sizeof err) != 0)
		child_fail(fd, err);
	if (drop_capabilities(err, sizeof err) != 0)
		child_fail(fd, err);
	/* No setuid binary or file capability gives anything back. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		child_fail(fd, "PR_SET_NO_NEW_PRIVS failed");
	if (sandbox_seccomp_apply(err, sizeof err) != 0)
		child_fail(fd, err);

	/* execvpe searches the PATH of environ, not of its envp argument. */
	environ = (char **)cfg->envp;
	execvpe(cfg->argv[0], cfg->argv, cfg->envp);
	snprintf(msg, sizeof msg, "cannot execute '%s': %s", cfg->argv[0],
	    strerror(errno));
	report(fd, REPORT_ERROR, 0, msg);
	_exit(127);
}

/*
 * pid 1 of the build's pid namespace: start the build, reap every orphan
 * that is reparented to us, and exit with the build's status when it
 * exits.  The kernel then kills whatever else is left in the namespace
 * (daemons, double-forked grandchildren) and the worker sees us exit only
 * after they are gone.  Signals from inside the namespace cannot reach us
 * (pid 1 has no handlers), SIGKILL from the worker can.
 */
static void __attribute__((noreturn))
run_init(const struct sandbox_config *cfg, int report_fd)
{
	pid_t build, pid;
	int st;

	build = fork();
	if (build < 0)
		child_fail(report_fd, "fork of the build failed");
	if (build == 0)
		exec_build(cfg, report_fd);
	for (;;) {
		pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			child_fail(report_fd, "pid 1 lost its build");
		}
		if (pid != build)
			continue;
		report(report_fd, REPORT_STATUS, st, NULL);
		if (WIFEXITED(st))
			_exit(WEXITSTATUS(st));
		_exit(128 + WTERMSIG(st));
	}
}

static void __attribute__((noreturn))
child_main(const struct sandbox_config *cfg, int sync_rd, int report_fd)
{
	char err[240];
	int keep[2] = { sync_rd, report_fd };
	char c;
	ssize_t n;

	/*
	 * Die with the worker (set again after setresuid, see tie_to_worker).
	 * Should the worker die before this prctl takes effect, the release
	 * read below returns EOF.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(INIT_EXIT_SETUP);
	/* The worker's fds (status fd, signalfd, mirror...) stay outside. */
	worker_close_fds_except(keep, 2);

	do
		n = read(sync_rd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(INIT_EXIT_SETUP);
	close(sync_rd);

	/*
	 * The cgroup namespace from clone(2) is rooted where the worker was;
	 * the worker has moved us into the build's own group since.  Root the
	 * namespace there, so that the build sees "/" and not the host's
	 * cgroup layout.
	 */
	if (unshare(CLONE_NEWCGROUP) != 0)
		child_fail(report_fd, "unshare(CLONE_NEWCGROUP) failed");

	if (setup_fs(cfg, report_fd, err, sizeof err) != 0)
		child_fail(report_fd, err);
	if (sethostname(SANDBOX_HOSTNAME, strlen(SANDBOX_HOSTNAME)) != 0)
		child_fail(report_fd, "sethostname failed");
	if (cfg->network != SANDBOX_NET_HOST && loopback_up(err,
	    sizeof err) != 0)
		child_fail(report_fd, err);
	/*
	 * slirp4netns connects from the host's namespace: the host's own
	 * addresses must be unreachable before the build runs, set while we
	 * still hold CAP_NET_ADMIN here (the build never does).
	 */
	if (cfg->network == SANDBOX_NET_SLIRP &&
	    sandbox_net_block_host(cfg->hostaddrs, err, sizeof err) != 0)
		child_fail(report_fd, err);
	/*
	 * Not dumpable: the build runs as the same uid, and could otherwise
	 * open /proc/1/fd/ and write forged reports into our pipe.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		child_fail(report_fd, "PR_SET_DUMPABLE failed");
	run_init(cfg, report_fd);
}

/* --- the worker's side ---------------------------------------------------- */

static int
write_proc(pid_t pid, const char *file, const char *text, char *err,
    size_t errsize)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
	return write_text(path, 0, text, path, err, errsize);
}

int
sandbox_start(struct sandbox **out, const struct sandbox_config *cfg,
    char *err, size_t errsize)
{
	int sync_pipe[2] = { -1, -1 }, report_pipe[2] = { -1, -1 };
	struct sandbox *sb = NULL;
	char map[64];
	int flags, ret = -1;
	pid_t pid;

	if (pipe2(sync_pipe, O_CLOEXEC) != 0 ||
	    pipe2(report_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		goto out;
	}
	/*
	 * Supplementary groups survive into the user namespace (shown as
	 * nogroup, but checked by the kernel as what they are), and with
	 * setgroups denied the build could never drop them.  Root's groups
	 * (gid 0 among them) must not reach the build: drop them here.  An
	 * unprivileged worker cannot, and only has its own user's groups.
	 */
	if (geteuid() == 0 && setgroups(0, NULL) != 0) {
		snprintf(err, errsize, "setgroups: %s", strerror(errno));
		goto out;
	}

	flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
	    CLONE_NEWUTS | CLONE_NEWCGROUP;
	/* Without a network namespace the build has the host's network. */
	if (cfg->network != SANDBOX_NET_HOST)
		flags |= CLONE_NEWNET;
	fflush(NULL);
	pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL,
	    NULL, NULL, NULL);
	if (pid < 0) {
		snprintf(err, errsize, "clone: %s (are user namespaces enabled?)",
		    strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(sync_pipe[1]);
		close(report_pipe[0]);
		child_main(cfg, sync_pipe[0], report_pipe[1]);
	}

	sb = xcalloc(1, sizeof *sb);
	sb->pid = pid;
	sb->sync_wr = sync_pipe[1];
	sb->report_rd = report_pipe[0];
	sync_pipe[1] = -1;
	report_pipe[0] = -1;

	/*
	 * One uid and one gid: SANDBOX_UID inside is outer_uid outside.  Never
	 * 0 inside: a build mapped to root keeps every capability in its
	 * namespaces.  "deny" first: an unprivileged writer may not map gids
	 * otherwise, and the build must never call setgroups(2).
	 */
	if (cfg->subids) {
		/*
		 * Ids that are not ours: the setuid helpers map them (idmap.h),
		 * and 0 to the worker: slirp4netns's own sandbox becomes uid 0
		 * in the build's namespace.  pid 1 leaves 0 before anything is
		 * built, and nothing inside is the worker's.  setgroups stays
		 * allowed, for pid 1 to drop the supplementary groups.
		 */
		struct subid ids = { cfg->outer_uid, cfg->outer_gid };

		if (idmap_map(pid, &ids, true, err, errsize) != 0)
			goto out;
	} else {
		if (write_proc(pid, "setgroups", "deny", err, errsize) != 0)
			goto out;
		snprintf(map, sizeof map, "%d %lu 1\n", SANDBOX_UID,
		    (unsigned long)cfg->outer_uid);
		if (write_proc(pid, "uid_map", map, err, errsize) != 0)
			goto out;
		snprintf(map, sizeof map, "%d %lu 1\n", SANDBOX_GID,
		    (unsigned long)cfg->outer_gid);
		if (write_proc(pid, "gid_map", map, err, errsize) != 0)
			goto out;
	}

	*out = sb;
	sb = NULL;
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (sync_pipe[i] >= 0)
			close(sync_pipe[i]);
		if (report_pipe[i] >= 0)
			close(report_pipe[i]);
	}
	if (sb != NULL)
		sandbox_free(sb);
	return ret;
}

pid_t
sandbox_pid(const struct sandbox *sb)
{
	return sb->pid;
}

int
sandbox_release(struct sandbox *sb, char *err, size_t errsize)
{
	int rc = worker_write_all(sb->sync_wr, "R", 1);

	close(sb->sync_wr);
	sb->sync_wr = -1;
	if (rc != 0) {
		snprintf(err, errsize, "cannot release the sandbox: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
sandbox_kill(struct sandbox *sb)
{
	/* The kernel takes everything in the pid namespace down with it. */
	if (!sb->reaped)
		(void)kill(sb->pid, SIGKILL);
}

int
sandbox_try_wait(struct sandbox *sb)
{
	pid_t p;

	if (sb->reaped)
		return 1;
	p = waitpid(sb->pid, &sb->wstatus, WNOHANG);
	if (p == sb->pid) {
		sb->reaped = true;
		return 1;
	}
	return 0;
}

void
sandbox_wait(struct sandbox *sb, struct sandbox_result *out)
{
	struct report r;
	bool have_status = false, have_error = false;
	int build_status = 0;
	ssize_t n;

	while (!sb->reaped) {
		if (waitpid(sb->pid, &sb->wstatus, 0) == sb->pid)
			sb->reaped = true;
		else if (errno != EINTR)
			break;
	}
	memset(out, 0, sizeof *out);
	/* pid 1 and the build are gone: every write end is closed. */
	(void)fcntl(sb->report_rd, F_SETFL, O_NONBLOCK);
	while ((n = read(sb->report_rd, &r, sizeof r)) == (ssize_t)sizeof r) {
		r.msg[sizeof r.msg - 1] = '\0';
		if (r.kind == REPORT_ERROR && !have_error) {
			have_error = true;
			snprintf(out->error, sizeof out->error, "%s", r.msg);
		} else if (r.kind == REPORT_STATUS) {
			have_status = true;
			build_status = r.wstatus;
		}
	}
	if (have_error) {
		out->outcome = SANDBOX_FAILED;
	} else if (have_status && WIFEXITED(build_status)) {
		out->outcome = SANDBOX_EXITED;
		out->code = WEXITSTATUS(build_status);
	} else if (have_status && WIFSIGNALED(build_status)) {
		out->outcome = SANDBOX_SIGNALED;
		out->signal = WTERMSIG(build_status);
	} else if (sb->reaped && WIFSIGNALED(sb->wstatus)) {
		/* pid 1 itself was killed (OOM, the worker): so was the build. */
		out->outcome = SANDBOX_SIGNALED;
		out->signal = WTERMSIG(sb->wstatus);
	} else {
		out->outcome = SANDBOX_FAILED;
		snprintf(out->error, sizeof out->error,
		    "the sandbox's init exited with status %d before the build "
		    "started", sb->reaped && WIFEXITED(sb->wstatus) ?
		    WEXITSTATUS(sb->wstatus) : -1);
	}
}

void
sandbox_free(struct sandbox *sb)
{
	if (sb == NULL)
		return;
	if (!sb->reaped) {
		sandbox_kill(sb);
		while (waitpid(sb->pid, &sb->wstatus, 0) < 0 && errno == EINTR)
			;
	}
	if (sb->sync_wr >= 0)
		close(sb->sync_wr);
	if (sb->report_rd >= 0)
		close(sb->report_rd);
	free(sb);
}
