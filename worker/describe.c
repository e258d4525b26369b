/*
 * What kilnd needs to plan a job, read from the commit's tree and the
 * mirror's refs (never from a work tree, and nothing is executed):
 * .kiln.json's text, go.mod's go/toolchain lines and whether it requires
 * modules, whether vendor/ is used, the repository's GoReleaser
 * configuration turned into a kiln recipe, and the tag and branch that
 * version stamping uses.
 *
 * Everything here parses hostile files, which is why it runs in the
 * worker and not in kilnd: a parser bug takes down one fetch, not the
 * daemon.  kilnd still validates what it is told.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <jansson.h>

#include "goreleaser.h"
#include "gomod.h"
#include "mirror.h"
#include "worker.h"
#include "xmalloc.h"
#include "yaml.h"

/* Configuration, not data: anything bigger is refused. */
#define KILN_JSON_MAX (64 * 1024)
#define CONFIG_FILE_MAX (256 * 1024)

/* The blob at `path` in the tree (NULL when absent), size-capped. */
static int
read_blob(git_blob **out, git_repository *repo, git_tree *tree,
    const char *path, size_t max, char *err, size_t errsize)
{
	git_tree_entry *e = NULL;
	git_filemode_t mode;
	int rc;

	*out = NULL;
	rc = git_tree_entry_bypath(&e, tree, path);
	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc != 0) {
		snprintf(err, errsize, "cannot read %s", path);
		return -1;
	}
	mode = git_tree_entry_filemode(e);
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
		snprintf(err, errsize, "%s is not a regular file", path);
		git_tree_entry_free(e);
		return -1;
	}
	rc = git_blob_lookup(out, repo, git_tree_entry_id(e));
	git_tree_entry_free(e);
	if (rc != 0) {
		snprintf(err, errsize, "cannot read %s", path);
		return -1;
	}
	if (git_blob_rawsize(*out) > max) {
		snprintf(err, errsize, "%s is %llu bytes, more than %zu", path,
		    (unsigned long long)git_blob_rawsize(*out), max);
		git_blob_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static bool
has_blob(git_tree *tree, const char *path)
{
	git_tree_entry *e = NULL;
	bool yes;

	if (git_tree_entry_bypath(&e, tree, path) != 0)
		return false;
	yes = git_tree_entry_type(e) == GIT_OBJECT_BLOB;
	git_tree_entry_free(e);
	return yes;
}

/* go.mod: {"go", "toolchain", "requires"}, or an error message. */
static void
describe_gomod(json_t *obj, git_repository *repo, git_tree *tree)
{
	git_blob *blob = NULL;
	struct gomod m;
	char err[512];

	if (read_blob(&blob, repo, tree, "go.mod", CONFIG_FILE_MAX, err,
	    sizeof err) != 0) {
		json_object_set_new(obj, "go_mod_error", json_string(err));
		return;
	}
	if (blob == NULL)
		return;
	if (gomod_parse(&m, git_blob_rawcontent(blob),
	    (size_t)git_blob_rawsize(blob), err, sizeof err) != 0)
		json_object_set_new(obj, "go_mod_error", json_string(err));
	else
		json_object_set_new(obj, "go_mod", json_pack("{s:s, s:s, s:b}",
		    "go", m.go, "toolchain", m.toolchain,
		    "requires", m.requires));
	git_blob_free(blob);
}

/* The repository's name: the last part of its URL without ".git". */
static char *
repo_name(const char *url)
{
	const char *end = url + strlen(url), *base;

	while (end > url && end[-1] == '/')
		end--;
	if (end - url > 4 && strncmp(end - 4, ".git", 4) == 0)
		end -= 4;
	base = end;
	while (base > url && base[-1] != '/' && base[-1] != ':')
		base--;
	return end > base ? xstrndup(base, (size_t)(end - base)) :
	    xstrdup("app");
}

/*
 * .goreleaser.yaml (or .yml, with or without the dot, as GoReleaser
 * looks for them), read with libyaml and mapped to a kiln recipe:
 * {"file", "recipe", "targets", "ignored"}, or an error message.
 */
static void
describe_goreleaser(json_t *obj, git_repository *repo, git_tree *tree,
    const char *url)
{
	static const char *const names[] = { ".goreleaser.yml",
	    ".goreleaser.yaml", "goreleaser.yml", "goreleaser.yaml" };
	struct goreleaser_result r = { 0 };
	git_blob *blob = NULL;
	json_t *doc = NULL, *recipe, *arr;
	const char *file = NULL;
	char err[512], *name = NULL;

	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (read_blob(&blob, repo, tree, names[i], CONFIG_FILE_MAX, err,
		    sizeof err) != 0) {
			json_object_set_new(obj, "goreleaser_error",
			    json_string(err));
			return;
		}
		if (blob != NULL) {
			file = names[i];
			break;
		}
	}
	if (blob == NULL)
		return;
	if (yaml_to_json(&doc, git_blob_rawcontent(blob),
	    (size_t)git_blob_rawsize(blob), err, sizeof err) != 0) {
		json_object_set_new(obj, "goreleaser_error",
		    json_sprintf("%s: %s", file, err));
		goto out;
	}
	name = repo_name(url);
	if (goreleaser_to_recipe(&r, doc, name, err, sizeof err) != 0) {
		json_object_set_new(obj, "goreleaser_error",
		    json_sprintf("%s: %s", file, err));
		goto out;
	}
	recipe = json_loads(r.recipe, 0, NULL);
	if (recipe == NULL) {
		json_object_set_new(obj, "goreleaser_error",
		    json_sprintf("%s: cannot encode the recipe", file));
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < r.ntargets; i++)
		json_array_append_new(arr, json_string(r.targets[i]));
	json_t *ign = json_array();
	for (size_t i = 0; i < r.nignored; i++)
		json_array_append_new(ign, json_string(r.ignored[i]));
	json_object_set_new(obj, "goreleaser", json_pack("{s:s, s:o, s:o, s:o}",
	    "file", file, "recipe", recipe, "targets", arr, "ignored", ign));
	if (r.outputs != NULL)
		json_object_set_new(json_object_get(obj, "goreleaser"), "outputs",
		    json_loads(r.outputs, 0, NULL));
out:
	goreleaser_result_free(&r);
	json_decref(doc);
	git_blob_free(blob);
	free(name);
}

/* Numeric parts of a version tag ("v1.10.2" > "v1.9.0"); ties: text. */
static int
tag_cmp(const char *a, const char *b)
{
	const char *pa = a + (*a == 'v'), *pb = b + (*b == 'v');

	while (*pa && *pb) {
		if (*pa >= '0' && *pa <= '9' && *pb >= '0' && *pb <= '9') {
			unsigned long long x = strtoull(pa, (char **)&pa, 10);
			unsigned long long y = strtoull(pb, (char **)&pb, 10);
			if (x != y)
				return x < y ? -1 : 1;
			continue;
		}
		if (*pa != *pb)
			break;
		pa++, pb++;
	}
	/* "1.0.0-rc1" sorts before "1.0.0", as in semver. */
	if (*pa == '-' && *pb == '\0')
		return -1;
	if (*pa == '\0' && *pb == '-')
		return 1;
	return strcmp(a, b);
}

struct tag_walk {
	git_repository *repo;
	const git_oid *commit;
	char *best;
};

static int
tag_cb(const char *name, git_oid *oid, void *data)
{
	struct tag_walk *w = data;
	git_object *obj = NULL, *peeled = NULL;
	const char *short_name = name + strlen("refs/tags/");

	if (strncmp(name, "refs/tags/", 10) != 0)
		return 0;
	if (git_object_lookup(&obj, w->repo, oid, GIT_OBJECT_ANY) == 0 &&
	    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0 &&
	    git_oid_equal(git_object_id(peeled), w->commit) &&
	    (w->best == NULL || tag_cmp(short_name, w->best) > 0)) {
		free(w->best);
		w->best = xstrdup(short_name);
	}
	git_object_free(peeled);
	git_object_free(obj);
	return 0;
}

/* Whether refs/<kind>/<name> exists and peels to the commit. */
static bool
ref_is(git_repository *repo, const char *kind, const char *name,
    const git_oid *commit)
{
	git_object *obj = NULL, *peeled = NULL;
	git_oid oid;
	char *full = xasprintf("refs/%s/%s", kind, name);
	bool yes = false;

	if (git_reference_name_to_id(&oid, repo, full) == 0 &&
	    git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY) == 0 &&
	    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0)
		yes = git_oid_equal(git_object_id(peeled), commit);
	git_object_free(peeled);
	git_object_free(obj);
	free(full);
	return yes;
}

/*
 * The tag and branch for {{.Tag}}/{{.Version}}/{{.Branch}}: the tag the
 * job's ref names wins; else the highest version tag on the commit; the
 * branch only when the job's ref names one.
 */
static void
describe_version(json_t *obj, git_repository *repo, const git_oid *commit,
    const char *job_ref)
{
	struct tag_walk w = { repo, commit, NULL };
	const char *r = job_ref;
	char *branch = NULL, *ref_name = NULL;

	if (r != NULL && !worker_is_sha1_hex(r)) {
		if (strncmp(r, "refs/tags/", 10) == 0) {
			if (ref_is(repo, "tags", r + 10, commit))
				w.best = xstrdup(r + 10);
		} else if (strncmp(r, "refs/heads/", 11) == 0) {
			if (ref_is(repo, "heads", r + 11, commit))
				branch = xstrdup(r + 11);
		} else if (strncmp(r, "refs/", 5) != 0) {
			if (ref_is(repo, "tags", r, commit))
				w.best = xstrdup(r);
			else if (ref_is(repo, "heads", r, commit))
				branch = xstrdup(r);
		}
	}
	/* The full name of the ref the job named, for its trust class;
	 * a commit id names none. */
	if (w.best != NULL)
		ref_name = xasprintf("refs/tags/%s", w.best);
	else if (branch != NULL)
		ref_name = xasprintf("refs/heads/%s", branch);
	json_object_set_new(obj, "ref_name", ref_name ?
	    json_string(ref_name) : json_null());
	free(ref_name);
	if (w.best == NULL)
		git_tag_foreach(repo, tag_cb, &w);
	json_object_set_new(obj, "tag", w.best ? json_string(w.best) :
	    json_null());
	json_object_set_new(obj, "branch", branch ? json_string(branch) :
	    json_null());
	free(w.best);
	free(branch);
}

int
describe_commit(json_t **out, git_repository *repo, git_commit *commit,
    const char *job_ref, const char *url, char *err, size_t errsize)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_tree *tree = NULL;
	git_blob *blob = NULL;
	json_t *obj = NULL, *kj = NULL;
	int ret = -1;

	git_oid_tostr(hex, sizeof hex, git_commit_id(commit));
	if (git_commit_tree(&tree, commit) != 0) {
		snprintf(err, errsize, "cannot read the tree of %s", hex);
		goto out;
	}
	if (read_blob(&blob, repo, tree, ".kiln.json", KILN_JSON_MAX,
	    err, errsize) != 0)
		goto out;
	if (blob == NULL)
		kj = json_null();
	else if ((kj = json_stringn(git_blob_rawcontent(blob),
	    (size_t)git_blob_rawsize(blob))) == NULL) {
		snprintf(err, errsize, ".kiln.json in %s is not UTF-8", hex);
		goto out;
	}
	obj = json_pack("{s:s, s:I, s:O, s:b, s:b}",
	    "commit", hex,
	    "commit_time", (json_int_t)git_commit_time(commit),
	    "kiln_json", kj,
	    "has_go_mod", has_blob(tree, "go.mod"),
	    "vendored", has_blob(tree, "vendor/modules.txt"));
	if (obj == NULL) {
		snprintf(err, errsize, "cannot build the JSON answer");
		goto out;
	}
	describe_gomod(obj, repo, tree);
	describe_goreleaser(obj, repo, tree, url);
	describe_version(obj, repo, git_commit_id(commit), job_ref);
	{
		char def[256];
		json_object_set_new(obj, "default_branch",
		    mirror_default_branch(repo, def, sizeof def) == 0 ?
		    json_string(def) : json_null());
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
