/*
 * kiln-worker fetch: update a bare mirror, resolve a ref, describe the
 * commit as one JSON line.  libgit2 does all of that in a sandbox of its
 * own (sandbox_run): it parses what any URL sent, so it sees the mirror
 * and nothing else of the worker's files.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <jansson.h>

#include "creds.h"
#include "mirror.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

struct fetch_args {
	const char *mirror;
	const char *url;
	const char *ref;
	const char *job_ref;	/* the job's ref, for the tag and branch */
	const char *keep_out;	/* kilnd's state directory */
	const char *creds_fd;	/* --credentials-fd */
	struct creds *creds;	/* read from it, or NULL */
};

static int
parse_args(struct fetch_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mirror", required_argument, NULL, 'm' },
		{ "url", required_argument, NULL, 'u' },
		{ "ref", required_argument, NULL, 'r' },
		{ "job-ref", required_argument, NULL, 'j' },
		{ "keep-out", required_argument, NULL, 'k' },
		{ "credentials-fd", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof *a);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'm': a->mirror = optarg; break;
		case 'u': a->url = optarg; break;
		case 'r': a->ref = optarg; break;
		case 'j': a->job_ref = optarg; break;
		case 'k': a->keep_out = optarg; break;
		case 'c': a->creds_fd = optarg; break;
		default: return -1;
		}
	}
	if (optind != argc) {
		worker_msg("fetch: unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (a->mirror == NULL || a->url == NULL || a->ref == NULL) {
		worker_msg("fetch: --mirror, --url and --ref are required");
		return -1;
	}
	if (a->mirror[0] == '\0' || a->url[0] == '\0' || a->ref[0] == '\0') {
		worker_msg("fetch: --mirror, --url and --ref must not be empty");
		return -1;
	}
	return 0;
}

/*
 * The directory a local URL names, as libgit2's local transport reads
 * it: file:///PATH, file://localhost/PATH or an absolute path (which the
 * mirror code turns into file://PATH), %XX decoded.  NULL for any other
 * URL, and for a path that would not name one directory plainly (a NUL
 * byte, "." or ".." components): that one is not shown in the sandbox,
 * and libgit2 finds nothing there.
 */
static char *
local_path(const char *url)
{
	const char *p;
	char *out, *o;

	if (url[0] == '/')
		p = url;
	else if (strncmp(url, "file:///", 8) == 0)
		p = url + 7;
	else if (strncmp(url, "file://localhost/", 17) == 0)
		p = url + 16;
	else
		return NULL;
	out = o = xmalloc(strlen(p) + 1);
	for (; *p != '\0'; p++) {
		if (p[0] == '%' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2])) {
			char hex[3] = { p[1], p[2], '\0' };
			*o = (char)strtol(hex, NULL, 16);
			if (*o == '\0')
				goto bad;
			o++;
			p += 2;
		} else if (p[0] == '/' && p[1] == '/') {
			continue;
		} else
			*o++ = *p;
	}
	*o = '\0';
	if (o > out + 1 && o[-1] == '/')
		o[-1] = '\0';
	if (strcmp(out, "/") == 0 || strstr(out, "/./") != NULL ||
	    strstr(out, "/../") != NULL ||
	    (strlen(out) >= 2 && strcmp(out + strlen(out) - 2, "/.") == 0) ||
	    (strlen(out) >= 3 && strcmp(out + strlen(out) - 3, "/..") == 0))
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* The mirror's directory, created empty the first time (libgit2 makes a
 * repository in it); anything but a directory there is refused. */
static int
prepare_mirror(const char *dir, char *err, size_t errsize)
{
	struct stat st;

	if (mkdir(dir, 0777) == 0)
		return 0;
	if (errno != EEXIST) {
		snprintf(err, errsize, "cannot create the mirror of this "
		    "repository: %s", strerror(errno));
		return -1;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsize, "the mirror's directory holds something "
		    "that is not a bare git repository");
		return -1;
	}
	return 0;
}

/* In the sandbox: the mirror is at SANDBOX_MIRROR. */
static int
fetch_in_sandbox(void *data, char *err, size_t errsize)
{
	const struct fetch_args *a = data;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	json_t *answer = NULL;
	char *line = NULL;
	int ret = WORKER_EXIT_FAIL;

	if (mirror_init() != 0) {
		snprintf(err, errsize, "cannot initialize libgit2");
		return WORKER_EXIT_FAIL;
	}
	if (mirror_fetch(&repo, SANDBOX_MIRROR, a->url, a->ref, a->job_ref,
	    a->creds, err, errsize) != 0)
		goto out;
	if (mirror_resolve(&commit, repo, a->ref, a->url, err, errsize) != 0)
		goto out;
	if (describe_commit(&answer, repo, commit,
	    a->job_ref ? a->job_ref : a->ref, a->url, err, errsize) != 0)
		goto out;
	line = json_dumps(answer, JSON_COMPACT);
	if (line == NULL) {
		snprintf(err, errsize, "cannot encode the JSON answer");
		goto out;
	}
	if (printf("%s\n", line) < 0 || fflush(stdout) != 0) {
		snprintf(err, errsize, "cannot write to stdout");
		goto out;
	}
	ret = 0;
out:
	free(line);
	json_decref(answer);
	git_commit_free(commit);
	git_repository_free(repo);
	mirror_shutdown();
	return ret;
}

int
fetch_main(int argc, char **argv)
{
	struct fetch_args a;
	struct sandbox_bind binds[3];
	struct sandbox_run_config cfg;
	char err[1024] = "", *local = NULL, *parent = NULL;
	char *known_hosts = NULL, mirrors[PATH_MAX];
	const char *home = getenv("HOME"), *agent = getenv("SSH_AUTH_SOCK");
	int lock_fd = -1, code, ret = WORKER_EXIT_FAIL;

	if (parse_args(&a, argc, argv) != 0)
		return WORKER_EXIT_USAGE;
	if (a.creds_fd != NULL && worker_read_creds(&a.creds, a.creds_fd, err,
	    sizeof err) != 0)
		goto out;
	if (worker_tie_to_parent() != 0) {
		snprintf(err, sizeof err, "parent exited");
		goto out;
	}
	lock_fd = mirror_lock(a.mirror, err, sizeof err);
	if (lock_fd < 0)
		goto out;
	if (prepare_mirror(a.mirror, err, sizeof err) != 0)
		goto out;

	memset(&cfg, 0, sizeof cfg);
	memset(binds, 0, sizeof binds);
	binds[0].host = a.mirror;
	binds[0].inside = SANDBOX_MIRROR;
	binds[0].writable = true;
	cfg.nbinds = 1;
	local = local_path(a.url);
	if (a.url[0] == '/' || strncmp(a.url, "file://", 7) == 0) {
		/*
		 * A local repository: read-only at its own path, so that the
		 * URL names it inside too, and no network at all.  Never one
		 * in or above the mirrors' directory: the state directory, or
		 * another repository's mirror; nor in or above --keep-out
		 * (kilnd's whole state directory: its key, its database, the
		 * caches of every trust class).  Under /usr it is there already.
		 */
		if (local != NULL && strncmp(local, "/usr/", 5) != 0) {
			parent = xstrdup(a.keep_out ? a.keep_out : a.mirror);
			if (a.keep_out != NULL ?
			    realpath(parent, mirrors) == NULL :
			    realpath(dirname(parent), mirrors) == NULL) {
				snprintf(err, sizeof err, "cannot resolve the "
				    "directory kept out of the fetch: %s",
				    strerror(errno));
				goto out;
			}
			binds[1].host = binds[1].inside = local;
			binds[1].optional = true;
			binds[1].keep_out = mirrors;
			cfg.nbinds = 2;
		}
	} else {
		cfg.network = true;
		/* ssh:// checks the server's key in ~/.ssh/known_hosts and
		 * may offer an agent's keys: those two, read-only. */
		if (strncmp(a.url, "ssh://", 6) == 0 && home != NULL &&
		    home[0] == '/') {
			size_t n = strlen(home);
			while (n > 0 && home[n - 1] == '/')
				n--;
			known_hosts = xasprintf("%.*s/.ssh/known_hosts", (int)n,
			    home);
			binds[cfg.nbinds].host = known_hosts;
			binds[cfg.nbinds].inside = known_hosts;
			binds[cfg.nbinds++].optional = true;
		}
		if (strncmp(a.url, "ssh://", 6) == 0 && agent != NULL &&
		    agent[0] == '/') {
			binds[cfg.nbinds].host = agent;
			binds[cfg.nbinds].inside = agent;
			binds[cfg.nbinds++].optional = true;
		}
	}
	cfg.binds = binds;
	cfg.hostname = "kiln-fetch";
	cfg.fn = fetch_in_sandbox;
	cfg.data = &a;
	if (sandbox_run(&code, &cfg, err, sizeof err) != 0)
		goto out;
	if (code != 0 && err[0] == '\0')
		snprintf(err, sizeof err, "failed (exit %d)", code);
	ret = code == 0 ? 0 : WORKER_EXIT_FAIL;
out:
	if (ret != 0) {
		/* Setup errors may name the mirror's host path. */
		mirror_hide_path(err, sizeof err, a.mirror, "<mirror>");
		worker_msg("fetch: %s", err);
	}
	if (lock_fd >= 0)
		close(lock_fd);
	free(known_hosts);
	free(parent);
	free(local);
	creds_free(a.creds);
	return ret;
}
