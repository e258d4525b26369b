/*
 * kilnd's wiring of struct api_env's build hooks onto the scheduler
 * (api/ may not include the scheduler; cmd/ joins the two).
 */
#ifndef KILN_KILND_ENV_H
#define KILN_KILND_ENV_H

#include "../api/api.h"
#include "../daemon/sched/sched.h"

/* Point env's cancel, log, pause and running hooks at scheduler s. */
void kilnd_env_builds(struct api_env *env, struct sched *s);

#endif
