/*
 * lib/utf8.c: what is valid (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), how invalid input is replaced (one U+FFFD per
 * maximal subpart, the WHATWG decoder's count), cutting only between
 * characters, and JSON strings that are valid UTF-8 whatever the bytes.
 */
#include "config.h"

#include <jansson.h>

#include "lib/utf8.h"
#include "unit.h"

#define R UTF8_REPLACEMENT

static void
check_valid(const char *s, size_t n, bool want)
{
	if (utf8_valid(s, n) != want) {
		fprintf(stderr, "  utf8_valid of %zu bytes:", n);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %02x", (unsigned char)s[i]);
		fprintf(stderr, " is not %s\n", want ? "true" : "false");
		unit_failed_checks++;
	}
}

#define VALID(lit) check_valid(lit, sizeof lit - 1, true)
#define INVALID(lit) check_valid(lit, sizeof lit - 1, false)

static void
validity_follows_rfc3629(void)
{
	VALID("");
	VALID("plain ASCII \x01\x7f");
	VALID("\xc2\x80");			/* U+0080 */
	VALID("\xdf\xbf");			/* U+07FF */
	VALID("\xe0\xa0\x80");			/* U+0800 */
	VALID("\xed\x9f\xbf");			/* U+D7FF */
	VALID("\xee\x80\x80");			/* U+E000 */
	VALID("\xef\xbf\xbf");			/* U+FFFF */
	VALID("\xf0\x90\x80\x80");		/* U+10000 */
	VALID("\xf4\x8f\xbf\xbf");		/* U+10FFFF */
	VALID("Gr\xc3\xbc\xc3\x9f \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\xa5");
	INVALID("\x80");			/* lone continuation */
	INVALID("\xc0\xaf");			/* overlong '/' */
	INVALID("\xc1\xbf");			/* overlong */
	INVALID("\xe0\x9f\xbf");		/* overlong U+07FF */
	INVALID("\xf0\x8f\xbf\xbf");		/* overlong U+FFFF */
	INVALID("\xed\xa0\x80");		/* surrogate U+D800 */
	INVALID("\xed\xbf\xbf");		/* surrogate U+DFFF */
	INVALID("\xf4\x90\x80\x80");		/* U+110000 */
	INVALID("\xf5\x80\x80\x80");
	INVALID("\xff");
	INVALID("\xe6\x97");			/* cut short */
	INVALID("a\xf0\x9f\x94");		/* cut short at the end */
	INVALID("\xc3\x28");			/* bad continuation */
}

static void
check_sanitized(const char *in, size_t n, const char *want)
{
	struct sbuf b = { 0 };

	utf8_sanitize(&b, in, n);
	sbuf_addc(&b, '\0');
	CHECK_STR(b.p, want);
	CHECK(utf8_valid(b.p, strlen(b.p)));
	sbuf_free(&b);
}

#define SANITIZED(lit, want) check_sanitized(lit, sizeof lit - 1, want)

static void
each_maximal_subpart_is_one_replacement(void)
{
	SANITIZED("ok \xc3\xa9", "ok \xc3\xa9");
	SANITIZED("a\x80" "b", "a" R "b");
	/* A valid prefix cut by a bad byte is one U+FFFD; the bad byte
	 * starts afresh. */
	SANITIZED("\xe6\x97" "A", R "A");
	SANITIZED("\xf0\x9f\x94" "\xc3\xa9", R "\xc3\xa9");
	/* Overlongs and surrogates: the lead's range check fails at once,
	 * so each byte is its own subpart (the WHATWG count). */
	SANITIZED("\xc0\xaf", R R);
	SANITIZED("\xe0\x80\xaf", R R R);
	SANITIZED("\xed\xa0\x80", R R R);
	SANITIZED("\xf4\x90\x80\x80", R R R R);
	SANITIZED("\xf5\x80", R R);
	/* Unicode's own example (chapter 3, table 3-8). */
	SANITIZED("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
	    "a" R R R "b" R "c" R R "d");
	/* Cut at the end of the input. */
	SANITIZED("tail \xe2\x82", "tail " R);
}

static void
cuts_fall_between_characters(void)
{
	/* "日本" is 6 bytes: two 3-byte characters. */
	const char *s = "\xe6\x97\xa5\xe6\x9c\xac";

	CHECK_INT(utf8_cut(s, 6, 6), 6);
	CHECK_INT(utf8_cut(s, 6, 10), 6);
	CHECK_INT(utf8_cut(s, 6, 5), 3);
	CHECK_INT(utf8_cut(s, 6, 4), 3);
	CHECK_INT(utf8_cut(s, 6, 3), 3);
	CHECK_INT(utf8_cut(s, 6, 2), 0);
	CHECK_INT(utf8_cut("abc", 3, 2), 2);
	CHECK_INT(utf8_trim_partial(s, 5), 3);
	CHECK_INT(utf8_trim_partial(s, 4), 3);
	CHECK_INT(utf8_trim_partial(s, 6), 6);
	CHECK_INT(utf8_trim_partial("ab\x80", 3), 3);	/* invalid, not cut */
	CHECK_INT(utf8_trim_partial("\xf0\x9f\x94", 3), 0);
}

/* The reported bug: an error cut by snprintf in the middle of a name. */
static void
fix_repairs_a_cut_error_in_place(void)
{
	/* "fetch: 日本日本" cut to 15 bytes ends inside the third
	 * character; the partial one goes. */
	char buf[16], small[6];
	static const char full[] = "fetch: "
	    "\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5\xe6\x9c\xac";

	/* What snprintf(buf, sizeof buf, "%s", full) leaves. */
	memcpy(buf, full, sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	CHECK(!utf8_valid(buf, strlen(buf)));
	utf8_fix(buf, sizeof buf);
	CHECK_STR(buf, "fetch: \xe6\x97\xa5\xe6\x9c\xac");
	/* Replacements grow the text (1 byte to 3): cut to fit, whole. */
	memcpy(small, "a\xff\xff", 4);
	utf8_fix(small, sizeof small);
	CHECK_STR(small, "a" R);
	snprintf(buf, sizeof buf, "fine");
	utf8_fix(buf, sizeof buf);
	CHECK_STR(buf, "fine");
}

static void
check_json(const char *in, const char *want_value)
{
	struct sbuf b = { 0 };
	json_error_t e;
	json_t *j;

	utf8_json_string(&b, in);
	CHECK(utf8_valid(b.p, b.len));
	j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &e);
	CHECK(j != NULL);
	if (j == NULL)
		fprintf(stderr, "  jansson: %s in %s\n", e.text, b.p);
	CHECK_STR(json_string_value(j), want_value);
	json_decref(j);
	sbuf_free(&b);
}

static void
json_strings_parse_whatever_the_bytes(void)
{
	struct sbuf b = { 0 };

	check_json("plain", "plain");
	check_json("quote \" backslash \\ nl \n tab \t del \x7f bell \x07",
	    "quote \" backslash \\ nl \n tab \t del \x7f bell \x07");
	check_json("caf\xc3\xa9 \xf0\x9f\x94\xa5", "caf\xc3\xa9 \xf0\x9f\x94\xa5");
	check_json("bad \xff byte", "bad " R " byte");
	check_json("cut \xe6\x97", "cut " R);
	check_json("surrogate \xed\xa0\x80", "surrogate " R R R);
	utf8_json_string(&b, NULL);
	CHECK_STR(b.p, "null");
	sbuf_free(&b);
}

UNIT_MAIN(
	TEST(validity_follows_rfc3629),
	TEST(each_maximal_subpart_is_one_replacement),
	TEST(cuts_fall_between_characters),
	TEST(fix_repairs_a_cut_error_in_place),
	TEST(json_strings_parse_whatever_the_bytes),
)
