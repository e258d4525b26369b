/*
 * The PostgreSQL pool (pgconn.h): queries wait in one FIFO queue and go to
 * the first idle query connection (pgconn.c); while no connection is up
 * they wait at most the queue timeout.  Subscriptions share one LISTEN
 * connection, made on demand.  The pool is freed once the last of its
 * handles closed, always from a close callback, never under a caller.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg/pgconn-int.h"
#include "util.h"
#include "xmalloc.h"

static void on_qtimer(uv_timer_t *t);
static void expiry_arm(struct pgpool *p);

unsigned
pgpool_nup(const struct pgpool *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->size; i++)
		n += pgconn_up(&p->conns[i]);
	return n;
}

/* The pool is freed once its last handle is closed and its last request
 * came back: only ever from a close or request callback, so never under
 * a caller's feet. */
void
pgpool_maybe_free(struct pgpool *p)
{
	struct pgsub *s;
	void (*closed)(void *);
	void *data;

	if (!p->closing || p->handles > 0)
		return;
	while ((s = p->subs) != NULL) {
		p->subs = s->next;
		free(s->channel);
		free(s);
	}
	for (unsigned i = 0; i < p->nhosts; i++) {
		free(p->hosts[i].name);
		free(p->hosts[i].port);
	}
	free(p->hosts);
	free(p->listener);
	free(p->conns);
	free(p->conninfo);
	free(p->where);
	closed = p->closed;
	data = p->closed_data;
	free(p);
	if (closed != NULL)
		closed(data);
}

void
pgpool_handle_closed(uv_handle_t *h)
{
	struct pgpool *p = h->data;

	p->handles--;
	pgpool_maybe_free(p);
}

/* The pool's view after a connection came or went. */
void
pgpool_update(struct pgpool *p)
{
	bool up = pgpool_nup(p) > 0;

	if (p->was_up && !up) {
		p->down_since = uv_now(p->loop);
		if (!p->closing)
			log_warn("postgresql %s: no connection up", p->where);
	}
	p->was_up = up;
	expiry_arm(p);
}

/* done, then the result's and the query's memory. */
void
pgpool_finish(struct pgpool *p, struct pgq *q, PGresult *res, int rc)
{
	p->queries++;
	if (rc != PG_OK)
		p->errors++;
	if (q->done != NULL)
		q->done(q->data, res, rc);
	if (res != NULL)
		PQclear(res);
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	free(q->sql);
	free(q);
}

/* Hand queued queries to idle connections, oldest first. */
void
pgpool_dispatch(struct pgpool *p)
{
	while (p->head != NULL && !p->closing) {
		struct pgconn *c = NULL;
		struct pgq *q;

		for (unsigned i = 0; i < p->size && c == NULL; i++)
			if (p->conns[i].state == C_IDLE)
				c = &p->conns[i];
		if (c == NULL)
			return;
		q = p->head;
		if ((p->head = q->next) == NULL)
			p->tail = &p->head;
		q->next = NULL;
		p->queued--;
		if (pgconn_send(c, q) == 0)
			continue;
		/* Not sent: back to the front, and this session is done for. */
		if ((q->next = p->head) == NULL)
			p->tail = &q->next;
		p->head = q;
		p->queued++;
		pgconn_fail(c, PQerrorMessage(c->conn));
	}
}

/*
 * Queued queries wait for a connection as long as one is up (it will
 * come to them); with none up, queue_timeout_ms counted from when the
 * query came or the last connection went, whichever is later.
 */
static void
expiry_arm(struct pgpool *p)
{
	uint64_t now, due = UINT64_MAX;

	if (p->qtimer_closed)
		return;
	if (p->head == NULL) {
		uv_timer_stop(&p->qtimer);
		return;
	}
	if (p->closing) {
		uv_timer_start(&p->qtimer, on_qtimer, 0, 0);
		return;
	}
	if (pgpool_nup(p) > 0) {
		uv_timer_stop(&p->qtimer);
		return;
	}
	now = uv_now(p->loop);
	for (struct pgq *q = p->head; q != NULL; q = q->next) {
		uint64_t from = q->queued_at > p->down_since ? q->queued_at :
		    p->down_since;

		if (from + p->queue_timeout_ms < due)
			due = from + p->queue_timeout_ms;
	}
	uv_timer_start(&p->qtimer, on_qtimer, due > now ? due - now : 0, 0);
}

static void
on_qtimer(uv_timer_t *t)
{
	struct pgpool *p = container_of(t, struct pgpool, qtimer);
	struct pgq *expired = NULL, **etail = &expired, **pq, *q;
	uint64_t now = uv_now(p->loop);

	if (!p->closing && pgpool_nup(p) > 0)
		return;
	for (pq = &p->head; (q = *pq) != NULL;) {
		uint64_t from = q->queued_at > p->down_since ? q->queued_at :
		    p->down_since;

		if (!p->closing && from + p->queue_timeout_ms > now) {
			pq = &q->next;
			continue;
		}
		*pq = q->next;
		q->next = NULL;
		*etail = q;
		etail = &q->next;
		p->queued--;
	}
	p->tail = pq;
	/* done may queue more: the list is consistent before it runs. */
	while ((q = expired) != NULL) {
		expired = q->next;
		pgpool_finish(p, q, NULL, PG_EDOWN);
	}
	expiry_arm(p);
	pgpool_close_progress(p);
}

/* Closing: each connection closes once it has no query in flight (the
 * LISTEN one at once), the queue's timer once no query waits. */
void
pgpool_close_progress(struct pgpool *p)
{
	bool busy = false;

	if (!p->closing)
		return;
	for (unsigned i = 0; i < p->size; i++) {
		if (p->conns[i].state == C_BUSY)
			busy = true;
		else
			pgconn_shut(&p->conns[i]);
	}
	if (p->listener != NULL)
		pgconn_shut(p->listener);
	if (!busy && p->head == NULL && !p->qtimer_closed) {
		p->qtimer_closed = true;
		uv_close((uv_handle_t *)&p->qtimer, pgpool_handle_closed);
	}
}

/* The look-ups libpq would do itself, blocking: split host (and port)
 * lists; 0 or -1. */
static int
parse_hosts(struct pgpool *p, const char *host, const char *port, char *err,
    size_t errsize)
{
	char *hs = xstrdup(host), *ps = xstrdup(port != NULL ? port : "");
	char *hnext = hs, *pnext = ps;	/* strsep's cursors */
	unsigned nports = 1, any = 0;
	int rc = -1;

	for (const char *s = hs; *s; s++)
		p->nhosts += *s == ',';
	p->nhosts++;
	for (const char *s = ps; *s; s++)
		nports += *s == ',';
	if (nports != 1 && nports != p->nhosts) {
		util_errorf(err, errsize, "postgresql %s: %u ports for %u "
		    "hosts: give one port, or one per host", p->where, nports,
		    p->nhosts);
		goto out;
	}
	p->hosts = xcalloc(p->nhosts, sizeof *p->hosts);
	for (unsigned i = 0; i < p->nhosts; i++) {
		char *h = strsep(&hnext, ",");
		struct in6_addr a6;
		struct pghost *e = &p->hosts[i];

		e->name = xstrdup(h != NULL ? h : "");
		if (nports > 1)
			e->port = xstrdup(strsep(&pnext, ","));
		e->resolve = e->name[0] != '\0' && e->name[0] != '/' &&
		    e->name[0] != '@' &&
		    inet_pton(AF_INET, e->name, &a6) != 1 &&
		    inet_pton(AF_INET6, e->name, &a6) != 1;
		any += e->resolve;
	}
	if (any == 0) {		/* nothing to resolve: libpq's own lists */
		for (unsigned i = 0; i < p->nhosts; i++) {
			free(p->hosts[i].name);
			free(p->hosts[i].port);
		}
		free(p->hosts);
		p->hosts = NULL;
		p->nhosts = 0;
	}
	rc = 0;
out:
	free(hs);
	free(ps);
	return rc;
}

int
pgpool_open(struct pgpool **out, uv_loop_t *loop, const char *conninfo,
    unsigned size, char *err, size_t errsize)
{
	PQconninfoOption *opts;
	char *perr = NULL, msg[256];
	const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL;
	const char *user = NULL, *timeout = NULL;
	struct pgpool *p;
	int64_t ms;

	*out = NULL;
	if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		util_errorf(err, errsize, "postgresql connection string: %s",
		    pg_oneline(msg, sizeof msg, perr != NULL ? perr :
		    "out of memory"));
		PQfreemem(perr);
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val != NULL && *o->val ? o->val : NULL;

		if (strcmp(o->keyword, "host") == 0)
			host = v;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = v;
		else if (strcmp(o->keyword, "port") == 0)
			port = v;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = v;
		else if (strcmp(o->keyword, "user") == 0)
			user = v;
		else if (strcmp(o->keyword, "connect_timeout") == 0)
			timeout = v;
	}
	p = xcalloc(1, sizeof *p);
	p->loop = loop;
	p->conninfo = xstrdup(conninfo);
	p->where = xasprintf("host=%s port=%s dbname=%s",
	    hostaddr != NULL ? hostaddr : host != NULL ? host : "(default)",
	    port != NULL ? port : "(default)",
	    db != NULL ? db : user != NULL ? user : "(default)");
	p->connect_timeout_ms = CONNECT_TIMEOUT_MS;
	if (timeout != NULL) {
		/* libpq's meaning: seconds, 0 for none; at least 2 s. */
		if (util_parse_int64(timeout, 0, 86400, &ms) != 0) {
			util_errorf(err, errsize, "postgresql %s: connect_timeout "
			    "\"%s\": want seconds", p->where, timeout);
			goto fail;
		}
		p->connect_timeout_ms = ms == 0 ? 86400000u :
		    (unsigned)(ms < 2 ? 2 : ms) * 1000u;
	}
	if (size < 1 || size > POOL_MAX) {
		util_errorf(err, errsize, "postgresql %s: %u connections: want "
		    "1 to %u", p->where, size, POOL_MAX);
		goto fail;
	}
	if (hostaddr == NULL && host != NULL &&
	    parse_hosts(p, host, port, err, errsize) != 0)
		goto fail;
	PQconninfoFree(opts);
	p->queue_timeout_ms = QUEUE_TIMEOUT_MS;
	p->size = size;
	p->head = NULL;
	p->tail = &p->head;
	p->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)p;
	p->rng |= 1;
	p->down_since = uv_now(loop);
	uv_timer_init(loop, &p->qtimer);
	p->qtimer.data = p;
	p->handles++;
	p->conns = xcalloc(size, sizeof *p->conns);
	for (unsigned i = 0; i < size; i++)
		pgconn_init(p, &p->conns[i], i + 1, false);
	*out = p;
	return 0;
fail:
	PQconninfoFree(opts);
	for (unsigned i = 0; i < p->nhosts && p->hosts != NULL; i++) {
		free(p->hosts[i].name);
		free(p->hosts[i].port);
	}
	free(p->hosts);
	free(p->conninfo);
	free(p->where);
	free(p);
	return -1;
}

void
pgpool_set_queue_timeout(struct pgpool *p, unsigned ms)
{
	p->queue_timeout_ms = ms;
	expiry_arm(p);
}

void
pgpool_query(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done done, void *data)
{
	struct pgq *q = xcalloc(1, sizeof *q);

	/* After the close has finished, nothing is left to answer. */
	assert(!p->qtimer_closed);
	/* The protocol's limit: beyond it PQsendQueryParams refuses on a
	 * healthy connection, which must not look like a broken one. */
	assert(sql != NULL && nparams >= 0 && nparams <= 65535);
	q->sql = xstrdup(sql);
	q->nparams = nparams;
	q->params = xcalloc(nparams > 0 ? (size_t)nparams : 1,
	    sizeof *q->params);
	for (int i = 0; i < nparams; i++)
		q->params[i] = params[i] != NULL ? xstrdup(params[i]) : NULL;
	q->done = done;
	q->data = data;
	q->queued_at = uv_now(p->loop);
	*p->tail = q;
	p->tail = &q->next;
	p->queued++;
	pgpool_dispatch(p);
	if (p->head != NULL)
		expiry_arm(p);
}

static bool
channel_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 63 && strchr("0123456789", s[0]) == NULL &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int
pgpool_listen(struct pgpool *p, const char *channel,
    void (*notified)(void *data, const char *channel, const char *payload),
    void *data)
{
	struct pgsub *s, **ps;

	if (p->closing || !channel_ok(channel))
		return -1;
	s = xcalloc(1, sizeof *s);
	s->channel = xstrdup(channel);
	s->notified = notified;
	s->data = data;
	for (ps = &p->subs; *ps != NULL; ps = &(*ps)->next)
		;
	*ps = s;
	if (p->listener == NULL) {
		p->listener = xcalloc(1, sizeof *p->listener);
		pgconn_init(p, p->listener, p->size + 1, true);
	} else if (p->listener->state == C_IDLE)
		pgconn_listen(p->listener);
	else if (p->listener->state == C_BUSY)
		p->listener->relisten = true;
	return 0;
}

bool
pgpool_up(const struct pgpool *p)
{
	return pgpool_nup(p) > 0;
}

void
pgpool_stats(const struct pgpool *p, struct pgpool_stats *st)
{
	memset(st, 0, sizeof *st);
	st->queries = p->queries;
	st->errors = p->errors;
	st->reconnects = p->reconnects;
	st->size = p->size;
	st->up = pgpool_nup(p);
	for (unsigned i = 0; i < p->size; i++)
		st->busy += p->conns[i].state == C_BUSY;
	st->queued = p->queued;
	st->listening = p->listener != NULL && p->subs != NULL &&
	    pgconn_up(p->listener);
	for (struct pgsub *s = p->subs; s != NULL; s = s->next)
		st->listening = st->listening && s->subscribed;
}

void
pgpool_close(struct pgpool *p, void (*closed)(void *data), void *data)
{
	assert(!p->closing);
	p->closing = true;
	p->closed = closed;
	p->closed_data = data;
	for (unsigned i = 0; i < p->size; i++)
		uv_timer_stop(&p->conns[i].timer);
	/* The queued ones get PG_EDOWN from the timer: never from inside
	 * this call, whose caller may not expect it. */
	expiry_arm(p);
	pgpool_close_progress(p);
}
