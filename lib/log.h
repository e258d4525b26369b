/*
 * Logging to stderr, one line per event.  Under systemd (JOURNAL_STREAM names
 * our stderr) each line carries a syslog priority prefix "<N>" that journald
 * understands and no timestamp (the journal has one); elsewhere a line is
 * "2026-11-26T11:40:31.123Z info: message".  Never colors.
 */
#ifndef KILN_LOG_H
#define KILN_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* 0 and *out set on a known name (error, warn, info, debug), else -1. */
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
