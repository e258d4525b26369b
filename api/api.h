/*
 * The REST surface.  api/ parses, validates, calls the queue through its
 * interface and renders; it holds no SQL and forks nothing itself.  Two
 * waits use the loop (api_env.loop): a proxied download's fetch
 * (api/proxy.c, through daemon/upstream.h) and a farm follower's timer
 * while its target is queued (api/logs.c).  The HTTP layer (http/http.c) fills a struct api_req,
 * calls api_handle(), and sends what the handler left in it.
 *
 * A handler either answers at once (API_DONE) or, for work that waits on
 * the queue (every read and write of queue.h completes later, never
 * inside the call), returns API_PENDING and later calls
 * req->complete(req) from the loop thread after setting the answer.
 * Until then the request stays allocated, even when its client went away
 * meanwhile (complete() then only frees it): a completion may always use
 * req, and must not once it called complete().  A handler that needs
 * state across its steps keeps it in api_req_state(), released with the
 * request, so that no step has to know whether it is the last.
 */
#ifndef KILN_API_H
#define KILN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../daemon/conf.h"
#include "../daemon/job.h"
#include "../daemon/jobjson.h"
#include "../daemon/db/queue.h"
#include "../lib/sbuf.h"
#include "../daemon/submit.h"
#include "../daemon/store.h"

/*
 * What a route needs when tokens are configured.  The order matters: a
 * token of a scope may use the routes of the scopes before it.  DOWNLOAD
 * routes (artifacts, signed files, the public key, /healthz) need READ,
 * or nothing with public_read = yes.
 */
enum api_scope { API_SCOPE_PUBLIC, API_SCOPE_READ, API_SCOPE_SUBMIT,
	API_SCOPE_ADMIN, API_SCOPE_DOWNLOAD };

enum api_result { API_DONE, API_PENDING };

#define API_MAX_PARAMS 4
#define API_MAX_HEADERS 12

/* Submission failed for lack of room (503 with Retry-After), or kilnd is
 * shutting down (503): the submitter's codes. */
#define API_EFULL SUBMIT_EFULL
#define API_ESTOPPING SUBMIT_ESTOPPING

typedef submit_done_fn api_submit_done;

struct toolchains;
struct looplag;
struct events;

/* What the handlers may use of the daemon. */
struct api_env {
	struct queue *queue;
	const struct kiln_config *conf;
	int64_t started_at;		/* ms since the epoch */
	/*
	 * Queue `job` for the next group commit; `done` runs on the loop
	 * thread once the commit is durable (rc 0) or failed.  Returns 0,
	 * API_EFULL or API_ESTOPPING (then `done` is never called).
	 */
	int (*submit)(void *ctx, struct job *job, api_submit_done done,
	    void *data);
	void *submit_ctx;

	/* Builds (the scheduler); ctx is build_ctx. */
	void (*cancel)(void *ctx, int64_t job_id);
	int (*log_open)(void *ctx, int64_t job_id, const char *target,
	    int *fd);
	/* The offsets of kilnd's own lines in it (logview.h); may be NULL. */
	int (*log_marks_open)(void *ctx, int64_t job_id, const char *target,
	    int *fd);
	bool (*log_live)(void *ctx, int64_t job_id, const char *target);
	void *(*log_watch)(void *ctx, int64_t job_id, const char *target,
	    void (*wake)(void *), void *data);
	void (*log_unwatch)(void *ctx, void *handle);
	void (*pause)(void *ctx, bool paused);
	bool (*paused)(void *ctx);
	unsigned (*running)(void *ctx);
	void *build_ctx;

	const char *pubkey;		/* the minisign public key file */
	const char *key_id;		/* its id, 16 hex digits */
	struct store *store;		/* artifacts, sums, signatures */
	/* The Go toolchains found; NULL: none.  A reload replaces them. */
	const struct toolchains *toolchains;
	/* The loop-lag probe (daemon/looplag.h); NULL: none. */
	const struct looplag *looplag;
	/* The loop the proxy's curl children run on (daemon/upstream.h),
	 * handed down untouched: api/ itself holds no handle of it. */
	struct uv_loop_s *loop;
	/* The live events (daemon/events.h): GET /v1/events reads them,
	 * cancel and priority changes add to them.  NULL: none. */
	struct events *events;
};

/*
 * A streamed answer of unknown length (chunked): read() fills buf and
 * returns the count, 0 when nothing is there yet but more will come (the
 * HTTP layer then waits until wake(waker) is called), or API_STREAM_END.
 * free(cls) runs when the response is done with.  size: the bytes it
 * gives, when known in advance (sent as Content-Length; the stream must
 * give exactly that many), else 0.  empty: known to give none (sent as
 * Content-Length: 0; read is never called).
 */
#define API_STREAM_END (-1)
#define API_STREAM_ERROR (-2)
struct api_stream {
	long (*read)(void *cls, char *buf, size_t max,
	    void (*wake)(void *waker), void *waker);
	void (*free)(void *cls);
	void *cls;
	uint64_t size;
	bool empty;
};

struct api_header {
	const char *name;
	char *value;
};

struct api_req {
	const struct api_env *env;
	const char *method;		/* as received; HEAD is served as GET */
	const char *version;		/* "HTTP/1.1", or NULL (tests) */
	const char *path;		/* decoded path, no query */
	const char *route;		/* the matched pattern, or NULL */
	/* Query argument lookup (decoded value, or NULL). */
	const char *(*query)(struct api_req *req, const char *name);
	const char *content_type;	/* request header, or NULL */
	/* Request header lookup (or NULL). */
	const char *(*header)(struct api_req *req, const char *name);
	const char *body;
	size_t body_len;
	char *params[API_MAX_PARAMS];	/* {captures} of the route pattern */
	size_t nparams;

	/* The answer. */
	unsigned status;
	char *resp_body;		/* malloc'd */
	size_t resp_len;
	const char *resp_type;
	struct api_stream stream;	/* set: streamed, resp_body unused */
	int resp_fd;			/* > 0: send this file */
	int64_t resp_off, resp_size;	/* its part to send; size -1: all */
	struct api_header headers[API_MAX_HEADERS];
	size_t nheaders;

	/* For API_PENDING handlers: set by the HTTP layer. */
	void (*complete)(struct api_req *req);
	void *http;
	/* A handler's own state across its steps (api_req_state()). */
	void *state;
	void (*state_release)(void *state);
	/* For API_PENDING handlers that wait on something slow (another
	 * host: api/proxy.c): called once if the HTTP layer lets go of the
	 * request while it is pending (a forced stop).  The handler then
	 * answers at once with req->complete(req), which frees it. */
	void (*gone)(void *data);
	void *gone_data;
	/* Let go of at the start of a clean stop too, not only at a forced
	 * one: a wait that nothing but the stop would end early (a farm's
	 * follower waiting for a claim, api/logs.c). */
	bool gone_at_stop;
};

typedef enum api_result (*api_handler)(struct api_req *req);

struct api_route {
	const char *method;
	const char *pattern;		/* "/v1/jobs/{id}" */
	enum api_scope scope;
	api_handler handler;
};

/* Route tables, one per resource file, ended by a zeroed entry. */
extern const struct api_route api_jobs_routes[];
extern const struct api_route api_health_routes[];
extern const struct api_route api_logs_routes[];
extern const struct api_route api_targets_routes[];
extern const struct api_route api_toolchains_routes[];
extern const struct api_route api_admin_routes[];
extern const struct api_route api_artifacts_routes[];
extern const struct api_route api_metrics_routes[];
extern const struct api_route api_about_routes[];
extern const struct api_route api_hosts_routes[];
extern const struct api_route api_ui_routes[];
extern const struct api_route api_retry_routes[];
extern const struct api_route api_projects_routes[];
extern const struct api_route api_events_routes[];
/* The OpenAPI 3.1 document of every route (api/openapi.json). */
extern const char api_openapi_json[];

/* Route and run the request; 404/405 when nothing matches. */
enum api_result api_handle(struct api_req *req);
/* Release what the request holds (params, answer, headers, state). */
void api_req_release(struct api_req *req);
/*
 * A zeroed block of `size` bytes that lives as long as the request: a
 * handler's state while it waits on the queue.  api_req_release() calls
 * release(state) (when not NULL: for what the state points to) and frees
 * it.  One per request.
 */
void *api_req_state(struct api_req *req, size_t size,
    void (*release)(void *state));
/* Every route, for listing (tests, OpenAPI): NULL after the last. */
const struct api_route *api_route_at(size_t i);

/* Answers. */
void api_reply_json(struct api_req *req, unsigned status, json_t *body);
/* Answer with a stream (see struct api_stream). */
void api_reply_stream(struct api_req *req, unsigned status,
    const char *type, const struct api_stream *stream);
/* Answer with the contents of an open file (taken over). */
void api_reply_fd(struct api_req *req, unsigned status, const char *type,
    int fd);
/* Answer with size bytes of the file from off (taken over). */
void api_reply_fd_range(struct api_req *req, unsigned status,
    const char *type, int fd, int64_t off, int64_t size);
/* Answer with b's JSON text (taken over; b is empty after). */
void api_reply_sbuf(struct api_req *req, unsigned status, struct sbuf *b);
void api_reply_problem(struct api_req *req, unsigned status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A queue call failed with rc: 503 and Retry-After when the database is
 * away (QUEUE_EDOWN), else 500; `what` says what failed. */
void api_reply_queue_failed(struct api_req *req, int rc, const char *what);
void api_add_header(struct api_req *req, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *api_status_title(unsigned status);


/*
 * The farm's hosts (api/hosts.c).  Alive: h beat within two target
 * leases of now (ms).
 */
bool api_host_alive(const struct api_env *env, const struct queue_host *h,
    int64_t now);
/*
 * A file of the request (`what` names it) is not on this host but on
 * host `owner`: read the farm's hosts, then answer 307 to owner's
 * base_url with the request's path and `query` ("a=1&b=2", or NULL) when
 * owner is alive and not this host (proxy_downloads: api_proxy() to that
 * URL instead), else 503 with Retry-After and a
 * detail naming it.  Calls req->complete(req) once answered: a handler
 * that calls it returns API_PENDING, a completion does not complete.
 */
/*
 * `owner` when it names a farm host other than this one (its files are
 * there), else NULL.  Only a shared queue has other hosts: on SQLite
 * another name is this host's earlier host_name.
 */
const char *api_host_other(const struct api_env *env, const char *owner);
void api_reply_from_owner(struct api_req *req, const char *owner,
    const char *what, const char *query);
/*
 * proxy_downloads = yes (api/proxy.c): answer with what the owner answers
 * to the same request at url (its base_url, the path and the query):
 * GET or HEAD with the client's Range, If-None-Match, If-Range and
 * Authorization; its status and its Content-Type, Content-Length, ETag,
 * Content-Range, Accept-Ranges, Content-Disposition, Cache-Control,
 * Retry-After; the body streamed as it comes.  502 naming `owner` when it
 * cannot be reached; `what` names the file.  Calls req->complete(req)
 * once the answer is set, as api_reply_from_owner() does.
 */
void api_proxy(struct api_req *req, const char *url, const char *owner,
    const char *what);

/* Job request body -> a new job; 400/422 with detail on failure. */
int api_parse_job_request(const char *body, size_t len, struct job **out,
    unsigned *status, char *detail, size_t detailsize);
/* The notify URL's grammar (the repo, ref and recipe: lib/validate.h). */
int api_check_notify_url(const char *url, char *why, size_t whysize);

/* "application/json" with optional parameters. */
bool api_is_json_type(const char *ct);
/* Whether If-None-Match (NULL: absent) names the quoted `etag`, or is
 * "*"; weak comparison. */
bool api_etag_matches(const char *inm, const char *etag);
/* Whether the caller holds the admin scope (every caller does on a farm
 * without tokens, which listens only on loopback). */
bool api_caller_is_admin(struct api_req *req);
/* Whether the caller holds the read scope (a token of any scope, or any
 * caller on a farm without tokens); public_read does not give it. */
bool api_caller_may_read(struct api_req *req);
/* The caller's scope: API_SCOPE_ADMIN on a farm without tokens, else its
 * token's (API_SCOPE_PUBLIC: no valid token). */
enum api_scope api_caller_scope(struct api_req *req);
/* "none", "read", "submit" or "admin", for what api_caller_scope() gives. */
const char *api_scope_name(enum api_scope s);
/* The [tokens] name of the caller's token, or NULL (no valid token, or a
 * farm without tokens).  Points into the configuration: copy it to keep
 * it past the handler. */
const char *api_caller_token(struct api_req *req);
/*
 * GET .../log?follow=1 with Accept: text/event-stream (api/logs-sse.c):
 * `inner` (the view's stream, taken over) as `event: log` events, each
 * with one chunk as a JSON string, then `event: end`; keep-alive
 * comments while it waits.
 */
void api_log_sse(struct api_req *req, const struct api_stream *inner);
/* Whether the request's Accept header asks for text/event-stream. */
bool api_wants_sse(struct api_req *req);
/* Queue `job` (taken over) for the group commit and answer 201 with it
 * once durable, or 503/500 now.  Returns what the handler returns. */
enum api_result api_submit_job(struct api_req *req, struct job *job);
/* A project's settings on a job of its repo. */
void api_apply_project(struct job *job, const struct conf_project *p);
/* A webhook delivery is being committed right now. */
bool api_delivery_pending(const char *forge, const char *id);
/*
 * Mark the delivery of `job` (its delivery id, and its push when it has
 * a project and a commit) as being committed (api/pending.c): from the
 * start of its redelivery lookups until api_submit_job() holds it, and
 * from then until its commit returned.  A second delivery meanwhile
 * waits (409) instead of finding nothing and building the push twice.
 * NULL for a job without a delivery id; releasing NULL does nothing.
 */
struct api_pending;
struct api_pending *api_pending_hold(const struct job *job);
void api_pending_release(struct api_pending *p);
/* A webhook push of (project, ref, pushed commit) is being committed. */
bool api_push_pending(const char *project, const char *ref,
    const char *commit);

extern const struct api_route api_hooks_routes[];

#endif
