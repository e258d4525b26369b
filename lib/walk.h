/*
 * An iterative walk of a directory tree that a build may have made, for
 * the walks that change it (util_rmtree, kiln-worker's tree_chown).
 *
 * A build can nest directories as deep as it likes (100,000 levels take
 * it a few seconds), so the walk neither recurses nor keeps a descriptor
 * per level: it holds one open directory (two while it steps), and the
 * levels above are a heap array of (device, inode).  It goes down only
 * with openat(O_NOFOLLOW | O_DIRECTORY) relative to the open directory,
 * so it never follows a symlink, and it goes up with openat("..") and
 * checks that ".." is the directory it came from: another build sharing
 * the tree may move directories while we walk, and then the walk stops
 * with an error instead of going on somewhere else.
 */
#ifndef KILN_WALK_H
#define KILN_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

struct walk;

enum walk_type {
	WALK_END,	/* nothing more */
	WALK_DIR,	/* a directory, just opened, before its entries */
	WALK_FILE,	/* anything but a directory */
	WALK_DIR_DONE,	/* a directory after all its entries */
	WALK_ERROR	/* something could not be read or opened */
};

struct walk_entry {
	enum walk_type type;
	/*
	 * WALK_DIR: the directory itself.  WALK_FILE and WALK_DIR_DONE: the
	 * directory that holds name (AT_FDCWD and the path given to
	 * walk_open for the top).  Valid until the next walk_next.
	 */
	int fd;
	const char *name;	/* in its parent; "" for the top */
	size_t depth;		/* the top is 0, its entries 1 */
	struct stat st;		/* WALK_DIR: from fstat of fd */
	unsigned char d_type;	/* WALK_FILE: DT_REG, DT_LNK, ... */
	/*
	 * WALK_ERROR: an errno value.  The directory named is skipped; when
	 * fatal, the walk cannot go on (WALK_END next).  ESTALE: a directory
	 * was moved while we walked it.
	 */
	int error;
	bool fatal;
};

/*
 * Make directories the caller owns readable and writable (0700) before
 * opening them, as rm -rf needs; builds leave 0500 and 0000 ones.
 */
#define WALK_CHMOD 0x1

/*
 * Open the top directory (never through a symlink in its last part).
 * 0 or -errno.  The first entry is WALK_DIR of the top.
 */
int walk_open(struct walk **out, const char *path, int flags);
/* The next entry, also returned as the value. */
enum walk_type walk_next(struct walk *w, struct walk_entry *e);
void walk_close(struct walk *w);

/*
 * The entry's path for a message, bounded whatever the depth: the top,
 * then "/…/" and the name with its depth when deeper than 1; bytes
 * other than printable ASCII are shown as \xNN.  Returns buf.
 */
char *walk_show(const struct walk *w, const struct walk_entry *e, char *buf,
    size_t size);

#endif
