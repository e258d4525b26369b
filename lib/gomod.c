#include "config.h"

#include <stdio.h>
#include <string.h>

#include "gomod.h"

/* --- versions (cmd/go/internal/gover) -------------------------------- */

struct span {
	const char *p;
	size_t n;
};

/* A parsed version; all spans empty when the text is not a version. */
struct gover {
	struct span major, minor, patch, kind, pre;
};

/* Digits at s without a needless leading zero; the rest, or NULL. */
static const char *
cut_int(const char *s, struct span *out)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || (s[0] == '0' && n > 1))
		return NULL;
	out->p = s;
	out->n = n;
	return s + n;
}

/*
 * MAJOR.MINOR[.PATCH | KINDN] with an optional "go" prefix, as a go line
 * takes it.  Go itself also reads "1" and "1.21rc" elsewhere; a go line
 * needs the minor number and a prerelease number, and so does kiln.
 */
static bool
parse_version(const char *s, struct gover *v)
{
	static const struct span zero = { "0", 1 };
	size_t k;

	memset(v, 0, sizeof *v);
	if (strncmp(s, "go", 2) == 0)
		s += 2;
	if ((s = cut_int(s, &v->major)) == NULL || v->major.p[0] == '0' ||
	    *s != '.' || (s = cut_int(s + 1, &v->minor)) == NULL)
		goto bad;
	if (*s == '\0') {
		/* Before 1.21, "1.N" is the release 1.N.0. */
		if (v->major.n == 1 && v->major.p[0] == '1' &&
		    (v->minor.n < 2 || (v->minor.n == 2 &&
		    memcmp(v->minor.p, "21", 2) < 0)))
			v->patch = zero;
		return true;
	}
	if (*s == '.') {
		/* No prerelease of a patch release ("1.21.3rc1"), as in Go. */
		if ((s = cut_int(s + 1, &v->patch)) == NULL || *s != '\0')
			goto bad;
		return true;
	}
	k = strspn(s, "abcdefghijklmnopqrstuvwxyz");
	if (k == 0)
		goto bad;
	v->kind.p = s;
	v->kind.n = k;
	if ((s = cut_int(s + k, &v->pre)) == NULL || *s != '\0')
		goto bad;
	return true;
bad:
	memset(v, 0, sizeof *v);
	return false;
}

/* Decimal numbers without leading zeros: the longer is larger. */
static int
cmp_int(struct span a, struct span b)
{
	int c;

	if (a.n != b.n)
		return a.n < b.n ? -1 : 1;
	c = a.n ? memcmp(a.p, b.p, a.n) : 0;
	return c < 0 ? -1 : c > 0;
}

/* Plain string order: "" < "alpha" < "beta" < "rc". */
static int
cmp_str(struct span a, struct span b)
{
	size_t n = a.n < b.n ? a.n : b.n;
	int c = n ? memcmp(a.p, b.p, n) : 0;

	if (c != 0)
		return c < 0 ? -1 : 1;
	return a.n < b.n ? -1 : a.n > b.n;
}

int
gomod_version_cmp(const char *a, const char *b)
{
	struct gover x, y;
	int c;

	parse_version(a, &x);
	parse_version(b, &y);
	if ((c = cmp_int(x.major, y.major)) != 0 ||
	    (c = cmp_int(x.minor, y.minor)) != 0 ||
	    (c = cmp_int(x.patch, y.patch)) != 0 ||
	    (c = cmp_str(x.kind, y.kind)) != 0)
		return c;
	return cmp_int(x.pre, y.pre);
}

bool
gomod_version_valid(const char *v)
{
	struct gover g;

	return parse_version(v, &g);
}

int
gomod_version_lang(char *out, size_t outsize, const char *v)
{
	struct gover g;
	int n;

	if (!parse_version(v, &g))
		return -1;
	n = snprintf(out, outsize, "%.*s.%.*s", (int)g.major.n, g.major.p,
	    (int)g.minor.n, g.minor.p);
	return n < 0 || (size_t)n >= outsize ? -1 : 0;
}

/* --- go.mod ------------------------------------------------------------ */

/*
 * The lexical syntax of go.mod (golang.org/x/mod/modfile): words, quoted
 * strings, "(" and ")", "[", "]" and "," (retract [v1.0.0, v1.0.5]), //
 * comments to the end of the line.  A statement
 * is a line; "verb (" opens a block of lines closed by a line ")".
 */
enum tok { T_EOF, T_NL, T_LPAREN, T_RPAREN, T_PUNCT, T_WORD, T_STRING };

struct token {
	enum tok kind;
	const char *p;		/* its text; a string's without quotes */
	size_t n;
	char quote;		/* '"' or '`' for T_STRING */
};

struct lexer {
	const char *p, *end;
	int line;
	char *err;
	size_t errsize;
};

#define MAX_TOKENS 8	/* kept of one line; more are counted */

/* Up to 40 bytes of s, bytes outside printable ASCII as '?'. */
static void
shown(char *out, size_t outsize, const char *s, size_t n)
{
	size_t i, max = outsize > 44 ? 40 : outsize - 4;

	for (i = 0; i < n && i < max; i++)
		out[i] = (unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] < 0x7f ? s[i] : '?';
	if (i < n)
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
}

static int
lex_error(struct lexer *lx, const char *why, const char *s, size_t n)
{
	char text[48];

	if (s != NULL) {
		shown(text, sizeof text, s, n);
		snprintf(lx->err, lx->errsize, "go.mod:%d: %s '%s'", lx->line,
		    why, text);
	} else
		snprintf(lx->err, lx->errsize, "go.mod:%d: %s", lx->line, why);
	return -1;
}

static bool
is_word_byte(unsigned char c)
{
	return c >= 0x80 || (c > ' ' && c < 0x7f &&
	    strchr("()[]{},\"`", c) == NULL);
}

/* The next token into *t; -1 on a lexical error. */
static int
lex(struct lexer *lx, struct token *t)
{
	const char *s;

	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' ||
	    *lx->p == '\r'))
		lx->p++;
	if (lx->end - lx->p >= 2 && lx->p[0] == '/' && lx->p[1] == '/')
		while (lx->p < lx->end && *lx->p != '\n')
			lx->p++;
	t->p = lx->p;
	t->n = 0;
	if (lx->p == lx->end) {
		t->kind = T_EOF;
		return 0;
	}
	switch (*lx->p) {
	case '\n':
		lx->p++;
		t->kind = T_NL;
		return 0;
	case '(':
	case ')':
		t->kind = *lx->p++ == '(' ? T_LPAREN : T_RPAREN;
		return 0;
	case '[':
	case ']':
	case ',':
		t->kind = T_PUNCT;
		t->n = 1;
		lx->p++;
		return 0;
	case '"':
	case '`':
		t->kind = T_STRING;
		t->quote = *lx->p;
		for (s = ++lx->p; s < lx->end && *s != t->quote; s++) {
			if (*s == '\n')
				break;
			if (*s == '\\' && t->quote == '"' && s + 1 < lx->end &&
			    s[1] != '\n')
				s++;
		}
		if (s == lx->end || *s != t->quote)
			return lex_error(lx, "unterminated string", NULL, 0);
		t->p = lx->p;
		t->n = (size_t)(s - lx->p);
		lx->p = s + 1;
		return 0;
	}
	if (!is_word_byte((unsigned char)*lx->p))
		return lex_error(lx, "unexpected character", lx->p, 1);
	t->kind = T_WORD;
	for (s = lx->p; s < lx->end && is_word_byte((unsigned char)*s); s++)
		if (s + 1 < lx->end && s[0] == '/' && s[1] == '/')
			break;
	t->n = (size_t)(s - lx->p);
	lx->p = s;
	return 0;
}

static bool
word_is(const struct token *t, const char *w)
{
	return t->kind == T_WORD && t->n == strlen(w) &&
	    memcmp(t->p, w, t->n) == 0;
}

/* A module path, unquoted, into out: printable ASCII, as Go allows. */
static int
set_module(struct lexer *lx, struct gomod *out, const struct token *t)
{
	size_t i, n = 0;

	if (out->module[0] != '\0')
		return lex_error(lx, "repeated module line", NULL, 0);
	if (t->kind != T_WORD && t->kind != T_STRING)
		return lex_error(lx, "usage: module module/path", NULL, 0);
	for (i = 0; i < t->n; i++) {
		char c = t->p[i];
		if (c == '\\' && t->kind == T_STRING && t->quote == '"' &&
		    i + 1 < t->n) {
			c = t->p[++i];
			if (c != '\\' && c != '"')
				return lex_error(lx, "invalid escape in module "
				    "path", t->p, t->n);
		}
		if (c <= ' ' || c >= 0x7f || c == '"' || c == '`')
			return lex_error(lx, "invalid module path", t->p, t->n);
		if (n == sizeof out->module - 1)
			return lex_error(lx, "module path too long", t->p,
			    t->n);
		out->module[n++] = c;
	}
	if (n == 0)
		return lex_error(lx, "empty module path", NULL, 0);
	out->module[n] = '\0';
	return 0;
}

/* The go line: a version without "go", as `go 1.22.0`. */
static int
set_go(struct lexer *lx, struct gomod *out, const struct token *t)
{
	char v[sizeof out->go];

	if (out->go[0] != '\0')
		return lex_error(lx, "repeated go line", NULL, 0);
	if (t->kind != T_WORD || t->n >= sizeof v || t->p[0] == 'g')
		return lex_error(lx, "invalid go version", t->p, t->n);
	memcpy(v, t->p, t->n);
	v[t->n] = '\0';
	if (!gomod_version_valid(v))
		return lex_error(lx, "invalid go version", t->p, t->n);
	memcpy(out->go, v, t->n + 1);
	return 0;
}

/*
 * The toolchain line: "default" (no preference: left empty) or goVERSION,
 * where Go ignores a custom suffix after '-' or '+' ("go1.22.3-custom").
 */
static int
set_toolchain(struct lexer *lx, struct gomod *out, const struct token *t,
    bool *seen)
{
	char v[sizeof out->toolchain];
	size_t n;

	if (*seen)
		return lex_error(lx, "repeated toolchain line", NULL, 0);
	*seen = true;
	if (word_is(t, "default"))
		return 0;
	if (t->kind != T_WORD || t->n < 2 || memcmp(t->p, "go", 2) != 0)
		return lex_error(lx, "invalid toolchain", t->p, t->n);
	for (n = 0; n < t->n && t->p[n] != '-' && t->p[n] != '+'; n++)
		;
	if (n >= sizeof v)
		return lex_error(lx, "invalid toolchain", t->p, t->n);
	memcpy(v, t->p, n);
	v[n] = '\0';
	if (!gomod_version_valid(v))
		return lex_error(lx, "invalid toolchain", t->p, t->n);
	memcpy(out->toolchain, v, n + 1);
	return 0;
}

enum block { B_NONE, B_REQUIRE, B_MODULE, B_OTHER };

/* A line inside a block: n tokens (n > 0), the first k of them in t. */
static int
block_line(struct lexer *lx, struct gomod *out, enum block *b,
    const struct token *t, size_t n, size_t k)
{
	if (t[0].kind == T_RPAREN) {
		if (n != 1)
			return lex_error(lx, "syntax error after ')'", NULL, 0);
		*b = B_NONE;
		return 0;
	}
	for (size_t i = 0; i < k; i++)
		if (t[i].kind == T_LPAREN || t[i].kind == T_RPAREN)
			return lex_error(lx, "syntax error: unexpected "
			    "parenthesis", NULL, 0);
	if (*b == B_REQUIRE) {
		if (n != 2)
			return lex_error(lx, "usage: module/path v1.2.3",
			    NULL, 0);
		out->requires = true;
	} else if (*b == B_MODULE) {
		if (n != 1)
			return lex_error(lx, "usage: module module/path",
			    NULL, 0);
		return set_module(lx, out, &t[0]);
	}
	return 0;
}

/* A statement outside blocks: n tokens (n > 0), the first k of them in t. */
static int
statement(struct lexer *lx, struct gomod *out, enum block *b,
    const struct token *t, size_t n, size_t k, bool *toolchain_seen)
{
	if (t[0].kind != T_WORD)
		return lex_error(lx, "syntax error: expected a directive",
		    NULL, 0);
	if (n >= 2 && t[1].kind == T_LPAREN) {
		if (word_is(&t[0], "go") || word_is(&t[0], "toolchain"))
			return lex_error(lx, "unknown block type", t[0].p,
			    t[0].n);
		*b = word_is(&t[0], "require") ? B_REQUIRE :
		    word_is(&t[0], "module") ? B_MODULE : B_OTHER;
		/* Lines may start on the line of the "(". */
		return n > 2 ? block_line(lx, out, b, t + 2, n - 2, k - 2) : 0;
	}
	for (size_t i = 1; i < k; i++)
		if (t[i].kind == T_LPAREN || t[i].kind == T_RPAREN)
			return lex_error(lx, "syntax error: unexpected "
			    "parenthesis", NULL, 0);
	if (word_is(&t[0], "module")) {
		if (n != 2)
			return lex_error(lx, "usage: module module/path",
			    NULL, 0);
		return set_module(lx, out, &t[1]);
	}
	if (word_is(&t[0], "go")) {
		if (n != 2)
			return lex_error(lx, "usage: go 1.23", NULL, 0);
		return set_go(lx, out, &t[1]);
	}
	if (word_is(&t[0], "toolchain")) {
		if (n != 2)
			return lex_error(lx, "usage: toolchain go1.23.0",
			    NULL, 0);
		return set_toolchain(lx, out, &t[1], toolchain_seen);
	}
	if (word_is(&t[0], "require")) {
		if (n != 3)
			return lex_error(lx, "usage: require module/path "
			    "v1.2.3", NULL, 0);
		out->requires = true;
	}
	/* replace, exclude, retract, godebug, tool, ignore...: not kiln's. */
	return 0;
}

int
gomod_parse(struct gomod *out, const char *text, size_t len, char *err,
    size_t errsize)
{
	struct lexer lx = { text, text + len, 1, err, errsize };
	struct token t[MAX_TOKENS], tok;
	enum block b = B_NONE;
	bool toolchain_seen = false;
	int block_start = 0;
	size_t n, k;

	memset(out, 0, sizeof *out);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		lx.p += 3;	/* a byte-order mark */
	for (;;) {
		n = 0;
		do {
			if (lex(&lx, &tok) != 0)
				return -1;
			if (tok.kind != T_EOF && tok.kind != T_NL &&
			    n++ < MAX_TOKENS)
				t[n - 1] = tok;
		} while (tok.kind != T_EOF && tok.kind != T_NL);
		k = n < MAX_TOKENS ? n : MAX_TOKENS;
		if (n > 0 && b == B_NONE) {
			block_start = lx.line;
			if (statement(&lx, out, &b, t, n, k,
			    &toolchain_seen) != 0)
				return -1;
		} else if (n > 0 && block_line(&lx, out, &b, t, n, k) != 0)
			return -1;
		if (tok.kind == T_EOF)
			break;
		lx.line++;
	}
	if (b != B_NONE) {
		lx.line = block_start;
		return lex_error(&lx, "unterminated block", NULL, 0);
	}
	return 0;
}
