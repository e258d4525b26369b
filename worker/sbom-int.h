/* What sbom.c (SPDX) and sbom-cdx.c (CycloneDX) share. */
#ifndef KILN_SBOM_INT_H
#define KILN_SBOM_INT_H

#include <jansson.h>
#include <stdint.h>

#include "buildinfo.h"
#include "sbom.h"

#define SBOM_TOOL	"kiln"

/* s as a JSON string, invalid UTF-8 replaced (jansson refuses it); NULL is "". */
json_t *sbom_str(const char *s);
/* 0 when s has a name and a 64-character lowercase hex SHA-256. */
int sbom_check_subject(const struct sbom_subject *s, char *err,
    size_t errsize);
/* t as RFC 3339 UTC ("2024-05-01T12:00:00Z"); -1 when out of range. */
int sbom_time(char out[32], int64_t t, char *err, size_t errsize);
/*
 * A UUID (RFC 9562 version 8, "custom") made of the XOR of the
 * digests of files[0..n) with the document kind: the same artifacts
 * give the same identifier, with no random source.
 */
void sbom_uuid(char out[37], const struct sbom_subject *files, size_t n,
    const char *kind);
/* The module that went into the binary: the replacement if any. */
const struct buildinfo_module *sbom_effective(const struct buildinfo_module *m);
/*
 * pkg:golang/PATH@VERSION for m, each part percent-encoded as the purl
 * specification asks; the version is left out when it is none
 * ("(devel)", ""); NULL for a module on a local directory (a
 * replacement by a file path), which no purl names.
 */
char *sbom_purl(const struct buildinfo_module *m);
/* "PATH VERSION" of the original of a replaced module, for the record. */
char *sbom_replaced(const struct buildinfo_module *m);
/* doc as indented JSON text with a final newline; doc is released. */
char *sbom_dump(json_t *doc, char *err, size_t errsize);

#endif
