/*
 * The HTTP server's guards against clients that hold connections:
 * header_timeout (a deadline for each whole request, enforced with
 * shutdown(2) from a timer, since MHD's own timeout only measures
 * idleness) and max_connections_per_ip (kilnd's own counts, per IPv4
 * address and per IPv6 /64).  Refusals and cuts are logged as counts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <uv.h>

#include "addrcount.h"
#include "http-int.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

/* Monotonic ms (uv_now is cached per loop iteration: it can be behind,
 * and a deadline measured from it would come early). */
static uint64_t
mono_ms(void)
{
	return uv_hrtime() / 1000000;
}

static void on_notes(uv_timer_t *h);

/*
 * Refused and cut connections are logged as counts, a line per 10 s at
 * most: a client opening thousands of connections must not be able to
 * fill the log.  What is held back is logged when the 10 s are over.
 */
static void
log_notes(struct http_server *srv)
{
	uint64_t now = mono_ms();
	char net[64];

	if (srv->refused == 0 && srv->cut == 0)
		return;
	if (srv->noted_ms != 0 && now - srv->noted_ms < 10000) {
		if (!srv->stopped &&
		    !uv_is_active((uv_handle_t *)&srv->notes))
			uv_timer_start(&srv->notes, on_notes,
			    srv->noted_ms + 10000 - now, 0);
		return;
	}
	srv->noted_ms = now;
	if (srv->refused > 0) {
		addrcount_key_str(&srv->refused_net, net, sizeof net);
		log_warn("http: refused %u connection(s) over "
		    "max_connections_per_ip (%u), the last from %s",
		    srv->refused, srv->conf->max_connections_per_ip, net);
	}
	if (srv->cut > 0)
		log_warn("http: closed %u connection(s) that sent no whole "
		    "request within header_timeout (%u s)", srv->cut,
		    srv->conf->header_timeout);
	srv->refused = srv->cut = 0;
}

static void
on_notes(uv_timer_t *h)
{
	log_notes(container_of(h, struct http_server, notes));
}

static void on_deadline(uv_timer_t *h);

/* Make sure the deadline sweep runs by `when` (a mono_ms time). */
static void
arm_deadline(struct http_server *srv, uint64_t when)
{
	uint64_t now = mono_ms();
	uint64_t due;

	if (srv->stopped)
		return;
	if (uv_is_active((uv_handle_t *)&srv->deadline)) {
		/* libuv's due time is on uv_now's clock, like its timeout. */
		due = uv_timer_get_due_in(&srv->deadline);
		if (now + due <= when)
			return;
	}
	uv_timer_start(&srv->deadline, on_deadline, when > now ? when - now : 0,
	    0);
}

/*
 * Shut down every connection past its deadline.  shutdown() rather than
 * close(): the fd stays MHD's, MHD sees the end of the stream on its
 * next run and closes the connection itself (completing its request and
 * calling on_connection), so its slot and our count are released the
 * usual way.
 */
static void
on_deadline(uv_timer_t *h)
{
	struct http_server *srv = container_of(h, struct http_server,
	    deadline);
	uint64_t now = mono_ms(), limit, next = UINT64_MAX;
	unsigned n = 0;

	limit = (uint64_t)srv->conf->header_timeout * 1000;
	for (struct http_conn *c = srv->conns; c != NULL; c = c->next) {
		if (c->busy || c->cut || c->fd < 0)
			continue;
		if (now - c->since >= limit) {
			shutdown(c->fd, SHUT_RDWR);
			c->cut = 1;
			n++;
		} else if (c->since + limit < next)
			next = c->since + limit;
	}
	if (next != UINT64_MAX)
		arm_deadline(srv, next);
	if (n > 0) {
		srv->cut += n;
		log_notes(srv);
		/* The shutdown signals MHD's epoll fd; run it anyway. */
		http_schedule_run(srv);
	}
}

/* MHD_OPTION_ACCEPT_POLICY_CALLBACK: max_connections_per_ip, per /64. */
enum MHD_Result
http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_server *srv = cls;
	unsigned max = srv->conf->max_connections_per_ip;
	struct addrcount_key k;

	if (max == 0 || addrcount_key(&k, addr, addrlen) != 0)
		return MHD_YES;
	if (addrcount_get(srv->peers, &k) < max)
		return MHD_YES;
	srv->refused++;
	srv->refused_net = k;
	log_notes(srv);
	return MHD_NO;
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION.  MHD calls the accept policy and then,
 * in the same call on this thread, STARTED; a connection it fails to
 * set up gets CLOSED too or neither.  So counting here (not in
 * on_accept) keeps the counts exact.
 */
void
http_guard_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;
	struct http_conn *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = xcalloc(1, sizeof *c);
		c->srv = srv;
		c->since = mono_ms();
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci != NULL ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL && addrcount_key(&c->net, ci->client_addr,
		    ci->client_addr->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6)) == 0) {
			addrcount_add(srv->peers, &c->net);
			c->counted = 1;
		}
		c->next = srv->conns;
		if (c->next != NULL)
			c->next->prev = c;
		srv->conns = c;
		*socket_context = c;
		arm_deadline(srv, c->since +
		    (uint64_t)srv->conf->header_timeout * 1000);
		return;
	}
	if (c == NULL)
		return;
	srv->rerun = 1;
	if (c->counted)
		addrcount_del(srv->peers, &c->net);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
	*socket_context = NULL;
}

void
http_guard_next(struct http_server *srv, struct http_conn *c)
{
	if (c->cut)
		return;
	c->busy = 0;
	c->since = mono_ms();
	arm_deadline(srv, c->since + (uint64_t)srv->conf->header_timeout *
	    1000);
}

void
http_guard_flush(struct http_server *srv)
{
	srv->noted_ms = 0;
	log_notes(srv);
}
