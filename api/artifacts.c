/*
 * Downloads: a job's artifacts, its SHA256SUMS, their minisign signature
 * and the provenance.  Every file is a blob of the content-addressed
 * store found through the job's records: a URL names a job, a target and
 * a file name that are looked up, never a path, so nothing outside the
 * store can be reached whatever the URL holds.  Files are sent from
 * their descriptor, never read into memory.  On a farm, a blob this
 * host's store lacks is the store's of the host that made it (the
 * target's host; the signer's for the signed files): the answer sends
 * the client there (api_reply_from_owner()).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "../lib/utf8.h"
#include "../lib/util.h"
#include "../lib/xmalloc.h"

/* 410 for a job whose files retention removed; true when it answered. */
static bool
gone(struct api_req *req, const struct job *job)
{
	char when[40];

	if (job->expired_at == 0)
		return false;
	util_format_time(when, sizeof when, job->expired_at);
	api_reply_problem(req, 410, "job %lld's files were removed by the "
	    "retention policy at %s", (long long)job->id, when);
	return true;
}

/*
 * Every route here reads the job of params[0], then answers from it: the
 * read completes later (queue.h), so a route is a check of its URL, then
 * a step that runs with the job once it is read.  A step that waits on
 * the queue again returns API_PENDING and completes the request itself.
 */
struct art_read;
typedef enum api_result (*job_step)(struct api_req *req,
    const struct art_read *r);

struct art_read {
	struct api_req *req;
	int64_t id;
	struct job *job;		/* queue_get's */
	job_step step;
	struct target t;		/* an artifact's target */
	size_t which;			/* a signed file: signed_types[] */
};

static void
art_read_release(void *data)
{
	job_free(((struct art_read *)data)->job);
}

static void
job_read(void *data, int rc)
{
	struct art_read *r = data;
	struct api_req *req = r->req;

	if (rc != 0)
		api_reply_problem(req, rc == QUEUE_ENOTFOUND ? 404 : 500,
		    "no job %lld", (long long)r->id);
	else if (!gone(req, r->job) && r->step(req, r) == API_PENDING)
		return;
	req->complete(req);
}

/* Read the job of params[0] and then step() with t (if not NULL) and
 * which; answers 404 now for an id that names no job. */
static enum api_result
find_job(struct api_req *req, job_step step, const struct target *t,
    size_t which)
{
	struct art_read *r;
	int64_t id;

	if (util_parse_int64(req->params[0], 1, INT64_MAX, &id) != 0) {
		api_reply_problem(req, 404, "no job '%.64s'", req->params[0]);
		return API_DONE;
	}
	r = api_req_state(req, sizeof *r, art_read_release);
	r->req = req;
	r->id = id;
	r->step = step;
	if (t != NULL)
		r->t = *t;
	r->which = which;
	queue_get(req->env->queue, id, &r->job, job_read, r);
	return API_PENDING;
}

static void
add_url(struct sbuf *b, int64_t id, const char *rest)
{
	sbuf_adds(b, "\"/v1/jobs/");
	sbuf_addi(b, id);
	sbuf_addc(b, '/');
	sbuf_adds(b, rest);
	sbuf_addc(b, '"');
}

static const struct {
	const char *key, *name;
} signed_files[] = {
	{ ",\"sums\":", "SHA256SUMS" },
	{ ",\"signature\":", "SHA256SUMS.minisig" },
	{ ",\"provenance\":", "provenance.intoto.jsonl" },
};

/* GET /v1/jobs/{id}/artifacts */
static enum api_result
artifacts_of(struct api_req *req, const struct art_read *r)
{
	const struct job *job = r->job;
	struct sbuf b = { 0 };
	bool first = true, signed_ = false;

	signed_ = job->sums_sha256 != NULL;
	sbuf_adds(&b, "{\"job\":");
	sbuf_addi(&b, job->id);
	sbuf_adds(&b, ",\"state\":\"");
	sbuf_adds(&b, job_state_name(job->state));
	sbuf_adds(&b, "\",\"signed\":");
	sbuf_adds(&b, signed_ ? "true" : "false");
	for (size_t i = 0; i < ARRAY_SIZE(signed_files); i++) {
		sbuf_adds(&b, signed_files[i].key);
		if (signed_)
			add_url(&b, job->id, signed_files[i].name);
		else
			sbuf_adds(&b, "null");
	}
	sbuf_adds(&b, ",\"artifacts\":[");
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *t = &job->targets[i];
		char url[TARGET_NAME_MAX], err[128];
		struct target tg;

		if (target_parse_row(&tg, t->target, err, sizeof err) != 0)
			continue;
		target_url_name(url, &tg);
		for (size_t a = 0; a < t->nartifacts; a++) {
			const struct artifact *art = &t->artifacts[a];
			char *rest;

			if (!first)
				sbuf_addc(&b, ',');
			first = false;
			sbuf_adds(&b, "{\"target\":\"");
			sbuf_adds(&b, t->target);
			sbuf_adds(&b, "\",\"name\":");
			utf8_json_string(&b, art->name);
			sbuf_adds(&b, ",\"size\":");
			sbuf_addi(&b, art->size);
			sbuf_adds(&b, ",\"sha256\":");
			utf8_json_string(&b, art->sha256);
			sbuf_adds(&b, ",\"cached\":");
			sbuf_adds(&b, t->cached ? "true" : "false");
			sbuf_adds(&b, ",\"url\":");
			rest = xasprintf("artifacts/%s/%s", url, art->name);
			add_url(&b, job->id, rest);
			free(rest);
			sbuf_addc(&b, '}');
		}
	}
	sbuf_adds(&b, "]}");
	api_reply_sbuf(req, 200, &b);
	return API_DONE;
}

static enum api_result
list_artifacts(struct api_req *req)
{
	return find_job(req, artifacts_of, NULL, 0);
}

/* Whether the If-None-Match header names etag (or is "*"). */
bool
api_etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);

	while (inm != NULL && *inm != '\0') {
		inm += strspn(inm, " \t,");
		if (*inm == '*')
			return true;
		if (strncmp(inm, "W/", 2) == 0)
			inm += 2;	/* weak comparison, RFC 9110 13.1.2 */
		if (strncmp(inm, etag, n) == 0 &&
		    (inm[n] == '\0' || inm[n] == ',' || inm[n] == ' ' ||
		    inm[n] == '\t'))
			return true;
		inm = strchr(inm, ',');
	}
	return false;
}

/*
 * One "bytes=" range of a file of `size` bytes.  Returns 1 with
 * [*off, *off + *len) for a satisfiable single range, 0 to send the whole
 * file (no range, a multi-range or another unit: RFC 9110 lets a server
 * ignore it), -1 when unsatisfiable (416).
 */
static int
parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
	int64_t a, b;
	char *dash, first[32], last[32];
	size_t n;

	if (h == NULL || strncmp(h, "bytes=", 6) != 0)
		return 0;
	h += 6;
	h += strspn(h, " ");
	if (strchr(h, ',') != NULL)
		return 0;
	dash = strchr(h, '-');
	if (dash == NULL)
		return 0;
	n = (size_t)(dash - h);
	if (n >= sizeof first || strlen(dash + 1) >= sizeof last)
		return 0;
	memcpy(first, h, n);
	first[n] = '\0';
	snprintf(last, sizeof last, "%s", dash + 1);
	last[strcspn(last, " ")] = '\0';
	if (first[0] == '\0') {
		/* bytes=-N: the last N bytes. */
		if (util_parse_int64(last, 1, INT64_MAX, &b) != 0)
			return last[0] == '0' ? -1 : 0;
		if (size == 0)
			return -1;
		*len = b < size ? b : size;
		*off = size - *len;
		return 1;
	}
	if (util_parse_int64(first, 0, INT64_MAX, &a) != 0)
		return 0;
	if (last[0] == '\0')
		b = size - 1;
	else if (util_parse_int64(last, 0, INT64_MAX, &b) != 0 || b < a)
		return 0;
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return 1;
}

/*
 * Send blob `hex` as `name`: ETag (the digest), If-None-Match, Range
 * (If-Range), Content-Disposition; HEAD gets the same headers.  A blob
 * not in this host's store but made by another host, `owner`, is
 * answered from the farm's hosts: API_PENDING.
 */
static enum api_result
send_blob(struct api_req *req, const char *hex, const char *name,
    const char *type, const char *owner)
{
	const char *inm = req->header(req, "If-None-Match");
	const char *range = req->header(req, "Range");
	const char *ifr = req->header(req, "If-Range");
	char etag[STORE_HEX_LEN + 3];
	int64_t off = 0, len = 0;
	struct stat sb;
	int fd, r;

	snprintf(etag, sizeof etag, "\"%s\"", hex);
	fd = store_open_blob(req->env->store, hex);
	if (fd == -ENOENT && api_host_other(req->env, owner) != NULL) {
		char *what = xasprintf("job %s's %s", req->params[0], name);

		api_reply_from_owner(req, owner, what, NULL);
		free(what);
		return API_PENDING;
	}
	if (fd < 0) {
		api_reply_problem(req, fd == -ENOENT ? 404 : 500, "%s is "
		    "recorded but its content (sha256 %s) is not in the "
		    "store: %s", name, hex, strerror(-fd));
		return API_DONE;
	}
	if (fstat(fd, &sb) != 0) {
		close(fd);
		api_reply_problem(req, 500, "cannot read %s", name);
		return API_DONE;
	}
	/* The content under a digest never changes: caches may keep it. */
	api_add_header(req, "ETag", "%s", etag);
	api_add_header(req, "Cache-Control", "public, max-age=31536000, "
	    "immutable");
	api_add_header(req, "Accept-Ranges", "bytes");
	if (api_etag_matches(inm, etag)) {
		close(fd);
		req->status = 304;
		req->resp_type = type;
		free(req->resp_body);
		req->resp_body = NULL;
		req->resp_len = 0;
		return API_DONE;
	}
	api_add_header(req, "Content-Disposition", "attachment; "
	    "filename=\"%s\"", name);
	/* If-Range with another validator: the whole file (RFC 9110 13.1.5). */
	r = ifr != NULL && strcmp(ifr, etag) != 0 ? 0 :
	    parse_range(range, sb.st_size, &off, &len);
	if (r < 0) {
		close(fd);
		api_reply_problem(req, 416, "the range '%.64s' is outside "
		    "%s (%lld bytes)", range, name, (long long)sb.st_size);
		api_add_header(req, "Content-Range", "bytes */%lld",
		    (long long)sb.st_size);
		return API_DONE;
	}
	if (r > 0) {
		api_add_header(req, "Content-Range", "bytes %lld-%lld/%lld",
		    (long long)off, (long long)(off + len - 1),
		    (long long)sb.st_size);
		api_reply_fd_range(req, 206, type, fd, off, len);
		return API_DONE;
	}
	api_reply_fd_range(req, 200, type, fd, 0, sb.st_size);
	return API_DONE;
}

/* GET /v1/jobs/{id}/artifacts/{target}/{file} */
static enum api_result
artifact_of(struct api_req *req, const struct art_read *r)
{
	const struct job *job = r->job;
	const char *file = req->params[2];
	const struct target *t = &r->t;

	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *jt = &job->targets[i];

		if (strcmp(jt->target, t->name) != 0)
			continue;
		for (size_t a = 0; a < jt->nartifacts; a++) {
			const struct artifact *art = &jt->artifacts[a];

			if (strcmp(art->name, file) != 0)
				continue;
			if (store_digest_valid(art->sha256))
				return send_blob(req, art->sha256, file,
				    "application/octet-stream", jt->host);
			api_reply_problem(req, 404, "%s of %s was recorded "
			    "before kiln stored artifacts", file, t->name);
			return API_DONE;
		}
		api_reply_problem(req, 404, "job %lld %s has no artifact '%s' "
		    "(target %s)", (long long)job->id, t->name, file,
		    target_state_name(jt->state));
		return API_DONE;
	}
	api_reply_problem(req, 404, "job %lld has no target %s",
	    (long long)job->id, t->name);
	return API_DONE;
}

static enum api_result
get_artifact(struct api_req *req)
{
	const char *file = req->params[2];
	struct target t;
	char err[160];

	/* The router captures one path segment; anything else a file name
	 * could hold is refused before it is looked up. */
	if (!store_name_ok(file)) {
		api_reply_problem(req, 400, "'%.64s' is not an artifact name "
		    "(letters, digits, '.', '_', '+', '-'; not first '.' or "
		    "'-')", file);
		return API_DONE;
	}
	if (target_parse_url_row(&t, req->params[1], err, sizeof err) != 0) {
		api_reply_problem(req, 404, "no target '%.64s': %s (targets "
		    "are written like linux_arm_v7 in URLs)", req->params[1],
		    err);
		return API_DONE;
	}
	return find_job(req, artifact_of, &t, 0);
}

/* The signed files: 404/409 with the reason until they exist. */
static const struct {
	const char *name, *type;
} signed_types[] = {
	{ "SHA256SUMS", "text/plain; charset=utf-8" },
	{ "SHA256SUMS.minisig", "text/plain; charset=utf-8" },
	{ "provenance.intoto.jsonl", "application/jsonl" },
};

static enum api_result
signed_of(struct api_req *req, const struct art_read *r)
{
	const struct job *job = r->job;
	const char *name = signed_types[r->which].name;
	const char *hex;

	hex = r->which == 0 ? job->sums_sha256 : r->which == 1 ?
	    job->sig_sha256 : job->prov_sha256;
	if (hex != NULL)
		return send_blob(req, hex, name, signed_types[r->which].type,
		    job->signed_by);
	if (!job_state_terminal(job->state))
		api_reply_problem(req, 409, "job %lld is %s: %s is made when "
		    "every target has succeeded", (long long)job->id,
		    job_state_name(job->state), name);
	else if (job->state != JOB_SUCCEEDED)
		api_reply_problem(req, 404, "job %lld %s: only a job whose "
		    "every target succeeded gets a signed %s; its targets' "
		    "artifacts are still listed at /v1/jobs/%lld/artifacts",
		    (long long)job->id, job_state_name(job->state), name,
		    (long long)job->id);
	else {
		api_reply_problem(req, 503, "job %lld is being signed; try "
		    "again in a moment", (long long)job->id);
		api_add_header(req, "Retry-After", "1");
	}
	return API_DONE;
}

static enum api_result
get_signed(struct api_req *req, size_t which)
{
	return find_job(req, signed_of, NULL, which);
}

static enum api_result
get_sums(struct api_req *req)
{
	return get_signed(req, 0);
}

static enum api_result
get_minisig(struct api_req *req)
{
	return get_signed(req, 1);
}

static enum api_result
get_provenance(struct api_req *req)
{
	return get_signed(req, 2);
}

const struct api_route api_artifacts_routes[] = {
	{ "GET", "/v1/jobs/{id}/artifacts", API_SCOPE_DOWNLOAD, list_artifacts },
	{ "GET", "/v1/jobs/{id}/artifacts/{target}/{file}", API_SCOPE_DOWNLOAD,
	    get_artifact },
	{ "GET", "/v1/jobs/{id}/SHA256SUMS", API_SCOPE_DOWNLOAD, get_sums },
	{ "GET", "/v1/jobs/{id}/SHA256SUMS.minisig", API_SCOPE_DOWNLOAD,
	    get_minisig },
	{ "GET", "/v1/jobs/{id}/provenance.intoto.jsonl", API_SCOPE_DOWNLOAD,
	    get_provenance },
	{ NULL, NULL, 0, NULL },
};
