/*
 * bench/treewalk: the tree walks of kilnd and kiln-worker on their own,
 * for bench/tree.
 *
 *   treewalk deep DIR LEVELS        make DIR/d/d/... LEVELS deep (openat)
 *   treewalk wide DIR DIRS FILES    make DIRS directories of FILES files
 *   treewalk chown DIR UID GID      tree_chown (worker/tree.c)
 *   treewalk rm DIR                 util_rmtree (lib/util.c)
 *
 * chown and rm print "SECONDS" (wall, CLOCK_MONOTONIC) on stdout.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "worker/tree.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
make_deep(const char *top, long levels)
{
	int fd, sub;

	if (mkdir(top, 0755) != 0 ||
	    (fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	for (long i = 0; i < levels; i++) {
		if (mkdirat(fd, "d", 0755) != 0 ||
		    (sub = openat(fd, "d", O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
		fd = sub;
	}
	close(fd);
	return 0;
}

static int
make_wide(const char *top, long dirs, long files)
{
	char name[32];
	int fd, sub, f;

	if (mkdir(top, 0755) != 0 ||
	    (fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	for (long i = 0; i < dirs; i++) {
		snprintf(name, sizeof name, "dir%04ld", i);
		if (mkdirat(fd, name, 0755) != 0 || (sub = openat(fd, name,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			goto fail;
		for (long j = 0; j < files; j++) {
			snprintf(name, sizeof name, "file%04ld", j);
			if ((f = openat(sub, name, O_WRONLY | O_CREAT |
			    O_CLOEXEC, 0644)) < 0) {
				close(sub);
				goto fail;
			}
			close(f);
		}
		close(sub);
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

int
main(int argc, char **argv)
{
	char err[1024];
	double t0;
	int rc;

	if (argc == 4 && strcmp(argv[1], "deep") == 0) {
		if (make_deep(argv[2], atol(argv[3])) != 0)
			goto made;
	} else if (argc == 5 && strcmp(argv[1], "wide") == 0) {
		if (make_wide(argv[2], atol(argv[3]), atol(argv[4])) != 0)
			goto made;
	} else if (argc == 5 && strcmp(argv[1], "chown") == 0) {
		t0 = now();
		if (tree_chown(argv[2], (uid_t)atol(argv[3]),
		    (gid_t)atol(argv[4]), err, sizeof err) != 0) {
			fprintf(stderr, "treewalk: %s\n", err);
			return 1;
		}
		printf("%.3f\n", now() - t0);
	} else if (argc == 3 && strcmp(argv[1], "rm") == 0) {
		t0 = now();
		if ((rc = util_rmtree(argv[2])) != 0) {
			fprintf(stderr, "treewalk: rm %s: %s\n", argv[2],
			    strerror(-rc));
			return 1;
		}
		printf("%.3f\n", now() - t0);
	} else {
		fprintf(stderr, "usage: treewalk deep DIR LEVELS | wide DIR "
		    "DIRS FILES | chown DIR UID GID | rm DIR\n");
		return 2;
	}
	return 0;
made:
	fprintf(stderr, "treewalk: %s %s: %s\n", argv[1], argv[2],
	    strerror(errno));
	return 1;
}
