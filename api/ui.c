/*
 * The dashboard: GET / (index.html) and GET /ui/{file} (its scripts and
 * style), public like /healthz since they hold no data: everything the
 * page shows it reads from the API with the caller's token.  The files
 * are compiled in (scripts/embed-ui), each with its gzip form and an
 * ETag per form, so an answer is a copy of bytes and a few headers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "ui.h"
#include "../lib/xmalloc.h"

/*
 * What the page may do: its own scripts, style and API, nothing inline
 * (no inline script or style attribute can run if an escaping bug ever
 * let a repository's text through), nothing from elsewhere, no framing.
 */
#define UI_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'"

const struct ui_asset *
ui_asset_find(const char *name)
{
	for (size_t i = 0; i < ui_asset_count; i++)
		if (strcmp(ui_assets[i].name, name) == 0)
			return &ui_assets[i];
	return NULL;
}

/* Whether s[0..n) is a qvalue of zero: "0", "0.", "0.0" .. "0.000". */
static bool
q_zero(const char *s, size_t n)
{
	if (n == 0 || s[0] != '0')
		return false;
	if (n == 1)
		return true;
	if (s[1] != '.' || n > 5)
		return false;
	for (size_t i = 2; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

/* Whether s[0..n) is a well-formed qvalue (RFC 9110 12.4.2). */
static bool
q_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return false;
	if (n == 1)
		return true;
	if (s[1] != '.' || n > 5)
		return false;
	for (i = 2; i < n; i++)
		if (s[i] < '0' || s[i] > '9' || (s[0] == '1' && s[i] != '0'))
			return false;
	return true;
}

/*
 * One element of Accept-Encoding from *p: its coding (name, len) and
 * whether its q allows it.  Advances *p past it.  A malformed q counts
 * as a refusal: identity always works, so doubt costs only bytes.
 */
static void
next_coding(const char **p, const char **name, size_t *len, bool *ok)
{
	const char *s = *p, *v;
	size_t n;

	s += strspn(s, " \t,");
	*name = s;
	*len = strcspn(s, " \t;,");
	s += *len;
	*ok = true;
	for (;;) {
		s += strspn(s, " \t");
		if (*s != ';')
			break;
		s++;
		s += strspn(s, " \t");
		n = strcspn(s, " \t;,=");
		if (s[n] != '=') {
			/* "q = 0" or a bare "q": a weight the client meant,
			 * written wrong, which may well be a refusal. */
			if (n == 1 && (s[0] == 'q' || s[0] == 'Q'))
				*ok = false;
			s += n;
			continue;
		}
		v = s + n + 1;
		if (n == 1 && (s[0] == 'q' || s[0] == 'Q')) {
			size_t vn = strcspn(v, " \t;,");
			if (!q_valid(v, vn) || q_zero(v, vn))
				*ok = false;
		}
		s = v + strcspn(v, " \t;,");
	}
	s += strcspn(s, ",");
	*p = s;
}

bool
ui_accepts_gzip(const char *ae)
{
	const char *name;
	size_t len;
	bool ok, star = false, listed = false;

	if (ae == NULL)
		return false;
	while (*ae != '\0') {
		next_coding(&ae, &name, &len, &ok);
		if ((len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
		    (len == 6 && strncasecmp(name, "x-gzip", 6) == 0)) {
			/* The last word on gzip counts; a q=0 anywhere
			 * is a refusal a client meant. */
			if (!ok)
				return false;
			listed = true;
		} else if (len == 1 && name[0] == '*')
			star = ok;
	}
	return listed || star;
}

static void
serve(struct api_req *req, const struct ui_asset *a)
{
	const char *version = req->version;
	bool gz;
	const unsigned char *bytes;
	const char *etag, *inm;
	size_t len;

	/*
	 * HTTP/1.0 caches may not know Vary, so one of them could hand the
	 * gzip form to a client that cannot read it: 1.0 gets identity.
	 */
	gz = (version == NULL || strcmp(version, "HTTP/1.0") != 0) &&
	    ui_accepts_gzip(req->header ? req->header(req, "Accept-Encoding") :
	    NULL);
	bytes = gz ? a->gz : a->raw;
	len = gz ? a->gz_len : a->raw_len;
	etag = gz ? a->gz_etag : a->raw_etag;
	inm = req->header ? req->header(req, "If-None-Match") : NULL;

	api_add_header(req, "ETag", "%s", etag);
	api_add_header(req, "Vary", "Accept-Encoding");
	/* Kept, but asked about each time: the ETag makes that a 304. */
	api_add_header(req, "Cache-Control", "no-cache");
	api_add_header(req, "Content-Security-Policy", "%s", UI_CSP);
	api_add_header(req, "X-Content-Type-Options", "nosniff");
	api_add_header(req, "Referrer-Policy", "no-referrer");
	free(req->resp_body);
	req->resp_body = NULL;
	req->resp_len = 0;
	req->resp_type = a->type;
	if (api_etag_matches(inm, etag)) {
		req->status = 304;
		return;
	}
	if (gz)
		api_add_header(req, "Content-Encoding", "gzip");
	req->resp_body = xmalloc(len);
	memcpy(req->resp_body, bytes, len);
	req->resp_len = len;
	req->status = 200;
}

/* GET /: the dashboard's page. */
static enum api_result
get_index(struct api_req *req)
{
	const struct ui_asset *a = ui_asset_find("index.html");

	if (a == NULL) {
		api_reply_problem(req, 404, "this kilnd was built without the "
		    "dashboard's index.html");
		return API_DONE;
	}
	serve(req, a);
	return API_DONE;
}

/* GET /ui/{file}: one of its files. */
static enum api_result
get_asset(struct api_req *req)
{
	const struct ui_asset *a = ui_asset_find(req->params[0]);

	if (a == NULL) {
		api_reply_problem(req, 404, "the dashboard has no file "
		    "called '%.64s'", req->params[0]);
		return API_DONE;
	}
	serve(req, a);
	return API_DONE;
}

const struct api_route api_ui_routes[] = {
	{ "GET", "/", API_SCOPE_PUBLIC, get_index },
	{ "GET", "/ui/{file}", API_SCOPE_PUBLIC, get_asset },
	{ NULL, NULL, 0, NULL },
};
