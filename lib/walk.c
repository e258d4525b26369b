/*
 * The iterative tree walk of walk.h.  Each directory is read once, from
 * start to end: its non-directories are handed to the caller as they
 * come, its subdirectories' names are kept in one heap buffer (names),
 * and then they are visited one by one, the last first.  The buffer is
 * a stack: a level's own name and its pending subdirectories lie after
 * those of the level above, so going up cuts it back.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walk.h"
#include "xmalloc.h"

#define SHOWN_NAME 64	/* bytes of a name shown in a message */

struct level {
	dev_t dev;
	ino_t ino;
	size_t name;		/* offset of its name in names */
	size_t pending;		/* offset of its first subdirectory to visit */
};

enum state { ST_TOP, ST_SCAN, ST_NEXT, ST_DONE };

struct walk {
	char *top;
	int flags;
	enum state state;
	int fd;			/* the deepest level's directory, or -1 */
	DIR *d;			/* its stream once read (owns fd), or NULL */
	struct stat top_st;
	struct level *lv;	/* lv[0] is the top */
	size_t n, cap;
	char *names;		/* NUL-terminated names; names[0] is "" */
	size_t len, size;
	size_t cut;		/* cut names back to this at the next step */
};

/*
 * open(O_NOFOLLOW) of a directory; with WALK_CHMOD, one that we may not
 * read is made 0700 first.  fchmodat(AT_SYMLINK_NOFOLLOW) changes the
 * inode it opened with O_PATH | O_NOFOLLOW, never a symlink's target.
 */
static int
open_dir(int flags, int dirfd, const char *name)
{
	const int oflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, oflags);

	if (fd < 0 && errno == EACCES && (flags & WALK_CHMOD)) {
		if (fchmodat(dirfd, name, 0700, AT_SYMLINK_NOFOLLOW) != 0) {
			errno = EACCES;
			return -1;
		}
		fd = openat(dirfd, name, oflags);
	}
	return fd;
}

/* rm -rf empties 0500 directories of its own too. */
static void
own_dir(int flags, int fd, struct stat *st)
{
	if ((flags & WALK_CHMOD) && (st->st_mode & S_IRWXU) != S_IRWXU &&
	    st->st_uid == geteuid() && fchmod(fd, 0700) == 0)
		st->st_mode = (st->st_mode & ~(mode_t)07777) | 0700;
}

int
walk_open(struct walk **out, const char *path, int flags)
{
	struct walk *w;
	struct stat st;
	int fd, rc;

	if ((fd = open_dir(flags, AT_FDCWD, path)) < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	own_dir(flags, fd, &st);
	w = xcalloc(1, sizeof *w);
	w->top = xstrdup(path);
	w->flags = flags;
	w->state = ST_TOP;
	w->fd = fd;
	w->top_st = st;
	w->cap = 64;
	w->lv = xreallocarray(NULL, w->cap, sizeof *w->lv);
	w->lv[0] = (struct level){ st.st_dev, st.st_ino, 0, 1 };
	w->n = 1;
	w->size = 4096;
	w->names = xmalloc(w->size);
	w->names[0] = '\0';
	w->len = 1;
	*out = w;
	return 0;
}

void
walk_close(struct walk *w)
{
	if (w == NULL)
		return;
	if (w->d != NULL)
		closedir(w->d);
	else if (w->fd >= 0)
		close(w->fd);
	free(w->top);
	free(w->lv);
	free(w->names);
	free(w);
}

static void
close_cur(struct walk *w)
{
	if (w->d != NULL)
		closedir(w->d);
	else
		close(w->fd);
	w->d = NULL;
	w->fd = -1;
}

static void
push_name(struct walk *w, const char *name)
{
	size_t n = strlen(name) + 1;

	while (w->len + n > w->size) {
		w->size *= 2;
		w->names = xrealloc(w->names, w->size);
	}
	memcpy(w->names + w->len, name, n);
	w->len += n;
}

/* An error about the deepest directory itself. */
static enum walk_type
cur_error(struct walk *w, struct walk_entry *e, int error, bool fatal)
{
	const struct level *l = &w->lv[w->n - 1];

	e->type = WALK_ERROR;
	e->name = w->names + l->name;
	e->depth = w->n - 1;
	e->error = error;
	e->fatal = fatal;
	if (fatal)
		w->state = ST_DONE;
	return e->type;
}

/* The next non-directory of the deepest directory, or WALK_END when it
 * has been read to its end (its subdirectories are then in names). */
static enum walk_type
scan(struct walk *w, struct walk_entry *e)
{
	struct dirent *de;

	if (w->d == NULL && (w->d = fdopendir(w->fd)) == NULL) {
		w->state = ST_NEXT;
		return cur_error(w, e, errno, false);
	}
	for (;;) {
		const char *name;
		unsigned char type;
		struct stat st;

		errno = 0;
		if ((de = readdir(w->d)) == NULL) {
			w->state = ST_NEXT;
			return errno ? cur_error(w, e, errno, false) : WALK_END;
		}
		name = de->d_name;
		if (name[0] == '.' && (name[1] == '\0' ||
		    (name[1] == '.' && name[2] == '\0')))
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(w->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				if (errno == ENOENT)
					continue;
				e->type = WALK_ERROR;
				e->error = errno;
				e->fd = w->fd;
				e->name = name;
				e->depth = w->n;
				return e->type;
			}
			type = IFTODT(st.st_mode);
		}
		if (type == DT_DIR) {
			push_name(w, name);
			continue;
		}
		e->type = WALK_FILE;
		e->fd = w->fd;
		e->name = name;
		e->depth = w->n;
		e->d_type = type;
		return e->type;
	}
}

/* Into the next subdirectory of the deepest directory. */
static enum walk_type
down(struct walk *w, struct walk_entry *e)
{
	const struct level *l = &w->lv[w->n - 1];

	while (w->len > l->pending) {
		size_t o = w->len - 1;
		const char *name;
		struct stat st;
		int fd;

		while (o > l->pending && w->names[o - 1] != '\0')
			o--;
		name = w->names + o;
		e->fd = w->fd;
		e->name = name;
		e->depth = w->n;
		if ((fd = open_dir(w->flags, w->fd, name)) < 0 ||
		    fstat(fd, &st) != 0) {
			e->error = errno;
			if (fd >= 0)
				close(fd);
			if (e->error == ENOENT) {	/* gone meanwhile */
				w->len = o;
				continue;
			}
			w->cut = o;
			if (e->error == ENOTDIR || e->error == ELOOP) {
				/* No longer a directory: the caller's. */
				e->type = WALK_FILE;
				e->d_type = DT_UNKNOWN;
				e->error = 0;
			} else
				e->type = WALK_ERROR;
			return e->type;
		}
		own_dir(w->flags, fd, &st);
		close_cur(w);
		w->fd = fd;
		if (w->n == w->cap) {
			w->cap *= 2;
			w->lv = xreallocarray(w->lv, w->cap, sizeof *w->lv);
		}
		w->lv[w->n++] = (struct level){ st.st_dev, st.st_ino, o,
		    w->len };
		e->type = WALK_DIR;
		e->fd = fd;
		e->st = st;
		w->state = ST_SCAN;
		return e->type;
	}
	return WALK_END;
}

/*
 * Back to the parent of the deepest directory, which is done.  ".." is
 * whatever holds the directory now: if that is not the directory we
 * came down from, the tree changed under us and the walk stops.  (A
 * directory removed meanwhile still has the one it was removed from.)
 */
static enum walk_type
up(struct walk *w, struct walk_entry *e)
{
	const struct level *l = &w->lv[w->n - 1];
	const struct level *parent = &w->lv[w->n - 2];
	struct stat st;
	int fd;

	fd = openat(w->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		int error = errno;
		if (fd >= 0)
			close(fd);
		return cur_error(w, e, error, true);
	}
	if (st.st_dev != parent->dev || st.st_ino != parent->ino) {
		close(fd);
		return cur_error(w, e, ESTALE, true);
	}
	close_cur(w);
	w->fd = fd;
	e->type = WALK_DIR_DONE;
	e->fd = fd;
	e->name = w->names + l->name;
	e->depth = w->n - 1;
	w->cut = l->name;
	w->n--;
	return e->type;
}

enum walk_type
walk_next(struct walk *w, struct walk_entry *e)
{
	memset(e, 0, sizeof *e);
	e->fd = -1;
	if (w->cut != 0) {
		w->len = w->cut;
		w->cut = 0;
	}
	for (;;) {
		switch (w->state) {
		case ST_TOP:
			w->state = ST_SCAN;
			e->type = WALK_DIR;
			e->fd = w->fd;
			e->name = "";
			e->st = w->top_st;
			return e->type;
		case ST_SCAN:
			if (scan(w, e) != WALK_END)
				return e->type;
			break;
		case ST_NEXT:
			if (down(w, e) != WALK_END)
				return e->type;
			if (w->n > 1)
				return up(w, e);
			close_cur(w);
			w->state = ST_DONE;
			e->type = WALK_DIR_DONE;
			e->fd = AT_FDCWD;
			e->name = w->top;
			return e->type;
		case ST_DONE:
			e->type = WALK_END;
			return e->type;
		}
	}
}

char *
walk_show(const struct walk *w, const struct walk_entry *e, char *buf,
    size_t size)
{
	char name[4 * SHOWN_NAME + 4];
	size_t j = 0, i;

	for (i = 0; e->name[i] != '\0' && i < SHOWN_NAME; i++) {
		unsigned char c = (unsigned char)e->name[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			name[j++] = (char)c;
		else
			j += (size_t)snprintf(name + j, sizeof name - j,
			    "\\x%02x", c);
	}
	strcpy(name + j, e->name[i] != '\0' ? "..." : "");
	if (e->depth == 0)
		snprintf(buf, size, "%s", w->top);
	else if (e->depth == 1)
		snprintf(buf, size, "%s/%s", w->top, name);
	else
		snprintf(buf, size, "%s/\u2026/%s (depth %zu)", w->top, name,
		    e->depth);
	return buf;
}
