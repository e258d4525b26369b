/*
 * kiln-worker package --mirror DIR --commit SHA --root DIR --spec JSON
 *     [--timeout SECONDS] [--status-fd FD]
 *
 * Makes ROOT/out and ROOT/scratch, checks the spec (package-check.c),
 * opens each input (kilnd's store blobs: regular files, never followed
 * through a symlink, never a FIFO), then runs package_run in a sandbox
 * of its own (sandbox_run): no network, the mirror read-only for the
 * repository's files, ROOT/out and ROOT/scratch writable, the host's
 * /etc/ssl read-only when the image asks for its CA bundle, /usr (whose
 * zoneinfo an image may hold) as every sandbox has it, and the inputs as the
 * descriptors opened here.  What it writes, and what the archives and
 * the image hold, comes from bytes a build made; the code that reads
 * them (libarchive, the Mach-O and Go build information readers) runs
 * with nothing else of the host in reach.
 *
 * The status line on --status-fd is build's: {"status": "exited",
 * "code": N} or {"status": "error", "error": MESSAGE}.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "package.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

struct package_args {
	const char *mirror, *commit, *root, *spec;
	unsigned timeout;
	int status_fd;
};

static int
usage_error(const char *msg)
{
	worker_msg("package: %s", msg);
	return -1;
}

static int
parse_args(struct package_args *a, int argc, char **argv)
{
	enum { O_MIRROR = 256, O_COMMIT, O_ROOT, O_SPEC, O_TIMEOUT,
	    O_STATUS_FD };
	static const struct option opts[] = {
		{ "mirror", required_argument, NULL, O_MIRROR },
		{ "commit", required_argument, NULL, O_COMMIT },
		{ "root", required_argument, NULL, O_ROOT },
		{ "spec", required_argument, NULL, O_SPEC },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "status-fd", required_argument, NULL, O_STATUS_FD },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	int64_t v;

	memset(a, 0, sizeof *a);
	a->status_fd = -1;
	a->timeout = 3600;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_MIRROR: a->mirror = optarg; break;
		case O_COMMIT: a->commit = optarg; break;
		case O_ROOT: a->root = optarg; break;
		case O_SPEC: a->spec = optarg; break;
		case O_TIMEOUT:
			if (util_parse_int64(optarg, 1, 7 * 86400, &v) != 0)
				return usage_error("--timeout wants seconds");
			a->timeout = (unsigned)v;
			break;
		case O_STATUS_FD:
			if (util_parse_int64(optarg, 3, INT_MAX, &v) != 0)
				return usage_error("--status-fd wants an open fd "
				    "above 2");
			a->status_fd = (int)v;
			break;
		default:
			return usage_error("unknown option (kiln-worker --help)");
		}
	}
	if (optind != argc)
		return usage_error("no arguments after the options");
	if (a->mirror == NULL || a->commit == NULL || a->root == NULL ||
	    a->spec == NULL)
		return usage_error("--mirror, --commit, --root and --spec are "
		    "required");
	if (!worker_is_sha1_hex(a->commit))
		return usage_error("--commit wants 40 hex digits");
	if (a->root[0] != '/' || a->mirror[0] != '/')
		return usage_error("--root and --mirror want absolute paths");
	return 0;
}

/* A regular file for reading, opened without following a symlink or
 * waiting on a FIFO: the fd, or -1 with err. */
static int
open_input(const char *path, const char *what, char *err, size_t errsize)
{
	struct stat sb;
	int fd, fl;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsize, "%s: %s", what, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errsize, "%s: not a regular file", what);
		close(fd);
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

static int
make_dirs(const char *root, char *err, size_t errsize)
{
	char p[PATH_MAX];

	if (mkdir(root, 0750) != 0) {
		snprintf(err, errsize, "cannot create the work root: %s "
		    "(it must not exist)", strerror(errno));
		return -1;
	}
	snprintf(p, sizeof p, "%s/out", root);
	if (mkdir(p, 0755) != 0) {
		snprintf(err, errsize, "cannot create out: %s", strerror(errno));
		return -1;
	}
	snprintf(p, sizeof p, "%s/scratch", root);
	if (mkdir(p, 0700) != 0) {
		snprintf(err, errsize, "cannot create scratch: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
write_status(int fd, int code, const char *error)
{
	json_t *o = error != NULL ?
	    json_pack("{s:s, s:s}", "status", "error", "error", error) :
	    json_pack("{s:s, s:i}", "status", "exited", "code", code);
	char *line;

	if (fd < 0 || o == NULL) {
		json_decref(o);
		return;
	}
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line == NULL)
		return;
	if (worker_write_all(fd, line, strlen(line)) != 0 ||
	    worker_write_all(fd, "\n", 1) != 0)
		worker_msg("cannot write the status to fd %d: %s", fd,
		    strerror(errno));
	free(line);
}

static void
on_alarm(int sig)
{
	(void)sig;
	/* The sandbox dies with us (PR_SET_PDEATHSIG). */
	static const char m[] = "kiln-worker: package: timed out\n";
	(void)!write(2, m, sizeof m - 1);
	_exit(WORKER_EXIT_TIMEOUT);
}

int
package_main(int argc, char **argv)
{
	struct package_args a;
	struct package_job pj = { 0 };
	char err[1024] = "", out[PATH_MAX], scratch[PATH_MAX];
	json_error_t jerr;
	json_t *in;
	size_t i;
	int code = 1, ran = -1;

	if (parse_args(&a, argc, argv) != 0)
		return WORKER_EXIT_USAGE;
	if (a.status_fd >= 0)
		(void)fcntl(a.status_fd, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	if (worker_tie_to_parent() != 0) {
		snprintf(err, sizeof err, "parent exited");
		goto out;
	}
	signal(SIGALRM, on_alarm);
	alarm(a.timeout);
	if ((pj.spec = json_loads(a.spec, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(err, sizeof err, "the spec is not JSON: %s", jerr.text);
		goto out;
	}
	if (package_check(pj.spec, err, sizeof err) != 0 ||
	    make_dirs(a.root, err, sizeof err) != 0)
		goto out;
	pj.commit = a.commit;
	pj.nfds = json_array_size(json_object_get(pj.spec, "inputs"));
	pj.fds = xcalloc(pj.nfds + 1, sizeof *pj.fds);
	for (i = 0; i < pj.nfds; i++)
		pj.fds[i] = -1;
	json_array_foreach(json_object_get(pj.spec, "inputs"), i, in) {
		char what[256];

		snprintf(what, sizeof what, "%s/%s", json_string_value(
		    json_object_get(in, "target")), json_string_value(
		    json_object_get(in, "name")));
		if ((pj.fds[i] = open_input(json_string_value(json_object_get(
		    in, "path")), what, err, sizeof err)) < 0)
			goto out;
	}
	snprintf(out, sizeof out, "%s/out", a.root);
	snprintf(scratch, sizeof scratch, "%s/scratch", a.root);
	{
		struct sandbox_bind binds[3] = {
			{ .host = a.mirror, .inside = SANDBOX_MIRROR },
			{ .host = out, .inside = PACKAGE_OUT, .writable = true },
			{ .host = scratch, .inside = PACKAGE_SCRATCH,
			    .writable = true },
		};
		json_t *im = json_object_get(pj.spec, "image");
		struct sandbox_run_config cfg = {
			.binds = binds, .nbinds = 3,
			/* The image's CA bundle is the host's (worker/oci.h). */
			.ca_certs = json_is_true(json_object_get(im, "ca_certs")),
			.hostname = "kiln-package",
			.fn = package_run, .data = &pj,
			.keep_fds = pj.fds, .nkeep_fds = pj.nfds,
		};

		ran = sandbox_run(&code, &cfg, err, sizeof err);
	}
out:
	if (ran != 0 && err[0] == '\0')
		snprintf(err, sizeof err, "package failed");
	if (ran == 0 && code != 0 && err[0] == '\0')
		snprintf(err, sizeof err, "package exited %d", code);
	if (err[0] != '\0')
		worker_msg("package: %s", err);
	write_status(a.status_fd, code, ran == 0 && code == 0 ? NULL : err);
	for (i = 0; pj.fds != NULL && i < pj.nfds; i++)
		if (pj.fds[i] >= 0)
			close(pj.fds[i]);
	free(pj.fds);
	json_decref(pj.spec);
	return ran == 0 && code == 0 ? 0 : WORKER_EXIT_ERROR;
}
