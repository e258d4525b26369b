/* Fetch credentials (lib/creds.c): the file, its two kinds, hosts. */
#include "config.h"

#include <string.h>
#include <sys/stat.h>

#include "lib/creds.h"
#include "unit.h"

#define SECRET "s3cretTOKENvalue"

static struct creds *
parse_ok(const char *text)
{
	struct creds *c = NULL;
	char err[256] = "";

	if (creds_parse(&c, text, strlen(text), err, sizeof err) != 0) {
		fprintf(stderr, "  creds_parse: %s\n", err);
		CHECK(0);
	}
	return c;
}

/* Refused, with a message naming `want` and never the secret. */
static void
parse_bad(const char *text, const char *want)
{
	struct creds *c = NULL;
	char err[256] = "";

	CHECK_INT(creds_parse(&c, text, strlen(text), err, sizeof err), -1);
	CHECK(c == NULL);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "  '%s' does not name '%s'\n", err, want);
		CHECK(0);
	}
	CHECK(strstr(err, SECRET) == NULL);
}

static void
test_netrc(void)
{
	struct creds *c = parse_ok("# the forge\n"
	    "machine git.example.com login ci password " SECRET "\n"
	    "machine Other.Example\r\n  login x\n  password y\n");

	if (c == NULL)
		return;
	CHECK_INT(c->nlogins, 2);
	CHECK_INT(c->nheaders, 0);
	CHECK(creds_login_for(c, "git.example.com") != NULL);
	CHECK_STR(creds_login_for(c, "GIT.example.com")->password, SECRET);
	CHECK_STR(creds_login_for(c, "other.example")->login, "x");
	CHECK(creds_login_for(c, "example.com") == NULL);
	CHECK(creds_login_for(c, "git.example.com.evil") == NULL);
	creds_free(c);
}

static void
test_netrc_errors(void)
{
	parse_bad("machine h login u\n", "needs both login and password");
	parse_bad("machine h login u password\n", "line 1: 'password' without");
	parse_bad("machine h login u password " SECRET " login v\n", "twice");
	parse_bad("machine h\nlogin u\npassword " SECRET "\ndefault login "
	    "a password b\n", "line 4: 'default'");
	parse_bad("machine h macdef x\n", "line 1: expected machine");
	parse_bad("machine h/x login u password " SECRET "\n", "host name");
}

static void
test_headers(void)
{
	struct creds *c = parse_ok("\n# a bearer token\n"
	    "Authorization:   Bearer " SECRET "  \r\n"
	    "X-Extra: one two\n");

	if (c == NULL)
		return;
	CHECK_INT(c->nheaders, 2);
	CHECK_INT(c->nlogins, 0);
	CHECK_STR(c->headers[0], "Authorization: Bearer " SECRET);
	CHECK_STR(c->headers[1], "X-Extra: one two");
	creds_free(c);
}

static void
test_header_errors(void)
{
	parse_bad("Authorization Bearer " SECRET "\n", "line 1: not a header");
	parse_bad("X-A: 1\nHost: evil.example\n", "line 2: Host");
	parse_bad("X-A:   \n", "no value");
	parse_bad("X-A: a\x01" SECRET "\n", "control character");
	parse_bad("# only a comment\n\n", "no credentials");
	parse_bad("", "no credentials");
	{
		struct creds *c = NULL;
		char err[128];
		CHECK_INT(creds_parse(&c, "X-A: a\0b\n", 9, err, sizeof err), -1);
		CHECK(strstr(err, "NUL") != NULL);
	}
}

static void
test_url_host(void)
{
	char h[64];

	CHECK_INT(creds_url_host(h, sizeof h, "https://git.example.com/x.git"),
	    0);
	CHECK_STR(h, "git.example.com");
	CHECK_INT(creds_url_host(h, sizeof h, "http://127.0.0.1:8080/r"), 0);
	CHECK_STR(h, "127.0.0.1");
	CHECK_INT(creds_url_host(h, sizeof h, "ssh://git@host.example/r"), 0);
	CHECK_STR(h, "host.example");
	CHECK_INT(creds_url_host(h, sizeof h, "ssh://[::1]:22/r"), 0);
	CHECK_STR(h, "::1");
	CHECK_INT(creds_url_host(h, sizeof h, "https://h?x@y"), 0);
	CHECK_STR(h, "h");
	CHECK_INT(creds_url_host(h, sizeof h, "/srv/x"), -1);
	CHECK_INT(creds_url_host(h, sizeof h, "https:///x"), -1);
}

/* The file: owner-only, regular, bounded; errors name the file. */
static void
test_read_file(void)
{
	const char *dir = unit_tmpdir();
	char path[512], err[512], *text = NULL;
	size_t len = 0;

	snprintf(path, sizeof path, "%s/creds", dir);
	write_text(path, "machine h login u password " SECRET "\n");
	CHECK_INT(chmod(path, 0644), 0);
	CHECK_INT(creds_read_file(&text, &len, path, err, sizeof err), -1);
	CHECK(strstr(err, path) != NULL);
	CHECK(strstr(err, "0644") != NULL);
	CHECK(strstr(err, SECRET) == NULL);
	CHECK_INT(chmod(path, 0640), 0);
	CHECK_INT(creds_read_file(&text, &len, path, err, sizeof err), -1);
	CHECK_INT(chmod(path, 0600), 0);
	CHECK_INT(creds_read_file(&text, &len, path, err, sizeof err), 0);
	CHECK(text != NULL && strstr(text, SECRET) != NULL);
	CHECK_INT(len, strlen("machine h login u password " SECRET "\n"));
	creds_text_free(text, len);
	/* Not a regular file; not absolute; missing. */
	CHECK_INT(creds_read_file(&text, &len, dir, err, sizeof err), -1);
	CHECK_INT(creds_read_file(&text, &len, "creds", err, sizeof err), -1);
	CHECK(strstr(err, "absolute") != NULL);
	snprintf(path, sizeof path, "%s/none", dir);
	CHECK_INT(creds_read_file(&text, &len, path, err, sizeof err), -1);
	CHECK(strstr(err, path) != NULL);
}

UNIT_MAIN(
	TEST(test_netrc),
	TEST(test_netrc_errors),
	TEST(test_headers),
	TEST(test_header_errors),
	TEST(test_url_host),
	TEST(test_read_file)
)
