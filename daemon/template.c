#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sbuf.h"
#include "template.h"
#include "util.h"

/* Go text/template's trim markers need one of these next to the dash. */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_ident(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (!first && c >= '0' && c <= '9');
}

static int
add(struct sbuf *out, const char *s, size_t n, char *err, size_t errsize)
{
	if (out->len + n > TEMPLATE_MAX_OUTPUT) {
		snprintf(err, errsize, "template output is longer than %d "
		    "bytes", TEMPLATE_MAX_OUTPUT);
		return -1;
	}
	sbuf_add(out, s, n);
	return 0;
}

/* RFC 3339 in UTC, as Go's time.RFC3339 prints a UTC time. */
static int
rfc3339(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
	    tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -1;
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	return 0;
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

/*
 * The value of field `name` (n bytes), formatted into buf when needed.
 * NULL when the name is unknown, or with *range set when the commit time
 * cannot be written as a date.
 */
static const char *
field(const struct template_vars *v, const char *name, size_t n, char *buf,
    size_t size, bool *range)
{
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
	*range = false;
	if (IS("ProjectName"))
		return nz(v->project_name);
	if (IS("Version"))
		return nz(v->version);
	if (IS("RawVersion"))
		return nz(v->raw_version);
	if (IS("Tag"))
		return nz(v->tag);
	if (IS("Commit") || IS("FullCommit"))
		return nz(v->commit);
	if (IS("ShortCommit")) {
		snprintf(buf, size, "%.7s", nz(v->commit));
		return buf;
	}
	if (IS("Branch"))
		return nz(v->branch);
	/* .Date is the commit time too: see struct template_vars. */
	if (IS("CommitDate") || IS("Date")) {
		if (rfc3339(buf, size, v->commit_time) != 0) {
			*range = true;
			return NULL;
		}
		return buf;
	}
	if (IS("CommitTimestamp") || IS("Timestamp")) {
		snprintf(buf, size, "%lld", (long long)v->commit_time);
		return buf;
	}
	if (IS("Os"))
		return nz(v->os);
	if (IS("Arch"))
		return nz(v->arch);
	if (IS("Arm"))
		return nz(v->arm);
	if (IS("Amd64"))
		return nz(v->amd64);
	if (IS("IsSnapshot"))
		return v->is_snapshot ? "true" : "false";
	return NULL;
#undef IS
}

/*
 * One action's body a[0..n) (trim markers and surrounding spaces
 * removed): ".Name" or ".Env.NAME" and nothing else.  `action` is the
 * whole "{{ ... }}" for messages.
 */
static int
expand_action(struct sbuf *out, const char *a, size_t n, const char *action,
    size_t alen, const struct template_vars *v, char *err, size_t errsize)
{
	char quoted[84], buf[64];
	const char *val;
	size_t i = 1, dot = 0;
	bool range;

	util_snippet(quoted, sizeof quoted, action, alen);
	/* A chain of one or two identifiers, nothing else. */
	if (n < 2 || a[0] != '.' || !is_ident(a[1], true))
		goto unsupported;
	while (i < n && is_ident(a[i], false))
		i++;
	if (i < n && a[i] == '.') {
		dot = i++;
		if (i == n || !is_ident(a[i], true))
			goto unsupported;
		while (i < n && is_ident(a[i], false))
			i++;
	}
	if (i != n)
		goto unsupported;

	if (dot == 0) {
		val = field(v, a + 1, n - 1, buf, sizeof buf, &range);
		if (range) {
			snprintf(err, errsize, "template %s: the commit time "
			    "is out of range", quoted);
			return -1;
		}
		if (val == NULL) {
			if (n == 4 && memcmp(a, ".Env", 4) == 0)
				goto unsupported;
			goto unknown;
		}
		return add(out, val, strlen(val), err, errsize);
	}
	if (dot != 4 || memcmp(a, ".Env", 4) != 0)
		goto unknown;
	/* GoReleaser fails on a variable that is not set: so do we. */
	const char *name = a + dot + 1;
	size_t nlen = n - dot - 1;
	json_t *e = v->env ? json_object_getn(v->env, name, nlen) : NULL;

	if (e == NULL) {
		snprintf(err, errsize, "unknown template %s: %.*s is not in "
		    "the recipe's env", quoted, (int)nlen, name);
		return -1;
	}
	if (!json_is_string(e)) {
		snprintf(err, errsize, "template %s: %.*s is not a string",
		    quoted, (int)nlen, name);
		return -1;
	}
	return add(out, json_string_value(e), json_string_length(e), err,
	    errsize);
unknown:
	snprintf(err, errsize, "unknown template %s", quoted);
	return -1;
unsupported:
	snprintf(err, errsize, "unsupported template %s (only {{.Name}} and "
	    "{{.Env.NAME}} are understood)", quoted);
	return -1;
}

char *
template_expand(const char *in, const struct template_vars *v, char *err,
    size_t errsize)
{
	struct sbuf out = { 0 };
	const char *p = in, *open, *close, *a, *b, *s, *e;
	bool trim_left, trim_right = false;
	char quoted[84];

	for (;;) {
		open = strstr(p, "{{");
		/* Go trims the text around an action, never its output. */
		trim_left = open != NULL && open[2] == '-' && is_space(open[3]);
		s = p;
		e = open ? open : p + strlen(p);
		if (trim_right)
			while (s < e && is_space(*s))
				s++;
		if (trim_left)
			while (e > s && is_space(e[-1]))
				e--;
		if (add(&out, s, (size_t)(e - s), err, errsize) != 0)
			goto fail;
		if (open == NULL)
			break;

		a = open + (trim_left ? 3 : 2);
		close = strstr(a, "}}");
		if (close == NULL) {
			util_snippet(quoted, sizeof quoted, open, strlen(open));
			snprintf(err, errsize, "unterminated template %s "
			    "(no closing }})", quoted);
			goto fail;
		}
		b = close;
		trim_right = b - a >= 2 && b[-1] == '-' && is_space(b[-2]);
		if (trim_right)
			b--;
		while (a < b && is_space(*a))
			a++;
		while (b > a && is_space(b[-1]))
			b--;
		if (expand_action(&out, a, (size_t)(b - a), open,
		    (size_t)(close + 2 - open), v, err, errsize) != 0)
			goto fail;
		p = close + 2;
	}
	/* sbuf_steal of an untouched buffer is not NUL-terminated. */
	sbuf_add(&out, "", 0);
	return sbuf_steal(&out, NULL);
fail:
	sbuf_free(&out);
	return NULL;
}

void
template_version(const char *tag, const char *commit, char *version,
    size_t vsize, char *raw, size_t rsize, char *tagout, size_t tsize,
    bool *is_snapshot)
{
	unsigned long long part[3] = { 0, 0, 0 };
	const char *p;
	bool bad = false;
	int n = 0;

	if (tag != NULL && strncmp(tag, "refs/tags/", 10) == 0)
		tag += 10;
	if (tag == NULL || *tag == '\0') {
		snprintf(version, vsize, "0.0.0-SNAPSHOT-%.7s", nz(commit));
		snprintf(raw, rsize, "0.0.0");
		snprintf(tagout, tsize, "v0.0.0");
		*is_snapshot = true;
		return;
	}
	snprintf(tagout, tsize, "%s", tag);
	p = tag[0] == 'v' ? tag + 1 : tag;
	snprintf(version, vsize, "%s", p);
	/* MAJOR[.MINOR[.PATCH]], then the end, "-prerelease" or "+build". */
	for (;;) {
		const char *start = p;

		while (*p >= '0' && *p <= '9')
			p++;
		if (p == start || p - start > 18) {
			bad = true;
			break;
		}
		part[n++] = strtoull(start, NULL, 10);
		if (n == 3 || *p != '.')
			break;
		p++;
	}
	if (bad || (*p != '\0' && *p != '-' && *p != '+'))
		part[0] = part[1] = part[2] = 0;
	snprintf(raw, rsize, "%llu.%llu.%llu", part[0], part[1], part[2]);
	*is_snapshot = false;
}
