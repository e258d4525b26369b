/*
 * GET /v1/hosts: the kilnd hosts of the farm as the queue's hosts table
 * has them (each host writes its own row when it starts, with its
 * heartbeats and when it stops), and whether each is alive.  On SQLite,
 * the one host.
 */
#include "config.h"

#include "api.h"
#include "../lib/utf8.h"
#include "../lib/util.h"

/* The read's out-parameters, valid until its completion ran. */
struct hosts_read {
	struct api_req *req;
	struct queue_host *hosts;
	size_t n;
};

static void
hosts_read_release(void *data)
{
	struct hosts_read *r = data;

	queue_hosts_free(r->hosts, r->n);
}

/*
 * Alive: beaten within two leases.  A host beats every quarter of
 * target_lease; after two leases without one its targets' leases have
 * run out too, and the other hosts take them back.  A host that stopped
 * cleanly is not alive either once that time has passed: its last beat
 * said running 0.  The hosts of a farm share one target_lease.
 */
static bool
alive(const struct api_req *req, const struct queue_host *h, int64_t now)
{
	int64_t lease_ms = (int64_t)req->env->conf->target_lease * 1000;

	return now - h->seen_at <= 2 * lease_ms;
}

static void
hosts_listed(void *data, int rc)
{
	struct hosts_read *r = data;
	struct api_req *req = r->req;
	struct sbuf b = { 0 };
	int64_t now = util_now_ms();

	if (rc != 0) {
		api_reply_queue_failed(req, rc, "the job queue failed");
		req->complete(req);
		return;
	}
	/* Rows other hosts wrote: their text is made valid UTF-8. */
	sbuf_adds(&b, "{\"hosts\":[");
	for (size_t i = 0; i < r->n; i++) {
		const struct queue_host *h = &r->hosts[i];

		if (i > 0)
			sbuf_addc(&b, ',');
		sbuf_adds(&b, "{\"name\":");
		utf8_json_string(&b, h->name);
		sbuf_adds(&b, ",\"base_url\":");
		utf8_json_string(&b, h->base_url);
		sbuf_adds(&b, ",\"version\":");
		utf8_json_string(&b, h->version);
		sbuf_adds(&b, ",\"slots\":");
		sbuf_addi(&b, h->slots);
		sbuf_adds(&b, ",\"running\":");
		sbuf_addi(&b, h->running);
		sbuf_adds(&b, ",\"started_at\":");
		sbuf_addi(&b, h->started_at);
		sbuf_adds(&b, ",\"seen_at\":");
		sbuf_addi(&b, h->seen_at);
		sbuf_adds(&b, alive(req, h, now) ? ",\"alive\":true}" :
		    ",\"alive\":false}");
	}
	sbuf_adds(&b, "]}");
	api_reply_sbuf(req, 200, &b);
	req->complete(req);
}

static enum api_result
list_hosts(struct api_req *req)
{
	struct hosts_read *r = api_req_state(req, sizeof *r,
	    hosts_read_release);

	r->req = req;
	queue_hosts(req->env->queue, &r->hosts, &r->n, hosts_listed, r);
	return API_PENDING;
}

const struct api_route api_hosts_routes[] = {
	{ "GET", "/v1/hosts", API_SCOPE_READ, list_hosts },
	{ NULL, NULL, 0, NULL },
};
