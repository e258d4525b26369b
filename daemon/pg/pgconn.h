/*
 * A pool of PostgreSQL connections on the libuv loop: libpq in
 * non-blocking mode, each connection's socket watched by a uv_poll_t, so
 * that the loop never waits on the network (not to connect, not to
 * resolve a host name, not to send or read a query).  A small number of
 * query connections serve pgpool_query in FIFO order, one query each at
 * a time; one more, made on demand, only LISTENs.  Connections that fail
 * or break come back by themselves, with back-off.
 *
 * Everything here runs on the loop thread.  The synchronous side that
 * runs before the loop (migrations) is migrate.h.
 */
#ifndef KILN_PGCONN_H
#define KILN_PGCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

struct pgpool;

enum {
	PG_OK = 0,	/* res is PGRES_TUPLES_OK or PGRES_COMMAND_OK */
	PG_ESQL = -1,	/* res is the error: PQresultErrorField(res,
			 * PG_DIAG_SQLSTATE), PQresultErrorMessage(res) */
	PG_ELOST = -2,	/* the connection broke after the query was sent:
			 * it may or may not have committed; res is NULL */
	PG_EDOWN = -3	/* never sent: no connection came up in time, or
			 * the pool is closing; res is NULL */
};

/*
 * A query's completion, on the loop, always after pgpool_query returned.
 * The pool PQclear()s res after done returns: copy what you keep.
 * done may call pgpool_query and pgpool_close.
 */
typedef void (*pg_done)(void *data, PGresult *res, int rc);

struct pgpool_stats {
	uint64_t queries;	/* completed, whatever the outcome */
	uint64_t errors;	/* of them, with rc != PG_OK */
	uint64_t reconnects;	/* connections made again after one broke */
	unsigned size;		/* query connections */
	unsigned up;		/* of them, connected now */
	unsigned busy;		/* of them, with a query in flight now */
	unsigned queued;	/* queries waiting for a connection now */
	bool listening;		/* the LISTEN connection is subscribed */
};

/*
 * Check conninfo (a "key=value ..." string or a postgresql:// URI,
 * PQconninfoParse) and start `size` (1 to 64) query connections on loop.
 * Returns 0, or -1 with the reason in err; never waits, even for a host
 * name (resolved on libuv's thread pool).  Messages name the host, port
 * and database, never a password.
 */
int pgpool_open(struct pgpool **out, uv_loop_t *loop, const char *conninfo,
    unsigned size, char *err, size_t errsize);

/*
 * How long (ms, default 5000) a query waits for a connection while none
 * is up before it completes with PG_EDOWN.  While at least one is up a
 * query waits for its turn however long that takes.
 */
void pgpool_set_queue_timeout(struct pgpool *p, unsigned ms);

/*
 * Send sql (one statement; $1..$n are the params, in text, NULL for SQL
 * NULL) on the first idle connection, or queue it in FIFO order.  sql and
 * params are copied; nparams is at most 65535 (the protocol's limit).
 * Results come in the order queries complete.  done may be NULL.  After
 * pgpool_close the query completes with PG_EDOWN.  No COPY: a COPY ends
 * the session (PG_ELOST).
 */
void pgpool_query(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done done, void *data);

/*
 * Call notified(data, channel, payload) for each NOTIFY on channel (a
 * lower-case SQL identifier: [a-z_][a-z0-9_]*, at most 63 bytes),
 * received on the pool's dedicated LISTEN connection.  Each time the
 * subscription is made, at first and after every reconnect, notified
 * runs once with channel and payload NULL: notifications sent while the
 * connection was down are lost, so the caller looks for itself then.
 * Returns 0, or -1 for a bad channel name or a closing pool.
 */
int pgpool_listen(struct pgpool *p, const char *channel,
    void (*notified)(void *data, const char *channel, const char *payload),
    void *data);

/* At least one query connection is connected. */
bool pgpool_up(const struct pgpool *p);

void pgpool_stats(const struct pgpool *p, struct pgpool_stats *st);

/*
 * Close the pool: queries in flight finish (their done runs), queued ones
 * complete with PG_EDOWN, connections close; then closed(data) runs on
 * the loop and the pool is freed.  closed may be NULL.
 */
void pgpool_close(struct pgpool *p, void (*closed)(void *data), void *data);

#endif
