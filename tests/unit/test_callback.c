/*
 * Result callbacks: which notify URLs parse, which addresses they may
 * reach, which key signs them, and the configuration rules around them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>

#include "daemon/callback-url.h"
#include "daemon/callback.h"
#include "daemon/conf.h"
#include "api/api.h"
#include "unit.h"

static void
expect_url(const char *url, bool https, const char *host, unsigned port,
    bool literal)
{
	struct callback_url u;
	char why[400] = "";

	if (callback_url_parse(url, &u, why, sizeof why) != 0) {
		fprintf(stderr, "  %s refused: %s\n", url, why);
		unit_failed_checks++;
		return;
	}
	CHECK(u.https == https);
	CHECK_STR(u.host, host);
	CHECK_INT(u.port, port);
	CHECK(u.literal == literal);
}

static void
expect_bad(const char *url, const char *needle)
{
	struct callback_url u;
	char why[400] = "";

	if (callback_url_parse(url, &u, why, sizeof why) == 0 ||
	    strstr(why, needle) == NULL) {
		fprintf(stderr, "  %s: expected refusal naming '%s', got '%s'\n",
		    url, needle, why);
		unit_failed_checks++;
	}
}

static void
test_url_accepted(void)
{
	expect_url("http://example.org/hook", false, "example.org", 80, false);
	expect_url("https://CI.Example.org:8443", true, "ci.example.org", 8443,
	    false);
	expect_url("http://127.0.0.1:9/x", false, "127.0.0.1", 9, true);
	expect_url("http://[::1]:8080/x", false, "::1", 8080, true);
	expect_url("https://[2001:db8::1]/", true, "2001:db8::1", 443, true);
	expect_url("http://a-b.c9.example?q=1#f", false, "a-b.c9.example", 80,
	    false);
	/* Taken literally by curl --globoff: no reason to refuse. */
	expect_url("http://127.0.0.1:5/x[1-40]{a,b,c}", false, "127.0.0.1", 5,
	    true);
	/* An '@' after the authority is part of the path. */
	expect_url("http://example.org/a@b", false, "example.org", 80, false);
	expect_url("http://localhost:1", false, "localhost", 1, false);
}

static void
test_url_refused(void)
{
	char big[CALLBACK_URL_MAX + 20];

	expect_bad("ftp://example.org/", "http:// or https://");
	expect_bad("file:///etc/passwd", "http:// or https://");
	expect_bad("HTTP//example.org", "http:// or https://");
	expect_bad("http://user:pw@example.org/", "user name or password");
	expect_bad("http://tok@example.org/", "user name or password");
	expect_bad("http://example.org/a b", "spaces");
	expect_bad("http://example.org/\x01", "printable ASCII");
	expect_bad("http://ex\xc3\xa4mple.org/", "printable ASCII");
	expect_bad("http:///x", "no host");
	expect_bad("http://:80/x", "no host");
	expect_bad("http://example.org:/", "port");
	expect_bad("http://example.org:0/", "port");
	expect_bad("http://example.org:65536/", "port");
	expect_bad("http://example.org:8x/", "port");
	expect_bad("http://example.org:80:80/", "port");
	/* Spellings curl reads as addresses and a resolver might not. */
	expect_bad("http://127.1/", "neither a DNS name");
	expect_bad("http://2130706433/", "neither a DNS name");
	expect_bad("http://0x7f.1/", "neither a DNS name");
	expect_bad("http://0177.0.0.1/", "neither a DNS name");
	expect_bad("http://%31%32%37.0.0.1/", "neither a DNS name");
	expect_bad("http://example.org./", "neither a DNS name");
	expect_bad("http://-a.example/", "neither a DNS name");
	expect_bad("http://a..example/", "neither a DNS name");
	expect_bad("http://a_b.example/", "neither a DNS name");
	expect_bad("http://[::1/", "brackets");
	expect_bad("http://[fe80::1%25eth0]/", "not an IPv6 address");
	expect_bad("http://[1.2.3.4]/", "not an IPv6 address");
	expect_bad("http://[::1]x/", "port");
	memset(big, 'a', sizeof big - 1);
	memcpy(big, "http://x.org/", 13);
	big[sizeof big - 1] = '\0';
	expect_bad(big, "longer than 2048");
}

/* The detail of a refused URL never quotes the credentials in it. */
static void
test_no_echo(void)
{
	char why[400] = "";

	CHECK(api_check_notify_url("https://bob:hunter2secret@example.org/",
	    why, sizeof why) != 0);
	CHECK(strstr(why, "hunter2") == NULL);
	CHECK(strncmp(why, "notify.url: ", 12) == 0);
	why[0] = '\0';
	CHECK(callback_url_check("http://bob:hunter2secret@127.0.0.1/", true,
	    why, sizeof why) != 0);
	CHECK(strstr(why, "hunter2") == NULL);
}

static const char *
refused4(const char *ip)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	CHECK(inet_pton(AF_INET, ip, &sa.sin_addr) == 1);
	return callback_addr_refused((struct sockaddr *)&sa);
}

static const char *
refused6(const char *ip)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };

	CHECK(inet_pton(AF_INET6, ip, &sa.sin6_addr) == 1);
	return callback_addr_refused((struct sockaddr *)&sa);
}

static void
test_addresses(void)
{
	struct ifaddrs *ifa = NULL, *i;
	char ip[INET6_ADDRSTRLEN];
	int own = 0;

	CHECK_STR(refused4("127.0.0.1"), "a loopback address");
	CHECK_STR(refused4("127.255.3.4"), "a loopback address");
	CHECK_STR(refused4("0.0.0.0"), "an unspecified address");
	CHECK_STR(refused4("169.254.169.254"), "a link-local address");
	CHECK_STR(refused6("::1"), "a loopback address");
	CHECK_STR(refused6("::"), "an unspecified address");
	CHECK_STR(refused6("fe80::1"), "a link-local address");
	CHECK_STR(refused6("febf::1"), "a link-local address");
	CHECK_STR(refused6("::ffff:127.0.0.1"), "a loopback address");
	CHECK_STR(refused6("::ffff:169.254.1.1"), "a link-local address");
	/* Documentation ranges: nobody's interface. */
	CHECK(refused4("203.0.113.77") == NULL);
	CHECK(refused4("169.253.1.1") == NULL);
	CHECK(refused6("2001:db8:ffff::77") == NULL);
	CHECK(refused6("fec0::1") == NULL);
	/* Every address of this host's interfaces is refused. */
	CHECK(getifaddrs(&ifa) == 0);
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6))
			continue;
		if (callback_addr_refused(i->ifa_addr) == NULL) {
			inet_ntop(i->ifa_addr->sa_family,
			    i->ifa_addr->sa_family == AF_INET ?
			    (void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr :
			    (void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
			    ip, sizeof ip);
			fprintf(stderr, "  %s of %s was not refused\n", ip,
			    i->ifa_name);
			unit_failed_checks++;
		}
		own++;
	}
	freeifaddrs(ifa);
	CHECK(own > 0);
}

static void
test_check(void)
{
	char why[400] = "";

	CHECK(callback_url_check("http://127.0.0.1:8/x", false, why,
	    sizeof why) != 0);
	CHECK(strstr(why, "127.0.0.1 is a loopback address") != NULL);
	CHECK(strstr(why, "allow_private_callbacks") != NULL);
	CHECK(callback_url_check("http://127.0.0.1:8/x", true, why,
	    sizeof why) == 0);
	CHECK(callback_url_check("http://[fe80::2]/", false, why,
	    sizeof why) != 0);
	CHECK(strstr(why, "link-local") != NULL);
	CHECK(callback_url_check("http://169.254.169.254/latest", false, why,
	    sizeof why) != 0);
	/* A name is checked when it is resolved, at send time. */
	CHECK(callback_url_check("http://localhost:8/x", false, why,
	    sizeof why) == 0);
	CHECK(callback_url_check("https://203.0.113.1/x", false, why,
	    sizeof why) == 0);
}

static void
test_sign(void)
{
	char out[7 + 65];

	/* GitHub's published HMAC-SHA256 test vector. */
	callback_sign(out, "It's a Secret to Everybody", "Hello, World!", 13);
	CHECK_STR(out, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c2"
	    "2c46f4379c8b043e17");
}

static char conf_path[512];

static int
load(const char *text, struct kiln_config *c, char *err, size_t errsize)
{
	FILE *f;

	snprintf(conf_path, sizeof conf_path, "%s/kilnd.conf", unit_tmpdir());
	f = fopen(conf_path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	conf_defaults(c);
	err[0] = '\0';
	return conf_load(c, conf_path, err, errsize);
}

/* The key of a project's callbacks is its notify_secret, else the
 * farm's, and never one of its webhook secrets. */
static void
test_keys(void)
{
	struct kiln_config c;
	char err[1024];

	CHECK(load("[kilnd]\nnotify_secret = farm-key-0123456789\n"
	    "[project a]\nrepo = https://example.org/a.git\n"
	    "secret = webhook-secret-0123456789\n"
	    "notify_secret = a-callback-key-0123456789\n"
	    "notify_url = https://hooks.example.org/a\n"
	    "[project b]\nrepo = https://example.org/b.git\n"
	    "secret = webhook-secret-b-0123456789\n", &c, err,
	    sizeof err) == 0);
	CHECK_STR(callback_key(&c, "a", "https://hooks.example.org/a"),
	    "a-callback-key-0123456789");
	/* A URL the submitter chose gets the farm's key, not the project's. */
	CHECK_STR(callback_key(&c, "a", "https://elsewhere.example.org/a"),
	    "farm-key-0123456789");
	CHECK_STR(callback_key(&c, "b", "https://hooks.example.org/a"),
	    "farm-key-0123456789");
	CHECK_STR(callback_key(&c, NULL, "https://hooks.example.org/a"),
	    "farm-key-0123456789");
	CHECK_STR(callback_key(&c, "gone", "https://hooks.example.org/a"),
	    "farm-key-0123456789");
	conf_free(&c);

	CHECK(load("[project b]\nrepo = https://example.org/b.git\n"
	    "secret = webhook-secret-b-0123456789\n", &c, err,
	    sizeof err) == 0);
	CHECK(callback_key(&c, "b", "https://hooks.example.org/b") == NULL);
	conf_free(&c);
}

static void
expect_conf_error(const char *text, const char *needle)
{
	struct kiln_config c;
	char err[1024];

	if (load(text, &c, err, sizeof err) == 0 || strstr(err, needle) == NULL) {
		fprintf(stderr, "  expected a config error naming '%s', got "
		    "'%s'\n", needle, err);
		unit_failed_checks++;
	}
	conf_free(&c);
}

static void
test_conf(void)
{
	struct kiln_config c;
	char err[1024];

	CHECK(load("", &c, err, sizeof err) == 0);
	CHECK_INT(c.notify_deadline, 30);
	CHECK_INT(c.notify_slots, 4);
	CHECK(!c.allow_private_callbacks);
	conf_free(&c);
	CHECK(load("[kilnd]\nnotify_deadline = 3\nnotify_slots = 2\n"
	    "allow_private_callbacks = yes\n[project a]\n"
	    "repo = https://example.org/a.git\n"
	    "notify_url = http://127.0.0.1:9/x\n", &c, err, sizeof err) == 0);
	CHECK_INT(c.notify_deadline, 3);
	CHECK_INT(c.notify_slots, 2);
	CHECK(c.allow_private_callbacks);
	conf_free(&c);

	expect_conf_error("[kilnd]\nnotify_deadline = 0\n", "notify_deadline");
	expect_conf_error("[kilnd]\nnotify_slots = 65\n", "notify_slots");
	expect_conf_error("[project a]\nrepo = https://example.org/a.git\n"
	    "secret = same-secret-0123456789\n"
	    "notify_secret = same-secret-0123456789\n",
	    "notify_secret equals one of its webhook secrets");
	expect_conf_error("[kilnd]\nnotify_secret = same-secret-0123456789\n"
	    "[project a]\nrepo = https://example.org/a.git\n"
	    "secret = same-secret-0123456789\n",
	    "[kilnd] notify_secret equals a webhook secret of [project a]");
	expect_conf_error("[project a]\nrepo = https://example.org/a.git\n"
	    "notify_secret = short\n", "notify_secret: at least 16");
	expect_conf_error("[project a]\nrepo = https://example.org/a.git\n"
	    "notify_url = http://u:p@example.org/\n",
	    "notify_url: must not carry a user name");
	expect_conf_error("[project a]\nrepo = https://example.org/a.git\n"
	    "notify_url = http://127.0.0.1:9/x\n",
	    "notify_url: 127.0.0.1 is a loopback address");
}

UNIT_MAIN(TEST(test_url_accepted), TEST(test_url_refused),
    TEST(test_no_echo), TEST(test_addresses), TEST(test_check),
    TEST(test_sign), TEST(test_keys), TEST(test_conf))
