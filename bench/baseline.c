/*
 * bench/baseline: the bare server kilnd is compared with by bench/ingest.
 *
 * The same HTTP stack as kilnd (libmicrohttpd 0.9.75 on a libuv loop, the
 * same daemon flags, no internal thread, answers queued on the second call
 * of the access handler so keep-alive holds: see http/http.c) and nothing else:
 *
 *   GET  any path   200, a fixed small JSON object
 *   POST any path   reads the body, parses it with jansson, 201 with a small
 *                   JSON object (400 if it is not JSON) -- "parse, answer",
 *                   with no queue and no durability
 *
 * usage: baseline PORT      (0 picks a free port)
 * Prints "listening on http://127.0.0.1:PORT" on stderr when ready.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>
#include <uv.h>

#define MAX_BODY (1024 * 1024)

static const char get_body[] =
    "{\"id\":1,\"repo\":\"https://git.example.com/app.git\",\"ref\":\"main\","
    "\"state\":\"queued\"}";
static const char post_body[] = "{\"id\":1,\"state\":\"queued\"}";
static const char bad_body[] = "{\"title\":\"the body is not JSON\"}";

struct server {
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	int in_run;
};

struct req {
	char *body;
	size_t len, cap;
	int too_large;
};

static void run_mhd(struct server *srv);

static void
on_poll(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	run_mhd(h->data);
}

static void
on_timer(uv_timer_t *h)
{
	run_mhd(h->data);
}

/* MHD_get_timeout YES with 0 ms: MHD has work the edge-triggered epoll fd
 * will not signal again; a 0 ms timer runs it on the next iteration. */
static void
run_mhd(struct server *srv)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (srv->in_run)
		return;
	srv->in_run = 1;
	MHD_run(srv->mhd);
	srv->in_run = 0;
	if (MHD_get_timeout(srv->mhd, &t) == MHD_YES)
		uv_timer_start(&srv->timer, on_timer, (uint64_t)t, 0);
	else
		uv_timer_stop(&srv->timer);
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status, const char *body,
    size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;
	json_error_t jerr;
	json_t *doc;

	(void)cls;
	(void)url;
	(void)version;
	if (r == NULL) {
		/* First call: only headers.  Answering now would make MHD
		 * 0.9.75 close the keep-alive connection. */
		r = calloc(1, sizeof *r);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_large || r->len + n > MAX_BODY) {
			r->too_large = 1;
			return MHD_YES;
		}
		if (r->len + n > r->cap) {
			size_t cap = r->cap * 2 > r->len + n ? r->cap * 2 :
			    r->len + n;
			char *p = realloc(r->body, cap);

			if (p == NULL)
				return MHD_NO;
			r->body = p;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0)
		return answer(conn, MHD_HTTP_OK, get_body, sizeof get_body - 1);
	if (r->too_large)
		return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE, bad_body,
		    sizeof bad_body - 1);
	doc = json_loadb(r->body ? r->body : "", r->len, 0, &jerr);
	if (doc == NULL)
		return answer(conn, MHD_HTTP_BAD_REQUEST, bad_body,
		    sizeof bad_body - 1);
	json_decref(doc);
	return answer(conn, MHD_HTTP_CREATED, post_body, sizeof post_body - 1);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	*con_cls = NULL;
	free(r->body);
	free(r);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("baseline: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int
main(int argc, char **argv)
{
	struct server srv;
	struct sockaddr_in sin;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	const union MHD_DaemonInfo *info;
	uv_loop_t *loop;
	char *end;
	unsigned long port;

	if (argc != 2) {
		fprintf(stderr, "usage: baseline PORT\n");
		return 2;
	}
	errno = 0;
	port = strtoul(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[1] || port > 65535) {
		fprintf(stderr, "baseline: '%s' is not a port number\n",
		    argv[1]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof srv);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* The same flags and limits as kilnd's defaults (http/http.c). */
	srv.mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, &srv,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
	    MHD_OPTION_END);
	if (srv.mhd == NULL) {
		fprintf(stderr, "baseline: cannot listen on 127.0.0.1:%lu: %s\n",
		    port, strerror(errno));
		return 1;
	}
	info = MHD_get_daemon_info(srv.mhd, MHD_DAEMON_INFO_LISTEN_FD);
	if (info != NULL && getsockname(info->listen_fd,
	    (struct sockaddr *)&bound, &blen) == 0)
		port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	info = MHD_get_daemon_info(srv.mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL) {
		fprintf(stderr, "baseline: libmicrohttpd has no epoll fd\n");
		MHD_stop_daemon(srv.mhd);
		return 1;
	}
	loop = uv_default_loop();
	uv_timer_init(loop, &srv.timer);
	uv_poll_init(loop, &srv.poll, info->epoll_fd);
	srv.timer.data = &srv;
	srv.poll.data = &srv;
	uv_poll_start(&srv.poll, UV_READABLE, on_poll);
	run_mhd(&srv);
	fprintf(stderr, "listening on http://127.0.0.1:%lu\n", port);
	fflush(stderr);
	uv_run(loop, UV_RUN_DEFAULT);
	MHD_stop_daemon(srv.mhd);
	return 0;
}
