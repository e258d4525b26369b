/*
 * From a job's recipe and one target to the program kiln-worker runs in
 * the sandbox and its complete environment (DESIGN.md, "Targets and
 * recipes": nothing of kilnd's own environment reaches a build).
 */
#ifndef KILN_RECIPE_H
#define KILN_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "target.h"

/* Paths as the build sees them inside the sandbox. */
#define RECIPE_SRC "/src"
#define RECIPE_OUT "/out"
#define RECIPE_CACHE "/cache"

struct recipe_plan {
	char **argv;		/* NULL-terminated */
	char **env;		/* NULL-terminated NAME=VALUE */
	char *summary;		/* one line for the log */
};

/*
 * recipe_json: the validated recipe ({"kind": "go"|"command", ...}).
 * repo: for the default binary name of a go recipe.
 * Returns 0, or -1 with a reason in err.
 */
int recipe_plan(struct recipe_plan *out, const char *recipe_json,
    const struct target *t, const char *repo, int64_t commit_time,
    const struct kiln_config *conf, char *err, size_t errsize);
void recipe_plan_free(struct recipe_plan *p);

/* Whether the C toolchain for `triple` is installed on this host. */
int recipe_toolchain_available(const char *triple);

#endif
