/*
 * What http.c and http-guard.c share: the server's state and a
 * connection's.  Nothing else includes this.
 */
#ifndef KILN_HTTP_INT_H
#define KILN_HTTP_INT_H

#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <uv.h>

#include "addrcount.h"
#include "conf.h"

struct api_env;
struct http_req;
struct http_stream;

struct http_server {
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	uv_timer_t deadline;	/* header_timeout of struct http_conn */
	uv_timer_t notes;	/* logs the counts held back by log_notes */
	const struct kiln_config *conf;
	const struct api_env *env;
	uint16_t port;
	unsigned active;	/* requests with state, incl. suspended */
	int in_run;		/* inside MHD_run: never re-enter */
	int rerun;		/* a connection closed: run MHD once more */
	int stopping;		/* quiesced, waiting for active == 0 */
	int stopped;		/* MHD stopped, handles closing */
	int handles_open;
	/* Requests MHD let go while their handler still works on them
	 * (forced stop): done() waits for their completion, which may
	 * still use what the server's caller closes after done(). */
	unsigned orphans;
	struct http_stream *streams;	/* streamed responses in flight */
	struct http_req *reqs;		/* requests with state */
	struct http_conn *conns;	/* every open connection */
	struct addrcount *peers;	/* connections per client network */
	/* Refusals and cuts not logged yet (one line per 10 s at most). */
	unsigned refused, cut;
	uint64_t noted_ms;
	struct addrcount_key refused_net;
	void (*done)(void *);
	void *done_data;
	char *tls_key, *tls_cert;	/* PEM, kept while MHD runs */
};

/*
 * One TCP connection, from its acceptance to its close (MHD's socket
 * context).  MHD's own timeout is an idle timeout: a client sending a
 * header line every few seconds would keep its slot forever.  So each
 * request must be whole (headers and body) within header_timeout of
 * `since`, the acceptance or the end of the connection's previous
 * request; a request being handled (a log being followed, a submission
 * waiting for its commit) is past that and is never cut.
 */
struct http_conn {
	struct http_server *srv;
	int fd;
	uint64_t since;			/* ms, uv_hrtime's clock */
	int busy;			/* its request is whole */
	int cut;			/* shut down for its deadline */
	int counted;			/* in srv->peers under net */
	struct addrcount_key net;
	struct http_conn *prev, *next;	/* in srv->conns */
};

/* Run MHD at the end of this loop iteration. */
void http_schedule_run(struct http_server *srv);

/* http-guard.c: header_timeout and max_connections_per_ip. */
/* MHD_OPTION_ACCEPT_POLICY_CALLBACK: max_connections_per_ip, per /64. */
enum MHD_Result http_guard_accept(void *cls, const struct sockaddr *addr,
    socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION: a connection starts or closes. */
void http_guard_connection(void *cls, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode toe);
/* A request on c ended: the next one has header_timeout from now. */
void http_guard_next(struct http_server *srv, struct http_conn *c);
/* Log the refusals and cuts held back, now (at stop). */
void http_guard_flush(struct http_server *srv);

#endif
