#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "jobjson.h"
#include "callback-url.h"
#include "callback.h"
#include "child.h"
#include "log.h"
#include "metrics.h"
#include "sbuf.h"
#include "sign.h"
#include "utf8.h"
#include "util.h"
#include "xmalloc.h"

#define TICK_MS 1000
#define OUTPUT_MAX 4096
#define MAX_PINNED 8		/* addresses handed to curl's --resolve */
#define CURL "/usr/bin/curl"

/*
 * One attempt.  It holds its slot until nothing of it is outstanding
 * (the lookup, the curl child) and its deadline timer is closed; the
 * timer's close callback frees it, once its outcome is written.
 */
struct send {
	struct callbacks *cb;
	struct send *next;
	int64_t job_id;
	int attempts;
	int64_t finished_at;
	char *url;
	struct callback_url u;
	struct sbuf body;
	char sig[7 + 65];		/* "" when unsigned */
	char *body_file, *header_file;

	uv_timer_t deadline;
	uv_getaddrinfo_t gai;
	struct child child;
	bool resolving, running;	/* outstanding */
	bool settled;			/* result known, timer closing */
	bool recording;			/* its outcome being written */
	bool closed;			/* the timer is closed */
	bool timed_out;
	bool delivered;
	bool refused;			/* the destination: no retries */
	long long http_code;
	char why[300];			/* why it failed */
	struct sbuf out, err;
};

/*
 * An attempt whose job is being read (queue_get completes later).  It
 * holds its slot and its job from the tick on, so that the next tick
 * neither starts a second attempt for the job nor passes notify_slots.
 */
struct lookup {
	struct callbacks *cb;
	struct lookup *next;
	struct queue_notify n;
	struct job *job;
};

struct callbacks {
	uv_loop_t *loop;
	struct queue *q;
	const struct kiln_config *conf;
	uv_timer_t timer;
	struct send *inflight;
	struct lookup *looking;
	unsigned ninflight;		/* attempts and lookups */
	bool reading_due;		/* the tick's read is in flight */
	struct queue_notify *due;	/* its answer */
	size_t ndue;
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

const char *
callback_key(const struct kiln_config *c, const char *project,
    const char *url)
{
	const struct conf_project *p = project ?
	    conf_project_by_name(c, project) : NULL;

	if (p != NULL && p->notify_secret != NULL && p->notify_url != NULL &&
	    url != NULL && strcmp(p->notify_url, url) == 0)
		return p->notify_secret;
	return c->notify_secret;
}

static void maybe_closed(struct callbacks *cb);

/* Let go of the slot once the timer is closed and the outcome stored:
 * until then the job counts as in flight, so no tick sends it again. */
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
	free(s->url);
	sbuf_free(&s->body);
	sbuf_free(&s->out);
	sbuf_free(&s->err);
	free(s);
	maybe_closed(cb);
}

static void
on_send_closed(uv_handle_t *h)
{
	struct send *s = h->data;

	s->closed = true;
	if (!s->recording)
		send_free(s);
}

static void
recorded(void *data, int rc)
{
	struct send *s = data;

	if (rc != 0)
		log_error("job %" PRId64 ": cannot record the callback's "
		    "outcome; it is tried again", s->job_id);
	s->recording = false;
	if (s->closed)
		send_free(s);
}

/* The outcome into the jobs table and the log. */
static void
record(struct send *s)
{
	struct callbacks *cb = s->cb;
	const struct kiln_config *conf = cb->conf;
	int64_t now = util_now_ms(), delay;

	if (s->delivered) {
		s->recording = true;
		queue_notify_result(cb->q, s->job_id, "delivered", NULL, 0,
		    recorded, s);
		metrics_callback("delivered");
		log_info("job %" PRId64 ": callback delivered to %s (HTTP %lld)",
		    s->job_id, s->u.host, s->http_code);
		return;
	}
	utf8_fix(s->why, sizeof s->why);
	s->recording = true;
	if (s->refused) {
		queue_notify_result(cb->q, s->job_id, "failed", s->why, 0,
		    recorded, s);
		metrics_callback("given_up");
		log_warn("job %" PRId64 ": callback refused: %s; not retried",
		    s->job_id, s->why);
		return;
	}
	/* 5 s, 10 s, 20 s ... at most 5 minutes apart, for notify_timeout
	 * after the job ended. */
	delay = 5000LL << (s->attempts < 6 ? s->attempts : 6);
	if (delay > 300000)
		delay = 300000;
	if (now + delay > s->finished_at + (int64_t)conf->notify_timeout * 1000) {
		queue_notify_result(cb->q, s->job_id, "failed", s->why, 0,
		    recorded, s);
		metrics_callback("given_up");
		log_warn("job %" PRId64 ": callback to %s failed after %d "
		    "attempt(s): %s; giving up (notify_timeout)", s->job_id,
		    s->u.host, s->attempts + 1, s->why);
	} else {
		queue_notify_result(cb->q, s->job_id, "pending", s->why,
		    now + delay, recorded, s);
		metrics_callback("failed_attempt");
		log_info("job %" PRId64 ": callback attempt %d to %s failed: "
		    "%s; again in %lld s", s->job_id, s->attempts + 1,
		    s->u.host, s->why, (long long)(delay / 1000));
	}
}

/* Called whenever something of the attempt ended: once nothing is
 * outstanding, record the outcome and let go of the slot.  An attempt cut
 * short by the shutdown stays pending and is made after the next start. */
static void
settle(struct send *s)
{
	if (s->resolving || s->running || s->settled)
		return;
	s->settled = true;
	if (!s->cb->closing)
		record(s);
	if (s->body_file != NULL)
		unlink(s->body_file);
	if (s->header_file != NULL)
		unlink(s->header_file);
	free(s->body_file);
	free(s->header_file);
	s->body_file = s->header_file = NULL;
	uv_timer_stop(&s->deadline);
	uv_close((uv_handle_t *)&s->deadline, on_send_closed);
}

static void
on_deadline(uv_timer_t *t)
{
	struct send *s = container_of(t, struct send, deadline);

	s->timed_out = true;
	snprintf(s->why, sizeof s->why, "no answer within notify_deadline "
	    "(%u s)%s", s->cb->conf->notify_deadline, s->running ?
	    "; curl was killed" : " while resolving the host");
	if (s->running)
		child_kill(&s->child, SIGKILL);
	/* A lookup already running cannot be stopped: it holds the slot
	 * until the resolver gives up. */
	if (s->resolving)
		uv_cancel((uv_req_t *)&s->gai);
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
	int64_t code = 0;

	s->running = false;
	if (s->cb->closing) {
		settle(s);
		return;
	}
	sbuf_addc(&s->out, '\0');
	sbuf_addc(&s->err, '\0');
	util_parse_int64(s->out.p, 0, 999, &code);
	s->http_code = code;
	/* A curl that finished just as the deadline came still counts. */
	if (c->exit_status == 0 && code >= 200 && code < 300)
		s->delivered = true;
	else if (s->timed_out)
		;	/* s->why says so */
	else if (code >= 300 && code < 400)
		snprintf(s->why, sizeof s->why, "HTTP %lld (redirects are not "
		    "followed)", (long long)code);
	else if (code > 0)
		snprintf(s->why, sizeof s->why, "HTTP %lld", (long long)code);
	else if (s->why[0] == '\0') {
		char *e = s->err.p;
		e[strcspn(e, "\n")] = '\0';
		snprintf(s->why, sizeof s->why, "%s", *e ? e :
		    "curl failed without a message");
	}
	settle(s);
}

/* A private file of the attempt (mode 0600) holding b; NULL on error. */
static char *
write_file(struct send *s, const char *what, const char *p, size_t len)
{
	const struct kiln_config *conf = s->cb->conf;
	char *dir = xasprintf("%s/tmp", conf->state_dir);
	char *path = xasprintf("%s/callback.%" PRId64 ".%s", dir, s->job_id,
	    what);
	int fd;

	util_mkdir_p(dir, 0700);
	free(dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 || write(fd, p, len) != (ssize_t)len) {
		/* The job shows why; the host's paths stay in the log. */
		log_error("callback: cannot write %s: %s", path,
		    strerror(errno));
		snprintf(s->why, sizeof s->why, "kilnd could not write the "
		    "callback's files (see its log)");
		if (fd >= 0)
			close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

/* Run curl; pinned is NULL for a literal host, else "a[,b...]" for
 * --resolve.  Returns with s->running set, or with s->why set. */
static void
spawn_curl(struct send *s, const char *pinned)
{
	struct callbacks *cb = s->cb;
	char *h, *hdata = NULL, *ddata = NULL, *resolve = NULL;
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	char maxtime[16];
	int rc;

	/* Headers from a file, not argv: /proc/PID/cmdline is readable by
	 * every local user. */
	h = xasprintf("Content-Type: application/json\nExpect:\n"
	    "X-Kiln-Event: job\nX-Kiln-Delivery: %" PRId64 ".%d\n"
	    "User-Agent: kiln/%s\n%s%s%s", s->job_id, s->attempts + 1,
	    PACKAGE_VERSION, s->sig[0] ? "X-Kiln-Signature-256: " : "",
	    s->sig, s->sig[0] ? "\n" : "");
	s->body_file = write_file(s, "json", s->body.p, s->body.len);
	if (s->body_file != NULL)
		s->header_file = write_file(s, "headers", h, strlen(h));
	free(h);
	if (s->header_file == NULL)
		return;
	hdata = xasprintf("@%s", s->header_file);
	ddata = xasprintf("@%s", s->body_file);
	if (pinned != NULL)
		resolve = xasprintf("%s:%u:%s", s->u.host, s->u.port, pinned);
	snprintf(maxtime, sizeof maxtime, "%u", cb->conf->notify_deadline + 5);
	{
		/* -q first: no curlrc.  The deadline is kilnd's
		 * (on_deadline); --max-time, a little later, only ends a
		 * curl that outlived a kilnd killed or crashed mid-attempt
		 * (nothing else would: curl has no total timeout of its
		 * own, and an orphan to a receiver that never answers would
		 * stay forever). */
		char *argv[] = { CURL, "-q", "-sS", "--globoff",
		    "--proto", "=http,https", "--max-redirs", "0",
		    "--max-time", maxtime,
		    "-o", "/dev/null", "-w", "%{http_code}",
		    "-H", hdata, "--data-binary", ddata, "--url", s->url,
		    resolve ? "--resolve" : NULL, resolve, NULL };
		s->running = true;
		rc = child_spawn(&s->child, cb->loop, argv, env, 2, send_data,
		    send_done, s);
		if (rc != 0)
			snprintf(s->why, sizeof s->why, "cannot run " CURL ": %s",
			    uv_strerror(rc));
	}
	free(hdata);
	free(ddata);
	free(resolve);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct send *s = container_of(req, struct send, gai);
	struct sbuf pins = { 0 };
	int npins = 0;

	s->resolving = false;
	if (s->timed_out || s->cb->closing)
		goto out;
	if (status != 0) {
		snprintf(s->why, sizeof s->why, "cannot resolve %s: %s",
		    s->u.host, uv_strerror(status));
		goto out;
	}
	/* Every address: curl may connect to any of those it is given,
	 * and a name with one private address among public ones is as
	 * bad as one with only that. */
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN];
		const void *bin;
		const char *refused;

		if (a->ai_family == AF_INET)
			bin = &((struct sockaddr_in *)a->ai_addr)->sin_addr;
		else if (a->ai_family == AF_INET6)
			bin = &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		else
			continue;
		inet_ntop(a->ai_family, bin, ip, sizeof ip);
		refused = callback_addr_refused(a->ai_addr);
		if (refused != NULL && !s->cb->conf->allow_private_callbacks) {
			snprintf(s->why, sizeof s->why, "%.100s resolves to %s, "
			    "%s (allow_private_callbacks is off)", s->u.host,
			    ip, refused);
			s->refused = true;
			goto out;
		}
		if (npins < MAX_PINNED) {
			if (npins++ > 0)
				sbuf_addc(&pins, ',');
			sbuf_adds(&pins, a->ai_family == AF_INET6 ? "[" : "");
			sbuf_adds(&pins, ip);
			sbuf_adds(&pins, a->ai_family == AF_INET6 ? "]" : "");
		}
	}
	if (npins == 0) {
		snprintf(s->why, sizeof s->why, "%s has no IP address",
		    s->u.host);
		goto out;
	}
	sbuf_addc(&pins, '\0');
	spawn_curl(s, pins.p);
out:
	sbuf_free(&pins);
	uv_freeaddrinfo(res);
	settle(s);
}

static void
start_send(struct callbacks *cb, const struct queue_notify *n,
    struct job *job)
{
	struct send *s;
	struct sbuf body = { 0 };
	const struct kiln_config *conf = cb->conf;
	const char *key;
	char why[300];
	int rc;

	if (job->notify_url == NULL)
		goto out;
	sbuf_adds(&body, "{\"event\":\"job.");
	sbuf_adds(&body, job_state_name(job->state));
	sbuf_adds(&body, "\",\"job\":");
	job_render_json(&body, job);
	sbuf_addc(&body, '}');
	s = xcalloc(1, sizeof *s);
	s->cb = cb;
	s->job_id = n->job_id;
	s->attempts = n->attempts;
	s->finished_at = n->finished_at ? n->finished_at : util_now_ms();
	s->url = xstrdup(job->notify_url);
	/* The receiver parses JSON: however a field was made, it gets
	 * valid UTF-8. */
	if (utf8_valid(body.p, body.len)) {
		s->body = body;
		body = (struct sbuf){ 0 };
	} else
		utf8_sanitize(&s->body, body.p, body.len);
	if ((key = callback_key(conf, job->project,
	    job->notify_url)) != NULL)
		callback_sign(s->sig, key, s->body.p, s->body.len);
	s->next = cb->inflight;
	cb->inflight = s;
	cb->ninflight++;
	uv_timer_init(cb->loop, &s->deadline);
	s->deadline.data = s;
	uv_timer_start(&s->deadline, on_deadline,
	    (uint64_t)conf->notify_deadline * 1000, 0);

	/* Checked again here: the row may predate these rules, or come
	 * from a project whose notify_url was a name. */
	if (callback_url_parse(s->url, &s->u, why, sizeof why) != 0) {
		snprintf(s->u.host, sizeof s->u.host, "?");
		snprintf(s->why, sizeof s->why, "notify URL refused: %.250s",
		    why);
		s->refused = true;
	} else if (s->u.literal) {
		if (callback_url_check(s->url, conf->allow_private_callbacks,
		    why, sizeof why) != 0) {
			snprintf(s->why, sizeof s->why, "%s", why);
			s->refused = true;
		} else
			spawn_curl(s, NULL);
	} else {
		struct addrinfo hints = { .ai_family = AF_UNSPEC,
		    .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP };
		s->resolving = true;
		rc = uv_getaddrinfo(cb->loop, &s->gai, on_resolved, s->u.host,
		    NULL, &hints);
		if (rc != 0) {
			s->resolving = false;
			snprintf(s->why, sizeof s->why, "cannot resolve %s: %s",
			    s->u.host, uv_strerror(rc));
		}
	}
	settle(s);
out:
	sbuf_free(&body);
	job_free(job);
}

/*
 * The job was read: the attempt starts, unless kilnd is stopping (it
 * stays pending and is made after the next start) or the job is not due
 * as the tick's read said.  That read may predate the outcome of an
 * attempt that ended while it was in flight (its slot is free again);
 * this read was made after, and sees the outcome: another attempt counted.
 */
static bool
still_due(const struct lookup *l)
{
	const struct job *j = l->job;

	return j->notify_state != NULL &&
	    strcmp(j->notify_state, "pending") == 0 &&
	    j->notify_attempts == l->n.attempts;
}

static void
looked_up(void *data, int rc)
{
	struct lookup *l = data;
	struct callbacks *cb = l->cb;

	for (struct lookup **pp = &cb->looking; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	cb->ninflight--;
	if (rc == 0 && !cb->closing && still_due(l)) {
		start_send(cb, &l->n, l->job);	/* takes the job */
		l->job = NULL;
	}
	job_free(l->job);
	free(l);
	maybe_closed(cb);
}

static bool
busy(const struct callbacks *cb, int64_t job_id)
{
	for (const struct send *s = cb->inflight; s; s = s->next)
		if (s->job_id == job_id)
			return true;
	for (const struct lookup *l = cb->looking; l; l = l->next)
		if (l->n.job_id == job_id)
			return true;
	return false;
}

static void
due_read(void *data, int rc)
{
	struct callbacks *cb = data;
	unsigned slots = cb->conf->notify_slots;

	cb->reading_due = false;
	for (size_t i = 0; rc == 0 && !cb->closing && i < cb->ndue &&
	    cb->ninflight < slots; i++) {
		struct lookup *l;

		if (busy(cb, cb->due[i].job_id))
			continue;
		l = xcalloc(1, sizeof *l);
		l->cb = cb;
		l->n = cb->due[i];
		l->next = cb->looking;
		cb->looking = l;
		cb->ninflight++;
		queue_get(cb->q, l->n.job_id, &l->job, looked_up, l);
	}
	free(cb->due);
	cb->due = NULL;
	cb->ndue = 0;
	maybe_closed(cb);
}

static void
on_tick(uv_timer_t *h)
{
	struct callbacks *cb = h->data;

	/* One read at a time: a tick while it is in flight asks nothing. */
	if (cb->closing || cb->reading_due ||
	    cb->ninflight >= cb->conf->notify_slots)
		return;
	cb->reading_due = true;
	queue_notify_due(cb->q, util_now_ms(), &cb->due, &cb->ndue, due_read,
	    cb);
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
	if (!cb->closing || cb->ninflight > 0 || cb->reading_due ||
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
	for (struct send *s = cb->inflight; s; s = s->next) {
		uv_timer_stop(&s->deadline);
		if (s->running)
			child_kill(&s->child, SIGKILL);
		if (s->resolving)
			uv_cancel((uv_req_t *)&s->gai);
	}
	maybe_closed(cb);
}
