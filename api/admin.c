/*
 * POST /v1/admin/pause and /v1/admin/resume: stop starting new builds
 * (for an upgrade, a disk clean-up) while still accepting jobs; builds
 * already running go on.  The answer says how many still run.
 */
#include "config.h"

#include "api.h"

static void
reply_state(struct api_req *req)
{
	const struct api_env *e = req->env;

	api_reply_json(req, 200, json_pack("{s:b, s:I}",
	    "paused", e->paused(e->build_ctx),
	    "running", (json_int_t)e->running(e->build_ctx)));
}

static enum api_result
pause_builds(struct api_req *req)
{
	req->env->pause(req->env->build_ctx, true);
	reply_state(req);
	return API_DONE;
}

static enum api_result
resume_builds(struct api_req *req)
{
	req->env->pause(req->env->build_ctx, false);
	reply_state(req);
	return API_DONE;
}

const struct api_route api_admin_routes[] = {
	{ "POST", "/v1/admin/pause", API_SCOPE_ADMIN, pause_builds },
	{ "POST", "/v1/admin/resume", API_SCOPE_ADMIN, resume_builds },
	{ NULL, NULL, 0, NULL },
};
