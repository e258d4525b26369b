/*
 * GET /v1/targets: what this host can build, and with which toolchain.
 * The toolchains themselves are api/toolchains.c's.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "api.h"
#include "../daemon/recipe.h"

static enum api_result
list_targets(struct api_req *req)
{
	const struct kiln_config *conf = req->env->conf;
	json_t *arr = json_array();
	bool go = access("/usr/bin/go", X_OK) == 0;
	static const char *const variants[][4] = {
		{ "arm", "v5", "v6", "v7" },
		{ "amd64", "v2", "v3", "v4" },
	};

	for (size_t i = 0; i < target_pair_count(); i++) {
		const char *pair = target_pair(i);
		const char *arch = strchr(pair, '/') + 1;
		char names[4][TARGET_NAME_MAX];
		size_t nn = 0;

		/* Each variant is a target of its own; linux/arm is v7. */
		if (strcmp(arch, "arm") == 0 || strcmp(arch, "amd64") == 0) {
			int v = strcmp(arch, "arm") == 0 ? 0 : 1;
			if (v == 1)
				snprintf(names[nn++], TARGET_NAME_MAX, "%s", pair);
			for (int k = 1; k < 4; k++)
				snprintf(names[nn++], TARGET_NAME_MAX, "%s/%s",
				    pair, variants[v][k]);
		} else
			snprintf(names[nn++], TARGET_NAME_MAX, "%s", pair);
		for (size_t k = 0; k < nn; k++) {
			const char *triple = conf_toolchain(conf, names[k]);
			json_t *o = json_object();

			json_object_set_new(o, "target", json_string(names[k]));
			json_object_set_new(o, "go", json_boolean(go));
			if (triple != NULL) {
				json_object_set_new(o, "c_toolchain",
				    json_string(triple));
				json_object_set_new(o, "c_toolchain_installed",
				    json_boolean(recipe_toolchain_available(
				    triple)));
			} else {
				json_object_set_new(o, "c_toolchain", json_null());
				json_object_set_new(o, "c_toolchain_installed",
				    json_false());
			}
			json_array_append_new(arr, o);
		}
	}
	api_reply_json(req, 200, json_pack("{s:o}", "targets", arr));
	return API_DONE;
}

const struct api_route api_targets_routes[] = {
	{ "GET", "/v1/targets", API_SCOPE_READ, list_targets },
	{ NULL, NULL, 0, NULL },
};
