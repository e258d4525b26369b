/*
 * One HTTP GET (or HEAD) of another host's URL, its answer read as it
 * comes: /usr/bin/curl as a child process (daemon/child.h), never a
 * socket of the loop's own, so the loop never waits on a connect, a name
 * or a slow host.  The status line and the headers are parsed; the body
 * is kept in a bounded buffer, and reading the pipe stops while it is
 * full, so a slow reader slows curl down instead of growing kilnd.
 * Used by a farm host that passes on another host's downloads
 * (api/proxy.c, proxy_downloads = yes).
 */
#ifndef KILN_UPSTREAM_H
#define KILN_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

struct upstream;

/*
 * What the fetch tells its owner, on the loop thread, never from inside
 * upstream_get() or upstream_close(); none after upstream_close().
 * head: the status line and the header block arrived (then more and,
 * at the end, more again).  failed: curl ended, or the deadline for the
 * headers passed, before there were any; why names the host and the
 * reason (curl's message).  more: body bytes or the end can be read.
 */
struct upstream_cbs {
	void (*head)(void *data, struct upstream *u);
	void (*failed)(void *data, const char *why);
	void (*more)(void *data);
};

/* The body bytes buffered at most before the pipe is no longer read. */
#define UPSTREAM_BUFFER (256 * 1024)
/* The header block, at most; a longer one fails the fetch. */
#define UPSTREAM_HEAD_MAX (32 * 1024)

/*
 * Start fetching url (http or https, no redirects followed) with the
 * request header lines `headers` ("Name: value\n" each; they go to curl
 * on a descriptor, never on its command line, where every local user
 * could read a token).  head: HEAD instead of GET.  Connecting may take
 * connect_timeout s and the headers head_timeout s; the body as long as
 * it lasts.  Returns the fetch, or NULL with err set.
 */
struct upstream *upstream_get(uv_loop_t *loop, const char *url, bool head,
    const char *headers, unsigned connect_timeout, unsigned head_timeout,
    const struct upstream_cbs *cbs, void *data, char *err, size_t errsize);
/* After head: the status, and a header's value (first of that name, case
 * insensitive; NULL when absent).  Valid until upstream_close(). */
unsigned upstream_status(const struct upstream *u);
const char *upstream_header(const struct upstream *u, const char *name);
/*
 * Up to max body bytes into buf: their count, 0 when none is there yet
 * (`more` follows), UPSTREAM_END once all came, UPSTREAM_ERROR when curl
 * failed before the end (the answer is cut short).
 */
#define UPSTREAM_END (-1)
#define UPSTREAM_ERROR (-2)
long upstream_read(struct upstream *u, char *buf, size_t max);
/* Done with it: curl is killed if it still runs, and u freed once it
 * was reaped.  NULL does nothing. */
void upstream_close(struct upstream *u);

#endif
