/*
 * GET /v1/events[?job=ID]: the live changes of jobs and targets as
 * server-sent events (text/event-stream), from daemon/events.h's ring.
 *
 *   retry: 3000
 *
 *   id: 1733050000123000
 *   event: job
 *   data: {"id":12,"state":"running"}
 *
 *   event: target   data: {"job":12,"target":"linux/amd64","state":...}
 *   event: resync   data: {}   (events were lost, or happened on another
 *                               host of a farm: refetch what is shown)
 *
 * A `: keep-alive` comment goes out when nothing else did for the
 * keep-alive period (15 s).  Last-Event-ID resumes after that event when
 * it is still in the ring, else with a resync.  ?job=ID keeps that job's
 * events (and every resync).  The stream reads the ring at its client's
 * pace: it holds no copy of any event, and the connection is suspended
 * while there is nothing to send.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../daemon/events.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

/* One event's lines: the ids, a target name (TARGET_NAME_MAX, escaped
 * at most 6 times over) and a state fit with room to spare. */
#define EVENT_TEXT_MAX 512

struct evstream {
	struct events_sub *sub;
	int64_t job;			/* 0: every job */
	bool started;			/* the retry line went out */
};

/* s into a JSON string's body (names are plain already: this is for
 * safety, never truncation, which the size above rules out). */
static size_t
json_esc(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return n;
}

/* The event's text, or 0 when the filter leaves it out. */
static int
format_event(const struct evstream *st, const struct event *e, char *buf,
    size_t size)
{
	char name[TARGET_NAME_MAX * 6 + 1];

	if (st->job != 0 && e->kind != EVENT_RESYNC && e->job != st->job)
		return 0;
	switch (e->kind) {
	case EVENT_JOB:
		return snprintf(buf, size, "id: %llu\nevent: job\ndata: "
		    "{\"id\":%lld,\"state\":\"%s\"%s}\n\n",
		    (unsigned long long)e->seq, (long long)e->job,
		    e->state ? e->state : "unknown",
		    e->signed_ ? ",\"signed\":true" : "");
	case EVENT_TARGET:
		json_esc(name, sizeof name, e->target);
		return snprintf(buf, size, "id: %llu\nevent: target\ndata: "
		    "{\"job\":%lld,\"target\":\"%s\",\"state\":\"%s\"}\n\n",
		    (unsigned long long)e->seq, (long long)e->job, name,
		    e->state ? e->state : "unknown");
	default:
		return snprintf(buf, size, "id: %llu\nevent: resync\n"
		    "data: {}\n\n", (unsigned long long)e->seq);
	}
}

static long
ev_read(void *cls, char *buf, size_t max, void (*wake)(void *), void *waker)
{
	struct evstream *st = cls;
	char text[EVENT_TEXT_MAX];
	struct event e;
	size_t n = 0;
	int k;

	if (!st->started) {
		static const char retry[] = "retry: 3000\n\n";

		if (max < sizeof retry - 1)
			return API_STREAM_ERROR;
		memcpy(buf, retry, sizeof retry - 1);
		st->started = true;
		events_sent(st->sub);
		return (long)(sizeof retry - 1);
	}
	/* As many whole events as fit; one that does not waits. */
	while (events_peek(st->sub, &e, wake, waker)) {
		k = format_event(st, &e, text, sizeof text);
		if (k < 0 || (size_t)k >= sizeof text)
			return API_STREAM_ERROR;
		if (n + (size_t)k > max)
			break;
		memcpy(buf + n, text, (size_t)k);
		n += (size_t)k;
		events_advance(st->sub);
	}
	if (n == 0 && events_keepalive_due(st->sub)) {
		static const char ka[] = ": keep-alive\n\n";

		if (max < sizeof ka - 1)
			return API_STREAM_ERROR;
		memcpy(buf, ka, sizeof ka - 1);
		n = sizeof ka - 1;
	}
	if (n > 0) {
		events_sent(st->sub);
		return (long)n;
	}
	return 0;	/* events_peek() took the waker */
}

static void
ev_free(void *cls)
{
	struct evstream *st = cls;

	events_unsubscribe(st->sub);
	free(st);
}

static enum api_result
get_events(struct api_req *req)
{
	const char *job = req->query(req, "job");
	const char *last = req->header(req, "Last-Event-ID");
	struct evstream *st;
	int64_t id = 0, last_id = 0;

	if (req->env->events == NULL) {
		api_reply_problem(req, 503, "live events are not available "
		    "here");
		return API_DONE;
	}
	if (job != NULL && util_parse_int64(job, 1, INT64_MAX, &id) != 0) {
		api_reply_problem(req, 400, "job must be a job id, not "
		    "'%.64s'", job);
		return API_DONE;
	}
	/* An id that is not ours (another server's, garbage): resync. */
	if (last != NULL && util_parse_int64(last, 1, INT64_MAX,
	    &last_id) != 0)
		last_id = INT64_MAX;
	st = xcalloc(1, sizeof *st);
	st->job = id;
	st->sub = events_subscribe(req->env->events, (uint64_t)last_id);
	{
		struct api_stream s = { ev_read, ev_free, st, 0, false };

		api_add_header(req, "Cache-Control", "no-store");
		api_add_header(req, "X-Accel-Buffering", "no");
		api_reply_stream(req, 200, "text/event-stream", &s);
	}
	return API_DONE;
}

const struct api_route api_events_routes[] = {
	{ "GET", "/v1/events", API_SCOPE_READ, get_events },
	{ NULL, NULL, 0, NULL },
};
