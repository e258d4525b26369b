/*
 * kiln-worker build's status line (build-int.h): one JSON object on
 * --status-fd, which kilnd reads (kiln-worker(8), "Status").
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build-int.h"
#include "worker.h"
#include "xmalloc.h"

/* The times as a JSON object, or NULL when no build ran. */
json_t *
stage_times_json(const struct stage_times *tm)
{
	int64_t now = worker_mono_ms();

	if (tm->exec == 0 || tm->ended == 0)
		return NULL;
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "checkout", (json_int_t)tm->checkout,
	    "sandbox", (json_int_t)(tm->exec - tm->start - tm->checkout),
	    "chown", (json_int_t)tm->chown, "cgroup", (json_int_t)tm->cgroup,
	    "build", (json_int_t)(tm->ended - tm->exec),
	    "teardown", (json_int_t)(now - tm->ended),
	    "total", (json_int_t)(now - tm->start));
}

/* The status line; `times` and `extra`'s fields (both stolen) are added
 * when not NULL. */
void
write_status(int fd, enum build_status st, int value, const char *error,
    json_t *times, json_t *extra)
{
	json_t *o = NULL;
	char *line = NULL;

	if (fd < 0)
		return;
	switch (st) {
	case ST_EXITED:
		o = json_pack("{s:s, s:i}", "status", "exited", "code", value);
		break;
	case ST_SIGNALED:
		o = json_pack("{s:s, s:i}", "status", "signaled", "signal", value);
		break;
	case ST_TIMED_OUT:
		o = json_pack("{s:s}", "status", "timed_out");
		break;
	case ST_ERROR:
		o = json_pack("{s:s, s:s}", "status", "error", "error", error);
		break;
	}
	if (o != NULL && times != NULL)
		json_object_set_new(o, "times", times);
	else
		json_decref(times);
	if (o != NULL && extra != NULL)
		json_object_update(o, extra);
	json_decref(extra);
	if (o != NULL)
		line = json_dumps(o, JSON_COMPACT);
	if (line != NULL) {
		size_t len = strlen(line);
		line = xrealloc(line, len + 2);
		line[len] = '\n';
		line[len + 1] = '\0';
		if (worker_write_all(fd, line, len + 1) != 0)
			worker_msg("cannot write the status to fd %d: %s", fd,
			    strerror(errno));
	}
	free(line);
	json_decref(o);
}

