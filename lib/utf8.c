#include "config.h"

#include <string.h>

#include "utf8.h"

int
utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	/*
	 * The second byte's range is narrowed where the lead byte alone
	 * would allow an overlong form (E0, F0), a surrogate (ED) or a
	 * value above U+10FFFF (F4); C0, C1 and F5..FF never lead.  A
	 * byte out of range ends the maximal subpart before it.
	 */
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return -1;
	for (size_t i = 1; i <= need; i++) {
		if (i >= n)
			return 0;
		if (p[i] < lo || p[i] > hi)
			return -(int)i;
		v = v << 6 | (p[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = v;
	return (int)need + 1;
}

bool
utf8_valid(const char *s, size_t n)
{
	uint32_t cp;
	size_t i = 0;
	int k;

	while (i < n) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = utf8_decode(s + i, n - i, &cp)) <= 0)
			return false;
		i += (size_t)k;
	}
	return true;
}

size_t
utf8_cut(const char *s, size_t n, size_t max)
{
	size_t p = max;

	if (n <= max)
		return n;
	/* s[max] is the first byte dropped: never a continuation. */
	while (p > 0 && ((unsigned char)s[p] & 0xc0) == 0x80)
		p--;
	return p;
}

size_t
utf8_trim_partial(const char *s, size_t n)
{
	uint32_t cp;

	for (size_t k = 1; k <= 3 && k <= n; k++) {
		size_t i = n - k;

		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		return utf8_decode(s + i, k, &cp) == 0 ? i : n;
	}
	return n;
}

void
utf8_sanitize(struct sbuf *b, const char *s, size_t n)
{
	uint32_t cp;
	size_t i = 0;
	int k;

	sbuf_reserve(b, n);
	while (i < n) {
		size_t run = i;

		while (i < n && (unsigned char)s[i] < 0x80)
			i++;
		if (i > run)
			sbuf_add(b, s + run, i - run);
		if (i == n)
			break;
		k = utf8_decode(s + i, n - i, &cp);
		if (k > 0) {
			sbuf_add(b, s + i, (size_t)k);
			i += (size_t)k;
		} else {
			/* An incomplete sequence at the end is one subpart. */
			sbuf_add(b, UTF8_REPLACEMENT, 3);
			if (k == 0)
				break;
			i += (size_t)-k;
		}
	}
}

void
utf8_fix(char *buf, size_t size)
{
	struct sbuf b = { 0 };
	size_t len, cut;

	if (size == 0)
		return;
	len = strnlen(buf, size - 1);
	len = utf8_trim_partial(buf, len);
	if (utf8_valid(buf, len)) {
		buf[len] = '\0';
		return;
	}
	utf8_sanitize(&b, buf, len);
	cut = utf8_cut(b.p, b.len, size - 1);
	memcpy(buf, b.p, cut);
	buf[cut] = '\0';
	sbuf_free(&b);
}

void
utf8_json_string(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	uint32_t cp;
	int k;

	if (s == NULL) {
		sbuf_add(b, "null", 4);
		return;
	}
	sbuf_reserve(b, strlen(s) + 2);
	sbuf_addc(b, '"');
	for (p = (const unsigned char *)s; *p; ) {
		const unsigned char *run = p;

		/* Copy runs that need no escaping in one go. */
		while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			sbuf_add(b, (const char *)run, (size_t)(p - run));
		if (*p == '\0')
			break;
		if (*p >= 0x80) {
			/* The NUL ends s: a sequence cut by it is invalid. */
			size_t left = strnlen((const char *)p, 4);

			k = utf8_decode((const char *)p, left, &cp);
			if (k > 0) {
				sbuf_add(b, (const char *)p, (size_t)k);
				p += k;
			} else {
				sbuf_add(b, UTF8_REPLACEMENT, 3);
				p += k < 0 ? (size_t)-k : left;
			}
			continue;
		}
		switch (*p) {
		case '"': sbuf_add(b, "\\\"", 2); break;
		case '\\': sbuf_add(b, "\\\\", 2); break;
		case '\n': sbuf_add(b, "\\n", 2); break;
		case '\r': sbuf_add(b, "\\r", 2); break;
		case '\t': sbuf_add(b, "\\t", 2); break;
		default: {
			char u[6] = { '\\', 'u', '0', '0', hex[*p >> 4],
			    hex[*p & 15] };
			sbuf_add(b, u, 6);
		}
		}
		p++;
	}
	sbuf_addc(b, '"');
}
