/*
 * archive-driver FORMAT MTIME OUT [NAME PATH MODE]...: kiln_archive_write
 * (worker/archives.h) of the members into OUT, for
 * tests/integration/archive.sh.  PATH "-" makes NAME a directory entry;
 * MODE is octal.  Prints the error and exits 1 when the write refuses.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/archives.h"

/*
 * Open without blocking on a FIFO and without following a symlink.  A
 * non-regular fd is passed on as it is: kiln_archive_write's own check
 * of the fd is what the test looks at.  A regular one gets its
 * O_NONBLOCK cleared.
 */
static int
open_member(const char *path)
{
	struct stat st;
	int fd, fl;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "archive-driver: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
			fprintf(stderr, "archive-driver: %s: fcntl: %s\n", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct kiln_archive_member *m;
	enum kiln_archive_format f;
	char err[512], *end;
	long long mtime;
	size_t n, i;
	int out, rc;

	if (argc < 4 || (argc - 4) % 3 != 0) {
		fprintf(stderr, "usage: archive-driver FORMAT MTIME OUT "
		    "[NAME PATH MODE]...\n");
		return 2;
	}
	if (kiln_archive_format_parse(argv[1], &f) != 0) {
		fprintf(stderr, "archive-driver: unknown format \"%s\"\n", argv[1]);
		return 1;
	}
	errno = 0;
	mtime = strtoll(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[2]) {
		fprintf(stderr, "archive-driver: bad mtime \"%s\"\n", argv[2]);
		return 2;
	}
	n = (size_t)(argc - 4) / 3;
	if ((m = calloc(n ? n : 1, sizeof *m)) == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		const char *path = argv[4 + 3 * i + 1];

		m[i].name = argv[4 + 3 * i];
		m[i].mode = (unsigned)strtoul(argv[4 + 3 * i + 2], NULL, 8);
		m[i].fd = strcmp(path, "-") == 0 ? -1 : open_member(path);
		if (strcmp(path, "-") != 0 && m[i].fd < 0)
			return 1;
	}
	out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (out < 0) {
		fprintf(stderr, "archive-driver: %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	rc = kiln_archive_write(out, f, m, n, mtime, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	else
		printf("extension %s\n", kiln_archive_format_ext(f));
	if (close(out) != 0 && rc == 0) {
		fprintf(stderr, "archive-driver: close: %s\n", strerror(errno));
		rc = -1;
	}
	for (i = 0; i < n; i++)
		if (m[i].fd >= 0)
			close(m[i].fd);
	free(m);
	return rc == 0 ? 0 : 1;
}
