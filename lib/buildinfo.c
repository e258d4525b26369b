/*
 * Go's build information (see buildinfo.h): found in a binary by its
 * magic, decoded as Go's debug/buildinfo decodes it, parsed as
 * runtime/debug.ParseBuildInfo parses it.  Everything here reads hostile
 * bytes: each length is checked against what is left before it is used,
 * and nothing recurses.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"

#define MAGIC		"\xff Go buildinf:"
#define MAGIC_LEN	14
#define HEADER_SIZE	32
#define HEADER_ALIGN	16
/* The flag bit of Go 1.18 and later: the strings follow the header. */
#define FLAG_INLINE	2
/* The module information is framed by two 16-byte sentinels. */
#define SENTINEL_LEN	16
#define VERSION_MAX	256
#define DEPS_MAX	100000
#define SETTINGS_MAX	10000

static void
seterr(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (errsize == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

/* Hostile text in a message: printable ASCII only, at most 80 bytes. */
static const char *
shown(char *dst, size_t dstsize, const char *s, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 4 < dstsize && i < 80; i++)
		dst[j++] = (s[i] >= ' ' && s[i] < 0x7f) ? s[i] : '?';
	if (i < n && j + 4 < dstsize) {
		memcpy(dst + j, "...", 3);
		j += 3;
	}
	dst[j] = '\0';
	return dst;
}

static void
module_free(struct buildinfo_module *m)
{
	struct buildinfo_module *r;

	free(m->path);
	free(m->version);
	free(m->sum);
	r = m->replace;
	if (r != NULL) {
		/* A replacement has no replacement of its own. */
		free(r->path);
		free(r->version);
		free(r->sum);
		free(r);
	}
	memset(m, 0, sizeof *m);
}

void
buildinfo_free(struct buildinfo *b)
{
	size_t i;

	if (b == NULL)
		return;
	free(b->go_version);
	free(b->path);
	module_free(&b->main);
	for (i = 0; i < b->ndeps; i++)
		module_free(&b->deps[i]);
	free(b->deps);
	for (i = 0; i < b->nsettings; i++) {
		free(b->settings_key[i]);
		free(b->settings_value[i]);
	}
	free(b->settings_key);
	free(b->settings_value);
	memset(b, 0, sizeof *b);
}

/*
 * s[0..n) as a C string; -1 when it holds a NUL byte, which a C string
 * would cut short without a word.
 */
static int
dupfield(char **out, const char *s, size_t n)
{
	if (memchr(s, '\0', n) != NULL)
		return -1;
	*out = xstrndup(s, n);
	return 0;
}

/* The tab-separated fields of a line: at most max, counted in *nf. */
struct field {
	const char *s;
	size_t n;
};

static size_t
split_tabs(const char *s, size_t n, struct field *f, size_t max)
{
	size_t nf = 0;
	const char *tab;

	for (;;) {
		tab = memchr(s, '\t', n);
		if (nf < max) {
			f[nf].s = s;
			f[nf].n = tab ? (size_t)(tab - s) : n;
		}
		nf++;
		if (tab == NULL)
			return nf;
		n -= (size_t)(tab - s) + 1;
		s = tab + 1;
	}
}

static int
read_module(struct buildinfo_module *m, const struct field *f, size_t nf,
    int lineno, char *err, size_t errsize)
{
	if (f[0].n == 0) {
		seterr(err, errsize, "build information line %d: empty module "
		    "path", lineno);
		return -1;
	}
	if (dupfield(&m->path, f[0].s, f[0].n) == -1 ||
	    dupfield(&m->version, f[1].s, f[1].n) == -1 ||
	    dupfield(&m->sum, nf == 3 ? f[2].s : "", nf == 3 ? f[2].n : 0)
	    == -1) {
		seterr(err, errsize, "build information line %d: NUL byte in "
		    "a module field", lineno);
		return -1;
	}
	return 0;
}

static void
add_utf8(struct sbuf *b, uint32_t c)
{
	char u[4];

	if (c < 0x80) {
		sbuf_addc(b, (char)c);
	} else if (c < 0x800) {
		u[0] = (char)(0xc0 | c >> 6);
		u[1] = (char)(0x80 | (c & 0x3f));
		sbuf_add(b, u, 2);
	} else if (c < 0x10000) {
		u[0] = (char)(0xe0 | c >> 12);
		u[1] = (char)(0x80 | (c >> 6 & 0x3f));
		u[2] = (char)(0x80 | (c & 0x3f));
		sbuf_add(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | c >> 18);
		u[1] = (char)(0x80 | (c >> 12 & 0x3f));
		u[2] = (char)(0x80 | (c >> 6 & 0x3f));
		u[3] = (char)(0x80 | (c & 0x3f));
		sbuf_add(b, u, 4);
	}
}

/*
 * The length of the Go quoted string at the start of s[0..n) (quote
 * characters included), as strconv.QuotedPrefix finds it; 0 when there
 * is none.
 */
static size_t
quoted_prefix(const char *s, size_t n)
{
	size_t i;

	if (n < 2)
		return 0;
	if (s[0] == '`') {
		for (i = 1; i < n; i++)
			if (s[i] == '`')
				return i + 1;
		return 0;
	}
	if (s[0] != '"')
		return 0;
	for (i = 1; i < n; i++) {
		if (s[i] == '\n')
			return 0;
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/*
 * Go's strconv.Unquote of s[0..n), a whole `raw` or "interpreted"
 * string, into a new C string; -1 when it is not one (or holds a NUL).
 */
static int
go_unquote(char **out, const char *s, size_t n)
{
	struct sbuf b = { 0 };
	size_t i, k, digits;
	uint32_t c;
	int v;

	if (n < 2 || s[n - 1] != s[0] || (s[0] != '`' && s[0] != '"'))
		return -1;
	if (s[0] == '`') {
		for (i = 1; i < n - 1; i++) {
			if (s[i] == '`')
				goto bad;
			/* Go drops carriage returns from raw strings. */
			if (s[i] != '\r')
				sbuf_addc(&b, s[i]);
		}
		goto done;
	}
	for (i = 1; i < n - 1; i++) {
		if (s[i] == '"' || s[i] == '\n')
			goto bad;
		if (s[i] != '\\') {
			sbuf_addc(&b, s[i]);
			continue;
		}
		if (++i >= n - 1)
			goto bad;
		switch (s[i]) {
		case 'a': sbuf_addc(&b, '\a'); break;
		case 'b': sbuf_addc(&b, '\b'); break;
		case 'f': sbuf_addc(&b, '\f'); break;
		case 'n': sbuf_addc(&b, '\n'); break;
		case 'r': sbuf_addc(&b, '\r'); break;
		case 't': sbuf_addc(&b, '\t'); break;
		case 'v': sbuf_addc(&b, '\v'); break;
		case '\\': sbuf_addc(&b, '\\'); break;
		case '"': sbuf_addc(&b, '"'); break;
		case 'x':
		case 'u':
		case 'U':
			digits = s[i] == 'x' ? 2 : s[i] == 'u' ? 4 : 8;
			if (n - 1 - (i + 1) < digits)
				goto bad;
			c = 0;
			for (k = 0; k < digits; k++) {
				if ((v = util_hexval(s[i + 1 + k])) < 0)
					goto bad;
				c = c << 4 | (uint32_t)v;
			}
			if (s[i] == 'x')
				sbuf_addc(&b, (char)c);
			else if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
				goto bad;
			else
				add_utf8(&b, c);
			i += digits;
			break;
		case '0': case '1': case '2': case '3':
		case '4': case '5': case '6': case '7':
			if (n - 1 - i < 3)
				goto bad;
			c = 0;
			for (k = 0; k < 3; k++) {
				if (s[i + k] < '0' || s[i + k] > '7')
					goto bad;
				c = c << 3 | (uint32_t)(s[i + k] - '0');
			}
			if (c > 255)
				goto bad;
			sbuf_addc(&b, (char)c);
			i += 2;
			break;
		default:
			goto bad;
		}
	}
done:
	sbuf_addc(&b, '\0');
	if (strlen(b.p) != b.len - 1)
		goto bad;
	*out = sbuf_steal(&b, NULL);
	return 0;
bad:
	sbuf_free(&b);
	return -1;
}

/* A build line's KEY=VALUE (after "build\t"), as Go reads it. */
static int
read_setting(struct buildinfo *bi, const char *kv, size_t n, int lineno,
    char *err, size_t errsize)
{
	char *key = NULL, *value = NULL;
	const char *eq, *raw;
	size_t q, rawn, i;
	const char *why;

	if (bi->nsettings >= SETTINGS_MAX) {
		why = "too many build settings";
		goto bad;
	}
	if (n == 0) {
		why = "build line missing '='";
		goto bad;
	}
	if (kv[0] == '=') {
		why = "build line with missing key";
		goto bad;
	}
	if (kv[0] == '`' || kv[0] == '"') {
		q = quoted_prefix(kv, n);
		if (q == 0 || go_unquote(&key, kv, q) == -1) {
			why = "invalid quoted key in build line";
			goto bad;
		}
		if (q == n || kv[q] != '=') {
			why = "build line missing '=' after quoted key";
			goto bad;
		}
		raw = kv + q + 1;
		rawn = n - q - 1;
	} else {
		eq = memchr(kv, '=', n);
		if (eq == NULL) {
			why = "build line missing '=' after key";
			goto bad;
		}
		for (i = 0; kv + i < eq; i++)
			if (strchr(" \t\r\n\"`", kv[i]) != NULL || kv[i] == '\0') {
				why = "unquoted key must be quoted";
				goto bad;
			}
		key = xstrndup(kv, (size_t)(eq - kv));
		raw = eq + 1;
		rawn = n - (size_t)(eq - kv) - 1;
	}
	if (rawn > 0 && (raw[0] == '`' || raw[0] == '"')) {
		if (go_unquote(&value, raw, rawn) == -1) {
			why = "invalid quoted value in build line";
			goto bad;
		}
	} else {
		for (i = 0; i < rawn; i++)
			if (strchr(" \t\r\n\"`", raw[i]) != NULL || raw[i] == '\0') {
				why = "unquoted value must be quoted";
				goto bad;
			}
		value = xstrndup(raw, rawn);
	}
	bi->settings_key = xreallocarray(bi->settings_key, bi->nsettings + 1,
	    sizeof *bi->settings_key);
	bi->settings_value = xreallocarray(bi->settings_value,
	    bi->nsettings + 1, sizeof *bi->settings_value);
	bi->settings_key[bi->nsettings] = key;
	bi->settings_value[bi->nsettings] = value;
	bi->nsettings++;
	return 0;
bad:
	free(key);
	free(value);
	seterr(err, errsize, "build information line %d: %s", lineno, why);
	return -1;
}

static int
cmp_deppath(const void *a, const void *b)
{
	const struct buildinfo_module *x = *(struct buildinfo_module *const *)a;
	const struct buildinfo_module *y = *(struct buildinfo_module *const *)b;

	return strcmp(x->path, y->path);
}

/* No two deps with one path, and none that is the main module. */
static int
check_unique(const struct buildinfo *bi, char *err, size_t errsize)
{
	const struct buildinfo_module **v;
	char show[100];
	size_t i;
	int rc = 0;

	if (bi->ndeps == 0)
		return 0;
	v = xreallocarray(NULL, bi->ndeps, sizeof *v);
	for (i = 0; i < bi->ndeps; i++)
		v[i] = &bi->deps[i];
	qsort(v, bi->ndeps, sizeof *v, cmp_deppath);
	for (i = 0; i < bi->ndeps && rc == 0; i++) {
		if ((i > 0 && strcmp(v[i - 1]->path, v[i]->path) == 0) ||
		    (bi->main.path != NULL &&
		    strcmp(bi->main.path, v[i]->path) == 0)) {
			seterr(err, errsize, "build information: module %s "
			    "listed twice", shown(show, sizeof show, v[i]->path,
			    strlen(v[i]->path)));
			rc = -1;
		}
	}
	free(v);
	return rc;
}

int
buildinfo_parse(struct buildinfo *out, const char *text, size_t len,
    char *err, size_t errsize)
{
	struct buildinfo bi = { 0 };
	struct buildinfo_module *last = NULL, *r;
	struct field f[4];
	const char *line, *nl, *end;
	size_t n, nf;
	int lineno = 0;

	if (len > BUILDINFO_TEXT_MAX) {
		seterr(err, errsize, "build information: %zu bytes, more than "
		    "the %u kiln reads", len, BUILDINFO_TEXT_MAX);
		return -1;
	}
	end = text + len;
	/*
	 * Go stops at a last line without a newline; kiln reads it too
	 * rather than drop it without a word.
	 */
	for (line = text; line < end; line = nl ? nl + 1 : end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		n = nl ? (size_t)(nl - line) : (size_t)(end - line);
		lineno++;
		/* `go version -m` indents each line with a tab. */
		if (n > 0 && line[0] == '\t') {
			line++;
			n--;
		}
		if (n >= 3 && memcmp(line, "go\t", 3) == 0) {
			free(bi.go_version);
			bi.go_version = NULL;
			if (dupfield(&bi.go_version, line + 3, n - 3) == -1)
				goto nul;
		} else if (n >= 5 && memcmp(line, "path\t", 5) == 0) {
			free(bi.path);
			bi.path = NULL;
			if (dupfield(&bi.path, line + 5, n - 5) == -1)
				goto nul;
		} else if ((n >= 4 && memcmp(line, "mod\t", 4) == 0) ||
		    (n >= 4 && memcmp(line, "dep\t", 4) == 0)) {
			nf = split_tabs(line + 4, n - 4, f, 4);
			if (nf != 2 && nf != 3) {
				seterr(err, errsize, "build information line "
				    "%d: expected 2 or 3 columns; got %zu",
				    lineno, nf);
				goto fail;
			}
			if (line[0] == 'm') {
				module_free(&bi.main);
				last = &bi.main;
			} else {
				if (bi.ndeps >= DEPS_MAX) {
					seterr(err, errsize, "build information "
					    "line %d: more than %d deps",
					    lineno, DEPS_MAX);
					goto fail;
				}
				bi.deps = xreallocarray(bi.deps, bi.ndeps + 1,
				    sizeof *bi.deps);
				last = &bi.deps[bi.ndeps++];
				memset(last, 0, sizeof *last);
			}
			if (read_module(last, f, nf, lineno, err, errsize) == -1)
				goto fail;
		} else if (n >= 3 && memcmp(line, "=>\t", 3) == 0) {
			nf = split_tabs(line + 3, n - 3, f, 4);
			if (nf != 3) {
				seterr(err, errsize, "build information line "
				    "%d: expected 3 columns for replacement; "
				    "got %zu", lineno, nf);
				goto fail;
			}
			if (last == NULL) {
				seterr(err, errsize, "build information line "
				    "%d: replacement with no module on "
				    "previous line", lineno);
				goto fail;
			}
			r = xcalloc(1, sizeof *r);
			last->replace = r;
			last = NULL;
			if (read_module(r, f, nf, lineno, err, errsize) == -1)
				goto fail;
		} else if (n >= 6 && memcmp(line, "build\t", 6) == 0) {
			if (read_setting(&bi, line + 6, n - 6, lineno, err,
			    errsize) == -1)
				goto fail;
		}
	}
	if (check_unique(&bi, err, errsize) == -1)
		goto fail;
	*out = bi;
	return 0;
nul:
	seterr(err, errsize, "build information line %d: NUL byte", lineno);
fail:
	buildinfo_free(&bi);
	return -1;
}

/* Go's binary.Uvarint: the value's length in bytes, or 0 when invalid. */
static size_t
uvarint(const unsigned char *p, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;
	size_t i;

	for (i = 0; i < n && i < 10; i++) {
		if (p[i] < 0x80) {
			if (i == 9 && p[i] > 1)
				return 0;
			*v = x | (uint64_t)p[i] << shift;
			return i + 1;
		}
		x |= (uint64_t)(p[i] & 0x7f) << shift;
		shift += 7;
	}
	return 0;
}

/* One inline string at *pos: its start and length; -1 when cut short. */
static int
inline_string(const unsigned char *buf, size_t len, size_t *pos,
    const unsigned char **s, size_t *n)
{
	uint64_t v;
	size_t k;

	k = uvarint(buf + *pos, len - *pos, &v);
	if (k == 0 || v > len - *pos - k)
		return -1;
	*s = buf + *pos + k;
	*n = (size_t)v;
	*pos += k + (size_t)v;
	return 0;
}

/*
 * The header at off: 1 decoded into out, 0 not a header after all (why
 * in err), -1 a header whose contents are wrong (why in err).
 */
static int
decode_at(struct buildinfo *out, const unsigned char *buf, size_t len,
    size_t off, char *err, size_t errsize)
{
	const unsigned char *vers, *mod;
	size_t pos, vn, mn, i;
	unsigned ptrsize = buf[off + 14], flags = buf[off + 15];

	if (!(flags & FLAG_INLINE)) {
		if (ptrsize == 4 || ptrsize == 8) {
			seterr(err, errsize, "Go build information in the "
			    "format before Go 1.18, which kiln does not read");
			return 0;
		}
		seterr(err, errsize, "no Go build information");
		return 0;
	}
	pos = off + HEADER_SIZE;
	if (inline_string(buf, len, &pos, &vers, &vn) == -1 ||
	    inline_string(buf, len, &pos, &mod, &mn) == -1) {
		seterr(err, errsize, "Go build information truncated");
		return -1;
	}
	if (vn == 0 || vn > VERSION_MAX) {
		seterr(err, errsize, "Go build information: a Go version of "
		    "%zu bytes", vn);
		return -1;
	}
	for (i = 0; i < vn; i++)
		if (vers[i] <= ' ' || vers[i] >= 0x7f) {
			seterr(err, errsize, "Go build information: the Go "
			    "version is not printable ASCII");
			return -1;
		}
	/* As Go does: the text between the sentinels, else no modules. */
	if (mn >= 2 * SENTINEL_LEN + 1 && mod[mn - SENTINEL_LEN - 1] == '\n') {
		if (buildinfo_parse(out, (const char *)mod + SENTINEL_LEN,
		    mn - 2 * SENTINEL_LEN, err, errsize) == -1)
			return -1;
	} else
		memset(out, 0, sizeof *out);
	free(out->go_version);
	out->go_version = xstrndup((const char *)vers, vn);
	return 1;
}

int
buildinfo_from_binary(struct buildinfo *out, const unsigned char *buf,
    size_t len, char *err, size_t errsize)
{
	const unsigned char *p;
	size_t pos = 0, off;
	int rc, seen = 0;

	/*
	 * Go looks in the data segment only and takes the first aligned
	 * magic; kiln scans the whole file, so the same bytes elsewhere (a
	 * program that quotes the magic, as the go command does) may come
	 * first: such a candidate that does not decode is passed over, and
	 * its message kept in case nothing better follows.
	 */
	while (len >= HEADER_SIZE && pos <= len - HEADER_SIZE) {
		p = memmem(buf + pos, len - pos, MAGIC, MAGIC_LEN);
		if (p == NULL)
			break;
		off = (size_t)(p - buf);
		if (off % HEADER_ALIGN != 0) {
			pos = (off + HEADER_ALIGN - 1) & ~(size_t)(HEADER_ALIGN - 1);
			continue;
		}
		if (len - off < HEADER_SIZE) {
			if (!seen)
				seterr(err, errsize, "Go build information "
				    "truncated");
			return -1;
		}
		rc = decode_at(out, buf, len, off, err, errsize);
		if (rc == 1)
			return 0;
		seen = 1;
		pos = off + HEADER_ALIGN;
	}
	if (!seen)
		seterr(err, errsize, "no Go build information");
	return -1;
}
