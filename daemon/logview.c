/*
 * The people's view of a target's log (logview.h).  A byte machine with
 * two levels: tokens (a character, a colour sequence, a carriage return,
 * an invalid sequence), possibly held across chunks in v->tok; and lines,
 * whose first visible characters decide whether a build's line gets
 * LOGVIEW_PREFIX, held in v->head until they do.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logview.h"
#include "utf8.h"
#include "util.h"
#include "xmalloc.h"

/* A colour sequence longer than this is escaped like any other. */
#define SGR_MAX 64
/*
 * A line's head held back while it may still turn out to read "[kiln":
 * past this many bytes of colour codes and spaces it is prefixed, which
 * costs nothing to an honest line and ends the wait.
 */
#define HEAD_MAX 1024

enum mode { M_HEAD, M_BODY, M_KILN };
/* What a token is to the line's head. */
enum cls {
	C_NL,		/* the end of the line */
	C_HIDDEN,	/* shows nothing: colours, zero-width characters */
	C_SPACE,	/* blank: skipped before the head's first character */
	C_VISIBLE
};

struct logview {
	uint64_t pos;			/* raw offset of the next byte */
	uint64_t *marks;		/* kilnd's lines not reached yet */
	size_t nmarks, mfirst, mcap;
	uint64_t last_mark;
	bool any_mark;
	char rec[LOGVIEW_MARK_LEN];	/* a marks record cut by a chunk */
	size_t reclen;
	unsigned char tok[SGR_MAX];	/* a token cut by a chunk */
	size_t toklen;
	enum mode mode;
	struct sbuf head;
	unsigned states;		/* bit k: k chars of "[kiln" may be read */
	bool col0;			/* the view is at a line's start */
};

static const char kiln[] = "[kiln";

struct logview *
logview_new(void)
{
	struct logview *v = xcalloc(1, sizeof *v);

	v->mode = M_HEAD;
	v->states = 1;
	v->col0 = true;
	return v;
}

void
logview_free(struct logview *v)
{
	if (v == NULL)
		return;
	free(v->marks);
	sbuf_free(&v->head);
	free(v);
}

uint64_t
logview_offset(const struct logview *v)
{
	return v->pos;
}

void
logview_mark_record(char *out, uint64_t off)
{
	snprintf(out, LOGVIEW_MARK_LEN + 1, "%016llx\n",
	    (unsigned long long)off);
}

void
logview_mark(struct logview *v, uint64_t off)
{
	if (v->any_mark && off <= v->last_mark)
		return;
	v->any_mark = true;
	v->last_mark = off;
	if (v->mfirst > 0 && v->mfirst == v->nmarks)
		v->mfirst = v->nmarks = 0;
	if (v->nmarks == v->mcap) {
		if (v->mfirst > 0) {
			memmove(v->marks, v->marks + v->mfirst,
			    (v->nmarks - v->mfirst) * sizeof *v->marks);
			v->nmarks -= v->mfirst;
			v->mfirst = 0;
		}
		if (v->nmarks == v->mcap) {
			v->mcap = v->mcap ? v->mcap * 2 : 16;
			v->marks = xreallocarray(v->marks, v->mcap,
			    sizeof *v->marks);
		}
	}
	v->marks[v->nmarks++] = off;
}

void
logview_marks(struct logview *v, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t off = 0;
		size_t k;

		v->rec[v->reclen++] = buf[i];
		if (v->reclen < LOGVIEW_MARK_LEN)
			continue;
		v->reclen = 0;
		for (k = 0; k < LOGVIEW_MARK_LEN - 1; k++) {
			int d = util_hexval(v->rec[k]);
			if (d < 0)
				break;
			off = off << 4 | (uint64_t)d;
		}
		if (k == LOGVIEW_MARK_LEN - 1 && v->rec[k] == '\n')
			logview_mark(v, off);
	}
}

/* --- lines -------------------------------------------------------------- */

static void
emit(struct logview *v, struct sbuf *out, const char *s, size_t n)
{
	if (n == 0)
		return;
	sbuf_add(out, s, n);
	v->col0 = s[n - 1] == '\n';
}

static void
flush_head(struct logview *v, struct sbuf *out, bool forged)
{
	if (forged)
		emit(v, out, LOGVIEW_PREFIX, sizeof LOGVIEW_PREFIX - 1);
	emit(v, out, v->head.p, v->head.len);
	v->head.len = 0;
	v->states = 1;
}

/*
 * How far into "[kiln" the head may read after one more token, as a set
 * (bit k: the first k characters).  Blanks are skipped before the first
 * character only.  A character outside ASCII may be one that shows
 * nothing (there are many more than the zero-width ones: U+2061,
 * U+034F, variation selectors, tags, Hangul fillers...) or one that
 * looks like a letter of "[kiln" (Cyrillic U+0456 for i, U+04CF for l,
 * fullwidth brackets): it counts as both.  An honest line that starts
 * with five such characters gets the prefix too, which says only the
 * truth; a forged one cannot escape it by any choice of characters.
 */
static unsigned
head_step(unsigned states, enum cls c, uint32_t shows)
{
	unsigned next = 0;

	if (c == C_HIDDEN)
		return states;
	if (c == C_SPACE)
		return states & 1u;
	for (unsigned k = 0; k < sizeof kiln - 1; k++) {
		if (!(states & 1u << k))
			continue;
		if (shows >= 0x80)
			next |= 1u << k | 1u << (k + 1);
		else if (shows == (unsigned char)kiln[k])
			next |= 1u << (k + 1);
	}
	return next;
}

/* One token: its rendering r[0..n), its class and, when visible, the
 * character it shows (a backslash for an escape). */
static void
token(struct logview *v, struct sbuf *out, enum cls c, uint32_t shows,
    const char *r, size_t n)
{
	unsigned next;

	if (c == C_NL) {
		if (v->mode == M_HEAD)
			flush_head(v, out, false);
		emit(v, out, "\n", 1);
		v->mode = M_HEAD;
		return;
	}
	if (v->mode != M_HEAD) {
		emit(v, out, r, n);
		return;
	}
	if ((next = head_step(v->states, c, shows)) != 0) {
		sbuf_add(&v->head, r, n);
		v->states = next;
		if ((next & 1u << (sizeof kiln - 1)) ||
		    v->head.len > HEAD_MAX) {
			flush_head(v, out, true);
			v->mode = M_BODY;
		}
		return;
	}
	flush_head(v, out, false);
	emit(v, out, r, n);
	v->mode = M_BODY;
}

/* --- tokens ------------------------------------------------------------- */

/* A control character as text: "\x1b" for a byte, "\u009b" above. */
static void
escaped(struct logview *v, struct sbuf *out, uint32_t cp)
{
	char buf[16];
	int n;

	if (cp < 0x80)
		n = snprintf(buf, sizeof buf, "\\x%02x", (unsigned)cp);
	else
		n = snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp);

	token(v, out, C_VISIBLE, '\\', buf, (size_t)n);
}

static void
ascii(struct logview *v, struct sbuf *out, unsigned char c)
{
	char ch = (char)c;

	if (c == '\n')
		token(v, out, C_NL, 0, "\n", 1);
	else if (c == ' ' || c == '\t')
		token(v, out, C_SPACE, 0, &ch, 1);
	else if (c < 0x20 || c == 0x7f)
		escaped(v, out, c);
	else
		token(v, out, C_VISIBLE, c, &ch, 1);
}

/* Bidirectional controls reorder what is shown: a line could read as
 * another.  Escaped like control characters. */
static bool
is_bidi(uint32_t cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static bool
is_zero_width(uint32_t cp)
{
	return (cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 ||
	    cp == 0xfeff || cp == 0x00ad;
}

static void
character(struct logview *v, struct sbuf *out, uint32_t cp, const char *raw,
    size_t n)
{
	if ((cp >= 0x80 && cp <= 0x9f) || is_bidi(cp))
		escaped(v, out, cp);
	else if (is_zero_width(cp))
		token(v, out, C_HIDDEN, 0, raw, n);
	else
		token(v, out, C_VISIBLE, cp, raw, n);
}

/* The held token ends unfinished (a mark, the end of the log, or a byte
 * that does not continue it). */
static void
flush_token(struct logview *v, struct sbuf *out)
{
	size_t n = v->toklen;

	if (n == 0)
		return;
	v->toklen = 0;
	if (v->tok[0] == 0x1b) {
		escaped(v, out, 0x1b);
		for (size_t i = 1; i < n; i++)
			ascii(v, out, v->tok[i]);
	} else if (v->tok[0] == '\r')
		token(v, out, C_SPACE, 0, "\\r", 2);
	else
		token(v, out, C_VISIBLE, 0xfffd, UTF8_REPLACEMENT, 3);
}

static void
byte(struct logview *v, struct sbuf *out, unsigned char c)
{
	unsigned char rest[4];
	uint32_t cp;
	size_t nrest;
	int k;

	if (v->toklen == 0) {
		if (c < 0x80 && c != 0x1b && c != '\r') {
			ascii(v, out, c);
			return;
		}
		v->tok[v->toklen++] = c;
		if (c < 0x80)
			return;
	} else if (v->tok[0] == 0x1b) {
		if (v->toklen == 1 ? c == '[' :
		    (c >= '0' && c <= '9') || c == ';' || c == ':') {
			if (v->toklen < SGR_MAX - 1) {
				v->tok[v->toklen++] = c;
				return;
			}
		} else if (v->toklen > 1 && c == 'm') {
			v->tok[v->toklen++] = c;
			token(v, out, C_HIDDEN, 0, (const char *)v->tok,
			    v->toklen);
			v->toklen = 0;
			return;
		}
		flush_token(v, out);
		byte(v, out, c);
		return;
	} else if (v->tok[0] == '\r') {
		if (c == '\n') {
			v->toklen = 0;
			token(v, out, C_NL, 0, "\n", 1);
			return;
		}
		flush_token(v, out);
		byte(v, out, c);
		return;
	} else
		v->tok[v->toklen++] = c;
	/* A UTF-8 sequence. */
	k = utf8_decode((const char *)v->tok, v->toklen, &cp);
	if (k == 0)
		return;
	if (k > 0) {
		v->toklen = 0;
		character(v, out, cp, (const char *)v->tok, (size_t)k);
		return;
	}
	/* The bytes after the maximal subpart start afresh. */
	nrest = v->toklen - (size_t)-k;
	memcpy(rest, v->tok + -k, nrest);
	v->toklen = 0;
	token(v, out, C_VISIBLE, 0xfffd, UTF8_REPLACEMENT, 3);
	for (size_t i = 0; i < nrest; i++)
		byte(v, out, rest[i]);
}

/* kilnd's own line starts here. */
static void
at_mark(struct logview *v, struct sbuf *out)
{
	flush_token(v, out);
	if (v->mode == M_HEAD)
		flush_head(v, out, false);
	if (!v->col0)
		emit(v, out, "\n", 1);
	v->mode = M_KILN;
}

void
logview_feed(struct logview *v, const char *buf, size_t n, struct sbuf *out)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	while (i < n) {
		uint64_t next = UINT64_MAX;
		size_t run, stop;

		while (v->mfirst < v->nmarks && v->marks[v->mfirst] < v->pos)
			v->mfirst++;
		if (v->mfirst < v->nmarks)
			next = v->marks[v->mfirst];
		if (next == v->pos) {
			at_mark(v, out);
			v->mfirst++;
			next = v->mfirst < v->nmarks ? v->marks[v->mfirst] :
			    UINT64_MAX;
		}
		stop = next - v->pos < n - i ? i + (size_t)(next - v->pos) : n;
		/* Printable ASCII in a decided line goes as it is. */
		if (v->mode != M_HEAD && v->toklen == 0) {
			for (run = i; run < stop && p[run] >= 0x20 &&
			    p[run] < 0x7f; run++)
				;
			if (run > i) {
				emit(v, out, buf + i, run - i);
				v->pos += run - i;
				i = run;
				continue;
			}
		}
		byte(v, out, p[i]);
		v->pos++;
		i++;
	}
}

void
logview_finish(struct logview *v, struct sbuf *out)
{
	flush_token(v, out);
	if (v->mode == M_HEAD)
		flush_head(v, out, false);
}

void
logview_clean(struct sbuf *out, const char *s, size_t n)
{
	char buf[16];
	uint32_t cp;
	size_t i = 0;
	int k;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f) {
			sbuf_addc(out, (char)c);
			i++;
			continue;
		}
		if (c < 0x80) {
			if (c == '\n')
				sbuf_add(out, "\\n", 2);
			else if (c == '\r')
				sbuf_add(out, "\\r", 2);
			else if (c == '\t')
				sbuf_addc(out, '\t');
			else {
				snprintf(buf, sizeof buf, "\\x%02x", c);
				sbuf_adds(out, buf);
			}
			i++;
			continue;
		}
		k = utf8_decode(s + i, n - i, &cp);
		if (k <= 0) {
			sbuf_add(out, UTF8_REPLACEMENT, 3);
			i += k < 0 ? (size_t)-k : n - i;
		} else {
			if ((cp >= 0x80 && cp <= 0x9f) || is_bidi(cp)) {
				snprintf(buf, sizeof buf, "\\u%04x",
				    (unsigned)cp);
				sbuf_adds(out, buf);
			} else
				sbuf_add(out, s + i, (size_t)k);
			i += (size_t)k;
		}
	}
}
