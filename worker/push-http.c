/*
 * kiln-worker push: the registry's requests, with libcurl.
 *
 * Every request has a connect timeout and a low-speed limit, so that a
 * registry that stops answering ends the push with an error instead of
 * hanging it; nothing is retried but the one retry a 401 asks for.
 * Redirects are not followed: the distribution API answers with
 * Location headers that the caller reads.  http:// only with
 * --insecure-http: credentials are sent on https otherwise.
 *
 * A Location is the registry's word, and a registry may name any host in
 * it: the login and the token go only to the registry's own scheme, host
 * and port.  A request elsewhere is made without them, and a 401 from
 * there is an error rather than a reason to send them.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "push.h"
#include "util.h"
#include "xmalloc.h"

/* What is kept of an answer's body: an error's JSON, a token. */
#define BODY_MAX (64 * 1024)
#define HEADER_MAX 4096
#define CONNECT_TIMEOUT_S 10L
/* Slower than 1 KiB/s for 60 s: the registry is gone. */
#define LOW_SPEED_BYTES 1024L
#define LOW_SPEED_TIME_S 60L
/* A URL we make from a Location, at most. */
#define URL_MAX 8192

enum auth { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct push_http {
	CURL *curl;
	char *base;		/* "https://host:port" */
	char *name;		/* repository */
	bool insecure_http;
	char *user, *password;
	enum auth auth;
	char *token;
};

/* One exchange's captured answer. */
struct capture {
	char body[BODY_MAX + 1];
	size_t blen;
	bool too_big;		/* the body went past BODY_MAX: aborted */
	char *location, *digest, *www_auth;
};

struct reader {
	const struct push_body *b;
	uint64_t done;
	crypto_hash_sha256_state sha;
	bool bad_digest;
	bool io_error;
};

struct push_http *
push_http_new(const char *base, const char *name, bool insecure_http,
    const char *user, const char *password)
{
	struct push_http *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	h = xcalloc(1, sizeof *h);
	h->curl = curl_easy_init();
	if (h->curl == NULL) {
		free(h);
		return NULL;
	}
	h->base = xstrdup(base);
	h->name = xstrdup(name);
	h->insecure_http = insecure_http;
	h->user = user != NULL ? xstrdup(user) : NULL;
	h->password = password != NULL ? xstrdup(password) : NULL;
	return h;
}

static void
free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void
push_http_free(struct push_http *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->name);
	free_secret(h->user);
	free_secret(h->password);
	free_secret(h->token);
	free(h);
	curl_global_cleanup();
}

void
push_answer_clear(struct push_answer *a)
{
	free(a->location);
	free(a->digest);
	free(a->error);
	memset(a, 0, sizeof *a);
}

static void
capture_clear(struct capture *c)
{
	free(c->location);
	free(c->digest);
	free(c->www_auth);
	c->location = c->digest = c->www_auth = NULL;
	c->blen = 0;
	c->too_big = false;
	c->body[0] = '\0';
}

static size_t
on_body(char *p, size_t size, size_t n, void *data)
{
	struct capture *c = data;
	size_t len = size * n, room = BODY_MAX - c->blen;

	/*
	 * Nothing the registry says needs more: a longer answer ends the
	 * request, or a registry trickling an endless body just above the
	 * low-speed limit would hold the push for ever.
	 */
	if (len > room) {
		c->too_big = true;
		return 0;
	}
	memcpy(c->body + c->blen, p, len);
	c->blen += len;
	c->body[c->blen] = '\0';
	return len;
}

/* A header's value, trimmed, when line is "Name: value". */
static char *
header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name), v, e;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	for (v = nl + 1; v < len && (line[v] == ' ' || line[v] == '\t'); v++)
		;
	for (e = len; e > v && (line[e - 1] == '\r' || line[e - 1] == '\n' ||
	    line[e - 1] == ' ' || line[e - 1] == '\t'); e--)
		;
	if (e - v > HEADER_MAX)
		return NULL;
	return xstrndup(line + v, e - v);
}

static size_t
on_header(char *p, size_t size, size_t n, void *data)
{
	struct capture *c = data;
	size_t len = size * n;
	char *v;

	/* A new status line (after a 100 Continue): forget the last one's. */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		free(c->location);
		free(c->digest);
		free(c->www_auth);
		c->location = c->digest = c->www_auth = NULL;
	}
	if ((v = header_value(p, len, "Location")) != NULL) {
		free(c->location);
		c->location = v;
	} else if ((v = header_value(p, len, "Docker-Content-Digest")) != NULL) {
		free(c->digest);
		c->digest = v;
	} else if ((v = header_value(p, len, "WWW-Authenticate")) != NULL) {
		free(c->www_auth);
		c->www_auth = v;
	}
	return len;
}

static size_t
on_read(char *p, size_t size, size_t n, void *data)
{
	struct reader *r = data;
	const struct push_body *b = r->b;
	uint64_t left = b->len - r->done;
	size_t want = size * n, got;

	if (left == 0)
		return 0;
	if (want > left)
		want = (size_t)left;
	if (b->mem != NULL) {
		memcpy(p, b->mem + r->done, want);
		got = want;
	} else {
		ssize_t rd;
		do
			rd = pread(b->fd, p, want, (off_t)(b->offset + r->done));
		while (rd < 0 && errno == EINTR);
		if (rd <= 0) {
			r->io_error = true;
			return CURL_READFUNC_ABORT;
		}
		got = (size_t)rd;
	}
	r->done += got;
	if (b->digest != NULL) {
		crypto_hash_sha256_update(&r->sha, (unsigned char *)p, got);
		/*
		 * The last bytes: checked before they leave, so that a blob
		 * changed under us since push_layout_open never completes.
		 */
		if (r->done == b->len) {
			unsigned char md[crypto_hash_sha256_BYTES];
			char hex[2 * sizeof md + 1];
			crypto_hash_sha256_final(&r->sha, md);
			sodium_bin2hex(hex, sizeof hex, md, sizeof md);
			if (strlen(b->digest) != 71 ||
			    strcmp(hex, b->digest + 7) != 0) {
				r->bad_digest = true;
				return CURL_READFUNC_ABORT;
			}
		}
	}
	return got;
}

/* "CODE: message" of the first error of an OCI error body, or NULL. */
static char *
oci_error(const char *body)
{
	json_t *j = json_loads(body, 0, NULL), *e;
	const char *code, *msg;
	char q1[64], q2[256], *out = NULL;

	if (j == NULL)
		return NULL;
	e = json_array_get(json_object_get(j, "errors"), 0);
	code = json_string_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	if (code != NULL)
		out = xasprintf("%s: %s", util_snippet(q1, sizeof q1, code,
		    strlen(code)), msg != NULL ? util_snippet(q2, sizeof q2,
		    msg, strlen(msg)) : "");
	json_decref(j);
	return out;
}

/* The value of key in a challenge's parameters (key="value", ...). */
static char *
challenge_param(const char *s, const char *key)
{
	size_t kl = strlen(key);

	while (*s != '\0') {
		const char *k, *v;
		size_t klen;
		char *out;

		while (*s == ' ' || *s == ',')
			s++;
		k = s;
		while (*s != '\0' && *s != '=' && *s != ',' && *s != ' ')
			s++;
		klen = (size_t)(s - k);
		if (*s != '=')
			continue;
		s++;
		if (*s == '"') {
			v = ++s;
			while (*s != '\0' && *s != '"')
				s++;
			out = xstrndup(v, (size_t)(s - v));
			if (*s == '"')
				s++;
		} else {
			v = s;
			while (*s != '\0' && *s != ',' && *s != ' ')
				s++;
			out = xstrndup(v, (size_t)(s - v));
		}
		if (klen == kl && strncasecmp(k, key, kl) == 0)
			return out;
		free(out);
	}
	return NULL;
}

static void
set_common(struct push_http *h, const char *url, struct capture *c)
{
	curl_easy_reset(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR,
	    h->insecure_http ? "http,https" : "https");
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT,
	    "kiln-worker/" PACKAGE_VERSION);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, c);
}

static void
set_basic(struct push_http *h)
{
	curl_easy_setopt(h->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(h->curl, CURLOPT_USERNAME, h->user);
	curl_easy_setopt(h->curl, CURLOPT_PASSWORD, h->password);
}

/*
 * The token flow: GET realm?service=...&scope=... with our login (when
 * there is one), and take "token" or "access_token" from its JSON.
 */
static int
get_token(struct push_http *h, const char *challenge, char *err,
    size_t errsize)
{
	char *realm = challenge_param(challenge, "realm");
	char *service = challenge_param(challenge, "service");
	char *scope = challenge_param(challenge, "scope");
	char *url = NULL, *es = NULL, *esc = NULL, *dflt = NULL;
	struct capture *c = xcalloc(1, sizeof *c);
	json_t *j = NULL;
	const char *tok;
	long status = 0;
	CURLcode cc;
	int ret = -1;

	if (realm == NULL || (strncmp(realm, "https://", 8) != 0 &&
	    !(h->insecure_http && strncmp(realm, "http://", 7) == 0))) {
		util_errorf(err, errsize, "the registry's Bearer challenge has "
		    "no %s realm", h->insecure_http ? "http(s)" : "https");
		goto out;
	}
	if (scope == NULL)
		scope = dflt = xasprintf("repository:%s:pull,push", h->name);
	es = service != NULL ? curl_easy_escape(h->curl, service, 0) : NULL;
	esc = curl_easy_escape(h->curl, scope, 0);
	url = xasprintf("%s%sscope=%s%s%s", realm,
	    strchr(realm, '?') != NULL ? "&" : "?", esc != NULL ? esc : "",
	    es != NULL ? "&service=" : "", es != NULL ? es : "");
	set_common(h, url, c);
	if (h->user != NULL)
		set_basic(h);
	cc = curl_easy_perform(h->curl);
	if (cc != CURLE_OK) {
		util_errorf(err, errsize, "GET token from %s: %s", realm,
		    c->too_big ? "an answer over 64 KiB" :
		    curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		util_errorf(err, errsize, "GET token from %s: %ld%s", realm,
		    status, status == 401 ? " (wrong or missing login)" : "");
		goto out;
	}
	j = json_loads(c->body, 0, NULL);
	tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL || tok[0] == '\0')
		tok = json_string_value(json_object_get(j, "access_token"));
	if (tok == NULL || tok[0] == '\0' || strcspn(tok, "\r\n") != strlen(tok)) {
		util_errorf(err, errsize, "GET token from %s: no token in the "
		    "answer", realm);
		goto out;
	}
	free_secret(h->token);
	h->token = xstrdup(tok);
	h->auth = AUTH_BEARER;
	ret = 0;
out:
	json_decref(j);
	capture_clear(c);
	explicit_bzero(c->body, sizeof c->body);
	free(c);
	curl_free(es);
	curl_free(esc);
	free(url);
	free(realm);
	free(service);
	free(dflt != NULL ? NULL : scope);
	free(dflt);
	return ret;
}

/* The registry's 401: switch to what it asks for, once.  0 retry. */
static int
answer_401(struct push_http *h, const char *challenge, char *err,
    size_t errsize)
{
	if (challenge == NULL)
		return util_errorf(err, errsize, "401 without WWW-Authenticate");
	if (strncasecmp(challenge, "Basic", 5) == 0) {
		if (h->user == NULL)
			return util_errorf(err, errsize, "401: the registry wants "
			    "a login and the credentials name none for it");
		if (h->auth == AUTH_BASIC)
			return util_errorf(err, errsize, "401: the registry "
			    "refused the login (wrong user or password)");
		h->auth = AUTH_BASIC;
		return 0;
	}
	if (strncasecmp(challenge, "Bearer", 6) == 0)
		return get_token(h, challenge + 6, err, errsize);
	return util_errorf(err, errsize, "401: unknown authentication scheme");
}

/*
 * url resolved against the registry's root, the way a browser resolves a
 * Location: an absolute URL as it is, "/path" on the registry, "//host/x"
 * on that host.  NULL when it is no URL.
 */
static char *
resolve_url(const struct push_http *h, const char *url)
{
	CURLU *u = curl_url();
	char *root = xasprintf("%s/", h->base), *s = NULL, *out = NULL;

	if (u != NULL && strlen(url) <= URL_MAX &&
	    curl_url_set(u, CURLUPART_URL, root, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		out = xstrdup(s);
	curl_free(s);
	curl_url_cleanup(u);
	free(root);
	return out;
}

/* A part of a URL, lowercased where it has no case; NULL when absent. */
static char *
url_part(const char *url, CURLUPart part)
{
	CURLU *u = curl_url();
	char *s = NULL, *out = NULL;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, part, &s, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		out = xstrdup(s);
		for (char *p = out; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

/* Is url on the registry itself: the same scheme, host and port? */
static bool
same_origin(const struct push_http *h, const char *url)
{
	static const CURLUPart parts[] = { CURLUPART_SCHEME, CURLUPART_HOST,
	    CURLUPART_PORT };
	bool same = true;

	for (size_t i = 0; i < sizeof parts / sizeof parts[0] && same; i++) {
		char *a = url_part(h->base, parts[i]), *b = url_part(url,
		    parts[i]);

		same = a != NULL && b != NULL && strcmp(a, b) == 0;
		free(a);
		free(b);
	}
	/* A login in the URL itself would be sent by libcurl. */
	if (same) {
		char *user = url_part(url, CURLUPART_USER);

		same = user == NULL;
		free(user);
	}
	return same;
}

int
push_http_do(struct push_http *h, struct push_answer *ans,
    const char *method, const char *url, const char *ctype,
    const struct push_body *body, char *err, size_t errsize)
{
	struct capture *c = xcalloc(1, sizeof *c);
	struct reader r;
	char *full = NULL, *hdr = NULL, why[512];
	long status = 0;
	bool own;
	int ret = -1;

	memset(ans, 0, sizeof *ans);
	if ((full = resolve_url(h, url)) == NULL) {
		util_errorf(err, errsize, "not a URL: %s", util_snippet(why,
		    sizeof why, url, strlen(url)));
		goto out;
	}
	own = same_origin(h, full);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct curl_slist *hl = NULL;
		CURLcode cc;

		capture_clear(c);
		set_common(h, full, c);
		if (strcmp(method, "HEAD") == 0)
			curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
		else if (strcmp(method, "POST") == 0) {
			curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
			curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, 0L);
		} else if (strcmp(method, "PUT") == 0) {
			static const struct push_body none = { .fd = -1 };
			memset(&r, 0, sizeof r);
			r.b = body != NULL ? body : &none;
			crypto_hash_sha256_init(&r.sha);
			curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h->curl, CURLOPT_READDATA, &r);
			curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE,
			    (curl_off_t)r.b->len);
		}
		/* No 100-continue round trip: the body follows at once. */
		hl = curl_slist_append(hl, "Expect:");
		if (ctype != NULL) {
			char *ct = xasprintf("Content-Type: %s", ctype);
			hl = curl_slist_append(hl, ct);
			free(ct);
		}
		if (!own)
			;	/* another host: nothing of our login */
		else if (h->auth == AUTH_BASIC)
			set_basic(h);
		else if (h->auth == AUTH_BEARER) {
			hdr = xasprintf("Authorization: Bearer %s", h->token);
			hl = curl_slist_append(hl, hdr);
			free_secret(hdr);
			hdr = NULL;
		}
		curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hl);
		cc = curl_easy_perform(h->curl);
		curl_slist_free_all(hl);
		if (strcmp(method, "PUT") == 0 && r.bad_digest) {
			util_errorf(err, errsize, "the bytes read do not match "
			    "%s (the layout changed while pushing)",
			    body->digest);
			goto out;
		}
		if (strcmp(method, "PUT") == 0 && r.io_error) {
			util_errorf(err, errsize, "read of the layout failed");
			goto out;
		}
		if (cc != CURLE_OK) {
			util_errorf(err, errsize, "%s", c->too_big ? "the "
			    "registry's answer is over 64 KiB" :
			    curl_easy_strerror(cc));
			goto out;
		}
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status != 401 || attempt == 1)
			break;
		if (!own) {
			util_errorf(err, errsize, "401 from %s, which is not the "
			    "registry: no credentials are sent there",
			    util_snippet(why, sizeof why, full, strlen(full)));
			goto out;
		}
		if (answer_401(h, c->www_auth, why, sizeof why) != 0) {
			util_errorf(err, errsize, "%s", why);
			goto out;
		}
	}
	ans->status = status;
	ans->location = c->location;
	ans->digest = c->digest;
	c->location = c->digest = NULL;
	if (status >= 400)
		ans->error = oci_error(c->body);
	if (status == 401 && ans->error == NULL)
		ans->error = xstrdup("the registry refused the credentials");
	ret = 0;
out:
	capture_clear(c);
	free(c);
	free(full);
	return ret;
}
