/* kilnd.conf: defaults, loading, errors that name file:line, listen. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "unit.h"

static char conf_path[512];

/* Write `text` to a fresh kilnd.conf; its path. */
static const char *
write_conf(const char *text)
{
	FILE *f;

	snprintf(conf_path, sizeof conf_path, "%s/kilnd.conf", unit_tmpdir());
	f = fopen(conf_path, "w");
	if (f == NULL) {
		perror(conf_path);
		exit(99);
	}
	fputs(text, f);
	fclose(f);
	return conf_path;
}

/*
 * Load `text` over the defaults and expect failure with an error that
 * starts "path:line: " and contains `why`.
 */
static void
expect_load_error_at(const char *file, int line, const char *text,
    int want_line, const char *why)
{
	struct kiln_config c;
	char err[1024] = "", prefix[600];
	const char *path = write_conf(text);
	int rc;

	conf_defaults(&c);
	rc = conf_load(&c, path, err, sizeof err);
	snprintf(prefix, sizeof prefix, "%s:%d: ", path, want_line);
	if (rc != -1 || strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err + strlen(prefix), why) == NULL) {
		fprintf(stderr, "  %s:%d: conf_load = %d \"%s\", expected -1 "
		    "\"%s...%s...\"\n", file, line, rc, err, prefix, why);
		unit_failed_checks++;
	}
	conf_free(&c);
}
#define expect_load_error(t, l, w) \
	expect_load_error_at(__FILE__, __LINE__, (t), (l), (w))

static void
test_defaults(void)
{
	struct kiln_config c;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	conf_defaults(&c);
	CHECK_STR(c.listen, "127.0.0.1:8080");
	CHECK_STR(c.state_dir, "/var/lib/kiln");
	CHECK_INT(c.workers, ncpu > 0 ? ncpu : 1);
	CHECK(c.workers >= 1);
	CHECK_INT(c.log_level, LOG_LVL_INFO);
	CHECK_INT(c.http_timeout, 60);
	CHECK_INT(c.header_timeout, 10);
	CHECK_INT(c.max_connections, 1000);
	CHECK_INT(c.max_body, 1024 * 1024);
	CHECK_INT(c.max_queued, 10000);
	CHECK_INT(c.shutdown_timeout, 10);
	CHECK_INT(c.max_attempts, 3);
	CHECK_INT(c.ntokens, 0);
	conf_free(&c);
	CHECK(c.listen == NULL);
	CHECK(c.state_dir == NULL);
}

static void
test_load_good_file(void)
{
	struct kiln_config c;
	char err[1024] = "";
	const char *path = write_conf(
	    "; kilnd.conf for a test\n"
	    "# another comment\n"
	    "\n"
	    "[kilnd]\n"
	    "listen = [::1]:9090\n"
	    "state_dir = /srv/kiln\n"
	    "workers = 4\n"
	    "log_level = debug\n"
	    "http_timeout=30\n"
	    "max_connections = 64\n"
	    "max_body = 2M\n"
	    "max_queued = 5000\n"
	    "shutdown_timeout = 0\n"
	    "max_attempts = 5\n");

	conf_defaults(&c);
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	CHECK_STR(c.listen, "[::1]:9090");
	CHECK_STR(c.state_dir, "/srv/kiln");
	CHECK_INT(c.workers, 4);
	CHECK_INT(c.log_level, LOG_LVL_DEBUG);
	CHECK_INT(c.http_timeout, 30);
	CHECK_INT(c.max_connections, 64);
	CHECK_INT(c.max_body, 2 * 1024 * 1024);
	CHECK_INT(c.max_queued, 5000);
	CHECK_INT(c.shutdown_timeout, 0);
	CHECK_INT(c.max_attempts, 5);
	conf_free(&c);

	/* "key : value" works too; "warning" means warn. */
	path = write_conf("[kilnd]\nworkers : 6\nlog_level=warning\n");
	conf_defaults(&c);
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	CHECK_INT(c.workers, 6);
	CHECK_INT(c.log_level, LOG_LVL_WARN);
	conf_free(&c);
}

static void
test_load_keeps_unset_defaults(void)
{
	struct kiln_config c;
	char err[1024] = "";
	const char *path = write_conf("[kilnd]\nworkers = 2\nmax_body = 64K\n");

	conf_defaults(&c);
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	CHECK_INT(c.workers, 2);
	CHECK_INT(c.max_body, 65536);
	CHECK_STR(c.listen, "127.0.0.1:8080");
	CHECK_STR(c.state_dir, "/var/lib/kiln");
	CHECK_INT(c.max_attempts, 3);
	CHECK_INT(c.http_timeout, 60);
	conf_free(&c);

	/* An empty file changes nothing. */
	path = write_conf("");
	conf_defaults(&c);
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	CHECK_STR(c.listen, "127.0.0.1:8080");
	conf_free(&c);
}

static void
test_load_errors_name_file_and_line(void)
{
	expect_load_error("[kilnd]\nworkers = 2\nbogus = 1\n", 3,
	    "unknown key 'bogus'");
	/* The section header's own line is the one named. */
	expect_load_error("[kilnd]\nworkers = 2\n[other]\nx = 1\n", 3,
	    "unknown section [other]");
	expect_load_error("workers = 2\n[kilnd]\n", 1,
	    "'workers' is outside a section");
	expect_load_error("[kilnd]\nworkers = 2\n\nworkers = 3\n", 4,
	    "'workers' is set twice");
	expect_load_error("[kilnd]\nworkers = many\n", 2, "workers: 'many'");
	expect_load_error("[kilnd]\nworkers = 4x\n", 2, "whole number");
	expect_load_error("[kilnd]\nworkers = -1\n", 2, "whole number");
	expect_load_error("[kilnd]\nworkers = 0\n", 2,
	    "workers: '0' is not a whole number from 1 to 1024");
	expect_load_error("[kilnd]\nworkers = 1025\n", 2, "from 1 to 1024");
	expect_load_error("[kilnd]\nmax_attempts = 101\n", 2, "max_attempts");
	expect_load_error("[kilnd]\nhttp_timeout = 99999999999999999999\n", 2,
	    "http_timeout");
	expect_load_error("[kilnd]\nlog_level = loud\n", 2,
	    "log_level: 'loud' is not one of");
	expect_load_error("[kilnd]\nlisten = 8080\n", 2, "listen: '8080'");
	expect_load_error("[kilnd]\nlisten = example.com:80\n", 2, "listen");
	expect_load_error("[kilnd]\nmax_body = 10X\n", 2,
	    "max_body: '10X' is not a size");
	expect_load_error("[kilnd]\nmax_body = 100\n", 2, "max_body: '100'");
	expect_load_error("[kilnd]\nmax_body = 2G\n", 2, "max_body");
	expect_load_error("[kilnd]\nmax_body = -1K\n", 2, "max_body");
	expect_load_error("[kilnd]\nstate_dir =\n", 2, "state_dir: empty");
	expect_load_error("[kilnd]\nworkers 4\n", 2, "syntax error");
	/* The first error is the one reported. */
	expect_load_error("[kilnd]\nworkers = 2\nbogus = 1\nlog_level = x\n",
	    3, "bogus");
}

/*
 * kilnd.conf(5): kilnd refuses a file with "a section other than
 * [kilnd]", also one that holds no setting.
 */
static void
test_load_empty_unknown_section(void)
{
	expect_load_error("[kilnd]\nworkers = 2\n[other]\n", 3,
	    "unknown section [other]");
	expect_load_error("[kilndd]\n", 1, "unknown section [kilndd]");
}

static void
test_load_missing_file(void)
{
	struct kiln_config c;
	char err[1024] = "", path[600];

	snprintf(path, sizeof path, "%s/absent.conf", unit_tmpdir());
	conf_defaults(&c);
	CHECK_INT(conf_load(&c, path, err, sizeof err), -2);
	CHECK(strstr(err, path) != NULL);
	CHECK_INT(c.workers > 0, 1);
	CHECK_STR(c.listen, "127.0.0.1:8080");
	conf_free(&c);
}

static void
test_set(void)
{
	struct kiln_config c;
	char err[512] = "";

	conf_defaults(&c);
	CHECK_INT(conf_set(&c, "workers", "8", err, sizeof err), 0);
	CHECK_INT(c.workers, 8);
	CHECK_INT(conf_set(&c, "max_body", "1G", err, sizeof err), 0);
	CHECK_INT(c.max_body, 1024ULL * 1024 * 1024);
	CHECK_INT(conf_set(&c, "max_body", "1024", err, sizeof err), 0);
	CHECK_INT(c.max_body, 1024);
	CHECK_INT(conf_set(&c, "max_body", "3k", err, sizeof err), 0);
	CHECK_INT(c.max_body, 3072);
	CHECK_INT(conf_set(&c, "log_level", "warn", err, sizeof err), 0);
	CHECK_INT(c.log_level, LOG_LVL_WARN);
	CHECK_INT(conf_set(&c, "log_level", "error", err, sizeof err), 0);
	CHECK_INT(c.log_level, LOG_LVL_ERROR);
	CHECK_INT(conf_set(&c, "listen", "0.0.0.0:80", err, sizeof err), 0);
	CHECK_STR(c.listen, "0.0.0.0:80");
	CHECK_INT(conf_set(&c, "state_dir", "/tmp/k", err, sizeof err), 0);
	CHECK_STR(c.state_dir, "/tmp/k");

	/* Refused values leave the old ones. */
	CHECK_INT(conf_set(&c, "workers", "0", err, sizeof err), -1);
	CHECK(strstr(err, "workers") != NULL);
	CHECK_INT(c.workers, 8);
	CHECK_INT(conf_set(&c, "workers", " 3", err, sizeof err), -1);
	CHECK_INT(conf_set(&c, "workers", "+3", err, sizeof err), -1);
	CHECK_INT(c.workers, 8);
	CHECK_INT(conf_set(&c, "listen", "nowhere", err, sizeof err), -1);
	CHECK(strstr(err, "listen") != NULL);
	CHECK_STR(c.listen, "0.0.0.0:80");
	CHECK_INT(conf_set(&c, "state_dir", "", err, sizeof err), -1);
	CHECK_STR(c.state_dir, "/tmp/k");
	CHECK_INT(conf_set(&c, "max_body", "1025M", err, sizeof err), -1);
	CHECK_INT(conf_set(&c, "max_body", "1023", err, sizeof err), -1);
	CHECK_INT(conf_set(&c, "max_body", "18446744073709551615K", err,
	    sizeof err), -1);
	CHECK_INT(conf_set(&c, "max_body", "", err, sizeof err), -1);
	CHECK_INT(c.max_body, 3072);
	CHECK_INT(conf_set(&c, "log_level", "verbose", err, sizeof err), -1);
	CHECK_INT(c.log_level, LOG_LVL_ERROR);

	/* The farm: a PostgreSQL URL whose password never shows in an
	 * error, and a host name of its own characters. */
	CHECK(c.database == NULL);
	CHECK(c.host_name != NULL && conf_host_name_ok(c.host_name) == 0);
	CHECK_INT(conf_set(&c, "database", "postgresql://k@db/kiln", err,
	    sizeof err), 0);
	CHECK_STR(c.database, "postgresql://k@db/kiln");
	CHECK_INT(conf_set(&c, "database", "mysql://k:s3cret@db/kiln", err,
	    sizeof err), -1);
	CHECK(strstr(err, "database") != NULL);
	CHECK(strstr(err, "s3cret") == NULL);
	CHECK_STR(c.database, "postgresql://k@db/kiln");
	CHECK_INT(conf_set(&c, "host_name", "builder-2.rack_1", err,
	    sizeof err), 0);
	CHECK_STR(c.host_name, "builder-2.rack_1");
	CHECK_INT(conf_set(&c, "host_name", "a b", err, sizeof err), -1);
	CHECK_INT(conf_set(&c, "host_name", "-x", err, sizeof err), -1);
	CHECK_INT(conf_set(&c, "host_name", "x/y", err, sizeof err), -1);
	CHECK_INT(conf_set(&c, "host_name", "", err, sizeof err), -1);
	CHECK(strstr(err, "host_name") != NULL);
	CHECK_STR(c.host_name, "builder-2.rack_1");
	/* Another host's files: redirected unless proxied. */
	CHECK(!c.proxy_downloads);
	CHECK_INT(conf_set(&c, "proxy_downloads", "yes", err, sizeof err), 0);
	CHECK(c.proxy_downloads);
	CHECK_INT(conf_set(&c, "proxy_downloads", "maybe", err, sizeof err),
	    -1);
	CHECK(strstr(err, "proxy_downloads") != NULL);
	CHECK(c.proxy_downloads);
	CHECK_INT(conf_set(&c, "proxy_downloads", "no", err, sizeof err), 0);
	CHECK(!c.proxy_downloads);
	CHECK_INT(conf_set(&c, "no_such_key", "1", err, sizeof err), -1);
	CHECK(strstr(err, "unknown key 'no_such_key'") != NULL);
	/* Bounds are inclusive. */
	CHECK_INT(conf_set(&c, "workers", "1024", err, sizeof err), 0);
	CHECK_INT(c.workers, 1024);
	CHECK_INT(conf_set(&c, "max_attempts", "1", err, sizeof err), 0);
	CHECK_INT(c.max_attempts, 1);
	conf_free(&c);
}

static int
listen_ok(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char err[512] = "";
	int rc = conf_parse_listen(s, ss, len, err, sizeof err);

	if (rc != 0)
		fprintf(stderr, "  conf_parse_listen(\"%s\"): %s\n", s, err);
	return rc;
}

static void
test_parse_listen(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;
	char addr[INET6_ADDRSTRLEN];

	CHECK_INT(listen_ok("127.0.0.1:0", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(len, sizeof(struct sockaddr_in));
	CHECK_INT(ntohs(in4->sin_port), 0);
	CHECK_STR(inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof addr),
	    "127.0.0.1");

	CHECK_INT(listen_ok("[::1]:8080", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK_INT(len, sizeof(struct sockaddr_in6));
	CHECK_INT(ntohs(in6->sin6_port), 8080);
	CHECK_STR(inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr),
	    "::1");

	CHECK_INT(listen_ok("localhost:80", &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(ntohs(in4->sin_port), 80);
	CHECK_STR(inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof addr),
	    "127.0.0.1");

	CHECK_INT(listen_ok("0.0.0.0:65535", &ss, &len), 0);
	CHECK_INT(ntohs(in4->sin_port), 65535);

	static const char *const bad[] = {
		"127.0.0.1", "host.example:80", ":80", "1.2.3.4:70000",
		"[::1]8080", "[::1]", "[::1]:", "127.0.0.1:", "::1:80",
		"127.0.0.1:-1", "127.0.0.1:80x", "1.2.3:80", "", "[::1:80",
		"256.0.0.1:80",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[512] = "";
		if (conf_parse_listen(bad[i], &ss, &len, err, sizeof err) !=
		    -1) {
			fprintf(stderr, "  conf_parse_listen accepted \"%s\"\n",
			    bad[i]);
			CHECK(0);
		}
		CHECK(strncmp(err, "listen: ", 8) == 0);
		CHECK(strstr(err, bad[i]) != NULL);
	}
}

static bool
loopback(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (listen_ok(s, &ss, &len) != 0) {
		CHECK(0);
		return false;
	}
	return conf_is_loopback((struct sockaddr *)&ss);
}

static void
test_is_loopback(void)
{
	CHECK(loopback("127.0.0.1:8080"));
	CHECK(loopback("127.1.2.3:1"));
	CHECK(loopback("127.255.255.255:1"));
	CHECK(loopback("localhost:0"));
	CHECK(loopback("[::1]:8080"));
	CHECK(!loopback("0.0.0.0:8080"));
	CHECK(!loopback("10.0.0.1:8080"));
	CHECK(!loopback("128.0.0.1:8080"));
	CHECK(!loopback("126.255.255.255:8080"));
	CHECK(!loopback("[::]:8080"));
	CHECK(!loopback("[::2]:8080"));
	CHECK(!loopback("[fe80::1]:8080"));
}

/* [toolchains] go = PATH...: go binaries under /usr, the only place
 * builds see. */
static void
test_go_toolchains(void)
{
	struct kiln_config c;
	char err[512] = "", many[400] = "[toolchains]\n";
	const char *path;

	conf_defaults(&c);
	CHECK_INT(c.ngo_toolchains, 0);
	path = write_conf("[toolchains]\n"
	    "go = /usr/local/go/bin/go /usr/lib/go-1.24/bin/go\n"
	    "linux/arm64 = aarch64-linux-gnu\n"
	    "go = /usr/local/go1.25/bin/go\n");
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	CHECK_INT(c.ngo_toolchains, 3);
	CHECK_STR(c.go_toolchains[0], "/usr/local/go/bin/go");
	CHECK_STR(c.go_toolchains[1], "/usr/lib/go-1.24/bin/go");
	CHECK_STR(c.go_toolchains[2], "/usr/local/go1.25/bin/go");
	/* The target map is still there: "go" is not a target. */
	CHECK_STR(conf_toolchain(&c, "linux/arm64"), "aarch64-linux-gnu");
	CHECK(conf_toolchain(&c, "go") == NULL);
	conf_free(&c);
	CHECK_INT(c.ngo_toolchains, 0);

	expect_load_error("[toolchains]\ngo = /opt/go/bin/go\n", 2,
	    "toolchains: go: '/opt/go/bin/go' is not an absolute path under "
	    "/usr (builds see only /usr)");
	expect_load_error("[toolchains]\ngo = /usr/bin/go go\n", 2,
	    "toolchains: go: 'go' is not an absolute path under /usr");
	expect_load_error("[toolchains]\ngo = /usr/../opt/go/bin/go\n", 2,
	    "'/usr/../opt/go/bin/go' is not an absolute path under /usr");
	expect_load_error("[toolchains]\ngo = /usr/lib/go/..\n", 2,
	    "'/usr/lib/go/..' is not an absolute path under /usr");
	expect_load_error("[toolchains]\ngo = /usr/lib/go/bin/\n", 2,
	    "'/usr/lib/go/bin/' is not an absolute path under /usr");
	expect_load_error("[toolchains]\ngo = /usr\n", 2,
	    "'/usr' is not an absolute path under /usr");
	expect_load_error("[toolchains]\ngo = /usr/local/go/bin/go\n"
	    "go = /usr/local/go/bin/go\n", 3,
	    "toolchains: go: /usr/local/go/bin/go is listed twice");
	/* Lines of inih are at most 200 bytes: one path a line. */
	for (int i = 0; i <= CONF_MAX_GO_TOOLCHAINS; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many),
		    "go = /usr/local/go%d/bin/go\n", i);
	expect_load_error(many, 2 + CONF_MAX_GO_TOOLCHAINS,
	    "toolchains: go: more than 8 binaries");
}

/* max_job_output_size and store_max_size: set, unset (half the disk),
 * 0 (no cap), out of range. */
static void
test_output_caps(void)
{
	struct kiln_config c;
	char err[512] = "";

	conf_defaults(&c);
	CHECK_INT(c.max_job_output_size, 4ULL << 30);
	CHECK_INT(conf_store_max_size(&c, 1000ULL << 30), 500ULL << 30);
	CHECK_INT(conf_set(&c, "store_max_size", "0", err, sizeof err), 0);
	CHECK_INT(conf_store_max_size(&c, 1000ULL << 30), 0);
	CHECK_INT(conf_set(&c, "store_max_size", "10G", err, sizeof err), 0);
	CHECK_INT(conf_store_max_size(&c, 1000ULL << 30), 10ULL << 30);
	CHECK_INT(conf_set(&c, "max_job_output_size", "512M", err, sizeof err),
	    0);
	CHECK_INT(c.max_job_output_size, 512ULL << 20);
	CHECK_INT(conf_set(&c, "max_job_output_size", "0", err, sizeof err),
	    -1);
	CHECK(strstr(err, "max_job_output_size: '0' is not a size") != NULL);
	conf_free(&c);
}

/* protected_refs: the project's patterns, or tags and the default
 * branch; never a commit id. */
static void
test_protected_refs(void)
{
	struct kiln_config c;
	char err[512] = "";
	const struct conf_project *a, *b;
	const char *path;

	conf_defaults(&c);
	path = write_conf("[project a]\nrepo = https://example.com/a\n"
	    "protected_refs = refs/heads/release-* refs/tags/v*\n"
	    "[project b]\nrepo = https://example.com/b\n");
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	a = conf_project_by_name(&c, "a");
	b = conf_project_by_name(&c, "b");
	CHECK(a != NULL && b != NULL);
	if (a != NULL && b != NULL) {
		CHECK_INT(a->nprotected, 2);
		CHECK(conf_ref_protected(a, "refs/heads/release-1.2", NULL));
		CHECK(conf_ref_protected(a, "refs/tags/v1.0", NULL));
		/* The patterns replace the default. */
		CHECK(!conf_ref_protected(a, "refs/tags/nightly", NULL));
		CHECK(!conf_ref_protected(a, "refs/heads/main",
		    "refs/heads/main"));
		/* '*' does not cross '/'. */
		CHECK(!conf_ref_protected(a, "refs/heads/release-1/x", NULL));
		CHECK(conf_ref_protected(b, "refs/tags/anything", NULL));
		CHECK(conf_ref_protected(b, "refs/heads/main",
		    "refs/heads/main"));
		CHECK(!conf_ref_protected(b, "refs/heads/main", NULL));
		CHECK(!conf_ref_protected(b, "refs/heads/feature",
		    "refs/heads/main"));
		CHECK(!conf_ref_protected(b, "refs/pull/1/head",
		    "refs/heads/main"));
		CHECK(!conf_ref_protected(b, NULL, "refs/heads/main"));
	}
	/* No project: the default. */
	CHECK(conf_ref_protected(NULL, "refs/tags/v2", NULL));
	CHECK(!conf_ref_protected(NULL, "refs/heads/dev", "refs/heads/main"));
	conf_free(&c);

	expect_load_error("[project a]\nrepo = https://example.com/a\n"
	    "protected_refs = main\n", 3, "protected_refs: 'main' is not a "
	    "full ref pattern");
}

/*
 * A project is found by its repository however it is spelled (the one
 * mirror all spellings share), never by a fork's; two projects of one
 * repository are an error.
 */
static void
test_project_by_repo(void)
{
	struct kiln_config c;
	char err[512] = "";
	const struct conf_project *p;
	const char *path;

	conf_defaults(&c);
	path = write_conf("[project priv]\n"
	    "repo = https://git.example.com/t/priv.git\n");
	CHECK_INT(conf_load(&c, path, err, sizeof err), 0);
	p = conf_project_by_repo(&c, "https://git.example.com/t/priv.git");
	CHECK(p != NULL && strcmp(p->name, "priv") == 0);
	CHECK(conf_project_by_repo(&c, "https://git.example.com/t/priv") == p);
	CHECK(conf_project_by_repo(&c, "https://git.example.com/t/priv.git/") ==
	    p);
	CHECK(conf_project_by_repo(&c, "https://git.example.com//t/priv") == p);
	CHECK(conf_project_by_repo(&c, "https://GIT.example.com/t/priv") == p);
	CHECK(conf_project_by_repo(&c, "https://git.example.com/fork/priv") ==
	    NULL);
	CHECK(conf_project_by_repo(&c, "https://git.example.com/t/Priv") == NULL);
	conf_free(&c);

	expect_load_error("[project a]\nrepo = https://example.com/a.git\n"
	    "[project b]\nrepo = https://example.com/a/\n", 3,
	    "[project b] has the repo of [project a]");
}

UNIT_MAIN(
	TEST(test_project_by_repo),
	TEST(test_protected_refs),
	TEST(test_defaults),
	TEST(test_output_caps),
	TEST(test_load_good_file),
	TEST(test_load_keeps_unset_defaults),
	TEST(test_load_errors_name_file_and_line),
	TEST(test_load_empty_unknown_section),
	TEST(test_load_missing_file),
	TEST(test_set),
	TEST(test_parse_listen),
	TEST(test_is_loopback),
	TEST(test_go_toolchains)
)
