/*
 * The OCI layout tarball of kiln-worker push, read with a tar reader of
 * our own: the upload streams each blob from its place in the file with
 * pread, so the whole layout is never in memory and any blob can be sent
 * in the order the registry needs (blobs, then manifests, then the
 * index), whatever the order of the tarball.
 *
 * The tarball is kiln's own output, but it is a file on disk that anything
 * may have changed: every header is checked (checksum, octal fields,
 * names, types), and every blob is hashed and compared with its name
 * before push_layout_open returns, so that a corrupt layout is refused
 * before the first request.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "push.h"
#include "util.h"
#include "xmalloc.h"

#define BLOCK 512
/* A pax extended header larger than this is not kiln's. */
#define PAX_MAX 4096

static int
read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done,
		    (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* An octal field of a tar header (NUL or space ended). */
static int
octal(uint64_t *out, const char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && f[i] == ' ')
		i++;
	if (i == n || f[i] < '0' || f[i] > '7')
		return -1;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return -1;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	*out = v;
	return 0;
}

static bool
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

/* A layout file's name, or a directory of it: 1 file, 0 directory, -1 no. */
static int
layout_name(const char *n, bool dir)
{
	if (dir)
		return strcmp(n, "blobs") == 0 || strcmp(n, "blobs/sha256") == 0 ?
		    0 : -1;
	if (strcmp(n, "index.json") == 0 || strcmp(n, "oci-layout") == 0)
		return 1;
	if (strncmp(n, "blobs/sha256/", 13) == 0 && is_hex64(n + 13))
		return 1;
	return -1;
}

/*
 * The keys of a pax extended header that matter here: path and size.
 * Records are "LEN KEY=VALUE\n".
 */
static int
parse_pax(char *path, size_t pathsize, uint64_t *size, bool *has_size,
    const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t len = 0;
		size_t j = i, klen;
		const char *rec, *eq, *val;

		while (j < n && p[j] >= '0' && p[j] <= '9' && j - i < 6)
			len = len * 10 + (uint64_t)(p[j++] - '0');
		if (j == i || j >= n || p[j] != ' ' || len < 5 || len > n - i ||
		    p[i + len - 1] != '\n')
			return -1;
		rec = p + j + 1;
		eq = memchr(rec, '=', (size_t)(p + i + len - 1 - rec));
		if (eq == NULL)
			return -1;
		klen = (size_t)(eq - rec);
		val = eq + 1;
		if (klen == 4 && memcmp(rec, "path", 4) == 0) {
			size_t vlen = (size_t)(p + i + len - 1 - val);
			if (vlen >= pathsize || memchr(val, '\0', vlen) != NULL)
				return -1;
			memcpy(path, val, vlen);
			path[vlen] = '\0';
		} else if (klen == 4 && memcmp(rec, "size", 4) == 0) {
			uint64_t v = 0;
			const char *q;
			for (q = val; q < p + i + len - 1; q++) {
				if (*q < '0' || *q > '9' || v > UINT64_MAX / 10 - 9)
					return -1;
				v = v * 10 + (uint64_t)(*q - '0');
			}
			*size = v;
			*has_size = true;
		}
		i += len;
	}
	return 0;
}

/* Hash a blob where it lies and compare with its name. */
static int
check_blob(int fd, const struct push_entry *e, char *err, size_t errsize)
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], md[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof md + 1];
	uint64_t left = e->size, off = e->offset;

	crypto_hash_sha256_init(&st);
	while (left > 0) {
		size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
		if (read_at(fd, buf, n, off) != 0)
			return util_errorf(err, errsize, "%s: cannot read its %"
			    PRIu64 " bytes", e->name, e->size);
		crypto_hash_sha256_update(&st, buf, n);
		left -= n;
		off += n;
	}
	crypto_hash_sha256_final(&st, md);
	sodium_bin2hex(hex, sizeof hex, md, sizeof md);
	if (strcmp(hex, e->name + 13) != 0)
		return util_errorf(err, errsize, "%s: its content's digest is "
		    "sha256:%s: the layout is corrupt", e->name, hex);
	return 0;
}

/* The header at off.  1 entry, 0 end of archive, -1 error. */
static int
next_header(struct push_layout *l, uint64_t *off, uint64_t fsize,
    struct push_entry *e, char *err, size_t errsize)
{
	unsigned char h[BLOCK];
	char pax_path[sizeof e->name] = "", name[101];
	uint64_t pax_size = 0, sum, size;
	bool has_pax = false, has_size = false;

	for (;;) {
		unsigned s = 0;
		bool zero = true;

		if (*off + BLOCK > fsize)
			return util_errorf(err, errsize, "the tarball ends inside "
			    "a header (at byte %" PRIu64 ")", *off);
		if (read_at(l->fd, h, BLOCK, *off) != 0)
			return util_errorf(err, errsize, "read: %s",
			    strerror(errno));
		for (size_t i = 0; i < BLOCK; i++) {
			zero = zero && h[i] == 0;
			s += i >= 148 && i < 156 ? ' ' : h[i];
		}
		if (zero)
			return has_pax ? util_errorf(err, errsize, "a pax header "
			    "without its file") : 0;
		if (octal(&sum, (char *)h + 148, 8) != 0 || sum != s)
			return util_errorf(err, errsize, "bad tar header "
			    "checksum at byte %" PRIu64, *off);
		if (memcmp(h + 257, "ustar", 5) != 0)
			return util_errorf(err, errsize, "not a ustar header at "
			    "byte %" PRIu64, *off);
		if (octal(&size, (char *)h + 124, 12) != 0)
			return util_errorf(err, errsize, "bad size field at byte %"
			    PRIu64, *off);
		*off += BLOCK;
		if (h[156] != 'x')
			break;
		/* A pax header for the next entry: its path and size. */
		if (has_pax || size > PAX_MAX || *off + size > fsize)
			return util_errorf(err, errsize, "unexpected pax header at "
			    "byte %" PRIu64, *off - BLOCK);
		{
			char pax[PAX_MAX];
			if (read_at(l->fd, pax, (size_t)size, *off) != 0 ||
			    parse_pax(pax_path, sizeof pax_path, &pax_size,
			    &has_size, pax, (size_t)size) != 0)
				return util_errorf(err, errsize, "bad pax header "
				    "at byte %" PRIu64, *off - BLOCK);
		}
		has_pax = true;
		*off += (size + BLOCK - 1) / BLOCK * BLOCK;
	}
	if (has_size)
		size = pax_size;
	if (pax_path[0] != '\0')
		snprintf(name, sizeof name, "%s", pax_path);
	else if (h[345] != '\0')
		return util_errorf(err, errsize, "an entry with a ustar prefix "
		    "at byte %" PRIu64 " (not a layout name)", *off - BLOCK);
	else {
		memcpy(name, h, 100);
		name[100] = '\0';
	}
	/* "./x" is how some tars spell "x"; a trailing "/" marks a directory. */
	{
		char *n = name;
		size_t len;
		int kind;
		bool dir = h[156] == '5';

		if (strncmp(n, "./", 2) == 0)
			n += 2;
		len = strlen(n);
		if (len > 0 && n[len - 1] == '/')
			n[--len] = '\0';
		if (len == 0 || strcmp(n, ".") == 0) {
			if (!dir)
				return util_errorf(err, errsize, "an entry without "
				    "a name");
			kind = 0;
		} else
			kind = layout_name(n, dir);
		if ((dir && kind != 0) || (!dir && kind != 1) ||
		    (!dir && h[156] != '0' && h[156] != '\0')) {
			char q[96];
			return util_errorf(err, errsize, "entry '%s' (type "
			    "'%c'): a layout holds only the regular files "
			    "index.json, oci-layout and blobs/sha256/<digest>",
			    util_snippet(q, sizeof q, n, len),
			    h[156] >= 0x20 && h[156] < 0x7f ? h[156] : '?');
		}
		if (dir) {
			if (size != 0)
				return util_errorf(err, errsize, "directory %s "
				    "has a size", n);
			e->name[0] = '\0';
			return 1;
		}
		snprintf(e->name, sizeof e->name, "%s", n);
	}
	if (size > PUSH_BLOB_MAX || *off + size > fsize)
		return util_errorf(err, errsize, "%s: %" PRIu64 " bytes: %s",
		    e->name, size, size > PUSH_BLOB_MAX ? "too large" :
		    "the tarball ends before it does");
	if (strncmp(e->name, "blobs/", 6) != 0 && size > PUSH_JSON_MAX)
		return util_errorf(err, errsize, "%s: larger than %d bytes",
		    e->name, PUSH_JSON_MAX);
	e->offset = *off;
	e->size = size;
	*off += (size + BLOCK - 1) / BLOCK * BLOCK;
	return 1;
}

int
push_layout_open(struct push_layout *out, const char *path, char *err,
    size_t errsize)
{
	struct push_layout l = { .fd = -1 };
	struct stat st;
	uint64_t off = 0;
	char why[512];
	int fl, rc;

	if (sodium_init() < 0)
		return util_errorf(err, errsize, "libsodium failed to start");
	/* Not a FIFO that would block us, nor a symlink to something else. */
	l.fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC |
	    O_NOCTTY);
	if (l.fd < 0)
		return util_errorf(err, errsize, "layout %s: %s", path,
		    strerror(errno));
	if (fstat(l.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		util_errorf(err, errsize, "layout %s: not a regular file", path);
		goto fail;
	}
	fl = fcntl(l.fd, F_GETFL);
	if (fl < 0 || fcntl(l.fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		util_errorf(err, errsize, "layout %s: %s", path, strerror(errno));
		goto fail;
	}
	for (;;) {
		struct push_entry e;

		rc = next_header(&l, &off, (uint64_t)st.st_size, &e, why,
		    sizeof why);
		if (rc < 0) {
			util_errorf(err, errsize, "layout %s: %s", path, why);
			goto fail;
		}
		if (rc == 0)
			break;
		if (e.name[0] == '\0')
			continue;
		if (push_layout_find(&l, e.name) != NULL) {
			util_errorf(err, errsize, "layout %s: %s is there twice",
			    path, e.name);
			goto fail;
		}
		if (l.nentries == PUSH_ENTRIES_MAX) {
			util_errorf(err, errsize, "layout %s: more than %d files",
			    path, PUSH_ENTRIES_MAX);
			goto fail;
		}
		l.entries = xreallocarray(l.entries, l.nentries + 1,
		    sizeof *l.entries);
		l.entries[l.nentries++] = e;
	}
	for (size_t i = 0; i < l.nentries; i++)
		if (strncmp(l.entries[i].name, "blobs/", 6) == 0 &&
		    check_blob(l.fd, &l.entries[i], why, sizeof why) != 0) {
			util_errorf(err, errsize, "layout %s: %s", path, why);
			goto fail;
		}
	if (push_layout_find(&l, "index.json") == NULL ||
	    push_layout_find(&l, "oci-layout") == NULL) {
		util_errorf(err, errsize, "layout %s: no %s", path,
		    push_layout_find(&l, "index.json") == NULL ? "index.json" :
		    "oci-layout");
		goto fail;
	}
	*out = l;
	return 0;
fail:
	push_layout_close(&l);
	return -1;
}

void
push_layout_close(struct push_layout *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->entries);
	l->entries = NULL;
	l->nentries = 0;
}

/*
 * A linear search: a layout has a few dozen files, and the limit above
 * keeps a hostile one to PUSH_ENTRIES_MAX squared comparisons at worst.
 */
const struct push_entry *
push_layout_find(const struct push_layout *l, const char *name)
{
	for (size_t i = 0; i < l->nentries; i++)
		if (strcmp(l->entries[i].name, name) == 0)
			return &l->entries[i];
	return NULL;
}

const struct push_entry *
push_layout_blob(const struct push_layout *l, const char *digest)
{
	char name[sizeof l->entries[0].name];

	if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
		return NULL;
	snprintf(name, sizeof name, "blobs/sha256/%s", digest + 7);
	return push_layout_find(l, name);
}

int
push_layout_read(char **out, const struct push_layout *l,
    const struct push_entry *e, char *err, size_t errsize)
{
	char *buf;

	if (e->size > PUSH_JSON_MAX)
		return util_errorf(err, errsize, "%s: larger than %d bytes",
		    e->name, PUSH_JSON_MAX);
	buf = xmalloc((size_t)e->size + 1);
	if (read_at(l->fd, buf, (size_t)e->size, e->offset) != 0) {
		free(buf);
		return util_errorf(err, errsize, "%s: cannot read it", e->name);
	}
	buf[e->size] = '\0';
	*out = buf;
	return 0;
}
