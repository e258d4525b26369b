/*
 * lipo-driver OUT IN...: lipo_merge (worker/lipo.h) of the IN files into
 * OUT, for tests/integration/universal.sh.  Prints the error and exits 1
 * when the merge refuses.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/lipo.h"

/*
 * Open path for reading without blocking on a FIFO and without
 * following a symlink, then check the fd itself (never the path, which
 * could be swapped meanwhile) is a regular file.
 */
static int
open_regular(const char *path)
{
	struct stat st;
	int fd, fl;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "lipo-driver: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "lipo-driver: %s: not a regular file\n", path);
		close(fd);
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		fprintf(stderr, "lipo-driver: %s: fcntl: %s\n", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	int fds[LIPO_MAX_INPUTS], out, n, i, rc;
	char err[512];

	if (argc < 3 || argc - 2 > LIPO_MAX_INPUTS) {
		fprintf(stderr, "usage: lipo-driver OUT IN...\n");
		return 2;
	}
	n = argc - 2;
	for (i = 0; i < n; i++)
		if ((fds[i] = open_regular(argv[i + 2])) < 0)
			return 1;
	out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0755);
	if (out < 0) {
		fprintf(stderr, "lipo-driver: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	rc = lipo_merge(out, fds, (const char *const *)argv + 2, (size_t)n,
	    err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	if (close(out) != 0 && rc == 0) {
		fprintf(stderr, "lipo-driver: close %s: %s\n", argv[1], strerror(errno));
		rc = -1;
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	return rc == 0 ? 0 : 1;
}
