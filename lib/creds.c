/*
 * Fetch credentials: the file of a project's `credentials` key, read by
 * kilnd and parsed by kiln-worker fetch (creds.h has the format).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "util.h"
#include "xmalloc.h"

#define CREDS_MAX_LOGINS 64
#define CREDS_MAX_HEADERS 32

void
creds_text_free(char *text, size_t len)
{
	if (text == NULL)
		return;
	explicit_bzero(text, len);
	free(text);
}

int
creds_read_file(char **out, size_t *outlen, const char *path, char *err,
    size_t errsize)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, ret = -1;

	if (path[0] != '/')
		return util_errorf(err, errsize, "%s: not an absolute path", path);
	/* Non-blocking: a FIFO put in its place must not hang the reader. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return util_errorf(err, errsize, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		util_errorf(err, errsize, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		util_errorf(err, errsize, "%s: not a regular file", path);
		goto out;
	}
	/*
	 * As ssh does with a private key: a secret that others can read is
	 * not one any more, and saying so beats using it.
	 */
	if ((st.st_mode & 077) != 0) {
		util_errorf(err, errsize, "%s: group or others may read or write it "
		    "(mode %04o); make it readable by its owner only "
		    "(chmod 600)", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size > CREDS_MAX) {
		util_errorf(err, errsize, "%s: larger than %d bytes", path, CREDS_MAX);
		goto out;
	}
	buf = xmalloc(CREDS_MAX + 2);
	for (;;) {
		ssize_t r = read(fd, buf + len, CREDS_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			util_errorf(err, errsize, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CREDS_MAX) {
			util_errorf(err, errsize, "%s: larger than %d bytes", path,
			    CREDS_MAX);
			goto out;
		}
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		util_errorf(err, errsize, "%s: holds a NUL byte (a text file is "
		    "expected)", path);
		goto out;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
	ret = 0;
out:
	creds_text_free(buf, CREDS_MAX + 2);
	close(fd);
	return ret;
}

void
creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nlogins; i++) {
		struct creds_login *l = &c->logins[i];
		free(l->machine);
		if (l->login != NULL)
			creds_text_free(l->login, strlen(l->login));
		if (l->password != NULL)
			creds_text_free(l->password, strlen(l->password));
	}
	for (size_t i = 0; i < c->nheaders; i++)
		creds_text_free(c->headers[i], strlen(c->headers[i]));
	free(c->logins);
	free(c->headers);
	free(c);
}

/* The next line of text (without its newline or a CR before it). */
static bool
next_line(const char **p, const char *end, const char **line, size_t *n)
{
	const char *nl;

	if (*p >= end)
		return false;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	*line = *p;
	*n = (size_t)((nl != NULL ? nl : end) - *p);
	*p = nl != NULL ? nl + 1 : end;
	if (*n > 0 && (*line)[*n - 1] == '\r')
		(*n)--;
	return true;
}

/* Blank, or a comment. */
static bool
skipped(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i == n || line[i] == '#';
}

static bool
valid_host(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 253 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") == n;
}

/* netrc: machine HOST login USER password SECRET, as words. */
static int
parse_netrc(struct creds *c, const char *text, size_t len, char *err,
    size_t errsize)
{
	const char *p = text, *end = text + len, *line;
	struct creds_login *cur = NULL;
	char *want = NULL;	/* the keyword whose value comes next */
	int lineno = 0, want_line = 0;
	size_t n;

	while (next_line(&p, end, &line, &n)) {
		lineno++;
		if (skipped(line, n))
			continue;
		for (size_t i = 0; i < n; ) {
			size_t w;
			char *word;

			while (i < n && (line[i] == ' ' || line[i] == '\t'))
				i++;
			if (i == n)
				break;
			for (w = i; w < n && line[w] != ' ' && line[w] != '\t';
			    w++)
				;
			word = xstrndup(line + i, w - i);
			i = w;
			if (want != NULL) {
				char **slot = strcmp(want, "machine") == 0 ?
				    &cur->machine : strcmp(want, "login") == 0 ?
				    &cur->login : &cur->password;
				if (slot == &cur->machine && !valid_host(word)) {
					free(word);
					free(want);
					return util_errorf(err, errsize, "line %d: the "
					    "machine is not a host name",
					    lineno);
				}
				*slot = word;
				free(want);
				want = NULL;
				continue;
			}
			if (strcmp(word, "machine") == 0) {
				if (c->nlogins == CREDS_MAX_LOGINS) {
					free(word);
					return util_errorf(err, errsize, "line %d: more "
					    "than %d machines", lineno,
					    CREDS_MAX_LOGINS);
				}
				c->logins = xreallocarray(c->logins,
				    c->nlogins + 1, sizeof *c->logins);
				cur = &c->logins[c->nlogins++];
				memset(cur, 0, sizeof *cur);
			} else if (strcmp(word, "login") == 0 ||
			    strcmp(word, "password") == 0) {
				char *have;
				if (cur == NULL) {
					util_errorf(err, errsize, "line %d: '%s' before "
					    "any machine", lineno, word);
					free(word);
					return -1;
				}
				have = strcmp(word, "login") == 0 ?
				    cur->login : cur->password;
				if (have != NULL) {
					util_errorf(err, errsize, "line %d: '%s' is "
					    "given twice for one machine",
					    lineno, word);
					free(word);
					return -1;
				}
			} else if (strcmp(word, "default") == 0) {
				free(word);
				return util_errorf(err, errsize, "line %d: 'default' is "
				    "not taken: credentials go to the machine "
				    "they name only", lineno);
			} else {
				free(word);
				return util_errorf(err, errsize, "line %d: expected "
				    "machine, login or password", lineno);
			}
			want = word;
			want_line = lineno;
		}
	}
	if (want != NULL) {
		util_errorf(err, errsize, "line %d: '%s' without a value", want_line,
		    want);
		free(want);
		return -1;
	}
	for (size_t i = 0; i < c->nlogins; i++)
		if (c->logins[i].login == NULL || c->logins[i].password == NULL)
			return util_errorf(err, errsize, "machine %s: needs both login "
			    "and password", c->logins[i].machine);
	return 0;
}

/* Header names libgit2 sets itself and refuses in custom_headers. */
static const char *const reserved[] = {
	"Host", "User-Agent", "Accept", "Content-Type", "Content-Length",
	"Transfer-Encoding",
};

static int
parse_headers(struct creds *c, const char *text, size_t len, char *err,
    size_t errsize)
{
	static const char tchar[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
	const char *p = text, *end = text + len, *line;
	int lineno = 0;
	size_t n;

	while (next_line(&p, end, &line, &n)) {
		size_t name, v, vend;

		lineno++;
		if (skipped(line, n))
			continue;
		for (name = 0; name < n && line[name] != '\0' &&
		    strchr(tchar, line[name]) != NULL; name++)
			;
		if (name == 0 || name == n || line[name] != ':')
			return util_errorf(err, errsize, "line %d: not a header line "
			    "'Name: value' (nor netrc, which starts with "
			    "'machine')", lineno);
		for (size_t i = 0; i < sizeof reserved / sizeof reserved[0];
		    i++)
			if (strlen(reserved[i]) == name &&
			    strncasecmp(line, reserved[i], name) == 0)
				return util_errorf(err, errsize, "line %d: %s is set "
				    "by the fetch itself", lineno, reserved[i]);
		for (v = name + 1; v < n && (line[v] == ' ' || line[v] == '\t');
		    v++)
			;
		for (vend = n; vend > v && (line[vend - 1] == ' ' ||
		    line[vend - 1] == '\t'); vend--)
			;
		if (vend == v)
			return util_errorf(err, errsize, "line %d: the header has no "
			    "value", lineno);
		for (size_t i = v; i < vend; i++)
			if (((unsigned char)line[i] < 0x20 && line[i] != '\t') ||
			    line[i] == 0x7f)
				return util_errorf(err, errsize, "line %d: a control "
				    "character in the value", lineno);
		if (c->nheaders == CREDS_MAX_HEADERS)
			return util_errorf(err, errsize, "line %d: more than %d headers",
			    lineno, CREDS_MAX_HEADERS);
		c->headers = xreallocarray(c->headers, c->nheaders + 1,
		    sizeof *c->headers);
		c->headers[c->nheaders++] = xasprintf("%.*s: %.*s", (int)name,
		    line, (int)(vend - v), line + v);
	}
	return 0;
}

int
creds_parse(struct creds **out, const char *text, size_t len, char *err,
    size_t errsize)
{
	const char *p = text, *end = text + len, *line = NULL;
	struct creds *c;
	bool netrc = false;
	size_t n;
	int rc;

	if (memchr(text, '\0', len) != NULL)
		return util_errorf(err, errsize, "holds a NUL byte");
	/* The kind: netrc when the first word is "machine". */
	while (next_line(&p, end, &line, &n)) {
		if (skipped(line, n))
			continue;
		while (*line == ' ' || *line == '\t')
			line++, n--;
		netrc = n >= 7 && strncmp(line, "machine", 7) == 0 &&
		    (n == 7 || line[7] == ' ' || line[7] == '\t');
		break;
	}
	c = xcalloc(1, sizeof *c);
	rc = netrc ? parse_netrc(c, text, len, err, errsize) :
	    parse_headers(c, text, len, err, errsize);
	if (rc == 0 && c->nlogins == 0 && c->nheaders == 0)
		rc = util_errorf(err, errsize, "holds no credentials (netrc 'machine "
		    "HOST login USER password SECRET', or header lines)");
	if (rc != 0) {
		creds_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

const struct creds_login *
creds_login_for(const struct creds *c, const char *host)
{
	if (c == NULL || host == NULL)
		return NULL;
	for (size_t i = 0; i < c->nlogins; i++)
		if (strcasecmp(c->logins[i].machine, host) == 0)
			return &c->logins[i];
	return NULL;
}

int
creds_url_host(char *out, size_t size, const char *url)
{
	const char *h = strstr(url, "://"), *end, *at;
	size_t alen;

	if (h == NULL)
		return -1;
	h += 3;
	alen = strcspn(h, "/?#");
	/* After any user name: "ssh://git@host". */
	for (at = h + alen; at > h && at[-1] != '@'; at--)
		;
	h = at;
	alen = strcspn(h, "/?#");
	if (h[0] == '[') {
		end = memchr(h, ']', alen);
		if (end == NULL)
			return -1;
		h++;
	} else {
		end = memchr(h, ':', alen);
		if (end == NULL)
			end = h + alen;
	}
	if (end == h || (size_t)(end - h) >= size)
		return -1;
	memcpy(out, h, (size_t)(end - h));
	out[end - h] = '\0';
	return 0;
}
