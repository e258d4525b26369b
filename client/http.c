/*
 * kiln's HTTP: libcurl, one easy handle per call (the client makes a
 * handful of calls, and a fresh handle carries no state from the last).
 * Error answers are problem+json ({type,title,status,detail}); they are
 * shown as one line, "409 Conflict: job 12 is running".  Everything the
 * server sends is bounded: a body above HTTP_BODY_MAX is an error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client.h"
#include "sbuf.h"
#include "util.h"
#include "xmalloc.h"

#define ERRBODY_MAX 65536

struct collect {
	struct sbuf b;
	size_t max;
	bool over;
};

static size_t
collect_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct collect *c = arg;
	size_t n = size * nmemb;

	if (c->b.len + n > c->max) {
		c->over = true;
		return 0;
	}
	sbuf_add(&c->b, p, n);
	return n;
}

static CURL *
handle(const struct kiln_conf *c, const char *path, struct curl_slist **h,
    char *url, size_t urlsize)
{
	CURL *e = curl_easy_init();
	char *auth;

	if (e == NULL)
		return NULL;
	snprintf(url, urlsize, "%s%s", c->url, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* A farm sends a download or a log to the host that has it. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "kiln/" PACKAGE_VERSION);
	*h = NULL;
	if (c->token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", c->token);
		*h = curl_slist_append(*h, auth);
		free(auth);
	}
	return e;
}

static void
network_error(CURLcode rc, const char *ebuf, const char *url, char *err,
    size_t errsize)
{
	util_errorf(err, errsize, "%s: %s", url, ebuf[0] ? ebuf :
	    curl_easy_strerror(rc));
}

int
http_call(const struct kiln_conf *c, const char *method, const char *path,
    const char *body, struct http_resp *r, char *err, size_t errsize)
{
	struct collect col = { .max = HTTP_BODY_MAX };
	struct curl_slist *h;
	char url[HTTP_URL_MAX], ebuf[CURL_ERROR_SIZE] = "";
	char *ct = NULL;
	CURLcode rc;
	CURL *e = handle(c, path, &h, url, sizeof url);

	memset(r, 0, sizeof *r);
	if (e == NULL)
		return util_errorf(err, errsize, "%s: libcurl cannot start",
		    url);
	if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		/* Never re-send a POST to another place. */
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
		h = curl_slist_append(h, "Content-Type: application/json");
	}
	h = curl_slist_append(h, "Accept: application/json, "
	    "application/problem+json");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &col);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
	rc = curl_easy_perform(e);
	if (rc != CURLE_OK) {
		if (col.over)
			util_errorf(err, errsize, "%s: the answer is larger "
			    "than %u MiB", url, HTTP_BODY_MAX >> 20);
		else
			network_error(rc, ebuf, url, err, errsize);
		sbuf_free(&col.b);
		curl_slist_free_all(h);
		curl_easy_cleanup(e);
		return -1;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
	r->ctype = ct != NULL ? xstrdup(ct) : NULL;
	sbuf_reserve(&col.b, 1);
	r->body = sbuf_steal(&col.b, &r->len);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return 0;
}

void
http_resp_free(struct http_resp *r)
{
	free(r->body);
	free(r->ctype);
	memset(r, 0, sizeof *r);
}

static const char *
reason(long status)
{
	const char *r = status > 0 && status < 1000 ?
	    util_http_reason((unsigned)status) : NULL;

	if (r != NULL)
		return r;
	return status >= 500 ? "Server Error" : "Error";
}

void
http_problem(const struct http_resp *r, char *buf, size_t size)
{
	json_t *root = NULL, *d, *t;
	const char *title = reason(r->status);
	char snip[200], tbuf[80];

	if (r->body != NULL && r->len > 0)
		root = json_loadb(r->body, r->len, 0, NULL);
	d = json_object_get(root, "detail");
	t = json_object_get(root, "title");
	if (json_is_string(t) && json_string_length(t) < 64)
		title = util_snippet(tbuf, sizeof tbuf, json_string_value(t),
		    json_string_length(t));
	if (json_is_string(d))
		snprintf(buf, size, "%ld %s: %s", r->status, title,
		    util_snippet(snip, sizeof snip, json_string_value(d),
		    strlen(json_string_value(d))));
	else if (r->body != NULL && r->len > 0)
		snprintf(buf, size, "%ld %s: %s", r->status, title,
		    util_snippet(snip, sizeof snip, r->body,
		    strcspn(r->body, "\n")));
	else
		snprintf(buf, size, "%ld %s", r->status, reason(r->status));
	json_decref(root);
}

int
http_get_json(const struct kiln_conf *c, const char *path, json_t **out,
    char *err, size_t errsize)
{
	struct http_resp r;
	json_error_t je;

	*out = NULL;
	if (http_call(c, "GET", path, NULL, &r, err, errsize) != 0)
		return KILN_EXIT_SERVER;
	if (r.status != 200) {
		http_problem(&r, err, errsize);
		http_resp_free(&r);
		return KILN_EXIT_SERVER;
	}
	*out = json_loadb(r.body, r.len, 0, &je);
	if (*out == NULL) {
		util_errorf(err, errsize, "%s%s: the answer is not JSON: %s",
		    c->url, path, je.text);
		http_resp_free(&r);
		return KILN_EXIT_SERVER;
	}
	http_resp_free(&r);
	return KILN_EXIT_OK;
}

struct stream {
	http_sink_fn sink;
	void *arg;
	CURL *e;
	long status;
	struct collect errb;
	bool sink_failed;
	http_progress_fn progress;
	void *parg;
};

static size_t
stream_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t n = size * nmemb;

	if (s->status == 0)
		curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200)
		return collect_cb(p, size, nmemb, &s->errb);
	if (s->sink(s->arg, p, n) != 0) {
		s->sink_failed = true;
		return 0;
	}
	return n;
}

static int
progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ult,
    curl_off_t uln)
{
	struct stream *s = arg;

	if (s->progress != NULL && s->status == 200)
		s->progress(s->parg, (uint64_t)dlnow, (uint64_t)dltotal);
	return 0;
}

int
http_get_stream(const struct kiln_conf *c, const char *path,
    http_sink_fn sink, void *arg, http_progress_fn progress, void *parg,
    struct http_resp *errresp, char *err, size_t errsize)
{
	struct stream s = { .sink = sink, .arg = arg, .progress = progress,
	    .parg = parg, .errb = { .max = ERRBODY_MAX } };
	struct curl_slist *h;
	char url[HTTP_URL_MAX], ebuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	CURL *e = handle(c, path, &h, url, sizeof url);

	memset(errresp, 0, sizeof *errresp);
	if (e == NULL)
		return util_errorf(err, errsize, "%s: libcurl cannot start",
		    url);
	s.e = e;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, stream_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &s);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, progress ? 0L : 1L);
	rc = curl_easy_perform(e);
	if (s.status == 0)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK && !s.sink_failed && !(s.status != 200 &&
	    s.errb.over)) {
		sbuf_free(&s.errb.b);
		network_error(rc, ebuf, url, err, errsize);
		return -1;
	}
	if (s.sink_failed) {
		sbuf_free(&s.errb.b);
		return util_errorf(err, errsize, "%s: the download stopped",
		    url);
	}
	errresp->status = s.status;
	if (s.status != 200) {
		sbuf_reserve(&s.errb.b, 1);
		errresp->body = sbuf_steal(&s.errb.b, &errresp->len);
	}
	sbuf_free(&s.errb.b);
	return 0;
}

char *
http_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *r;

	if (e == NULL)
		return xstrdup("");
	r = xstrdup(e);
	curl_free(e);
	return r;
}
