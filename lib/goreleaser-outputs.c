/*
 * What a .goreleaser.yaml ships beyond its builds, as kiln's outputs
 * (outputs.h): the first of its `archives`, `universal_binaries`,
 * `sboms`, and the first of its `kos` as an image.  What kiln does not do
 * the same way is noted, one message per key, never dropped silently:
 *   - archives: name_template, format(s), format_overrides, files (a
 *     glob, or an object's src), wrap_in_directory; other keys noted
 *     (builds and ids among them: an archive holds every binary of its
 *     target);
 *   - universal_binaries: the universal binary, with the thin ones kept
 *     (replace is noted);
 *   - sboms: kiln's own SPDX and CycloneDX documents from the binaries'
 *     Go build information (GoReleaser runs syft on the archives);
 *   - kos: an image FROM scratch with the binaries; a base_image of the
 *     usual static bases (chainguard static, distroless static) brings
 *     the CA bundle and zoneinfo they hold; repository becomes the
 *     registry to push to when it is HOST/NAME, tags its tags.
 * Without these keys, nothing beyond the builds: kiln makes no archive
 * a file does not ask for.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goreleaser-int.h"
#include "outputs.h"
#include "xmalloc.h"

/* A GoReleaser list of strings, or one string: as a JSON array. */
static json_t *
strings_of(const json_t *v)
{
	json_t *a = json_array(), *e;
	size_t i;

	if (json_is_string(v))
		json_array_append(a, (json_t *)v);
	else
		json_array_foreach(v, i, e)
			if (json_is_string(e))
				json_array_append(a, e);
	return a;
}

/* format / formats of o into dst["formats"], when given; GoReleaser's
 * short names (tgz, txz, tzst) as kiln writes them. */
static void
take_formats(json_t *dst, const json_t *o)
{
	static const char *const alias[][2] = { { "tgz", "tar.gz" },
	    { "txz", "tar.xz" }, { "tzst", "tar.zst" } };
	const json_t *f = json_object_get(o, "formats");
	json_t *a, *e;
	size_t i;

	if (f == NULL)
		f = json_object_get(o, "format");
	if (f == NULL)
		return;
	a = strings_of(f);
	json_array_foreach(a, i, e)
		for (size_t k = 0; k < ARRAY_SIZE(alias); k++)
			if (strcmp(json_string_value(e), alias[k][0]) == 0)
				json_array_set_new(a, i, json_string(alias[k][1]));
	json_object_set_new(dst, "formats", a);
}

static json_t *
archives_of(struct conv *c, const json_t *list)
{
	/* builds/ids (which builds' binaries an archive holds) are not
	 * used: kiln archives every binary a target's builds made. */
	static const char *const used[] = { "id", "name_template", "format",
	    "formats", "format_overrides", "files", "wrap_in_directory" };
	const json_t *a = json_is_array(list) ? json_array_get(list, 0) : list;
	json_t *out = json_object(), *v, *e, *files;
	const char *k;
	size_t i;
	char q[68];

	if (!json_is_object(a))
		return out;	/* an empty entry: the defaults */
	if (json_is_array(list) && json_array_size(list) > 1)
		gr_note(c, "archives[1...]: kiln makes the first archive "
		    "configuration only, ignored");
	json_object_foreach((json_t *)a, k, v)
		if (!IN(used, k))
			gr_note(c, "archives[0].%s: not supported by kiln, "
			    "ignored", gr_clean(q, sizeof q, k));
	if ((v = json_object_get(a, "name_template")) != NULL &&
	    json_is_string(v))
		json_object_set(out, "name_template", v);
	take_formats(out, a);
	if ((v = json_object_get(a, "format_overrides")) != NULL &&
	    json_is_array(v)) {
		json_t *ov = json_array();

		json_array_foreach(v, i, e) {
			json_t *o = json_object(), *g = json_object_get(e, "goos");

			if (json_is_string(g))
				json_object_set(o, "goos", g);
			take_formats(o, e);
			json_array_append_new(ov, o);
		}
		json_object_set_new(out, "format_overrides", ov);
	}
	if ((v = json_object_get(a, "files")) != NULL && json_is_array(v)) {
		files = json_array();
		json_array_foreach(v, i, e) {
			if (json_is_object(e) && json_is_string(json_object_get(e,
			    "src"))) {
				json_array_append(files, json_object_get(e,
				    "src"));
				if (json_object_size(e) > 1)
					gr_note(c, "archives[0].files[%zu]: only src "
					    "is used (dst, strip_parent, info "
					    "ignored)", i);
			} else if (json_is_string(e))
				json_array_append(files, e);
		}
		json_object_set_new(out, "files", files);
	}
	v = json_object_get(a, "wrap_in_directory");
	if (json_is_boolean(v) || json_is_string(v))
		json_object_set(out, "wrap_in_directory", v);
	return out;
}

/* The static bases hold a CA bundle and zoneinfo; scratch none. */
static bool
static_base(const char *b)
{
	return strstr(b, "chainguard/static") != NULL ||
	    strstr(b, "distroless/static") != NULL;
}

static json_t *
image_of(struct conv *c, const json_t *list)
{
	static const char *const used[] = { "id", "build", "repository",
	    "base_image", "tags", "platforms", "main", "ldflags", "flags",
	    "env" };
	const json_t *k0 = json_array_get(list, 0), *v;
	const char *repo, *base, *name, *key;
	json_t *im = json_object();
	char q[68];

	json_object_foreach((json_t *)k0, key, v)
		if (!IN(used, key))
			gr_note(c, "kos[0].%s: not supported by kiln, ignored",
			    gr_clean(q, sizeof q, key));
	if (json_array_size(list) > 1)
		gr_note(c, "kos[1...]: kiln makes one image, ignored");
	repo = json_string_value(json_object_get(k0, "repository"));
	base = json_string_value(json_object_get(k0, "base_image"));
	name = repo ? strrchr(repo, '/') : NULL;
	name = name ? name + 1 : repo;
	json_object_set_new(im, "name", json_string(name && *name ? name :
	    "app"));
	if (repo != NULL && strchr(repo, '/') != NULL)
		json_object_set_new(im, "registry", json_string(repo));
	if ((v = json_object_get(k0, "tags")) != NULL) {
		json_t *tags = strings_of(v), *kept = json_array(), *t;
		size_t i;

		/* Templates in tags are not expanded by kiln. */
		json_array_foreach(tags, i, t)
			if (strstr(json_string_value(t), "{{") == NULL)
				json_array_append(kept, t);
			else
				gr_note(c, "kos[0].tags[%zu]: a template, not "
				    "expanded by kiln, ignored", i);
		json_decref(tags);
		json_object_set_new(im, "tags", kept);
	}
	if (base == NULL || static_base(base)) {
		json_object_set_new(im, "ca_certs", json_true());
		json_object_set_new(im, "tzdata", json_true());
	} else if (strcmp(base, "scratch") != 0)
		gr_note(c, "kos[0].base_image: '%s': kiln builds images from "
		    "scratch (with the CA bundle and zoneinfo of a static "
		    "base), not from another image; ignored",
		    gr_clean(q, sizeof q, base));
	return im;
}

char *
gr_outputs(struct conv *c, const json_t *doc)
{
	json_t *out = json_object(), *v;
	char why[256], *text = NULL;

	if ((v = json_object_get(doc, "archives")) != NULL &&
	    !json_is_null(v))
		json_object_set_new(out, "archives", archives_of(c, v));
	if ((v = json_object_get(doc, "universal_binaries")) != NULL &&
	    !json_is_null(v)) {
		json_object_set_new(out, "universal", json_true());
		if (json_is_true(json_object_get(json_array_get(v, 0),
		    "replace")))
			gr_note(c, "universal_binaries[0].replace: kiln keeps the "
			    "thin darwin binaries too, ignored");
	}
	if ((v = json_object_get(doc, "sboms")) != NULL && !json_is_null(v))
		json_object_set_new(out, "sbom", json_true());
	if ((v = json_object_get(doc, "kos")) != NULL && json_is_array(v) &&
	    json_array_size(v) > 0)
		json_object_set_new(out, "image", image_of(c, v));
	if (json_object_size(out) > 0 &&
	    (text = outputs_canonical(out, why, sizeof why)) == NULL)
		gr_note(c, "release outputs ignored: %s", why);
	json_decref(out);
	return text;
}
