/*
 * One image layer: a tar of the image's files (and the host's CA bundle
 * and time zones when asked), sorted, owned by 0:0, every mtime the
 * image's creation time, compressed with gzip as it is written.  The tar
 * is hashed before compression (the config's diff_id) and after (the
 * blob's digest) in the same pass, and only the compressed bytes are
 * kept, in an unlinked temporary file: a layer is never whole in memory.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "oci-int.h"
#include "utf8.h"
#include "util.h"
#include "xmalloc.h"

#define CHUNK 65536

int
oci_entries_add(struct oci_entries *es, const char *path, size_t len,
    enum oci_kind kind, unsigned mode, int fd, const char *target,
    char *err, size_t errsize)
{
	struct oci_entry *e;

	if (es->n >= OCI_MAX_ENTRIES)
		return util_errorf(err, errsize,
		    "a layer of more than %d entries", OCI_MAX_ENTRIES);
	if (es->n == es->cap) {
		es->cap = es->cap ? es->cap * 2 : 64;
		es->v = xreallocarray(es->v, es->cap, sizeof(*es->v));
	}
	e = &es->v[es->n++];
	e->path = xmalloc(len + 1);
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	e->kind = kind;
	e->mode = mode;
	e->fd = fd;
	e->target = target ? xstrdup(target) : NULL;
	return 0;
}

void
oci_entries_free(struct oci_entries *es)
{
	for (size_t i = 0; i < es->n; i++) {
		free(es->v[i].path);
		free(es->v[i].target);
	}
	free(es->v);
	es->v = NULL;
	es->n = es->cap = 0;
}

/*
 * An image path: absolute, valid UTF-8, no empty, "." or ".." component,
 * no trailing slash.  Its bytes go into the tar as they are.
 */
static int
check_path(const char *p, char *err, size_t errsize)
{
	char show[128];
	size_t n = strlen(p);
	const char *c, *s;

	util_snippet(show, sizeof(show), p, n);
	if (p[0] != '/' || n < 2)
		return util_errorf(err, errsize,
		    "image path \"%s\": not an absolute path to a file", show);
	if (n >= OCI_MAX_PATH)
		return util_errorf(err, errsize,
		    "image path \"%s\": longer than %d bytes", show,
		    OCI_MAX_PATH - 1);
	if (!utf8_valid(p, n))
		return util_errorf(err, errsize,
		    "image path \"%s\": not valid UTF-8", show);
	for (s = p + 1;; s = c + 1) {
		c = strchr(s, '/');
		size_t cl = c ? (size_t)(c - s) : strlen(s);
		if (cl == 0 || (cl == 1 && s[0] == '.') ||
		    (cl == 2 && s[0] == '.' && s[1] == '.'))
			return util_errorf(err, errsize,
			    "image path \"%s\": empty, \".\" or \"..\" component",
			    show);
		if (c == NULL)
			break;
	}
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct oci_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	/* Directories first among equals, so that merging keeps order. */
	if (c == 0)
		c = (x->kind != OCI_DIR) - (y->kind != OCI_DIR);
	return c;
}

/*
 * Every parent directory of every entry, then the entries sorted by
 * their bytes (a parent sorts before its children), a directory named
 * twice kept once; two entries of one path are an error.
 */
static int
finish_entries(struct oci_entries *es, char *err, size_t errsize)
{
	size_t n0 = es->n, i, j;
	char show[128];

	for (i = 0; i < n0; i++) {
		for (j = 0; es->v[i].path[j] != '\0'; j++) {
			if (es->v[i].path[j] != '/')
				continue;
			if (oci_entries_add(es, es->v[i].path, j, OCI_DIR, 0755,
			    -1, NULL, err, errsize) < 0)
				return -1;
		}
	}
	qsort(es->v, es->n, sizeof(*es->v), entry_cmp);
	for (i = 0, j = 0; i < es->n; i++) {
		if (j > 0 && strcmp(es->v[j - 1].path, es->v[i].path) == 0) {
			if (es->v[i].kind != OCI_DIR) {
				util_snippet(show, sizeof(show), es->v[i].path,
				    strlen(es->v[i].path));
				return util_errorf(err, errsize,
				    "image path \"/%s\": given twice, or both "
				    "a file and a directory", show);
			}
			free(es->v[i].path);
			free(es->v[i].target);
			continue;
		}
		es->v[j++] = es->v[i];
	}
	es->n = j;
	return 0;
}

/* Where the tar goes: hashed, compressed, hashed again, written to fd. */
struct sink {
	int fd;
	z_stream z;
	crypto_hash_sha256_state tar_sha, gz_sha;
	int64_t gz_size;
	unsigned char out[CHUNK];
	char err[256];
};

static int
sink_put(struct sink *s, size_t n)
{
	size_t off = 0;
	ssize_t w;

	crypto_hash_sha256_update(&s->gz_sha, s->out, n);
	while (off < n) {
		w = write(s->fd, s->out + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(s->err, sizeof(s->err),
			    "writing the layer's temporary file: %s",
			    strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	s->gz_size += (int64_t)n;
	return 0;
}

static int
sink_deflate(struct sink *s, const void *buf, size_t len, int flush)
{
	int zrc;

	s->z.next_in = (Bytef *)(uintptr_t)buf;
	s->z.avail_in = (uInt)len;
	do {
		s->z.next_out = s->out;
		s->z.avail_out = sizeof(s->out);
		zrc = deflate(&s->z, flush);
		if (zrc == Z_STREAM_ERROR) {
			snprintf(s->err, sizeof(s->err), "deflate failed");
			return -1;
		}
		if (sink_put(s, sizeof(s->out) - s->z.avail_out) < 0)
			return -1;
	} while (s->z.avail_out == 0 || (flush == Z_FINISH &&
	    zrc != Z_STREAM_END));
	return 0;
}

static la_ssize_t
sink_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct sink *s = data;

	if (len > CHUNK * 16)	/* keeps avail_in within uInt */
		len = CHUNK * 16;
	crypto_hash_sha256_update(&s->tar_sha, buf, len);
	if (sink_deflate(s, buf, len, Z_NO_FLUSH) < 0) {
		archive_set_error(a, EIO, "%s", s->err);
		return -1;
	}
	return (la_ssize_t)len;
}

static void
digest_hex(crypto_hash_sha256_state *st, char out[OCI_DIGEST_SIZE])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_final(st, h);
	memcpy(out, "sha256:", 7);
	sodium_bin2hex(out + 7, OCI_DIGEST_SIZE - 7, h, sizeof(h));
}

/*
 * A temporary file nobody else can open: O_TMPFILE has no name at all;
 * where the filesystem has no O_TMPFILE, mkstemp's name is unlinked at
 * once.
 */
static int
tmp_open(const char *tmpdir, char *err, size_t errsize)
{
	char *path;
	int fd;

	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return util_errorf(err, errsize, "%s: temporary file: %s",
		    tmpdir, strerror(errno));
	path = xmalloc(strlen(tmpdir) + sizeof("/kiln-layer.XXXXXX"));
	strcpy(path, tmpdir);
	strcat(path, "/kiln-layer.XXXXXX");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		util_errorf(err, errsize, "%s: temporary file: %s", tmpdir,
		    strerror(errno));
	else
		unlink(path);
	free(path);
	return fd;
}

/* A regular file's bytes into the tar: exactly its size, else an error. */
static int
copy_file(struct archive *a, struct archive_entry *ae, int fd,
    const char *path, char *err, size_t errsize)
{
	unsigned char buf[CHUNK];
	struct stat st;
	off_t off = 0;
	ssize_t r;

	if (fstat(fd, &st) < 0)
		return util_errorf(err, errsize, "/%s: fstat: %s", path,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return util_errorf(err, errsize,
		    "/%s: the input is not a regular file", path);
	archive_entry_set_size(ae, st.st_size);
	if (archive_write_header(a, ae) != ARCHIVE_OK)
		return util_errorf(err, errsize, "/%s: layer: %s", path,
		    archive_error_string(a));
	/* pread: the caller's offset does not matter and is not moved. */
	while (off < st.st_size) {
		size_t want = sizeof(buf);
		if ((off_t)want > st.st_size - off)
			want = (size_t)(st.st_size - off);
		r = pread(fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return util_errorf(err, errsize, "/%s: read: %s", path,
			    strerror(errno));
		if (r == 0)
			return util_errorf(err, errsize,
			    "/%s: shrank while it was read", path);
		if (archive_write_data(a, buf, (size_t)r) != r)
			return util_errorf(err, errsize, "/%s: layer: %s",
			    path, archive_error_string(a));
		off += r;
	}
	do
		r = pread(fd, buf, 1, off);
	while (r < 0 && errno == EINTR);
	if (r != 0)
		return util_errorf(err, errsize,
		    "/%s: grew while it was read", path);
	return 0;
}

static int
write_entry(struct archive *a, const struct oci_entry *e, int64_t created,
    char *err, size_t errsize)
{
	struct archive_entry *ae = archive_entry_new();
	int fd = -1, rc = -1;

	/*
	 * The _utf8 setters: the bytes we give are the bytes stored, not a
	 * conversion through the process's locale.
	 */
	archive_entry_set_pathname_utf8(ae, e->path);
	archive_entry_set_perm(ae, e->mode);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, created, 0);
	switch (e->kind) {
	case OCI_DIR:
		archive_entry_set_filetype(ae, AE_IFDIR);
		break;
	case OCI_SYMLINK:
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_symlink_utf8(ae, e->target);
		break;
	case OCI_FILE:
	case OCI_HOSTFILE:
		archive_entry_set_filetype(ae, AE_IFREG);
		if (e->kind == OCI_HOSTFILE &&
		    (fd = oci_host_open(e->path, err, errsize)) < 0)
			goto out;
		rc = copy_file(a, ae, e->kind == OCI_FILE ? e->fd : fd,
		    e->path, err, errsize);
		goto out;
	}
	if (archive_write_header(a, ae) != ARCHIVE_OK) {
		util_errorf(err, errsize, "/%s: layer: %s", e->path,
		    archive_error_string(a));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	archive_entry_free(ae);
	return rc;
}

static int
collect(struct oci_entries *es, const struct oci_image *img, char *err,
    size_t errsize)
{
	char show[128];

	for (size_t i = 0; i < img->nfiles; i++) {
		const struct oci_file *f = &img->files[i];
		if (f->path == NULL || check_path(f->path, err, errsize) < 0) {
			if (f->path == NULL)
				util_errorf(err, errsize,
				    "file %zu: no image path", i);
			return -1;
		}
		if (f->mode & ~0777u) {
			util_snippet(show, sizeof(show), f->path,
			    strlen(f->path));
			return util_errorf(err, errsize,
			    "%s: mode %o: only permission bits (0777) are "
			    "allowed", show, f->mode);
		}
		if (oci_entries_add(es, f->path + 1, strlen(f->path + 1),
		    OCI_FILE, f->mode, f->fd, NULL, err, errsize) < 0)
			return -1;
	}
	if (img->ca_certs && oci_host_certs(es, err, errsize) < 0)
		return -1;
	if (img->tzdata && oci_host_zoneinfo(es, err, errsize) < 0)
		return -1;
	return finish_entries(es, err, errsize);
}

int
oci_layer_build(const struct oci_image *img, int64_t created,
    const char *tmpdir, int *out_fd, char gz_digest[OCI_DIGEST_SIZE],
    int64_t *gz_size, char diff_id[OCI_DIGEST_SIZE], char *err,
    size_t errsize)
{
	struct oci_entries es = { 0 };
	struct archive *a = NULL;
	struct sink *s;
	bool zinit = false;
	int rc = -1;

	s = xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (collect(&es, img, err, errsize) < 0)
		goto out;
	if ((s->fd = tmp_open(tmpdir, err, errsize)) < 0)
		goto out;
	/*
	 * gzip through zlib itself: its header has no name and a zero
	 * mtime, so the blob depends on the tar alone.
	 */
	if (deflateInit2(&s->z, 9, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		util_errorf(err, errsize, "deflateInit2 failed");
		goto out;
	}
	zinit = true;
	crypto_hash_sha256_init(&s->tar_sha);
	crypto_hash_sha256_init(&s->gz_sha);
	a = archive_write_new();
	/* pax only where ustar cannot say it (long or non-ASCII names). */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open(a, s, NULL, sink_write, NULL) != ARCHIVE_OK) {
		util_errorf(err, errsize, "layer: %s", archive_error_string(a));
		goto out;
	}
	for (size_t i = 0; i < es.n; i++)
		if (write_entry(a, &es.v[i], created, err, errsize) < 0)
			goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		util_errorf(err, errsize, "layer: %s", archive_error_string(a));
		goto out;
	}
	if (sink_deflate(s, NULL, 0, Z_FINISH) < 0) {
		util_errorf(err, errsize, "layer: %s", s->err);
		goto out;
	}
	digest_hex(&s->tar_sha, diff_id);
	digest_hex(&s->gz_sha, gz_digest);
	*gz_size = s->gz_size;
	*out_fd = s->fd;
	s->fd = -1;
	rc = 0;
out:
	if (a != NULL)
		archive_write_free(a);
	if (zinit)
		deflateEnd(&s->z);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	oci_entries_free(&es);
	return rc;
}
