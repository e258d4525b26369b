/*
 * Build logs: STATE/logs/JOB/TARGET.log per target, capped at
 * max_log_size, with the offsets of kilnd's own "[kiln] " lines beside
 * it (logview.h); and the followers through which clients read a log
 * while it grows (sched_log_watch).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logview.h"
#include "sbuf.h"
#include "sched-int.h"
#include "utf8.h"
#include "util.h"
#include "xmalloc.h"

/* --- logs ------------------------------------------------------------------ */

void
wake_watchers(struct starget *st)
{
	for (struct watcher *w = st->watchers; w; w = w->next)
		w->wake(w->data);
}

/*
 * A target's log and, beside it, the offsets of kilnd's own lines in it
 * (TARGET.log.kiln, logview.h): what lets the log shown to people tell
 * kilnd's "[kiln] ..." lines from a build's that look the same.  Both
 * are created together, truncated together when a target runs again, and
 * go with the job's log directory.  Only kilnd writes the marks, on the
 * loop thread, each one after its line: a reader on the loop thread
 * never sees one without the other, and a crash between the two leaves
 * kilnd's line shown as the build's (escaped), never the reverse.
 */
int
log_create(struct starget *st, const char *lp)
{
	char *mp = xasprintf("%s.kiln", lp);
	int rc = 0;

	st->log_fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
	    O_CLOEXEC, 0640);
	if (st->log_fd < 0)
		rc = -errno;
	else if ((st->marks_fd = open(mp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640)) < 0) {
		rc = -errno;
		close(st->log_fd);
		st->log_fd = -1;
	}
	free(mp);
	return rc;
}

void
log_close(struct starget *st)
{
	if (st->log_fd >= 0)
		close(st->log_fd);
	if (st->marks_fd >= 0)
		close(st->marks_fd);
	st->log_fd = st->marks_fd = -1;
}

/* kilnd's line of n bytes goes into the log now, and its offset into
 * the marks (the file's end: O_APPEND writes land there). */
static void
log_own(struct starget *st, const char *line, size_t n)
{
	char rec[LOGVIEW_MARK_LEN + 1];
	off_t at;

	if (st->log_fd < 0 || (at = lseek(st->log_fd, 0, SEEK_END)) < 0)
		return;
	if (write(st->log_fd, line, n) != (ssize_t)n)
		return;
	st->log_bytes += n;
	logview_mark_record(rec, (uint64_t)at);
	if (st->marks_fd >= 0)
		(void)!write(st->marks_fd, rec, LOGVIEW_MARK_LEN);
}

void
log_write(struct starget *st, const char *buf, size_t n)
{
	size_t cap = st->s->conf->max_log_size;
	static const char cut[] = "[kiln] log truncated: it reached "
	    "max_log_size; the rest of the output was dropped\n";

	if (st->log_fd < 0 || st->truncated)
		return;
	if (st->log_bytes + n > cap) {
		/* kilnd's own lines are not counted against the cap, so
		 * log_bytes may already be past it. */
		n = st->log_bytes < cap ? cap - st->log_bytes : 0;
		st->truncated = true;
	}
	if (n > 0 && write(st->log_fd, buf, n) == (ssize_t)n)
		st->log_bytes += n;
	if (st->truncated) {
		/* On a line of its own in the raw log too. */
		(void)!write(st->log_fd, "\n", 1);
		log_own(st, cut, sizeof cut - 1);
	}
	wake_watchers(st);
}

/*
 * Users read a target's log and error; where kilnd keeps its state is the
 * operator's business.  A lower layer's message (the store's on a full
 * disk, say) may name a path there: "<state dir>" stands for it.
 */
void
hide_state_dir(const struct sched *s, char *msg, size_t size)
{
	static const char name[] = "<state dir>";
	const char *dir = s->conf->state_dir;
	size_t dlen = strlen(dir), nlen = sizeof name - 1;
	char *p = msg;

	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	if (dlen <= 1 || size == 0)
		return;
	while ((p = memmem(p, strlen(p), dir, dlen)) != NULL) {
		size_t off = (size_t)(p - msg), tail = strlen(p + dlen);
		unsigned char next = (unsigned char)p[dlen];

		/* /srv/kiln is not in /srv/kiln2: whole names only. */
		if (isalnum(next) || next == '.' || next == '-' || next == '_') {
			p += dlen;
			continue;
		}
		if (off + nlen >= size) {
			snprintf(p, size - off, "%s", name);
			return;
		}
		if (off + nlen + tail >= size)
			tail = size - 1 - off - nlen;
		memmove(p + nlen, p + dlen, tail);
		memcpy(p, name, nlen);
		p[nlen + tail] = '\0';
		p += nlen;
	}
}

/*
 * kilnd's own lines in a build log start with "[kiln] " and are marked
 * (log_own).  What they quote (a worker's error, go's output, a
 * repository's names) is made one line of valid UTF-8 without control
 * sequences (logview_clean), so a quoted text cannot end kilnd's line and
 * start one that would pass for kilnd's in the view.
 */
void
log_line(struct starget *st, const char *fmt, ...)
{
	char msg[1024];
	struct sbuf line = { 0 };
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	hide_state_dir(st->s, msg, sizeof msg);
	n = utf8_trim_partial(msg, strlen(msg));
	sbuf_add(&line, "[kiln] ", 7);
	logview_clean(&line, msg, n);
	/* Escapes grow the text: cut it again, between characters. */
	line.len = utf8_cut(line.p, line.len, sizeof msg + 7);
	sbuf_addc(&line, '\n');
	log_own(st, line.p, line.len);
	sbuf_free(&line);
	wake_watchers(st);
}

/* --- logs for the API ----------------------------------------------------------- */

static struct starget *
find_target(struct sched *s, int64_t job_id, const char *target)
{
	struct sjob *j = find_job(s, job_id);

	if (j == NULL)
		return NULL;
	for (struct starget *st = j->targets; st; st = st->next)
		if (strcmp(st->t.name, target) == 0 && st->started &&
		    !st->ended)
			return st;
	return NULL;
}

int
sched_log_open(struct sched *s, int64_t job_id, const char *target, int *fd)
{
	struct target t;
	char err[160], url[TARGET_NAME_MAX], *p;

	if (target_parse_row(&t, target, err, sizeof err) != 0)
		return -ENOENT;
	target_url_name(url, &t);
	p = log_path(s, job_id, url);
	*fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(p);
	return *fd < 0 ? -errno : 0;
}

int
sched_log_marks_open(struct sched *s, int64_t job_id, const char *target,
    int *fd)
{
	struct target t;
	char err[160], url[TARGET_NAME_MAX], *p, *m;

	if (target_parse_row(&t, target, err, sizeof err) != 0)
		return -ENOENT;
	target_url_name(url, &t);
	p = log_path(s, job_id, url);
	m = xasprintf("%s.kiln", p);
	*fd = open(m, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(p);
	free(m);
	return *fd < 0 ? -errno : 0;
}

/* A target ended whose outcome is not durable yet (build.c). */
struct ended *
find_ending(struct sched *s, int64_t job_id, const char *target)
{
	for (struct ended *e = s->ending; e; e = e->next)
		if (e->job_id == job_id && strcmp(e->target, target) == 0)
			return e;
	return NULL;
}

/* Live until its outcome is durable: a follower ends only then. */
bool
sched_log_live(struct sched *s, int64_t job_id, const char *target)
{
	return find_target(s, job_id, target) != NULL ||
	    find_ending(s, job_id, target) != NULL;
}

/*
 * A follower's handle.  While its target runs, the target's watchers hold
 * it (woken by each write, at the end and on every tick).  Before the
 * target starts, nothing here writes to it (it may be only a row in the
 * queue, or parked while its job is fetched, and parked targets are freed
 * without telling watchers), so a timer of its own wakes the follower
 * every tick to look again, and puts it on the target's list once the
 * target runs.
 */
struct follower {
	struct watcher w;
	struct sched *s;
	int64_t job_id;
	char target[TARGET_NAME_MAX];
	uv_timer_t timer;		/* runs while the target has not started */
};

static void
follower_attach(struct follower *f, struct starget *st)
{
	f->w.t = st;
	f->w.next = st->watchers;
	st->watchers = &f->w;
}

static void
on_follower_tick(uv_timer_t *h)
{
	struct follower *f = container_of(h, struct follower, timer);
	struct starget *st = find_target(f->s, f->job_id, f->target);

	if (st != NULL) {
		uv_timer_stop(h);
		follower_attach(f, st);
	}
	f->w.wake(f->w.data);
}

static void
on_follower_closed(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct follower, timer));
}

void *
sched_log_watch(struct sched *s, int64_t job_id, const char *target,
    void (*wake)(void *), void *data)
{
	struct starget *st = find_target(s, job_id, target);
	struct ended *e = st == NULL ? find_ending(s, job_id, target) : NULL;
	struct follower *f = xcalloc(1, sizeof *f);

	f->w.wake = wake;
	f->w.data = data;
	f->s = s;
	f->job_id = job_id;
	snprintf(f->target, sizeof f->target, "%s", target);
	uv_timer_init(s->loop, &f->timer);
	if (st != NULL)
		follower_attach(f, st);
	else if (e != NULL) {
		/* Woken when its outcome is durable. */
		f->w.e = e;
		f->w.next = e->watchers;
		e->watchers = &f->w;
	} else
		uv_timer_start(&f->timer, on_follower_tick, TICK_MS, TICK_MS);
	return &f->w;
}

void
sched_log_unwatch(struct sched *s, void *handle)
{
	struct follower *f;

	(void)s;
	if (handle == NULL)
		return;
	f = container_of((struct watcher *)handle, struct follower, w);
	if (f->w.t != NULL || f->w.e != NULL) {
		for (struct watcher **pp = f->w.t != NULL ? &f->w.t->watchers :
		    &f->w.e->watchers; *pp; pp = &(*pp)->next) {
			if (*pp == &f->w) {
				*pp = f->w.next;
				break;
			}
		}
	}
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, on_follower_closed);
}
