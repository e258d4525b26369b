/*
 * A followed log as server-sent events (GET .../log?follow=1 with
 * Accept: text/event-stream), for browsers that read it with fetch():
 *
 *   event: log
 *   data: "<the next chunk of the log, one JSON string>"
 *
 * and, once the target ended, `event: end` with `data: {}`.  The chunks,
 * decoded and joined, are exactly what the plain answer gives.  A JSON
 * string holds text, not bytes: a character cut between two reads waits
 * for its rest, and with raw=1 (the file's bytes, not the view) each
 * invalid UTF-8 sequence becomes U+FFFD; every other byte is kept.
 * While the log does not grow, a `: keep-alive` comment goes out every
 * keep-alive period (the log's watch wakes the stream every few seconds
 * anyway, so no timer of its own is needed).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api.h"
#include "../daemon/events.h"
#include "../lib/sbuf.h"
#include "../lib/utf8.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

/* The most read from the inner stream at once. */
#define SSE_CHUNK 8192

struct log_sse {
	struct api_stream inner;
	struct sbuf out;		/* events not yet sent, from off */
	size_t off;
	char carry[4];			/* a character's start, cut off */
	size_t ncarry;
	int64_t last_ms;		/* when something was last sent */
	uint64_t keepalive_ms;
	bool ended;			/* `end` is in out */
};

/* One `log` event of s[0..n), made valid UTF-8 first. */
static int
add_log_event(struct log_sse *l, const char *s, size_t n)
{
	struct sbuf clean = { 0 };
	json_t *j;
	char *text;

	if (n == 0)
		return 0;
	if (!utf8_valid(s, n)) {
		utf8_sanitize(&clean, s, n);
		s = clean.p;
		n = clean.len;
	}
	j = json_stringn(s, n);
	text = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	sbuf_free(&clean);
	if (text == NULL)
		return -1;
	sbuf_adds(&l->out, "event: log\ndata: ");
	sbuf_adds(&l->out, text);
	sbuf_adds(&l->out, "\n\n");
	free(text);
	return 0;
}

/* Inner bytes (after the carry) into events: the last character, when
 * incomplete, waits in the carry for its rest. */
static int
take(struct log_sse *l, char *buf, size_t n)
{
	size_t whole = utf8_trim_partial(buf, n);

	if (n - whole > sizeof l->carry)
		whole = n;	/* cannot be a character's start */
	if (add_log_event(l, buf, whole) != 0)
		return -1;
	memcpy(l->carry, buf + whole, n - whole);
	l->ncarry = n - whole;
	return 0;
}

static long
sse_read(void *cls, char *buf, size_t max, void (*wake)(void *),
    void *waker)
{
	struct log_sse *l = cls;
	char in[sizeof l->carry + SSE_CHUNK];
	long n;

	for (;;) {
		if (l->off < l->out.len) {
			size_t k = l->out.len - l->off;

			if (k > max)
				k = max;
			memcpy(buf, l->out.p + l->off, k);
			l->off += k;
			if (l->off == l->out.len)
				l->out.len = l->off = 0;
			l->last_ms = util_now_ms();
			return (long)k;
		}
		if (l->ended)
			return API_STREAM_END;
		memcpy(in, l->carry, l->ncarry);
		n = l->inner.read(l->inner.cls, in + l->ncarry, SSE_CHUNK,
		    wake, waker);
		if (n > 0) {
			if (take(l, in, l->ncarry + (size_t)n) != 0)
				return API_STREAM_ERROR;
			continue;
		}
		if (n == 0) {
			if (util_now_ms() - l->last_ms <
			    (int64_t)l->keepalive_ms)
				return 0;
			sbuf_adds(&l->out, ": keep-alive\n\n");
			continue;
		}
		if (n != API_STREAM_END)
			return API_STREAM_ERROR;
		/* What is left of a cut character stands for U+FFFD. */
		if (add_log_event(l, in, l->ncarry) != 0)
			return API_STREAM_ERROR;
		l->ncarry = 0;
		sbuf_adds(&l->out, "event: end\ndata: {}\n\n");
		l->ended = true;
	}
}

static void
sse_free(void *cls)
{
	struct log_sse *l = cls;

	if (l->inner.free != NULL)
		l->inner.free(l->inner.cls);
	sbuf_free(&l->out);
	free(l);
}

void
api_log_sse(struct api_req *req, const struct api_stream *inner)
{
	struct log_sse *l = xcalloc(1, sizeof *l);
	struct api_stream st = { sse_read, sse_free, l, 0, false };

	l->inner = *inner;
	l->inner.size = 0;
	l->keepalive_ms = events_keepalive_ms(req->env->events);
	l->last_ms = util_now_ms();
	api_add_header(req, "Cache-Control", "no-store");
	api_add_header(req, "X-Accel-Buffering", "no");
	api_reply_stream(req, 200, "text/event-stream", &st);
}

bool
api_wants_sse(struct api_req *req)
{
	const char *accept = req->header(req, "Accept");
	static const char want[] = "text/event-stream";

	if (accept == NULL)
		return false;
	/* Media types are case-insensitive (RFC 9110 8.3.1). */
	for (const char *p = accept; *p != '\0'; p++)
		if (strncasecmp(p, want, sizeof want - 1) == 0)
			return true;
	return false;
}
