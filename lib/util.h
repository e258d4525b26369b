#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in milliseconds since the epoch. */
int64_t util_now_ms(void);
/* RFC 3339 UTC with milliseconds, "2026-11-26T11:40:31.123Z". */
void util_format_time(char *buf, size_t size, int64_t ms);
/* Strict decimal parse of the whole string into [min, max]; 0 or -1. */
int util_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);
/* mkdir -p with the given mode for created directories; 0 or -errno. */
int util_mkdir_p(const char *path, unsigned mode);
/*
 * Write len bytes of data as path, a file of directory dir, with mode:
 * into a new temporary file beside it (of a name no file had), fsync,
 * then into place and an fsync of dir, so that path is either the old
 * file or the whole new one.
 * noreplace: never over an existing path (link(2), not rename(2), so
 * that of two writers at once one wins and the other is told): 1 when
 * path exists.  -1 with err naming the file that failed.
 */
int util_write_atomic(const char *dir, const char *path, const void *data,
    size_t len, unsigned mode, bool noreplace, char *err, size_t errsize);
/* The reason phrase of an HTTP status (RFC 9110), or NULL for one this
 * code does not name. */
const char *util_http_reason(unsigned status);
/* The value of a hex digit, or -1. */
int util_hexval(char c);
/*
 * rm -rf path, never following symlinks, at any depth (walk.h); 0 (also
 * when absent) or the first -errno; -ESTALE when someone else moved a
 * directory of the tree meanwhile.
 */
int util_rmtree(const char *path);

/*
 * A repository's identity (malloc'd): its URL with the spellings of one
 * repository made equal: an absolute path is file://PATH; scheme and
 * host in lower case; repeated and trailing slashes and a trailing
 * ".git" gone.  "/srv/x", "file:///srv/x/" and "file:///srv//x.git" are
 * one repository; a fork (another path or host) is another.
 */
char *util_repo_identity(const char *repo);

/*
 * Text from outside (a file, a request) quoted in a message: the first
 * n bytes of s, cut at a character boundary with "..." when longer than
 * size allows, control characters as spaces.  Returns buf.
 */
char *util_snippet(char *buf, size_t size, const char *s, size_t n);

/*
 * Write a printf-formatted reason into buf (the `char *why, size_t size`
 * pair that checks fill) and return -1, so that a check says
 * `return util_errorf(why, size, "repo: ...")`.
 */
int util_errorf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

#endif
