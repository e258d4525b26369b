/*
 * GET /v1/hosts: the kilnd hosts of the farm as the queue's hosts table
 * has them (each host writes its own row when it starts, with its
 * heartbeats and when it stops), and whether each is alive.  On SQLite,
 * the one host.  And the answer for a file another host holds (a blob in
 * its store, a log in its state directory): 307 to it while it is alive
 * (or its answer passed on, proxy_downloads: api/proxy.c), 503 while it
 * is not.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../lib/utf8.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

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
 * said running 0.  Each host by its own lease, as its beat recorded
 * it (hosts on one farm may have different ones); this host's when not
 * recorded.
 */
bool
api_host_alive(const struct api_env *env, const struct queue_host *h,
    int64_t now)
{
	int64_t lease_ms = h->lease_ms > 0 ? h->lease_ms :
	    (int64_t)env->conf->target_lease * 1000;

	return now - h->seen_at <= 2 * lease_ms;
}

const char *
api_host_other(const struct api_env *env, const char *owner)
{
	const char *me = env->conf->host_name;

	if (owner == NULL || !queue_shared(env->queue) ||
	    (me != NULL && strcmp(owner, me) == 0))
		return NULL;
	return owner;
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
		sbuf_adds(&b, ",\"toolchains\":");
		if (h->toolchains != NULL)
			utf8_json_string(&b, h->toolchains);
		else
			sbuf_adds(&b, "null");
		sbuf_adds(&b, api_host_alive(req->env, h, now) ? ",\"alive\":true}" :
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

/* A file's owner, while its hosts are read (not the request's state: the
 * handler that calls api_reply_from_owner() has its own). */
struct owner_read {
	struct api_req *req;
	char *owner, *what, *query;
	struct queue_host *hosts;
	size_t n;
};

/* The path as a URL's: every byte but unreserved ones and '/' as %HH
 * (the router decoded it). */
static void
add_path(struct sbuf *b, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL)
			sbuf_addc(b, (char)*p);
		else {
			sbuf_addc(b, '%');
			sbuf_addc(b, hex[*p >> 4]);
			sbuf_addc(b, hex[*p & 15]);
		}
	}
}

/* Whether base_url `u` is this host's own (trailing '/' aside): the row
 * of a host renamed since, or of one given another's base_url, that would
 * send the client back here, round and round. */
static bool
own_url(const struct api_env *env, const char *u)
{
	const char *me = env->conf->base_url;
	size_t a, b;

	if (me == NULL)
		return false;
	a = strlen(me);
	b = strlen(u);
	while (a > 0 && me[a - 1] == '/')
		a--;
	while (b > 0 && u[b - 1] == '/')
		b--;
	return a == b && strncmp(me, u, a) == 0;
}

/* Answer for the file, unless it is proxied: then false, and the proxy
 * completes the request. */
static bool
owner_answer(struct owner_read *o, int rc)
{
	struct api_req *req = o->req;
	const struct queue_host *h = NULL;
	struct sbuf url = { 0 };
	size_t n;

	if (rc != 0) {
		api_reply_queue_failed(req, rc, "the farm's hosts could not be "
		    "read");
		return true;
	}
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->hosts[i].name, o->owner) == 0)
			h = &o->hosts[i];
	if (h == NULL || !api_host_alive(req->env, h, util_now_ms()) ||
	    h->base_url == NULL || h->base_url[0] == '\0' ||
	    own_url(req->env, h->base_url)) {
		/* Its files come back with it; a retry in a lease's quarter
		 * (a host's beat) sees it as soon as the farm does. */
		api_reply_problem(req, 503, "%s is on host %s, which %s; try "
		    "again once it is back", o->what, o->owner, h == NULL ?
		    "is not one of the farm's hosts" :
		    h->base_url == NULL || h->base_url[0] == '\0' ?
		    "has no base_url" : own_url(req->env, h->base_url) ?
		    "has this host's base_url (a former name of this host?)" :
		    "is not running");
		api_add_header(req, "Retry-After", "%u",
		    req->env->conf->target_lease / 4);
		return true;
	}
	n = strlen(h->base_url);
	while (n > 0 && h->base_url[n - 1] == '/')
		n--;
	sbuf_add(&url, h->base_url, n);
	add_path(&url, req->path);
	if (o->query != NULL && o->query[0] != '\0') {
		sbuf_addc(&url, '?');
		sbuf_adds(&url, o->query);
	}
	sbuf_addc(&url, '\0');
	if (req->env->conf->proxy_downloads && req->env->loop != NULL) {
		api_proxy(req, url.p, o->owner, o->what);
		sbuf_free(&url);
		return false;
	}
	api_reply_problem(req, 307, "%s is on host %s: %s", o->what, o->owner,
	    url.p);
	api_add_header(req, "Location", "%s", url.p);
	sbuf_free(&url);
	return true;
}

static void
owner_hosts_read(void *data, int rc)
{
	struct owner_read *o = data;
	struct api_req *req = o->req;
	bool answered = owner_answer(o, rc);

	queue_hosts_free(o->hosts, o->n);
	free(o->owner);
	free(o->what);
	free(o->query);
	free(o);
	if (answered)
		req->complete(req);
}

void
api_reply_from_owner(struct api_req *req, const char *owner,
    const char *what, const char *query)
{
	struct owner_read *o = xcalloc(1, sizeof *o);

	o->req = req;
	o->owner = xstrdup(owner);
	o->what = xstrdup(what);
	o->query = query != NULL ? xstrdup(query) : NULL;
	queue_hosts(req->env->queue, &o->hosts, &o->n, owner_hosts_read, o);
}

const struct api_route api_hosts_routes[] = {
	{ "GET", "/v1/hosts", API_SCOPE_READ, list_hosts },
	{ NULL, NULL, 0, NULL },
};
