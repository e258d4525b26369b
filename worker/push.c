/*
 * kiln-worker push --layout FILE.tar --to HOST[:PORT]/NAME[:TAG]: an OCI
 * image layout uploaded to a registry (the OCI distribution API).
 *
 * The order is the one that keeps the registry consistent at every step:
 * blobs first (each checked with HEAD, uploaded only when missing), then
 * each image manifest by its digest, and last the image index by the tag.
 * Until the tag moves, readers of the tag see the old image whole.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "creds.h"
#include "push.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
/* Manifests in one index, layers in one manifest. */
#define PUSH_MANIFESTS_MAX 256
#define PUSH_LAYERS_MAX 1024

struct ref {
	char host[256];		/* host[:port] */
	char name[256];
	char tag[129];
};

struct push {
	struct push_layout layout;
	struct push_http *http;
	struct ref ref;
	int nuploaded, nexisting;
};

/* HOST[:PORT]/NAME[:TAG], NAME in the distribution spec's grammar. */
static int
parse_ref(struct ref *r, const char *s, char *err, size_t errsize)
{
	const char *slash = strchr(s, '/'), *colon, *name;
	size_t hl, nl, i;

	if (slash == NULL || slash == s || (size_t)(slash - s) >= sizeof r->host)
		return util_errorf(err, errsize, "--to: HOST[:PORT]/NAME[:TAG] "
		    "expected");
	hl = (size_t)(slash - s);
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-:") < hl || s[0] == ':' || s[hl - 1] == ':')
		return util_errorf(err, errsize, "--to: a bad host");
	memcpy(r->host, s, hl);
	r->host[hl] = '\0';
	name = slash + 1;
	colon = strrchr(name, ':');
	nl = colon != NULL ? (size_t)(colon - name) : strlen(name);
	if (nl == 0 || nl >= sizeof r->name)
		return util_errorf(err, errsize, "--to: a bad repository name");
	for (i = 0; i < nl; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		bool sep = c == '.' || c == '_' || c == '-' || c == '/';
		/* Separators only between lowercase letters and digits. */
		if (!alnum && (!sep || i == 0 || i == nl - 1 ||
		    (c == '/' && !((name[i - 1] >= 'a' && name[i - 1] <= 'z') ||
		    (name[i - 1] >= '0' && name[i - 1] <= '9')))))
			return util_errorf(err, errsize, "--to: the repository "
			    "name takes lowercase letters, digits and . _ - / "
			    "between them");
	}
	memcpy(r->name, name, nl);
	r->name[nl] = '\0';
	snprintf(r->tag, sizeof r->tag, "%s", colon != NULL ? colon + 1 :
	    "latest");
	if (colon != NULL) {
		size_t tl = strlen(colon + 1);
		if (tl == 0 || tl > 128 || colon[1] == '.' || colon[1] == '-' ||
		    strspn(colon + 1, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != tl)
			return util_errorf(err, errsize, "--to: a bad tag");
	}
	return 0;
}

/* "STATUS CODE: message" of a failed answer. */
static void
answer_msg(char *buf, size_t size, const struct push_answer *a)
{
	snprintf(buf, size, "%ld%s%s", a->status, a->error != NULL ? " " : "",
	    a->error != NULL ? a->error : "");
}

/* One blob: HEAD, and the upload when the registry lacks it. */
static int
push_blob(struct push *p, const char *digest, char *err, size_t errsize)
{
	const struct push_entry *e = push_layout_blob(&p->layout, digest);
	struct push_answer a = { 0 };
	struct push_body body;
	char *url = NULL, why[512], msg[600];
	int ret = -1;

	if (e == NULL)
		return util_errorf(err, errsize, "push: blob %.80s: not in the "
		    "layout", digest);
	url = xasprintf("/v2/%s/blobs/%s", p->ref.name, digest);
	if (push_http_do(p->http, &a, "HEAD", url, NULL, NULL, why,
	    sizeof why) != 0) {
		util_errorf(err, errsize, "push: HEAD blob %s: %s", digest, why);
		goto out;
	}
	if (a.status == 200 || a.status == 307) {
		p->nexisting++;
		ret = 0;
		goto out;
	}
	if (a.status != 404) {
		answer_msg(msg, sizeof msg, &a);
		util_errorf(err, errsize, "push: HEAD blob %s: %s", digest, msg);
		goto out;
	}
	push_answer_clear(&a);
	free(url);
	url = xasprintf("/v2/%s/blobs/uploads/", p->ref.name);
	if (push_http_do(p->http, &a, "POST", url, NULL, NULL, why,
	    sizeof why) != 0) {
		util_errorf(err, errsize, "push: POST upload of %s: %s", digest,
		    why);
		goto out;
	}
	if (a.status != 202 || a.location == NULL) {
		answer_msg(msg, sizeof msg, &a);
		util_errorf(err, errsize, "push: POST upload of %s: %s%s", digest,
		    msg, a.status == 202 ? " (no Location)" : "");
		goto out;
	}
	free(url);
	/* The Location may carry its own query (a session state). */
	url = xasprintf("%s%sdigest=%s", a.location,
	    strchr(a.location, '?') != NULL ? "&" : "?", digest);
	push_answer_clear(&a);
	body = (struct push_body){ .fd = p->layout.fd, .offset = e->offset,
	    .len = e->size, .digest = digest };
	if (push_http_do(p->http, &a, "PUT", url, "application/octet-stream",
	    &body, why, sizeof why) != 0) {
		util_errorf(err, errsize, "push: PUT blob %s: %s", digest, why);
		goto out;
	}
	if (a.status != 201) {
		answer_msg(msg, sizeof msg, &a);
		util_errorf(err, errsize, "push: PUT blob %s: %s", digest, msg);
		goto out;
	}
	p->nuploaded++;
	ret = 0;
out:
	push_answer_clear(&a);
	free(url);
	return ret;
}

/* A manifest or index, PUT by reference (digest or tag). */
static int
push_manifest(struct push *p, const char *mtype, const char *digest,
    const char *reference, char *err, size_t errsize)
{
	const struct push_entry *e = push_layout_blob(&p->layout, digest);
	struct push_answer a = { 0 };
	struct push_body body;
	char *text = NULL, *url = NULL, why[512], msg[600];
	int ret = -1;

	if (e == NULL || push_layout_read(&text, &p->layout, e, why,
	    sizeof why) != 0)
		return util_errorf(err, errsize, "push: manifest %.80s: %s",
		    digest, e == NULL ? "not in the layout" : why);
	url = xasprintf("/v2/%s/manifests/%s", p->ref.name, reference);
	body = (struct push_body){ .fd = -1, .mem = text, .len = e->size,
	    .digest = digest };
	if (push_http_do(p->http, &a, "PUT", url, mtype, &body, why,
	    sizeof why) != 0) {
		util_errorf(err, errsize, "push: PUT manifest %s: %s", reference,
		    why);
		goto out;
	}
	if (a.status != 201) {
		answer_msg(msg, sizeof msg, &a);
		util_errorf(err, errsize, "push: PUT manifest %s: %s", reference,
		    msg);
		goto out;
	}
	if (a.digest != NULL && strcmp(a.digest, digest) != 0) {
		util_errorf(err, errsize, "push: PUT manifest %s: the registry "
		    "says its digest is %.80s, not %s", reference, a.digest,
		    digest);
		goto out;
	}
	ret = 0;
out:
	push_answer_clear(&a);
	free(url);
	free(text);
	return ret;
}

/* A descriptor's digest and media type, checked. */
static int
descriptor(const char **digest, const char **mtype, json_t *d)
{
	*digest = json_string_value(json_object_get(d, "digest"));
	*mtype = json_string_value(json_object_get(d, "mediaType"));
	return *digest != NULL && strncmp(*digest, "sha256:", 7) == 0 &&
	    strlen(*digest) == 71 ? 0 : -1;
}

/* Parse a JSON blob of the layout. */
static json_t *
load_json(struct push *p, const char *digest, char *err, size_t errsize)
{
	const struct push_entry *e = push_layout_blob(&p->layout, digest);
	char *text = NULL, why[512];
	json_t *j;
	json_error_t je;

	if (e == NULL) {
		util_errorf(err, errsize, "%.80s: not in the layout", digest);
		return NULL;
	}
	if (push_layout_read(&text, &p->layout, e, why, sizeof why) != 0) {
		util_errorf(err, errsize, "%s", why);
		return NULL;
	}
	j = json_loadb(text, (size_t)e->size, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (j == NULL || !json_is_object(j))
		util_errorf(err, errsize, "%s: not a JSON object", digest);
	return j;
}

/* An image manifest's config and layers, then the manifest by digest. */
static int
push_image(struct push *p, const char *digest, char *err, size_t errsize)
{
	json_t *m, *layers, *d;
	const char *dg, *mt;
	char why[512];
	size_t i;
	int ret = -1;

	m = load_json(p, digest, why, sizeof why);
	if (m == NULL)
		return util_errorf(err, errsize, "push: manifest %s: %s", digest,
		    why);
	layers = json_object_get(m, "layers");
	if (descriptor(&dg, &mt, json_object_get(m, "config")) != 0 ||
	    !json_is_array(layers) || json_array_size(layers) > PUSH_LAYERS_MAX) {
		util_errorf(err, errsize, "push: manifest %s: no config or "
		    "layers", digest);
		goto out;
	}
	if (push_blob(p, dg, err, errsize) != 0)
		goto out;
	json_array_foreach(layers, i, d) {
		if (descriptor(&dg, &mt, d) != 0) {
			util_errorf(err, errsize, "push: manifest %s: layer %zu: "
			    "a bad descriptor", digest, i);
			goto out;
		}
		if (push_blob(p, dg, err, errsize) != 0)
			goto out;
	}
	ret = push_manifest(p, MT_MANIFEST, digest, digest, err, errsize);
out:
	json_decref(m);
	return ret;
}

static int
run_push(struct push *p, const char **pushed_digest, char *err,
    size_t errsize)
{
	const struct push_entry *ie = push_layout_find(&p->layout, "index.json");
	json_t *top = NULL, *idx = NULL, *ms, *d;
	const char *dg, *mt, *mt2;
	char *text = NULL, why[512];
	size_t i;
	int ret = -1;

	if (push_layout_read(&text, &p->layout, ie, why, sizeof why) != 0)
		return util_errorf(err, errsize, "push: %s", why);
	top = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	ms = json_object_get(top, "manifests");
	if (!json_is_array(ms) || json_array_size(ms) != 1 ||
	    descriptor(&dg, &mt, json_array_get(ms, 0)) != 0) {
		util_errorf(err, errsize, "push: index.json: one manifest "
		    "descriptor expected");
		goto out;
	}
	*pushed_digest = xstrdup(dg);
	if (mt != NULL && strcmp(mt, MT_MANIFEST) == 0) {
		/* One platform: the manifest itself goes under the tag. */
		if (push_image(p, dg, err, errsize) != 0)
			goto out;
		ret = push_manifest(p, MT_MANIFEST, dg, p->ref.tag, err, errsize);
		goto out;
	}
	if (mt == NULL || strcmp(mt, MT_INDEX) != 0) {
		util_errorf(err, errsize, "push: index.json: the manifest is "
		    "neither an image index nor an image manifest");
		goto out;
	}
	idx = load_json(p, dg, why, sizeof why);
	if (idx == NULL) {
		util_errorf(err, errsize, "push: index %s: %s", dg, why);
		goto out;
	}
	ms = json_object_get(idx, "manifests");
	if (!json_is_array(ms) || json_array_size(ms) == 0 ||
	    json_array_size(ms) > PUSH_MANIFESTS_MAX) {
		util_errorf(err, errsize, "push: index %s: 1 to %d manifests "
		    "expected", dg, PUSH_MANIFESTS_MAX);
		goto out;
	}
	json_array_foreach(ms, i, d) {
		const char *mdg;
		if (descriptor(&mdg, &mt2, d) != 0 || mt2 == NULL ||
		    strcmp(mt2, MT_MANIFEST) != 0) {
			util_errorf(err, errsize, "push: index %s: entry %zu is "
			    "not an image manifest", dg, i);
			goto out;
		}
		if (push_image(p, mdg, err, errsize) != 0)
			goto out;
	}
	ret = push_manifest(p, MT_INDEX, dg, p->ref.tag, err, errsize);
out:
	json_decref(idx);
	json_decref(top);
	return ret;
}

int
push_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "layout", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "insecure-http", no_argument, NULL, 'i' },
		{ "credentials-fd", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *layout = NULL, *to = NULL, *creds_fd = NULL;
	const char *digest = NULL;
	const struct creds_login *login = NULL;
	struct creds *creds = NULL;
	struct push p = { .layout = { .fd = -1 } };
	char err[1024], host[256], *base = NULL;
	bool insecure = false;
	json_t *line;
	char *out;
	int c, rc = WORKER_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': layout = optarg; break;
		case 't': to = optarg; break;
		case 'i': insecure = true; break;
		case 'c': creds_fd = optarg; break;
		default: return WORKER_EXIT_USAGE;
		}
	}
	if (optind != argc || layout == NULL || to == NULL) {
		worker_msg("push: --layout FILE.tar and --to HOST[:PORT]/NAME[:TAG] "
		    "are needed, and nothing else");
		return WORKER_EXIT_USAGE;
	}
	if (parse_ref(&p.ref, to, err, sizeof err) != 0) {
		worker_msg("push: %s", err);
		return WORKER_EXIT_USAGE;
	}
	if (creds_fd != NULL && worker_read_creds(&creds, creds_fd, err,
	    sizeof err) != 0) {
		worker_msg("push: %s", err);
		return WORKER_EXIT_USAGE;
	}
	/* The whole layout is checked before the first request. */
	if (push_layout_open(&p.layout, layout, err, sizeof err) != 0) {
		worker_msg("push: %s", err);
		goto out;
	}
	snprintf(host, sizeof host, "%s", p.ref.host);
	host[strcspn(host, ":")] = '\0';
	login = creds_login_for(creds, host);
	base = xasprintf("%s://%s", insecure ? "http" : "https", p.ref.host);
	p.http = push_http_new(base, p.ref.name, insecure,
	    login != NULL ? login->login : NULL,
	    login != NULL ? login->password : NULL);
	if (p.http == NULL) {
		worker_msg("push: libcurl failed to start");
		goto out;
	}
	if (run_push(&p, &digest, err, sizeof err) != 0) {
		worker_msg("%s", err);
		goto out;
	}
	out = xasprintf("%s/%s:%s", p.ref.host, p.ref.name, p.ref.tag);
	line = json_pack("{s:s, s:s}", "pushed", out, "digest", digest);
	free(out);
	out = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	printf("%s\n", out);
	fflush(stdout);
	free(out);
	json_decref(line);
	worker_msg("push: %d blob(s) uploaded, %d already there", p.nuploaded,
	    p.nexisting);
	rc = 0;
out:
	free((char *)digest);
	free(base);
	push_http_free(p.http);
	push_layout_close(&p.layout);
	creds_free(creds);
	return rc;
}
