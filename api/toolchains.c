/*
 * GET /v1/toolchains: the toolchains this farm builds with.  Which target
 * builds with which is api/targets.c's.
 */
#include "config.h"

#include "api.h"
#include "../daemon/recipe.h"
#include "../daemon/toolchains.h"

/*
 * The Go toolchains discovered at start or the last reload, and the C
 * toolchains of the [toolchains] map with whether each is installed.
 */
static enum api_result
list_toolchains(struct api_req *req)
{
	const struct kiln_config *conf = req->env->conf;
	const struct toolchains *tc = req->env->toolchains;
	json_t *c = json_array();

	for (size_t i = 0; i < conf->ntoolchains; i++) {
		const char *triple = conf->toolchains[i].triple;

		json_array_append_new(c, json_pack("{s:s, s:s, s:b}",
		    "target", conf->toolchains[i].target, "triple", triple,
		    "available", recipe_toolchain_available(triple) != 0));
	}
	api_reply_json(req, 200, json_pack("{s:o, s:o}",
	    "go", tc != NULL ? toolchains_json(tc) : json_array(), "c", c));
	return API_DONE;
}

const struct api_route api_toolchains_routes[] = {
	{ "GET", "/v1/toolchains", API_SCOPE_READ, list_toolchains },
	{ NULL, NULL, 0, NULL },
};
