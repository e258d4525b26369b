/*
 * The release row's work order (release.h): every output's file name and
 * inputs, decided by kilnd.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outputs.h"
#include "release.h"
#include "target.h"
#include "util.h"
#include "xmalloc.h"

struct spec {
	json_t *root, *inputs, *names;	/* names: every output file, once */
	const struct job *job;
	const struct template_vars *vars;
	char *why;
	size_t whysize;
};

/* An output file name: a store name (store.h), used once in the spec. */
static int
claim_name(struct spec *sp, const char *name, const char *what)
{
	if (!store_name_ok(name))
		return util_errorf(sp->why, sp->whysize, "%s: '%.80s' is not a "
		    "file name kiln stores (letters, digits, '.', '_', '+', "
		    "'-'; not first '.' or '-')", what, name);
	if (json_object_get(sp->names, name) != NULL)
		return util_errorf(sp->why, sp->whysize, "%s: '%.80s' is made "
		    "twice; name templates must tell the targets apart", what,
		    name);
	json_object_set_new(sp->names, name, json_true());
	return 0;
}

/* The indexes into "inputs" of one target's artifacts. */
static json_t *
inputs_of(struct spec *sp, const char *target)
{
	json_t *a = json_array(), *in;
	size_t i;

	json_array_foreach(sp->inputs, i, in)
		if (strcmp(json_string_value(json_object_get(in, "target")),
		    target) == 0)
			json_array_append_new(a, json_integer((json_int_t)i));
	return a;
}

/* GoReleaser's default archive name: project_version_os_arch[vARM]. */
static char *
base_name(struct spec *sp, const struct target *t)
{
	const char *arm = target_goarm(t);

	return xasprintf("%s_%s_%s_%s%s%s", sp->vars->project_name,
	    sp->vars->version, t->os, t->arch, arm[0] ? "v" : "", arm);
}

/* A template of the outputs expanded for one target (os, arch, arm). */
static char *
expand_for(struct spec *sp, const char *tmpl, const struct target *t,
    const char *field)
{
	struct template_vars v = *sp->vars;
	char err[256], *s;

	v.os = t->os;
	v.arch = t->arch;
	v.arm = target_goarm(t);
	v.amd64 = target_goamd64(t);
	if ((s = template_expand(tmpl, &v, err, sizeof err)) == NULL)
		util_errorf(sp->why, sp->whysize, "%s: %s", field, err);
	return s;
}

static void
add_input(struct spec *sp, const char *target, const struct artifact *a,
    const struct store *store)
{
	char *path = store_blob_path(store, a->sha256);

	json_array_append_new(sp->inputs, json_pack("{s:s, s:s, s:s, s:s}",
	    "target", target, "name", a->name, "path", path, "sha256",
	    a->sha256));
	free(path);
}

/* The archive formats of a target: an override for its os, or the
 * formats, or tar.gz (zip for windows). */
static json_t *
formats_for(json_t *arch, const struct target *t)
{
	json_t *ov, *e, *f;
	size_t i;

	ov = json_object_get(arch, "format_overrides");
	json_array_foreach(ov, i, e)
		if (strcmp(json_string_value(json_object_get(e, "goos")),
		    t->os) == 0)
			return json_incref(json_object_get(e, "formats"));
	if ((f = json_object_get(arch, "formats")) != NULL)
		return json_incref(f);
	return json_pack("[s]", strcmp(t->os, "windows") == 0 ? "zip" :
	    "tar.gz");
}

/* One archive per format of target t holding `inputs` (and `universal`). */
static int
add_archives(struct spec *sp, json_t *arch, const struct target *t,
    json_t *inputs, json_t *universal)
{
	json_t *tmpl = json_object_get(arch, "name_template");
	json_t *wrap = json_object_get(arch, "wrap_in_directory");
	json_t *formats, *f, *files = json_object_get(arch, "files");
	char *base, *dir = NULL;
	size_t i;
	int rc = -1;

	base = tmpl != NULL ? expand_for(sp, json_string_value(tmpl), t,
	    "archives.name_template") : base_name(sp, t);
	if (base == NULL)
		return -1;
	if (json_is_true(wrap))
		dir = xstrdup(base);
	else if (json_is_string(wrap) && (dir = expand_for(sp,
	    json_string_value(wrap), t, "archives.wrap_in_directory")) == NULL)
		goto out;
	if (dir != NULL && !store_name_ok(dir)) {
		util_errorf(sp->why, sp->whysize, "archives.wrap_in_directory: "
		    "'%.80s' is not a plain directory name", dir);
		goto out;
	}
	formats = formats_for(arch, t);
	json_array_foreach(formats, i, f) {
		const char *fmt = json_string_value(f);
		char *file = strcmp(fmt, "binary") == 0 ? xstrdup(base) :
		    xasprintf("%s.%s", base, fmt);
		json_t *o;

		if (claim_name(sp, file, "archives") != 0) {
			free(file);
			json_decref(formats);
			goto out;
		}
		o = json_pack("{s:s, s:s, s:O, s:O}", "file", file, "format",
		    fmt, "inputs", inputs, "universal", universal);
		json_object_set_new(o, "wrap", dir ? json_string(dir) :
		    json_null());
		json_object_set_new(o, "files", files ? json_incref(files) :
		    json_pack("[sss]", "LICENSE*", "README*", "CHANGELOG*"));
		json_array_append_new(json_object_get(sp->root, "archives"), o);
		free(file);
	}
	json_decref(formats);
	rc = 0;
out:
	free(base);
	free(dir);
	return rc;
}

/* The universal binaries: one per binary name both darwin builds made. */
static int
add_universal(struct spec *sp, json_t *out)
{
	json_t *amd = inputs_of(sp, "darwin/amd64");
	json_t *arm = inputs_of(sp, "darwin/arm64"), *x, *y;
	size_t i, j;
	int rc = -1;

	json_array_foreach(amd, i, x) {
		json_t *a = json_array_get(sp->inputs,
		    (size_t)json_integer_value(x));
		const char *name = json_string_value(json_object_get(a, "name"));

		json_array_foreach(arm, j, y) {
			json_t *b = json_array_get(sp->inputs,
			    (size_t)json_integer_value(y));
			char *file;

			if (strcmp(name, json_string_value(json_object_get(b,
			    "name"))) != 0)
				continue;
			file = xasprintf("%s_darwin_all", name);
			if (claim_name(sp, file, "universal") != 0) {
				free(file);
				goto out;
			}
			json_array_append_new(out, json_pack("{s:s, s:s, s:[O,O]}",
			    "file", file, "name", name, "inputs", x, y));
			free(file);
		}
	}
	if (json_array_size(out) == 0) {
		util_errorf(sp->why, sp->whysize, "darwin/universal: darwin/amd64 "
		    "and darwin/arm64 built no file of the same name to merge");
		goto out;
	}
	rc = 0;
out:
	json_decref(amd);
	json_decref(arm);
	return rc;
}

static int
add_sboms(struct spec *sp, const struct target *t, json_t *inputs)
{
	char *base = base_name(sp, t);
	size_t i, n = json_array_size(inputs);
	json_t *x;
	int rc = -1;

	json_array_foreach(inputs, i, x) {
		json_t *in = json_array_get(sp->inputs,
		    (size_t)json_integer_value(x));
		const char *name = json_string_value(json_object_get(in, "name"));
		char *stem = n > 1 ? xasprintf("%s_%s", base, name) :
		    xstrdup(base);
		char *spdx = xasprintf("%s.spdx.json", stem);
		char *cdx = xasprintf("%s.cdx.json", stem);

		free(stem);
		if (claim_name(sp, spdx, "sbom") != 0 ||
		    claim_name(sp, cdx, "sbom") != 0) {
			free(spdx);
			free(cdx);
			goto out;
		}
		json_array_append_new(json_object_get(sp->root, "sboms"),
		    json_pack("{s:s, s:s, s:s, s:O}", "spdx", spdx, "cyclonedx",
		    cdx, "target", t->name, "input", x));
		free(spdx);
		free(cdx);
	}
	rc = 0;
out:
	free(base);
	return rc;
}

static int
add_image(struct spec *sp, json_t *image)
{
	static const char *const copy[] = { "name", "entrypoint", "cmd", "env",
	    "workdir", "user", NULL };
	json_t *o = json_object(), *plats = json_array();
	char *file;

	for (size_t i = 0; copy[i] != NULL; i++)
		if (json_object_get(image, copy[i]) != NULL)
			json_object_set(o, copy[i], json_object_get(image,
			    copy[i]));
	json_object_set_new(o, "ca_certs",
	    json_boolean(json_is_true(json_object_get(image, "ca_certs"))));
	json_object_set_new(o, "tzdata",
	    json_boolean(json_is_true(json_object_get(image, "tzdata"))));
	for (size_t i = 0; i < sp->job->ntargets; i++) {
		const char *t = sp->job->targets[i].target;

		if (strncmp(t, "linux/", 6) == 0)
			json_array_append_new(plats, json_pack("{s:s, s:o}",
			    "target", t, "inputs", inputs_of(sp, t)));
	}
	json_object_set_new(o, "platforms", plats);
	json_object_set_new(sp->root, "image", o);
	if (json_array_size(plats) == 0)
		return util_errorf(sp->why, sp->whysize, "image: the job builds "
		    "no linux target");
	file = xasprintf("%s_%s.oci.tar", json_string_value(json_object_get(
	    image, "name")), sp->vars->version);
	json_object_set_new(o, "file", json_string(file));
	if (claim_name(sp, file, "image") != 0) {
		free(file);
		return -1;
	}
	free(file);
	/* The image index alone: its sha256 is the index's digest, so that
	 * SHA256SUMS and the provenance name the image as registries do. */
	file = xasprintf("%s_%s.oci-index.json", json_string_value(
	    json_object_get(image, "name")), sp->vars->version);
	json_object_set_new(o, "index_file", json_string(file));
	if (claim_name(sp, file, "image") != 0) {
		free(file);
		return -1;
	}
	free(file);
	return 0;
}

char *
release_spec(const struct job *job, const char *recipe,
    const struct template_vars *vars, const struct store *store, char *why,
    size_t whysize)
{
	struct spec sp = { .job = job, .vars = vars, .why = why,
	    .whysize = whysize };
	json_t *out = NULL, *arch, *uni = json_array();
	char *text = NULL;

	if (job->outputs == NULL ||
	    (out = json_loads(job->outputs, 0, NULL)) == NULL) {
		util_errorf(why, whysize, "the job's outputs cannot be read");
		json_decref(uni);
		return NULL;
	}
	sp.root = json_pack("{s:I, s:[], s:[], s:[], s:[]}", "commit_time",
	    (json_int_t)vars->commit_time, "inputs", "archives", "sboms",
	    "universal");
	sp.inputs = json_object_get(sp.root, "inputs");
	sp.names = json_object();
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *jt = &job->targets[i];

		if (strcmp(jt->target, OUTPUTS_RELEASE_TARGET) == 0)
			continue;
		for (size_t a = 0; a < jt->nartifacts; a++)
			if (jt->artifacts[a].sha256 != NULL)
				add_input(&sp, jt->target, &jt->artifacts[a],
				    store);
	}
	if (json_is_true(json_object_get(out, "universal")) &&
	    add_universal(&sp, uni) != 0)
		goto out;
	json_object_set(sp.root, "universal", uni);
	arch = json_object_get(out, "archives");
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *jt = &job->targets[i];
		struct target t;
		char err[160];
		json_t *ins;
		int rc = 0;

		if (target_parse(&t, jt->target, err, sizeof err) != 0)
			continue;
		ins = inputs_of(&sp, t.name);
		if (arch != NULL) {
			json_t *none = json_array();
			rc = add_archives(&sp, arch, &t, ins, none);
			json_decref(none);
		}
		if (rc == 0 && json_is_true(json_object_get(out, "sbom")))
			rc = add_sboms(&sp, &t, ins);
		json_decref(ins);
		if (rc != 0)
			goto out;
	}
	if (arch != NULL && json_array_size(uni) > 0) {
		/* The universal binaries' own archive, os darwin, arch all. */
		struct target t = { .name = "darwin/all", .os = "darwin",
		    .arch = "all" };
		json_t *idx = json_array(), *none = json_array();
		int rc;

		for (size_t i = 0; i < json_array_size(uni); i++)
			json_array_append_new(idx, json_integer((json_int_t)i));
		rc = add_archives(&sp, arch, &t, none, idx);
		json_decref(idx);
		json_decref(none);
		if (rc != 0)
			goto out;
	}
	if (json_object_get(out, "image") != NULL &&
	    add_image(&sp, json_object_get(out, "image")) != 0)
		goto out;
	/* A command recipe's declared inputs: what its files' SBOMs list
	 * (a Go binary's modules are in the binary). */
	if (json_is_true(json_object_get(out, "sbom")) && recipe != NULL) {
		json_t *r = json_loads(recipe, 0, NULL);
		json_t *in = json_object_get(r, "inputs");

		if (json_is_array(in))
			json_object_set(sp.root, "sbom_inputs", in);
		json_decref(r);
	}
	if ((text = json_dumps(sp.root, JSON_COMPACT)) == NULL)
		abort();
out:
	json_decref(out);
	json_decref(uni);
	json_decref(sp.root);
	json_decref(sp.names);
	return text;
}
