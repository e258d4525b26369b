/*
 * The shape of what a build is asked for: a repository, a ref, a recipe.
 * Each check returns 0, or -1 with a one-line reason in `why` that names
 * the field ("repo: ...") and never quotes a repository URL (it may hold
 * a secret).  Shared by the API, kilnd.conf's project sections and the
 * recipes found in repositories.
 */
#ifndef KILN_VALIDATE_H
#define KILN_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* http(s)://, ssh://, git://, file:// or an absolute path; no userinfo
 * but ssh's user name. */
int validate_repo(const char *repo, char *why, size_t whysize);
/*
 * What the configuration allows of a repository validate_repo accepted:
 * a local one (file:// or a path) only when `allowed`, and never in,
 * equal to or above state_dir (lexically, and after realpath of
 * state_dir).  0, or -1 with a detail for a 422.
 */
int validate_local_repo(bool allowed, const char *state_dir,
    const char *repo, char *why, size_t whysize);
/* A branch, tag or full ref name git accepts unchanged, or 40 hex. */
int validate_ref(const char *ref, char *why, size_t whysize);
/* A recipe object (from a request, kilnd.conf or a repository). */
int validate_recipe(json_t *recipe, char *why, size_t whysize);

/* Whether an object has a key holding a NUL (then `why` says so). */
bool validate_keys_without_nul(json_t *obj, const char *where, char *why,
    size_t whysize);
/* A non-empty JSON string without NUL, at most max bytes. */
int validate_string(json_t *v, const char *field, size_t max, char *why,
    size_t whysize);

#endif
