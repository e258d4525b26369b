/* Routing and answers shared by every resource. */
#include "config.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "api.h"
#include "../lib/log.h"
#include "../lib/utf8.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

static const struct api_route *const tables[] = {
	api_jobs_routes,
	api_logs_routes,
	api_targets_routes,
	api_toolchains_routes,
	api_admin_routes,
	api_artifacts_routes,
	api_hooks_routes,
	api_metrics_routes,
	api_about_routes,
	api_hosts_routes,
	api_events_routes,
	api_health_routes,
	api_ui_routes,
	api_retry_routes,
	api_projects_routes,
};

const struct api_route *
api_route_at(size_t i)
{
	for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
		size_t n = 0;
		while (tables[t][n].method != NULL)
			n++;
		if (i < n)
			return &tables[t][i];
		i -= n;
	}
	return NULL;
}

const char *
api_status_title(unsigned status)
{
	const char *r = util_http_reason(status);

	return r != NULL ? r : "Error";
}

void
api_reply_json(struct api_req *req, unsigned status, json_t *body)
{
	char *s;
	size_t n;

	/* json_pack() gives NULL for text that is not UTF-8, not only for
	 * want of memory: a handler that quoted a client's bytes must not
	 * take kilnd down (tests/fuzz/fuzz_router found one). */
	if (body == NULL) {
		log_error("api: %s %s: an answer could not be built (text "
		    "that is not UTF-8?)", req->method, req->path);
		api_reply_problem(req, 500, "the answer could not be built");
		return;
	}
	s = json_dumps(body, JSON_COMPACT);
	if (s == NULL) {
		/* jansson fails only on allocation: fatal like xmalloc. */
		log_error("api: cannot serialize a response");
		abort();
	}
	json_decref(body);
	n = strlen(s);
	free(req->resp_body);
	req->resp_body = xmalloc(n + 1);
	memcpy(req->resp_body, s, n);
	req->resp_body[n] = '\n';
	req->resp_len = n + 1;
	free(s);
	req->status = status;
	req->resp_type = "application/json";
}

void
api_reply_sbuf(struct api_req *req, unsigned status, struct sbuf *b)
{
	sbuf_addc(b, '\n');
	free(req->resp_body);
	req->resp_body = sbuf_steal(b, &req->resp_len);
	req->status = status;
	req->resp_type = "application/json";
}

void
api_reply_stream(struct api_req *req, unsigned status, const char *type,
    const struct api_stream *stream)
{
	free(req->resp_body);
	req->resp_body = NULL;
	req->resp_len = 0;
	req->stream = *stream;
	req->status = status;
	req->resp_type = type;
}

void
api_reply_fd_range(struct api_req *req, unsigned status, const char *type,
    int fd, int64_t off, int64_t size)
{
	free(req->resp_body);
	req->resp_body = NULL;
	req->resp_len = 0;
	req->resp_fd = fd;
	req->resp_off = off;
	req->resp_size = size;
	req->status = status;
	req->resp_type = type;
}

void
api_reply_fd(struct api_req *req, unsigned status, const char *type, int fd)
{
	api_reply_fd_range(req, status, type, fd, 0, -1);
}

void
api_reply_queue_failed(struct api_req *req, int rc, const char *what)
{
	if (rc == QUEUE_EDOWN) {
		/* The farm's database restarts or is cut off: worth a retry
		 * (a write cut off may have been done all the same). */
		api_reply_problem(req, 503, "%s: the queue's database cannot "
		    "be reached; try again later", what);
		api_add_header(req, "Retry-After", "5");
	} else
		api_reply_problem(req, 500, "%s (see kilnd's log)", what);
}

void
api_reply_problem(struct api_req *req, unsigned status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	json_t *p;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	/* Details quote the request, often cut ("%.64s") and so possibly in
	 * the middle of a character: drop the cut character and replace
	 * invalid bytes rather than lose the whole detail below. */
	utf8_fix(detail, sizeof detail);
	/* RFC 9457: about:blank means the title is the status phrase. */
	p = json_pack("{s:s, s:s, s:I, s:s}", "type", "about:blank",
	    "title", api_status_title(status), "status", (json_int_t)status,
	    "detail", detail);
	if (p == NULL) {
		/* Invalid UTF-8 echoed from the request: say it without it. */
		p = json_pack("{s:s, s:s, s:I, s:s}", "type", "about:blank",
		    "title", api_status_title(status), "status",
		    (json_int_t)status, "detail",
		    "the request contains invalid UTF-8");
	}
	api_reply_json(req, status, p);
	req->resp_type = "application/problem+json";
}

void
api_add_header(struct api_req *req, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *v;

	if (req->nheaders == API_MAX_HEADERS) {
		log_error("api: too many response headers (%s)", name);
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) < 0)
		v = NULL;
	va_end(ap);
	if (v == NULL)
		abort();
	req->headers[req->nheaders].name = name;
	req->headers[req->nheaders].value = v;
	req->nheaders++;
}

void
api_req_release(struct api_req *req)
{
	for (size_t i = 0; i < req->nparams; i++)
		free(req->params[i]);
	req->nparams = 0;
	for (size_t i = 0; i < req->nheaders; i++)
		free(req->headers[i].value);
	req->nheaders = 0;
	free(req->resp_body);
	req->resp_body = NULL;
	req->resp_len = 0;
	/* A stream or fd never handed to the HTTP layer is released here. */
	if (req->stream.free != NULL)
		req->stream.free(req->stream.cls);
	memset(&req->stream, 0, sizeof req->stream);
	if (req->resp_fd > 0)
		close(req->resp_fd);
	req->resp_fd = -1;
	if (req->state != NULL) {
		if (req->state_release != NULL)
			req->state_release(req->state);
		free(req->state);
	}
	req->state = NULL;
	req->state_release = NULL;
}

void *
api_req_state(struct api_req *req, size_t size, void (*release)(void *))
{
	/* One per request: a second would leak the first's contents. */
	assert(req->state == NULL);
	req->state = xcalloc(1, size);
	req->state_release = release;
	return req->state;
}

/*
 * Match `path` against `pattern` segment by segment; "{name}" captures one
 * non-empty segment.  On a match the captures are stored in req (when it
 * is not NULL).
 */
static bool
match(const char *pattern, const char *path, struct api_req *req)
{
	const char *p = pattern, *s = path;
	char *caps[API_MAX_PARAMS];
	size_t ncaps = 0;

	while (*p != '\0') {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t n = strcspn(s, "/");
			if (pe == NULL || n == 0 || ncaps == API_MAX_PARAMS)
				goto nomatch;
			caps[ncaps++] = xstrndup(s, n);
			p = pe + 1;
			s += n;
		} else if (*p++ != *s++)
			goto nomatch;
	}
	if (*s != '\0')
		goto nomatch;
	if (req != NULL) {
		for (size_t i = 0; i < ncaps; i++)
			req->params[i] = caps[i];
		req->nparams = ncaps;
	} else {
		for (size_t i = 0; i < ncaps; i++)
			free(caps[i]);
	}
	return true;
nomatch:
	for (size_t i = 0; i < ncaps; i++)
		free(caps[i]);
	return false;
}

/*
 * Bearer tokens ([tokens] of kilnd.conf): the SHA-256 of the token sent
 * is compared with every configured hash in constant time, all of them
 * every time, so neither the match nor its position shows in the timing.
 * The best scope among matches is the caller's, and *index (if not
 * NULL) the entry of [tokens] that gave it, -1 for none.  0 = no valid
 * token.
 */
static enum api_scope
token_scope(struct api_req *req, int *index)
{
	const struct kiln_config *c = req->env->conf;
	const char *h = req->header ? req->header(req, "Authorization") : NULL;
	unsigned char hash[crypto_hash_sha256_BYTES];
	int best = 0, idx = -1;

	if (index != NULL)
		*index = -1;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	if (*h == '\0')
		return 0;
	crypto_hash_sha256(hash, (const unsigned char *)h, strlen(h));
	for (unsigned i = 0; i < c->ntokens; i++) {
		int eq = sodium_memcmp(hash, c->tokens[i].hash, sizeof hash) == 0;
		/* No branch on the secret comparison's result. */
		int s = c->tokens[i].scope * eq;
		/* All ones when this entry is better than the best so far. */
		unsigned m = -(unsigned)(s > best);
		best = (int)(((unsigned)best & ~m) | ((unsigned)s & m));
		idx = (int)(((unsigned)idx & ~m) | (i & m));
	}
	sodium_memzero(hash, sizeof hash);
	if (index != NULL)
		*index = idx;
	return (enum api_scope)best;
}

/*
 * Without tokens, kilnd listens only on loopback (enforced at start),
 * where every caller is trusted.  With tokens, each route needs its
 * scope: 401 without a valid token, 403 when it is too small.
 */
static bool
authorized(struct api_req *req, enum api_scope scope)
{
	const struct kiln_config *c = req->env->conf;
	enum api_scope have;

	if (c->ntokens == 0 || scope == API_SCOPE_PUBLIC)
		return true;
	if (scope == API_SCOPE_DOWNLOAD) {
		if (c->public_read)
			return true;
		scope = API_SCOPE_READ;
	}
	have = token_scope(req, NULL);
	if (have == 0) {
		api_reply_problem(req, 401, "this route needs a bearer token "
		    "(Authorization: Bearer TOKEN) with the %s scope",
		    scope == API_SCOPE_READ ? "read" : scope == API_SCOPE_SUBMIT ?
		    "submit" : "admin");
		api_add_header(req, "WWW-Authenticate", "Bearer realm=\"kiln\"");
		return false;
	}
	if (have < scope) {
		api_reply_problem(req, 403, "the token's scope is too small: "
		    "this route needs %s", scope == API_SCOPE_SUBMIT ? "submit" :
		    "admin");
		return false;
	}
	return true;
}

bool
api_caller_may_read(struct api_req *req)
{
	return req->env->conf->ntokens == 0 ||
	    token_scope(req, NULL) >= API_SCOPE_READ;
}

const char *
api_scope_name(enum api_scope s)
{
	switch (s) {
	case API_SCOPE_READ: return "read";
	case API_SCOPE_SUBMIT: return "submit";
	case API_SCOPE_ADMIN: return "admin";
	default: return "none";
	}
}

enum api_scope
api_caller_scope(struct api_req *req)
{
	if (req->env->conf->ntokens == 0)
		return API_SCOPE_ADMIN;
	return token_scope(req, NULL);
}

bool
api_caller_is_admin(struct api_req *req)
{
	return req->env->conf->ntokens == 0 ||
	    token_scope(req, NULL) >= API_SCOPE_ADMIN;
}

const char *
api_caller_token(struct api_req *req)
{
	const struct kiln_config *c = req->env->conf;
	int i;

	if (c->ntokens == 0 || token_scope(req, &i) == 0 || i < 0)
		return NULL;
	return c->tokens[i].name;
}

enum api_result
api_handle(struct api_req *req)
{
	const char *method = req->method;
	char allow[64] = "";
	const struct api_route *r;

	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	for (size_t i = 0; (r = api_route_at(i)) != NULL; i++) {
		if (!match(r->pattern, req->path, NULL))
			continue;
		if (strcmp(r->method, method) != 0) {
			if (strstr(allow, r->method) == NULL) {
				size_t n = strlen(allow);
				snprintf(allow + n, sizeof allow - n, "%s%s",
				    n ? ", " : "", r->method);
				if (strcmp(r->method, "GET") == 0) {
					n = strlen(allow);
					snprintf(allow + n, sizeof allow - n,
					    ", HEAD");
				}
			}
			continue;
		}
		match(r->pattern, req->path, req);
		req->route = r->pattern;
		if (!authorized(req, r->scope))
			return API_DONE;
		return r->handler(req);
	}
	if (allow[0] != '\0') {
		api_reply_problem(req, 405, "%s is not allowed on %s; allowed: %s",
		    req->method, req->path, allow);
		api_add_header(req, "Allow", "%s", allow);
		return API_DONE;
	}
	api_reply_problem(req, 404, "no such resource: %s", req->path);
	return API_DONE;
}
