/*
 * Software bills of materials for what a build made, as SPDX 2.3 and
 * CycloneDX 1.5 JSON.  A Go binary's come from its build information
 * (lib/buildinfo.h); any other file gets a document naming the files.
 *
 * Every document is a function of its arguments only, so the same
 * release gives the same bytes on any host: the creation time is the
 * commit time given by the caller, the SPDX namespace and the CycloneDX
 * serial number are derived from the artifacts' SHA-256, keys come in a
 * fixed order, and nothing of the host, the user or the clock goes in.
 */
#ifndef KILN_SBOM_H
#define KILN_SBOM_H

#include <stddef.h>
#include <stdint.h>

#include "buildinfo.h"

struct sbom_subject {
	const char *name;	/* the artifact's file name */
	const char *sha256;	/* hex of the artifact (64 characters) */
	const char *target;	/* "linux/amd64" */
};

/*
 * The Go binary s with the modules of bi: malloc'd JSON text (ending in
 * a newline), or NULL with a message in err.  tool_version names kiln
 * ("0.9.0"); created is the commit time in seconds since the epoch.
 */
char *sbom_spdx(const struct buildinfo *bi, const struct sbom_subject *s,
    const char *tool_version, int64_t created, char *err, size_t errsize);
char *sbom_cyclonedx(const struct buildinfo *bi, const struct sbom_subject *s,
    const char *tool_version, int64_t created, char *err, size_t errsize);

/*
 * A document naming the files only, no modules: for what a command
 * recipe made.  name names the document (the project, say); files[i]
 * carry each file's name and SHA-256 (target may be NULL).  The
 * identifiers are derived from every file's digest.
 */
char *sbom_spdx_files(const char *name, const struct sbom_subject *files,
    size_t nfiles, const char *tool_version, int64_t created, char *err,
    size_t errsize);
char *sbom_cyclonedx_files(const char *name,
    const struct sbom_subject *files, size_t nfiles,
    const char *tool_version, int64_t created, char *err, size_t errsize);

/*
 * A command recipe's declared inputs ([{"name", "version"?, "purl"?,
 * "license"?}], checked by lib/validate.c) added to a files-only
 * document (the text of sbom_spdx_files / sbom_cyclonedx_files): a
 * package or component each, every file depending on each.  A new text,
 * or NULL with err.  sbom-inputs.c.
 */
#include <jansson.h>
char *sbom_spdx_add_inputs(const char *doc, json_t *inputs, char *err,
    size_t errsize);
char *sbom_cyclonedx_add_inputs(const char *doc, json_t *inputs, char *err,
    size_t errsize);

#endif
