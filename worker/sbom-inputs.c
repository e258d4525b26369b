/*
 * A command recipe's declared inputs (its "inputs": what the build made
 * its files from, lib/validate.c) added to the files-only SBOM
 * documents of sbom.c and sbom-cdx.c: one package or component per
 * input, and every file depending on each.  A Go binary's documents
 * need none of this: its modules are in the binary.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sbom.h"
#include "util.h"

static json_t *
load(const char *doc, char *err, size_t errsize)
{
	json_t *d = json_loads(doc, 0, NULL);

	if (d == NULL)
		util_errorf(err, errsize, "SBOM: the document cannot be read "
		    "back");
	return d;
}

static char *
dump(json_t *d, char *err, size_t errsize)
{
	char *s = json_dumps(d, JSON_INDENT(2));

	json_decref(d);
	if (s == NULL)
		util_errorf(err, errsize, "SBOM: cannot encode the document");
	return s;
}

static const char *
field(json_t *in, const char *k)
{
	return json_string_value(json_object_get(in, k));
}

char *
sbom_spdx_add_inputs(const char *doc, json_t *inputs, char *err,
    size_t errsize)
{
	json_t *d = load(doc, err, errsize), *in, *p, *pkgs, *rels, *files;
	char id[48];
	size_t i, j;

	if (d == NULL)
		return NULL;
	pkgs = json_object_get(d, "packages");
	rels = json_object_get(d, "relationships");
	files = json_array();
	json_array_foreach(pkgs, j, p)
		json_array_append(files, json_object_get(p, "SPDXID"));
	json_array_foreach(inputs, i, in) {
		snprintf(id, sizeof id, "SPDXRef-Input-%zu", i);
		p = json_pack("{s:s, s:s, s:s, s:b}", "SPDXID", id, "name",
		    field(in, "name"), "downloadLocation", "NOASSERTION",
		    "filesAnalyzed", 0);
		if (field(in, "version") != NULL)
			json_object_set_new(p, "versionInfo",
			    json_string(field(in, "version")));
		if (field(in, "license") != NULL)
			json_object_set_new(p, "licenseDeclared",
			    json_string(field(in, "license")));
		if (field(in, "purl") != NULL)
			json_object_set_new(p, "externalRefs", json_pack("[{s:s, "
			    "s:s, s:s}]", "referenceCategory", "PACKAGE-MANAGER",
			    "referenceType", "purl", "referenceLocator",
			    field(in, "purl")));
		json_object_set_new(p, "comment", json_string("Declared by the "
		    "build's recipe as an input of its files."));
		json_array_append_new(pkgs, p);
		for (j = 0; j < json_array_size(files); j++)
			json_array_append_new(rels, json_pack("{s:O, s:s, s:s}",
			    "spdxElementId", json_array_get(files, j),
			    "relationshipType", "DEPENDS_ON",
			    "relatedSpdxElement", id));
	}
	json_decref(files);
	return dump(d, err, errsize);
}

char *
sbom_cyclonedx_add_inputs(const char *doc, json_t *inputs, char *err,
    size_t errsize)
{
	json_t *d = load(doc, err, errsize), *in, *c, *comps, *deps, *refs;
	char ref[48];
	size_t i, j;

	if (d == NULL)
		return NULL;
	comps = json_object_get(d, "components");
	refs = json_array();
	json_array_foreach(inputs, i, in) {
		snprintf(ref, sizeof ref, "input-%zu", i);
		c = json_pack("{s:s, s:s, s:s}", "type", "library", "bom-ref",
		    ref, "name", field(in, "name"));
		if (field(in, "version") != NULL)
			json_object_set_new(c, "version",
			    json_string(field(in, "version")));
		if (field(in, "purl") != NULL)
			json_object_set_new(c, "purl",
			    json_string(field(in, "purl")));
		if (field(in, "license") != NULL)
			json_object_set_new(c, "licenses", json_pack("[{s:s}]",
			    "expression", field(in, "license")));
		json_array_append_new(refs, json_string(ref));
		json_array_append_new(comps, c);
	}
	deps = json_array();
	json_array_foreach(comps, j, c) {
		const char *r = json_string_value(json_object_get(c, "bom-ref"));

		if (r != NULL && strncmp(r, "input-", 6) != 0)
			json_array_append_new(deps, json_pack("{s:s, s:O}", "ref",
			    r, "dependsOn", refs));
	}
	json_array_foreach(refs, j, c)
		json_array_append_new(deps, json_pack("{s:O, s:[]}", "ref", c,
		    "dependsOn"));
	json_object_set_new(d, "dependencies", deps);
	json_decref(refs);
	return dump(d, err, errsize);
}
