/*
 * The release row's work order: from a job whose builds all succeeded,
 * its outputs (lib/outputs.h) and the builds' artifacts, the JSON spec
 * that kiln-worker package carries out.  kilnd decides every name here
 * (templates expanded, each checked as a store name) so that the worker
 * only writes what it is told; the worker checks the spec again.
 *
 *   {"commit_time": S,
 *    "inputs": [{"target": T, "name": N, "path": BLOB, "sha256": H}],
 *    "archives": [{"file": F, "format": "tar.gz", "wrap": DIR|null,
 *                  "files": [GLOB...], "inputs": [I...]}],
 *    "sboms": [{"spdx": F, "cyclonedx": F, "target": T, "input": I}],
 *    "sbom_inputs": [{"name", "version"?, "purl"?, "license"?}],
 *    "universal": [{"file": F, "inputs": [I, I]}],
 *    "image": {"file": F, "index_file": F, "name": N, "entrypoint": [...]?, "cmd": [...]?,
 *              "env": [...]?, "workdir": W?, "user": U?, "ca_certs": B,
 *              "tzdata": B,
 *              "platforms": [{"target": T, "inputs": [I...]}]}?}
 *
 * I is an index into "inputs"; paths are the store's blobs.
 */
#ifndef KILN_RELEASE_H
#define KILN_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "store.h"
#include "template.h"

/*
 * The spec for `job` (with its targets and their artifacts).  vars gives
 * the project name, version, commit and time; os/arch are set per
 * target here.  Returns malloc'd compact JSON, or NULL with why saying
 * what cannot be made ("archives.name_template: ...", "darwin/universal
 * needs darwin/amd64 and darwin/arm64 to have built one binary each").
 */
char *release_spec(const struct job *job, const char *recipe,
    const struct template_vars *vars, const struct store *store, char *why,
    size_t whysize);

#endif
