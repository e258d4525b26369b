/*
 * newuidmap/newgidmap for the build's namespace, and the process that
 * hands trees between the worker and the build's subordinate ids
 * (idmap.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idmap.h"
#include "sandbox.h"
#include "tree.h"
#include "worker.h"

extern char **environ;

/* newuidmap is looked for in the system's directories only. */
static char *const helper_env[] = { "PATH=" SUBID_HELPER_PATH, NULL };

/* Control characters of a helper's message as spaces, the last newline
 * gone: it goes into one line of a log. */
static void
one_line(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/*
 * Run argv (a setuid helper) with stdin from /dev/null and stdout and
 * stderr into a pipe; 0 when it exits 0, else -1 with what it said.
 */
static int
run_helper(char *const argv[], char *err, size_t errsize)
{
	char out[256] = "";
	size_t len = 0;
	int pfd[2], st;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errsize, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null < 0 || dup2(null, 0) < 0 || dup2(pfd[1], 1) < 0 ||
		    dup2(pfd[1], 2) < 0)
			_exit(126);
		worker_close_fds_except(NULL, 0);
		/* execvpe searches the PATH of environ, not of envp. */
		environ = (char **)helper_env;
		execvpe(argv[0], argv, helper_env);
		if (errno == ENOENT)
			dprintf(2, "%s not found (Debian package uidmap)",
			    argv[0]);
		else
			dprintf(2, "cannot execute %s: %s", argv[0],
			    strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t n = read(pfd[0], out + len, sizeof out - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof out - 1) {
			/* Drain the rest: the helper must not block on us. */
			char skip[256];
			while (read(pfd[0], skip, sizeof skip) > 0)
				;
			break;
		}
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errsize, "waitpid %s: %s", argv[0],
			    strerror(errno));
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	one_line(out);
	snprintf(err, errsize, "%s failed (%s %d)%s%s", argv[0],
	    WIFEXITED(st) ? "exit" : "signal",
	    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
	    out[0] ? ": " : "", out);
	return -1;
}

int
idmap_map(pid_t pid, const struct subid *ids, bool map_self, char *err,
    size_t errsize)
{
	return idmap_map_inside(pid, ids, SANDBOX_UID, SANDBOX_GID, map_self,
	    err, errsize);
}

int
idmap_map_inside(pid_t pid, const struct subid *ids, uid_t inside_uid,
    gid_t inside_gid, bool map_self, char *err, size_t errsize)
{
	char p[16], in[16], sub[16], self[16];
	char *argv[9];

	/*
	 * Under no_new_privs (systemd's NoNewPrivileges=) the setuid bit of
	 * newuidmap does nothing, and it fails with a bare EPERM: say why.
	 */
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) {
		snprintf(err, errsize, "no_new_privs is set (NoNewPrivileges= "
		    "in kilnd.service?): setuid newuidmap cannot map the "
		    "build's subordinate ids");
		return -1;
	}
	snprintf(p, sizeof p, "%ld", (long)pid);
	for (int gid = 0; gid < 2; gid++) {
		size_t n = 0;

		snprintf(in, sizeof in, "%lu", gid ? (unsigned long)inside_gid :
		    (unsigned long)inside_uid);
		snprintf(sub, sizeof sub, "%lu", gid ? (unsigned long)ids->gid :
		    (unsigned long)ids->uid);
		snprintf(self, sizeof self, "%lu", gid ?
		    (unsigned long)getgid() : (unsigned long)getuid());
		argv[n++] = gid ? "newgidmap" : "newuidmap";
		argv[n++] = p;
		argv[n++] = in;
		argv[n++] = sub;
		argv[n++] = "1";
		if (map_self) {
			argv[n++] = "0";
			argv[n++] = self;
			argv[n++] = "1";
		}
		argv[n] = NULL;
		if (run_helper(argv, err, errsize) != 0)
			return -1;
	}
	return 0;
}

/* The child: wait for its mapping, then chown every tree. */
static void __attribute__((noreturn))
chown_child(const char *const *paths, size_t n, enum idmap_owner to,
    int sync_rd, int report_wr)
{
	char err[512], c;
	uid_t uid = to == IDMAP_TO_BUILD ? SANDBOX_UID : 0;
	gid_t gid = to == IDMAP_TO_BUILD ? SANDBOX_GID : 0;
	int keep[2] = { sync_rd, report_wr };
	ssize_t r;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(1);
	worker_close_fds_except(keep, 2);
	do
		r = read(sync_rd, &c, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		_exit(1);	/* the worker gave up: it says why */
	for (size_t i = 0; i < n; i++) {
		if (tree_chown(paths[i], uid, gid, err, sizeof err) != 0) {
			(void)worker_write_all(report_wr, err, strlen(err));
			_exit(1);
		}
	}
	_exit(0);
}

int
idmap_chown(const struct subid *ids, const char *const *paths, size_t n,
    enum idmap_owner to, char *err, size_t errsize)
{
	int sync_pipe[2] = { -1, -1 }, report_pipe[2] = { -1, -1 };
	char msg[512] = "";
	size_t len = 0;
	int st, ret = -1;
	pid_t pid = -1;

	if (pipe2(sync_pipe, O_CLOEXEC) != 0 ||
	    pipe2(report_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		goto out;
	}
	/* Raw clone, like fork(2) but into a new user namespace; the
	 * worker is single-threaded (see sandbox-ns.c). */
	fflush(NULL);
	pid = (pid_t)syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD,
	    NULL, NULL, NULL, NULL);
	if (pid < 0) {
		snprintf(err, errsize, "clone(CLONE_NEWUSER): %s",
		    strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(sync_pipe[1]);
		close(report_pipe[0]);
		chown_child(paths, n, to, sync_pipe[0], report_pipe[1]);
	}
	close(sync_pipe[0]);
	close(report_pipe[1]);
	sync_pipe[0] = report_pipe[1] = -1;

	if (idmap_map(pid, ids, true, err, errsize) != 0)
		goto out;
	if (worker_write_all(sync_pipe[1], "R", 1) != 0) {
		snprintf(err, errsize, "cannot release the chown process: %s",
		    strerror(errno));
		goto out;
	}
	close(sync_pipe[1]);
	sync_pipe[1] = -1;
	for (;;) {
		ssize_t r = read(report_pipe[0], msg + len, sizeof msg - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof msg - 1)
			break;
	}
	msg[len] = '\0';
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errsize, "waitpid: %s", strerror(errno));
			goto out;
		}
	}
	pid = -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		ret = 0;
	} else if (msg[0] != '\0') {
		snprintf(err, errsize, "%s", msg);
	} else {
		snprintf(err, errsize, "the chown process %s %d",
		    WIFEXITED(st) ? "exited with" : "was killed by signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
out:
	for (int i = 0; i < 2; i++) {
		if (sync_pipe[i] >= 0)
			close(sync_pipe[i]);
		if (report_pipe[i] >= 0)
			close(report_pipe[i]);
	}
	if (pid > 0) {
		/* Not released: it reads EOF and exits, or dies here. */
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	return ret;
}

int
reclaim_main(int argc, char **argv)
{
	struct subid ids;
	char err[1024];
	int first = 1, rc;

	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		worker_msg("reclaim: no path (kiln-worker reclaim PATH...)");
		return WORKER_EXIT_USAGE;
	}
	for (int i = first; i < argc; i++) {
		if (argv[i][0] != '/') {
			worker_msg("reclaim: wants absolute paths, got '%s'",
			    argv[i]);
			return WORKER_EXIT_USAGE;
		}
	}
	/* Root removes anything; without subordinate ids builds ran as
	 * ourselves: nothing of theirs is foreign to us. */
	if (geteuid() == 0)
		return 0;
	rc = subid_find(&ids, err, sizeof err);
	if (rc == 0)
		return 0;
	if (rc < 0 || idmap_chown(&ids, (const char *const *)argv + first,
	    (size_t)(argc - first), IDMAP_TO_SELF, err, sizeof err) != 0) {
		worker_msg("reclaim: %s", err);
		return WORKER_EXIT_FAIL;
	}
	return 0;
}
