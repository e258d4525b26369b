/*
 * daemon/callback.c delivering for real: a real loop, a real queue in a
 * temporary directory, and curl POSTing to a receiver this test runs on
 * the same loop on loopback.  The receiver records each POST and answers
 * by path (/ok 204, /flaky 500 the first time and 200 after, anything
 * else 404).  Jobs are seeded through the queue's interface (submitted,
 * then canceled: a job that ended, so its callback is due) and what was
 * recorded is read back with queue_get and queue_notify_due.  The URL
 * grammar, address rules and keys are test_callback.c's.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include <git2.h>
#include <jansson.h>
#include <sodium.h>
#include <uv.h>

#include "api/api.h"
#include "daemon/callback.h"
#include "daemon/conf.h"
#include "daemon/db/queue.h"
#include "log.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"
#include "qsync.h"
#include "unit.h"

#define MAX_POSTS 8
#define GIVE_UP_MS 60000	/* a callback that never comes */

struct post {
	char path[64], sig[80], delivery[32], type[64];
	struct sbuf body;
};

struct rx_conn {
	uv_tcp_t tcp;
	uv_write_t wr;
	struct sbuf in;
	char reply[128];
};

static uv_loop_t loop;
static struct queue *queue;
/* A second handle on the database, to watch what is recorded: its reads
 * are waited for on qsync's loop, as this test's loop may be running. */
static struct queue *reader;
static struct kiln_config cconf;
static struct callbacks *cbs;
static uv_tcp_t rx;
static uv_timer_t poll_timer, give_up;
static uint16_t rx_port;
static struct post posts[MAX_POSTS];
static int nposts, flaky_calls, seeded;
static bool stopping;
static struct job *seed_jobs[2];
static size_t nseed;
static size_t nrunning[2];
static bool (*progress)(void);	/* true once the test has seen enough */

/* A header's value in a head of "\r\n"-ended lines (into v), or "". */
static const char *
header_of(const char *head, const char *name, char *v, size_t vsize)
{
	char key[80];
	const char *p, *e;

	v[0] = '\0';
	snprintf(key, sizeof key, "\r\n%s:", name);
	if ((p = strcasestr(head, key)) == NULL)
		return v;
	p += strlen(key);
	p += strspn(p, " ");
	e = strstr(p, "\r\n");
	snprintf(v, vsize, "%.*s", (int)(e - p), p);
	return v;
}

static void
rx_closed(uv_handle_t *h)
{
	struct rx_conn *c = h->data;

	sbuf_free(&c->in);
	free(c);
}

static void
rx_written(uv_write_t *w, int status)
{
	struct rx_conn *c = w->data;

	(void)status;
	uv_close((uv_handle_t *)&c->tcp, rx_closed);
}

static void
rx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char b[65536];

	(void)h, (void)suggested;
	buf->base = b;
	buf->len = sizeof b;
}

/* Once c->in holds a whole request: record it, and the status to
 * answer; 0 while more is to come. */
static int
rx_request(struct rx_conn *c)
{
	char *end, *head, v[32];
	struct post *po;
	size_t hlen, blen;
	int status;

	if (c->in.len == 0 ||
	    (end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4)) == NULL)
		return 0;
	hlen = (size_t)(end - c->in.p) + 4;
	head = xstrndup(c->in.p, hlen - 2);
	blen = strtoul(header_of(head, "Content-Length", v, sizeof v), NULL,
	    10);
	if (c->in.len < hlen + blen) {
		free(head);
		return 0;
	}
	if (nposts == MAX_POSTS) {
		free(head);
		return 503;
	}
	po = &posts[nposts++];
	if (sscanf(head, "POST %63s HTTP/1.1", po->path) != 1)
		snprintf(po->path, sizeof po->path, "(not a POST)");
	header_of(head, "X-Kiln-Signature-256", po->sig, sizeof po->sig);
	header_of(head, "X-Kiln-Delivery", po->delivery, sizeof po->delivery);
	header_of(head, "Content-Type", po->type, sizeof po->type);
	sbuf_add(&po->body, c->in.p + hlen, blen);
	free(head);
	if (strcmp(po->path, "/ok") == 0)
		status = 204;
	else if (strcmp(po->path, "/flaky") == 0)
		status = flaky_calls++ == 0 ? 500 : 200;
	else
		status = 404;
	return status;
}

static void
rx_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct rx_conn *c = s->data;
	uv_buf_t out;
	int status;

	if (n < 0) {
		uv_close((uv_handle_t *)&c->tcp, rx_closed);
		return;
	}
	sbuf_add(&c->in, buf->base, (size_t)n);
	if ((status = rx_request(c)) == 0)
		return;
	uv_read_stop(s);
	snprintf(c->reply, sizeof c->reply, "HTTP/1.1 %d Test\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", status);
	out = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
	c->wr.data = c;
	uv_write(&c->wr, s, &out, 1, rx_written);
}

static void
rx_accept(uv_stream_t *server, int status)
{
	struct rx_conn *c;

	if (status != 0)
		return;
	c = xcalloc(1, sizeof *c);
	uv_tcp_init(&loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, rx_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, rx_alloc, rx_read);
}

static void
rx_start(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_storage ss;
	int len = sizeof ss;

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	uv_tcp_init(&loop, &rx);
	CHECK_INT(uv_tcp_bind(&rx, (struct sockaddr *)&sin, 0), 0);
	CHECK_INT(uv_listen((uv_stream_t *)&rx, 16, rx_accept), 0);
	CHECK_INT(uv_tcp_getsockname(&rx, (struct sockaddr *)&ss, &len), 0);
	rx_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
on_queue_stopped(void *data)
{
	(void)data;
}

static void
on_callbacks_closed(void *data)
{
	(void)data;
	cbs = NULL;
	queue_stop(queue, on_queue_stopped, NULL);
}

static void
stop_all(void)
{
	if (stopping)
		return;
	stopping = true;
	uv_close((uv_handle_t *)&poll_timer, NULL);
	uv_close((uv_handle_t *)&give_up, NULL);
	uv_close((uv_handle_t *)&rx, NULL);
	if (cbs != NULL)
		callbacks_close(cbs, on_callbacks_closed, NULL);
	else
		queue_stop(queue, on_queue_stopped, NULL);
}

static void
on_poll(uv_timer_t *t)
{
	(void)t;
	if (progress())
		stop_all();
}

static void
on_give_up(uv_timer_t *t)
{
	(void)t;
	fprintf(stderr, "  no outcome after %d s\n", GIVE_UP_MS / 1000);
	unit_failed_checks++;
	stop_all();
}

static void
canceled(void *data, int rc)
{
	(void)data;
	CHECK_INT(rc, 0);
	/* Both ended: their callbacks are due; start sending, and
	 * watching what is recorded. */
	if (++seeded == (int)nseed) {
		cbs = callbacks_new(&loop, queue, &cconf);
		uv_timer_start(&poll_timer, on_poll, 50, 50);
	}
}

static void
submitted(void *data, int rc)
{
	(void)data;
	CHECK_INT(rc, 0);
	for (size_t i = 0; i < nseed; i++)
		queue_cancel(queue, seed_jobs[i]->id, &nrunning[i], canceled,
		    NULL);
}

/* text with each @DIR@ (the test's directory) and @PORT@ (the
 * receiver's) filled in; malloc'd. */
static char *
fill_in(const char *text)
{
	struct sbuf b = { 0 };
	char port[8];

	snprintf(port, sizeof port, "%u", rx_port);
	for (const char *p = text; *p != '\0'; ) {
		if (strncmp(p, "@DIR@", 5) == 0) {
			sbuf_adds(&b, unit_tmp);
			p += 5;
		} else if (strncmp(p, "@PORT@", 6) == 0) {
			sbuf_adds(&b, port);
			p += 6;
		} else
			sbuf_addc(&b, *p++);
	}
	sbuf_addc(&b, '\0');
	return sbuf_steal(&b, NULL);
}

/* A job that will POST to url, of project (or NULL). */
static struct job *
make_job(const char *url, const char *project)
{
	char body[512], why[256] = "";
	unsigned status;
	struct job *j = NULL;

	snprintf(body, sizeof body, "{\"repo\": \"https://example.com/x.git\", "
	    "\"ref\": \"main\", \"targets\": [\"linux/amd64\"], \"notify\": "
	    "{\"url\": \"%s\"}}", url);
	if (api_parse_job_request(body, strlen(body), &j, &status, why,
	    sizeof why) != 0) {
		fprintf(stderr, "  %s: %s\n", body, why);
		unit_failed_checks++;
		exit(1);
	}
	if (project != NULL)
		j->project = xstrdup(project);
	return j;
}

/*
 * Run callbacks over jobs posting to the two URLs (project of the
 * first: pproject) with the configuration text `conftext` (see fill_in)
 * until progress() says enough.
 */
static void
run_deliveries(const char *conftext, const char *url0, const char *pproject,
    const char *url1, bool (*until)(void))
{
	char path[600], err[1024] = "", *text, *u0, *u1;

	git_libgit2_init();
	log_set_level(LOG_LVL_WARN);
	nposts = flaky_calls = seeded = 0;
	stopping = false;
	progress = until;
	uv_loop_init(&loop);
	rx_start();
	unit_tmpdir();
	text = fill_in(conftext);
	snprintf(path, sizeof path, "%s/kilnd.conf", unit_tmp);
	write_text(path, text);
	free(text);
	conf_defaults(&cconf);
	if (conf_load(&cconf, path, err, sizeof err) != 0) {
		fprintf(stderr, "  %s\n", err);
		unit_failed_checks++;
	}
	snprintf(path, sizeof path, "%s/kiln.db", unit_tmp);
	if (queue_open(&queue, path, err, sizeof err) != 0 ||
	    queue_start(queue, &loop) != 0 ||
	    queue_open(&reader, path, err, sizeof err) != 0) {
		fprintf(stderr, "  queue: %s\n", err);
		exit(1);
	}
	u0 = fill_in(url0);
	u1 = fill_in(url1);
	seed_jobs[0] = make_job(u0, pproject);
	seed_jobs[1] = make_job(u1, NULL);
	nseed = 2;
	free(u0);
	free(u1);
	queue_submit(queue, seed_jobs, nseed, submitted, NULL);
	uv_timer_init(&loop, &poll_timer);
	uv_timer_init(&loop, &give_up);
	uv_timer_start(&give_up, on_give_up, GIVE_UP_MS, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(cbs == NULL);
	CHECK_INT(uv_loop_close(&loop), 0);
	queue_close(queue);
	queue = NULL;
	conf_free(&cconf);
	git_libgit2_shutdown();
}

static void
free_posts(void)
{
	for (int i = 0; i < nposts; i++)
		sbuf_free(&posts[i].body);
	nposts = 0;
}

/* The job as the queue has it now (caller frees), or NULL. */
static struct job *
job_now(size_t i)
{
	struct job *j = NULL;

	if (qs_get(reader, seed_jobs[i]->id, &j) != 0)
		return NULL;
	return j;
}

/* Whether job i's callback is due at `when`. */
static bool
due_at(size_t i, int64_t when)
{
	struct queue_notify *due = NULL;
	size_t n = 0;
	bool yes = false;

	CHECK_INT(qs_notify_due(reader, when, &due, &n), 0);
	for (size_t k = 0; k < n; k++)
		yes |= due[k].job_id == seed_jobs[i]->id;
	free(due);
	return yes;
}

static bool saw_retry_pending;

/* Job 0 posts to /ok, job 1 to /flaky: done when both are delivered,
 * having seen job 1's failed first attempt recorded as pending. */
static bool
until_delivered(void)
{
	struct job *ok = job_now(0), *flaky = job_now(1);
	bool done = false;

	if (ok == NULL || flaky == NULL)
		goto out;
	if (flaky->notify_attempts == 1 && !saw_retry_pending) {
		int64_t now = util_now_ms();

		saw_retry_pending = true;
		CHECK_STR(flaky->notify_state, "pending");
		CHECK_STR(flaky->notify_error, "HTTP 500");
		/* Again later (5 s at first), not at once, and not never. */
		CHECK(!due_at(1, now));
		CHECK(due_at(1, now + 301000));
	}
	done = ok->notify_state != NULL && flaky->notify_state != NULL &&
	    strcmp(ok->notify_state, "pending") != 0 &&
	    strcmp(flaky->notify_state, "pending") != 0;
out:
	job_free(ok);
	job_free(flaky);
	return done;
}

/* The signature header's value for body with key, by libsodium. */
static void
expected_sig(char out[7 + 65], const char *key, const struct sbuf *body)
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	    strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body->p,
	    body->len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, 65, mac, sizeof mac);
}

/* A POST of job i's canceled state, signed with key. */
static void
check_post(const struct post *po, size_t i, const char *key,
    const char *other_key)
{
	char sig[7 + 65], delivery[32];
	json_t *j = json_loadb(po->body.p ? po->body.p : "", po->body.len, 0,
	    NULL);

	CHECK_STR(po->type, "application/json");
	CHECK(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "event")),
	    "job.canceled");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "job"),
	    "id")), seed_jobs[i]->id);
	json_decref(j);
	expected_sig(sig, key, &po->body);
	CHECK_STR(po->sig, sig);
	expected_sig(sig, other_key, &po->body);
	CHECK(strcmp(po->sig, sig) != 0);
	snprintf(delivery, sizeof delivery, "%lld.", (long long)seed_jobs[i]->id);
	CHECK(strncmp(po->delivery, delivery, strlen(delivery)) == 0);
}

#define FARM_KEY "farm-key-0123456789"
#define PROJECT_KEY "a-callback-key-0123456789"

static void
test_delivery(void)
{
	struct job *j;
	int flaky = 0;

	saw_retry_pending = false;
	run_deliveries("[kilnd]\nstate_dir = @DIR@\nnotify_secret = " FARM_KEY
	    "\nallow_private_callbacks = yes\n"
	    "[project a]\nrepo = https://example.com/x.git\n"
	    "notify_secret = " PROJECT_KEY "\n"
	    "notify_url = http://127.0.0.1:@PORT@/ok\n",
	    "http://127.0.0.1:@PORT@/ok", "a", "http://127.0.0.1:@PORT@/flaky",
	    until_delivered);
	CHECK(saw_retry_pending);
	if ((j = job_now(0)) != NULL) {
		CHECK_STR(j->notify_state, "delivered");
		CHECK_INT(j->notify_attempts, 1);
		CHECK(j->notify_error == NULL);
		job_free(j);
	}
	if ((j = job_now(1)) != NULL) {
		CHECK_STR(j->notify_state, "delivered");
		CHECK_INT(j->notify_attempts, 2);
		job_free(j);
	}
	qs_close(reader);
	reader = NULL;
	/* The project's own URL: its key; the other: the farm's. */
	CHECK_INT(nposts, 3);
	for (int i = 0; i < nposts; i++) {
		if (strcmp(posts[i].path, "/ok") == 0)
			check_post(&posts[i], 0, PROJECT_KEY, FARM_KEY);
		else if (strcmp(posts[i].path, "/flaky") == 0) {
			flaky++;
			check_post(&posts[i], 1, FARM_KEY, PROJECT_KEY);
		} else
			CHECK_STR(posts[i].path, "/ok or /flaky");
	}
	CHECK_INT(flaky, 2);
	free_posts();
	for (size_t i = 0; i < nseed; i++)
		job_free(seed_jobs[i]);
}
/* Both jobs' callbacks ended (not pending any more). */
static bool
until_ended(void)
{
	struct job *a = job_now(0), *b = job_now(1);
	bool done = a != NULL && b != NULL && a->notify_state != NULL &&
	    b->notify_state != NULL && strcmp(a->notify_state, "pending") != 0 &&
	    strcmp(b->notify_state, "pending") != 0;

	job_free(a);
	job_free(b);
	return done;
}

/* Without allow_private_callbacks, loopback is refused, whether the URL
 * names the address or a name that resolves to it: failed at once, not
 * retried, and nothing reaches the receiver. */
static void
test_refused_destination(void)
{
	struct job *j;

	run_deliveries("[kilnd]\nstate_dir = @DIR@\nnotify_secret = " FARM_KEY
	    "\n", "http://127.0.0.1:@PORT@/ok", NULL,
	    "http://localhost:@PORT@/ok", until_ended);
	for (size_t i = 0; i < nseed; i++) {
		if ((j = job_now(i)) == NULL) {
			CHECK(0);
			continue;
		}
		CHECK_STR(j->notify_state, "failed");
		CHECK_INT(j->notify_attempts, 1);
		CHECK(j->notify_error != NULL && strstr(j->notify_error,
		    "127.0.0.1") != NULL && strstr(j->notify_error,
		    "allow_private_callbacks") != NULL);
		CHECK(!due_at(i, util_now_ms() + 86400000));
		job_free(j);
	}
	qs_close(reader);
	reader = NULL;
	CHECK_INT(nposts, 0);
	free_posts();
	for (size_t i = 0; i < nseed; i++)
		job_free(seed_jobs[i]);
}

UNIT_MAIN(TEST(test_delivery), TEST(test_refused_destination))
