/*
 * proxy_downloads = yes: a file another host of the farm holds (a blob
 * of its store, a build log) is fetched from that host and passed on to
 * the client, instead of a 307 that the client must be able to follow
 * (a host behind the farm's front, a client without -L).  The fetch is
 * a curl child (daemon/upstream.h); this file says what of the request
 * goes to the owner and what of its answer comes back.  The body goes
 * through as it comes, a followed log included; a client that leaves
 * ends the fetch.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../daemon/upstream.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

/* A host that does not connect within this is not there: 502. */
#define CONNECT_TIMEOUT 5
/* Nor one that sends no headers within this once connected: 502. */
#define HEAD_TIMEOUT 30

/* What the client sends that the owner's answer depends on: a part, a
 * cached copy's validator, its token (see api_proxy()). */
static const char *const request_headers[] = {
	"Range", "If-None-Match", "If-Range", "Authorization",
};

/* What of the owner's answer the client gets (Content-Type and
 * Content-Length apart: the answer's own fields).  No more than
 * API_MAX_HEADERS. */
static const char *const answer_headers[] = {
	"ETag", "Content-Range", "Accept-Ranges", "Content-Disposition",
	"Cache-Control", "Retry-After",
};

/*
 * One proxied request.  Until the owner's headers came it answers the
 * request (p->req); from then on it is the answer's stream, freed with
 * it by the HTTP layer (or by api_req_release() when the client left
 * before), which closes the fetch.
 */
struct proxy {
	struct api_req *req;		/* NULL once answered */
	struct upstream *u;
	char *owner, *what;
	void (*wake)(void *);		/* a read found nothing: call on more */
	void *waker;
};

static void
proxy_free(struct proxy *p)
{
	upstream_close(p->u);
	free(p->owner);
	free(p->what);
	free(p);
}

static long
proxy_read(void *cls, char *buf, size_t max, void (*wake)(void *),
    void *waker)
{
	struct proxy *p = cls;
	long n = upstream_read(p->u, buf, max);

	if (n == 0) {
		p->wake = wake;
		p->waker = waker;
		return 0;
	}
	if (n == UPSTREAM_END)
		return API_STREAM_END;
	if (n == UPSTREAM_ERROR)
		return API_STREAM_ERROR;
	return n;
}

static void
proxy_stream_free(void *cls)
{
	proxy_free(cls);
}

static void
on_more(void *data)
{
	struct proxy *p = data;
	void (*wake)(void *) = p->wake;

	if (wake == NULL)
		return;
	p->wake = NULL;
	wake(p->waker);
}

static void
on_head(void *data, struct upstream *u)
{
	struct proxy *p = data;
	struct api_req *req = p->req;
	struct api_stream st = { proxy_read, proxy_stream_free, p, 0,
	    false };
	unsigned status = upstream_status(u);
	const char *type = upstream_header(u, "Content-Type");
	const char *len = upstream_header(u, "Content-Length");
	int64_t size;

	for (size_t i = 0; i < sizeof answer_headers /
	    sizeof answer_headers[0]; i++) {
		const char *v = upstream_header(u, answer_headers[i]);

		if (v != NULL)
			api_add_header(req, answer_headers[i], "%s", v);
	}
	/* Known ahead: sent as such (a HEAD's is the GET's).  A body that
	 * ends short of it is cut, and the client sees that it was. */
	if (status != 304 && status != 204 && len != NULL &&
	    util_parse_int64(len, 0, INT64_MAX, &size) == 0) {
		st.size = (uint64_t)size;
		st.empty = size == 0;	/* an empty file: a length too */
	}
	/* Every answer is the stream, one with no body (304, HEAD) too:
	 * the type and the headers it points into live as long as it. */
	p->req = NULL;
	req->gone = NULL;
	api_reply_stream(req, status, type != NULL ? type :
	    "application/octet-stream", &st);
	req->complete(req);
}

static void
on_failed(void *data, const char *why)
{
	struct proxy *p = data;
	struct api_req *req = p->req;

	req->gone = NULL;
	api_reply_problem(req, 502, "%s is on host %s: %s", p->what, p->owner,
	    why);
	proxy_free(p);
	req->complete(req);
}

static const struct upstream_cbs proxy_cbs = { on_head, on_failed, on_more };

/*
 * Marks a request one host passes to another.  The owner serves the file
 * itself; a host that would pass such a request on again is in a loop
 * (a base_url that leads back to a proxying host, such as this one under
 * another name or a front that routes anywhere), which, unlike a
 * client's redirects, nothing would bound: every hop is another curl.
 */
#define PROXIED_BY "Kiln-Proxied-By"

/* The HTTP layer let go of the request before the owner's headers came
 * (kilnd stops): end the fetch now rather than at HEAD_TIMEOUT. */
static void
on_gone(void *data)
{
	struct proxy *p = data;

	on_failed(p, "kilnd is stopping");
}

/* The request's headers for the owner, one "Name: value\n" each; a value
 * that could end the line early is not passed on. */
static char *
forwarded_headers(struct api_req *req)
{
	const char *me = req->env->conf->host_name;
	struct sbuf b = { 0 };

	sbuf_adds(&b, "User-Agent: kiln/" PACKAGE_VERSION "\n");
	sbuf_adds(&b, PROXIED_BY ": ");
	sbuf_adds(&b, me != NULL && me[strcspn(me, "\r\n")] == '\0' ? me :
	    "kilnd");
	sbuf_addc(&b, '\n');
	for (size_t i = 0; i < sizeof request_headers /
	    sizeof request_headers[0]; i++) {
		const char *v = req->header(req, request_headers[i]);

		if (v == NULL || v[strcspn(v, "\r\n")] != '\0')
			continue;
		sbuf_adds(&b, request_headers[i]);
		sbuf_adds(&b, ": ");
		sbuf_adds(&b, v);
		sbuf_addc(&b, '\n');
	}
	sbuf_addc(&b, '\0');
	return b.p;
}

void
api_proxy(struct api_req *req, const char *url, const char *owner,
    const char *what)
{
	const char *via = req->header(req, PROXIED_BY);
	struct proxy *p;
	char *headers, err[256];

	if (via != NULL) {
		api_reply_problem(req, 502, "%s is on host %s, but this request "
		    "came from host %.100s, which passes on downloads too: not "
		    "passed on again (does host %s's base_url lead back to a "
		    "host that proxies?)", what, owner, via, owner);
		req->complete(req);
		return;
	}
	p = xcalloc(1, sizeof *p);
	headers = forwarded_headers(req);
	p->req = req;
	p->owner = xstrdup(owner);
	p->what = xstrdup(what);
	p->u = upstream_get(req->env->loop, url,
	    strcmp(req->method, "HEAD") == 0, headers, CONNECT_TIMEOUT,
	    HEAD_TIMEOUT, &proxy_cbs, p, err, sizeof err);
	free(headers);
	if (p->u != NULL) {
		req->gone = on_gone;
		req->gone_data = p;
	} else {
		api_reply_problem(req, 502, "%s is on host %s, which kilnd "
		    "could not ask for it: %s", what, owner, err);
		proxy_free(p);
		req->complete(req);
	}
}
