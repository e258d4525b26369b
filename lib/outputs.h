/*
 * What a job ships beyond its bare build outputs: archives, SBOMs, a
 * universal macOS binary, a container image, and a rebuild that proves
 * the build reproducible.  One canonical JSON object, the job's
 * "outputs":
 *
 *   {"archives": {"name_template": T?, "formats": [F...]?,
 *                 "format_overrides": [{"goos": OS, "formats": [F...]}]?,
 *                 "files": [GLOB...]?, "wrap_in_directory": bool|T?}?,
 *    "sbom": true?,
 *    "universal": true?,
 *    "image": {"name": N, "entrypoint": [S...]?, "cmd": [S...]?,
 *              "env": ["K=V"...]?, "workdir": S?, "user": S?,
 *              "base": "scratch"?, "ca_certs": bool?, "tzdata": bool?,
 *              "registry": "HOST[:PORT]/NAME"?, "tags": [T...]?}?,
 *    "verify": "rebuild"?}
 *
 * A key that is absent asks for nothing.  Shared by the API (a request's
 * "archives", "sbom", "image", "verify" fields and its "darwin/universal"
 * target), .kiln.json, and kiln-worker package, which checks again what
 * it is given.  Strings are bounded and checked here; templates are
 * expanded by kilnd.
 */
#ifndef KILN_OUTPUTS_H
#define KILN_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The pseudo-target a request names for a universal macOS binary. */
#define OUTPUTS_UNIVERSAL_TARGET "darwin/universal"
/* The target row that packages a job's outputs once its builds succeed
 * (TARGET_RELEASE of target.h). */
#define OUTPUTS_RELEASE_TARGET "release"
/* Archive formats: "tar.gz", "tar.xz", "tar.zst", "tar", "zip",
 * "binary" (the file itself, no archive). */
bool outputs_format_ok(const char *f);
/* HOST[:PORT]/NAME[/NAME...] in lower case: a repository of a registry,
 * without scheme or tag. */
bool outputs_registry_ok(const char *s);
/* A tag (or an image's name) of the distribution specification:
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
bool outputs_tag_ok(const char *s);

/*
 * Check an "outputs" object (as above) and return its canonical form
 * (compact, sorted keys), or NULL with why naming the field
 * ("image.entrypoint[1]: must be a string").
 */
char *outputs_canonical(json_t *o, char *why, size_t whysize);

/*
 * Whether the object asks for a packaging step after the builds
 * (archives, SBOMs, a universal binary or an image); "verify" alone
 * does not.
 */
bool outputs_need_release(json_t *o);
/*
 * The outputs an object names by its top-level keys "archives" (true,
 * false or an object), "sbom", "image", "verify" and "universal" (a
 * request's body, whose own check refuses "universal", or .kiln.json):
 * a new object, empty when it names none, not yet checked
 * (outputs_canonical does); NULL with why when "archives" is of the
 * wrong type.
 */
json_t *outputs_from_keys(json_t *root, char *why, size_t whysize);
/* Whether the outputs (JSON text, NULL for none) ask for a verifying
 * rebuild of every target. */
bool outputs_verify_rebuild(const char *outputs_json);

#endif
