/*
 * What this server is: GET /v1/info (its version, schema, workers,
 * projects), GET /v1/openapi.json (the API it serves) and GET /v1/pubkey
 * (the key its signatures verify with).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../daemon/looplag.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

/* Milliseconds to the microsecond: the probe measures no finer. */
static json_t *
ms(double seconds)
{
	return json_real((double)(int64_t)(seconds * 1e6 + 0.5) / 1e3);
}

/* GET /v1/info: what this farm is. */
static enum api_result
get_info(struct api_req *req)
{
	const struct api_env *env = req->env;
	const struct kiln_config *c = env->conf;
	json_t *tc = json_object(), *projects = json_array(), *info;
	struct looplag_snapshot lag;

	for (size_t i = 0; i < c->ntoolchains; i++)
		json_object_set_new(tc, c->toolchains[i].target,
		    json_string(c->toolchains[i].triple));
	for (size_t i = 0; i < c->nprojects; i++)
		json_array_append_new(projects,
		    json_string(c->projects[i].name));
	info = json_pack("{s:s, s:i, s:i, s:b, s:o, s:s?, s:s, s:o, s:b, "
	    "s:I}",
	    "version", PACKAGE_VERSION,
	    "schema", queue_schema(env->queue),
	    "workers", (int)c->workers,
	    "paused", env->paused ? env->paused(env->build_ctx) : 0,
	    "toolchains", tc,
	    "pubkey_id", env->key_id,
	    "pubkey_url", "/v1/pubkey",
	    "projects", projects,
	    "tokens_required", c->ntokens > 0,
	    "uptime_s", (json_int_t)((util_now_ms() - env->started_at) / 1000));
	if (info != NULL && env->looplag != NULL) {
		/* How responsive the loop has been (kiln_loop_lag_seconds in
		 * /metrics has the histogram). */
		looplag_snapshot(env->looplag, &lag);
		json_object_set_new(info, "loop_lag_max_ms", ms(lag.max));
		json_object_set_new(info, "loop_lag_1m_max_ms",
		    ms(lag.max_1m));
		json_object_set_new(info, "loop_lag_1m_p99_ms",
		    ms(lag.p99_1m));
	}
	if (info != NULL) {
		/* Who asks: a dashboard shows only the actions it may take. */
		const char *token = api_caller_token(req);

		json_object_set_new(info, "caller", json_pack("{s:s, s:o}",
		    "scope", api_scope_name(api_caller_scope(req)),
		    "token", token != NULL ? json_string(token) :
		    json_null()));
	}
	api_reply_json(req, 200, info);
	return API_DONE;
}

/* GET /v1/openapi.json */
static enum api_result
get_openapi(struct api_req *req)
{
	size_t n = strlen(api_openapi_json);

	free(req->resp_body);
	req->resp_body = xmalloc(n + 1);
	memcpy(req->resp_body, api_openapi_json, n + 1);
	req->resp_len = n;
	req->status = 200;
	req->resp_type = "application/json";
	return API_DONE;
}

/* GET /v1/pubkey: the farm's minisign public key, for minisign -V -p. */
static enum api_result
pubkey(struct api_req *req)
{
	size_t n;

	if (req->env->pubkey == NULL) {
		api_reply_problem(req, 404, "this farm has no signing key");
		return API_DONE;
	}
	n = strlen(req->env->pubkey);
	req->resp_body = xmalloc(n + 1);
	memcpy(req->resp_body, req->env->pubkey, n + 1);
	req->resp_len = n;
	req->status = 200;
	req->resp_type = "text/plain; charset=utf-8";
	api_add_header(req, "Content-Disposition",
	    "attachment; filename=\"kiln.pub\"");
	return API_DONE;
}

const struct api_route api_about_routes[] = {
	{ "GET", "/v1/info", API_SCOPE_READ, get_info },
	{ "GET", "/v1/openapi.json", API_SCOPE_PUBLIC, get_openapi },
	{ "GET", "/v1/pubkey", API_SCOPE_DOWNLOAD, pubkey },
	{ NULL, NULL, 0, NULL },
};
