/*
 * SBOMs (sbom.h): the helpers both formats share, and SPDX 2.3.
 *
 * SPDX has a package for the binary (its SHA-256, the target in its
 * comment) and one per Go module, main module first, then the deps in
 * the binary's order.  The binary CONTAINS each module (they are linked
 * into it) and the main module DEPENDS_ON each dep (Go lists direct and
 * indirect ones alike, so no finer graph is claimed).
 *
 * Go's h1: hash is the SHA-256 of a list of the module's files with
 * their own SHA-256s (golang.org/x/mod/sumdb/dirhash), not of one file
 * nor of the zip: SPDX's checksum algorithms would mislabel it.  It goes
 * in an external reference of category OTHER, type "go-module-sum",
 * where a tool can read it and no one mistakes it for a file's digest,
 * and the package's comment says what it is.  Build settings and the Go
 * version are annotations of the binary's package.
 *
 * Files are SPDX packages (filesAnalyzed false, purpose FILE), not SPDX
 * files: an SPDX 2.3 file must carry a SHA-1, which kiln does not compute.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sbuf.h"
#include "sbom-int.h"
#include "utf8.h"
#include "xmalloc.h"

json_t *
sbom_str(const char *s)
{
	struct sbuf b = { 0 };
	json_t *j;

	if (s == NULL)
		s = "";
	utf8_sanitize(&b, s, strlen(s));
	j = json_stringn(b.p ? b.p : "", b.len);
	sbuf_free(&b);
	return j;
}

int
sbom_check_subject(const struct sbom_subject *s, char *err, size_t errsize)
{
	size_t i;

	if (s == NULL || s->name == NULL || s->name[0] == '\0') {
		snprintf(err, errsize, "SBOM: an artifact without a name");
		return -1;
	}
	if (s->sha256 == NULL || strlen(s->sha256) != 64)
		goto bad;
	for (i = 0; i < 64; i++)
		if (!((s->sha256[i] >= '0' && s->sha256[i] <= '9') ||
		    (s->sha256[i] >= 'a' && s->sha256[i] <= 'f')))
			goto bad;
	return 0;
bad:
	snprintf(err, errsize, "SBOM: the SHA-256 of an artifact is not 64 "
	    "lowercase hex digits");
	return -1;
}

int
sbom_time(char out[32], int64_t t, char *err, size_t errsize)
{
	struct tm tm;
	time_t tt = (time_t)t;

	/* Year 1970 to 9999: what RFC 3339's four-digit year can say. */
	if (t < 0 || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL) {
		snprintf(err, errsize, "SBOM: creation time %lld out of range",
		    (long long)t);
		return -1;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return 0;
}

static unsigned
hexdigit(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

void
sbom_uuid(char out[37], const struct sbom_subject *files, size_t n,
    const char *kind)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char u[16] = { 0 };
	size_t i, k, j = 0;

	for (i = 0; i < n; i++)
		for (k = 0; k < 16; k++)
			u[k] ^= (unsigned char)(hexdigit(files[i].sha256[2 * k]) << 4 |
			    hexdigit(files[i].sha256[2 * k + 1]));
	/* The kind of document, so that its SPDX and CycloneDX ids differ. */
	for (k = 0; kind[k] != '\0'; k++)
		u[k % 16] ^= (unsigned char)kind[k];
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x80);	/* version 8 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);	/* RFC variant */
	for (k = 0; k < 16; k++) {
		if (k == 4 || k == 6 || k == 8 || k == 10)
			out[j++] = '-';
		out[j++] = hex[u[k] >> 4];
		out[j++] = hex[u[k] & 15];
	}
	out[j] = '\0';
}

const struct buildinfo_module *
sbom_effective(const struct buildinfo_module *m)
{
	return m->replace != NULL ? m->replace : m;
}

/* purl's percent-encoding: everything but unreserved characters. */
static void
purl_escape(struct sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		    c == '_' || c == '~') {
			sbuf_addc(b, (char)c);
		} else {
			sbuf_addc(b, '%');
			sbuf_addc(b, hex[c >> 4]);
			sbuf_addc(b, hex[c & 15]);
		}
	}
}

char *
sbom_purl(const struct buildinfo_module *m)
{
	struct sbuf b = { 0 };
	const char *p = m->path, *slash;

	if (p == NULL || p[0] == '\0' || p[0] == '/' || p[0] == '.')
		return NULL;
	sbuf_adds(&b, "pkg:golang/");
	/* Each path segment on its own: the slashes stay. */
	for (;;) {
		slash = strchr(p, '/');
		purl_escape(&b, p, slash ? (size_t)(slash - p) : strlen(p));
		if (slash == NULL)
			break;
		sbuf_addc(&b, '/');
		p = slash + 1;
	}
	if (m->version != NULL && m->version[0] != '\0' &&
	    strcmp(m->version, "(devel)") != 0) {
		sbuf_addc(&b, '@');
		purl_escape(&b, m->version, strlen(m->version));
	}
	return sbuf_steal(&b, NULL);
}

char *
sbom_replaced(const struct buildinfo_module *m)
{
	if (m->replace == NULL)
		return NULL;
	return xasprintf("%s %s", m->path, m->version);
}

char *
sbom_dump(json_t *doc, char *err, size_t errsize)
{
	char *text, *out;

	if (doc == NULL) {
		snprintf(err, errsize, "SBOM: could not build the document");
		return NULL;
	}
	text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	if (text == NULL) {
		snprintf(err, errsize, "SBOM: could not write the document");
		return NULL;
	}
	out = xasprintf("%s\n", text);
	free(text);
	return out;
}

/* The document's head, common to both SPDX documents. */
static json_t *
spdx_head(const char *name, const char *uuid, const char *when,
    const char *tool_version)
{
	json_t *doc = json_object(), *ci = json_object(), *cr = json_array();
	char *tool;

	json_object_set_new(doc, "spdxVersion", json_string("SPDX-2.3"));
	json_object_set_new(doc, "dataLicense", json_string("CC0-1.0"));
	json_object_set_new(doc, "SPDXID", json_string("SPDXRef-DOCUMENT"));
	json_object_set_new(doc, "name", sbom_str(name));
	tool = xasprintf("urn:uuid:%s", uuid);
	json_object_set_new(doc, "documentNamespace", json_string(tool));
	free(tool);
	tool = xasprintf("Tool: " SBOM_TOOL "-%s", tool_version);
	json_array_append_new(cr, sbom_str(tool));
	free(tool);
	json_object_set_new(ci, "created", json_string(when));
	json_object_set_new(ci, "creators", cr);
	json_object_set_new(doc, "creationInfo", ci);
	return doc;
}

static json_t *
spdx_rel(const char *a, const char *type, const char *b)
{
	json_t *r = json_object();

	json_object_set_new(r, "spdxElementId", json_string(a));
	json_object_set_new(r, "relationshipType", json_string(type));
	json_object_set_new(r, "relatedSpdxElement", json_string(b));
	return r;
}

/* A package for file s, SPDXID id. */
static json_t *
spdx_file_package(const struct sbom_subject *s, const char *id)
{
	json_t *p = json_object(), *ck = json_array(), *c = json_object();
	char *comment;

	json_object_set_new(p, "SPDXID", json_string(id));
	json_object_set_new(p, "name", sbom_str(s->name));
	json_object_set_new(p, "downloadLocation", json_string("NOASSERTION"));
	json_object_set_new(p, "filesAnalyzed", json_false());
	json_object_set_new(c, "algorithm", json_string("SHA256"));
	json_object_set_new(c, "checksumValue", json_string(s->sha256));
	json_array_append_new(ck, c);
	json_object_set_new(p, "checksums", ck);
	json_object_set_new(p, "primaryPackagePurpose", json_string("FILE"));
	if (s->target != NULL) {
		comment = xasprintf("Built for %s.", s->target);
		json_object_set_new(p, "comment", sbom_str(comment));
		free(comment);
	}
	return p;
}

static json_t *
spdx_annotation(const char *when, const char *tool_version, const char *text)
{
	json_t *a = json_object();
	char *who = xasprintf("Tool: " SBOM_TOOL "-%s", tool_version);

	json_object_set_new(a, "annotationType", json_string("OTHER"));
	json_object_set_new(a, "annotator", sbom_str(who));
	json_object_set_new(a, "annotationDate", json_string(when));
	json_object_set_new(a, "comment", sbom_str(text));
	free(who);
	return a;
}

static json_t *
spdx_module(const struct buildinfo_module *orig, const char *id, int main)
{
	const struct buildinfo_module *m = sbom_effective(orig);
	json_t *p = json_object(), *refs = json_array(), *r;
	struct sbuf c = { 0 };
	char *purl = sbom_purl(m), *was = sbom_replaced(orig);

	json_object_set_new(p, "SPDXID", json_string(id));
	json_object_set_new(p, "name", sbom_str(m->path));
	if (m->version[0] != '\0')
		json_object_set_new(p, "versionInfo", sbom_str(m->version));
	json_object_set_new(p, "downloadLocation", json_string("NOASSERTION"));
	json_object_set_new(p, "filesAnalyzed", json_false());
	json_object_set_new(p, "primaryPackagePurpose",
	    json_string(main ? "APPLICATION" : "LIBRARY"));
	if (purl != NULL) {
		r = json_object();
		json_object_set_new(r, "referenceCategory",
		    json_string("PACKAGE-MANAGER"));
		json_object_set_new(r, "referenceType", json_string("purl"));
		json_object_set_new(r, "referenceLocator", sbom_str(purl));
		json_array_append_new(refs, r);
	}
	sbuf_adds(&c, "Go module");
	if (m->sum[0] != '\0') {
		r = json_object();
		json_object_set_new(r, "referenceCategory", json_string("OTHER"));
		json_object_set_new(r, "referenceType",
		    json_string("go-module-sum"));
		json_object_set_new(r, "referenceLocator", sbom_str(m->sum));
		json_array_append_new(refs, r);
		sbuf_adds(&c, "; go-module-sum is its go.sum hash (h1:, a "
		    "SHA-256 over its files' SHA-256s, not of a file)");
	}
	if (was != NULL) {
		sbuf_adds(&c, "; replaces ");
		sbuf_adds(&c, was);
	}
	sbuf_addc(&c, '.');
	json_object_set_new(p, "comment", sbom_str(c.p));
	if (json_array_size(refs) > 0)
		json_object_set_new(p, "externalRefs", refs);
	else
		json_decref(refs);
	sbuf_free(&c);
	free(purl);
	free(was);
	return p;
}

char *
sbom_spdx(const struct buildinfo *bi, const struct sbom_subject *s,
    const char *tool_version, int64_t created, char *err, size_t errsize)
{
	json_t *doc, *pkgs, *rels, *bin, *ann;
	char when[32], uuid[37], id[48], *text;
	size_t i;

	if (sbom_check_subject(s, err, errsize) == -1 ||
	    sbom_time(when, created, err, errsize) == -1)
		return NULL;
	sbom_uuid(uuid, s, 1, "spdx");
	doc = spdx_head(s->name, uuid, when, tool_version);
	pkgs = json_array();
	rels = json_array();
	bin = spdx_file_package(s, "SPDXRef-Binary");
	json_object_set_new(bin, "primaryPackagePurpose",
	    json_string("APPLICATION"));
	ann = json_array();
	if (bi->go_version != NULL) {
		text = xasprintf("Go build information: go version %s",
		    bi->go_version);
		json_array_append_new(ann, spdx_annotation(when, tool_version,
		    text));
		free(text);
	}
	for (i = 0; i < bi->nsettings; i++) {
		text = xasprintf("Go build setting: %s=%s",
		    bi->settings_key[i], bi->settings_value[i]);
		json_array_append_new(ann, spdx_annotation(when, tool_version,
		    text));
		free(text);
	}
	if (json_array_size(ann) > 0)
		json_object_set_new(bin, "annotations", ann);
	else
		json_decref(ann);
	json_array_append_new(pkgs, bin);
	json_array_append_new(rels, spdx_rel("SPDXRef-DOCUMENT", "DESCRIBES",
	    "SPDXRef-Binary"));
	if (bi->main.path != NULL) {
		json_array_append_new(pkgs, spdx_module(&bi->main,
		    "SPDXRef-Module-0", 1));
		json_array_append_new(rels, spdx_rel("SPDXRef-Binary",
		    "CONTAINS", "SPDXRef-Module-0"));
	}
	for (i = 0; i < bi->ndeps; i++) {
		snprintf(id, sizeof id, "SPDXRef-Module-%zu", i + 1);
		json_array_append_new(pkgs, spdx_module(&bi->deps[i], id, 0));
		json_array_append_new(rels, spdx_rel("SPDXRef-Binary",
		    "CONTAINS", id));
		if (bi->main.path != NULL)
			json_array_append_new(rels, spdx_rel("SPDXRef-Module-0",
			    "DEPENDS_ON", id));
	}
	json_object_set_new(doc, "packages", pkgs);
	json_object_set_new(doc, "relationships", rels);
	return sbom_dump(doc, err, errsize);
}

char *
sbom_spdx_files(const char *name, const struct sbom_subject *files,
    size_t nfiles, const char *tool_version, int64_t created, char *err,
    size_t errsize)
{
	json_t *doc, *pkgs, *rels;
	char when[32], uuid[37], id[48];
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
	sbom_uuid(uuid, files, nfiles, "spdx-files");
	doc = spdx_head(name, uuid, when, tool_version);
	pkgs = json_array();
	rels = json_array();
	for (i = 0; i < nfiles; i++) {
		snprintf(id, sizeof id, "SPDXRef-File-%zu", i);
		json_array_append_new(pkgs, spdx_file_package(&files[i], id));
		json_array_append_new(rels, spdx_rel("SPDXRef-DOCUMENT",
		    "DESCRIBES", id));
	}
	json_object_set_new(doc, "packages", pkgs);
	json_object_set_new(doc, "relationships", rels);
	return sbom_dump(doc, err, errsize);
}
