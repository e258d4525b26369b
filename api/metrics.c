/*
 * GET /metrics (Prometheus text format).  What the farm is (GET /v1/info)
 * is api/about.c's.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api.h"
#include "../daemon/events.h"
#include "../daemon/looplag.h"
#include "../daemon/metrics.h"

static void
gauge_head(struct sbuf *b, const char *name, const char *help)
{
	metrics_head(b, name, "gauge", help);
}

static void
gauge(struct sbuf *b, const char *name, const char *labels, int64_t v)
{
	sbuf_adds(b, name);
	if (labels != NULL)
		sbuf_adds(b, labels);
	sbuf_addc(b, ' ');
	sbuf_addi(b, v);
	sbuf_addc(b, '\n');
}

static int64_t
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int64_t n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static int64_t
rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : (int64_t)rss * sysconf(_SC_PAGESIZE);
}

/* kiln_loop_lag_seconds: how late the probe's timer fired. */
static void
loop_lag(struct sbuf *b, const struct looplag *l)
{
	struct looplag_snapshot s;
	char num[64];

	looplag_snapshot(l, &s);
	metrics_head(b, "kiln_loop_lag_seconds", "histogram", "How late a "
	    "timer on kilnd's event loop fires: the time a request may wait "
	    "before the loop reads it.");
	for (size_t i = 0; i <= LOOPLAG_NBOUNDS; i++) {
		if (i < LOOPLAG_NBOUNDS)
			snprintf(num, sizeof num, "%g", looplag_bounds[i]);
		else
			snprintf(num, sizeof num, "+Inf");
		sbuf_adds(b, "kiln_loop_lag_seconds_bucket{le=\"");
		sbuf_adds(b, num);
		sbuf_adds(b, "\"} ");
		sbuf_addi(b, (int64_t)(i < LOOPLAG_NBOUNDS ? s.buckets[i] :
		    s.count));
		sbuf_addc(b, '\n');
	}
	snprintf(num, sizeof num, "kiln_loop_lag_seconds_sum %.6f\n", s.sum);
	sbuf_adds(b, num);
	sbuf_adds(b, "kiln_loop_lag_seconds_count ");
	sbuf_addi(b, (int64_t)s.count);
	sbuf_addc(b, '\n');
}

static enum api_result
get_metrics(struct api_req *req)
{
	const struct api_env *env = req->env;
	struct sbuf b = { 0 };
	int64_t jobs[JOB_STATE_COUNT], targets[TARGET_STATE_COUNT];
	char labels[48];

	/* Two index passes, on the loop thread: about 50 ms a scrape at
	 * 200,000 jobs (eleven separate counts took 140 ms). */
	if (queue_count_by_state(env->queue, jobs, targets) != 0)
		goto fail;
	gauge_head(&b, "kiln_jobs", "Jobs by state.");
	for (int s = 0; s < JOB_STATE_COUNT; s++) {
		snprintf(labels, sizeof labels, "{state=\"%s\"}",
		    job_state_name((enum job_state)s));
		gauge(&b, "kiln_jobs", labels, jobs[s]);
	}
	gauge_head(&b, "kiln_targets", "Targets by state.");
	for (int s = 0; s < TARGET_STATE_COUNT; s++) {
		snprintf(labels, sizeof labels, "{state=\"%s\"}",
		    target_state_name((enum target_state)s));
		gauge(&b, "kiln_targets", labels, targets[s]);
	}
	gauge_head(&b, "kiln_queue_up", "1 while the queue's database "
	    "answers (PostgreSQL: connected); the counts above are the last "
	    "known while it is 0.");
	gauge(&b, "kiln_queue_up", NULL, queue_reachable(env->queue) ? 1 : 0);
	gauge_head(&b, "kiln_queue_depth", "Targets waiting for a build slot.");
	gauge(&b, "kiln_queue_depth", NULL, targets[TARGET_QUEUED]);
	gauge_head(&b, "kiln_builds_running", "Build slots in use (targets "
	    "fetching, building or being published).");
	gauge(&b, "kiln_builds_running", NULL,
	    env->running ? env->running(env->build_ctx) : 0);
	gauge_head(&b, "kiln_build_slots", "Build slots (workers).");
	gauge(&b, "kiln_build_slots", NULL, env->conf->workers);
	gauge_head(&b, "kiln_builds_paused", "1 when builds are paused.");
	gauge(&b, "kiln_builds_paused", NULL,
	    env->paused ? env->paused(env->build_ctx) : 0);
	gauge_head(&b, "kiln_event_subscribers", "Clients following live "
	    "events (GET /v1/events).");
	gauge(&b, "kiln_event_subscribers", NULL,
	    (int64_t)events_subscribers(env->events));
	/* Which host answers: the farm's hosts are scraped one by one.  A
	 * host_name is letters, digits, '-', '.' and '_' (conf.h): nothing
	 * to escape in a label value. */
	if (env->conf->host_name != NULL) {
		char host[CONF_HOST_NAME_MAX + 16];

		snprintf(host, sizeof host, "{host=\"%s\"}",
		    env->conf->host_name);
		gauge_head(&b, "kiln_host_info", "This kilnd host, by its "
		    "host_name; always 1.");
		gauge(&b, "kiln_host_info", host, 1);
	}
	metrics_render(&b);
	if (env->looplag != NULL)
		loop_lag(&b, env->looplag);
	gauge_head(&b, "process_resident_memory_bytes", "Resident memory of "
	    "kilnd.");
	gauge(&b, "process_resident_memory_bytes", NULL, rss_bytes());
	gauge_head(&b, "process_open_fds", "Open file descriptors of kilnd.");
	gauge(&b, "process_open_fds", NULL, open_fds());
	gauge_head(&b, "process_start_time_seconds", "When kilnd started, "
	    "seconds since the epoch.");
	gauge(&b, "process_start_time_seconds", NULL, env->started_at / 1000);
	free(req->resp_body);
	req->resp_body = sbuf_steal(&b, &req->resp_len);
	req->status = 200;
	req->resp_type = "text/plain; version=0.0.4; charset=utf-8";
	return API_DONE;
fail:
	sbuf_free(&b);
	api_reply_problem(req, 503, "the job queue cannot be read");
	return API_DONE;
}

const struct api_route api_metrics_routes[] = {
	{ "GET", "/metrics", API_SCOPE_READ, get_metrics },
	{ NULL, NULL, 0, NULL },
};
