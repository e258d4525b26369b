#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "../api/api.h"
#include "callback.h"
#include "child.h"
#include "log.h"
#include "metrics.h"
#include "sbuf.h"
#include "sign.h"
#include "util.h"
#include "xmalloc.h"

#define TICK_MS 1000
#define MAX_INFLIGHT 8
#define OUTPUT_MAX 4096
#define CURL "/usr/bin/curl"

struct send {
	struct child child;
	struct callbacks *cb;
	int64_t job_id;
	int attempts;
	int64_t finished_at;
	char *file;
	struct sbuf out, err;
	struct send *next;
};

struct callbacks {
	uv_loop_t *loop;
	struct queue *q;
	const struct kiln_config *conf;
	uv_timer_t timer;
	struct send *inflight;
	unsigned ninflight;
	bool closing;
	void (*closed)(void *);
	void *closed_data;
};

void
callback_sign(char out[7 + 65], const char *key, const void *body, size_t len)
{
	unsigned char mac[32];

	sign_hmac_sha256(mac, key, body, len);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, 65, mac, sizeof mac);
}

/* The key of a job's callback: its project's first secret, else
 * notify_secret, else none (the POST goes unsigned). */
static const char *
key_of(const struct kiln_config *c, const struct job *job)
{
	for (size_t i = 0; job->project && i < c->nprojects; i++)
		if (strcmp(c->projects[i].name, job->project) == 0 &&
		    c->projects[i].nsecrets > 0)
			return c->projects[i].secrets[0];
	return c->notify_secret;
}

static void maybe_closed(struct callbacks *cb);

static void
send_free(struct send *s)
{
	struct callbacks *cb = s->cb;

	for (struct send **pp = &cb->inflight; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	cb->ninflight--;
	if (s->file != NULL)
		unlink(s->file);
	free(s->file);
	sbuf_free(&s->out);
	sbuf_free(&s->err);
	free(s);
	maybe_closed(cb);
}

static void
send_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct send *s = container_of(c, struct send, child);
	struct sbuf *b = fd == 1 ? &s->out : &s->err;

	if (b->len + n <= OUTPUT_MAX)
		sbuf_add(b, buf, n);
}

static void
send_done(struct child *c)
{
	struct send *s = container_of(c, struct send, child);
	struct callbacks *cb = s->cb;
	const struct kiln_config *conf = cb->conf;
	int64_t now = util_now_ms(), delay, code = 0;
	char why[300];

	if (cb->closing) {
		/* Killed by the shutdown: still pending, sent after the
		 * next start. */
		send_free(s);
		return;
	}
	sbuf_addc(&s->out, '\0');
	sbuf_addc(&s->err, '\0');
	util_parse_int64(s->out.p, 0, 999, &code);
	if (c->exit_status == 0 && code >= 200 && code < 300) {
		queue_notify_result(cb->q, s->job_id, "delivered", NULL, 0);
		metrics_callback("delivered");
		log_info("job %" PRId64 ": callback delivered (HTTP %lld)",
		    s->job_id, (long long)code);
		send_free(s);
		return;
	}
	if (code > 0)
		snprintf(why, sizeof why, "HTTP %lld", (long long)code);
	else {
		char *e = s->err.p;
		e[strcspn(e, "\n")] = '\0';
		snprintf(why, sizeof why, "%s", *e ? e :
		    "curl failed without a message");
	}
	/* 5 s, 10 s, 20 s ... at most 5 minutes apart, for notify_timeout
	 * after the job ended. */
	delay = 5000LL << (s->attempts < 6 ? s->attempts : 6);
	if (delay > 300000)
		delay = 300000;
	if (now + delay > s->finished_at + (int64_t)conf->notify_timeout * 1000) {
		queue_notify_result(cb->q, s->job_id, "failed", why, 0);
		metrics_callback("given_up");
		log_warn("job %" PRId64 ": callback failed after %d attempt(s): "
		    "%s; giving up (notify_timeout)", s->job_id, s->attempts + 1,
		    why);
	} else {
		queue_notify_result(cb->q, s->job_id, "pending", why,
		    now + delay);
		metrics_callback("failed_attempt");
		log_info("job %" PRId64 ": callback attempt %d failed: %s; "
		    "again in %lld s", s->job_id, s->attempts + 1, why,
		    (long long)(delay / 1000));
	}
	send_free(s);
}

/* Write the body to a private file curl reads (--data-binary @file). */
static char *
body_file(const struct kiln_config *conf, int64_t id, const struct sbuf *b)
{
	char *dir = xasprintf("%s/tmp", conf->state_dir);
	char *path = xasprintf("%s/callback.%" PRId64 ".json", dir, id);
	int fd;

	util_mkdir_p(dir, 0700);
	free(dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 || write(fd, b->p, b->len) != (ssize_t)b->len) {
		log_error("callback: cannot write %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

static void
start_send(struct callbacks *cb, const struct queue_notify *n)
{
	struct send *s;
	struct job *job = NULL;
	struct sbuf body = { 0 };
	char sig[7 + 65], *data, *hsig = NULL, *hid, *hua;
	const char *key;
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	int rc;

	if (queue_get(cb->q, n->job_id, &job) != 0 || job->notify_url == NULL)
		goto out;
	sbuf_adds(&body, "{\"event\":\"job.");
	sbuf_adds(&body, job_state_name(job->state));
	sbuf_adds(&body, "\",\"job\":");
	api_job_render(&body, job);
	sbuf_addc(&body, '}');
	s = xcalloc(1, sizeof *s);
	s->cb = cb;
	s->job_id = n->job_id;
	s->attempts = n->attempts;
	s->finished_at = n->finished_at ? n->finished_at : util_now_ms();
	if ((s->file = body_file(cb->conf, n->job_id, &body)) == NULL) {
		free(s);
		goto out;
	}
	key = key_of(cb->conf, job);
	if (key != NULL) {
		callback_sign(sig, key, body.p, body.len);
		hsig = xasprintf("X-Kiln-Signature-256: %s", sig);
	}
	data = xasprintf("@%s", s->file);
	hid = xasprintf("X-Kiln-Delivery: %" PRId64 ".%d", n->job_id,
	    n->attempts + 1);
	hua = xasprintf("User-Agent: kiln/%s", PACKAGE_VERSION);
	{
		char *argv[] = { CURL, "-sS", "-o", "/dev/null",
		    "-w", "%{http_code}", "--max-time", "10",
		    "--proto", "=http,https", "-X", "POST",
		    "-H", "Content-Type: application/json", "-H", "Expect:",
		    "-H", "X-Kiln-Event: job", "-H", hid, "-H", hua,
		    "--data-binary", data, job->notify_url,
		    hsig ? "-H" : NULL, hsig, NULL };
		s->next = cb->inflight;
		cb->inflight = s;
		cb->ninflight++;
		rc = child_spawn(&s->child, cb->loop, argv, env, 2, send_data,
		    send_done, s);
		if (rc != 0)
			sbuf_adds(&s->err, "cannot run " CURL);
	}
	free(data);
	free(hid);
	free(hua);
	free(hsig);
out:
	sbuf_free(&body);
	job_free(job);
}

static void
on_tick(uv_timer_t *h)
{
	struct callbacks *cb = h->data;
	struct queue_notify *due = NULL;
	size_t n = 0;

	if (cb->closing || cb->ninflight >= MAX_INFLIGHT ||
	    queue_notify_due(cb->q, util_now_ms(), &due, &n) != 0)
		return;
	for (size_t i = 0; i < n && cb->ninflight < MAX_INFLIGHT; i++) {
		bool busy = false;
		for (struct send *s = cb->inflight; s; s = s->next)
			busy |= s->job_id == due[i].job_id;
		if (!busy)
			start_send(cb, &due[i]);
	}
	free(due);
}

struct callbacks *
callbacks_new(uv_loop_t *loop, struct queue *q, const struct kiln_config *conf)
{
	struct callbacks *cb = xcalloc(1, sizeof *cb);

	cb->loop = loop;
	cb->q = q;
	cb->conf = conf;
	uv_timer_init(loop, &cb->timer);
	cb->timer.data = cb;
	uv_timer_start(&cb->timer, on_tick, TICK_MS, TICK_MS);
	return cb;
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct callbacks *cb = h->data;
	void (*done)(void *) = cb->closed;
	void *data = cb->closed_data;

	free(cb);
	if (done != NULL)
		done(data);
}

static void
maybe_closed(struct callbacks *cb)
{
	if (!cb->closing || cb->ninflight > 0 ||
	    uv_is_closing((uv_handle_t *)&cb->timer))
		return;
	uv_close((uv_handle_t *)&cb->timer, on_timer_closed);
}

void
callbacks_close(struct callbacks *cb, void (*done)(void *), void *data)
{
	cb->closing = true;
	cb->closed = done;
	cb->closed_data = data;
	uv_timer_stop(&cb->timer);
	for (struct send *s = cb->inflight; s; s = s->next)
		child_kill(&s->child, SIGKILL);
	maybe_closed(cb);
}
