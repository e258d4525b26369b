/* Small helpers shared by kiln-worker's fetch and build modes. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "worker.h"

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
