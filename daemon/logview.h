/*
 * A target's log as it is shown to people (GET .../log), rendered from the
 * raw log and kilnd's record of its own lines.
 *
 * The raw log (STATE/logs/JOB/TARGET.log) holds the build's output byte
 * for byte, with kilnd's status lines ("[kiln] ...") written in between.
 * A build can print anything, "[kiln] linux/amd64: succeeded" and
 * terminal control sequences included, so the text alone cannot say
 * whose a line is.  kilnd therefore writes, next to the log, the byte
 * offset of each line of its own (TARGET.log.kiln, one record per line,
 * written by kilnd only, after the line itself).  The view then shows:
 *
 *  - kilnd's lines as they are, each on a line of its own (a line break is
 *    added before one that was written after a build's unfinished line);
 *  - a build's line whose visible text starts with "[kiln" (also after
 *    colour codes, spaces, carriage returns or zero-width characters,
 *    and with any other character outside ASCII taken as possibly
 *    invisible or a look-alike of a letter) with LOGVIEW_PREFIX before
 *    it, so it cannot pass for kilnd's;
 *  - SGR colour sequences (ESC [ digits ; : m) as they are; every other
 *    control character escaped as text: ESC as "\x1b", a carriage
 *    return not followed by a newline as "\r", C1 controls and bidi
 *    overrides as "\u009b"; CR LF as a newline; tabs kept;
 *  - invalid UTF-8 as U+FFFD.
 *
 * The renderer is incremental: bytes may arrive in chunks cut anywhere
 * (a follower reads what a running build wrote so far) and the view is
 * the same as if the whole log came at once.
 */
#ifndef KILN_LOGVIEW_H
#define KILN_LOGVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

/* Shown before a build's line that looks like kilnd's. */
#define LOGVIEW_PREFIX "[build] "
/* One record of the marks file: 16 lowercase hex digits and '\n'. */
#define LOGVIEW_MARK_LEN 17

struct logview;

struct logview *logview_new(void);
void logview_free(struct logview *v);
/* The marks record of raw offset off, in out (LOGVIEW_MARK_LEN + 1). */
void logview_mark_record(char *out, uint64_t off);
/*
 * Bytes of the marks file, in order, cut anywhere.  A record that is not
 * well-formed, or not after the last one, is ignored.
 */
void logview_marks(struct logview *v, const char *buf, size_t n);
/* kilnd wrote a line of its own at raw offset off (increasing). */
void logview_mark(struct logview *v, uint64_t off);
/* The next n bytes of the raw log; the view of them is appended to out
 * (a part may be held back until the bytes that decide it arrive). */
void logview_feed(struct logview *v, const char *buf, size_t n,
    struct sbuf *out);
/* The log ends here: what was held back is appended to out. */
void logview_finish(struct logview *v, struct sbuf *out);
/* The raw offset of the next byte logview_feed expects. */
uint64_t logview_offset(const struct logview *v);
/*
 * Text for one of kilnd's own lines: s[0..n) with invalid UTF-8 replaced
 * and every control character (newlines and ESC too) escaped as in the
 * view, so that what kilnd writes is one line without sequences.
 */
void logview_clean(struct sbuf *out, const char *s, size_t n);

#endif
