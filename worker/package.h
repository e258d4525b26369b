/*
 * kiln-worker package: a job's release outputs (archives, SBOMs,
 * universal macOS binaries, an OCI image) from its builds' files, as the
 * spec kilnd made says (daemon/release.h).  package.c reads the options
 * and the spec, opens every input, and runs package-run.c's work in a
 * sandbox of its own, which sees the inputs only as open descriptors.
 */
#ifndef KILN_PACKAGE_H
#define KILN_PACKAGE_H

#include <stddef.h>

#include <jansson.h>

/* Where the sandbox sees the work: out (written), scratch (temporary
 * files: the repository's files, image layers), the mirror. */
#define PACKAGE_OUT "/out"
#define PACKAGE_SCRATCH "/scratch"

struct package_job {
	json_t *spec;		/* checked by package_check() */
	int *fds;		/* one per spec input, open regular files */
	size_t nfds;
	const char *commit;
};

/* The spec's shape, names and indexes: 0, or -1 with err naming the
 * field. */
int package_check(json_t *spec, char *err, size_t errsize);
/* In the sandbox (sandbox_run's fn): every output into PACKAGE_OUT. */
int package_run(void *data, char *err, size_t errsize);

#endif
