/*
 * What an image takes from the host: the CA bundle and the time zone
 * tree.  /usr/share/zoneinfo holds symlinks (Cuba -> America/Havana, and
 * on some hosts absolute ones): they go into the layer as symlinks, and
 * nothing here ever follows one, neither while walking the tree nor when
 * opening a file of it later.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "oci-int.h"
#include "util.h"
#include "walk.h"
#include "xmalloc.h"

#define CERTS_PATH "etc/ssl/certs/ca-certificates.crt"
#define ZONEINFO_PATH "usr/share/zoneinfo"

int
oci_host_open(const char *path, char *err, size_t errsize)
{
	struct open_how how;
	struct stat st;
	char *abs;
	int fd, fl;

	/*
	 * openat2 refuses a symlink in any component, not only the last
	 * one, so a tree changed after the walk cannot lead us elsewhere;
	 * O_NONBLOCK keeps a FIFO from hanging the open.
	 */
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	abs = xmalloc(strlen(path) + 2);
	abs[0] = '/';
	strcpy(abs + 1, path);
	fd = (int)syscall(SYS_openat2, AT_FDCWD, abs, &how, sizeof(how));
	free(abs);
	if (fd < 0)
		return util_errorf(err, errsize, "/%s: %s%s", path,
		    strerror(errno), errno == ELOOP ?
		    " (a symlink on the way)" : "");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return util_errorf(err, errsize, "/%s: not a regular file",
		    path);
	}
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		close(fd);
		return util_errorf(err, errsize, "/%s: fcntl: %s", path,
		    strerror(errno));
	}
	return fd;
}

int
oci_host_certs(struct oci_entries *es, char *err, size_t errsize)
{
	int fd;

	/* Checked now, so that a host without the bundle fails early. */
	if ((fd = oci_host_open(CERTS_PATH, err, errsize)) < 0)
		return -1;
	close(fd);
	return oci_entries_add(es, CERTS_PATH, strlen(CERTS_PATH),
	    OCI_HOSTFILE, 0644, -1, NULL, err, errsize);
}

/* The walk's current directory as a path relative to "/". */
struct relpath {
	char *buf;
	size_t len, cap;
	size_t *lens;		/* the length before each level */
	size_t nlens, caplens;
};

static int
rel_push(struct relpath *r, const char *name, char *err, size_t errsize)
{
	size_t nl = strlen(name);

	if (r->len + 1 + nl >= OCI_MAX_PATH)
		return util_errorf(err, errsize,
		    "/%s: a path in it is longer than %d bytes", ZONEINFO_PATH,
		    OCI_MAX_PATH);
	if (r->nlens == r->caplens) {
		r->caplens = r->caplens ? r->caplens * 2 : 16;
		r->lens = xreallocarray(r->lens, r->caplens, sizeof(*r->lens));
	}
	r->lens[r->nlens++] = r->len;
	if (r->len + 2 + nl > r->cap) {
		r->cap = r->len + 2 + nl + 256;
		r->buf = xrealloc(r->buf, r->cap);
	}
	r->buf[r->len++] = '/';
	memcpy(r->buf + r->len, name, nl + 1);
	r->len += nl;
	return 0;
}

static void
rel_pop(struct relpath *r)
{
	if (r->nlens > 0)
		r->len = r->lens[--r->nlens];
	r->buf[r->len] = '\0';
}

/* One non-directory entry of the tree: a file or a symlink. */
static int
zone_entry(struct oci_entries *es, struct relpath *r,
    const struct walk_entry *e, char *err, size_t errsize)
{
	char target[OCI_MAX_PATH];
	struct stat st;
	ssize_t tl;
	int rc;

	if (rel_push(r, e->name, err, errsize) < 0)
		return -1;
	if (fstatat(e->fd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = util_errorf(err, errsize, "/%s: %s", r->buf,
		    strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		rc = oci_entries_add(es, r->buf, r->len, OCI_HOSTFILE, 0644,
		    -1, NULL, err, errsize);
	} else if (S_ISLNK(st.st_mode)) {
		tl = readlinkat(e->fd, e->name, target, sizeof(target));
		if (tl < 0)
			rc = util_errorf(err, errsize, "/%s: readlink: %s",
			    r->buf, strerror(errno));
		else if ((size_t)tl >= sizeof(target) || tl == 0)
			rc = util_errorf(err, errsize,
			    "/%s: symlink target empty or longer than %zu bytes",
			    r->buf, sizeof(target) - 1);
		else {
			target[tl] = '\0';
			rc = oci_entries_add(es, r->buf, r->len, OCI_SYMLINK,
			    0777, -1, target, err, errsize);
		}
	} else {
		rc = util_errorf(err, errsize,
		    "/%s: neither a file, a directory nor a symlink", r->buf);
	}
	rel_pop(r);
	return rc;
}

int
oci_host_zoneinfo(struct oci_entries *es, char *err, size_t errsize)
{
	struct relpath r = { 0 };
	struct walk *w = NULL;
	struct walk_entry e;
	char show[256];
	int rc = -1, wrc;

	/* The walk keeps one directory open and a heap stack, not the C stack. */
	if ((wrc = walk_open(&w, "/" ZONEINFO_PATH, 0)) < 0)
		return util_errorf(err, errsize, "/%s: %s", ZONEINFO_PATH,
		    strerror(-wrc));
	r.cap = sizeof(ZONEINFO_PATH) + 256;
	r.buf = xmalloc(r.cap);
	memcpy(r.buf, ZONEINFO_PATH, sizeof(ZONEINFO_PATH));
	r.len = sizeof(ZONEINFO_PATH) - 1;
	for (;;) {
		switch (walk_next(w, &e)) {
		case WALK_END:
			rc = 0;
			goto out;
		case WALK_ERROR:
			util_errorf(err, errsize, "%s: %s",
			    walk_show(w, &e, show, sizeof(show)),
			    strerror(e.error));
			goto out;
		case WALK_DIR:
			if (e.depth > 0 &&
			    rel_push(&r, e.name, err, errsize) < 0)
				goto out;
			if (oci_entries_add(es, r.buf, r.len, OCI_DIR, 0755,
			    -1, NULL, err, errsize) < 0)
				goto out;
			break;
		case WALK_DIR_DONE:
			if (e.depth > 0)
				rel_pop(&r);
			break;
		case WALK_FILE:
			if (zone_entry(es, &r, &e, err, errsize) < 0)
				goto out;
			break;
		}
	}
out:
	walk_close(w);
	free(r.buf);
	free(r.lens);
	return rc;
}
