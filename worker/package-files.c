/*
 * The repository's files an archive holds besides the binaries
 * (LICENSE*, README*, CHANGELOG* by default, or the globs the outputs
 * name), read from the commit's tree in the mirror with libgit2, in the
 * package sandbox.  Only blobs: a symlink or a submodule in the tree is
 * skipped, so an archive never holds a link to a host path; so is a
 * file whose name an archive cannot hold (archivable).  Each match is
 * written under PACKAGE_SCRATCH/repo and listed with its mode.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "package-int.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define MAX_FILES 256
#define MAX_BYTES (256u << 20)	/* of all the files together */
#define MAX_ENTRIES 100000	/* tree entries walked */

struct walk {
	git_repository *repo;
	json_t *globs;
	struct package_files *out;
	size_t entries, bytes;
	char *err;
	size_t errsize;
	int failed;
};

static bool
matches(json_t *globs, const char *path)
{
	json_t *g;
	size_t i;

	json_array_foreach(globs, i, g)
		if (fnmatch(json_string_value(g), path, FNM_PATHNAME) == 0)
			return true;
	return false;
}

/* Write buf to PACKAGE_SCRATCH/repo/<path>, making its directories. */
static int
save(const char *path, const void *buf, size_t len, char *err,
    size_t errsize)
{
	char full[4200];
	int fd;

	if ((size_t)snprintf(full, sizeof full, "%s/repo/%s", PACKAGE_SCRATCH,
	    path) >= sizeof full) {
		snprintf(err, errsize, "repository file %.64s...: path too long",
		    path);
		return -1;
	}
	for (char *p = full + strlen(PACKAGE_SCRATCH) + 1; (p = strchr(p, '/'));
	    p++) {
		*p = '\0';
		if (mkdir(full, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errsize, "repository file %s: %s", path,
			    strerror(errno));
			return -1;
		}
		*p = '/';
	}
	fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0 || worker_write_all(fd, buf, len) != 0) {
		snprintf(err, errsize, "repository file %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Whether an archive can hold the path as a member name: printable
 * ASCII without '\\' (archives.c, which keeps names independent of the
 * locale).  A repository may well have "README.fr-\xc3\xa9.md" beside its
 * README; that file is left out, with a line in the log, rather than
 * failing the whole release after every build succeeded.
 */
static bool
archivable(const char *path)
{
	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		if (*c < 0x20 || *c > 0x7e || *c == '\\')
			return false;
	return true;
}

/* The path for the log: bytes an archive cannot hold as \xNN, and
 * "..." for what does not fit. */
static void
shown(char *out, size_t size, const char *path)
{
	const unsigned char *c = (const unsigned char *)path;
	size_t j = 0;

	for (; *c && j + 8 < size; c++) {
		if (*c >= 0x20 && *c <= 0x7e && *c != '\\')
			out[j++] = (char)*c;
		else
			j += (size_t)snprintf(out + j, size - j, "\\x%02x", *c);
	}
	snprintf(out + j, size - j, "%s", *c ? "..." : "");
}

static int
visit(const char *root, const git_tree_entry *e, void *data)
{
	struct walk *w = data;
	git_filemode_t mode = git_tree_entry_filemode(e);
	char path[4096];
	git_blob *blob = NULL;
	size_t len;

	if (++w->entries > MAX_ENTRIES)
		return 1;	/* enough: the rest is not looked at */
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	snprintf(path, sizeof path, "%s%s", root, git_tree_entry_name(e));
	if (!matches(w->globs, path))
		return 0;
	if (!archivable(path)) {
		char q[300];

		shown(q, sizeof q, path);
		printf("repository file %s: left out (archive member names "
		    "are printable ASCII without '\\')\n", q);
		return 0;
	}
	if (w->out->n == MAX_FILES) {
		util_errorf(w->err, w->errsize, "more than %d repository files "
		    "match the archives' files", MAX_FILES);
		w->failed = 1;
		return -1;
	}
	if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(e)) != 0) {
		util_errorf(w->err, w->errsize, "repository file %s: cannot read "
		    "it", path);
		w->failed = 1;
		return -1;
	}
	len = (size_t)git_blob_rawsize(blob);
	if (len > MAX_BYTES - w->bytes) {
		util_errorf(w->err, w->errsize, "the archives' repository files "
		    "are over %u MiB", MAX_BYTES >> 20);
		w->failed = 1;
	} else if (save(path, git_blob_rawcontent(blob), len, w->err,
	    w->errsize) != 0)
		w->failed = 1;
	git_blob_free(blob);
	if (w->failed)
		return -1;
	w->bytes += len;
	w->out->path[w->out->n] = xstrdup(path);
	w->out->exec[w->out->n] = mode == GIT_FILEMODE_BLOB_EXECUTABLE;
	w->out->n++;
	return 0;
}

int
package_repo_files(struct package_files *out, const char *commit,
    json_t *globs, char *err, size_t errsize)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_oid oid;
	struct walk w = { .globs = globs, .out = out, .err = err,
	    .errsize = errsize };
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->path = xcalloc(MAX_FILES, sizeof *out->path);
	out->exec = xcalloc(MAX_FILES, sizeof *out->exec);
	if (json_array_size(globs) == 0)
		return 0;
	if (git_libgit2_init() < 0 ||
	    git_repository_open_bare(&repo, SANDBOX_MIRROR) != 0 ||
	    git_oid_fromstr(&oid, commit) != 0 ||
	    git_commit_lookup(&c, repo, &oid) != 0 ||
	    git_commit_tree(&tree, c) != 0) {
		util_errorf(err, errsize, "cannot read commit %.12s of the "
		    "mirror", commit);
		goto out;
	}
	w.repo = repo;
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, visit, &w) < 0 && w.failed)
		goto out;
	rc = 0;
out:
	git_tree_free(tree);
	git_commit_free(c);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

void
package_files_free(struct package_files *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->path[i]);
	free(f->path);
	free(f->exec);
}
