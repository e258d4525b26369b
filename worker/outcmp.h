/*
 * Two output trees compared (kiln-worker build --rebuild): the same set
 * of paths, the same type of each, the same symlink targets, the same
 * bytes of each regular file and the same permission bits
 * (OUTCMP_MODE_BITS).  Both trees
 * are hostile (builds made them): they are walked with lib/walk.c (no
 * recursion, no symlink followed), a path of one is looked up in the
 * other with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), files are
 * compared in fixed-size blocks, and anything but a regular file,
 * a directory or a symlink (a FIFO, a device, a socket) is a
 * difference by its type and is never opened.
 */
#ifndef KILN_WORKER_OUTCMP_H
#define KILN_WORKER_OUTCMP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The permission bits compared: all but group-write, which the umask
 * alone decides for whatever a build creates without naming a mode, and
 * which the two runs of --rebuild set differently on purpose (022 and
 * 002).  A umask that reaches the bytes of an output is still caught.
 */
#define OUTCMP_MODE_BITS (07777 & ~020)

/* Differences kept by name; the others are only counted. */
#define OUTCMP_MAX 100

struct outcmp {
	/* The OUTCMP_MAX smallest paths that differ (relative to the trees'
	 * tops, byte order), and whether each is a regular file in both
	 * trees whose bytes differ (one for diffoscope). */
	char *paths[OUTCMP_MAX];
	bool contents[OUTCMP_MAX];
	size_t n;
	size_t total;		/* every difference, kept or not */
};

/* Record one difference (path copied). */
void outcmp_add(struct outcmp *c, const char *path, bool contents);

/*
 * Compare tree a with tree b, adding each difference to c (zeroed by the
 * caller).  0, or -1 with err when a tree cannot be walked at all.
 */
int outcmp_trees(struct outcmp *c, const char *a, const char *b, char *err,
    size_t errsize);

void outcmp_free(struct outcmp *c);

#endif
