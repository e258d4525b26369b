/*
 * What package-run.c and package-files.c share.
 */
#ifndef KILN_PACKAGE_INT_H
#define KILN_PACKAGE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "package.h"

/* The repository's files matched, written under PACKAGE_SCRATCH/repo. */
struct package_files {
	char **path;		/* relative to the repository's root */
	bool *exec;		/* its mode in the tree is 100755 */
	size_t n;
};

/* In the sandbox: the blobs of `commit` (from the mirror at
 * SANDBOX_MIRROR) whose paths match one of `globs` (fnmatch with
 * FNM_PATHNAME).  0, or -1 with err. */
int package_repo_files(struct package_files *out, const char *commit,
    json_t *globs, char *err, size_t errsize);
void package_files_free(struct package_files *f);

#endif
