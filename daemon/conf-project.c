/*
 * A [project NAME] section of kilnd.conf: its keys, its lookups (by name,
 * by repository identity) and its ref patterns.  The file's reading and
 * the [kilnd] keys are conf.c's.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "callback-url.h"
#include "conf.h"
#include "conf-int.h"
#include "creds.h"
#include "outputs.h"
#include "target.h"
#include "util.h"
#include "validate.h"
#include "xmalloc.h"

void
conf_project_free(struct conf_project *p)
{
	free(p->name);
	free(p->repo);
	for (size_t i = 0; i < p->nsecrets; i++) {
		sodium_memzero(p->secrets[i], strlen(p->secrets[i]));
		free(p->secrets[i]);
	}
	free(p->recipe);
	for (size_t i = 0; i < p->nrefs; i++)
		free(p->refs[i]);
	for (size_t i = 0; i < p->nprotected; i++)
		free(p->protected_refs[i]);
	free(p->notify_url);
	if (p->notify_secret != NULL)
		sodium_memzero(p->notify_secret, strlen(p->notify_secret));
	free(p->notify_secret);
	free(p->goproxy);
	free(p->goprivate);
	free(p->credentials);
	free(p->registry);
}

const struct conf_project *
conf_project_by_name(const struct kiln_config *c, const char *name)
{
	for (size_t i = 0; i < c->nprojects; i++)
		if (strcmp(c->projects[i].name, name) == 0)
			return &c->projects[i];
	return NULL;
}

bool
conf_same_repo(const char *a, const char *b)
{
	char *ia = util_repo_identity(a), *ib = util_repo_identity(b);
	bool same = strcmp(ia, ib) == 0;

	free(ia);
	free(ib);
	return same;
}

/*
 * By identity, not spelling: every spelling of a repository shares its
 * mirror, which holds what the project's credentials or ssh agent
 * fetched.  "https://host/x" must be the job of the project of
 * "https://host/x.git", bound by its policy, or a commit id of the
 * private mirror would build with a recipe of the submitter's own.
 */
const struct conf_project *
conf_project_by_repo(const struct kiln_config *c, const char *url)
{
	for (size_t i = 0; i < c->nprojects; i++)
		if (strcmp(c->projects[i].repo, url) == 0 ||
		    conf_same_repo(c->projects[i].repo, url))
			return &c->projects[i];
	return NULL;
}

bool
conf_project_wants_ref(const struct conf_project *p, const char *ref)
{
	for (size_t i = 0; i < p->nrefs; i++)
		if (fnmatch(p->refs[i], ref, FNM_PATHNAME) == 0)
			return true;
	return false;
}

bool
conf_ref_protected(const struct conf_project *p, const char *ref,
    const char *default_branch)
{
	if (ref == NULL)
		return false;
	if (p != NULL && p->nprotected > 0) {
		for (size_t i = 0; i < p->nprotected; i++)
			if (fnmatch(p->protected_refs[i], ref, FNM_PATHNAME) == 0)
				return true;
		return false;
	}
	return strncmp(ref, "refs/tags/", 10) == 0 ||
	    (default_branch != NULL && strcmp(ref, default_branch) == 0);
}

static int
add_target(void *arg, const char *w, char *err, size_t errsize)
{
	struct conf_project *p = arg;
	struct target t;
	char why[160];

	if (target_parse(&t, w, why, sizeof why) != 0) {
		snprintf(err, errsize, "targets: %s", why);
		return -1;
	}
	for (size_t i = 0; i < p->ntargets; i++)
		if (strcmp(p->targets[i], t.name) == 0)
			return 0;
	if (p->ntargets == ARRAY_SIZE(p->targets)) {
		snprintf(err, errsize, "targets: more than %zu",
		    ARRAY_SIZE(p->targets));
		return -1;
	}
	snprintf(p->targets[p->ntargets++], sizeof p->targets[0], "%s", t.name);
	return 0;
}

static int
add_pattern(const char *key, char **v, size_t *n, const char *w, char *err,
    size_t errsize)
{
	if (strncmp(w, "refs/", 5) != 0) {
		snprintf(err, errsize, "%s: '%s' is not a full ref pattern "
		    "(like refs/heads/main or refs/tags/v*)", key, w);
		return -1;
	}
	if (*n == CONF_MAX_REFS) {
		snprintf(err, errsize, "%s: more than %d patterns", key,
		    CONF_MAX_REFS);
		return -1;
	}
	v[(*n)++] = xstrdup(w);
	return 0;
}

static int
add_ref(void *arg, const char *w, char *err, size_t errsize)
{
	struct conf_project *p = arg;

	return add_pattern("refs", p->refs, &p->nrefs, w, err, errsize);
}

static int
add_protected_ref(void *arg, const char *w, char *err, size_t errsize)
{
	struct conf_project *p = arg;

	return add_pattern("protected_refs", p->protected_refs,
	    &p->nprotected, w, err, errsize);
}

void
conf_project_default_refs(struct conf_project *p)
{
	if (p->nrefs > 0)
		return;
	add_ref(p, "refs/heads/*", NULL, 0);
	add_ref(p, "refs/tags/*", NULL, 0);
}

/* One key of a [project NAME] section. */
int
conf_set_project(struct conf_project *p, const char *key, const char *value,
    char *err, size_t errsize)
{
	char why[400];
	int64_t v;

	if (strcmp(key, "repo") == 0) {
		if (p->repo != NULL) {
			snprintf(err, errsize, "'repo' is set twice");
			return -1;
		}
		/* Its message starts with "repo: " already. */
		if (validate_repo(value, err, errsize) != 0)
			return -1;
		p->repo = xstrdup(value);
	} else if (strcmp(key, "secret") == 0) {
		/* Several lines: every one is accepted (rotation). */
		if (strlen(value) < 16) {
			snprintf(err, errsize, "secret: at least 16 characters");
			return -1;
		}
		if (p->nsecrets == CONF_MAX_SECRETS) {
			snprintf(err, errsize, "secret: more than %d",
			    CONF_MAX_SECRETS);
			return -1;
		}
		p->secrets[p->nsecrets++] = xstrdup(value);
	} else if (strcmp(key, "targets") == 0) {
		return conf_each_word(value, add_target, p, err, errsize);
	} else if (strcmp(key, "refs") == 0) {
		return conf_each_word(value, add_ref, p, err, errsize);
	} else if (strcmp(key, "protected_refs") == 0) {
		return conf_each_word(value, add_protected_ref, p, err, errsize);
	} else if (strcmp(key, "recipe") == 0) {
		json_error_t jerr;
		json_t *r = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
		if (r == NULL) {
			snprintf(err, errsize, "recipe: not JSON: %s", jerr.text);
			return -1;
		}
		if (validate_recipe(r, why, sizeof why) != 0) {
			snprintf(err, errsize, "recipe: %s", why);
			json_decref(r);
			return -1;
		}
		free(p->recipe);
		p->recipe = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(r);
	} else if (strcmp(key, "goproxy") == 0 ||
	    strcmp(key, "goprivate") == 0) {
		char **field = strcmp(key, "goproxy") == 0 ? &p->goproxy :
		    &p->goprivate;
		if (conf_go_env_check(key, value, err, errsize) != 0)
			return -1;
		free(*field);
		*field = xstrdup(value);
	} else if (strcmp(key, "credentials") == 0) {
		/*
		 * Checked now so that a mistake shows at start or reload,
		 * and read again by each fetch (a rotated token needs no
		 * restart).  The content is never quoted.
		 */
		struct creds *cr = NULL;
		char *text = NULL;
		size_t len = 0;
		if (p->credentials != NULL) {
			snprintf(err, errsize, "'credentials' is set twice");
			return -1;
		}
		if (creds_read_file(&text, &len, value, why, sizeof why) != 0) {
			snprintf(err, errsize, "credentials: %s", why);
			return -1;
		}
		if (creds_parse(&cr, text, len, why, sizeof why) != 0) {
			snprintf(err, errsize, "credentials: %s: %s", value, why);
			creds_text_free(text, len);
			return -1;
		}
		creds_free(cr);
		creds_text_free(text, len);
		p->credentials = xstrdup(value);
	} else if (strcmp(key, "registry") == 0) {
		if (!outputs_registry_ok(value)) {
			snprintf(err, errsize, "registry: '%s' is not HOST[:PORT]/"
			    "NAME in lower case, without scheme or tag", value);
			return -1;
		}
		free(p->registry);
		p->registry = xstrdup(value);
	} else if (strcmp(key, "registry_insecure") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			snprintf(err, errsize, "registry_insecure: '%s' is not "
			    "yes or no", value);
			return -1;
		}
		p->registry_insecure = strcmp(value, "yes") == 0;
	} else if (strcmp(key, "network") == 0) {
		if (strcmp(value, "yes") == 0)
			p->network = true;
		else if (strcmp(value, "no") == 0)
			p->network = false;
		else {
			snprintf(err, errsize, "network: '%s' is not yes or no",
			    value);
			return -1;
		}
	} else if (strcmp(key, "timeout") == 0) {
		if (util_parse_int64(value, 1, 7 * 86400, &v) != 0) {
			snprintf(err, errsize, "timeout: '%s' is not a whole "
			    "number from 1 to %d", value, 7 * 86400);
			return -1;
		}
		p->timeout = (unsigned)v;
	} else if (strcmp(key, "priority") == 0) {
		if (util_parse_int64(value, -1000, 1000, &v) != 0) {
			snprintf(err, errsize, "priority: '%s' is not a whole "
			    "number from -1000 to 1000", value);
			return -1;
		}
		p->priority = (int)v;
	} else if (strcmp(key, "notify_url") == 0) {
		struct callback_url u;
		if (callback_url_parse(value, &u, why, sizeof why) != 0) {
			snprintf(err, errsize, "notify_url: %s", why);
			return -1;
		}
		free(p->notify_url);
		p->notify_url = xstrdup(value);
	} else if (strcmp(key, "notify_secret") == 0) {
		if (strlen(value) < 16) {
			snprintf(err, errsize, "notify_secret: at least 16 "
			    "characters");
			return -1;
		}
		if (p->notify_secret != NULL) {
			sodium_memzero(p->notify_secret,
			    strlen(p->notify_secret));
			free(p->notify_secret);
		}
		p->notify_secret = xstrdup(value);
	} else {
		snprintf(err, errsize, "unknown key '%s' in a project (repo, "
		    "secret, targets, recipe, refs, protected_refs, network, "
		    "timeout, priority, notify_url, notify_secret, goproxy, "
		    "goprivate, credentials, registry, registry_insecure)", key);
		return -1;
	}
	return 0;
}
