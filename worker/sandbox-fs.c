/*
 * The build's mount tree, built by its pid 1 (sandbox-ns.c) in the new
 * user and mount namespaces before the build starts: a tmpfs root with
 * /usr and the few files of /etc a toolchain needs, read-only; a /dev
 * of harmless nodes; the work tree, the outputs, /tmp and the caches
 * writable; a /proc of the new pid namespace; then pivot_root into it.
 * The steps are shared with sandbox-run.c (sandbox-int.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/securebits.h>

#include "sandbox.h"
#include "sandbox-int.h"
#include "worker.h"
#include "xmalloc.h"

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
int
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

/* The build user (its ids: sandbox_inside_uid), and nobody for the ids
 * that are not mapped. */
static const char passwd_fmt[] =
	"build:x:%lu:%lu:kiln build:/tmp:/bin/sh\n"
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group_fmt[] =
	"build:x:%lu:\n"
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
int
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
	const char *src_inside = sandbox_src_inside(cfg);
	unsigned long uid = sandbox_inside_uid(cfg);
	unsigned long gid = sandbox_inside_gid(cfg);
	char passwd_text[sizeof passwd_fmt + 40], group_text[sizeof group_fmt + 20];
	int ret = -1;

	s[SRC_SRC].inside = src_inside;
	snprintf(passwd_text, sizeof passwd_text, passwd_fmt, uid, gid);
	snprintf(group_text, sizeof group_text, group_fmt, gid);

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
	    setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0 ||
	    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0 ||
	    (cfg->subids && prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) != 0)) {
		snprintf(err, errsize, "become uid %lu: %s", uid,
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
	/* The work tree's parents (/build/r of a --rebuild's second run). */
	for (const char *p = strchr(src_inside + 1, '/'); p != NULL;
	    p = strchr(p + 1, '/')) {
		char parent[256];

		snprintf(parent, sizeof parent, "%.*s", (int)(p - src_inside),
		    src_inside);
		if (make_dir(root, parent, 0755, err, errsize) != 0)
			goto out;
	}
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
