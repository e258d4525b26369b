/*
 * Shared by recipe.c (the environment every build sees, command
 * recipes) and recipe-go.c (go recipes and the deps step); not for
 * anyone else.
 */
#ifndef KILN_RECIPE_INT_H
#define KILN_RECIPE_INT_H

#include <jansson.h>

#include "recipe.h"

/* A NULL-terminated vector of malloc'd strings. */
struct strv {
	char **v;
	size_t n, cap;
};

void strv_add(struct strv *s, char *str);
void strv_free(struct strv *s);
/* Set NAME=VALUE, replacing an earlier value of NAME. */
void env_set(struct strv *e, const char *name, const char *value);
const char *env_get(const struct strv *e, const char *name);

/* The triple of the host's own gcc, from the compiler building kilnd. */
const char *recipe_host_triple(void);

/* argv and extra env of a go recipe for one target (recipe-go.c). */
int recipe_go_plan(struct strv *argv, struct strv *env, json_t *recipe,
    const struct target *t, const struct recipe_ctx *ctx,
    const struct kiln_config *conf, char *err, size_t errsize);

#endif
