#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static enum log_level current = LOG_LVL_INFO;
static bool journal;

static const char *const names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const int prio[] = { 3, 4, 6, 7 };

void
log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd sets JOURNAL_STREAM=dev:ino of the stream it gave us; only
	 * trust it when stderr really is that stream (not redirected). */
	journal = false;
	if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		journal = true;
}

void
log_set_level(enum log_level level)
{
	current = level;
}

enum log_level
log_get_level(void)
{
	return current;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return 0;
	}
	return -1;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048], ts[32];
	va_list ap;
	int n, m;

	if (level > current)
		return;
	if (journal)
		n = snprintf(line, sizeof line, "<%d>", prio[level]);
	else {
		util_format_time(ts, sizeof ts, util_now_ms());
		n = snprintf(line, sizeof line, "%s %s: ", ts, names[level]);
	}
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;	/* truncated: still one line */
	/* One event, one line: fold any newline an argument smuggled in. */
	for (char *p = line; p < line + n; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	line[n++] = '\n';
	/* A single write keeps lines from concurrent threads whole. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
