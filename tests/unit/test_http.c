/*
 * http/http.c and http-guard.c on a real libuv loop, driven over real
 * TCP sockets by a client thread that writes raw HTTP/1.1: answers,
 * keep-alive, request bodies and max_body, header_timeout, answers
 * completed later (a suspended connection), chunked streams,
 * max_connections_per_ip and a graceful shutdown.  The routes are the
 * real ones (api/) over a queue in a temporary directory; the test owns
 * the submit hook (to hold a submission) and the build hooks a log
 * follower uses (to make a log grow).
 *
 * The loop runs on the main thread.  The client asks it to act (release
 * a held submission, shut down, grow the log) through a uv_async_t and
 * waits until it has.  Every socket read has a generous timeout, so a
 * broken server fails a test instead of hanging it; nothing asserts on
 * how long anything took.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <git2.h>
#include <jansson.h>
#include <uv.h>

#include "api/api.h"
#include "daemon/db/queue.h"
#include "http/http.h"
#include "log.h"
#include "sbuf.h"
#include "xmalloc.h"
#include "unit.h"
#include "httpclient.h"

#define MAX_BODY 100000

#define JOB_BODY "{\"repo\": \"https://example.com/x.git\", \"ref\": " \
	"\"main\", \"targets\": [\"linux/amd64\"]}"

enum { CMD_NONE, CMD_RELEASE, CMD_SHUTDOWN, CMD_LOG_APPEND, CMD_LOG_END,
	CMD_FINISH };

/* Shared by both threads, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cmd;			/* for the loop; CMD_NONE once it ran */
static int nheld;		/* submissions the hook has held so far */

/* The loop thread's (the client reads port only). */
static uv_loop_t loop;
static uv_async_t wakeup;
static struct kiln_config conf;
static struct queue *queue;
static struct api_env env;
static struct http_server *srv;
static uint16_t port;
static bool hold;		/* the submit hook holds submissions */
static struct pend *held;
static bool released;		/* held submissions were let go */
static bool finishing;
static int submits, stopped_calls;
static bool check_release_first;	/* http_shutdown's done after it */
static char log_path[300];
static bool log_is_live;
static void (*log_wake)(void *);
static void *log_waker;
static void (*client_fn)(void);
static bool git_ready;

/* A submission on its way into the queue. */
struct pend {
	struct job *job;
	api_submit_done done;
	void *data;
	struct pend *next;
};

static void
stored(void *arg, int rc)
{
	struct pend *p = arg;

	p->done(p->job, rc, p->data);
	free(p);
}

/* The submit hook: into the queue now, or held until CMD_RELEASE. */
static int
submit_hook(void *ctx, struct job *job, api_submit_done done, void *data)
{
	struct pend *p = xcalloc(1, sizeof *p);

	(void)ctx;
	submits++;
	p->job = job;
	p->done = done;
	p->data = data;
	if (hold) {
		p->next = held;
		held = p;
		pthread_mutex_lock(&mu);
		nheld++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		return 0;
	}
	queue_submit(queue, &p->job, 1, stored, p);
	return 0;
}

/* Let every held submission go: stored, or failed (rc != 0). */
static void
release_held(int rc)
{
	struct pend *p;

	while ((p = held) != NULL) {
		held = p->next;
		if (rc == 0)
			queue_submit(queue, &p->job, 1, stored, p);
		else
			stored(p, rc);
	}
	if (rc == 0)
		released = true;
}

/* The build hooks of a log follower, over one file. */
static int
log_open_hook(void *ctx, int64_t job_id, const char *target, int *fd)
{
	(void)ctx, (void)job_id, (void)target;
	*fd = open(log_path, O_RDONLY | O_CLOEXEC);
	return *fd >= 0 ? 0 : -1;
}

static bool
log_live_hook(void *ctx, int64_t job_id, const char *target)
{
	(void)ctx, (void)job_id, (void)target;
	return log_is_live;
}

static void *
log_watch_hook(void *ctx, int64_t job_id, const char *target,
    void (*wake)(void *), void *data)
{
	(void)ctx, (void)job_id, (void)target;
	log_wake = wake;
	log_waker = data;
	return &log_wake;
}

static void
log_unwatch_hook(void *ctx, void *handle)
{
	(void)ctx, (void)handle;
	log_wake = NULL;
	log_waker = NULL;
}

static void
log_append(const char *text)
{
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) ==
	    (ssize_t)strlen(text));
	if (fd >= 0)
		close(fd);
}

static void
on_queue_stopped(void *data)
{
	(void)data;
}

static void
close_rest(void)
{
	uv_close((uv_handle_t *)&wakeup, NULL);
	queue_stop(queue, on_queue_stopped, NULL);
}

static void
on_stopped(void *data)
{
	(void)data;
	stopped_calls++;
	srv = NULL;
	if (check_release_first)
		CHECK(released);
	if (finishing)
		close_rest();
}

static void
run_cmd(int c)
{
	switch (c) {
	case CMD_RELEASE:
		/* Still in progress while its answer waits. */
		if (srv != NULL)
			CHECK_INT(http_active(srv), 1);
		CHECK_INT(stopped_calls, 0);
		release_held(0);
		break;
	case CMD_SHUTDOWN:
		http_shutdown(srv, 0, on_stopped, NULL);
		/* A request is in progress: not done yet. */
		CHECK_INT(stopped_calls, 0);
		break;
	case CMD_LOG_APPEND:
	case CMD_LOG_END:
		if (c == CMD_LOG_APPEND)
			log_append("second line\n");
		else
			log_is_live = false;
		if (log_wake != NULL)
			log_wake(log_waker);
		break;
	case CMD_FINISH:
		finishing = true;
		/* At once: a test that failed half-way may have left a
		 * request that never ends (a submission held, a connection
		 * never resumed).  Held submissions then fail. */
		if (srv != NULL)
			http_shutdown(srv, 1, on_stopped, NULL);
		release_held(QUEUE_ERROR);
		if (srv == NULL && stopped_calls > 0)
			close_rest();
		break;
	}
}

static void
on_wakeup(uv_async_t *h)
{
	int c;

	(void)h;
	pthread_mutex_lock(&mu);
	c = cmd;
	pthread_mutex_unlock(&mu);
	if (c == CMD_NONE)
		return;
	run_cmd(c);
	pthread_mutex_lock(&mu);
	cmd = CMD_NONE;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Client thread: have the loop run c, and wait until it has. */
static void
client_call(int c)
{
	pthread_mutex_lock(&mu);
	cmd = c;
	pthread_mutex_unlock(&mu);
	uv_async_send(&wakeup);
	pthread_mutex_lock(&mu);
	while (cmd != CMD_NONE)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* Client thread: wait until the hook holds n submissions. */
static bool
wait_held(int n)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += HTTPCLIENT_TIMEOUT_S;
	pthread_mutex_lock(&mu);
	while (nheld < n && pthread_cond_timedwait(&cv, &mu, &until) == 0)
		;
	ok = nheld >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

static json_t *
resp_json(const struct resp *r)
{
	json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, 0,
	    NULL);

	CHECK(j != NULL);
	return j;
}

static char *
post_request(const char *body)
{
	return xasprintf("POST /v1/jobs HTTP/1.1\r\nHost: t\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body);
}

/* POST JOB_BODY: the new job's id, or 0. */
static int64_t
post_job(struct conn *c)
{
	char *req = post_request(JOB_BODY);
	struct resp r;
	json_t *j;
	int64_t id = 0;

	if (exchange(c, req, &r) != 201) {
		fprintf(stderr, "  POST /v1/jobs: %d %.*s\n", r.status,
		    (int)r.body.len, r.body.p ? r.body.p : "");
		unit_failed_checks++;
	}
	free(req);
	if (r.status == 201 && (j = resp_json(&r)) != NULL) {
		id = json_integer_value(json_object_get(j, "id"));
		json_decref(j);
	}
	resp_free(&r);
	CHECK(id > 0);
	return id;
}

static void *
client_main(void *arg)
{
	(void)arg;
	client_fn();
	client_call(CMD_FINISH);
	return NULL;
}

/* Start the server, run `client` on its thread against it, stop. */
static void
serve(void (*client)(void))
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
	char err[256] = "", path[300];
	pthread_t t;

	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&loop);
	snprintf(path, sizeof path, "%s/kiln.db", unit_tmpdir());
	snprintf(log_path, sizeof log_path, "%s/build.log", unit_tmp);
	write_text(log_path, "first line\n");
	if (queue_open(&queue, path, err, sizeof err) != 0 ||
	    queue_start(queue, &loop) != 0) {
		fprintf(stderr, "  queue: %s\n", err);
		CHECK(0);
		exit(1);
	}
	memset(&env, 0, sizeof env);
	env.queue = queue;
	env.conf = &conf;
	env.started_at = 1;
	env.submit = submit_hook;
	env.log_open = log_open_hook;
	env.log_live = log_live_hook;
	env.log_watch = log_watch_hook;
	env.log_unwatch = log_unwatch_hook;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (http_start(&srv, &loop, (struct sockaddr *)&sin, sizeof sin,
	    &conf, &env, err, sizeof err) != 0) {
		fprintf(stderr, "  http_start: %s\n", err);
		CHECK(0);
		exit(1);
	}
	port = http_port(srv);
	CHECK(port != 0);
	uv_async_init(&loop, &wakeup, on_wakeup);
	client_fn = client;
	pthread_create(&t, NULL, client_main, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	pthread_join(t, NULL);
	CHECK_INT(stopped_calls, 1);
	queue_close(queue);
	queue = NULL;
	CHECK_INT(uv_loop_close(&loop), 0);
	conf_free(&conf);
}

/* A test's configuration (serve() frees it) and a fresh state. */
static void
config(void)
{
	held = NULL;
	nheld = submits = stopped_calls = 0;
	hold = released = finishing = check_release_first = false;
	log_wake = NULL;
	log_is_live = true;
	/* Refs are checked with libgit2's rules. */
	if (!git_ready)
		git_libgit2_init();
	git_ready = true;
	log_set_level(LOG_LVL_WARN);
	conf_defaults(&conf);
	conf.max_body = MAX_BODY;
	conf.header_timeout = 30;
	conf.http_timeout = 60;
}

static void
client_get(void)
{
	struct conn c;
	struct resp r;
	char v[64];
	json_t *j;

	CHECK(cl_open(&c, port));
	CHECK_INT(exchange(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	CHECK_STR(resp_header(&r, "Content-Type", v, sizeof v),
	    "application/json");
	CHECK(!r.chunked);
	CHECK_INT(r.length, r.body.len);
	if ((j = resp_json(&r)) != NULL) {
		CHECK_STR(json_string_value(json_object_get(j, "status")), "ok");
		CHECK(json_is_integer(json_object_get(j, "jobs_queued")));
		json_decref(j);
	}
	resp_free(&r);
	cl_close(&c);
}

static void
get_is_answered_with_its_body(void)
{
	config();
	serve(client_get);
}

static void
client_keep_alive(void)
{
	struct conn c;
	struct resp r;
	char v[64];

	CHECK(cl_open(&c, port));
	CHECK_INT(exchange(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	CHECK(resp_header(&r, "Connection", v, sizeof v) == NULL ||
	    strcasecmp(v, "close") != 0);
	resp_free(&r);
	/* The same socket: the server kept it open. */
	CHECK_INT(exchange(&c, "GET /v1/jobs HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	resp_free(&r);
	CHECK(!c.closed);
	cl_close(&c);
}

static void
keep_alive_serves_two_requests_on_one_connection(void)
{
	config();
	serve(client_keep_alive);
}

static void
client_post_whole(void)
{
	struct sbuf cmdline = { 0 }, body = { 0 };
	struct conn c;
	struct resp r;
	char *head, num[16];
	json_t *j;

	/* A recipe command of numbered parts: a piece of the body lost,
	 * repeated or reordered changes it. */
	for (int i = 0; i < 5000; i++) {
		snprintf(num, sizeof num, "echo %05d;", i);
		sbuf_adds(&cmdline, num);
	}
	sbuf_addc(&cmdline, '\0');
	sbuf_adds(&body, "{\"repo\": \"https://example.com/x.git\", \"ref\": "
	    "\"main\", \"targets\": [\"linux/amd64\"], \"recipe\": "
	    "{\"kind\": \"command\", \"command\": \"");
	sbuf_adds(&body, cmdline.p);
	sbuf_adds(&body, "\"}}");
	CHECK(body.len > 32 * 1024 && body.len < MAX_BODY);
	head = xasprintf("POST /v1/jobs HTTP/1.1\r\nHost: t\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    body.len);
	CHECK(cl_open(&c, port));
	CHECK(cl_sends(&c, head));
	/* In pieces, as a slow client would. */
	for (size_t off = 0; off < body.len; off += 4000)
		CHECK(cl_send(&c, body.p + off, body.len - off < 4000 ?
		    body.len - off : 4000));
	CHECK(read_response(&c, &r));
	CHECK_INT(r.status, 201);
	if (r.status == 201 && (j = resp_json(&r)) != NULL) {
		CHECK_STR(json_string_value(json_object_get(json_object_get(j,
		    "recipe"), "command")), cmdline.p);
		json_decref(j);
	}
	resp_free(&r);
	cl_close(&c);
	free(head);
	sbuf_free(&body);
	sbuf_free(&cmdline);
}

static void
post_body_arrives_whole(void)
{
	config();
	serve(client_post_whole);
	CHECK_INT(submits, 1);
}

static void
expect_413(struct resp *r)
{
	json_t *j;

	CHECK_INT(r->status, 413);
	if (r->status == 413 && (j = resp_json(r)) != NULL) {
		CHECK(strstr(json_string_value(json_object_get(j, "detail")),
		    "max_body") != NULL);
		json_decref(j);
	}
}

static void
client_too_large(void)
{
	char piece[8192 + 16], *req;
	struct conn c;
	struct resp r;
	size_t sent;

	/* Declared too large: refused before the body is sent. */
	CHECK(cl_open(&c, port));
	req = xasprintf("POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: "
	    "application/json\r\nContent-Length: %d\r\n\r\n", MAX_BODY + 1);
	CHECK(cl_sends(&c, req));
	CHECK(read_response(&c, &r));
	expect_413(&r);
	resp_free(&r);
	cl_close(&c);
	free(req);

	/* Chunked, so only counting finds it too large. */
	CHECK(cl_open(&c, port));
	CHECK(cl_sends(&c, "POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: "
	    "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
	snprintf(piece, sizeof piece, "%x\r\n", 8192);
	memset(piece + strlen(piece), ' ', 8192);
	memcpy(piece + strlen("2000\r\n") + 8192, "\r\n", 2);
	for (sent = 0; sent <= MAX_BODY; sent += 8192)
		CHECK(cl_send(&c, piece, strlen("2000\r\n") + 8192 + 2));
	CHECK(cl_sends(&c, "0\r\n\r\n"));
	CHECK(read_response(&c, &r));
	expect_413(&r);
	resp_free(&r);
	cl_close(&c);
}

static void
body_over_max_body_gets_413(void)
{
	config();
	serve(client_too_large);
	CHECK_INT(submits, 0);
}

static void
client_slow_headers(void)
{
	struct timespec t0, t;
	struct conn c;
	char line[64];
	bool cut = false, answered = false;

	CHECK(cl_open(&c, port));
	CHECK(cl_sends(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n"));
	/* A header line every 200 ms: never idle, never done. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; !cut; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > HTTPCLIENT_TIMEOUT_S)
			break;
		if (!cl_quiet(&c, 200)) {
			answered = cl_fill(&c);
			cut = c.closed;
			break;
		}
		snprintf(line, sizeof line, "X-Trickle-%d: y\r\n", i);
		if (!cl_sends(&c, line)) {
			cut = c.closed;
			break;
		}
	}
	CHECK(cut);
	CHECK(!answered);
	cl_close(&c);
}

static void
headers_not_done_in_header_timeout_are_cut(void)
{
	config();
	conf.header_timeout = 1;
	serve(client_slow_headers);
	CHECK_INT(submits, 0);
}

static void
client_pending(void)
{
	char *req = post_request(JOB_BODY), v[64];
	struct conn c;
	struct resp r;

	CHECK(cl_open(&c, port));
	CHECK(cl_sends(&c, req));
	CHECK(wait_held(1));
	/* Suspended: no answer until the handler completes. */
	CHECK(cl_quiet(&c, 300));
	client_call(CMD_RELEASE);
	CHECK(read_response(&c, &r));
	CHECK_INT(r.status, 201);
	CHECK_STR(resp_header(&r, "Location", v, sizeof v), "/v1/jobs/1");
	resp_free(&r);
	/* The resumed connection serves its next request. */
	CHECK_INT(exchange(&c, "GET /v1/jobs/1 HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	resp_free(&r);
	cl_close(&c);
	free(req);
}

static void
pending_answer_is_sent_when_completed(void)
{
	config();
	hold = true;
	serve(client_pending);
	CHECK(released);
}

static void
client_stream(void)
{
	struct conn c;
	struct resp r;
	char req[160], v[64];
	int64_t id;

	CHECK(cl_open(&c, port));
	if ((id = post_job(&c)) == 0)
		goto out;
	snprintf(req, sizeof req, "GET /v1/jobs/%lld/targets/linux_amd64/log?"
	    "follow=1&raw=1 HTTP/1.1\r\nHost: t\r\n\r\n", (long long)id);
	CHECK(cl_sends(&c, req));
	CHECK(read_head(&c, &r));
	CHECK_INT(r.status, 200);
	CHECK(r.chunked);
	CHECK_STR(resp_header(&r, "Content-Type", v, sizeof v),
	    "application/octet-stream");
	while (r.body.len < strlen("first line\n") && read_chunk(&c, &r) > 0)
		;
	/* Waiting for the log to grow: no more, and not the end. */
	CHECK(cl_quiet(&c, 300));
	client_call(CMD_LOG_APPEND);
	while (r.body.len < strlen("first line\nsecond line\n") &&
	    read_chunk(&c, &r) > 0)
		;
	client_call(CMD_LOG_END);
	CHECK_INT(read_chunk(&c, &r), 0);
	sbuf_addc(&r.body, '\0');
	CHECK_STR(r.body.p, "first line\nsecond line\n");
	CHECK(r.chunks >= 2);
	resp_free(&r);
	/* The stream ended cleanly: the connection goes on. */
	CHECK_INT(exchange(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	resp_free(&r);
out:
	cl_close(&c);
}

static void
stream_is_sent_chunked_as_it_grows(void)
{
	config();
	serve(client_stream);
}

static void
client_per_ip(void)
{
	struct conn c1, c2, c3, c4;
	struct resp r;
	bool ok = false;

	CHECK(cl_open(&c1, port));
	CHECK(cl_open(&c2, port));
	CHECK_INT(exchange(&c1, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	resp_free(&r);
	CHECK_INT(exchange(&c2, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 200);
	resp_free(&r);
	/* A third from the same address: closed without an answer. */
	CHECK(cl_open(&c3, port));
	CHECK_INT(exchange(&c3, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
	    &r), 0);
	CHECK(c3.closed);
	resp_free(&r);
	cl_close(&c3);
	/* Once one closes there is room again (the server notices the
	 * close on its own time: try for a while). */
	cl_close(&c1);
	for (int i = 0; i < 100 && !ok; i++) {
		if (i > 0)
			usleep(100 * 1000);
		if (!cl_open(&c4, port))
			continue;
		ok = exchange(&c4, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
		    &r) == 200;
		resp_free(&r);
		cl_close(&c4);
	}
	CHECK(ok);
	cl_close(&c2);
}

static void
connections_over_the_per_ip_limit_are_refused(void)
{
	config();
	conf.max_connections_per_ip = 2;
	serve(client_per_ip);
}

static void
client_shutdown(void)
{
	char *req = post_request(JOB_BODY);
	struct conn c, d;
	struct resp r;

	CHECK(cl_open(&c, port));
	CHECK(cl_sends(&c, req));
	CHECK(wait_held(1));
	client_call(CMD_SHUTDOWN);
	/* No new connections from now on. */
	CHECK(!cl_open(&d, port));
	client_call(CMD_RELEASE);
	/* The request in progress is answered whole. */
	CHECK(read_response(&c, &r));
	CHECK_INT(r.status, 201);
	resp_free(&r);
	cl_close(&c);
	free(req);
}

static void
shutdown_lets_a_request_in_progress_finish(void)
{
	config();
	hold = true;
	check_release_first = true;
	serve(client_shutdown);
	CHECK(released);
}

UNIT_MAIN(TEST(get_is_answered_with_its_body),
    TEST(keep_alive_serves_two_requests_on_one_connection),
    TEST(post_body_arrives_whole),
    TEST(body_over_max_body_gets_413),
    TEST(headers_not_done_in_header_timeout_are_cut),
    TEST(pending_answer_is_sent_when_completed),
    TEST(stream_is_sent_chunked_as_it_grows),
    TEST(connections_over_the_per_ip_limit_are_refused),
    TEST(shutdown_lets_a_request_in_progress_finish))
