/*
 * From what kiln-worker fetch says about a job's commit (its JSON line:
 * .kiln.json, go.mod, vendor/, the GoReleaser configuration as a recipe,
 * tag and branch) to the job's plan: the recipe, the targets when the
 * request named none, the Go toolchain, and whether the deps step runs.
 *
 * Pure: no I/O, no loop; the scheduler applies the plan.  The worker is
 * not trusted: every recipe and target it hands over is validated again.
 */
#ifndef KILN_JOBPLAN_H
#define KILN_JOBPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "job.h"
#include "toolchains.h"

struct jobplan {
	char *recipe;		/* compact JSON */
	char **targets;		/* from the repository; NULL-terminated */
	size_t ntargets;
	char **notes;		/* lines for every target's log */
	size_t nnotes;
	char *tag;		/* the version's tag, or NULL */
	char *branch;		/* or NULL */
	int64_t commit_time;
	bool vendored;		/* vendor/modules.txt */
	bool deps;		/* run the deps step before the builds */
	/* The chosen Go (copies: a reload may replace the toolchains). */
	char *go_version;	/* "go1.22.12" */
	char *go_path;		/* /usr/lib/go-1.22/bin/go */
	char *go_bindir;
	/*
	 * Targets this host cannot build for want of a C toolchain (cgo),
	 * with the reason: the rest of the plan stands.  One host fails
	 * the job with the first; a farm's host refuses them, so that a
	 * host that has the toolchain builds them.
	 */
	/* The job's outputs with the repository's (jobplan-outputs.c):
	 * canonical JSON or NULL, and whether they need the release row. */
	char *outputs;
	bool release;
	struct jobplan_miss {
		char *target;
		char *why;
	} *missing;
	size_t nmissing;
};

/*
 * needs_targets: the job was submitted without targets.  Returns 0, or
 * -1 with why (shown to users: the job's error), or JOBPLAN_ENOTOOL with
 * why when this host has no Go release the job can be built with (the
 * go.mod and the recipe's pin are well formed: another host may have
 * one).  Every target is planned once here (recipe_plan), so an unknown
 * template fails the job at once, naming the target; a cgo target
 * without a C toolchain on this host goes to `missing`.
 */
#define JOBPLAN_ENOTOOL (-2)
/*
 * check_recipe validates a recipe from the repository as a request's
 * would be (the API's rules; passed down so this layer includes no api/):
 * 0, or -1 with the reason in its why.
 */
typedef int (*jobplan_check_fn)(json_t *recipe, char *why, size_t whysize);
int jobplan_make(struct jobplan *out, const struct job *job, json_t *described,
    bool needs_targets, const struct toolchains *tc,
    const struct kiln_config *conf, jobplan_check_fn check_recipe,
    char *why, size_t whysize);
void jobplan_free(struct jobplan *p);
/* p->outputs and p->release for job from the fetch's description res:
 * 0, or -1 with why. */
int jobplan_outputs(struct jobplan *p, const struct job *job, json_t *res,
    char *why, size_t whysize);
/* The reason this host cannot build `target` (missing), or NULL. */
const char *jobplan_missing(const struct jobplan *p, const char *target);

#endif
