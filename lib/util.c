#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "walk.h"
#include "xmalloc.h"

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
util_format_time(char *buf, size_t size, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int
util_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
util_mkdir_p(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

/*
 * rm -rf on a tree a build may have made: as deep as it likes, with
 * symlinks anywhere and directories it made 0500 or 0000 (Go's module
 * cache does).  walk.h goes down and up without recursion and without
 * following symlinks; a file is unlinked where it is found, a directory
 * once it is empty.  It goes on past what it cannot remove and returns
 * the first error.
 */
int
util_rmtree(const char *path)
{
	struct walk *w;
	struct walk_entry e;
	int rc;

	if ((rc = walk_open(&w, path, WALK_CHMOD)) != 0)
		return rc == -ENOENT ? 0 : rc;
	while (walk_next(w, &e) != WALK_END) {
		int error = 0;

		if (e.type == WALK_FILE && unlinkat(e.fd, e.name, 0) != 0)
			error = errno;
		else if (e.type == WALK_DIR_DONE &&
		    unlinkat(e.fd, e.name, AT_REMOVEDIR) != 0)
			error = errno;
		else if (e.type == WALK_ERROR)
			error = e.error;
		if (error != 0 && error != ENOENT && rc == 0)
			rc = -error;
	}
	walk_close(w);
	return rc;
}

int
util_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
util_snippet(char *buf, size_t size, const char *s, size_t n)
{
	size_t max = size - 4, i;	/* room for "..." and the NUL */
	bool cut = n > max;

	if (cut) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' :
		    s[i];
	strcpy(buf + n, cut ? "..." : "");
	return buf;
}

char *
util_repo_identity(const char *repo)
{
	const char *sep = strstr(repo, "://"), *path;
	char *out, *o;
	size_t len;

	/* The longest result: "file://" + the input. */
	out = xmalloc(strlen(repo) + 8);
	o = out;
	if (repo[0] == '/' || sep == NULL) {
		o = stpcpy(o, "file://");
		path = repo;
	} else {
		for (const char *p = repo; p < sep; p++)
			*o++ = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		o = stpcpy(o, "://");
		path = sep + 3;
		/* The authority, user part kept as written, host lowered. */
		const char *end = path + strcspn(path, "/");
		const char *at = memchr(path, '@', (size_t)(end - path));
		const char *host = at ? at + 1 : path;
		for (const char *p = path; p < end; p++)
			*o++ = (char)(p >= host && *p >= 'A' && *p <= 'Z' ?
			    *p + 32 : *p);
		path = end;
	}
	/* The path: one slash between parts, none at the end. */
	char *pstart = o;
	for (const char *p = path; *p; p++)
		if (*p != '/' || o == pstart || o[-1] != '/')
			*o++ = *p;
	*o = '\0';
	for (;;) {
		len = strlen(out);
		if (len > 1 && out[len - 1] == '/' && out[len - 2] != '/')
			out[--len] = '\0';
		else if (len > 4 && strcmp(out + len - 4, ".git") == 0 &&
		    out[len - 5] != '/')
			out[len - 4] = '\0';
		else
			break;
	}
	return out;
}

int
util_errorf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return -1;
}

int
util_write_atomic(const char *dir, const char *path, const void *data,
    size_t len, unsigned mode, bool noreplace, char *err, size_t errsize)
{
	/* A new file of a name no one has (O_EXCL): a name derived from the
	 * pid alone is another writer's too (two pid namespaces sharing the
	 * directory), and whatever had it already (a hard link to another
	 * file, that writer's temporary) would be truncated and written. */
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	int fd, dfd, rc = -1;

	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		/* Nothing of ours to remove: tmp may name someone else's. */
		util_errorf(err, errsize, "cannot create a temporary file "
		    "for %s: %s", path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, (mode_t)mode) != 0 ||
	    write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		util_errorf(err, errsize, "cannot write %s: %s", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (noreplace && link(tmp, path) != 0) {
		rc = errno == EEXIST ? 1 : util_errorf(err, errsize,
		    "cannot link %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (noreplace)
		unlink(tmp);
	else if (rename(tmp, path) != 0) {
		util_errorf(err, errsize, "cannot rename %s: %s", tmp,
		    strerror(errno));
		unlink(tmp);
		goto out;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

const char *
util_http_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return NULL;
	}
}
