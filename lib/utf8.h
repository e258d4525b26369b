/*
 * UTF-8 for text that came from outside (a fetch's error, a build's log,
 * an old row of the queue): everything kiln answers is valid UTF-8, so
 * such text is checked, replaced where it is not valid, and cut only
 * between characters.  "Valid" is RFC 3629: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 */
#ifndef KILN_UTF8_H
#define KILN_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

/* U+FFFD REPLACEMENT CHARACTER, which stands for each invalid sequence. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/*
 * The character at s[0..n), n >= 1: its length (1 to 4) with *cp set;
 * 0 when s[0..n) is the start of a valid sequence that the input ends
 * before completing (a stream may bring the rest); -k when the first k
 * bytes are invalid and stand for one U+FFFD ("maximal subpart", Unicode
 * chapter 3 and the WHATWG decoder): the next character starts at s[k].
 */
int utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Whether s[0..n) is valid UTF-8. */
bool utf8_valid(const char *s, size_t n);
/*
 * Where to cut valid UTF-8 s[0..n) to keep at most max bytes: the
 * largest length <= max that does not end inside a character.
 */
size_t utf8_cut(const char *s, size_t n, size_t max);
/*
 * The length of s[0..n) without a trailing incomplete sequence, as
 * snprintf leaves one when it truncates in the middle of a character.
 */
size_t utf8_trim_partial(const char *s, size_t n);
/* Append s[0..n) to b with each invalid sequence replaced by U+FFFD. */
void utf8_sanitize(struct sbuf *b, const char *s, size_t n);
/*
 * The NUL-terminated string in buf (size bytes) made valid in place: a
 * character cut at its end is dropped, invalid sequences are replaced,
 * and the result is cut between characters to fit in size.
 */
void utf8_fix(char *buf, size_t size);
/*
 * s as a JSON string, quotes included, always valid UTF-8 whatever s
 * holds; NULL becomes null.
 */
void utf8_json_string(struct sbuf *b, const char *s);

#endif
