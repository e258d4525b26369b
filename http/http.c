#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <microhttpd.h>
#include <sodium.h>

#include "addrcount.h"
#include "http.h"
#include "http-int.h"
#include "log.h"
#include "metrics.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"

/* One request's state, from its first header to its completion. */
struct http_req {
	struct api_req api;
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_conn *hc;		/* its connection, or NULL */
	int64_t start_ms;
	char *body;
	size_t len, cap;
	unsigned long long declared;	/* Content-Length, or 0 */
	int too_large;
	int suspended;
	int answered;			/* api holds the answer to send */
	int pending;			/* a handler will call complete() */
	int orphaned;			/* MHD let go while pending */
	struct http_req *prev, *next;	/* in srv->reqs */
};

/* A streamed (chunked) response and the connection it belongs to. */
struct http_stream {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct api_stream api;
	int suspended;
	struct http_stream *prev, *next;
};

static void run_mhd(struct http_server *srv);
static void check_stopped(struct http_server *srv);
static void free_req(struct http_req *r);
static void maybe_closed(struct http_server *srv);

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct http_server *srv = container_of(h, struct http_server, poll);

	(void)status;
	(void)events;
	run_mhd(srv);
}

static void
on_timer(uv_timer_t *h)
{
	run_mhd(container_of(h, struct http_server, timer));
}

/*
 * Run MHD, then arm the timer from MHD_get_timeout.  A timeout of 0 means
 * MHD has work it will not signal through the edge-triggered epoll fd
 * again: run again on the next loop iteration, never wait.
 */
static void
run_mhd(struct http_server *srv)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (srv->stopped || srv->in_run)
		return;
	srv->in_run = 1;
	MHD_run(srv->mhd);
	srv->in_run = 0;
	if (srv->stopping)
		check_stopped(srv);
	if (srv->stopped)
		return;
	/*
	 * At max_connections MHD takes its listening socket out of its
	 * epoll set, and puts it back only at the start of a run once a
	 * connection has closed: without that run, connections waiting
	 * in the listen queue would wait until some other event came.
	 */
	if (srv->rerun) {
		srv->rerun = 0;
		uv_timer_start(&srv->timer, on_timer, 0, 0);
	} else if (MHD_get_timeout(srv->mhd, &t) == MHD_YES)
		uv_timer_start(&srv->timer, on_timer, t, 0);
	else
		uv_timer_stop(&srv->timer);
}

/*
 * Run MHD on the next loop iteration, never from inside a callback of
 * ours that others are iterating over (resuming a connection wakes
 * nothing by itself).
 */
void
http_schedule_run(struct http_server *srv)
{
	if (srv->stopped)
		return;
	/* on_timer runs MHD, which also checks a drain's end. */
	uv_timer_start(&srv->timer, on_timer, 0, 0);
}
static const char *
query_arg(struct api_req *api, const char *name)
{
	struct http_req *r = api->http;

	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

/*
 * %HH decoding of paths and query arguments, as MHD's own, except that
 * %00 stays as it is: a decoded NUL would cut the C string handlers see
 * ("go-hello%00.txt" would become "go-hello"), so it is left for the
 * handlers to refuse as an invalid name.
 */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *r = s, *w = s;

	(void)cls;
	(void)c;
	while (*r != '\0') {
		int hi, lo;
		if (r[0] == '%' && (hi = util_hexval(r[1])) >= 0 &&
		    (lo = util_hexval(r[2])) >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

static const char *
header_value(struct api_req *api, const char *name)
{
	struct http_req *r = api->http;

	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The lookups of a request whose connection is gone. */
static const char *
no_value(struct api_req *api, const char *name)
{
	(void)api;
	(void)name;
	return NULL;
}

/* Called (on the loop thread) when a waiting stream has more. */
static void
stream_wake(void *waker)
{
	struct http_stream *h = waker;
	struct http_server *srv = h->srv;

	if (!h->suspended)
		return;
	h->suspended = 0;
	MHD_resume_connection(h->conn);
	/* Not MHD_run here: the caller is walking its own list of waiters,
	 * and a run may complete (and free) any of them. */
	http_schedule_run(srv);
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *h = cls;
	long n;

	(void)pos;
	/* Shutting down: end followers cleanly rather than cut them. */
	if (h->srv->stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = h->api.read(h->api.cls, buf, max, stream_wake, h);
	if (n > 0)
		return n;
	if (n == 0) {
		/* A suspended connection never notices its client leaving:
		 * look at the socket on each wake-up. */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    h->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		char c;
		if (ci != NULL) {
			ssize_t p = recv(ci->connect_fd, &c, 1,
			    MSG_PEEK | MSG_DONTWAIT);
			if (p == 0 || (p < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR))
				return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		/* Nothing yet: park the connection until wake (returning 0
		 * unsuspended would make MHD poll this on every run). */
		h->suspended = 1;
		MHD_suspend_connection(h->conn);
		return 0;
	}
	return n == API_STREAM_END ? MHD_CONTENT_READER_END_OF_STREAM :
	    MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_free(void *cls)
{
	struct http_stream *h = cls;

	if (h->api.free)
		h->api.free(h->api.cls);
	if (h->prev)
		h->prev->next = h->next;
	else if (h->srv->streams == h)
		h->srv->streams = h->next;
	if (h->next)
		h->next->prev = h->prev;
	free(h);
}

static struct MHD_Response *
make_response(struct http_req *r)
{
	struct api_req *a = &r->api;
	struct MHD_Response *resp;
	struct stat sb;

	/* A 204 or 304 has no body, not even a chunked one's last chunk
	 * (a proxied one is a stream: api/proxy.c), and a stream known to
	 * be empty is an empty body with its length; the stream stays the
	 * request's, released with it. */
	if (a->stream.read != NULL && a->status != 204 && a->status != 304 &&
	    !a->stream.empty) {
		struct http_stream *h = xcalloc(1, sizeof *h);
		h->srv = r->srv;
		h->conn = r->conn;
		h->api = a->stream;
		memset(&a->stream, 0, sizeof a->stream);	/* ours now */
		h->next = r->srv->streams;
		if (h->next)
			h->next->prev = h;
		r->srv->streams = h;
		resp = MHD_create_response_from_callback(h->api.size > 0 ?
		    h->api.size : MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, h,
		    stream_free);
		if (resp == NULL)
			stream_free(h);
		return resp;
	}
	if (a->resp_fd > 0) {
		int fd = a->resp_fd;
		a->resp_fd = -1;
		if (fstat(fd, &sb) != 0) {
			close(fd);
			return NULL;
		}
		/* Streams from the file: never read whole into memory.
		 * MHD closes fd. */
		if (a->resp_size >= 0)
			resp = MHD_create_response_from_fd_at_offset64(
			    (uint64_t)a->resp_size, fd,
			    (uint64_t)a->resp_off);
		else
			resp = MHD_create_response_from_fd(
			    (uint64_t)sb.st_size, fd);
		if (resp == NULL)
			close(fd);
		return resp;
	}
	resp = MHD_create_response_from_buffer(a->resp_len, a->resp_body,
	    MHD_RESPMEM_MUST_FREE);
	if (resp != NULL) {
		a->resp_body = NULL;	/* MHD frees it */
		a->resp_len = 0;
	}
	return resp;
}

static bool
has_header(const struct api_req *a, const char *name)
{
	for (size_t i = 0; i < a->nheaders; i++)
		if (strcasecmp(a->headers[i].name, name) == 0)
			return true;
	return false;
}

static enum MHD_Result
send_answer(struct http_req *r)
{
	struct api_req *a = &r->api;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = make_response(r);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    a->resp_type ? a->resp_type : "application/json");
	if (!has_header(a, "Cache-Control"))
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	for (size_t i = 0; i < a->nheaders; i++)
		MHD_add_response_header(resp, a->headers[i].name,
		    a->headers[i].value);
	ret = MHD_queue_response(r->conn, a->status, resp);
	MHD_destroy_response(resp);
	metrics_http(a->method, a->route, a->status);
	if (r->srv->conf->access_log) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		char host[64] = "-";
		if (ci != NULL && ci->client_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)
			    ci->client_addr)->sin_addr, host, sizeof host);
		else if (ci != NULL && ci->client_addr->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)
			    ci->client_addr)->sin6_addr, host, sizeof host);
		log_info("access: %s \"%s %s\" %u %lld ms route=%s", host,
		    a->method, a->path, a->status,
		    (long long)(util_now_ms() - r->start_ms),
		    a->route ? a->route : "-");
	}
	log_debug("http: %s %s -> %u", a->method, a->path, a->status);
	return ret;
}

static enum MHD_Result
reply_too_large(struct http_req *r)
{
	api_reply_problem(&r->api, 413, "the request body is larger than "
	    "max_body (%zu bytes)", r->srv->conf->max_body);
	return send_answer(r);
}

/* Called on the loop thread by an API_PENDING handler when its answer is
 * ready: resume the connection and serve it (MHD_resume_connection wakes
 * nothing without an internal thread). */
static void
complete(struct api_req *api)
{
	struct http_req *r = api->http;
	struct http_server *srv = r->srv;

	r->pending = 0;
	if (r->orphaned) {
		/* The connection is gone (forced shutdown): only free; the
		 * server's done() may have waited for this one. */
		free_req(r);
		srv->orphans--;
		maybe_closed(srv);
		return;
	}
	r->answered = 1;
	if (r->suspended) {
		r->suspended = 0;
		MHD_resume_connection(r->conn);
	}
	http_schedule_run(srv);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_req *r = *con_cls;

	(void)version;
	if (r == NULL) {
		const char *cl;
		const union MHD_ConnectionInfo *ci;
		int64_t v;

		r = xcalloc(1, sizeof *r);
		r->srv = srv;
		r->conn = conn;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->hc = ci != NULL ? ci->socket_context : NULL;
		r->api.env = srv->env;
		r->api.method = method;
		r->api.version = version;
		r->api.path = url;
		r->api.query = query_arg;
		r->api.http = r;
		r->api.complete = complete;
		r->api.resp_fd = -1;
		r->api.resp_size = -1;
		r->start_ms = util_now_ms();
		r->api.header = header_value;
		r->api.content_type = MHD_lookup_connection_value(conn,
		    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
		*con_cls = r;
		srv->active++;
		r->next = srv->reqs;
		if (r->next)
			r->next->prev = r;
		srv->reqs = r;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && util_parse_int64(cl, 0, INT64_MAX, &v) == 0 &&
		    (uint64_t)v > srv->conf->max_body) {
			/* Answer before the body: MHD skips 100-continue and
			 * discards what arrives (0.9.75 has no body limit). */
			r->too_large = 1;
			return reply_too_large(r);
		}
		/* Answer on a later call: answering on the first one makes
		 * MHD 0.9.75 close keep-alive connections. */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_large)
			return MHD_YES;
		if (r->len + n > srv->conf->max_body) {
			/* Chunked upload past the limit: count, discard,
			 * answer 413 on the final call. */
			r->too_large = 1;
			free(r->body);
			r->body = NULL;
			r->len = r->cap = 0;
			return MHD_YES;
		}
		if (r->len + n > r->cap) {
			r->cap = r->len + n > r->cap * 2 ? r->len + n : r->cap * 2;
			r->body = xrealloc(r->body, r->cap + 1);
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	/* The request is whole: from here on header_timeout is over. */
	if (r->hc != NULL)
		r->hc->busy = 1;
	if (r->answered)
		return send_answer(r);
	if (r->suspended)
		return MHD_YES;
	if (r->too_large)
		return reply_too_large(r);
	r->api.body = r->body ? r->body : "";
	r->api.body_len = r->len;
	if (api_handle(&r->api) == API_PENDING) {
		r->pending = !r->answered;
		if (!r->answered) {
			r->suspended = 1;
			MHD_suspend_connection(conn);
		}
		return MHD_YES;
	}
	return send_answer(r);
}

static void
free_req(struct http_req *r)
{
	api_req_release(&r->api);
	free(r->body);
	free(r);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct http_req *r = *con_cls;
	const union MHD_ConnectionInfo *ci;
	struct http_conn *hc;

	/* The next request on this connection has header_timeout from now
	 * (and so has an idle keep-alive connection). */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	hc = ci != NULL ? ci->socket_context : NULL;
	if (hc != NULL)
		http_guard_next(srv, hc);
	if (r == NULL)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("http: %s %s ended early (%d)", r->api.method,
		    r->api.path, (int)toe);
	*con_cls = NULL;
	srv->active--;
	if (r->prev)
		r->prev->next = r->next;
	else if (srv->reqs == r)
		srv->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	if (r->pending) {
		/*
		 * complete() frees it.  The method, path, headers and query
		 * lived in the connection's memory, which MHD frees now: a
		 * completion that still looks at them finds nothing rather
		 * than freed memory.
		 */
		r->orphaned = 1;
		srv->orphans++;
		r->api.method = "-";
		r->api.path = "-";
		r->api.version = NULL;
		r->api.content_type = NULL;
		r->api.header = no_value;
		r->api.query = no_value;
		/* A wait on another host could outlast the stop by far
		 * (api/proxy.c): it ends now, and its completion frees r. */
		if (r->api.gone != NULL) {
			void (*gone)(void *) = r->api.gone;

			r->api.gone = NULL;
			gone(r->api.gone_data);
		}
	} else
		free_req(r);
	check_stopped(srv);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * MHD's messages about one client leaving mid-request (it hung up, or
 * header_timeout cut it) are the client's business, and a line each
 * would let anyone fill the log: debug only.
 */
static const char *const client_gone[] = {
	"Connection socket is closed when reading request",
	"Socket has been disconnected when reading request",
	"Connection was closed by remote side with incomplete request",
};

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof buf, fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(client_gone); i++) {
		if (strncmp(buf, client_gone[i], strlen(client_gone[i])) == 0) {
			log_debug("http: %s", buf);
			return;
		}
	}
	log_warn("http: %s", buf);
}

static void
free_tls(struct http_server *srv)
{
	if (srv->tls_key != NULL)
		sodium_memzero(srv->tls_key, strlen(srv->tls_key));
	free(srv->tls_key);
	free(srv->tls_cert);
	srv->tls_key = srv->tls_cert = NULL;
}

/* A PEM file whole (malloc'd), or NULL with a reason. */
static char *
read_pem(const char *path, char *err, size_t errsize)
{
	struct sbuf b = { 0 };
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errsize, "cannot read %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	while ((n = fread(buf, 1, sizeof buf, f)) > 0 && b.len < (1 << 20))
		sbuf_add(&b, buf, n);
	fclose(f);
	sodium_memzero(buf, sizeof buf);
	if (b.len == 0 || strstr(b.p, "-----BEGIN ") == NULL) {
		snprintf(err, errsize, "%s is not a PEM file", path);
		sbuf_free(&b);
		return NULL;
	}
	return sbuf_steal(&b, NULL);
}

int
http_start(struct http_server **out, uv_loop_t *loop,
    const struct sockaddr *addr, socklen_t addrlen,
    const struct kiln_config *conf, const struct api_env *env, char *err,
    size_t errsize)
{
	struct http_server *srv = xcalloc(1, sizeof *srv);
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[4];
	size_t nopts = 0;

	(void)addrlen;
	srv->loop = loop;
	srv->conf = conf;
	srv->env = env;
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/*
	 * So that one client cannot take every connection: on_accept
	 * counts per network (MHD's own per-IP limit counts exact
	 * addresses, and an IPv6 client has a /64 of them).
	 */
	srv->peers = addrcount_new();
	if (conf->tls_cert != NULL || conf->tls_key != NULL) {
		if (conf->tls_cert == NULL || conf->tls_key == NULL) {
			snprintf(err, errsize, "tls_cert and tls_key go "
			    "together: set both or neither");
			addrcount_free(srv->peers);
			free(srv);
			return -1;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errsize, "this libmicrohttpd has no TLS "
			    "support (tls_cert is set)");
			addrcount_free(srv->peers);
			free(srv);
			return -1;
		}
		if ((srv->tls_cert = read_pem(conf->tls_cert, err,
		    errsize)) == NULL ||
		    (srv->tls_key = read_pem(conf->tls_key, err,
		    errsize)) == NULL) {
			free_tls(srv);
			addrcount_free(srv->peers);
			free(srv);
			return -1;
		}
		flags |= MHD_USE_TLS;
		opts[nopts++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key };
		opts[nopts++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert };
	}
	opts[nopts++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	srv->mhd = MHD_start_daemon(flags, 0, http_guard_accept, srv, on_request, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, addr,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)conf->http_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)conf->max_connections,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, http_guard_connection, srv,
	    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
	    MHD_OPTION_ARRAY, opts,
	    MHD_OPTION_END);
	if (srv->mhd == NULL) {
		if (srv->tls_key != NULL)
			snprintf(err, errsize, "cannot serve HTTPS on %s: is "
			    "%s the key of the certificate %s? (see the "
			    "http: lines above)", conf->listen, conf->tls_key,
			    conf->tls_cert);
		else
			snprintf(err, errsize, "cannot listen on %s: %s "
			    "(address in use, or not an address of this "
			    "host?)", conf->listen, strerror(errno));
		free_tls(srv);
		addrcount_free(srv->peers);
		free(srv);
		return -1;
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_LISTEN_FD);
	if (info != NULL && getsockname(info->listen_fd,
	    (struct sockaddr *)&bound, &blen) == 0)
		srv->port = ntohs(bound.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&bound)->sin6_port :
		    ((struct sockaddr_in *)&bound)->sin_port);
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL) {
		snprintf(err, errsize, "libmicrohttpd has no epoll fd");
		MHD_stop_daemon(srv->mhd);
		free_tls(srv);
		addrcount_free(srv->peers);
		free(srv);
		return -1;
	}
	uv_timer_init(loop, &srv->timer);
	uv_timer_init(loop, &srv->deadline);
	uv_timer_init(loop, &srv->notes);
	uv_poll_init(loop, &srv->poll, info->epoll_fd);
	srv->handles_open = 4;
	uv_poll_start(&srv->poll, UV_READABLE, on_poll);
	run_mhd(srv);
	*out = srv;
	return 0;
}

uint16_t
http_port(const struct http_server *srv)
{
	return srv->port;
}

unsigned
http_active(const struct http_server *srv)
{
	return srv->active;
}

/*
 * Everything closed, and no handler still at work on a request of ours:
 * what the handlers use (the submitter, the scheduler) may go once done()
 * returns, so a request orphaned by a forced stop is waited for; its
 * steps wait only on the queue, which stops after.
 */
static void
maybe_closed(struct http_server *srv)
{
	void (*done)(void *) = srv->done;
	void *data = srv->done_data;

	if (srv->handles_open > 0 || srv->orphans > 0)
		return;
	free_tls(srv);
	addrcount_free(srv->peers);
	free(srv);
	if (done)
		done(data);
}

static void
on_close(uv_handle_t *h)
{
	struct http_server *srv = h->data;

	if (--srv->handles_open == 0)
		maybe_closed(srv);
}

static void
stop_now(struct http_server *srv)
{
	if (srv->stopped)
		return;
	srv->stopped = 1;
	/* MHD_stop_daemon aborts while connections are suspended: resume
	 * every one (a request waiting for its commit is orphaned by
	 * on_completed and freed when the commit returns). */
	for (struct http_stream *h = srv->streams; h; h = h->next) {
		if (h->suspended) {
			h->suspended = 0;
			MHD_resume_connection(h->conn);
		}
	}
	for (struct http_req *r = srv->reqs; r; r = r->next) {
		if (r->suspended) {
			r->suspended = 0;
			MHD_resume_connection(r->conn);
		}
	}
	/* Stop watching the epoll fd before MHD closes it. */
	uv_poll_stop(&srv->poll);
	uv_timer_stop(&srv->timer);
	uv_timer_stop(&srv->deadline);
	uv_timer_stop(&srv->notes);
	http_guard_flush(srv);
	/* Completes every request left and closes every connection. */
	MHD_stop_daemon(srv->mhd);
	srv->mhd = NULL;
	assert(srv->conns == NULL && addrcount_size(srv->peers) == 0);
	srv->poll.data = srv;
	srv->timer.data = srv;
	srv->deadline.data = srv;
	srv->notes.data = srv;
	uv_close((uv_handle_t *)&srv->poll, on_close);
	uv_close((uv_handle_t *)&srv->timer, on_close);
	uv_close((uv_handle_t *)&srv->deadline, on_close);
	uv_close((uv_handle_t *)&srv->notes, on_close);
}

static void
check_stopped(struct http_server *srv)
{
	if (srv->stopping && !srv->stopped && srv->active == 0 &&
	    !srv->in_run)
		stop_now(srv);
}

static void
on_drain_check(uv_timer_t *h)
{
	struct http_server *srv = container_of(h, struct http_server, timer);

	run_mhd(srv);
	if (!srv->stopped)
		check_stopped(srv);
}

void
http_shutdown(struct http_server *srv, int now, void (*done)(void *),
    void *data)
{
	MHD_socket fd;

	if (done != NULL) {
		srv->done = done;
		srv->done_data = data;
	}
	if (srv->stopped)
		return;
	if (now || srv->stopping) {
		if (srv->active > 0)
			log_warn("http: closing %u request(s) still in progress",
			    srv->active);
		stop_now(srv);
		return;
	}
	srv->stopping = 1;
	/* Waits that only a stop ends are answered now (api.h gone_at_stop):
	 * else they would hold the stop until shutdown_timeout and then be
	 * cut off without an answer.  Each answer may unlink its request. */
	for (struct http_req *r = srv->reqs, *next; r; r = next) {
		next = r->next;
		if (r->api.gone != NULL && r->api.gone_at_stop) {
			void (*gone)(void *) = r->api.gone;

			r->api.gone = NULL;
			gone(r->api.gone_data);
		}
	}
	/* Followers of live logs end now (their reader sees stopping). */
	for (struct http_stream *h = srv->streams; h; h = h->next) {
		if (h->suspended) {
			h->suspended = 0;
			MHD_resume_connection(h->conn);
		}
	}
	/* No new connections; requests in progress go on. */
	fd = MHD_quiesce_daemon(srv->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	if (srv->active == 0) {
		stop_now(srv);
		return;
	}
	log_info("http: waiting for %u request(s) in progress", srv->active);
	/* Completion callbacks only run inside MHD_run; make sure it runs. */
	uv_timer_start(&srv->timer, on_drain_check, 0, 0);
}
