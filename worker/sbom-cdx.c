/*
 * SBOMs (sbom.h) as CycloneDX 1.5.  The binary is metadata.component, a
 * component of type "application" with its SHA-256; each Go module is a
 * "library" component, main module first.  The binary depends on all of
 * them and the main module on every dep (Go does not record the graph).
 *
 * CycloneDX's hash algorithms would mislabel Go's h1: hash (see sbom.c),
 * so it is a property, "kiln:go:sum", as are the original of a replaced
 * module ("kiln:go:replaces", "PATH VERSION"), the Go version and each
 * build setting ("kiln:go:build:KEY") of the binary.  bom-refs are the
 * component's place ("module-0" the main module), unique whatever the
 * binary lists.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbom-int.h"
#include "xmalloc.h"

static void
add_property(json_t *props, const char *name, const char *value)
{
	json_t *p = json_object();

	json_object_set_new(p, "name", sbom_str(name));
	json_object_set_new(p, "value", sbom_str(value));
	json_array_append_new(props, p);
}

static void
set_properties(json_t *o, json_t *props)
{
	if (json_array_size(props) > 0)
		json_object_set_new(o, "properties", props);
	else
		json_decref(props);
}

static json_t *
cdx_head(const char *uuid, const char *when, const char *tool_version)
{
	json_t *doc = json_object(), *md = json_object(), *tools = json_object();
	json_t *comps = json_array(), *t = json_object();
	char *serial = xasprintf("urn:uuid:%s", uuid);

	json_object_set_new(doc, "bomFormat", json_string("CycloneDX"));
	json_object_set_new(doc, "specVersion", json_string("1.5"));
	json_object_set_new(doc, "serialNumber", json_string(serial));
	json_object_set_new(doc, "version", json_integer(1));
	json_object_set_new(md, "timestamp", json_string(when));
	json_object_set_new(t, "type", json_string("application"));
	json_object_set_new(t, "name", json_string(SBOM_TOOL));
	json_object_set_new(t, "version", sbom_str(tool_version));
	json_array_append_new(comps, t);
	json_object_set_new(tools, "components", comps);
	json_object_set_new(md, "tools", tools);
	json_object_set_new(doc, "metadata", md);
	free(serial);
	return doc;
}

static json_t *
cdx_file(const struct sbom_subject *s, const char *ref, const char *type)
{
	json_t *c = json_object(), *hashes = json_array(), *h = json_object();

	json_object_set_new(c, "type", json_string(type));
	json_object_set_new(c, "bom-ref", json_string(ref));
	json_object_set_new(c, "name", sbom_str(s->name));
	json_object_set_new(h, "alg", json_string("SHA-256"));
	json_object_set_new(h, "content", json_string(s->sha256));
	json_array_append_new(hashes, h);
	json_object_set_new(c, "hashes", hashes);
	return c;
}

static json_t *
cdx_module(const struct buildinfo_module *orig, const char *ref, int main)
{
	const struct buildinfo_module *m = sbom_effective(orig);
	json_t *c = json_object(), *props = json_array();
	char *purl = sbom_purl(m), *was = sbom_replaced(orig);

	json_object_set_new(c, "type",
	    json_string(main ? "application" : "library"));
	json_object_set_new(c, "bom-ref", json_string(ref));
	json_object_set_new(c, "name", sbom_str(m->path));
	if (m->version[0] != '\0')
		json_object_set_new(c, "version", sbom_str(m->version));
	if (purl != NULL)
		json_object_set_new(c, "purl", sbom_str(purl));
	if (m->sum[0] != '\0')
		add_property(props, "kiln:go:sum", m->sum);
	if (was != NULL)
		add_property(props, "kiln:go:replaces", was);
	set_properties(c, props);
	free(purl);
	free(was);
	return c;
}

static json_t *
cdx_dependency(const char *ref, json_t *on)
{
	json_t *d = json_object();

	json_object_set_new(d, "ref", json_string(ref));
	json_object_set_new(d, "dependsOn", on);
	return d;
}

char *
sbom_cyclonedx(const struct buildinfo *bi, const struct sbom_subject *s,
    const char *tool_version, int64_t created, char *err, size_t errsize)
{
	json_t *doc, *bin, *props, *comps, *deps, *binon, *mainon;
	char when[32], uuid[37], ref[48], *key;
	size_t i;

	if (sbom_check_subject(s, err, errsize) == -1 ||
	    sbom_time(when, created, err, errsize) == -1)
		return NULL;
	sbom_uuid(uuid, s, 1, "cyclonedx");
	doc = cdx_head(uuid, when, tool_version);
	bin = cdx_file(s, "binary", "application");
	props = json_array();
	if (s->target != NULL)
		add_property(props, "kiln:target", s->target);
	if (bi->go_version != NULL)
		add_property(props, "kiln:go:version", bi->go_version);
	if (bi->path != NULL)
		add_property(props, "kiln:go:path", bi->path);
	for (i = 0; i < bi->nsettings; i++) {
		key = xasprintf("kiln:go:build:%s", bi->settings_key[i]);
		add_property(props, key, bi->settings_value[i]);
		free(key);
	}
	set_properties(bin, props);
	json_object_set_new(json_object_get(doc, "metadata"), "component", bin);

	comps = json_array();
	binon = json_array();
	mainon = json_array();
	if (bi->main.path != NULL) {
		json_array_append_new(comps, cdx_module(&bi->main, "module-0",
		    1));
		json_array_append_new(binon, json_string("module-0"));
	}
	for (i = 0; i < bi->ndeps; i++) {
		snprintf(ref, sizeof ref, "module-%zu", i + 1);
		json_array_append_new(comps, cdx_module(&bi->deps[i], ref, 0));
		json_array_append_new(binon, json_string(ref));
		json_array_append_new(mainon, json_string(ref));
	}
	json_object_set_new(doc, "components", comps);
	deps = json_array();
	json_array_append_new(deps, cdx_dependency("binary", binon));
	if (bi->main.path != NULL)
		json_array_append_new(deps, cdx_dependency("module-0", mainon));
	else
		json_decref(mainon);
	/* Every component has its entry, an empty one when it is a leaf. */
	for (i = 0; i < bi->ndeps; i++) {
		snprintf(ref, sizeof ref, "module-%zu", i + 1);
		json_array_append_new(deps, cdx_dependency(ref, json_array()));
	}
	json_object_set_new(doc, "dependencies", deps);
	return sbom_dump(doc, err, errsize);
}

char *
sbom_cyclonedx_files(const char *name, const struct sbom_subject *files,
    size_t nfiles, const char *tool_version, int64_t created, char *err,
    size_t errsize)
{
	json_t *doc, *comps, *top, *props;
	char when[32], uuid[37], ref[48];
	size_t i;

	if (name == NULL || name[0] == '\0' || nfiles == 0) {
		snprintf(err, errsize, "SBOM: a document needs a name and at "
		    "least one file");
		return NULL;
	}
	for (i = 0; i < nfiles; i++)
		if (sbom_check_subject(&files[i], err, errsize) == -1)
			return NULL;
	if (sbom_time(when, created, err, errsize) == -1)
		return NULL;
	sbom_uuid(uuid, files, nfiles, "cyclonedx-files");
	doc = cdx_head(uuid, when, tool_version);
	/* The document's subject: the release the files make up. */
	top = json_object();
	json_object_set_new(top, "type", json_string("application"));
	json_object_set_new(top, "bom-ref", json_string("release"));
	json_object_set_new(top, "name", sbom_str(name));
	json_object_set_new(json_object_get(doc, "metadata"), "component", top);
	comps = json_array();
	for (i = 0; i < nfiles; i++) {
		snprintf(ref, sizeof ref, "file-%zu", i);
		top = cdx_file(&files[i], ref, "file");
		if (files[i].target != NULL) {
			props = json_array();
			add_property(props, "kiln:target", files[i].target);
			set_properties(top, props);
		}
		json_array_append_new(comps, top);
	}
	json_object_set_new(doc, "components", comps);
	return sbom_dump(doc, err, errsize);
}
