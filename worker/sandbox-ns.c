/*
 * The namespaces of a build and its pid-1 init; the mount tree pid 1
 * builds is sandbox-fs.c's.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "idmap.h"
#include "sandbox.h"
#include "sandbox-int.h"
#include "worker.h"
#include "xmalloc.h"

extern char **environ;

/* What pid 1 and the build tell the worker, one record per write(2). */
enum { REPORT_ERROR = 1, REPORT_STATUS = 2, REPORT_EXEC = 3 };
struct report {
	int32_t kind;
	int32_t wstatus;	/* REPORT_STATUS: the build's wait status */
	int64_t when_ms;	/* REPORT_EXEC: CLOCK_MONOTONIC, ms */
	char msg[240];		/* REPORT_ERROR: why the sandbox failed */
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
	/* CLOCK_MONOTONIC is the host's: a build has no time namespace. */
	r.when_ms = worker_mono_ms();
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

	if (chdir(sandbox_src_inside(cfg)) != 0)
		child_fail(fd, "chdir to the work tree failed");
	/* Set, not inherited: kilnd's umask would otherwise reach the
	 * modes of what the build writes. */
	(void)umask(cfg->umask & 0777);
	if (sandbox_rlimit_apply(cfg, err, sizeof err) != 0)
		child_fail(fd, err);
	if (drop_capabilities(err, sizeof err) != 0)
		child_fail(fd, err);
	/* No setuid binary or file capability gives anything back. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		child_fail(fd, "PR_SET_NO_NEW_PRIVS failed");
	if (sandbox_seccomp_apply(err, sizeof err) != 0)
		child_fail(fd, err);

	/* For the worker's stage times; fd 3 closes when the exec succeeds. */
	report(fd, REPORT_EXEC, 0, NULL);
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

		if (idmap_map_inside(pid, &ids, sandbox_inside_uid(cfg),
		    sandbox_inside_gid(cfg), true, err, errsize) != 0)
			goto out;
	} else {
		if (write_proc(pid, "setgroups", "deny", err, errsize) != 0)
			goto out;
		snprintf(map, sizeof map, "%lu %lu 1\n",
		    (unsigned long)sandbox_inside_uid(cfg),
		    (unsigned long)cfg->outer_uid);
		if (write_proc(pid, "uid_map", map, err, errsize) != 0)
			goto out;
		snprintf(map, sizeof map, "%lu %lu 1\n",
		    (unsigned long)sandbox_inside_gid(cfg),
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

uid_t
sandbox_inside_uid(const struct sandbox_config *cfg)
{
	return cfg->inside_uid != 0 ? cfg->inside_uid : SANDBOX_UID;
}

gid_t
sandbox_inside_gid(const struct sandbox_config *cfg)
{
	return cfg->inside_gid != 0 ? cfg->inside_gid : SANDBOX_GID;
}

const char *
sandbox_src_inside(const struct sandbox_config *cfg)
{
	return cfg->src_inside != NULL ? cfg->src_inside : "/src";
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
		} else if (r.kind == REPORT_EXEC)
			out->exec_ms = r.when_ms;
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
