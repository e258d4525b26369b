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

/* .kiln.json is configuration, not data: anything bigger is refused. */
#define KILN_JSON_MAX (64 * 1024)

struct fetch_args {
	const char *mirror;
	const char *url;
	const char *ref;
};

static int
parse_args(struct fetch_args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mirror", required_argument, NULL, 'm' },
		{ "url", required_argument, NULL, 'u' },
		{ "ref", required_argument, NULL, 'r' },
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
 * What kilnd needs to plan the build, read from the commit's tree (not a
 * work tree): .kiln.json's text and whether go.mod exists at the root.
 */
static int
describe(json_t **out, git_repository *repo, git_commit *commit,
    char *err, size_t errsize)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_tree *tree = NULL;
	git_blob *blob = NULL;
	const git_tree_entry *e;
	json_t *obj = NULL, *kj = NULL;
	int ret = -1;

	git_oid_tostr(hex, sizeof hex, git_commit_id(commit));
	if (git_commit_tree(&tree, commit) != 0) {
		snprintf(err, errsize, "cannot read the tree of %s", hex);
		goto out;
	}
	e = git_tree_entry_byname(tree, ".kiln.json");
	if (e == NULL) {
		kj = json_null();
	} else {
		git_filemode_t mode = git_tree_entry_filemode(e);
		git_object_size_t size;

		if (mode != GIT_FILEMODE_BLOB &&
		    mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
			snprintf(err, errsize, ".kiln.json in %s is not a regular "
			    "file", hex);
			goto out;
		}
		if (git_blob_lookup(&blob, repo, git_tree_entry_id(e)) != 0) {
			snprintf(err, errsize, "cannot read .kiln.json in %s", hex);
			goto out;
		}
		size = git_blob_rawsize(blob);
		if (size > KILN_JSON_MAX) {
			snprintf(err, errsize, ".kiln.json in %s is %llu bytes, more "
			    "than %d", hex, (unsigned long long)size, KILN_JSON_MAX);
			goto out;
		}
		kj = json_stringn(git_blob_rawcontent(blob), (size_t)size);
		if (kj == NULL) {
			snprintf(err, errsize, ".kiln.json in %s is not UTF-8", hex);
			goto out;
		}
	}
	e = git_tree_entry_byname(tree, "go.mod");
	obj = json_pack("{s:s, s:I, s:O, s:b}",
	    "commit", hex,
	    "commit_time", (json_int_t)git_commit_time(commit),
	    "kiln_json", kj,
	    "has_go_mod", e != NULL && git_tree_entry_type(e) == GIT_OBJECT_BLOB);
	if (obj == NULL) {
		snprintf(err, errsize, "cannot build the JSON answer");
		goto out;
	}
	*out = obj;
	obj = NULL;
	ret = 0;
out:
	json_decref(obj);
	json_decref(kj);
	git_blob_free(blob);
	git_tree_free(tree);
	return ret;
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
	if (mirror_fetch(&repo, a.mirror, a.url, a.ref, err, sizeof err) != 0)
		goto out;
	if (mirror_resolve(&commit, repo, a.ref, a.url, err, sizeof err) != 0)
		goto out;
	if (describe(&answer, repo, commit, err, sizeof err) != 0)
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
