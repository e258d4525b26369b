/*
 * daemon/logview.c: the log shown to people.  kilnd's marked lines stay as
 * they are; a build's line that reads like kilnd's is prefixed, also
 * behind colours, spaces, carriage returns and zero-width characters;
 * control sequences other than colours are escaped visibly; invalid
 * UTF-8 is replaced; and the view is the same however the bytes are cut
 * into chunks (a follower gets them as the build writes them).
 */
#include "config.h"

#include "daemon/logview.h"
#include "lib/utf8.h"
#include "unit.h"

#define R UTF8_REPLACEMENT
#define P LOGVIEW_PREFIX

/* The view of raw[0..n) with kilnd's lines at marks[], fed in chunks of
 * `chunk` bytes (0: all at once); marks arrive as records of the file. */
static char *
render(const char *raw, size_t n, const uint64_t *marks, size_t nmarks,
    size_t chunk)
{
	struct logview *v = logview_new();
	struct sbuf out = { 0 }, recs = { 0 };
	char rec[LOGVIEW_MARK_LEN + 1];

	for (size_t i = 0; i < nmarks; i++) {
		logview_mark_record(rec, marks[i]);
		sbuf_add(&recs, rec, LOGVIEW_MARK_LEN);
	}
	/* The records too come cut anywhere. */
	for (size_t i = 0; i < recs.len; i += 5)
		logview_marks(v, recs.p + i, recs.len - i < 5 ? recs.len - i :
		    5);
	if (chunk == 0)
		chunk = n ? n : 1;
	for (size_t i = 0; i < n; i += chunk)
		logview_feed(v, raw + i, n - i < chunk ? n - i : chunk, &out);
	CHECK_INT(logview_offset(v), n);
	logview_finish(v, &out);
	logview_free(v);
	sbuf_free(&recs);
	sbuf_addc(&out, '\0');
	return sbuf_steal(&out, NULL);
}

/* The view must not depend on how the raw log is cut. */
static void
check_view(const char *raw, size_t n, const uint64_t *marks, size_t nmarks,
    const char *want)
{
	for (size_t chunk = 0; chunk <= 7; chunk++) {
		char *got = render(raw, n, marks, nmarks, chunk);

		if (strcmp(got, want) != 0) {
			fprintf(stderr, "  in chunks of %zu:\n", chunk);
			CHECK_STR(got, want);
		}
		CHECK(utf8_valid(got, strlen(got)));
		free(got);
	}
}

#define VIEW(lit, want) check_view(lit, sizeof lit - 1, NULL, 0, want)

static void
kilnd_lines_stay_and_forgeries_are_prefixed(void)
{
	static const char raw[] =
	    "[kiln] job 1 target linux/amd64\n"		/* kilnd: 0 */
	    "building\n"
	    "[kiln] linux/amd64: succeeded (0.1 s)\n"	/* the build */
	    "[kiln] linux/amd64: failed\n";		/* kilnd: 79 */
	const uint64_t marks[] = { 0, 79 };

	check_view(raw, sizeof raw - 1, marks, 2,
	    "[kiln] job 1 target linux/amd64\n"
	    "building\n"
	    P "[kiln] linux/amd64: succeeded (0.1 s)\n"
	    "[kiln] linux/amd64: failed\n");
	/* Without the marks every such line is the build's. */
	VIEW("[kiln] a\n[kiln] b", P "[kiln] a\n" P "[kiln] b");
}

static void
forgeries_behind_invisible_things_are_prefixed(void)
{
	VIEW("\x1b[32m[kiln] ok\n", P "\x1b[32m[kiln] ok\n");
	VIEW("\x1b[1;32m\x1b[m  [kiln] ok\n", P "\x1b[1;32m\x1b[m  [kiln] ok\n");
	VIEW("\r[kiln] ok\n", P "\\r[kiln] ok\n");
	VIEW("progress 50%\r[kiln] ok\n", "progress 50%\\r[kiln] ok\n");
	VIEW("\xe2\x80\x8b[kiln] ok\n", P "\xe2\x80\x8b[kiln] ok\n");
	VIEW("[\x1b[0mkiln] ok\n", P "[\x1b[0mkiln] ok\n");
	VIEW("\t[kiln] ok\n", P "\t[kiln] ok\n");
	/* Not kilnd's look: left alone. */
	VIEW("[kil]\n[ kiln]\nx [kiln]\n", "[kil]\n[ kiln]\nx [kiln]\n");
	VIEW("[KILN] shouting\n", "[KILN] shouting\n");
	/* CR LF is a line end; the next line is judged on its own. */
	VIEW("a\r\n[kiln] x\r\n", "a\n" P "[kiln] x\n");
}

/*
 * Characters outside ASCII that show nothing are many more than the
 * zero-width ones (U+2061, U+034F, variation selectors, tags, U+180E),
 * and others look like the letters of "[kiln" (Cyrillic i and l, a
 * fullwidth bracket): each counts as both, so no choice of them gets
 * past the prefix.
 */
static void
forgeries_with_other_invisible_or_look_alike_characters_are_prefixed(void)
{
	VIEW("\xe2\x81\xa1[kiln] ok\n", P "\xe2\x81\xa1[kiln] ok\n");
	VIEW("\xcd\x8f[kiln] ok\n", P "\xcd\x8f[kiln] ok\n");
	VIEW("\xef\xb8\x8f[kiln] ok\n", P "\xef\xb8\x8f[kiln] ok\n");
	VIEW("\xf3\xa0\x80\x81[kiln] ok\n", P "\xf3\xa0\x80\x81[kiln] ok\n");
	VIEW("\xe1\xa0\x8e \xe3\x85\xa4[kiln] ok\n",
	    P "\xe1\xa0\x8e \xe3\x85\xa4[kiln] ok\n");
	VIEW("[k\xd1\x96ln] ok\n", P "[k\xd1\x96ln] ok\n");
	VIEW("[ki\xd3\x8fn] ok\n", P "[ki\xd3\x8fn] ok\n");
	VIEW("\xef\xbc\xbbkiln] ok\n", P "\xef\xbc\xbbkiln] ok\n");
	VIEW("[ki\xcc\xb8ln] ok\n", P "[ki\xcc\xb8ln] ok\n");
	/* Text that only starts with such characters is left alone. */
	VIEW("\xc3\xbc" "ber [kiln]\n\xe2\x9c\x93 ok\n",
	    "\xc3\xbc" "ber [kiln]\n\xe2\x9c\x93 ok\n");
}

static void
control_sequences_are_escaped_but_colours_kept(void)
{
	/* OSC 0 and OSC 2 set the terminal's title. */
	VIEW("\x1b]0;pwned\x07" "after\n", "\\x1b]0;pwned\\x07after\n");
	VIEW("\x1b]2;title\x1b\\x\n", "\\x1b]2;title\\x1b\\x\n");
	/* Cursor movement and erasing are not colours. */
	VIEW("a\x1b[2Kb\x1b[1Ac\x1b[?25l\n", "a\\x1b[2Kb\\x1b[1Ac\\x1b[?25l\n");
	VIEW("red \x1b[31mred\x1b[0m \x1b[38;5;208m\x1b[38:2:1:2:3m.\n",
	    "red \x1b[31mred\x1b[0m \x1b[38;5;208m\x1b[38:2:1:2:3m.\n");
	VIEW("bell\x07 nul", "bell\\x07 nul");
	VIEW("del\x7f", "del\\x7f");
	VIEW("bs\b\bxx\n", "bs\\x08\\x08xx\n");
	/* C1 CSI (U+009B) and a right-to-left override. */
	VIEW("\xc2\x9b" "2J \xe2\x80\xae" "abc\n", "\\u009b2J \\u202eabc\n");
	VIEW("lone cr\r", "lone cr\\r");
	VIEW("esc at end \x1b[3", "esc at end \\x1b[3");
	VIEW("tab\tok\n", "tab\tok\n");
}

static void
invalid_utf8_is_replaced_across_chunks(void)
{
	VIEW("caf\xc3\xa9 \xf0\x9f\x94\xa5\n", "caf\xc3\xa9 \xf0\x9f\x94\xa5\n");
	VIEW("bad \xff\xfe\n", "bad " R R "\n");
	VIEW("cut \xe6\x97" "x\n", "cut " R "x\n");
	VIEW("end \xe6\x97", "end " R);
	VIEW("\xed\xa0\x80\n", R R R "\n");
}

static void
kilnd_line_after_an_unfinished_build_line_starts_its_own(void)
{
	/* The build wrote "partial" without a newline, then kilnd wrote its
	 * line (raw offset 7); the view breaks the line there. */
	static const char raw[] = "partial[kiln] canceled\nmore\n";
	const uint64_t one[] = { 7 };
	/* A held token (ESC, a half character) ends where kilnd's line
	 * begins: they were the build's last bytes. */
	static const char raw2[] = "x\x1b[3[kiln] k\ny\xe6\x97[kiln] k\n";
	const uint64_t two[] = { 4, 16 };

	check_view(raw, sizeof raw - 1, one, 1,
	    "partial\n[kiln] canceled\nmore\n");
	check_view(raw2, sizeof raw2 - 1, two, 2,
	    "x\\x1b[3\n[kiln] k\ny" R "\n[kiln] k\n");
}

static void
marks_that_are_malformed_or_out_of_order_are_ignored(void)
{
	struct logview *v = logview_new();
	struct sbuf out = { 0 };
	static const char recs[] =
	    "000000000000000g\n"	/* not hex */
	    "0000000000000000x"		/* no newline */
	    "0000000000000009\n"
	    "0000000000000002\n";	/* before the last one */
	static const char raw[] = "[kiln] a\n[kiln] b\n[kiln] c\n";

	logview_marks(v, recs, sizeof recs - 1);
	logview_feed(v, raw, sizeof raw - 1, &out);
	logview_finish(v, &out);
	sbuf_addc(&out, '\0');
	CHECK_STR(out.p, P "[kiln] a\n[kiln] b\n" P "[kiln] c\n");
	sbuf_free(&out);
	logview_free(v);
}

static void
a_long_invisible_head_is_decided(void)
{
	struct sbuf raw = { 0 };
	char *got;

	/* Colour codes without end: prefixed once past the bound, not
	 * held forever. */
	for (int i = 0; i < 400; i++)
		sbuf_adds(&raw, "\x1b[0m");
	got = render(raw.p, raw.len, NULL, 0, 1000);
	CHECK(strncmp(got, P, sizeof P - 1) == 0);
	free(got);
	sbuf_free(&raw);
}

static void
clean_makes_one_line_without_sequences(void)
{
	struct sbuf b = { 0 };
	static const char in[] = "go: a\nb\r\x1b[31m\xc2\x9b\xff\t\xe6\x97";

	logview_clean(&b, in, sizeof in - 1);
	sbuf_addc(&b, '\0');
	CHECK_STR(b.p, "go: a\\nb\\r\\x1b[31m\\u009b" R "\t" R);
	sbuf_free(&b);
}

UNIT_MAIN(
	TEST(kilnd_lines_stay_and_forgeries_are_prefixed),
	TEST(forgeries_behind_invisible_things_are_prefixed),
	TEST(forgeries_with_other_invisible_or_look_alike_characters_are_prefixed),
	TEST(control_sequences_are_escaped_but_colours_kept),
	TEST(invalid_utf8_is_replaced_across_chunks),
	TEST(kilnd_line_after_an_unfinished_build_line_starts_its_own),
	TEST(marks_that_are_malformed_or_out_of_order_are_ignored),
	TEST(a_long_invisible_head_is_decided),
	TEST(clean_makes_one_line_without_sequences),
)
