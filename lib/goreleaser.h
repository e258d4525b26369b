/*
 * A repository's .goreleaser.yaml (as JSON, from yaml_to_json) mapped to
 * a kiln go recipe.  Both GoReleaser's version 2 format and the older
 * unversioned one are read; what kiln does not do (archives, hooks,
 * publishing...) is reported, one message per key, never dropped
 * silently (archives, universal_binaries, sboms and kos become release
 * outputs: goreleaser-outputs.c), and a build kiln cannot make (another builder) is an error.
 *
 * The recipe: {"kind": "go", "project_name": NAME, "builds": [{"id",
 * "package", "dir" (absent for "."), "name", "ldflags" (one string),
 * "flags": [...], "tags": [...], "env": {NAME: VALUE}, "cgo": bool,
 * "targets": ["linux/amd64", ...]}, ...]}.  Strings may hold templates
 * (template.h); they are expanded per target by whoever runs the build.
 */
#ifndef KILN_GORELEASER_H
#define KILN_GORELEASER_H

#include <stddef.h>

#include <jansson.h>

/* Builds in one file (as many as a recipe may have for one target). */
#define GORELEASER_MAX_BUILDS 32
/* Messages kept in `ignored`; the last one counts the rest. */
#define GORELEASER_MAX_IGNORED 100

struct goreleaser_result {
	char *recipe;		/* canonical JSON (compact, sorted keys) */
	char **targets;		/* union of every build's targets, sorted,
				 * unique, kiln names; NULL-terminated */
	size_t ntargets;
	char *outputs;		/* release outputs (outputs.h), canonical
				 * JSON, or NULL for none */
	char **ignored;		/* one message per unsupported key met,
				 * "builds[0].hooks: not supported by kiln,
				 * ignored"; NULL-terminated */
	size_t nignored;
};

/*
 * repo_name: the project name when the file gives none (the repository
 * URL's last part without ".git").  Returns 0, or -1 with err naming the
 * key ("builds[1].builder: 'rust' is not supported (kiln builds Go
 * only)").  A file whose every build is skipped is an error.  On error
 * *out holds nothing to free.
 */
int goreleaser_to_recipe(struct goreleaser_result *out, const json_t *doc,
    const char *repo_name, char *err, size_t errsize);
void goreleaser_result_free(struct goreleaser_result *r);

#endif
