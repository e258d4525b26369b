/*
 * HTTP on the libuv loop.  libmicrohttpd runs with MHD_USE_EPOLL and no
 * thread of its own: a uv_poll_t watches its epoll fd and a uv_timer_t
 * follows MHD_get_timeout(); MHD_run() is only called from their
 * callbacks and after resuming a connection.
 */
#ifndef KILN_HTTP_H
#define KILN_HTTP_H

#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "../api/api.h"

struct http_server;

int http_start(struct http_server **out, uv_loop_t *loop,
    const struct sockaddr *addr, socklen_t addrlen,
    const struct kiln_config *conf, const struct api_env *env,
    char *err, size_t errsize);
/* The port actually bound (useful with port 0). */
uint16_t http_port(const struct http_server *srv);
/* Requests being handled now (not idle keep-alive connections). */
unsigned http_active(const struct http_server *srv);

/*
 * Stop accepting connections, let requests in progress finish, then stop
 * and close everything and call done(data).  Calling it again (or with
 * `now` set) closes at once: connections in progress are dropped, and
 * done(data) waits only for the handlers still working on their requests
 * (their reads and writes of the queue) to finish them.
 */
void http_shutdown(struct http_server *srv, int now,
    void (*done)(void *data), void *data);

#endif
