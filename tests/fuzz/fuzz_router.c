/*
 * libFuzzer: whole requests through the router and every handler —
 * method, path, query, headers and body — against a real SQLite queue
 * and store in a temporary directory, with tokens and a project
 * configured.  The input is
 *
 *     METHOD \n PATH[?QUERY] \n (NAME: VALUE \n)* \n BODY
 *
 * A signature header whose value is "AUTO" is replaced by the correct
 * HMAC of the body (or the project's token for GitLab), so the fuzzer
 * gets past the signature check into the webhook payload parsers.
 * Checks: every answer has a status from 100 to 599, problems are JSON
 * with that status, and nothing leaks (ASan).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <git2.h>
#include <jansson.h>
#include <sodium.h>

#include "api/api.h"
#include "daemon/callback.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzzing-secret-0123456789"
/* The token "fuzz-token-0123456789", admin; "fuzz-submit-0123456789",
 * submit (the owner of job 1, which setup() stores). */
static const char conf_text[] =
    "[kilnd]\n"
    "max_queued = 100\n"
    "max_priority = 10\n"
    "[tokens]\n"
    "ops = admin f7726601e6ccb0a36db335ce6bc4beffba2c9c5c561747d8bc2364155b27c77c\n"
    "ci = submit 986b1b1c0c14c3a9c86c4d97626117902de020cfa0264fff0e4305136d0c5df0\n"
    "[project p]\n"
    "repo = https://example.org/p.git\n"
    "secret = " SECRET "\n"
    "targets = linux/amd64\n";

static struct kiln_config conf;
static struct queue *queue;
static struct store *store;
static struct api_env env;

struct hdr {
	char *name, *value;
};
struct fuzz_req {
	struct api_req api;
	struct hdr h[16];
	size_t nh;
	char *query;
};

static const char *
header(struct api_req *req, const char *name)
{
	struct fuzz_req *f = (struct fuzz_req *)req;

	for (size_t i = 0; i < f->nh; i++)
		if (strcasecmp(f->h[i].name, name) == 0)
			return f->h[i].value;
	return NULL;
}

static const char *
query(struct api_req *req, const char *name)
{
	struct fuzz_req *f = (struct fuzz_req *)req;
	size_t n = strlen(name);
	const char *q = f->query;

	while (q != NULL && *q) {
		if (strncmp(q, name, n) == 0 && q[n] == '=')
			return q + n + 1;	/* up to the next '&': fine here */
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return NULL;
}

/* Submissions are refused: the queue is exercised through reads. */
static int
submit(void *ctx, struct job *job, api_submit_done done, void *data)
{
	(void)ctx;
	(void)job;
	(void)done;
	(void)data;
	return API_ESTOPPING;
}

static void cancel(void *ctx, int64_t id) { (void)ctx; (void)id; }
static int
log_open(void *ctx, int64_t id, const char *t, int *fd)
{
	(void)ctx; (void)id; (void)t; (void)fd;
	return -ENOENT;
}
static bool log_live(void *ctx, int64_t id, const char *t)
{
	(void)ctx; (void)id; (void)t;
	return false;
}
static void *
log_watch(void *ctx, int64_t id, const char *t, void (*w)(void *), void *d)
{
	(void)ctx; (void)id; (void)t; (void)w; (void)d;
	return NULL;
}
static void log_unwatch(void *ctx, void *h) { (void)ctx; (void)h; }
static void pause_(void *ctx, bool p) { (void)ctx; (void)p; }
static bool paused(void *ctx) { (void)ctx; return false; }
static unsigned running(void *ctx) { (void)ctx; return 0; }

/* The queue's writer delivers here; a handler that waits on it
 * (cancel, PATCH) is run to its completion. */
static uv_loop_t loop;
static int completed;

static void
complete(struct api_req *req)
{
	(void)req;
	completed = 1;
}

static void
submitted(void *data, int rc)
{
	if (rc != 0)
		abort();
	*(int *)data = 1;
}

static void
setup(void)
{
	char dir[] = "/tmp/kiln-fuzz-router.XXXXXX", err[512], *db;
	FILE *f;

	log_set_level(LOG_LVL_ERROR);
	if (mkdtemp(dir) == NULL)
		abort();
	conf_defaults(&conf);
	f = fmemopen((void *)conf_text, sizeof conf_text - 1, "r");
	if (f == NULL || conf_load_stream(&conf, f, "fuzz", err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_router: %s\n", err);
		abort();
	}
	fclose(f);
	db = xasprintf("%s/kiln.db", dir);
	if (queue_open(&queue, db, err, sizeof err) != 0 ||
	    store_open(&store, dir, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_router: %s\n", err);
		abort();
	}
	free(db);
	{
		/* A queued job of the submit token, for PATCH and cancel. */
		struct job *j = xcalloc(1, sizeof *j);
		j->repo = xstrdup("https://example.org/p.git");
		j->ref = xstrdup("refs/heads/main");
		j->submitted_by = xstrdup("ci");
		j->ntargets = 1;
		j->targets = xcalloc(1, sizeof *j->targets);
		snprintf(j->targets[0].target, sizeof j->targets[0].target,
		    "linux/amd64");
		int done = 0;

		uv_loop_init(&loop);
		if (queue_start(queue, &loop) != 0)
			abort();
		queue_submit(queue, &j, 1, submitted, &done);
		while (!done)
			uv_run(&loop, UV_RUN_ONCE);
		job_free(j);
	}
	env.queue = queue;
	env.conf = &conf;
	env.submit = submit;
	env.cancel = cancel;
	env.log_open = log_open;
	env.log_live = log_live;
	env.log_watch = log_watch;
	env.log_unwatch = log_unwatch;
	env.pause = pause_;
	env.paused = paused;
	env.running = running;
	env.pubkey = "untrusted comment: x\nRWQ=\n";
	env.key_id = "0123456789ABCDEF";
	env.store = store;
}

/* Next line of [*p, end) as a new string; advances *p. */
static char *
line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *e = nl ? nl : end;
	char *s = xstrndup(*p, (size_t)(e - *p));

	*p = nl ? nl + 1 : end;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const char *p = (const char *)data, *end = p + size;
	struct fuzz_req f;
	char *method, *path, *qm, *ct = NULL;
	enum api_result r;

	if (!ready) {
		/* validate_ref asks libgit2, which must be set up first. */
		git_libgit2_init();
		setup();
		ready = true;
	}
	memset(&f, 0, sizeof f);
	method = line(&p, end);
	path = line(&p, end);
	while (p < end && f.nh < 16) {
		char *l = line(&p, end), *colon;
		if (*l == '\0') {
			free(l);
			break;
		}
		colon = strchr(l, ':');
		if (colon == NULL) {
			free(l);
			continue;
		}
		*colon = '\0';
		f.h[f.nh].name = xstrdup(l);
		f.h[f.nh].value = xstrdup(colon + 1 + (colon[1] == ' '));
		free(l);
		f.nh++;
	}
	/* What is left is the body. */
	for (size_t i = 0; i < f.nh; i++) {
		char *v = f.h[i].value;
		if (strcmp(v, "AUTO") != 0)
			continue;
		if (strcasecmp(f.h[i].name, "X-Gitlab-Token") == 0) {
			free(v);
			f.h[i].value = xstrdup(SECRET);
		} else {
			char sig[7 + 65];
			callback_sign(sig, SECRET, p, (size_t)(end - p));
			free(v);
			f.h[i].value = xstrdup(strcasecmp(f.h[i].name,
			    "X-Gitea-Signature") == 0 ? sig + 7 : sig);
		}
	}
	if ((qm = strchr(path, '?')) != NULL) {
		*qm = '\0';
		f.query = qm + 1;
	}
	f.api.env = &env;
	f.api.method = method;
	f.api.path = path;
	f.api.query = query;
	f.api.header = header;
	f.api.resp_fd = -1;
	f.api.resp_size = -1;
	ct = (char *)header(&f.api, "Content-Type");
	f.api.content_type = ct;
	f.api.body = p;
	f.api.body_len = (size_t)(end - p);
	f.api.complete = complete;
	completed = 0;
	r = api_handle(&f.api);
	/* Submissions always refuse here; a cancel or a PATCH waits on the
	 * queue's writer. */
	while (r == API_PENDING && !completed)
		uv_run(&loop, UV_RUN_ONCE);
	if (f.api.status < 100 || f.api.status > 599)
		abort();
	if (f.api.resp_type != NULL &&
	    strcmp(f.api.resp_type, "application/problem+json") == 0) {
		json_t *j = json_loadb(f.api.resp_body, f.api.resp_len, 0, NULL);
		if (j == NULL || json_integer_value(json_object_get(j,
		    "status")) != (json_int_t)f.api.status)
			abort();
		json_decref(j);
	}
	api_req_release(&f.api);
	for (size_t i = 0; i < f.nh; i++) {
		free(f.h[i].name);
		free(f.h[i].value);
	}
	free(method);
	free(path);
	return 0;
}
