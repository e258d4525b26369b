/*
 * A raw HTTP/1.1 client for tests (test_http.c): blocking sockets with a
 * receive timeout, so that a server that never answers fails a test
 * rather than hangs it.  Responses are read by Content-Length or chunk
 * by chunk, with what arrived beyond one kept for the next.
 */
#ifndef KILN_HTTPCLIENT_H
#define KILN_HTTPCLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sbuf.h"
#include "xmalloc.h"

#define HTTPCLIENT_TIMEOUT_S 15	/* a read that never ends */

/* The client's side of one connection. */
struct conn {
	int fd;
	struct sbuf in;		/* received, not yet consumed */
	bool closed;		/* the server closed or reset it */
};

static bool
cl_open(struct conn *c, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	struct timeval tv = { HTTPCLIENT_TIMEOUT_S, 0 };

	memset(c, 0, sizeof *c);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return false;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
		close(c->fd);
		c->fd = -1;
		return false;
	}
	return true;
}

static void
cl_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sbuf_free(&c->in);
}

static bool
cl_send(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			c->closed = k < 0 && (errno == EPIPE ||
			    errno == ECONNRESET);
			return false;
		}
		p += k;
		n -= (size_t)k;
	}
	return true;
}

static bool
cl_sends(struct conn *c, const char *s)
{
	return cl_send(c, s, strlen(s));
}

/* More bytes into c->in: true, or false at the end (c->closed set when
 * the server ended it, not after HTTPCLIENT_TIMEOUT_S). */
static bool
cl_fill(struct conn *c)
{
	char buf[16384];
	ssize_t n;

	do
		n = recv(c->fd, buf, sizeof buf, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		sbuf_add(&c->in, buf, (size_t)n);
		return true;
	}
	c->closed = n == 0 || errno == ECONNRESET;
	return false;
}

static void
cl_consume(struct conn *c, size_t n)
{
	memmove(c->in.p, c->in.p + n, c->in.len - n);
	c->in.len -= n;
}

/* Nothing arrives for ms milliseconds. */
static bool
cl_quiet(struct conn *c, int ms)
{
	struct pollfd p = { c->fd, POLLIN, 0 };

	return c->in.len == 0 && poll(&p, 1, ms) == 0;
}

struct resp {
	int status;
	char *head;		/* status line and header lines */
	bool chunked;
	long long length;	/* Content-Length, or -1 */
	struct sbuf body;
	int chunks;		/* chunks with data in them */
};

static void
resp_free(struct resp *r)
{
	free(r->head);
	sbuf_free(&r->body);
	memset(r, 0, sizeof *r);
}

/* A response header's value (copied into v), or NULL. */
static const char *
resp_header(const struct resp *r, const char *name, char *v, size_t vsize)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof key, "\r\n%s:", name);
	if (r->head == NULL || (p = strcasestr(r->head, key)) == NULL)
		return NULL;
	p += strlen(key);
	p += strspn(p, " ");
	e = strstr(p, "\r\n");
	snprintf(v, vsize, "%.*s", (int)(e - p), p);
	return v;
}

static bool
read_head(struct conn *c, struct resp *r)
{
	char *end, v[64];
	size_t n;

	memset(r, 0, sizeof *r);
	r->length = -1;
	while (c->in.len == 0 ||
	    (end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4)) == NULL)
		if (!cl_fill(c))
			return false;
	n = (size_t)(end - c->in.p) + 2;	/* each line ends in \r\n */
	r->head = xstrndup(c->in.p, n);
	cl_consume(c, n + 2);
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		return false;
	r->chunked = resp_header(r, "Transfer-Encoding", v, sizeof v) &&
	    strcasecmp(v, "chunked") == 0;
	if (resp_header(r, "Content-Length", v, sizeof v))
		r->length = strtoll(v, NULL, 10);
	return true;
}

/* The next chunk's bytes onto r->body: its size, 0 for the last chunk,
 * -1 when the stream broke. */
static long
read_chunk(struct conn *c, struct resp *r)
{
	char *nl;
	long size;

	while (c->in.len == 0 ||
	    (nl = memmem(c->in.p, c->in.len, "\r\n", 2)) == NULL)
		if (!cl_fill(c))
			return -1;
	size = strtol(c->in.p, NULL, 16);
	cl_consume(c, (size_t)(nl - c->in.p) + 2);
	while (c->in.len < (size_t)size + 2)
		if (!cl_fill(c))
			return -1;
	if (memcmp(c->in.p + size, "\r\n", 2) != 0)
		return -1;
	sbuf_add(&r->body, c->in.p, (size_t)size);
	cl_consume(c, (size_t)size + 2);
	if (size > 0)
		r->chunks++;
	return size;
}

static bool
read_response(struct conn *c, struct resp *r)
{
	long n;

	if (!read_head(c, r))
		return false;
	if (r->chunked) {
		while ((n = read_chunk(c, r)) > 0)
			;
		return n == 0;
	}
	if (r->length < 0)
		return false;
	while (c->in.len < (size_t)r->length)
		if (!cl_fill(c))
			return false;
	sbuf_add(&r->body, c->in.p, (size_t)r->length);
	cl_consume(c, (size_t)r->length);
	return true;
}

/* Send a request and read its answer: the status, or 0. */
static int
exchange(struct conn *c, const char *req, struct resp *r)
{
	memset(r, 0, sizeof *r);
	if (!cl_sends(c, req) || !read_response(c, r))
		return 0;
	return r->status;
}

#endif
