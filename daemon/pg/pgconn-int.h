/*
 * Private to daemon/pg/: the pool (pgpool.c: the queue of queries, their
 * dispatch and expiry, LISTEN subscriptions, the close) and its
 * connections (pgconn.c: one libpq session on the loop each).
 */
#ifndef KILN_PGCONN_INT_H
#define KILN_PGCONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "pg/pgconn.h"
#include "sbuf.h"

#define POOL_MAX		64
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		5000
#define CONNECT_TIMEOUT_MS	10000
#define QUEUE_TIMEOUT_MS	5000
/*
 * A query unanswered this long ends its connection (PG_ELOST: the
 * callers' retries take over), so that a frozen server or a row lock
 * held by an idle session never holds a write, or kilnd's stop, for
 * ever.  The server cancels a statement before that (STATEMENT_TIMEOUT:
 * a clean error, the session kept), so that a write that waited on a
 * lock does not commit long after its caller gave up on it.  (A conninfo
 * with options= of its own replaces this.)
 */
#define QUERY_TIMEOUT_MS	30000
#define STATEMENT_TIMEOUT	"-c statement_timeout=25s"

struct pgq {
	struct pgq *next;
	char *sql;
	char **params;
	int nparams;
	pg_done done;
	void *data;
	uint64_t queued_at;	/* uv_now */
};

struct pgsub {
	struct pgsub *next;
	char *channel;
	void (*notified)(void *, const char *, const char *);
	void *data;
	bool subscribed;	/* LISTEN done on the current session */
};

enum cstate { C_DOWN, C_RESOLVING, C_CONNECTING, C_IDLE, C_BUSY, C_SHUT };

struct pgconn {
	struct pgpool *pool;
	unsigned id;		/* for the log; the listener is size + 1 */
	bool listener;
	enum cstate state;
	PGconn *conn;
	uv_poll_t *poll;	/* heap: a new one when the socket changes */
	int fd;			/* what poll watches */
	uv_timer_t timer;	/* back-off when DOWN, deadline when CONNECTING */
	struct pgq *q;		/* in flight (query connections) */
	PGresult *res;		/* the first error, else the last result */
	bool want_flush;	/* PQflush said 1: wait for writable too */
	bool relisten;		/* a channel came while LISTEN was in flight */
	bool was_up;
	unsigned attempts;	/* failed in a row */
	struct sbuf rhost, raddr, rport; /* the resolved lists */
	unsigned ri;		/* the next host to resolve */
};

/* A host of the conninfo's list, kept only when one of them is a name
 * that we resolve ourselves. */
struct pghost {
	char *name;
	char *port;		/* NULL: libpq's (one port for all) */
	bool resolve;		/* a name, not an address or a socket path */
};

struct pgpool {
	uv_loop_t *loop;
	char *conninfo;
	char *where;		/* "host=... port=... dbname=...", no secret */
	struct pghost *hosts;
	unsigned nhosts;
	unsigned connect_timeout_ms;
	unsigned queue_timeout_ms;
	struct pgconn *conns;
	unsigned size;
	struct pgconn *listener;	/* made by the first pgpool_listen */
	struct pgsub *subs;
	struct pgq *head, **tail;
	unsigned queued;
	uv_timer_t qtimer;	/* queued queries' expiry; the close's kick */
	uint64_t down_since;	/* uv_now when the last connection went */
	bool was_up;
	unsigned handles;	/* open handles and requests: free at 0 */
	bool closing, qtimer_closed;
	void (*closed)(void *);
	void *closed_data;
	uint64_t queries, errors, reconnects;
	uint64_t rng;
};

static inline bool
pgconn_up(const struct pgconn *c)
{
	return c->state == C_IDLE || c->state == C_BUSY;
}

/* pgconn.c */
void pgconn_init(struct pgpool *p, struct pgconn *c, unsigned id,
    bool listener);
/* The session failed or broke: drop it, PG_ELOST for its query, and
 * reconnect after a back-off (unless closing). */
void pgconn_fail(struct pgconn *c, const char *why);
/* 0, or -1 when the connection cannot take q (q is still the caller's). */
int pgconn_send(struct pgconn *c, struct pgq *q);
void pgconn_listen(struct pgconn *c);
/* Close for good (the pool is closing). */
void pgconn_shut(struct pgconn *c);
/* libpq's message (lines, tabs, a trailing newline) as one line in buf. */
const char *pg_oneline(char *buf, size_t size, const char *msg);

/* pgpool.c */
unsigned pgpool_nup(const struct pgpool *p);
/* After a query connection came or went. */
void pgpool_update(struct pgpool *p);
void pgpool_dispatch(struct pgpool *p);
/* done(data, res, rc), then free q and res. */
void pgpool_finish(struct pgpool *p, struct pgq *q, PGresult *res, int rc);
void pgpool_close_progress(struct pgpool *p);
void pgpool_handle_closed(uv_handle_t *h);
void pgpool_maybe_free(struct pgpool *p);

#endif
