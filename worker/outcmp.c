/*
 * Two output trees compared (outcmp.h).  Tree a is walked once and each
 * of its entries is compared with the same path in b; then b is walked
 * for the paths that a lacks.  Memory stays bounded: the walk's own
 * state, one path of at most PATH_MAX bytes, two blocks, and the
 * OUTCMP_MAX names kept.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "outcmp.h"
#include "walk.h"
#include "xmalloc.h"

#define BLOCK (64 * 1024)

void
outcmp_add(struct outcmp *c, const char *path, bool contents)
{
	size_t i;

	c->total++;
	/* Keep the smallest names: a full list drops its largest. */
	if (c->n == OUTCMP_MAX) {
		if (strcmp(path, c->paths[OUTCMP_MAX - 1]) >= 0)
			return;
		free(c->paths[--c->n]);
	}
	for (i = c->n; i > 0 && strcmp(c->paths[i - 1], path) > 0; i--) {
		c->paths[i] = c->paths[i - 1];
		c->contents[i] = c->contents[i - 1];
	}
	c->paths[i] = xstrdup(path);
	c->contents[i] = contents;
	c->n++;
}

void
outcmp_free(struct outcmp *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->paths[i]);
	c->n = 0;
}

/*
 * path (relative) in the tree open at top, never through a symlink nor
 * out of the tree; a symlink at the end is opened itself.
 */
static int
open_beneath(int top, const char *path, int flags)
{
	struct open_how how;

	memset(&how, 0, sizeof how);
	how.flags = (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	return (int)syscall(SYS_openat2, top, path, &how, sizeof how);
}

/* Open a regular file for reading without blocking on what is not one. */
static int
open_regular(int fd)
{
	struct stat st;
	int fl;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Up to n bytes, less only at the end; -1 on a read error. */
static ssize_t
read_block(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* 1 when both hold the same bytes, 0 when not (or unreadable). */
static int
same_bytes(int fa, int fb, char *ba, char *bb)
{
	for (;;) {
		ssize_t na = read_block(fa, ba, BLOCK);
		ssize_t nb = read_block(fb, bb, BLOCK);

		if (na < 0 || nb < 0 || na != nb ||
		    memcmp(ba, bb, (size_t)na) != 0)
			return 0;
		if (na == 0)
			return 1;
	}
}

static bool
plain_type(mode_t m)
{
	return S_ISREG(m) || S_ISDIR(m) || S_ISLNK(m);
}

struct side {
	struct outcmp *c;
	int other;		/* the other tree's top (O_PATH) */
	bool full;		/* compare everything, not only presence */
	char *ba, *bb;		/* two blocks */
};

/*
 * One entry of the walked tree (dirfd + name, or the open directory fd
 * when name is NULL) against path in the other tree.
 */
static void
compare_entry(struct side *s, const char *path, int dirfd, const char *name,
    const struct stat *known)
{
	struct stat sa, sb;
	int ob = -1, fa = -1, fb = -1;
	char la[PATH_MAX], lb[PATH_MAX];
	ssize_t na, nb;
	bool differs = true, contents = false;

	ob = open_beneath(s->other, path, O_PATH);
	if (!s->full) {
		/* The second walk: only what the first tree lacks. */
		if (ob < 0)
			outcmp_add(s->c, path, false);
		else
			close(ob);
		return;
	}
	if (known != NULL)
		sa = *known;
	else if (fstatat(dirfd, name, &sa, AT_SYMLINK_NOFOLLOW) != 0)
		goto out;	/* gone or unreadable: a difference */
	if (ob < 0 || fstat(ob, &sb) != 0)
		goto out;
	/* A FIFO, a device or a socket is never opened, and never equal. */
	if (!plain_type(sa.st_mode) || (sa.st_mode & S_IFMT) !=
	    (sb.st_mode & S_IFMT))
		goto out;
	if (S_ISLNK(sa.st_mode)) {
		na = readlinkat(dirfd, name, la, sizeof la);
		nb = readlinkat(ob, "", lb, sizeof lb);
		differs = na < 0 || nb < 0 || na != nb ||
		    memcmp(la, lb, (size_t)na) != 0;
		goto out;
	}
	if ((sa.st_mode & OUTCMP_MODE_BITS) != (sb.st_mode & OUTCMP_MODE_BITS))
		goto out;
	if (S_ISDIR(sa.st_mode)) {
		differs = false;
		goto out;
	}
	if (sa.st_size != sb.st_size) {
		contents = true;
		goto out;
	}
	fa = open_regular(openat(dirfd, name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC));
	fb = open_regular(open_beneath(s->other, path, O_RDONLY |
	    O_NONBLOCK));
	if (fa < 0 || fb < 0)
		goto out;
	contents = true;
	differs = same_bytes(fa, fb, s->ba, s->bb) == 0;
out:
	if (differs)
		outcmp_add(s->c, path, contents && differs);
	if (ob >= 0)
		close(ob);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
}

/* path + "/" + name into full, or -1 when it would not fit. */
static int
join(char *full, size_t size, const char *path, size_t len, const char *name)
{
	int n = snprintf(full, size, "%.*s%s%s", (int)len, path,
	    len > 0 ? "/" : "", name);

	return n < 0 || (size_t)n >= size ? -1 : n;
}

static int
walk_side(struct side *s, const char *top, char *err, size_t errsize)
{
	struct walk *w = NULL;
	struct walk_entry e;
	char path[PATH_MAX], full[PATH_MAX], shown[PATH_MAX + 64];
	size_t len = 0, over = 0;	/* levels too deep to name */
	int rc, ret = -1;

	path[0] = '\0';
	if ((rc = walk_open(&w, top, 0)) != 0) {
		snprintf(err, errsize, "cannot open an output tree: %s",
		    strerror(-rc));
		return -1;
	}
	for (;;) {
		switch (walk_next(w, &e)) {
		case WALK_END:
			ret = 0;
			goto out;
		case WALK_DIR:
			if (e.depth == 0)
				break;
			if (over > 0 || join(full, sizeof full, path, len,
			    e.name) < 0) {
				/* Deeper than a path can name: counted under
				 * the deepest path that can. */
				if (over++ == 0)
					outcmp_add(s->c, path, false);
				break;
			}
			compare_entry(s, full, e.fd, "", &e.st);
			len = strlen(full);
			memcpy(path, full, len + 1);
			break;
		case WALK_DIR_DONE:
			if (e.depth == 0)
				break;
			if (over > 0) {
				over--;
				break;
			}
			while (len > 0 && path[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			path[len] = '\0';
			break;
		case WALK_FILE:
			if (over > 0)
				break;
			if (join(full, sizeof full, path, len, e.name) < 0) {
				outcmp_add(s->c, path, false);
				break;
			}
			compare_entry(s, full, e.fd, e.name, NULL);
			break;
		case WALK_ERROR:
			if (e.fatal) {
				walk_show(w, &e, shown, sizeof shown);
				snprintf(err, errsize, "cannot walk an output "
				    "tree at %s: %s", shown, strerror(e.error));
				goto out;
			}
			/* Unreadable: it cannot be shown to be the same. */
			if (over == 0 && join(full, sizeof full, path, len,
			    e.name) >= 0)
				outcmp_add(s->c, full, false);
			else
				outcmp_add(s->c, path, false);
			break;
		}
	}
out:
	walk_close(w);
	return ret;
}

int
outcmp_trees(struct outcmp *c, const char *a, const char *b, char *err,
    size_t errsize)
{
	struct side s = { .c = c };
	int ta = -1, tb = -1, ret = -1;

	ta = open(a, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	tb = open(b, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ta < 0 || tb < 0) {
		snprintf(err, errsize, "cannot open an output tree: %s",
		    strerror(errno));
		goto out;
	}
	s.ba = xmalloc(BLOCK);
	s.bb = xmalloc(BLOCK);
	s.other = tb;
	s.full = true;
	if (walk_side(&s, a, err, errsize) != 0)
		goto out;
	s.other = ta;
	s.full = false;
	if (walk_side(&s, b, err, errsize) != 0)
		goto out;
	ret = 0;
out:
	free(s.ba);
	free(s.bb);
	if (ta >= 0)
		close(ta);
	if (tb >= 0)
		close(tb);
	return ret;
}
