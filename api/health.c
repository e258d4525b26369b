/* /healthz: is kilnd up and its queue readable. */
#include "config.h"

#include "api.h"
#include "../lib/util.h"

/*
 * Load balancers and probes carry no token, so /healthz answers anyone,
 * even with public_read off: 200 {"status": "ok"} while the queue can be
 * read, 503 when it cannot -- also on a farm's host whose PostgreSQL is
 * out of reach: it can neither accept nor store anything then, so a
 * balancer should send clients elsewhere until it has reconnected.  What
 * more it tells (the version, uptime, queue and build counts) helps
 * whoever probes the farm for weaknesses too, so only a caller with the
 * read scope gets it.
 */
static enum api_result
healthz(struct api_req *req)
{
	int64_t queued = 0, running = 0;

	if (!queue_reachable(req->env->queue)) {
		api_reply_problem(req, 503, "the queue's database is out of "
		    "reach; kilnd reconnects by itself");
		api_add_header(req, "Retry-After", "5");
		return API_DONE;
	}
	if (queue_count_jobs(req->env->queue, JOB_QUEUED, &queued) != 0 ||
	    queue_count_jobs(req->env->queue, JOB_RUNNING, &running) != 0) {
		api_reply_problem(req, 503, "the job queue cannot be read");
		return API_DONE;
	}
	if (!api_caller_may_read(req)) {
		api_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
		return API_DONE;
	}
	api_reply_json(req, 200, json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:I}",
	    "status", "ok", "version", PACKAGE_VERSION,
	    "uptime_seconds", (json_int_t)((util_now_ms() -
	    req->env->started_at) / 1000),
	    "jobs_queued", (json_int_t)queued,
	    "jobs_running", (json_int_t)running,
	    "builds_paused", req->env->paused ?
	    req->env->paused(req->env->build_ctx) : 0,
	    "builds_running", (json_int_t)(req->env->running ?
	    req->env->running(req->env->build_ctx) : 0)));
	return API_DONE;
}

const struct api_route api_health_routes[] = {
	{ "GET", "/healthz", API_SCOPE_PUBLIC, healthz },
	{ NULL, NULL, 0, NULL },
};
