/*
 * kiln-worker build --rebuild: how the second run differs from the
 * first, the wait for the clock, diffoscope on a difference, and the
 * status fields (rebuild.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mirror.h"
#include "rebuild.h"
#include "sandbox.h"
#include "sbuf.h"
#include "utf8.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

/* diffoscope's output copied into the log, at most. */
#define EXPLAIN_MAX (64 * 1024)

/*
 * The first run's values where the caller set none, and the second
 * run's, each different from the first's whatever the caller chose.
 * Debian's base system has the C.UTF-8 and POSIX locales only; tzdata
 * has Kiritimati (UTC+14) and Chatham (UTC+12:45), far from UTC.
 */
static const struct variation {
	const char *name, *first, *second, *second_alt;
} variations[] = {
	{ "TZ", "UTC", "Pacific/Kiritimati", "Pacific/Chatham" },
	{ "LANG", "C.UTF-8", "POSIX", "C.UTF-8" },
	{ "LC_ALL", "C.UTF-8", "POSIX", "C.UTF-8" },
};
#define NVARIATIONS (sizeof variations / sizeof variations[0])

/* The build's work tree in the second run: neither /src nor under it. */
#define SECOND_SRC "/build/r/src"

static bool
is_var(const char *def, const char *name)
{
	size_t n = strlen(name);

	return strncmp(def, name, n) == 0 && def[n] == '=';
}

static void
env_push(struct rebuild_run *r, size_t *n, char *def, bool owned)
{
	r->env = xreallocarray(r->env, *n + 2, sizeof *r->env);
	r->env[(*n)++] = def;
	r->env[*n] = NULL;
	if (owned) {
		r->env_mem = xreallocarray(r->env_mem, r->nmem + 1,
		    sizeof *r->env_mem);
		r->env_mem[r->nmem++] = def;
	}
}

void
rebuild_first(struct rebuild_run *out, char *const *env, bool rebuild)
{
	size_t n = 0;

	memset(out, 0, sizeof *out);
	out->umask = 022;
	out->env = xcalloc(1, sizeof *out->env);
	for (size_t i = 0; env[i] != NULL; i++)
		env_push(out, &n, env[i], false);
	if (!rebuild)
		return;
	for (size_t v = 0; v < NVARIATIONS; v++) {
		bool set = false;

		for (size_t i = 0; i < n; i++)
			set |= is_var(out->env[i], variations[v].name);
		if (!set)
			env_push(out, &n, xasprintf("%s=%s", variations[v].name,
			    variations[v].first), true);
	}
}

void
rebuild_second(struct rebuild_run *out, const struct rebuild_run *first)
{
	size_t n = 0, len = 0;

	memset(out, 0, sizeof *out);
	out->src_inside = SECOND_SRC;
	out->inside_uid = SANDBOX_UID + 1;
	out->inside_gid = SANDBOX_GID + 1;
	out->umask = 002;
	out->env = xcalloc(1, sizeof *out->env);
	while (first->env[len] != NULL)
		len++;
	/* The environment in reverse order: a build that lists it sees the
	 * order change. */
	for (size_t i = len; i-- > 0;) {
		const char *def = first->env[i];
		bool varied = false;

		for (size_t v = 0; v < NVARIATIONS && !varied; v++) {
			const struct variation *x = &variations[v];
			const char *was = def + strlen(x->name) + 1;

			if (!is_var(def, x->name))
				continue;
			env_push(out, &n, xasprintf("%s=%s", x->name,
			    strcmp(was, x->second) != 0 ? x->second :
			    x->second_alt), true);
			varied = true;
		}
		if (!varied)
			env_push(out, &n, (char *)def, false);
	}
}

void
rebuild_run_free(struct rebuild_run *r)
{
	for (size_t i = 0; i < r->nmem; i++)
		free(r->env_mem[i]);
	free(r->env_mem);
	free(r->env);
	memset(r, 0, sizeof *r);
}

void
rebuild_wait_clock(time_t started, int sfd, int *cancel_sig)
{
	for (;;) {
		struct timespec now;
		struct pollfd p = { sfd, POLLIN, 0 };
		struct signalfd_siginfo si;

		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec > started)
			return;
		/* To just past the next second's start. */
		(void)poll(&p, 1, (int)(1000 - now.tv_nsec / 1000000) + 5);
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				*cancel_sig = (int)si.ssi_signo;
		if (*cancel_sig != 0)
			return;
	}
}

/* A path of a hostile tree for one log line: printable ASCII as it is,
 * other bytes as \xNN. */
static void
show_path(char *buf, size_t size, const char *path)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)path;
	    *p != '\0' && n + 5 < size; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			buf[n++] = (char)*p;
		else
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", *p);
	}
	buf[n] = '\0';
}

static char *
find_diffoscope(void)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *found = NULL;

	if (path == NULL)
		path = "/usr/bin:/bin";
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL && found == NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		char *f = xasprintf("%s/diffoscope", dir[0] ? dir : ".");
		if (f[0] == '/' && access(f, X_OK) == 0)
			found = f;
		else
			free(f);
	}
	free(copy);
	return found;
}

/*
 * diffoscope reads both files, which a build made: it runs in a process
 * group of its own (killed whole at the end: the tools it starts go
 * too), with no_new_privs, the worker's death killing it, nothing on
 * stdin, no descriptor of the worker's but its output pipe, a wall
 * clock, and only its first EXPLAIN_MAX bytes read.  Its cwd is the work
 * root, so that it names the files out/PATH and rebuild/out/PATH and
 * nothing of the host's paths.
 */
static void
run_diffoscope(const char *prog, const char *root, const char *path,
    int64_t timeout_ms)
{
	int pfd[2];
	pid_t pid;
	size_t copied = 0;
	int64_t deadline = worker_mono_ms() + timeout_ms;
	const char *why = NULL;
	char a[PATH_MAX], b[PATH_MAX], line[160];
	int st;

	if (snprintf(a, sizeof a, "out/%s", path) >= (int)sizeof a ||
	    snprintf(b, sizeof b, REBUILD_DIR "/out/%s", path) >=
	    (int)sizeof b || pipe2(pfd, O_CLOEXEC) != 0)
		return;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	if (pid == 0) {
		char *argv[] = { (char *)prog, "--no-progress", "--text", "-",
		    "--max-text-report-size", "65536", "--max-report-size",
		    "65536", "--timeout", "50", "--", a, b, NULL };
		int keep[1], fd;

		(void)setpgid(0, 0);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if ((fd = open("/dev/null", O_RDONLY)) < 0 || dup2(fd, 0) < 0 ||
		    dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0 ||
		    chdir(root) != 0)
			_exit(127);
		worker_close_fds_except(keep, 0);
		signal(SIGPIPE, SIG_DFL);
		execv(prog, argv);
		_exit(127);
	}
	(void)setpgid(pid, pid);	/* either of us, before any kill */
	close(pfd[1]);
	for (;;) {
		char buf[4096];
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int64_t left = deadline - worker_mono_ms();
		ssize_t r;

		if (left <= 0) {
			why = "diffoscope took too long: killed";
			break;
		}
		if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p.revents == 0)
			continue;
		r = read(pfd[0], buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if ((size_t)r > EXPLAIN_MAX - copied) {
			r = (ssize_t)(EXPLAIN_MAX - copied);
			why = "diffoscope's output cut at 64 KiB";
		}
		(void)worker_write_all(1, buf, (size_t)r);
		copied += (size_t)r;
		if (why != NULL)
			break;
	}
	close(pfd[0]);
	/* The leader unreaped still holds its group id: no other process
	 * can have it yet. */
	(void)kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (why != NULL) {
		snprintf(line, sizeof line, "\n" WORKER_NAME ": rebuild: %s\n",
		    why);
		(void)worker_write_all(1, line, strlen(line));
	}
}

void
rebuild_explain(const struct outcmp *c, const char *root, int64_t timeout_ms)
{
	char shown[1024], line[1100];
	char *prog;
	size_t i;

	for (i = 0; i < c->n && !c->contents[i]; i++)
		;
	if (c->n == 0)
		return;
	if (i == c->n)
		i = 0;	/* no two regular files: name the first anyway */
	show_path(shown, sizeof shown, c->paths[i]);
	snprintf(line, sizeof line, WORKER_NAME ": rebuild: differs: %s\n",
	    shown);
	fflush(stdout);
	(void)worker_write_all(1, line, strlen(line));
	if (!c->contents[i] || (prog = find_diffoscope()) == NULL)
		return;
	run_diffoscope(prog, root, c->paths[i], timeout_ms);
	free(prog);
}

/* A path as a JSON string: valid UTF-8 whatever the build named it. */
static json_t *
json_path(const char *s)
{
	struct sbuf b = { 0 };
	json_t *j;

	utf8_sanitize(&b, s, strlen(s));
	sbuf_addc(&b, '\0');
	j = json_string(b.p);
	sbuf_free(&b);
	return j;
}

json_t *
rebuild_status(const struct outcmp *c, const char *why)
{
	json_t *o = json_object(), *d;
	size_t more = 0;

	json_object_set_new(o, "reproducible",
	    json_boolean(c != NULL && c->total == 0));
	if (c != NULL && c->total == 0)
		return o;
	d = json_array();
	if (c == NULL)
		json_array_append_new(d, json_path(why));
	else {
		/*
		 * kilnd reads a status line of at most 4096 bytes: the paths
		 * it names take at most REBUILD_PATHS_MAX of it as JSON, the
		 * others are counted with the rest.
		 */
		size_t used = 0;

		for (size_t i = 0; i < c->n; i++) {
			json_t *p = json_path(c->paths[i]);
			char *enc = json_dumps(p, JSON_ENCODE_ANY);
			size_t len = enc ? strlen(enc) + 1 : SIZE_MAX;

			free(enc);
			if (len > REBUILD_PATHS_MAX - used) {
				json_decref(p);
				more += c->n - i;
				break;
			}
			used += len;
			json_array_append_new(d, p);
		}
		more += c->total - c->n;
	}
	json_object_set_new(o, "differences", d);
	json_object_set_new(o, "more_differences", json_integer(
	    (json_int_t)more));
	return o;
}

json_t *
rebuild_run(const char *root, bool with_cache, time_t started, int sfd,
    int *cancel_sig, const struct rebuild_run *first, rebuild_fn fn,
    void *data)
{
	struct rebuild_run second;
	struct outcmp c = { 0 };
	char err[PATH_MAX + 512] = "", why[128];
	/*
	 * Its own work tree, outputs and /tmp, and an empty /cache: no
	 * cached result of the first run stands in for building.
	 */
	char *top = xasprintf("%s/" REBUILD_DIR, root);
	char *cache = with_cache ? xasprintf("%s/cache", top) : NULL;
	char *out1 = xasprintf("%s/out", root);
	char *out2 = xasprintf("%s/out", top);
	const char *failed;
	json_t *status = NULL;
	int rc;

	rebuild_second(&second, first);
	rebuild_wait_clock(started, sfd, cancel_sig);
	if (*cancel_sig != 0)
		goto out;
	failed = fn(data, top, cache, &second, why, sizeof why);
	if (*cancel_sig != 0)
		goto out;
	if (failed != NULL) {
		worker_msg("rebuild: %s", failed);
		status = rebuild_status(NULL, failed);
		goto out;
	}
	if (outcmp_trees(&c, out1, out2, err, sizeof err) != 0) {
		mirror_hide_path(err, sizeof err, root, "<work root>");
		worker_msg("rebuild: %s", err);
		status = rebuild_status(NULL, "the outputs could not be "
		    "compared");
		goto out;
	}
	fflush(stdout);
	if (c.total > 0)
		rebuild_explain(&c, root, 60 * 1000);
	else
		(void)worker_write_all(1, WORKER_NAME ": rebuild: "
		    "reproducible\n", strlen(WORKER_NAME ": rebuild: "
		    "reproducible\n"));
	status = rebuild_status(&c, NULL);
out:
	/* Built by us, or given back by the build: ours to remove. */
	if ((rc = util_rmtree(top)) != 0 && rc != -ENOENT)
		worker_msg("rebuild: cannot remove the second tree: %s",
		    strerror(-rc));
	outcmp_free(&c);
	rebuild_run_free(&second);
	free(top);
	free(cache);
	free(out1);
	free(out2);
	return status;
}
