/*
 * The SBOM functions from the command line, for tests/integration/sbom.sh:
 *
 *	sbom-driver go BINARY SHA256 TARGET CREATED SPDX-OUT CDX-OUT
 *	sbom-driver files NAME CREATED SPDX-OUT CDX-OUT FILE SHA256 ...
 *
 * "go" reads BINARY's build information as kiln-worker will (the whole
 * file in memory, opened without following a symlink or blocking on a
 * FIFO); exit 1 with the message on any error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buildinfo.h"
#include "worker/sbom.h"

#define BINARY_MAX	(1u << 30)

static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	ssize_t n;
	int fd, fl;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > BINARY_MAX || (fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		fprintf(stderr, "%s: not a readable regular file\n", path);
		exit(1);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		exit(1);
	/* What the file holds now, never more than fstat said. */
	while (got < (size_t)st.st_size &&
	    (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	*len = got;
	return buf;
}

static void
spew(const char *path, char *text, const char *err)
{
	FILE *f;

	if (text == NULL) {
		fprintf(stderr, "sbom-driver: %s\n", err);
		exit(1);
	}
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) != 0) {
		fprintf(stderr, "sbom-driver: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(text);
}

int
main(int argc, char **argv)
{
	struct buildinfo bi;
	struct sbom_subject s, *files;
	unsigned char *buf;
	char err[512];
	size_t len, i, n;
	int64_t created;

	if (argc == 8 && strcmp(argv[1], "go") == 0) {
		buf = slurp(argv[2], &len);
		if (buildinfo_from_binary(&bi, buf, len, err, sizeof err) == -1) {
			fprintf(stderr, "sbom-driver: %s: %s\n", argv[2], err);
			free(buf);
			return 1;
		}
		free(buf);
		s.name = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 :
		    argv[2];
		s.sha256 = argv[3];
		s.target = argv[4];
		created = strtoll(argv[5], NULL, 10);
		spew(argv[6], sbom_spdx(&bi, &s, "test", created, err,
		    sizeof err), err);
		spew(argv[7], sbom_cyclonedx(&bi, &s, "test", created, err,
		    sizeof err), err);
		buildinfo_free(&bi);
		return 0;
	}
	if (argc >= 8 && argc % 2 == 0 && strcmp(argv[1], "files") == 0) {
		n = (size_t)(argc - 6) / 2;
		files = calloc(n, sizeof *files);
		if (files == NULL)
			return 1;
		for (i = 0; i < n; i++) {
			files[i].name = argv[6 + 2 * i];
			files[i].sha256 = argv[7 + 2 * i];
		}
		created = strtoll(argv[3], NULL, 10);
		spew(argv[4], sbom_spdx_files(argv[2], files, n, "test",
		    created, err, sizeof err), err);
		spew(argv[5], sbom_cyclonedx_files(argv[2], files, n, "test",
		    created, err, sizeof err), err);
		free(files);
		return 0;
	}
	fprintf(stderr, "usage: sbom-driver go BINARY SHA256 TARGET CREATED "
	    "SPDX CDX\n       sbom-driver files NAME CREATED SPDX CDX FILE "
	    "SHA256 ...\n");
	return 2;
}
