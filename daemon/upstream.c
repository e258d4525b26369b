/*
 * An HTTP fetch through a curl child whose answer is read as it comes
 * (upstream.h): the status line and headers parsed from curl's
 * --include output, the body through a bounded buffer.
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "child.h"
#include "sbuf.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

#define CURL "/usr/bin/curl"
#define MAX_HEADERS 64
#define ERR_MAX 1024

struct upstream_hdr {
	char *name, *value;
};

struct upstream {
	char *host;			/* the URL's authority, for messages */
	struct child child;
	uv_timer_t deadline;		/* for the header block */
	unsigned head_timeout;
	const struct upstream_cbs *cbs;
	void *data;

	bool running;			/* the child is not done yet */
	bool timer_open;
	bool closed;			/* upstream_close() was called */
	bool timed_out;
	bool have_head, ended, failed;

	struct sbuf head;		/* the header block while it comes */
	unsigned status;
	struct upstream_hdr hdrs[MAX_HEADERS];
	size_t nhdrs;

	struct sbuf body;		/* bytes [off, len) not read yet */
	size_t off;
	struct sbuf err;		/* curl's stderr, its first KiB */
};

static void
maybe_free(struct upstream *u)
{
	if (!u->closed || u->running || u->timer_open)
		return;
	for (size_t i = 0; i < u->nhdrs; i++) {
		free(u->hdrs[i].name);
		free(u->hdrs[i].value);
	}
	sbuf_free(&u->head);
	sbuf_free(&u->body);
	sbuf_free(&u->err);
	free(u->host);
	free(u);
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct upstream *u = h->data;

	u->timer_open = false;
	maybe_free(u);
}

static void
stop_timer(struct upstream *u)
{
	if (u->timer_open && !uv_is_closing((uv_handle_t *)&u->deadline)) {
		uv_timer_stop(&u->deadline);
		uv_close((uv_handle_t *)&u->deadline, on_timer_closed);
	}
}

static void
on_deadline(uv_timer_t *t)
{
	struct upstream *u = t->data;

	u->timed_out = true;
	child_kill(&u->child, SIGKILL);
}

static void
add_header(struct upstream *u, char *line)
{
	char *colon = strchr(line, ':'), *v;
	size_t n;

	if (colon == NULL || colon == line || u->nhdrs == MAX_HEADERS)
		return;
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		v[--n] = '\0';
	u->hdrs[u->nhdrs].name = xstrdup(line);
	u->hdrs[u->nhdrs].value = xstrdup(v);
	u->nhdrs++;
}

/*
 * The header block is u->head.p[0, end): its status line and headers.
 * Returns 1 for a final answer, 0 for an interim one (1xx, skipped), -1
 * for a status line that is not one.
 */
static int
parse_head(struct upstream *u, size_t end)
{
	char *block = xmalloc(end + 1), *line, *next;
	unsigned status = 0;
	int r = -1;

	memcpy(block, u->head.p, end);
	block[end] = '\0';
	next = block;
	line = strsep(&next, "\n");
	line[strcspn(line, "\r")] = '\0';
	/* "HTTP/1.1 200 OK", "HTTP/2 200" */
	if (strncmp(line, "HTTP/", 5) == 0 && (line = strchr(line, ' ')) &&
	    sscanf(line, " %3u", &status) == 1 && status >= 100 &&
	    status <= 599) {
		r = status < 200 ? 0 : 1;
		u->status = status;
	}
	while (r == 1 && (line = strsep(&next, "\n")) != NULL) {
		line[strcspn(line, "\r")] = '\0';
		if (line[0] != '\0')
			add_header(u, line);
	}
	free(block);
	return r;
}

/* The end of the header block in u->head (after its blank line), or 0. */
static size_t
head_end(const struct upstream *u)
{
	const char *p = u->head.p;

	for (size_t i = 0; i + 1 < u->head.len; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r' && i + 2 < u->head.len &&
		    p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Before the headers: "host HOST " and what it did. */
static void
fail(struct upstream *u, const char *what)
{
	char why[512];

	u->failed = true;
	snprintf(why, sizeof why, "host %s %s", u->host, what);
	child_kill(&u->child, SIGKILL);
	stop_timer(u);
	u->cbs->failed(u->data, why);
}

/* Header bytes: once the block is whole, parse it; what follows is the
 * body's. */
static void
head_data(struct upstream *u, const char *buf, size_t n)
{
	size_t end;
	int r;

	sbuf_add(&u->head, buf, n);
	while (!u->have_head && (end = head_end(u)) > 0) {
		r = parse_head(u, end);
		if (r < 0) {
			fail(u, "answered something that is not HTTP");
			return;
		}
		if (r == 1) {
			u->have_head = true;
			stop_timer(u);
			sbuf_add(&u->body, u->head.p + end, u->head.len - end);
		}
		memmove(u->head.p, u->head.p + end, u->head.len - end);
		u->head.len -= end;
	}
	if (u->have_head) {
		sbuf_free(&u->head);
		u->cbs->head(u->data, u);
		if (!u->closed && u->body.len > 0)
			u->cbs->more(u->data);
	} else if (u->head.len > UPSTREAM_HEAD_MAX)
		fail(u, "answered with more than 32 KiB of headers");
}

static void
on_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct upstream *u = c->data;

	if (u->closed || u->failed)
		return;		/* being killed: drained to its end */
	if (fd == 2) {
		if (u->err.len < ERR_MAX)
			sbuf_add(&u->err, buf, n < ERR_MAX - u->err.len ? n :
			    ERR_MAX - u->err.len);
		return;
	}
	if (!u->have_head) {
		head_data(u, buf, n);
		goto full;
	}
	sbuf_add(&u->body, buf, n);
	u->cbs->more(u->data);
full:
	if (!u->closed && u->body.len - u->off >= UPSTREAM_BUFFER)
		child_pause(&u->child, 1);
}

static void
on_done(struct child *c)
{
	struct upstream *u = c->data;
	char msg[ERR_MAX + 64];

	u->running = false;
	stop_timer(u);
	if (u->closed) {
		maybe_free(u);
		return;
	}
	if (u->failed)
		return;
	if (u->have_head) {
		/* Killed by nobody but us (closed, returned above): a
		 * status other than 0 is curl's failure mid-body. */
		u->ended = true;
		if (c->exit_status != 0 || c->term_signal != 0)
			u->failed = true;
		u->cbs->more(u->data);
		return;
	}
	u->failed = true;
	if (u->timed_out)
		snprintf(msg, sizeof msg, "host %s sent no answer within %u s",
		    u->host, u->head_timeout);
	else {
		sbuf_addc(&u->err, '\0');
		u->err.p[strcspn(u->err.p, "\n")] = '\0';
		snprintf(msg, sizeof msg, "host %s could not be reached: %s",
		    u->host, u->err.p[0] ? u->err.p : c->exit_status == 0 ?
		    "the answer ended before its headers" :
		    "curl failed without a message");
	}
	u->cbs->failed(u->data, msg);
}

/* "http://host:port/path" -> "host:port", for messages. */
static char *
url_host(const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?#");
	return xasprintf("%.*s", (int)(n < 200 ? n : 200), p);
}

struct upstream *
upstream_get(uv_loop_t *loop, const char *url, bool head,
    const char *headers, unsigned connect_timeout, unsigned head_timeout,
    const struct upstream_cbs *cbs, void *data, char *err, size_t errsize)
{
	struct upstream *u = xcalloc(1, sizeof *u);
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	char *fd_args[] = { (char *)headers, NULL };
	char ct[16];
	int rc;

	u->host = url_host(url);
	u->cbs = cbs;
	u->data = data;
	u->head_timeout = head_timeout;
	snprintf(ct, sizeof ct, "%u", connect_timeout);
	{
		/* -q first: no curlrc.  -N: each read passed on at once (a
		 * followed log).  No --compressed: the bytes as stored.  The
		 * header lines come from fd 3, the memfd of child_spawn_args
		 * (their trailing NUL is an empty line to curl). */
		char *argv[] = { CURL, "-q", "-sS", "-N", "--include",
		    "--globoff", "--proto", "=http,https", "--max-redirs", "0",
		    "--connect-timeout", ct, "-H", "@/dev/fd/3",
		    "--url", (char *)url, head ? "--head" : NULL, NULL };

		u->running = true;
		rc = child_spawn_args(&u->child, loop, argv, env, 2, fd_args,
		    on_data, on_done, u);
	}
	if (rc != 0) {
		/* on_done still runs, and frees it. */
		snprintf(err, errsize, "cannot run " CURL ": %s",
		    uv_strerror(rc));
		u->closed = true;
		return NULL;
	}
	uv_timer_init(loop, &u->deadline);
	u->deadline.data = u;
	u->timer_open = true;
	uv_timer_start(&u->deadline, on_deadline,
	    (uint64_t)head_timeout * 1000, 0);
	return u;
}

unsigned
upstream_status(const struct upstream *u)
{
	return u->status;
}

const char *
upstream_header(const struct upstream *u, const char *name)
{
	for (size_t i = 0; i < u->nhdrs; i++)
		if (strcasecmp(u->hdrs[i].name, name) == 0)
			return u->hdrs[i].value;
	return NULL;
}

long
upstream_read(struct upstream *u, char *buf, size_t max)
{
	size_t n = u->body.len - u->off;

	if (n == 0) {
		if (!u->ended)
			return 0;
		return u->failed ? UPSTREAM_ERROR : UPSTREAM_END;
	}
	if (n > max)
		n = max;
	if (n > (size_t)LONG_MAX)
		n = (size_t)LONG_MAX;
	memcpy(buf, u->body.p + u->off, n);
	u->off += n;
	if (u->off == u->body.len)
		u->off = u->body.len = 0;
	else if (u->off >= UPSTREAM_BUFFER / 2) {
		memmove(u->body.p, u->body.p + u->off, u->body.len - u->off);
		u->body.len -= u->off;
		u->off = 0;
	}
	if (u->running && u->body.len - u->off < UPSTREAM_BUFFER / 2)
		child_resume(&u->child, 1);
	return (long)n;
}

void
upstream_close(struct upstream *u)
{
	if (u == NULL)
		return;
	u->closed = true;
	stop_timer(u);
	if (u->running) {
		/* Read on to the pipe's end, or the child is never done. */
		child_resume(&u->child, 1);
		child_kill(&u->child, SIGKILL);
	}
	maybe_free(u);
}
