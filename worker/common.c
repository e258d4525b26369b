/* Small helpers shared by kiln-worker's fetch and build modes. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

/*
 * The most --config-fd reads: what Linux allows on a whole command line by
 * default (a quarter of an 8 MiB stack), which is where the options were
 * before they moved into a file descriptor.
 */
#define CONFIG_MAX (2U << 20)

void
worker_msg(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n, m;

	n = snprintf(buf, sizeof buf, "%s: ", WORKER_NAME);
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	/* One write: lines from the worker and the build do not interleave. */
	(void)worker_write_all(STDERR_FILENO, buf, (size_t)n);
}

int64_t
worker_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
worker_tie_to_parent(void)
{
	pid_t before = getppid();

	/*
	 * kilnd cancels a worker with SIGKILL or dies itself: either way the
	 * worker must not outlive it.  The parent may die between our start and
	 * the prctl; then we were reparented and getppid() changed.  (A parent
	 * that died before our first getppid() leaves us with pid 1 or a
	 * subreaper from the start; a worker has no way to tell that from a
	 * kilnd that is pid 1 in a container, so that is not refused.)
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return -1;
	if (getppid() != before)
		return -1;
	return 0;
}

int
worker_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const struct { const char *suffix; unsigned shift; } units[] = {
		{ "", 0 }, { "B", 0 },
		{ "K", 10 }, { "KB", 10 }, { "KiB", 10 },
		{ "M", 20 }, { "MB", 20 }, { "MiB", 20 },
		{ "G", 30 }, { "GB", 30 }, { "GiB", 30 },
		{ "T", 40 }, { "TB", 40 }, { "TiB", 40 },
	};
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return -1;
		v <<= units[i].shift;
		if (v < min || v > max)
			return -1;
		*out = v;
		return 0;
	}
	return -1;
}

int
worker_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
worker_close_fds_except(const int *keep, size_t n)
{
	unsigned lo = 3;

	/* keep[] is tiny: close the gaps between its members in fd order. */
	for (;;) {
		unsigned next = ~0U;
		for (size_t i = 0; i < n; i++)
			if (keep[i] >= (int)lo && (unsigned)keep[i] < next)
				next = (unsigned)keep[i];
		if (next == ~0U) {
			(void)close_range(lo, ~0U, 0);
			return;
		}
		if (next > lo)
			(void)close_range(lo, next - 1, 0);
		lo = next + 1;
	}
}

bool
worker_is_sha1_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return i == 40;
}

/*
 * Why a file descriptor: the build's pid 1 is a clone of the worker, and
 * /proc/1/cmdline is readable by the build.  On the command line, the
 * options (the state directory's work, mirror and cache paths, every
 * --env value) were the build's to read; in a file descriptor that is
 * closed before the sandbox exists, they are not.  The format is the one
 * of /proc/PID/cmdline, so every option passes unchanged, whatever it
 * holds, and the mode's own parser reads it as it reads argv.
 */
int
worker_config_args(char ***out, int *outc, const char *mode, const char *fd,
    char *err, size_t errsize)
{
	char *buf = NULL, **argv, *p;
	size_t len = 0, cap = 0, n = 0;
	int64_t v;
	int cfd;

	/*
	 * Not 0, 1 or 2: those are the build's own stdin, stdout and stderr,
	 * and a config fd among them could cross into the sandbox.
	 */
	if (util_parse_int64(fd, 3, INT_MAX, &v) != 0 ||
	    fcntl((int)v, F_GETFD) < 0) {
		snprintf(err, errsize, "--config-fd wants an open fd above 2, "
		    "got '%s'", fd);
		return -1;
	}
	cfd = (int)v;
	for (;;) {
		ssize_t r;

		if (cap - len < 65536) {
			cap = cap == 0 ? 65536 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		r = read(cfd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errsize, "--config-fd %d: read: %s", cfd,
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CONFIG_MAX) {
			snprintf(err, errsize, "--config-fd %d: more than %u "
			    "bytes of options", cfd, CONFIG_MAX);
			goto fail;
		}
	}
	close(cfd);
	cfd = -1;
	if (len == 0) {
		snprintf(err, errsize, "--config-fd %d: no options (want "
		    "arguments, each ended by a NUL byte)", (int)v);
		goto fail;
	}
	/* Cut short, or not this format at all: nothing of it is used. */
	if (buf[len - 1] != '\0') {
		snprintf(err, errsize, "--config-fd %d: the options do not end "
		    "with a NUL byte (each argument ends with one)", (int)v);
		goto fail;
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			n++;
	/* The vector and the strings in one block: one free(3). */
	argv = xmalloc((n + 2) * sizeof *argv + len);
	p = memcpy((char *)(argv + n + 2), buf, len);
	argv[0] = (char *)mode;
	for (size_t i = 1; i <= n; i++) {
		argv[i] = p;
		p += strlen(p) + 1;
	}
	argv[n + 1] = NULL;
	free(buf);
	*out = argv;
	*outc = (int)n + 1;
	return 0;
fail:
	if (cfd >= 0)
		close(cfd);
	free(buf);
	return -1;
}

/*
 * --credentials-fd FD: the project's credentials file (creds.h) as kilnd
 * read it, possibly followed by one NUL byte, read to its end and closed
 * before anything else runs.  Through a descriptor, never argv or the
 * environment: /proc/PID/cmdline and environ are readable by others.  A
 * message never quotes the content.
 */
int
worker_read_creds(struct creds **out, const char *fdstr, char *err, size_t errsize)
{
	char *buf = xmalloc(CREDS_MAX + 2), why[256];
	size_t len = 0;
	int64_t v;
	int fd, ret = -1;

	if (util_parse_int64(fdstr, 3, INT_MAX, &v) != 0 ||
	    fcntl((int)v, F_GETFD) < 0) {
		snprintf(err, errsize, "--credentials-fd wants an open fd "
		    "above 2");
		free(buf);
		return -1;
	}
	fd = (int)v;
	for (;;) {
		ssize_t r = read(fd, buf + len, CREDS_MAX + 2 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errsize, "--credentials-fd: read: %s",
			    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == CREDS_MAX + 2) {
			snprintf(err, errsize, "--credentials-fd: more than %d "
			    "bytes", CREDS_MAX);
			goto out;
		}
	}
	if (len > 0 && buf[len - 1] == '\0')
		len--;
	if (creds_parse(out, buf, len, why, sizeof why) != 0) {
		snprintf(err, errsize, "credentials: %s", why);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	creds_text_free(buf, CREDS_MAX + 2);
	return ret;
}
