/*
 * One connection of the PostgreSQL pool (pgconn.h, pgconn-int.h): libpq in
 * non-blocking mode on the libuv loop, a small state machine:
 *
 *   DOWN --timer--> RESOLVING --getaddrinfo--> CONNECTING --PQconnectPoll
 *   OK--> IDLE <--> BUSY, and from any of them back to DOWN (back-off)
 *
 * What libpq needs, learnt the hard way (each checked on this platform):
 * - PQconnectPoll may close its socket and open another (the next host of
 *   a list, an SSL or GSS fallback), even under the same fd number: the
 *   poll is stopped before every PQconnectPoll and armed again on
 *   PQsocket after it.
 * - libuv reports EPOLLERR (a refused connect) as status UV_EBADF and has
 *   stopped the handle by then; the fd is fine, libpq says what happened.
 * - The poll handle is closed before PQfinish closes the fd, or libuv
 *   still watches the number and the next connection's uv_poll_init on
 *   the reused fd fails with EEXIST.
 * - The connection is blocking after PQconnectPoll is done, whatever the
 *   connect was: PQsetnonblocking, or a large send blocks the loop.
 * - A host name is resolved inside libpq with a blocking getaddrinfo: we
 *   resolve it on libuv's thread pool first and hand libpq hostaddr=.
 * - connect_timeout is ignored by PQconnectPoll: our own timer.
 * - When the server ends a session mid-query the first error result is
 *   the server's (SQLSTATE 57P01), the next one libpq's own: the first
 *   error is kept.  PQnotifies is read after every PQconsumeInput, or a
 *   notification that came with a result waits for the next read.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "pg/pgconn-int.h"
#include "util.h"
#include "xmalloc.h"

static void conn_start(struct pgconn *c);
static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);
static void resolve_next(struct pgconn *c);

/* libpq's messages end in newlines and have one line per host tried:
 * one log line. */
const char *
pg_oneline(char *buf, size_t size, const char *msg)
{
	size_t n;

	snprintf(buf, size, "%s", msg != NULL && *msg ? msg : "unknown error");
	for (char *s = buf; *s; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = '\0';
	return buf;
}

static const char *
cname(const struct pgconn *c)
{
	return c->listener ? "listen" : "query";
}

static void
on_poll_closed(uv_handle_t *h)
{
	struct pgconn *c = h->data;
	struct pgpool *p = c->pool;

	free(h);
	p->handles--;
	pgpool_maybe_free(p);
}

static void
poll_close(struct pgconn *c)
{
	if (c->poll == NULL)
		return;
	/* uv_close takes the fd out of epoll at once: PQfinish may close
	 * it right after. */
	uv_close((uv_handle_t *)c->poll, on_poll_closed);
	c->poll = NULL;
	c->fd = -1;
}

/* Watch the connection's current socket, a new handle if it changed. */
static int
arm(struct pgconn *c, int events)
{
	int fd = PQsocket(c->conn);

	if (fd < 0)
		return -1;
	if (c->poll != NULL && fd != c->fd)
		poll_close(c);
	if (c->poll == NULL) {
		uv_poll_t *h = xmalloc(sizeof *h);

		if (uv_poll_init(c->pool->loop, h, fd) != 0) {
			free(h);
			return -1;
		}
		h->data = c;
		c->poll = h;
		c->fd = fd;
		c->pool->handles++;
	}
	return uv_poll_start(c->poll, events, on_poll) == 0 ? 0 : -1;
}

/* Close the session: the poll handle first, then libpq's fd. */
static void
conn_drop(struct pgconn *c)
{
	poll_close(c);
	if (c->res != NULL) {
		PQclear(c->res);
		c->res = NULL;
	}
	if (c->conn != NULL) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	c->want_flush = false;
}

/* Capped exponential back-off with jitter, between d/2 and d, so that
 * hosts that lost the server together do not come back in step. */
static uint64_t
backoff(struct pgconn *c)
{
	struct pgpool *p = c->pool;
	uint64_t d = BACKOFF_MIN_MS;

	for (unsigned i = 0; i < c->attempts && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return d / 2 + p->rng % (d / 2 + 1);
}

void
pgconn_fail(struct pgconn *c, const char *why)
{
	struct pgpool *p = c->pool;
	struct pgq *q = c->q;
	bool was_up = pgconn_up(c);
	char msg[512];

	pg_oneline(msg, sizeof msg, why);
	if (was_up)
		log_warn("postgresql %s: %s connection %u lost: %s", p->where,
		    cname(c), c->id, msg);
	else if (c->attempts == 0)
		log_warn("postgresql %s: %s connection %u: cannot connect: %s",
		    p->where, cname(c), c->id, msg);
	else
		log_debug("postgresql %s: %s connection %u: cannot connect "
		    "(attempt %u): %s", p->where, cname(c), c->id,
		    c->attempts + 1, msg);
	c->q = NULL;
	conn_drop(c);
	c->state = C_DOWN;
	c->relisten = false;
	if (c->listener)
		for (struct pgsub *s = p->subs; s != NULL; s = s->next)
			s->subscribed = false;
	if (was_up)
		c->attempts = 0;
	if (!p->closing) {
		uint64_t d = backoff(c);

		c->attempts++;
		uv_timer_start(&c->timer, on_timer, d, 0);
	}
	if (!c->listener)
		pgpool_update(p);
	if (q != NULL)
		pgpool_finish(p, q, NULL, PG_ELOST);
	pgpool_close_progress(p);
}

/* Server notices go to stderr unless received: into the log instead. */
static void
on_notice(void *arg, const PGresult *r)
{
	struct pgconn *c = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	bool warn = sev != NULL && strcmp(sev, "WARNING") == 0;

	log_msg(warn ? LOG_LVL_WARN : LOG_LVL_DEBUG,
	    "postgresql %s: %s connection %u: server %s: %s", c->pool->where,
	    cname(c), c->id, sev != NULL ? sev : "NOTICE",
	    msg != NULL ? msg : "");
}

/* Start libpq's connect; host, hostaddr and port override the
 * conninfo's when resolved here. */
static void
conn_connect(struct pgconn *c, const char *host, const char *hostaddr,
    const char *port)
{
	struct pgpool *p = c->pool;
	/* Defaults first: the conninfo (expanded from "dbname") overrides
	 * them; the resolved addresses come after it and override it.
	 * Keep-alives and tcp_user_timeout end a connection that a network
	 * partition left silent, instead of a query waiting forever; a
	 * server that is there but does not answer, QUERY_TIMEOUT_MS. */
	const char *kw[13] = { "fallback_application_name", "keepalives",
	    "keepalives_idle", "keepalives_interval", "keepalives_count",
	    "tcp_user_timeout", "options", "dbname" };
	const char *val[13] = { "kilnd", "1", "10", "5", "3", "15000",
	    STATEMENT_TIMEOUT, p->conninfo };
	int n = 8;

	if (host != NULL) {
		kw[n] = "host", val[n++] = host;
		kw[n] = "hostaddr", val[n++] = hostaddr;
		if (port != NULL)
			kw[n] = "port", val[n++] = port;
	}
	kw[n] = NULL, val[n] = NULL;
	c->conn = PQconnectStartParams(kw, val, 1);
	if (c->conn == NULL) {
		pgconn_fail(c, "out of memory");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	PQsetNoticeReceiver(c->conn, on_notice, c);
	c->state = C_CONNECTING;
	uv_timer_start(&c->timer, on_timer, p->connect_timeout_ms, 0);
	/* libpq: as if PQconnectPoll had said PGRES_POLLING_WRITING. */
	if (arm(c, UV_WRITABLE) != 0)
		pgconn_fail(c, "cannot watch the connection's socket");
}

static void
add_host(struct pgconn *c, const char *host, const char *addr,
    const char *port)
{
	if (c->rhost.len > 0) {
		sbuf_addc(&c->rhost, ',');
		sbuf_addc(&c->raddr, ',');
		sbuf_addc(&c->rport, ',');
	}
	sbuf_adds(&c->rhost, host);
	sbuf_adds(&c->raddr, addr);
	sbuf_adds(&c->rport, port != NULL ? port : "");
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct pgconn *c = req->data;
	struct pgpool *p = c->pool;
	struct pghost *h = &p->hosts[c->ri];

	free(req);
	p->handles--;
	if (c->state != C_RESOLVING) {		/* the pool is closing */
		uv_freeaddrinfo(res);
		pgpool_maybe_free(p);
		return;
	}
	if (status != 0)
		log_warn("postgresql %s: cannot resolve %s: %s", p->where,
		    h->name, uv_strerror(status));
	/* Every address of the name: libpq tries them in turn (localhost
	 * is ::1 and 127.0.0.1, and the server may listen on one only). */
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char addr[INET6_ADDRSTRLEN];
		const void *a;

		if (ai->ai_family == AF_INET)
			a = &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			a = &((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, a, addr, sizeof addr) != NULL)
			add_host(c, h->name, addr, h->port);
	}
	uv_freeaddrinfo(res);
	c->ri++;
	resolve_next(c);
}

/* Resolve the conninfo's host names one after the other, then connect. */
static void
resolve_next(struct pgconn *c)
{
	struct pgpool *p = c->pool;
	struct addrinfo hints;
	uv_getaddrinfo_t *req;
	char *host, *addr, *port;

	for (; c->ri < p->nhosts; c->ri++) {
		struct pghost *h = &p->hosts[c->ri];

		if (!h->resolve) {
			/* An address or a socket path: libpq needs no look-up
			 * for it; an empty hostaddr says "use host". */
			add_host(c, h->name, "", h->port);
			continue;
		}
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_ADDRCONFIG;
		req = xmalloc(sizeof *req);
		req->data = c;
		if (uv_getaddrinfo(p->loop, req, on_resolved, h->name, NULL,
		    &hints) != 0) {
			free(req);
			continue;
		}
		p->handles++;
		c->state = C_RESOLVING;
		return;
	}
	host = sbuf_steal(&c->rhost, NULL);
	addr = sbuf_steal(&c->raddr, NULL);
	port = sbuf_steal(&c->rport, NULL);
	c->state = C_DOWN;
	if (*host == '\0')
		pgconn_fail(c, "no address for any host");
	else
		conn_connect(c, host, addr, p->hosts[0].port != NULL ? port :
		    NULL);
	free(host);
	free(addr);
	free(port);
}

static void
conn_start(struct pgconn *c)
{
	struct pgpool *p = c->pool;

	if (p->closing || c->state != C_DOWN)
		return;
	if (p->nhosts == 0) {
		conn_connect(c, NULL, NULL, NULL);
		return;
	}
	c->ri = 0;
	sbuf_free(&c->rhost);
	sbuf_free(&c->raddr);
	sbuf_free(&c->rport);
	resolve_next(c);
}

static void
connected(struct pgconn *c)
{
	struct pgpool *p = c->pool;

	uv_timer_stop(&c->timer);
	if (c->attempts > 0 || c->was_up)
		log_info("postgresql %s: %s connection %u up%s", p->where,
		    cname(c), c->id, c->was_up ? " again" : "");
	if (c->was_up)
		p->reconnects++;
	c->was_up = true;
	c->attempts = 0;
	c->state = C_IDLE;
	/* Always readable, idle too: the server's goodbye and the
	 * notifications come unasked. */
	if (arm(c, UV_READABLE) != 0) {
		pgconn_fail(c, "cannot watch the connection's socket");
		return;
	}
	if (c->listener) {
		pgconn_listen(c);
		return;
	}
	pgpool_update(p);
	pgpool_dispatch(p);
}

static void
connect_step(struct pgconn *c)
{
	/* Stopped first: PQconnectPoll may close this socket and open
	 * another one, even under the same number. */
	uv_poll_stop(c->poll);
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		if (arm(c, UV_READABLE) != 0)
			pgconn_fail(c, "cannot watch the connection's socket");
		return;
	case PGRES_POLLING_WRITING:
		if (arm(c, UV_WRITABLE) != 0)
			pgconn_fail(c, "cannot watch the connection's socket");
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	if (PQsetnonblocking(c->conn, 1) != 0) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	connected(c);
}

/* Sent and flushed as far as the socket takes; the rest when writable. */
static void
sent(struct pgconn *c)
{
	int r = PQflush(c->conn);

	c->state = C_BUSY;
	uv_timer_start(&c->timer, on_timer, QUERY_TIMEOUT_MS, 0);
	/* On -1 the read side reports the broken connection: never a
	 * completion from inside pgpool_query. */
	c->want_flush = r != 0;
	(void)arm(c, UV_READABLE | (c->want_flush ? UV_WRITABLE : 0));
}

/* 0, or -1 when the connection cannot take it (q is not consumed). */
int
pgconn_send(struct pgconn *c, struct pgq *q)
{
	if (!PQsendQueryParams(c->conn, q->sql, q->nparams, NULL,
	    (const char *const *)q->params, NULL, NULL, 0))
		return -1;
	c->q = q;
	sent(c);
	return 0;
}

void
pgconn_listen(struct pgconn *c)
{
	struct sbuf sql = { 0 };
	char *s;

	c->relisten = false;
	for (struct pgsub *sub = c->pool->subs; sub != NULL; sub = sub->next) {
		/* The name was checked: [a-z_][a-z0-9_]*, nothing to escape. */
		sbuf_adds(&sql, "LISTEN ");
		sbuf_adds(&sql, sub->channel);
		sbuf_adds(&sql, ";");
	}
	s = sbuf_steal(&sql, NULL);
	/* Several statements in one round trip: PQsendQuery. */
	if (!PQsendQuery(c->conn, s))
		pgconn_fail(c, PQerrorMessage(c->conn));
	else
		sent(c);
	free(s);
}

static void
listen_done(struct pgconn *c, PGresult *res, int rc)
{
	struct pgpool *p = c->pool;
	char msg[512];

	if (rc != PG_OK) {
		pg_oneline(msg, sizeof msg, res != NULL ?
		    PQresultErrorMessage(res) : "connection lost");
		if (res != NULL)
			PQclear(res);
		pgconn_fail(c, msg);
		return;
	}
	PQclear(res);
	if (c->relisten) {
		pgconn_listen(c);
		return;
	}
	/* Now subscribed: whoever waits for notifications looks for
	 * itself once, for those sent while nobody listened. */
	for (struct pgsub *s = p->subs; s != NULL && c->state == C_IDLE;
	    s = s->next) {
		if (s->subscribed)
			continue;
		s->subscribed = true;
		s->notified(s->data, NULL, NULL);
	}
}

static int
classify(PGresult *res, bool bad)
{
	switch (res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
	case PGRES_SINGLE_TUPLE:
		return PG_OK;
	default:
		/* An error with the session gone may be the server's or
		 * libpq's; either way nobody knows whether it committed. */
		return bad || res == NULL ? PG_ELOST : PG_ESQL;
	}
}

/* The last PQgetResult said NULL: the command is over. */
static void
complete(struct pgconn *c)
{
	struct pgpool *p = c->pool;
	struct pgq *q = c->q;
	PGresult *res = c->res;
	bool bad = PQstatus(c->conn) == CONNECTION_BAD;
	int rc = classify(res, bad);

	c->q = NULL;
	c->res = NULL;
	c->state = C_IDLE;
	uv_timer_stop(&c->timer);
	if (rc == PG_ELOST && res != NULL) {
		PQclear(res);
		res = NULL;
	}
	if (c->listener) {
		listen_done(c, res, rc);
		return;
	}
	if (bad)
		pgconn_fail(c, PQerrorMessage(c->conn));
	if (q != NULL)
		pgpool_finish(p, q, res, rc);
	else if (res != NULL)
		PQclear(res);
	pgpool_dispatch(p);
	pgpool_close_progress(p);
}

/* Take every result that is complete, without ever waiting. */
static void
drain(struct pgconn *c)
{
	while (c->state == C_BUSY && !PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);
		ExecStatusType st;

		if (r == NULL) {
			complete(c);
			continue;
		}
		st = PQresultStatus(r);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
		    st == PGRES_COPY_BOTH) {
			/* No COPY here: the session cannot go on. */
			PQclear(r);
			pgconn_fail(c, "COPY is not supported");
			return;
		}
		if (c->res != NULL && (PQresultStatus(c->res) ==
		    PGRES_FATAL_ERROR || PQresultStatus(c->res) ==
		    PGRES_NONFATAL_ERROR)) {
			PQclear(r);	/* keep the first error */
			continue;
		}
		if (c->res != NULL)
			PQclear(c->res);
		c->res = r;
	}
}

static void
notifies(struct pgconn *c)
{
	struct pgpool *p = c->pool;
	PGnotify *n;

	while (pgconn_up(c) && (n = PQnotifies(c->conn)) != NULL) {
		for (struct pgsub *s = p->subs; s != NULL && c->listener &&
		    pgconn_up(c); s = s->next)
			if (strcmp(s->channel, n->relname) == 0)
				s->notified(s->data, n->relname, n->extra);
		PQfreemem(n);
	}
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct pgconn *c = h->data;
	int r;

	if (c->state == C_CONNECTING) {
		connect_step(c);
		return;
	}
	if (!pgconn_up(c))
		return;
	if (status < 0)		/* EPOLLERR: libpq finds out what it is */
		events = UV_READABLE | UV_WRITABLE;
	if ((events & UV_READABLE) && !PQconsumeInput(c->conn)) {
		/* An error result sent before the end is still readable. */
		drain(c);
		if (pgconn_up(c))
			pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	if (c->want_flush && (r = PQflush(c->conn)) != 1) {
		if (r < 0) {
			drain(c);
			if (pgconn_up(c))
				pgconn_fail(c, PQerrorMessage(c->conn));
			return;
		}
		c->want_flush = false;
	}
	drain(c);
	notifies(c);
	if (!pgconn_up(c))
		return;
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		pgconn_fail(c, PQerrorMessage(c->conn));
		return;
	}
	(void)arm(c, UV_READABLE | (c->want_flush ? UV_WRITABLE : 0));
}

static void
on_timer(uv_timer_t *t)
{
	struct pgconn *c = container_of(t, struct pgconn, timer);
	char msg[64];

	if (c->state == C_CONNECTING) {
		snprintf(msg, sizeof msg, "no connection after %u ms",
		    c->pool->connect_timeout_ms);
		pgconn_fail(c, msg);
	} else if (c->state == C_BUSY) {
		snprintf(msg, sizeof msg, "no answer after %u ms",
		    QUERY_TIMEOUT_MS);
		pgconn_fail(c, msg);
	} else
		conn_start(c);
}

void
pgconn_shut(struct pgconn *c)
{
	if (c->state == C_SHUT)
		return;
	conn_drop(c);
	c->state = C_SHUT;
	sbuf_free(&c->rhost);
	sbuf_free(&c->raddr);
	sbuf_free(&c->rport);
	uv_close((uv_handle_t *)&c->timer, pgpool_handle_closed);
}

void
pgconn_init(struct pgpool *p, struct pgconn *c, unsigned id, bool listener)
{
	c->pool = p;
	c->id = id;
	c->listener = listener;
	c->state = C_DOWN;
	c->fd = -1;
	uv_timer_init(p->loop, &c->timer);
	c->timer.data = p;	/* for pgpool_handle_closed */
	p->handles++;
	conn_start(c);
}
