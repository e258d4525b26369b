/*
 * The router's requests that read more than their own path and body:
 * the caller's token from the Authorization header, a GitHub webhook
 * delivery arriving again while its first is still looked up, and a log
 * follower that waits on queue reads -- each against a real queue in a
 * temporary directory (router-harness.h).  The routes, problem answers
 * and /v1/jobs handlers are tested in test_router.c.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "api/api.h"
#include "daemon/db/queue.h"
#include "qsync.h"
#include "unit.h"
#include "router-harness.h"


/* The Authorization header of the current request. */
static const char *bearer;

static const char *
header_lookup(struct api_req *req, const char *name)
{
	(void)req;
	return strcasecmp(name, "Authorization") == 0 ? bearer : NULL;
}

/* [tokens] line NAME = SCOPE sha256(token). */
static void
token_line(char *buf, size_t size, const char *name, const char *scope,
    const char *token)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof h + 1];
	size_t n = strlen(buf);

	crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	snprintf(buf + n, size - n, "%s = %s %s\n", name, scope, hex);
}

/* The caller's token name: the entry its token matches, whichever its
 * position; none for a wrong token, no token, or a farm without any. */
static void
test_caller_token(void)
{
	char text[1024] = "[tokens]\n", err[256] = "";
	struct api_req req;
	FILE *f;

	if (!setup())
		return;
	init_req(&req, "GET", "/healthz");
	req.header = header_lookup;
	bearer = "Bearer the-admin-token-0123";
	CHECK(api_caller_token(&req) == NULL);
	CHECK(api_caller_is_admin(&req));	/* no tokens: loopback only */
	token_line(text, sizeof text, "dash", "read", "the-read-token-0123");
	token_line(text, sizeof text, "ops", "admin", "the-admin-token-0123");
	token_line(text, sizeof text, "ci", "submit", "the-ci-token-0123");
	f = fmemopen(text, strlen(text), "r");
	CHECK(f != NULL);
	if (f == NULL) {
		teardown();
		return;
	}
	CHECK_INT(conf_load_stream(&conf, f, "test.conf", err, sizeof err), 0);
	fclose(f);
	CHECK_STR(api_caller_token(&req), "ops");
	CHECK(api_caller_is_admin(&req));
	bearer = "Bearer the-ci-token-0123";
	CHECK_STR(api_caller_token(&req), "ci");
	CHECK(!api_caller_is_admin(&req));
	bearer = "Bearer the-read-token-0123";
	CHECK_STR(api_caller_token(&req), "dash");
	bearer = "Bearer the-ci-token-012";
	CHECK(api_caller_token(&req) == NULL);
	bearer = NULL;
	CHECK(api_caller_token(&req) == NULL);

	/* One secret under two names is refused. */
	text[0] = '\0';
	snprintf(text, sizeof text, "[tokens]\n");
	token_line(text, sizeof text, "again", "admin", "the-ci-token-0123");
	f = fmemopen(text, strlen(text), "r");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK_INT(conf_load_stream(&conf, f, "test.conf", err,
		    sizeof err), -1);
		CHECK(strstr(err, "same hash as ci") != NULL);
		fclose(f);
	}
	api_req_release(&req);
	teardown();
}

/* A GitHub push delivery to project app: its headers. */
#define HOOK_SECRET "app-hook-secret-0123456789"
#define HOOK_COMMIT "0123456789abcdef0123456789abcdef01234567"
#define HOOK_PUSH "{\"ref\": \"refs/heads/main\", \"after\": \"" \
	HOOK_COMMIT "\", \"repository\": {\"clone_url\": " \
	"\"https://example.com/app.git\"}}"
static const char *hook_delivery;
static char hook_sig[80];

static const char *
hook_header(struct api_req *req, const char *name)
{
	(void)req;
	if (strcasecmp(name, "X-GitHub-Event") == 0)
		return "push";
	if (strcasecmp(name, "X-GitHub-Delivery") == 0)
		return hook_delivery;
	if (strcasecmp(name, "X-Hub-Signature-256") == 0)
		return hook_sig;
	return NULL;
}

/* Start a delivery of HOOK_PUSH with delivery id `id`; the loop is not
 * run. */
static enum api_result
deliver(struct api_req *req, const char *id)
{
	init_req(req, "POST", "/v1/hooks/github/app");
	req->header = hook_header;
	req->content_type = "application/json";
	req->body = HOOK_PUSH;
	req->body_len = strlen(HOOK_PUSH);
	hook_delivery = id;
	return api_handle(req);
}

/* The loop, until the request in flight completed. */
static void
finish(int before)
{
	while (completions == before)
		if (uv_run(qs_loop(), UV_RUN_ONCE) == 0 &&
		    completions == before) {
			CHECK(!"a request in flight never completed");
			return;
		}
}

/*
 * A webhook's redelivery lookups complete later: a second delivery of
 * the same push that arrives meanwhile must wait (409), not find nothing
 * and build the push twice; once the first is committed, any delivery of
 * it answers with its job.
 */
static void
test_hook_delivery_while_looked_up(void)
{
	static const char text[] = "[project app]\n"
	    "repo = https://example.com/app.git\n"
	    "secret = " HOOK_SECRET "\n"
	    "targets = linux/amd64\n"
	    "refs = refs/heads/main\n";
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	struct api_req a, b, c;
	char err[256] = "", hex[2 * sizeof mac + 1];
	json_t *j;
	int64_t id = 0, n = -1;
	int before;
	FILE *f;

	if (!setup())
		return;
	f = fmemopen((void *)text, strlen(text), "r");
	CHECK(f != NULL);
	if (f == NULL) {
		teardown();
		return;
	}
	CHECK_INT(conf_load_stream(&conf, f, "test.conf", err, sizeof err), 0);
	fclose(f);
	/* The key is the secret's bytes, of its own length (the one-shot
	 * crypto_auth_hmacsha256() would read a 32-byte key). */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)HOOK_SECRET,
	    strlen(HOOK_SECRET));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)HOOK_PUSH,
	    strlen(HOOK_PUSH));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
	snprintf(hook_sig, sizeof hook_sig, "sha256=%s", hex);

	before = completions;
	CHECK_INT(deliver(&a, "d-1"), API_PENDING);
	CHECK_INT(completions, before);
	/* Another id, the same push; and the same id: both wait. */
	CHECK_INT(deliver(&b, "d-2"), API_DONE);
	check_problem(&b, 409, "is being committed");
	api_req_release(&b);
	CHECK_INT(deliver(&b, "d-1"), API_DONE);
	check_problem(&b, 409, "is being committed");
	api_req_release(&b);
	finish(before);
	CHECK_INT(a.status, 201);
	if ((j = body_json(&a)) != NULL) {
		id = json_integer_value(json_object_get(j, "id"));
		CHECK_STR(json_string_value(json_object_get(j, "project")),
		    "app");
		json_decref(j);
	}
	CHECK(id > 0);
	api_req_release(&a);

	/* Found by its push under a new id, then by its delivery id. */
	for (int i = 0; i < 2; i++) {
		before = completions;
		CHECK_INT(deliver(&c, i == 0 ? "d-3" : "d-1"), API_PENDING);
		finish(before);
		CHECK_INT(c.status, 200);
		if ((j = body_json(&c)) != NULL) {
			CHECK_INT(json_integer_value(json_object_get(j, "id")),
			    id);
			json_decref(j);
		}
		api_req_release(&c);
	}
	CHECK_INT(queue_count_jobs(queue, JOB_QUEUED, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(submits, 1);
	teardown();
}

/* The build hooks of a follower whose target has not started. */
static int log_wakes;
static int log_watches;

static int
no_log(void *ctx, int64_t job_id, const char *target, int *fd)
{
	(void)ctx, (void)job_id, (void)target;
	*fd = -1;
	return -1;
}

static bool
not_live(void *ctx, int64_t job_id, const char *target)
{
	(void)ctx, (void)job_id, (void)target;
	return false;
}

static void *
watch_log(void *ctx, int64_t job_id, const char *target,
    void (*wake)(void *), void *data)
{
	(void)ctx, (void)job_id, (void)target, (void)wake, (void)data;
	log_watches++;
	return &log_watches;
}

static void
unwatch_log(void *ctx, void *handle)
{
	(void)ctx, (void)handle;
	log_watches--;
}

static void
count_wake(void *waker)
{
	CHECK(waker == &log_wakes);
	log_wakes++;
}

/* Run the loop a bounded number of times, until *n reaches want. */
static void
run_until(const int *n, int want)
{
	for (int i = 0; i < 1000 && *n < want; i++)
		uv_run(qs_loop(), UV_RUN_NOWAIT);
}

static long
follow_once(struct api_req *req, char *buf, size_t size)
{
	return req->stream.read(req->stream.cls, buf, size, count_wake,
	    &log_wakes);
}

/*
 * A follower of a target that has not started asks the queue about its
 * job on each wake-up: one read at a time, the answer wakes the stream,
 * and a follower closed while its read is in flight is freed by the
 * read's completion (ASan: no use after free, no leak).
 */
static void
test_log_follower_waits_on_reads(void)
{
	struct api_req req, c;
	char path[96], buf[512];
	int64_t id;
	long n;

	if (!setup())
		return;
	env.log_open = no_log;
	env.log_live = not_live;
	env.log_watch = watch_log;
	env.log_unwatch = unwatch_log;
	log_wakes = log_watches = 0;
	id = post_job();
	snprintf(path, sizeof path, "/v1/jobs/%lld/targets/linux_amd64/log",
	    (long long)id);
	set_query("follow", "1");
	CHECK_INT(run(&req, "GET", path), API_PENDING);
	CHECK_INT(req.status, 200);
	CHECK(req.stream.read != NULL);
	if (req.stream.read == NULL) {
		api_req_release(&req);
		teardown();
		return;
	}
	/* A read starts; a second call while it is in flight waits. */
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	CHECK_INT(log_wakes, 0);
	run_until(&log_wakes, 1);
	CHECK_INT(log_wakes, 1);
	/* Its answer: still queued, so the follower watches and waits. */
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	CHECK_INT(log_watches, 1);
	run_until(&log_wakes, 2);
	CHECK_INT(log_wakes, 1);	/* nothing owed */

	/* Canceled meanwhile: the next look ends the stream and says why. */
	clear_query();
	snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)id);
	CHECK_INT(run(&c, "POST", path), API_PENDING);
	CHECK_INT(c.status, 200);
	api_req_release(&c);
	CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	run_until(&log_wakes, 2);
	CHECK_INT(log_wakes, 2);
	n = follow_once(&req, buf, sizeof buf);
	CHECK(n > 0);
	if (n > 0) {
		buf[n < (long)sizeof buf ? n : (long)sizeof buf - 1] = '\0';
		CHECK(strstr(buf, "was canceled before it started") != NULL);
	}
	CHECK_INT(follow_once(&req, buf, sizeof buf), API_STREAM_END);
	api_req_release(&req);
	CHECK_INT(log_watches, 0);

	/* Closed while its read is in flight. */
	snprintf(path, sizeof path, "/v1/jobs/%lld/targets/linux_amd64/log",
	    (long long)post_job());
	set_query("follow", "1");
	CHECK_INT(run(&req, "GET", path), API_PENDING);
	CHECK(req.stream.read != NULL);
	if (req.stream.read != NULL)
		CHECK_INT(follow_once(&req, buf, sizeof buf), 0);
	api_req_release(&req);
	for (int i = 0; i < 10; i++)
		uv_run(qs_loop(), UV_RUN_NOWAIT);
	CHECK_INT(log_wakes, 2);	/* the freed follower was not woken */
	clear_query();
	teardown();
}

UNIT_MAIN(
	TEST(test_caller_token),
	TEST(test_hook_delivery_while_looked_up),
	TEST(test_log_follower_waits_on_reads)
)
