/*
 * From a job's recipe and one target to the program kiln-worker runs in
 * the sandbox and its complete environment (kilnd(8), "The build
 * environment": nothing of kilnd's own environment reaches a build).
 */
#ifndef KILN_RECIPE_H
#define KILN_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "target.h"

/* Paths as the build sees them inside the sandbox. */
#define RECIPE_SRC "/src"
#define RECIPE_OUT "/out"
#define RECIPE_CACHE "/cache"
/* Go's module cache: written by the deps step only, read-only in builds. */
#define RECIPE_MODCACHE "/gomod"

struct recipe_plan {
	char **argv;		/* NULL-terminated */
	char **env;		/* NULL-terminated NAME=VALUE */
	char *summary;		/* one line for the log */
};

/* What the plan of one job's builds depends on besides the recipe. */
struct recipe_ctx {
	const char *repo;	/* URL: the default binary and project name */
	const char *commit;	/* 40-hex */
	int64_t commit_time;	/* SOURCE_DATE_EPOCH, {{.Date}} */
	const char *tag;	/* the version's tag, NULL: a snapshot */
	const char *branch;	/* NULL: not built from a branch */
	const char *go_bindir;	/* the chosen Go's bin directory, or NULL */
	bool vendored;		/* vendor/modules.txt: -mod=vendor */
};

/*
 * recipe_json: the validated recipe ({"kind": "go"|"command", ...}).
 * Returns 0, or -1 with a reason in err (an unknown template), or
 * RECIPE_ENOTOOL with a reason in err when this host has no C toolchain
 * for a cgo target (none under [toolchains], or not installed): another
 * host of a farm may have one.
 */
#define RECIPE_ENOTOOL (-2)
int recipe_plan(struct recipe_plan *out, const char *recipe_json,
    const struct target *t, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, char *err, size_t errsize);
void recipe_plan_free(struct recipe_plan *p);
/* The recipe's project_name, or the repository's last path element
 * without ".git" (malloc'd): what {{.ProjectName}} expands to. */
char *recipe_project_name(const char *recipe_json, const char *repo);

/*
 * The deps step of a go recipe: kiln's own `go mod download` (never a
 * command from the recipe) into RECIPE_MODCACHE, with the farm's (or the
 * project's) GOPROXY/GOSUMDB/GOPRIVATE.  project may be NULL.
 */
int recipe_deps_plan(struct recipe_plan *out, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, const struct conf_project *project,
    char *err, size_t errsize);

/* Whether the C toolchain for `triple` is installed on this host. */
int recipe_toolchain_available(const char *triple);

/* The Go version a go recipe pins ("go": "1.22"), or NULL. */
const char *recipe_go_pin(const char *recipe_json, char *buf, size_t size);
#endif
