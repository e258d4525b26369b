/*
 * libFuzzer: lib/utf8.c and the job JSON it guards.  Properties:
 * sanitizing always gives valid UTF-8, and valid input comes back
 * unchanged; a cut never splits a character; utf8_fix leaves a valid
 * string that fits; a JSON string of any bytes is valid UTF-8 that
 * jansson reads back as the sanitized text; and a job whose strings hold
 * any bytes renders (job_render_json) as JSON that jansson parses.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_sanitize(const char *s, size_t n)
{
	struct sbuf b = { 0 };

	utf8_sanitize(&b, s, n);
	if (!utf8_valid(b.p ? b.p : "", b.len))
		abort();
	if (utf8_valid(s, n) != (b.len == n && memcmp(b.p, s, n) == 0))
		abort();
	/* Every cut of valid text is valid and as long as it may be. */
	for (size_t max = 0; max <= b.len; max++) {
		size_t c = utf8_cut(b.p, b.len, max);

		if (c > max || !utf8_valid(b.p, c) || c + 4 <= max)
			abort();
		if (c < b.len && ((unsigned char)b.p[c] & 0xc0) == 0x80)
			abort();
	}
	sbuf_free(&b);
}

static void
check_fix(const char *s, size_t n)
{
	char buf[64];

	for (size_t size = 1; size <= sizeof buf; size += 7) {
		size_t k = n < size - 1 ? n : size - 1;

		memcpy(buf, s, k);
		buf[k] = '\0';
		utf8_fix(buf, size);
		if (strlen(buf) >= size || !utf8_valid(buf, strlen(buf)))
			abort();
	}
}

/* s has no NUL. */
static void
check_json(const char *s, size_t n)
{
	struct sbuf b = { 0 }, want = { 0 };
	json_t *j;

	utf8_json_string(&b, s);
	if (!utf8_valid(b.p, b.len))
		abort();
	j = json_loadb(b.p, b.len, JSON_DECODE_ANY, NULL);
	utf8_sanitize(&want, s, n);
	if (j == NULL || !json_is_string(j) ||
	    json_string_length(j) != want.len ||
	    memcmp(json_string_value(j), want.p ? want.p : "", want.len) != 0)
		abort();
	json_decref(j);
	sbuf_free(&b);
	sbuf_free(&want);
}

/* The input's NUL-separated parts become the job's strings. */
static void
check_render(const char *s, size_t n)
{
	char *part[12] = { 0 };
	size_t np = 0, start = 0;
	struct job job = { 0 };
	struct job_target t = { 0 };
	struct artifact art = { 0 };
	struct sbuf b = { 0 };
	json_t *j;

	for (size_t i = 0; i <= n && np < 12; i++)
		if (i == n || s[i] == '\0') {
			part[np++] = xstrndup(s + start, i - start);
			start = i + 1;
		}
	job.id = 1;
	job.repo = part[0];
	job.ref = part[1];
	job.commit = part[2];
	job.error = part[3];
	job.project = part[4];
	job.notify_url = part[5];
	job.notify_state = part[6];
	job.notify_error = part[7];
	job.submitted_by = part[8];
	t.error = part[9];
	t.toolchain = part[10];
	art.name = part[11];
	if (part[1] != NULL)
		snprintf(t.target, sizeof t.target, "%s", part[1]);
	t.nartifacts = 1;
	t.artifacts = &art;
	job.ntargets = 1;
	job.targets = &t;
	job_render_json(&b, &job);
	if (!utf8_valid(b.p, b.len))
		abort();
	/* jansson itself refuses invalid UTF-8 in what it parses. */
	if ((j = json_loadb(b.p, b.len, 0, NULL)) == NULL)
		abort();
	json_decref(j);
	sbuf_free(&b);
	for (size_t i = 0; i < np; i++)
		free(part[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t first;

	if (size > 4096)
		return 0;
	check_sanitize(s, size);
	check_fix(s, size);
	first = strnlen(s, size);
	{
		char *z = xstrndup(s, first);

		check_json(z, first);
		free(z);
	}
	check_render(s, size);
	return 0;
}
