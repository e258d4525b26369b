/*
 * libFuzzer: the log shown to people (daemon/logview.c) over any bytes a
 * build prints.  The first two input bytes choose the chunk size and the
 * spacing of kilnd's marks; the rest is the raw log.  Properties: the view
 * is valid UTF-8; its only ESC bytes begin colour sequences and it holds no
 * other control character but tab and newline; it is the same fed in
 * chunks as at once; without marks no line may read "[kiln" behind
 * colours, blanks, invisible or look-alike characters unless it carries
 * LOGVIEW_PREFIX; and
 * logview_clean makes one line without control characters.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/logview.h"
#include "lib/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
render(struct sbuf *out, const char *raw, size_t n, size_t chunk,
    size_t stride)
{
	struct logview *v = logview_new();
	char rec[LOGVIEW_MARK_LEN + 1];

	for (size_t off = 0; stride > 0 && off < n; off += stride) {
		logview_mark_record(rec, off);
		logview_marks(v, rec, LOGVIEW_MARK_LEN);
	}
	for (size_t i = 0; i < n; i += chunk)
		logview_feed(v, raw + i, n - i < chunk ? n - i : chunk, out);
	if (logview_offset(v) != n)
		abort();
	logview_finish(v, out);
	logview_free(v);
}

/* A colour sequence at p[0..n): its length, or 0. */
static size_t
sgr_len(const char *p, size_t n)
{
	size_t i = 2;

	if (n < 3 || p[0] != 0x1b || p[1] != '[')
		return 0;
	while (i < n && (strchr("0123456789;:", p[i]) != NULL && p[i] != 0))
		i++;
	return i < n && p[i] == 'm' ? i + 1 : 0;
}

/* Zero-width characters: the ones logview.c treats as hidden. */
static size_t
hidden_len(const char *p, size_t n)
{
	static const char *const zw[] = { "\xe2\x80\x8b", "\xe2\x80\x8c",
	    "\xe2\x80\x8d", "\xe2\x81\xa0", "\xef\xbb\xbf", "\xc2\xad" };
	size_t k = sgr_len(p, n);

	if (k > 0)
		return k;
	for (size_t i = 0; i < sizeof zw / sizeof zw[0]; i++) {
		k = strlen(zw[i]);
		if (n >= k && memcmp(p, zw[i], k) == 0)
			return k;
	}
	return 0;
}

static void
check_controls(const char *p, size_t n)
{
	if (!utf8_valid(p, n))
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		size_t k;

		if (c == 0x1b) {
			if ((k = sgr_len(p + i, n - i)) == 0)
				abort();
			i += k - 1;
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			abort();
	}
}

/*
 * Without marks, a line that may read "[kiln" must carry the prefix:
 * behind colours, blanks and zero-width characters, and with any other
 * character outside ASCII standing for nothing or for a letter (it may
 * be invisible or a look-alike).  Bit k of `may`: the first k
 * characters of "[kiln" may be read so far.
 */
static void
check_no_forgery(const char *p, size_t n)
{
	static const char kiln[] = "[kiln";
	const size_t plen = sizeof LOGVIEW_PREFIX - 1;
	uint32_t cp;

	for (size_t start = 0; start < n; ) {
		const char *nl = memchr(p + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - p) : n, i = start;
		unsigned may = 1;
		int k;

		if (end - start >= plen &&
		    memcmp(p + start, LOGVIEW_PREFIX, plen) == 0) {
			start = end + 1;
			continue;
		}
		while (i < end && may != 0) {
			unsigned next = 0;

			if ((k = (int)hidden_len(p + i, end - i)) > 0) {
				i += (size_t)k;
				continue;
			}
			if (p[i] == ' ' || p[i] == '\t') {
				may &= 1;
				i++;
				continue;
			}
			if ((unsigned char)p[i] >= 0x80) {
				/* The view is valid UTF-8 (checked). */
				k = utf8_decode(p + i, end - i, &cp);
				i += k > 0 ? (size_t)k : 1;
				may |= may << 1;
			} else {
				for (size_t m = 0; m < sizeof kiln - 1; m++)
					if ((may & 1u << m) && p[i] == kiln[m])
						next |= 1u << (m + 1);
				may = next;
				i++;
			}
			if (may & 1u << (sizeof kiln - 1))
				abort();
		}
		start = end + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbuf once = { 0 }, chunked = { 0 }, clean = { 0 };
	const char *raw = (const char *)data + 2;
	size_t n, chunk, stride;

	if (size < 2 || size > 8192)
		return 0;
	n = size - 2;
	chunk = 1 + data[0] % 16;
	stride = data[1] % 64;		/* 0: no marks */
	render(&once, raw, n, n ? n : 1, stride);
	render(&chunked, raw, n, chunk, stride);
	if (once.len != chunked.len ||
	    (once.len > 0 && memcmp(once.p, chunked.p, once.len) != 0))
		abort();
	check_controls(once.p ? once.p : "", once.len);
	if (stride == 0)
		check_no_forgery(once.p ? once.p : "", once.len);
	logview_clean(&clean, raw, n);
	if (!utf8_valid(clean.p ? clean.p : "", clean.len))
		abort();
	for (size_t i = 0; i < clean.len; i++) {
		unsigned char c = (unsigned char)clean.p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			abort();
	}
	sbuf_free(&once);
	sbuf_free(&chunked);
	sbuf_free(&clean);
	return 0;
}
