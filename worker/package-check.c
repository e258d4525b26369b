/*
 * The package spec (daemon/release.h) checked before anything is opened:
 * kilnd made it, but the worker writes only what a checked spec names,
 * so that a bug or a confused kilnd cannot make it write outside /out,
 * read past its inputs or run a format it does not know.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "outputs.h"
#include "package.h"
#include "util.h"

#define MAX_INPUTS 4096
#define MAX_OUTPUTS 4096

/* A file name as kilnd's store takes it: letters, digits, '.', '_',
 * '+', '-'; not first '.' or '-'; at most 128 bytes. */
static bool
file_ok(json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= 128 && n == json_string_length(v) &&
	    s[0] != '.' && s[0] != '-' &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+-") == n;
}

struct ck {
	json_t *names;
	size_t ninputs, nuniversal;
	char *err;
	size_t errsize;
};

static int
file_field(struct ck *c, json_t *o, const char *key, const char *where)
{
	json_t *v = json_object_get(o, key);

	if (!file_ok(v))
		return util_errorf(c->err, c->errsize, "spec: %s.%s: not a file "
		    "name", where, key);
	if (json_object_get(c->names, json_string_value(v)) != NULL)
		return util_errorf(c->err, c->errsize, "spec: %s.%s: '%s' is "
		    "written twice", where, key, json_string_value(v));
	json_object_set_new(c->names, json_string_value(v), json_true());
	return 0;
}

/* An array of indexes below max. */
static int
indexes(struct ck *c, json_t *v, size_t max, size_t minn, const char *where)
{
	json_t *x;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) < minn ||
	    json_array_size(v) > MAX_INPUTS)
		return util_errorf(c->err, c->errsize, "spec: %s: not an array "
		    "of indexes", where);
	json_array_foreach(v, i, x)
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    (size_t)json_integer_value(x) >= max)
			return util_errorf(c->err, c->errsize, "spec: %s[%zu]: "
			    "not an index of one", where, i);
	return 0;
}

static bool
strings_ok(json_t *v, size_t maxn, size_t maxlen)
{
	json_t *s;
	size_t i;

	if (v == NULL)
		return true;
	if (!json_is_array(v) || json_array_size(v) > maxn)
		return false;
	json_array_foreach(v, i, s)
		if (!json_is_string(s) || json_string_length(s) == 0 ||
		    json_string_length(s) > maxlen ||
		    strlen(json_string_value(s)) != json_string_length(s))
			return false;
	return true;
}

static int
check_inputs(struct ck *c, json_t *a)
{
	json_t *in;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) > MAX_INPUTS)
		return util_errorf(c->err, c->errsize, "spec: inputs: not an "
		    "array of at most %d", MAX_INPUTS);
	json_array_foreach(a, i, in) {
		const char *p = json_string_value(json_object_get(in, "path"));
		const char *h = json_string_value(json_object_get(in, "sha256"));

		if (!file_ok(json_object_get(in, "name")) ||
		    !json_is_string(json_object_get(in, "target")) ||
		    p == NULL || p[0] != '/' || h == NULL || strlen(h) != 64 ||
		    strspn(h, "0123456789abcdef") != 64)
			return util_errorf(c->err, c->errsize, "spec: inputs[%zu]: "
			    "needs target, name, an absolute path and sha256",
			    i);
	}
	c->ninputs = json_array_size(a);
	return 0;
}

static int
check_lists(struct ck *c, json_t *spec)
{
	json_t *e;
	size_t i;
	char w[64];

	json_array_foreach(json_object_get(spec, "universal"), i, e) {
		snprintf(w, sizeof w, "universal[%zu]", i);
		if (file_field(c, e, "file", w) != 0 ||
		    !file_ok(json_object_get(e, "name")) ||
		    indexes(c, json_object_get(e, "inputs"), c->ninputs, 2, w) !=
		    0 || json_array_size(json_object_get(e, "inputs")) != 2)
			return util_errorf(c->err, c->errsize, "spec: %s: needs "
			    "file, name and two inputs", w);
	}
	c->nuniversal = json_array_size(json_object_get(spec, "universal"));
	json_array_foreach(json_object_get(spec, "archives"), i, e) {
		const char *f = json_string_value(json_object_get(e, "format"));
		json_t *wrap = json_object_get(e, "wrap");

		snprintf(w, sizeof w, "archives[%zu]", i);
		if (file_field(c, e, "file", w) != 0 ||
		    indexes(c, json_object_get(e, "inputs"), c->ninputs, 0, w) ||
		    indexes(c, json_object_get(e, "universal"), c->nuniversal, 0,
		    w))
			return -1;
		if (f == NULL || !outputs_format_ok(f))
			return util_errorf(c->err, c->errsize, "spec: %s.format: "
			    "unknown", w);
		if (!json_is_null(wrap) && !file_ok(wrap))
			return util_errorf(c->err, c->errsize, "spec: %s.wrap: not "
			    "a directory name", w);
		if (!strings_ok(json_object_get(e, "files"), 64, 256))
			return util_errorf(c->err, c->errsize, "spec: %s.files: "
			    "not a list of globs", w);
	}
	json_array_foreach(json_object_get(spec, "sboms"), i, e) {
		json_t *x = json_object_get(e, "input");

		snprintf(w, sizeof w, "sboms[%zu]", i);
		if (file_field(c, e, "spdx", w) != 0 ||
		    file_field(c, e, "cyclonedx", w) != 0)
			return -1;
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    (size_t)json_integer_value(x) >= c->ninputs ||
		    !json_is_string(json_object_get(e, "target")))
			return util_errorf(c->err, c->errsize, "spec: %s: needs "
			    "target and input", w);
	}
	return 0;
}

static int
check_image(struct ck *c, json_t *im)
{
	json_t *p;
	size_t i;

	if (im == NULL)
		return 0;
	if (file_field(c, im, "file", "image") != 0 ||
	    file_field(c, im, "index_file", "image") != 0)
		return -1;
	if (!file_ok(json_object_get(im, "name")) ||
	    !strings_ok(json_object_get(im, "entrypoint"), 64, 1024) ||
	    !strings_ok(json_object_get(im, "cmd"), 64, 1024) ||
	    !strings_ok(json_object_get(im, "env"), 64, 1024) ||
	    !json_is_array(json_object_get(im, "platforms")) ||
	    json_array_size(json_object_get(im, "platforms")) == 0)
		return util_errorf(c->err, c->errsize, "spec: image: needs "
		    "file, name, platforms; entrypoint, cmd and env are lists "
		    "of strings");
	json_array_foreach(json_object_get(im, "platforms"), i, p) {
		char w[64];

		snprintf(w, sizeof w, "image.platforms[%zu]", i);
		if (!json_is_string(json_object_get(p, "target")) ||
		    indexes(c, json_object_get(p, "inputs"), c->ninputs, 1, w))
			return util_errorf(c->err, c->errsize, "spec: %s: needs "
			    "target and inputs", w);
	}
	return 0;
}

int
package_check(json_t *spec, char *err, size_t errsize)
{
	struct ck c = { .names = json_object(), .err = err,
	    .errsize = errsize };
	static const char *const lists[] = { "archives", "sboms",
	    "universal" };
	int rc = -1;

	if (!json_is_object(spec) ||
	    !json_is_integer(json_object_get(spec, "commit_time")) ||
	    json_integer_value(json_object_get(spec, "commit_time")) < 0) {
		util_errorf(err, errsize, "spec: not an object with commit_time");
		goto out;
	}
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(spec, lists[i]);
		if (!json_is_array(v) || json_array_size(v) > MAX_OUTPUTS) {
			util_errorf(err, errsize, "spec: %s: not an array",
			    lists[i]);
			goto out;
		}
	}
	{
		json_t *si = json_object_get(spec, "sbom_inputs"), *e;
		size_t i;

		if (si != NULL && (!json_is_array(si) ||
		    json_array_size(si) > 256)) {
			util_errorf(err, errsize, "spec: sbom_inputs: not an array");
			goto out;
		}
		json_array_foreach(si, i, e)
			if (!json_is_string(json_object_get(e, "name"))) {
				util_errorf(err, errsize, "spec: sbom_inputs[%zu]: "
				    "no name", i);
				goto out;
			}
	}
	if (check_inputs(&c, json_object_get(spec, "inputs")) != 0 ||
	    check_lists(&c, spec) != 0 ||
	    check_image(&c, json_object_get(spec, "image")) != 0)
		goto out;
	rc = 0;
out:
	json_decref(c.names);
	return rc;
}
