/*
 * Deterministic release archives with libarchive (archives.h).
 *
 * A release is checked by its hash, so the same files must give the
 * same bytes on any host, at any time, for any user.  libarchive takes
 * much from its surroundings unless told otherwise, and each of these
 * is pinned here:
 * - entries get only what we set: no atime or ctime, no xattrs or ACLs
 *   (we never read them from the file), owner 0/0 "root", the caller's
 *   mode and mtime rather than the file's;
 * - gzip writes the current time into its header unless "!timestamp";
 * - the padding of the last block depends on the type of the output
 *   when libarchive opens an fd itself: we give it a write callback and
 *   ask for no padding;
 * - zip's DOS times are local times (localtime_r): TZ is UTC meanwhile;
 * - names are printable ASCII, so the locale's character set (which
 *   libarchive converts names from) changes nothing.
 * The members are sorted, so the caller's order does not matter either.
 *
 * Members come from a build: their fds are checked (regular files only,
 * never a FIFO that would block a read) and read with pread, a block at
 * a time.  A file that changes size while it is written is an error,
 * not a silently short entry.
 */
#include "config.h"

/* libarchive's own header (this directory's is archives.h: a header of
 * ours named archive.h would shadow it wherever worker/ is on the
 * include path). */
#include <archive.h>
#include <archive_entry.h>
#ifndef ARCHIVE_VERSION_NUMBER
#error "<archive.h> must be libarchive's"
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archives.h"
#include "util.h"

#define COPY_BLOCK (64 * 1024)

static const struct {
	const char *name;
	enum kiln_archive_format f;
} formats[] = {
	{ "tar.gz", KILN_AR_TAR_GZ }, { "tgz", KILN_AR_TAR_GZ },
	{ "tar.xz", KILN_AR_TAR_XZ }, { "txz", KILN_AR_TAR_XZ },
	{ "tar.zst", KILN_AR_TAR_ZST }, { "tzst", KILN_AR_TAR_ZST },
	{ "tar", KILN_AR_TAR }, { "zip", KILN_AR_ZIP },
};

int
kiln_archive_format_parse(const char *s, enum kiln_archive_format *out)
{
	size_t i;

	for (i = 0; s != NULL && i < ARRAY_SIZE(formats); i++)
		if (strcmp(s, formats[i].name) == 0) {
			*out = formats[i].f;
			return 0;
		}
	return -1;
}

const char *
kiln_archive_format_ext(enum kiln_archive_format f)
{
	switch (f) {
	case KILN_AR_TAR_GZ:
		return ".tar.gz";
	case KILN_AR_TAR_XZ:
		return ".tar.xz";
	case KILN_AR_TAR_ZST:
		return ".tar.zst";
	case KILN_AR_TAR:
		return ".tar";
	case KILN_AR_ZIP:
		return ".zip";
	}
	return NULL;
}

/* A member's name quoted in a message (it may be anything). */
static const char *
shown(char *buf, size_t size, const char *name)
{
	if (name == NULL)
		return "(null)";
	return util_snippet(buf, size, name, strlen(name));
}

/* The name without its trailing '/': what two members must not share. */
static size_t
keylen(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && name[n - 1] == '/' ? n - 1 : n;
}

static int
keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
cmp_name(const void *pa, const void *pb)
{
	const struct kiln_archive_member *a = *(const struct kiln_archive_member *const *)pa;
	const struct kiln_archive_member *b = *(const struct kiln_archive_member *const *)pb;

	return strcmp(a->name, b->name);
}

static int
cmp_key(const void *pa, const void *pb)
{
	const struct kiln_archive_member *a = *(const struct kiln_archive_member *const *)pa;
	const struct kiln_archive_member *b = *(const struct kiln_archive_member *const *)pb;

	return keycmp(a->name, keylen(a->name), b->name, keylen(b->name));
}

/* The member whose key is name[0..len) in the key-sorted v, or NULL. */
static const struct kiln_archive_member *
find_key(const struct kiln_archive_member *const *v, size_t n,
    const char *name, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = keycmp(v[mid]->name, keylen(v[mid]->name), name, len);

		if (c == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Is name acceptable inside an archive?  0, or -1 with why. */
static int
check_name(const char *name, char *why, size_t size)
{
	size_t len, i, start = 0;

	if (name == NULL || name[0] == '\0')
		return util_errorf(why, size, "empty name");
	len = strlen(name);
	if (len > KILN_ARCHIVE_NAME_MAX)
		return util_errorf(why, size, "name longer than %d bytes",
		    KILN_ARCHIVE_NAME_MAX);
	if (name[0] == '/')
		return util_errorf(why, size, "absolute name");
	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c != '\0' && c != '/') {
			if (c < 0x20 || c > 0x7e || c == '\\')
				return util_errorf(why, size, "byte 0x%02x at %zu: "
				    "names are printable ASCII without '\\'", c, i);
			continue;
		}
		if (c == '\0' && i == start && i > 0)
			break;	/* the trailing '/' of a directory */
		if (i == start)
			return util_errorf(why, size, "empty path component");
		if ((i - start == 1 && name[start] == '.') ||
		    (i - start == 2 && name[start] == '.' && name[start + 1] == '.'))
			return util_errorf(why, size, "\".\" or \"..\" component");
		start = i + 1;
	}
	return 0;
}

/* Check every member and sort them by name into *out (malloc'd). */
static int
check_members(const struct kiln_archive_member *m, size_t n,
    const struct kiln_archive_member ***out, char *err, size_t errsize)
{
	const struct kiln_archive_member **byname = NULL, **bykey = NULL;
	char why[128], q[160];
	size_t i, j;
	int rc = -1;

	if (n > KILN_ARCHIVE_MEMBERS_MAX) {
		snprintf(err, errsize, "archive: %zu members, more than %d", n,
		    KILN_ARCHIVE_MEMBERS_MAX);
		return -1;
	}
	byname = calloc(n ? n : 1, sizeof *byname);
	bykey = calloc(n ? n : 1, sizeof *bykey);
	if (byname == NULL || bykey == NULL) {
		snprintf(err, errsize, "archive: out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *name = m[i].name;
		struct stat st;
		int dir;

		if (check_name(name, why, sizeof why) != 0) {
			snprintf(err, errsize, "archive member \"%s\": %s",
			    shown(q, sizeof q, name), why);
			goto out;
		}
		dir = name[strlen(name) - 1] == '/';
		if ((m[i].mode & ~0777u) != 0) {
			snprintf(err, errsize, "archive member \"%s\": mode %#o "
			    "has more than permission bits", shown(q, sizeof q, name),
			    m[i].mode);
			goto out;
		}
		if (dir && m[i].fd != -1) {
			snprintf(err, errsize, "archive member \"%s\": a directory "
			    "entry (trailing '/') takes no file", shown(q, sizeof q, name));
			goto out;
		}
		if (!dir) {
			if (m[i].fd < 0) {
				snprintf(err, errsize, "archive member \"%s\": no file "
				    "(a directory's name ends in '/')",
				    shown(q, sizeof q, name));
				goto out;
			}
			if (fstat(m[i].fd, &st) != 0) {
				snprintf(err, errsize, "archive member \"%s\": fstat: %s",
				    shown(q, sizeof q, name), strerror(errno));
				goto out;
			}
			if (!S_ISREG(st.st_mode)) {
				snprintf(err, errsize, "archive member \"%s\": not a "
				    "regular file (%s)", shown(q, sizeof q, name),
				    S_ISDIR(st.st_mode) ? "a directory" :
				    S_ISFIFO(st.st_mode) ? "a FIFO" : "another type");
				goto out;
			}
		}
		byname[i] = bykey[i] = &m[i];
	}
	qsort(byname, n, sizeof *byname, cmp_name);
	qsort(bykey, n, sizeof *bykey, cmp_key);
	for (i = 1; i < n; i++)
		if (cmp_key(&bykey[i - 1], &bykey[i]) == 0) {
			snprintf(err, errsize, "archive member \"%s\": named twice",
			    shown(q, sizeof q, bykey[i]->name));
			goto out;
		}
	/* A file cannot also be a directory holding other members. */
	for (i = 0; i < n; i++) {
		const char *name = m[i].name;
		size_t len = keylen(name);

		for (j = 0; j < len; j++) {
			const struct kiln_archive_member *p;

			if (name[j] != '/')
				continue;
			p = find_key(bykey, n, name, j);
			if (p != NULL && p->fd != -1) {
				snprintf(err, errsize, "archive member \"%s\": its "
				    "parent is a file member",
				    shown(q, sizeof q, name));
				goto out;
			}
		}
	}
	*out = byname;
	byname = NULL;
	rc = 0;
out:
	free(byname);
	free(bykey);
	return rc;
}

struct sink {
	int fd;
	int error;	/* errno of a failed write, 0 */
};

static la_ssize_t
sink_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct sink *s = data;
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(s->fd, p + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->error = w < 0 ? errno : EIO;
			archive_set_error(a, s->error, "write: %s",
			    strerror(s->error));
			return -1;
		}
		done += (size_t)w;
	}
	return (la_ssize_t)len;
}

static int
setup(struct archive *a, enum kiln_archive_format f)
{
	int rc;

	if (f == KILN_AR_ZIP) {
		if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
		    archive_write_zip_set_compression_deflate(a) != ARCHIVE_OK)
			return -1;
	} else if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK)
		return -1;
	switch (f) {
	case KILN_AR_TAR_GZ:
		rc = archive_write_add_filter_gzip(a);
		if (rc == ARCHIVE_OK)
			rc = archive_write_set_filter_option(a, "gzip",
			    "timestamp", NULL);
		break;
	case KILN_AR_TAR_XZ:
		rc = archive_write_add_filter_xz(a);
		break;
	case KILN_AR_TAR_ZST:
		rc = archive_write_add_filter_zstd(a);
		break;
	default:
		rc = archive_write_add_filter_none(a);
		break;
	}
	if (rc != ARCHIVE_OK)
		return -1;
	/* Unpadded whatever out_fd is (a file, a pipe). */
	return archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK ? 0 : -1;
}

/* Copy the member's file into the current entry: exactly size bytes. */
static int
copy_file(struct archive *a, const struct kiln_archive_member *mb,
    int64_t size, char *buf, char *err, size_t errsize)
{
	char q[160];
	int64_t off = 0;
	ssize_t r;

	while (off < size) {
		size_t want = size - off < COPY_BLOCK ? (size_t)(size - off) : COPY_BLOCK;
		size_t put = 0;

		r = pread(mb->fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errsize, "archive member \"%s\": read: %s",
			    shown(q, sizeof q, mb->name), strerror(errno));
			return -1;
		}
		if (r == 0) {
			snprintf(err, errsize, "archive member \"%s\": the file "
			    "shrank while it was archived", shown(q, sizeof q, mb->name));
			return -1;
		}
		while (put < (size_t)r) {
			la_ssize_t w = archive_write_data(a, buf + put, (size_t)r - put);

			if (w <= 0) {
				snprintf(err, errsize, "archive member \"%s\": %s",
				    shown(q, sizeof q, mb->name), archive_error_string(a) ?
				    archive_error_string(a) : "write failed");
				return -1;
			}
			put += (size_t)w;
		}
		off += r;
	}
	do
		r = pread(mb->fd, buf, 1, off);
	while (r < 0 && errno == EINTR);
	if (r != 0) {
		snprintf(err, errsize, "archive member \"%s\": the file %s while "
		    "it was archived", shown(q, sizeof q, mb->name),
		    r > 0 ? "grew" : "became unreadable");
		return -1;
	}
	return 0;
}

static int
write_all(struct archive *a, const struct kiln_archive_member *const *v,
    size_t n, int64_t mtime, char *err, size_t errsize)
{
	struct archive_entry *e = NULL;
	char *buf = NULL, q[160];
	size_t i;
	int rc = -1;

	if ((buf = malloc(COPY_BLOCK)) == NULL || (e = archive_entry_new()) == NULL) {
		snprintf(err, errsize, "archive: out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct kiln_archive_member *mb = v[i];
		int64_t size = 0;
		struct stat st;

		if (mb->fd != -1) {
			if (fstat(mb->fd, &st) != 0) {
				snprintf(err, errsize, "archive member \"%s\": fstat: %s",
				    shown(q, sizeof q, mb->name), strerror(errno));
				goto out;
			}
			size = st.st_size;
		}
		archive_entry_clear(e);
		archive_entry_set_pathname(e, mb->name);
		archive_entry_set_filetype(e, mb->fd == -1 ? AE_IFDIR : AE_IFREG);
		archive_entry_set_perm(e, mb->mode);
		archive_entry_set_size(e, size);
		archive_entry_set_mtime(e, (time_t)mtime, 0);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_uname(e, "root");
		archive_entry_set_gname(e, "root");
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			snprintf(err, errsize, "archive member \"%s\": %s",
			    shown(q, sizeof q, mb->name), archive_error_string(a));
			goto out;
		}
		if (mb->fd != -1 && copy_file(a, mb, size, buf, err, errsize) != 0)
			goto out;
		if (archive_write_finish_entry(a) != ARCHIVE_OK) {
			snprintf(err, errsize, "archive member \"%s\": %s",
			    shown(q, sizeof q, mb->name), archive_error_string(a));
			goto out;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		snprintf(err, errsize, "archive: %s", archive_error_string(a));
		goto out;
	}
	rc = 0;
out:
	archive_entry_free(e);
	free(buf);
	return rc;
}

int
kiln_archive_write(int out_fd, enum kiln_archive_format f,
    const struct kiln_archive_member *m, size_t n, int64_t mtime,
    char *err, size_t errsize)
{
	const struct kiln_archive_member **v = NULL;
	struct archive *a = NULL;
	struct sink sink = { out_fd, 0 };
	char *oldtz = NULL;
	int rc = -1, settz = 0;

	if (kiln_archive_format_ext(f) == NULL) {
		snprintf(err, errsize, "archive: unknown format %d", (int)f);
		return -1;
	}
	/* Before 1970 has no meaning for a release; zip cannot say it. */
	if (mtime < 0 || (int64_t)(time_t)mtime != mtime) {
		snprintf(err, errsize, "archive: mtime %lld out of range",
		    (long long)mtime);
		return -1;
	}
	if (check_members(m, n, &v, err, errsize) != 0)
		return -1;
	if ((a = archive_write_new()) == NULL) {
		snprintf(err, errsize, "archive: out of memory");
		goto out;
	}
	if (setup(a, f) != 0) {
		snprintf(err, errsize, "archive: %s format: %s",
		    kiln_archive_format_ext(f), archive_error_string(a) ?
		    archive_error_string(a) : "cannot be set up");
		goto out;
	}
	if (f == KILN_AR_ZIP) {
		const char *tz = getenv("TZ");

		if (tz != NULL && (oldtz = strdup(tz)) == NULL) {
			snprintf(err, errsize, "archive: out of memory");
			goto out;
		}
		if (setenv("TZ", "UTC0", 1) != 0) {
			snprintf(err, errsize, "archive: setenv TZ: %s", strerror(errno));
			goto out;
		}
		settz = 1;
		tzset();
	}
	if (archive_write_open(a, &sink, NULL, sink_write, NULL) != ARCHIVE_OK) {
		snprintf(err, errsize, "archive: open: %s", archive_error_string(a));
		goto out;
	}
	rc = write_all(a, v, n, mtime, err, errsize);
	if (rc != 0 && sink.error != 0)
		snprintf(err, errsize, "archive: write: %s", strerror(sink.error));
out:
	if (a != NULL)
		archive_write_free(a);
	if (settz) {
		if (oldtz != NULL)
			setenv("TZ", oldtz, 1);
		else
			unsetenv("TZ");
		tzset();
	}
	free(oldtz);
	free(v);
	return rc;
}
