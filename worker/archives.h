/*
 * Release archives (tar.gz, tar.xz, tar.zst, tar, zip) written with
 * libarchive, byte for byte the same for the same members and mtime:
 * whatever the umask, TZ, locale, user or process that writes them.
 */
#ifndef KILN_ARCHIVE_H
#define KILN_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

enum kiln_archive_format {
	KILN_AR_TAR_GZ,
	KILN_AR_TAR_XZ,
	KILN_AR_TAR_ZST,
	KILN_AR_TAR,
	KILN_AR_ZIP
};

/* "tar.gz" (and "tgz"), "tar.xz" ("txz"), "tar.zst" ("tzst"), "tar", "zip": 0, or -1. */
int kiln_archive_format_parse(const char *s, enum kiln_archive_format *out);
/* ".tar.gz", ".tar.xz", ".tar.zst", ".tar", ".zip". */
const char *kiln_archive_format_ext(enum kiln_archive_format f);

struct kiln_archive_member {
	/*
	 * Path inside the archive: '/'-separated, relative, printable
	 * ASCII without '\', no empty, "." or ".." component, at most
	 * KILN_ARCHIVE_NAME_MAX bytes; a trailing '/' makes it a directory.
	 */
	const char *name;
	/* An open regular file, read from offset 0 with pread; -1 for a directory. */
	int fd;
	/* Permission bits written (0755, 0644; at most 0777), never the file's own. */
	unsigned mode;
};

#define KILN_ARCHIVE_NAME_MAX 1024
#define KILN_ARCHIVE_MEMBERS_MAX 100000

/*
 * Write the archive of the n members to out_fd (written sequentially:
 * a pipe will do).  Members go in bytewise order of their names; every
 * entry has mtime = mtime (seconds, >= 0), uid and gid 0, user and
 * group names "root", no atime, ctime, xattrs or ACLs.  gzip has no
 * file name and a zero timestamp; zip entries are deflated and carry
 * unix modes and mtime.  Files are streamed, never held whole in
 * memory, and must keep the size they had when the write began.
 * 0, or -1 with err naming the member (or the step) that was wrong:
 * a bad or duplicate name (also a file that is a directory's prefix),
 * an fd that is not a regular file, a mode beyond 0777.
 *
 * For zip, TZ is UTC while the call runs (libarchive writes zip's DOS
 * times in local time) and restored after: not for threaded callers.
 */
int kiln_archive_write(int out_fd, enum kiln_archive_format f,
    const struct kiln_archive_member *m, size_t n, int64_t mtime,
    char *err, size_t errsize);

#endif
