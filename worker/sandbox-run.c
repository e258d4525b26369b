/*
 * A function of kiln-worker itself run in a sandbox of its own: the
 * fetch (fetch.c) and the checkout before a build (build.c).  There
 * libgit2 parses what a remote sent and what a repository holds; here it
 * does so with nothing of the host in reach but what the caller binds.
 *
 *   worker                              the sandbox: pid 1 of its pid ns
 *   ------                              --------------------------------
 *   clone(NEWUSER|NEWNS|NEWPID|NEWIPC|  PR_SET_PDEATHSIG(SIGKILL); wait
 *         NEWUTS|NEWCGROUP[|NEWNET])
 *   setgroups deny, uid_map, gid_map
 *   release ------------------------->  mount tree, pivot_root, hostname
 *                                       drop every capability,
 *                                       no_new_privs, seccomp (the
 *                                       build's filter, and no execve)
 *                                       fn(data); _exit with its code
 *   waitpid; read fn's message
 *
 * The mount steps are the build's (sandbox-int.h); what differs:
 * - The function is pid 1 itself, without an init: it starts no process,
 *   so there is nothing to reap, and should it start one anyway the
 *   kernel kills it when pid 1 exits.
 * - The worker's own uid and gid, mapped to themselves: the mirror and
 *   the work tree stay owned as before.  Root stays uid 0 inside, but
 *   with no capability left and no way to gain one (empty bounding set,
 *   no_new_privs, no execve): what it can open is what the mount tree
 *   shows, and that holds only the caller's binds, /usr and a few files
 *   of /etc.
 * - The host's network namespace when the caller asks (a fetch from a
 *   remote), else a new one with nothing in it.
 *
 * As in sandbox-ns.c, clone is the raw system call without a new stack:
 * the child goes on like after fork(2), and the worker is single-threaded.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"
#include "sandbox-int.h"
#include "worker.h"
#include "xmalloc.h"

/* Records on the message pipe: one byte of kind, then text. */
#define MSG_SETUP 'S'		/* the sandbox could not be set up */
#define MSG_FN 'F'		/* what fn wrote into its err */
#define MSG_MAX 2048

#define EXIT_SETUP 125

/* Places of the sandbox's own: no caller's bind goes there. */
static const char *const reserved[] = {
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/etc", "/dev", "/proc",
};

/*
 * What libgit2 and the C library need: /usr (with /bin, /lib... as the
 * symlinks into it of a merged /usr), the dynamic linker's cache; with
 * the host's network, what name lookups and TLS read (the CA bundle is
 * /etc/ssl/certs/ca-certificates.crt for Debian's libgit2).  Nothing is
 * executed, so no alternatives, no passwd.
 */
static const struct {
	const char *path;
	bool link;		/* reproduced as a symlink when it is one */
	bool net;		/* with the host's network only */
} system_files[] = {
	{ "/usr", false, false },
	{ "/bin", true, false }, { "/sbin", true, false },
	{ "/lib", true, false }, { "/lib32", true, false },
	{ "/lib64", true, false }, { "/libx32", true, false },
	{ "/etc/ld.so.cache", false, false },
	{ "/etc/ld.so.conf", false, false },
	{ "/etc/ld.so.conf.d", false, false },
	{ "/etc/nsswitch.conf", false, true },
	{ "/etc/host.conf", false, true },
	{ "/etc/gai.conf", false, true },
	{ "/etc/hosts", false, true },
	{ "/etc/resolv.conf", false, true },
	{ "/etc/ssl", false, true },
};
#define NSYSTEM (sizeof system_files / sizeof system_files[0])

/* mknod is impossible in a user namespace: the nodes are bound. */
static const char *const devices[] = {
	"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom",
};
#define NDEVICES (sizeof devices / sizeof devices[0])

/* b is a, or below a (whole path components). */
static bool
path_within(const char *b, const char *a)
{
	size_t n = strlen(a);

	if (n == 1 && a[0] == '/')
		return true;
	return strncmp(b, a, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

/* Absolute, no empty, "." or ".." component, no trailing slash. */
static bool
clean_path(const char *p)
{
	if (p[0] != '/' || p[1] == '\0')
		return false;
	for (const char *c = p + 1;; ) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (c[n] == '\0')
			return true;
		c += n + 1;
	}
}

static int
check_binds(const struct sandbox_run_config *cfg, char *err, size_t errsize)
{
	for (size_t i = 0; i < cfg->nbinds; i++) {
		const char *in = cfg->binds[i].inside;

		if (!clean_path(in)) {
			snprintf(err, errsize, "the sandbox cannot show anything "
			    "at '%s': not a plain absolute path", in);
			return -1;
		}
		for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++) {
			if (path_within(in, reserved[r])) {
				snprintf(err, errsize, "the sandbox cannot show "
				    "anything at %s: %s is its own", in,
				    reserved[r]);
				return -1;
			}
		}
		for (size_t j = 0; j < i; j++) {
			const char *other = cfg->binds[j].inside;
			if (path_within(in, other) || path_within(other, in)) {
				snprintf(err, errsize, "the sandbox cannot show "
				    "both %s and %s: one holds the other", other,
				    in);
				return -1;
			}
		}
	}
	return 0;
}

/* --- the child -------------------------------------------------------------- */

static void
send_msg(int fd, char kind, const char *text)
{
	char rec[1 + MSG_MAX];
	size_t n = strnlen(text, MSG_MAX - 1);

	rec[0] = kind;
	memcpy(rec + 1, text, n);
	/* One write: a record never mixes with another. */
	(void)worker_write_all(fd, rec, 1 + n);
}

static void __attribute__((noreturn))
setup_fail(int msg_fd, const char *text)
{
	send_msg(msg_fd, MSG_SETUP, text);
	_exit(EXIT_SETUP);
}

/* mkdir -p of the directories above `inside`, on the new root. */
static int
make_parents(const char *root, const char *inside, char *err, size_t errsize)
{
	char path[4096];
	size_t n = strlen(inside);

	if (n >= sizeof path) {
		snprintf(err, errsize, "path too long: %.200s...", inside);
		return -1;
	}
	memcpy(path, inside, n + 1);
	for (char *s = strchr(path + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (make_dir(root, path, 0755, err, errsize) != 0)
			return -1;
		*s = '/';
	}
	return 0;
}

/*
 * The bind with keep_out: refused when what was opened (symlinks
 * followed, as the mount will show it) is inside keep_out or holds it.
 * Checked on the open fd, so no rename between a check and the mount
 * can change the answer.
 */
static int
check_keep_out(const struct bind_src *b, const char *keep_out, char *err,
    size_t errsize)
{
	char fdpath[64], real[4096];
	ssize_t n;

	if (keep_out == NULL || b->fd < 0)
		return 0;
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", b->fd);
	n = readlink(fdpath, real, sizeof real - 1);
	if (n < 0) {
		snprintf(err, errsize, "%s: %s", b->inside, strerror(errno));
		return -1;
	}
	real[n] = '\0';
	if (path_within(real, keep_out) || path_within(keep_out, real)) {
		snprintf(err, errsize, "%s is in or above kilnd's state "
		    "directory or its mirrors: refused", b->inside);
		return -1;
	}
	return 0;
}

/*
 * The new root: a tmpfs over /tmp (as in sandbox-fs.c: covering it
 * changes nothing outside this mount namespace), with the system files,
 * the caller's binds, a small /dev and a /proc of the new pid namespace;
 * then pivot_root into it, and / read-only.
 */
static int
setup_root(const struct sandbox_run_config *cfg, char *err, size_t errsize)
{
	const size_t nsrc = NSYSTEM + NDEVICES + cfg->nbinds;
	struct bind_src *s = xcalloc(nsrc, sizeof *s);
	struct bind_src *dev = s + NSYSTEM, *own = dev + NDEVICES;
	const char *root = "/tmp";
	char path[4096];
	int ret = -1;

	for (size_t i = 0; i < nsrc; i++)
		s[i].fd = -1;
	for (size_t i = 0; i < NSYSTEM; i++) {
		s[i].host = s[i].inside = system_files[i].path;
		s[i].optional = i > 0;
	}
	for (size_t i = 0; i < NDEVICES; i++) {
		dev[i].host = dev[i].inside = devices[i];
		dev[i].writable = dev[i].device = true;
	}
	for (size_t i = 0; i < cfg->nbinds; i++) {
		own[i].host = cfg->binds[i].host;
		own[i].inside = cfg->binds[i].inside;
		own[i].writable = cfg->binds[i].writable;
		own[i].optional = cfg->binds[i].optional;
	}

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(err, errsize, "make / private: %s", strerror(errno));
		goto out;
	}
	/* Every source before the tmpfs hides any of them (sandbox-fs.c). */
	for (size_t i = 0; i < nsrc; i++) {
		if (i < NSYSTEM && system_files[i].net && !cfg->network &&
		    !(cfg->ca_certs && strcmp(system_files[i].path,
		    "/etc/ssl") == 0))
			continue;
		if (open_src(&s[i], i < NSYSTEM && system_files[i].link, err,
		    errsize) != 0)
			goto out;
	}
	for (size_t i = 0; i < cfg->nbinds; i++)
		if (check_keep_out(&own[i], cfg->binds[i].keep_out, err,
		    errsize) != 0)
			goto out;

	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV,
	    "mode=0755,size=1m,nr_inodes=1024") != 0) {
		snprintf(err, errsize, "mount the new root: %s", strerror(errno));
		goto out;
	}
	if (make_dir(root, "/etc", 0755, err, errsize) != 0 ||
	    make_dir(root, "/dev", 0755, err, errsize) != 0 ||
	    make_dir(root, "/proc", 0555, err, errsize) != 0)
		goto out;
	for (size_t i = 0; i < NSYSTEM; i++)
		if (bind_at(root, &s[i], err, errsize) != 0)
			goto out;
	for (size_t i = 0; i < cfg->nbinds; i++)
		if (make_parents(root, own[i].inside, err, errsize) != 0 ||
		    bind_at(root, &own[i], err, errsize) != 0)
			goto out;

	snprintf(path, sizeof path, "%s/dev", root);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC,
	    "mode=0755,size=16k,nr_inodes=16") != 0) {
		snprintf(err, errsize, "mount /dev: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < NDEVICES; i++)
		if (bind_at(root, &dev[i], err, errsize) != 0)
			goto out;
	if (make_link(root, "/dev/fd", "/proc/self/fd", err, errsize) != 0)
		goto out;
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NOEXEC, NULL) != 0) {
		snprintf(err, errsize, "make /dev read-only: %s", strerror(errno));
		goto out;
	}
	/* Before the pivot: the kernel wants a visible /proc to allow it. */
	snprintf(path, sizeof path, "%s/proc", root);
	if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    NULL) != 0) {
		snprintf(err, errsize, "mount /proc: %s", strerror(errno));
		goto out;
	}

	if (chdir(root) != 0 || syscall(SYS_pivot_root, ".", ".") != 0) {
		snprintf(err, errsize, "pivot_root: %s", strerror(errno));
		goto out;
	}
	if (umount2(".", MNT_DETACH) != 0) {
		snprintf(err, errsize, "detach the old root: %s", strerror(errno));
		goto out;
	}
	if (chdir("/") != 0 || mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND |
	    MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
		snprintf(err, errsize, "make / read-only: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < nsrc; i++)
		close_src(&s[i]);
	free(s);
	return ret;
}

/*
 * On top of the build's filter (filters stack, the strictest answer
 * wins): nothing here executes a program, so a libgit2 taken over by a
 * hostile pack cannot start one either.
 */
static int
deny_exec(char *err, size_t errsize)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = -ENOMEM;

	if (ctx != NULL &&
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execve),
	    0)) == 0 &&
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
	    SCMP_SYS(execveat), 0)) == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errsize, "seccomp (execve): %s", strerror(-rc));
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn))
child_main(const struct sandbox_run_config *cfg, int sync_rd, int msg_fd)
{
	char err[MSG_MAX] = "";
	int *keep = xcalloc(cfg->nkeep_fds + 2, sizeof *keep);
	const char *hostname = cfg->hostname ? cfg->hostname : "kiln-sandbox";
	ssize_t n;
	char c;
	int code;

	/* Dies with the worker; a worker already gone ends the read below. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(EXIT_SETUP);
	/* The worker's fds (the mirror's lock, a status pipe) stay outside;
	 * only those the caller names go in. */
	keep[0] = sync_rd;
	keep[1] = msg_fd;
	if (cfg->nkeep_fds > 0)
		memcpy(keep + 2, cfg->keep_fds, cfg->nkeep_fds * sizeof *keep);
	worker_close_fds_except(keep, cfg->nkeep_fds + 2);
	free(keep);
	do
		n = read(sync_rd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(EXIT_SETUP);
	close(sync_rd);

	if (setup_root(cfg, err, sizeof err) != 0)
		setup_fail(msg_fd, err);
	if (sethostname(hostname, strlen(hostname)) != 0)
		setup_fail(msg_fd, "sethostname failed");
	if (drop_capabilities(err, sizeof err) != 0)
		setup_fail(msg_fd, err);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		setup_fail(msg_fd, "PR_SET_NO_NEW_PRIVS failed");
	if (sandbox_seccomp_apply(err, sizeof err) != 0 ||
	    deny_exec(err, sizeof err) != 0)
		setup_fail(msg_fd, err);
	if (tie_to_worker(msg_fd) != 0)
		_exit(EXIT_SETUP);

	err[0] = '\0';
	code = cfg->fn(cfg->data, err, sizeof err);
	if (code != 0 && err[0] != '\0')
		send_msg(msg_fd, MSG_FN, err);
	(void)fflush(NULL);
	/*
	 * _exit, not exit: nothing of the worker's atexit work belongs here,
	 * and the leak check of a sanitizer build would need ptrace, which
	 * the filter refuses.
	 */
	_exit(code & 0xff);
}

/* --- the worker's side ------------------------------------------------------- */

static int
write_map(pid_t pid, const char *file, const char *text, char *err,
    size_t errsize)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || worker_write_all(fd, text, strlen(text)) != 0) {
		snprintf(err, errsize, "write %s: %s", path, strerror(errno));
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* What the child said: kind and text, or kind 0. */
static char
read_msg(int fd, char *text, size_t size)
{
	char buf[1 + MSG_MAX];
	size_t len = 0;
	ssize_t n;

	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	while (len < sizeof buf - 1 &&
	    (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (len == 0)
		return 0;
	snprintf(text, size, "%s", buf + 1);
	return buf[0];
}

/* Reap pid; its wait status, or -1. */
static int
reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

/* A sandbox_run between its start and its end. */
struct sandbox_running {
	pid_t pid;
	int msg_rd;		/* what fn wrote into its err, or the setup's */
};

int
sandbox_run_start(struct sandbox_running **out,
    const struct sandbox_run_config *cfg, char *err, size_t errsize)
{
	int sync_pipe[2] = { -1, -1 }, msg_pipe[2] = { -1, -1 };
	char map[64];
	int flags, ret = -1;
	pid_t pid = -1;

	*out = NULL;
	err[0] = '\0';
	if (check_binds(cfg, err, errsize) != 0)
		return -1;
	if (pipe2(sync_pipe, O_CLOEXEC) != 0 ||
	    pipe2(msg_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		goto out;
	}
	/* Root's supplementary groups must not cross (sandbox-ns.c). */
	if (geteuid() == 0 && setgroups(0, NULL) != 0) {
		snprintf(err, errsize, "setgroups: %s", strerror(errno));
		goto out;
	}
	flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
	    CLONE_NEWUTS | CLONE_NEWCGROUP;
	if (!cfg->network)
		flags |= CLONE_NEWNET;
	fflush(NULL);
	pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL,
	    NULL, NULL, NULL);
	if (pid < 0) {
		snprintf(err, errsize, "clone: %s (are user namespaces "
		    "enabled?)", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(sync_pipe[1]);
		close(msg_pipe[0]);
		child_main(cfg, sync_pipe[0], msg_pipe[1]);
	}
	close(sync_pipe[0]);
	close(msg_pipe[1]);
	sync_pipe[0] = msg_pipe[1] = -1;

	/*
	 * The worker's own uid and gid, and nothing else: an unprivileged
	 * worker may write that much itself ("deny" first for the gid).
	 */
	if (write_map(pid, "setgroups", "deny", err, errsize) != 0)
		goto out;
	snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)geteuid(),
	    (unsigned long)geteuid());
	if (write_map(pid, "uid_map", map, err, errsize) != 0)
		goto out;
	snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)getegid(),
	    (unsigned long)getegid());
	if (write_map(pid, "gid_map", map, err, errsize) != 0)
		goto out;
	if (worker_write_all(sync_pipe[1], "R", 1) != 0) {
		snprintf(err, errsize, "cannot release the sandbox: %s",
		    strerror(errno));
		goto out;
	}
	*out = xmalloc(sizeof **out);
	(*out)->pid = pid;
	(*out)->msg_rd = msg_pipe[0];
	pid = -1;
	msg_pipe[0] = -1;
	ret = 0;
out:
	/* Not released: the child reads EOF on the sync pipe and exits. */
	for (int i = 0; i < 2; i++) {
		if (sync_pipe[i] >= 0)
			close(sync_pipe[i]);
		if (msg_pipe[i] >= 0)
			close(msg_pipe[i]);
	}
	if (pid > 0)
		(void)reap(pid);
	return ret;
}

int
sandbox_run_wait(struct sandbox_running *r, int *code, char *err,
    size_t errsize)
{
	char kind;
	int st, ret = -1;

	*code = 0;
	err[0] = '\0';
	st = reap(r->pid);
	kind = read_msg(r->msg_rd, err, errsize);
	if (kind == MSG_SETUP || st == -1 ||
	    (kind == 0 && WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SETUP)) {
		if (kind != MSG_SETUP)
			snprintf(err, errsize, "the sandbox ended before its "
			    "work started");
		goto out;
	}
	if (WIFSIGNALED(st)) {
		*code = 128 + WTERMSIG(st);
		snprintf(err, errsize, "killed by signal %d", WTERMSIG(st));
	} else {
		*code = WEXITSTATUS(st);
		if (kind != MSG_FN)
			err[0] = '\0';
	}
	ret = 0;
out:
	close(r->msg_rd);
	free(r);
	return ret;
}

void
sandbox_run_kill(struct sandbox_running *r)
{
	if (r == NULL)
		return;
	(void)kill(r->pid, SIGKILL);
	(void)reap(r->pid);
	close(r->msg_rd);
	free(r);
}

pid_t
sandbox_run_pid(const struct sandbox_running *r)
{
	return r->pid;
}

int
sandbox_run(int *code, const struct sandbox_run_config *cfg, char *err,
    size_t errsize)
{
	struct sandbox_running *r;

	*code = 0;
	if (sandbox_run_start(&r, cfg, err, errsize) != 0)
		return -1;
	return sandbox_run_wait(r, code, err, errsize);
}
