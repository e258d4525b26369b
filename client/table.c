/*
 * The live table of `kiln submit --wait`: on a terminal, one line for the
 * job and one per target (state, elapsed time, a spinner while it runs),
 * redrawn in place each poll by moving the cursor up over what was drawn
 * and clearing each line.  Elsewhere (a pipe, a log file) no escape
 * sequences: one line per state change, "linux/amd64 running", so that
 * the output reads as a log.  Names and states come from the server:
 * they are printed through a filter that drops control characters, so a
 * hostile answer cannot move the cursor itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"

#define TABLE_ROWS_MAX 256

struct seen {
	char *name;
	char *state;
};

struct table {
	bool tty;
	FILE *out;
	int drawn;		/* lines drawn last time (tty) */
	unsigned tick;
	struct seen *seen;	/* plain mode: the last state printed */
	size_t nseen;
	char *job_state;
};

bool
job_state_ended(const char *state)
{
	return state != NULL && (strcmp(state, "succeeded") == 0 ||
	    strcmp(state, "failed") == 0 || strcmp(state, "canceled") == 0);
}

struct table *
table_new(bool tty, int fd)
{
	struct table *t = xcalloc(1, sizeof *t);

	t->tty = tty;
	t->out = fd == 2 ? stderr : stdout;
	return t;
}

void
table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nseen; i++) {
		free(t->seen[i].name);
		free(t->seen[i].state);
	}
	free(t->seen);
	free(t->job_state);
	free(t);
}

/* s without control characters, at most max bytes, into b. */
static void
add_clean(struct sbuf *b, const char *s, size_t max)
{
	size_t n = 0;

	for (; s != NULL && *s && n < max; s++, n++)
		sbuf_addc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' :
		    *s);
}

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

/* "2026-12-01T11:05:18.049Z" as seconds since the epoch, or -1. */
static int64_t
parse_time(const char *s)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, se;

	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h,
	    &mi, &se) != 6)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	return (int64_t)timegm(&tm);
}

/* The time from started_at to finished_at (or now) as "1:02", or "". */
static void
add_elapsed(struct sbuf *b, json_t *o)
{
	int64_t a = parse_time(json_string_value(json_object_get(o,
	    "started_at")));
	int64_t z = parse_time(json_string_value(json_object_get(o,
	    "finished_at")));
	char buf[32];

	if (a < 0) {
		sbuf_adds(b, "    -");
		return;
	}
	if (z < 0)
		z = (int64_t)time(NULL);
	if (z < a)
		z = a;
	snprintf(buf, sizeof buf, "%2lld:%02lld", (long long)((z - a) / 60),
	    (long long)((z - a) % 60));
	sbuf_adds(b, buf);
}

static void
draw(struct table *t, json_t *job)
{
	static const char spin[] = "|/-\\";
	json_t *targets = json_object_get(job, "targets"), *o;
	struct sbuf b = { 0 };
	size_t i, n = json_array_size(targets), done = 0;
	int lines = 0;
	char num[32];

	json_array_foreach(targets, i, o)
		if (job_state_ended(str(o, "state")) ||
		    strcmp(str(o, "state"), "skipped") == 0)
			done++;
	if (t->drawn > 0) {
		snprintf(num, sizeof num, "\033[%dA", t->drawn);
		sbuf_adds(&b, num);
	}
	sbuf_adds(&b, "\r\033[2Kjob ");
	sbuf_addi(&b, json_integer_value(json_object_get(job, "id")));
	sbuf_adds(&b, "  ");
	add_clean(&b, str(job, "state"), 16);
	snprintf(num, sizeof num, "  %zu/%zu targets done  ", done, n);
	sbuf_adds(&b, num);
	add_elapsed(&b, job);
	sbuf_addc(&b, '\n');
	lines++;
	json_array_foreach(targets, i, o) {
		const char *name = str(o, "target"), *st = str(o, "state");
		size_t w = 0;

		if (i >= TABLE_ROWS_MAX)
			break;
		sbuf_adds(&b, "\r\033[2K  ");
		add_clean(&b, name, 32);
		for (w = strlen(name); w < 18; w++)
			sbuf_addc(&b, ' ');
		add_clean(&b, st, 16);
		for (w = strlen(st); w < 11; w++)
			sbuf_addc(&b, ' ');
		add_elapsed(&b, o);
		if (strcmp(st, "running") == 0 || strcmp(st, "fetching") == 0) {
			sbuf_adds(&b, "  ");
			sbuf_addc(&b, spin[t->tick % 4]);
		}
		sbuf_addc(&b, '\n');
		lines++;
	}
	/* Fewer lines than last time: clear the rest. */
	for (int k = lines; k < t->drawn; k++)
		sbuf_adds(&b, "\r\033[2K\n");
	if (lines < t->drawn) {
		snprintf(num, sizeof num, "\033[%dA", t->drawn - lines);
		sbuf_adds(&b, num);
	}
	fwrite(b.p, 1, b.len, t->out);
	fflush(t->out);
	sbuf_free(&b);
	t->drawn = lines;
	t->tick++;
}

static void
plain(struct table *t, json_t *job)
{
	json_t *targets = json_object_get(job, "targets"), *o;
	const char *js = str(job, "state");
	struct sbuf b = { 0 };
	size_t i, k;

	json_array_foreach(targets, i, o) {
		const char *name = str(o, "target"), *st = str(o, "state");

		for (k = 0; k < t->nseen; k++)
			if (strcmp(t->seen[k].name, name) == 0)
				break;
		if (k == t->nseen) {
			if (t->nseen == TABLE_ROWS_MAX)
				continue;
			t->seen = xreallocarray(t->seen, t->nseen + 1,
			    sizeof *t->seen);
			t->seen[t->nseen].name = xstrdup(name);
			t->seen[t->nseen++].state = NULL;
		} else if (strcmp(t->seen[k].state, st) == 0) {
			continue;
		}
		free(t->seen[k].state);
		t->seen[k].state = xstrdup(st);
		add_clean(&b, name, 32);
		sbuf_addc(&b, ' ');
		add_clean(&b, st, 16);
		sbuf_addc(&b, '\n');
	}
	if (job_state_ended(js) && (t->job_state == NULL ||
	    strcmp(t->job_state, js) != 0)) {
		sbuf_adds(&b, "job ");
		sbuf_addi(&b, json_integer_value(json_object_get(job, "id")));
		sbuf_addc(&b, ' ');
		add_clean(&b, js, 16);
		sbuf_addc(&b, '\n');
	}
	free(t->job_state);
	t->job_state = xstrdup(js);
	if (b.len > 0) {
		fwrite(b.p, 1, b.len, t->out);
		fflush(t->out);
	}
	sbuf_free(&b);
}

void
table_update(struct table *t, json_t *job)
{
	if (t->tty)
		draw(t, job);
	else
		plain(t, job);
}
