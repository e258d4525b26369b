/*
 * What conf.c and conf-project.c share; nothing else includes this.
 */
#ifndef KILN_CONF_INT_H
#define KILN_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* Split a list on spaces and commas; calls fn for each item. */
int conf_each_word(const char *value,
    int (*fn)(void *, const char *, char *, size_t), void *arg, char *err,
    size_t errsize);
/* A GOPROXY-like value: not empty, no spaces, quotes or control
 * characters; 0, or -1 with "name: why" in err. */
int conf_go_env_check(const char *name, const char *value, char *err,
    size_t errsize);
/* One key of a [project NAME] section; 0, or -1 with why in err. */
int conf_set_project(struct conf_project *p, const char *key,
    const char *value, char *err, size_t errsize);
void conf_project_free(struct conf_project *p);
/* Without a refs key: every branch and every tag. */
void conf_project_default_refs(struct conf_project *p);
/* Whether two repository URLs name one repository (util_repo_identity). */
bool conf_same_repo(const char *a, const char *b);

#endif
