/*
 * The "outputs" object of a job (outputs.h): checked field by field, each
 * message naming the field, then written back in canonical form.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outputs.h"
#include "util.h"
#include "validate.h"

#define MAX_LIST 64		/* entries of any list */
#define MAX_STR 1024		/* bytes of any string */

bool
outputs_format_ok(const char *f)
{
	static const char *const ok[] = { "tar.gz", "tar.xz", "tar.zst", "tar",
	    "zip", "binary", NULL };

	for (size_t i = 0; ok[i] != NULL; i++)
		if (strcmp(f, ok[i]) == 0)
			return true;
	return false;
}

static int
check_string(json_t *v, const char *p, const char *f, char *why, size_t size)
{
	char field[320];

	snprintf(field, sizeof field, "%s%s", p, f);
	return validate_string(v, field, MAX_STR, why, size);
}

/* An array of at most MAX_LIST strings, each checked by ok (when given). */
static int
check_strings(json_t *v, const char *p, const char *f,
    bool (*ok)(const char *), const char *okwhat, char *why, size_t size)
{
	size_t i;
	json_t *s;
	char field[200];

	if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
		return util_errorf(why, size, "%s%s: must be an array of at most "
		    "%d strings", p, f, MAX_LIST);
	json_array_foreach(v, i, s) {
		snprintf(field, sizeof field, "%s[%zu]", f, i);
		if (check_string(s, p, field, why, size) != 0)
			return -1;
		if (ok != NULL && !ok(json_string_value(s)))
			return util_errorf(why, size, "%s%s: '%.64s' is not %s", p,
			    field, json_string_value(s), okwhat);
	}
	return 0;
}

/* Only the keys named in `keys` (NULL-terminated). */
static int
check_keys(json_t *o, const char *p, const char *const *keys, char *why,
    size_t size)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return util_errorf(why, size, "%.*s: must be an object",
		    (int)(strlen(p) > 0 ? strlen(p) - 1 : 7),
		    strlen(p) > 0 ? p : "outputs");
	json_object_foreach(o, k, v) {
		size_t i;

		for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
			;
		if (keys[i] == NULL)
			return util_errorf(why, size, "%sunknown field '%.64s'", p,
			    k);
	}
	return 0;
}

static int
check_bool(json_t *o, const char *p, const char *f, char *why, size_t size)
{
	json_t *v = json_object_get(o, f);

	if (v != NULL && !json_is_boolean(v))
		return util_errorf(why, size, "%s%s: must be true or false", p, f);
	return 0;
}

static int
check_formats(json_t *o, const char *p, char *why, size_t size)
{
	json_t *v = json_object_get(o, "formats");

	if (v != NULL && (check_strings(v, p, "formats", outputs_format_ok,
	    "a format (tar.gz, tar.xz, tar.zst, tar, zip, binary)", why,
	    size) != 0))
		return -1;
	if (v != NULL && json_array_size(v) == 0)
		return util_errorf(why, size, "%sformats: must not be empty", p);
	for (size_t i = 0; v != NULL && i < json_array_size(v); i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(v, i)),
			    json_string_value(json_array_get(v, j))) == 0)
				return util_errorf(why, size, "%sformats[%zu]: "
				    "'%s' is named twice", p, i,
				    json_string_value(json_array_get(v, i)));
	return 0;
}

static int
check_archives(json_t *a, char *why, size_t size)
{
	static const char *const keys[] = { "name_template", "formats",
	    "format_overrides", "files", "wrap_in_directory", NULL };
	static const char *const okeys[] = { "goos", "formats", NULL };
	const char *p = "archives.";
	json_t *v, *e;
	size_t i;

	if (check_keys(a, p, keys, why, size) != 0 ||
	    check_formats(a, p, why, size) != 0)
		return -1;
	if ((v = json_object_get(a, "name_template")) != NULL &&
	    check_string(v, p, "name_template", why, size) != 0)
		return -1;
	if ((v = json_object_get(a, "files")) != NULL &&
	    check_strings(v, p, "files", NULL, NULL, why, size) != 0)
		return -1;
	v = json_object_get(a, "wrap_in_directory");
	if (v != NULL && !json_is_boolean(v) &&
	    check_string(v, p, "wrap_in_directory", why, size) != 0)
		return util_errorf(why, size, "%swrap_in_directory: must be true, "
		    "false or a name template", p);
	if ((v = json_object_get(a, "format_overrides")) == NULL)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
		return util_errorf(why, size, "%sformat_overrides: must be an "
		    "array of at most %d objects", p, MAX_LIST);
	json_array_foreach(v, i, e) {
		char q[64];

		snprintf(q, sizeof q, "%sformat_overrides[%zu].", p, i);
		if (check_keys(e, q, okeys, why, size) != 0 ||
		    check_formats(e, q, why, size) != 0)
			return -1;
		if (check_string(json_object_get(e, "goos"), q, "goos", why,
		    size) != 0)
			return -1;
		if (json_object_get(e, "formats") == NULL)
			return util_errorf(why, size, "%sformats: required", q);
	}
	return 0;
}

/* HOST[:PORT]/NAME[/NAME...]: lower-case names as the distribution
 * specification allows them, no scheme, no tag. */
bool
outputs_registry_ok(const char *s)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL || slash == s || slash[1] == '\0' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-:") !=
	    (size_t)(slash - s))
		return false;
	for (const char *c = slash + 1; *c; c++)
		if (strchr("abcdefghijklmnopqrstuvwxyz0123456789._-/", *c) ==
		    NULL)
			return false;
	return strstr(slash, "//") == NULL && s[strlen(s) - 1] != '/';
}

bool
outputs_tag_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 128 && s[0] != '.' && s[0] != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.-") == n;
}

static bool
env_ok(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq != NULL && eq != s;
}

static int
check_image(json_t *im, char *why, size_t size)
{
	static const char *const keys[] = { "name", "entrypoint", "cmd", "env",
	    "workdir", "user", "base", "ca_certs", "tzdata", "registry", "tags",
	    NULL };
	const char *p = "image.";
	json_t *v;

	if (check_keys(im, p, keys, why, size) != 0)
		return -1;
	if ((v = json_object_get(im, "name")) == NULL)
		return util_errorf(why, size, "image.name: required (the image's "
		    "name, used in its file name and as its reference)");
	if (check_string(v, p, "name", why, size) != 0)
		return -1;
	if (!outputs_tag_ok(json_string_value(v)))
		return util_errorf(why, size, "image.name: letters, digits, '_', "
		    "'.' and '-' only");
	if (((v = json_object_get(im, "entrypoint")) != NULL &&
	    check_strings(v, p, "entrypoint", NULL, NULL, why, size) != 0) ||
	    ((v = json_object_get(im, "cmd")) != NULL &&
	    check_strings(v, p, "cmd", NULL, NULL, why, size) != 0) ||
	    ((v = json_object_get(im, "env")) != NULL &&
	    check_strings(v, p, "env", env_ok, "NAME=VALUE", why, size) != 0) ||
	    ((v = json_object_get(im, "tags")) != NULL &&
	    check_strings(v, p, "tags", outputs_tag_ok, "a tag", why, size) != 0))
		return -1;
	if (((v = json_object_get(im, "workdir")) != NULL &&
	    check_string(v, p, "workdir", why, size) != 0) ||
	    ((v = json_object_get(im, "user")) != NULL &&
	    check_string(v, p, "user", why, size) != 0))
		return -1;
	if ((v = json_object_get(im, "base")) != NULL &&
	    (check_string(v, p, "base", why, size) != 0 ||
	    strcmp(json_string_value(v), "scratch") != 0))
		return util_errorf(why, size, "image.base: only \"scratch\" (an "
		    "image of the build's files alone; ca_certs and tzdata add "
		    "the host's)");
	if (check_bool(im, p, "ca_certs", why, size) != 0 ||
	    check_bool(im, p, "tzdata", why, size) != 0)
		return -1;
	if ((v = json_object_get(im, "registry")) != NULL &&
	    (check_string(v, p, "registry", why, size) != 0 ||
	    !outputs_registry_ok(json_string_value(v))))
		return util_errorf(why, size, "image.registry: must be "
		    "HOST[:PORT]/NAME in lower case, without scheme or tag");
	return 0;
}

char *
outputs_canonical(json_t *o, char *why, size_t size)
{
	static const char *const keys[] = { "archives", "sbom", "universal",
	    "image", "verify", NULL };
	json_t *v;
	char *s;

	if (check_keys(o, "", keys, why, size) != 0)
		return NULL;
	if ((v = json_object_get(o, "archives")) != NULL &&
	    check_archives(v, why, size) != 0)
		return NULL;
	if (check_bool(o, "", "sbom", why, size) != 0 ||
	    check_bool(o, "", "universal", why, size) != 0)
		return NULL;
	if ((v = json_object_get(o, "image")) != NULL &&
	    check_image(v, why, size) != 0)
		return NULL;
	v = json_object_get(o, "verify");
	if (v != NULL && (!json_is_string(v) ||
	    (strcmp(json_string_value(v), "rebuild") != 0 &&
	    strcmp(json_string_value(v), "none") != 0))) {
		util_errorf(why, size, "verify: must be \"rebuild\" or \"none\"");
		return NULL;
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL)
		abort();
	return s;
}

json_t *
outputs_from_keys(json_t *root, char *why, size_t size)
{
	static const char *const keys[] = { "archives", "sbom", "image",
	    "verify", "universal" };
	json_t *o = json_object(), *v;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if ((v = json_object_get(root, keys[i])) != NULL)
			json_object_set(o, keys[i], v);
	v = json_object_get(o, "archives");
	if (json_is_true(v))
		json_object_set_new(o, "archives", json_object());
	else if (json_is_false(v))
		json_object_del(o, "archives");
	else if (v != NULL && !json_is_object(v)) {
		util_errorf(why, size, "archives: must be true, false or an "
		    "object");
		json_decref(o);
		return NULL;
	}
	return o;
}

bool
outputs_verify_rebuild(const char *outputs_json)
{
	json_t *o = outputs_json ? json_loads(outputs_json, 0, NULL) : NULL;
	const char *v = json_string_value(json_object_get(o, "verify"));
	bool yes = v != NULL && strcmp(v, "rebuild") == 0;

	json_decref(o);
	return yes;
}

bool
outputs_need_release(json_t *o)
{
	return json_object_get(o, "archives") != NULL ||
	    json_is_true(json_object_get(o, "sbom")) ||
	    json_is_true(json_object_get(o, "universal")) ||
	    json_object_get(o, "image") != NULL;
}
