/*
 * kiln-worker fetch: update a bare mirror, resolve a ref, describe the
 * commit as one JSON line.  Runs with the network and no sandbox: it only
 * talks git through libgit2 and executes nothing from the repository.
 */
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#include <jansson.h>

#include "mirror.h"
#include "worker.h"

struct fetch_args {
	const char *mirror;
	const char *url;
	const char *ref;
	const char *job_ref;	/* the job's ref, for the tag and branch */
};

static int
parse_args(struct fetch_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mirror", required_argument, NULL, 'm' },
		{ "url", required_argument, NULL, 'u' },
		{ "ref", required_argument, NULL, 'r' },
		{ "job-ref", required_argument, NULL, 'j' },
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

int
fetch_main(int argc, char **argv)
{
	struct fetch_args a;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	json_t *answer = NULL;
	char *line = NULL;
	char err[1024] = "";
	int lock_fd = -1, ret = WORKER_EXIT_FAIL;
	bool inited = false;

	if (parse_args(&a, argc, argv) != 0)
		return WORKER_EXIT_USAGE;
	if (worker_tie_to_parent() != 0) {
		snprintf(err, sizeof err, "parent exited");
		goto out;
	}
	if (mirror_init() != 0) {
		snprintf(err, sizeof err, "cannot initialize libgit2");
		goto out;
	}
	inited = true;
	lock_fd = mirror_lock(a.mirror, err, sizeof err);
	if (lock_fd < 0)
		goto out;
	if (mirror_fetch(&repo, a.mirror, a.url, a.ref, a.job_ref, err,
	    sizeof err) != 0)
		goto out;
	if (mirror_resolve(&commit, repo, a.ref, a.url, err, sizeof err) != 0)
		goto out;
	if (describe_commit(&answer, repo, commit,
	    a.job_ref ? a.job_ref : a.ref, a.url, err, sizeof err) != 0)
		goto out;
	line = json_dumps(answer, JSON_COMPACT);
	if (line == NULL) {
		snprintf(err, sizeof err, "cannot encode the JSON answer");
		goto out;
	}
	if (printf("%s\n", line) < 0 || fflush(stdout) != 0) {
		snprintf(err, sizeof err, "cannot write to stdout");
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		worker_msg("fetch: %s", err);
	free(line);
	json_decref(answer);
	git_commit_free(commit);
	git_repository_free(repo);
	if (lock_fd >= 0)
		close(lock_fd);
	if (inited)
		mirror_shutdown();
	return ret;
}
