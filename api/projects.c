/*
 * GET /v1/projects: the [project NAME] sections of kilnd.conf as a
 * client may see them, for a dashboard or a submitter choosing refs.
 * What a project holds that would let anyone act as the farm or as the
 * forge stays out: webhook secrets, fetch credentials, the callback's
 * signing secret and its URL (which may carry a token of the receiver),
 * and the Go proxy's URL (which may carry a password).
 */
#include "config.h"

#include "api.h"

static json_t *
strings(char *const *v, size_t n)
{
	json_t *a = json_array(), *s;

	for (size_t i = 0; i < n; i++) {
		/* Not UTF-8 (a hand-edited file): NULL fails the whole
		 * answer rather than leave a pattern out unsaid. */
		if ((s = json_string(v[i])) == NULL) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, s);
	}
	return a;
}

static json_t *
project_json(const struct conf_project *p)
{
	json_t *targets = json_array(), *recipe = json_null();

	for (size_t i = 0; i < p->ntargets; i++)
		json_array_append_new(targets, json_string(p->targets[i]));
	/* Compact JSON the configuration's parser made: shown as JSON. */
	if (p->recipe != NULL &&
	    (recipe = json_loads(p->recipe, 0, NULL)) == NULL)
		recipe = json_null();
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:o, s:i, "
	    "s:b, s:s?}",
	    "name", p->name,
	    "repo", p->repo,
	    "refs", strings(p->refs, p->nrefs),
	    "protected_refs", strings(p->protected_refs, p->nprotected),
	    "targets", targets,
	    "recipe", recipe,
	    "network", p->network,
	    "timeout", p->timeout > 0 ? json_integer(p->timeout) : json_null(),
	    "priority", p->priority,
	    "notify", p->notify_url != NULL,
	    "registry", p->registry);
}

static enum api_result
list_projects(struct api_req *req)
{
	const struct kiln_config *c = req->env->conf;
	json_t *a = json_array();

	for (size_t i = 0; i < c->nprojects; i++) {
		json_t *p = project_json(&c->projects[i]);

		/* Text that is not UTF-8 (a hand-edited file): answered as
		 * 500 by api_reply_json rather than half a list. */
		if (p == NULL) {
			json_decref(a);
			api_reply_json(req, 200, NULL);
			return API_DONE;
		}
		json_array_append_new(a, p);
	}
	api_reply_json(req, 200, json_pack("{s:o}", "projects", a));
	return API_DONE;
}

const struct api_route api_projects_routes[] = {
	{ "GET", "/v1/projects", API_SCOPE_READ, list_projects },
	{ NULL, NULL, 0, NULL },
};
