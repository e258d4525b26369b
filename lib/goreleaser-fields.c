/*
 * Reading a .goreleaser.yaml's values (goreleaser.h): typed fields with
 * GoReleaser's leniencies (a number where a string is meant, "true" for
 * true), each bounded in size, and the two ways a conversion speaks:
 * gr_fail for the one error, gr_note for the keys it ignores.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goreleaser.h"
#include "goreleaser-int.h"
#include "util.h"
#include "xmalloc.h"

bool
gr_in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

bool
gr_strvec_has(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

void
gr_strvec_add(struct strvec *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = xreallocarray(sv->v, sv->cap, sizeof *sv->v);
	}
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void
gr_strvec_free(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}

int
gr_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Text from the file in a message: cut at a character boundary, no
 * control characters. */
const char *
gr_clean(char *buf, size_t size, const char *s)
{
	return util_snippet(buf, size, s, strlen(s));
}

int
gr_fail(struct conv *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/* One "ignored" message; repeats are kept once. */
void
gr_note(struct conv *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (gr_strvec_has(&c->ignored, buf))
		return;
	if (c->ignored.n + 1 >= GORELEASER_MAX_IGNORED)
		c->more++;
	else
		gr_strvec_add(&c->ignored, buf);
}

/*
 * A scalar as GoReleaser's string fields read it: go-yaml gives the
 * text of `goarch: [386]` to a string, and yaml_to_json keeps integers
 * canonical, so printing one back gives the same text.  NULL for
 * anything else or a string holding a NUL.
 */
const char *
gr_scalar(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return strlen(json_string_value(v)) == json_string_length(v) ?
		    json_string_value(v) : NULL;
	if (json_is_integer(v)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return NULL;
}

/* "builds[0].goos", or "goos" at the top. */
static const char *
path(char *buf, size_t size, const char *where, const char *key)
{
	if (where == NULL)
		snprintf(buf, size, "%s", key);
	else
		snprintf(buf, size, "%s.%s", where, key);
	return buf;
}

/* A string field; *out NULL when absent or null. */
int
gr_get_string(struct conv *c, const json_t *o, const char *where,
    const char *key, char **out)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	char buf[32], p[48];

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if ((s = gr_scalar(v, buf, sizeof buf)) == NULL)
		return gr_fail(c, "%s: must be a string",
		    path(p, sizeof p, where, key));
	if (strlen(s) > VALUE_MAX)
		return gr_fail(c, "%s: longer than %d bytes",
		    path(p, sizeof p, where, key), VALUE_MAX);
	*out = xstrdup(s);
	return 0;
}

/* A boolean; GoReleaser's older files also write skip: "true". */
int
gr_get_bool(struct conv *c, const json_t *o, const char *where,
    const char *key, bool *out)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	char p[48];

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_boolean(v))
		*out = json_is_true(v);
	else if (s != NULL && strcmp(s, "true") == 0)
		*out = true;
	else if (s == NULL || strcmp(s, "false") != 0)
		return gr_fail(c, "%s: must be true or false (kiln evaluates "
		    "no templates there)", path(p, sizeof p, where, key));
	return 0;
}

/*
 * A list of strings (a lone string too when `single`, as GoReleaser's
 * StringArray reads one), repeats dropped when `unique`.
 */
int
gr_get_list(struct conv *c, const json_t *o, const char *where,
    const char *key, bool single, bool unique, struct strvec *out)
{
	json_t *v = json_object_get(o, key), *e;
	const char *s;
	char buf[32], p[48];
	size_t i;

	if (v == NULL || json_is_null(v))
		return 0;
	path(p, sizeof p, where, key);
	if (single && json_is_string(v)) {
		if ((s = gr_scalar(v, buf, sizeof buf)) == NULL ||
		    strlen(s) > VALUE_MAX)
			return gr_fail(c, "%s: must be a string of at most %d "
			    "bytes without NUL", p, VALUE_MAX);
		gr_strvec_add(out, s);
		return 0;
	}
	if (!json_is_array(v))
		return gr_fail(c, "%s: must be a list of strings", p);
	if (json_array_size(v) > LIST_MAX)
		return gr_fail(c, "%s: more than %d entries", p, LIST_MAX);
	json_array_foreach(v, i, e) {
		if ((s = gr_scalar(e, buf, sizeof buf)) == NULL)
			return gr_fail(c, "%s: must be a list of strings", p);
		if (strlen(s) > VALUE_MAX)
			return gr_fail(c, "%s[%zu]: longer than %d bytes", p, i,
			    VALUE_MAX);
		if (!unique || !gr_strvec_has(out, s))
			gr_strvec_add(out, s);
	}
	return 0;
}

static bool
env_name_ok(const char *s, size_t n)
{
	static const char ok[] = "_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789";

	/* A shell name: letters, digits, '_', not starting with a digit. */
	if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
			return false;
	return true;
}

/* `env: [NAME=VALUE, ...]` into obj, later entries winning. */
int
gr_get_env(struct conv *c, const json_t *o, const char *where, json_t *obj)
{
	struct strvec l = { 0 };
	char p[48], q[68];
	int rc = -1;

	path(p, sizeof p, where, "env");
	if (gr_get_list(c, o, where, "env", false, false, &l) != 0)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		char *eq = strchr(l.v[i], '=');
		size_t n = eq ? (size_t)(eq - l.v[i]) : 0;

		if (!env_name_ok(l.v[i], n)) {
			gr_fail(c, "%s[%zu]: '%s' is not NAME=VALUE", p, i,
			    gr_clean(q, sizeof q, l.v[i]));
			goto out;
		}
		*eq = '\0';
		/* The farm owns its own variables. */
		if (strncmp(l.v[i], "KILN_", 5) == 0) {
			gr_fail(c, "%s[%zu]: %s is set by kiln and cannot be "
			    "overridden", p, i, gr_clean(q, sizeof q, l.v[i]));
			goto out;
		}
		json_object_set_new(obj, l.v[i], json_string(eq + 1));
	}
	if (json_object_size(obj) > LIST_MAX) {
		gr_fail(c, "%s: more than %d variables", p, LIST_MAX);
		goto out;
	}
	rc = 0;
out:
	gr_strvec_free(&l);
	return rc;
}
