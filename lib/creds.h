/*
 * The fetch credentials of a project (`credentials = FILE` in a [project
 * NAME] section, kilnd.conf(5)).  kilnd reads the file when a fetch of the
 * project's repository starts and hands its bytes to kiln-worker fetch on
 * a file descriptor; the worker parses them and gives them to libgit2.
 *
 * The file is one of two kinds, told by its first word:
 *   netrc:   machine HOST login USER password SECRET [machine ...]
 *            (words separated by blanks or newlines, no quoting); libgit2
 *            gets USER and SECRET when HOST asks for a user and password.
 *   headers: one "Name: value" HTTP header per line, sent with every
 *            request of the fetch (http and https only).
 * Blank lines and lines starting with '#' are ignored in both.
 *
 * Nothing here ever quotes the file's content in a message: errors name a
 * line number and what is wrong.
 */
#ifndef KILN_CREDS_H
#define KILN_CREDS_H

#include <stddef.h>

/* The largest credentials file, bytes. */
#define CREDS_MAX (64 * 1024)

struct creds_login {
	char *machine;		/* host name, compared without case */
	char *login;
	char *password;
};

struct creds {
	struct creds_login *logins;
	size_t nlogins;
	char **headers;		/* "Name: value", for git_fetch_options */
	size_t nheaders;
};

/*
 * Read the credentials file at `path`: a regular file of at most
 * CREDS_MAX bytes without NUL bytes that neither group nor others may
 * read or write (mode 0600 or 0400).  *out is NUL-terminated; free it with
 * creds_text_free().  0, or -1 with a reason that names the file.
 */
int creds_read_file(char **out, size_t *outlen, const char *path, char *err,
    size_t errsize);

/* Zero and free text from creds_read_file (NULL is fine). */
void creds_text_free(char *text, size_t len);

/*
 * Parse the file's text.  0 with *out (free with creds_free), or -1 with
 * "line N: ..." in err.
 */
int creds_parse(struct creds **out, const char *text, size_t len, char *err,
    size_t errsize);

/* The login for `host` (exact, without case), or NULL. */
const struct creds_login *creds_login_for(const struct creds *c,
    const char *host);

/*
 * The host of a URL ("https://h:8443/x" -> "h", "ssh://git@[::1]/x" ->
 * "::1") into out.  0, or -1 when it has none or it does not fit.
 */
int creds_url_host(char *out, size_t size, const char *url);

/* Zero every secret and free (NULL is fine). */
void creds_free(struct creds *c);

#endif
