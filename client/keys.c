/*
 * The farm's public key for `kiln download --verify`: from --pubkey, or
 * GET /v1/pubkey pinned on first use in $XDG_CONFIG_HOME/kiln/keys/
 * <host:port>.pub.  A later answer with another key is refused, naming
 * both key ids: a farm whose key changes is either re-keyed on purpose
 * (then the user removes the pinned file) or not the farm it was.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "keys.h"
#include "util.h"
#include "xmalloc.h"

#define KEYFILE_MAX 4096

int
keys_read_file(const char *path, char **text, size_t *len, size_t max,
    char *err, size_t errsize)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);

	if (fd < 0)
		return util_errorf(err, errsize, "%s: %s", path,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		close(fd);
		return util_errorf(err, errsize, "%s: not a regular file of "
		    "at most %zu bytes", path, max);
	}
	buf = xmalloc(max + 1);
	while (got < max && (n = read(fd, buf + got, max - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

/* "host:port" of the URL, with characters unsafe in a file name as '_'. */
static char *
pin_name(const char *url)
{
	const char *h = strstr(url, "://");
	bool tls = strncmp(url, "https:", 6) == 0, has_port;
	size_t n;
	char *s;

	h = h != NULL ? h + 3 : url;
	n = strcspn(h, "/?#");
	if (memchr(h, '@', n) != NULL) {
		/* user:password@ is no part of the farm's name. */
		const char *at = memrchr(h, '@', n);

		n -= (size_t)(at + 1 - h);
		h = at + 1;
	}
	if (h[0] == '[') {
		const char *rb = memchr(h, ']', n);

		has_port = rb != NULL && rb + 1 < h + n && rb[1] == ':';
	} else {
		has_port = memchr(h, ':', n) != NULL;
	}
	s = xasprintf("%.*s%s", (int)n, h, has_port ? "" : tls ? ":443" :
	    ":80");
	for (char *p = s; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '.' && *p != '-' &&
		    *p != ':' && *p != '[' && *p != ']')
			*p = '_';
	if (s[0] == '.')
		s[0] = '_';
	return s;
}

/*
 * Pin text as path, never over a pin already there: 0 pinned, 1 when
 * there is one (another kiln pinned first: compare with it), -1 error.
 */
static int
write_pin(const char *dir, const char *path, const char *text, char *err,
    size_t errsize)
{
	if (util_mkdir_p(dir, 0700) != 0)
		return util_errorf(err, errsize, "cannot create %s: %s", dir,
		    strerror(errno));
	return util_write_atomic(dir, path, text, strlen(text), 0644, true,
	    err, errsize);
}

int
keys_get(const struct kiln_conf *c, const char *pubkey_file,
    struct minisign_key *key, char *err, size_t errsize)
{
	struct http_resp r;
	struct minisign_key pinned;
	char why[512], a[17], b[17], *dir, *kdir, *name, *path, *text;
	size_t len;
	int rc = -1;

	if (pubkey_file != NULL) {
		if (keys_read_file(pubkey_file, &text, &len, KEYFILE_MAX, err,
		    errsize) != 0)
			return -1;
		rc = minisign_parse_key(text, len, key, why, sizeof why);
		if (rc != 0)
			util_errorf(err, errsize, "%s: %s", pubkey_file, why);
		free(text);
		return rc;
	}
	if (http_call(c, "GET", "/v1/pubkey", NULL, &r, err, errsize) != 0)
		return -1;
	if (r.status != 200) {
		http_problem(&r, why, sizeof why);
		http_resp_free(&r);
		return util_errorf(err, errsize, "the farm's public key: %s",
		    why);
	}
	if (minisign_parse_key(r.body, r.len, key, why, sizeof why) != 0) {
		http_resp_free(&r);
		return util_errorf(err, errsize, "%s/v1/pubkey: %s", c->url,
		    why);
	}
	if ((dir = config_dir()) == NULL) {
		http_resp_free(&r);
		return util_errorf(err, errsize, "no $XDG_CONFIG_HOME or "
		    "$HOME to pin the farm's key in (use --pubkey FILE)");
	}
	kdir = xasprintf("%s/keys", dir);
	name = pin_name(c->url);
	path = xasprintf("%s/%s.pub", kdir, name);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		/* First use: trust this key from now on.  Another kiln may
		 * pin at the same moment: then compare with its pin. */
		rc = write_pin(kdir, path, r.body, err, errsize);
		if (rc == 0) {
			minisign_key_id(a, key->id);
			fprintf(stderr, "kiln: pinned the farm's key %s in "
			    "%s\n", a, path);
		}
		if (rc != 1)
			goto out;
		rc = -1;
	}
	if (keys_read_file(path, &text, &len, KEYFILE_MAX, err, errsize) != 0)
		goto out;
	if (minisign_parse_key(text, len, &pinned, why, sizeof why) != 0) {
		util_errorf(err, errsize, "%s: %s", path, why);
	} else if (memcmp(pinned.id, key->id, 8) != 0 ||
	    memcmp(pinned.pk, key->pk, 32) != 0) {
		minisign_key_id(a, pinned.id);
		minisign_key_id(b, key->id);
		util_errorf(err, errsize, "the farm's public key changed: "
		    "%s pinned key %s, the server now has key %s (remove %s "
		    "if the farm was re-keyed on purpose)", path, a, b, path);
	} else {
		rc = 0;
	}
	free(text);
out:
	http_resp_free(&r);
	free(dir);
	free(kdir);
	free(name);
	free(path);
	return rc;
}
