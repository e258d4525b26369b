/* Job requests (POST /v1/jobs bodies): what is accepted, what is refused. */
#include "config.h"

#include <string.h>

#include <git2.h>

#include "api/api.h"
#include "lib/validate.h"
#include "lib/xmalloc.h"
#include "unit.h"

#define REPO "\"repo\": \"https://example.com/x.git\""
#define REF "\"ref\": \"main\""
#define TARGETS "\"targets\": [\"linux/amd64\"]"
#define BASE REPO ", " REF ", " TARGETS

static void
lib_init(void)
{
	/* Refcounted: once per test is fine; libgit2 checks ref names. */
	git_libgit2_init();
	(void)unit_tmpdir;	/* no files here */
}

/* Parse `body`; the job on success (caller frees), else NULL. */
static struct job *
parse(const char *body, unsigned *status, char *detail, size_t size)
{
	struct job *job = NULL;

	*status = 0;
	detail[0] = '\0';
	if (api_parse_job_request(body, strlen(body), &job, status, detail,
	    size) != 0) {
		CHECK(job == NULL);
		return NULL;
	}
	CHECK(job != NULL);
	return job;
}

static struct job *
accept_body_at(const char *file, int line, const char *body)
{
	char detail[512];
	unsigned status;
	struct job *job = parse(body, &status, detail, sizeof detail);

	if (job == NULL) {
		fprintf(stderr, "  %s:%d: refused (%u: %s): %s\n", file, line,
		    status, detail, body);
		unit_failed_checks++;
	}
	return job;
}
#define accept_body(b) accept_body_at(__FILE__, __LINE__, (b))

/* Expect refusal with `want_status` and a detail containing `field`. */
static void
refuse_at(const char *file, int line, const char *body, unsigned want_status,
    const char *field)
{
	char detail[512];
	unsigned status;
	struct job *job = parse(body, &status, detail, sizeof detail);

	if (job != NULL) {
		fprintf(stderr, "  %s:%d: accepted, expected %u naming '%s': "
		    "%s\n", file, line, want_status, field, body);
		unit_failed_checks++;
		job_free(job);
		return;
	}
	if (status != want_status || strstr(detail, field) == NULL) {
		fprintf(stderr, "  %s:%d: got %u \"%s\", expected %u naming "
		    "'%s': %s\n", file, line, status, detail, want_status,
		    field, body);
		unit_failed_checks++;
	}
}
#define refuse(b, st, f) refuse_at(__FILE__, __LINE__, (b), (st), (f))

/* {"repo": R, "ref": F, "targets": T} from JSON texts. */
static char *
body_of(const char *repo, const char *ref, const char *targets)
{
	return xasprintf("{\"repo\": %s, \"ref\": %s, \"targets\": %s}",
	    repo, ref, targets);
}

static void
test_minimal_request(void)
{
	struct job *job;

	lib_init();
	job = accept_body("{" BASE "}");
	if (job == NULL)
		return;
	CHECK_STR(job->repo, "https://example.com/x.git");
	CHECK_STR(job->ref, "main");
	CHECK(job->commit == NULL);
	CHECK(job->recipe == NULL);
	CHECK(job->error == NULL);
	CHECK_INT(job->priority, 0);
	CHECK_INT(job->state, JOB_QUEUED);
	CHECK_INT(job->id, 0);
	CHECK_INT(job->ntargets, 1);
	CHECK_STR(job->targets[0].target, "linux/amd64");
	CHECK_INT(job->targets[0].state, TARGET_QUEUED);
	CHECK_INT(job->targets[0].attempt, 0);
	job_free(job);

	/* A full one. */
	job = accept_body("{\"repo\": \"/srv/git/x\", \"ref\": \"v1.2.0\", "
	    "\"targets\": [\"windows/amd64\", \"linux/arm/v6\"], "
	    "\"recipe\": {\"kind\": \"go\", \"package\": \"./cmd/x\"}, "
	    "\"priority\": -5}");
	if (job == NULL)
		return;
	CHECK_STR(job->repo, "/srv/git/x");
	CHECK_STR(job->ref, "v1.2.0");
	CHECK_INT(job->ntargets, 2);
	CHECK_STR(job->targets[0].target, "windows/amd64");
	CHECK_STR(job->targets[1].target, "linux/arm/v6");
	CHECK_INT(job->priority, -5);
	CHECK_STR(job->recipe, "{\"kind\":\"go\",\"package\":\"./cmd/x\"}");
	job_free(job);
}

static void
test_malformed_json_is_400(void)
{
	lib_init();
	refuse("{", 400, "malformed JSON");
	refuse("", 400, "malformed JSON");
	refuse("{" BASE ",}", 400, "malformed JSON");
	refuse("{" BASE "} trailing", 400, "malformed JSON");
	refuse("{\"repo\": \"/a\", \"repo\": \"/b\", " REF ", " TARGETS "}",
	    400, "duplicate");
	/* The length given is honoured: the same bytes cut short. */
	{
		const char *b = "{" BASE "}";
		struct job *job = NULL;
		char detail[256];
		unsigned status = 0;
		CHECK_INT(api_parse_job_request(b, strlen(b) - 1, &job, &status,
		    detail, sizeof detail), -1);
		CHECK_INT(status, 400);
		CHECK(job == NULL);
	}
}

static void
test_body_must_be_object(void)
{
	lib_init();
	refuse("[]", 422, "body");
	refuse("[{\"repo\": \"/x\"}]", 422, "body");
	refuse("{\"bogus\": 1, " BASE "}", 422, "bogus");
	refuse("{" BASE ", \"Repo\": \"/x\"}", 422, "Repo");
	refuse("{" BASE ", \"commit\": \"0123\"}", 422, "commit");
}

/*
 * "\u0000" is well-formed JSON; a NUL inside a field is an invalid value
 * of that field: 422 with a detail naming it, like any other (the checks
 * in request.c that look for it say so).
 */
static void
test_nul_in_string_is_422_naming_field(void)
{
	lib_init();
	refuse("{\"repo\": \"/a\\u0000b\", " REF ", " TARGETS "}", 422,
	    "repo");
	refuse("{" REPO ", \"ref\": \"a\\u0000b\", " TARGETS "}", 422, "ref");
	refuse("{" REPO ", " REF ", \"targets\": [\"linux/amd64\\u0000\"]}",
	    422, "targets[0]");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", "
	    "\"command\": \"a\\u0000b\"}}", 422, "recipe.command");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"A\": \"x\\u0000y\"}}}", 422, "recipe.env.A");
}

static void
test_repo_field(void)
{
	char *b;

	lib_init();
	refuse("{" REF ", " TARGETS "}", 422, "repo");
	refuse("{\"repo\": 1, " REF ", " TARGETS "}", 422, "repo");
	refuse("{\"repo\": null, " REF ", " TARGETS "}", 422, "repo");
	refuse("{\"repo\": [\"/x\"], " REF ", " TARGETS "}", 422, "repo");
	refuse("{\"repo\": \"\", " REF ", " TARGETS "}", 422, "repo");

	static const char *const good[] = {
		"https://github.com/a/b.git", "http://git.example/x",
		"ssh://git@example.com/a/b.git", "git://example.com/x.git",
		"file:///srv/git/x.git", "/srv/git/x.git", "/x",
		"https://example.com:8443/x",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct job *job;
		b = xasprintf("{\"repo\": \"%s\", " REF ", " TARGETS "}",
		    good[i]);
		job = accept_body(b);
		if (job != NULL)
			CHECK_STR(job->repo, good[i]);
		job_free(job);
		free(b);
	}

	static const char *const bad[] = {
		"srv/git/x", "x.git", "./x", "ftp://example.com/x",
		"https://", "http://", "https:///x", "https://@h/x",
		"https://:80/x", "file://relative/x", "file://", "file:///",
		"https://example.com/a b", "https://example.com/a\\tb",
		"https://example.com/a\\u0001b", "https://example.com/\\u007f",
		"/a/../b", "/a/..", "/..", "HTTPS://example.com/x",
		"git@github.com:a/b.git",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		b = xasprintf("{\"repo\": \"%s\", " REF ", " TARGETS "}",
		    bad[i]);
		refuse(b, 422, "repo");
		free(b);
	}

	/* Length: 2048 bytes is the limit. */
	{
		char long_repo[2100];
		size_t n;
		strcpy(long_repo, "/");
		n = strlen(long_repo);
		memset(long_repo + n, 'a', 2048 - n);
		long_repo[2048] = '\0';
		b = xasprintf("{\"repo\": \"%s\", " REF ", " TARGETS "}",
		    long_repo);
		job_free(accept_body(b));
		free(b);
		long_repo[2048] = 'a';
		long_repo[2049] = '\0';
		b = xasprintf("{\"repo\": \"%s\", " REF ", " TARGETS "}",
		    long_repo);
		refuse(b, 422, "repo");
		free(b);
	}
}

/* A file URL names a path like an absolute path does: no "..". */
static void
test_file_url_with_dotdot_rejected(void)
{
	char why[256];

	lib_init();
	refuse("{\"repo\": \"file:///srv/../etc/x\", " REF ", " TARGETS "}",
	    422, "repo");
	refuse("{\"repo\": \"file:///srv/x/..\", " REF ", " TARGETS "}",
	    422, "repo");
	CHECK_INT(validate_repo("file:///a/../b", why, sizeof why), -1);
}

static void
test_repo_checker_direct(void)
{
	char why[256];

	CHECK_INT(validate_repo("https://example.com/x", why, sizeof why), 0);
	CHECK_INT(validate_repo("/srv/x", why, sizeof why), 0);
	CHECK_INT(validate_repo("rel/x", why, sizeof why), -1);
	CHECK(strstr(why, "repo") != NULL);
	CHECK_INT(validate_repo("/a/../b", why, sizeof why), -1);
	CHECK(strstr(why, "..") != NULL);
	CHECK_INT(validate_repo("file://relative", why, sizeof why), -1);
	CHECK(strstr(why, "absolute") != NULL);
	CHECK_INT(validate_repo("https://", why, sizeof why), -1);
	CHECK(strstr(why, "no host") != NULL);
}

/*
 * A port is 1 to 65535 when the URL names one: "host:" with an empty
 * port is refused with a detail that says so (and quotes no URL).
 */
static void
test_repo_port(void)
{
	static const char *const empty[] = {
		"http://127.0.0.1:/r.git", "https://host:/x.git",
		"ssh://git@host:/x.git", "git://host:/x.git", "https://host:",
		"https://host:?x", "https://host:#x", "https://[::1]:/x.git",
	};
	static const char *const bad[] = {
		"https://host:0/x", "https://host:65536/x",
		"https://host:123456/x", "https://host:8o/x",
		"https://host:80:90/x", "https://host:-1/x", "https://host:+80/x",
		"https://[::1]x/r.git", "https://[::1/r.git",
	};
	static const char *const good[] = {
		"https://host:1/x", "https://host:65535/x", "http://127.0.0.1:8080/r",
		"ssh://git@host:22/x.git", "git://host:9418/x", "https://[::1]/x",
		"https://[::1]:8443/x", "https://host/a:b/c", "https://host?a:b",
	};
	char why[512], *b;

	lib_init();
	for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
		why[0] = '\0';
		CHECK_INT(validate_repo(empty[i], why, sizeof why), -1);
		CHECK(strncmp(why, "repo: the URL's port is empty", 29) == 0);
		CHECK(strstr(why, "host:") == NULL);
		b = xasprintf("{\"repo\": \"%s\", " REF ", " TARGETS "}",
		    empty[i]);
		refuse(b, 422, "repo: the URL's port is empty");
		free(b);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		CHECK_INT(validate_repo(bad[i], why, sizeof why), -1);
		CHECK(strncmp(why, "repo: the URL", 13) == 0);
		b = xasprintf("{\"repo\": \"%s\", " REF ", " TARGETS "}",
		    bad[i]);
		refuse(b, 422, "repo: the URL");
		free(b);
	}
	CHECK_INT(validate_repo("https://host:0/x", why, sizeof why), -1);
	CHECK_STR(why, "repo: the URL's port is not a number from 1 to 65535");
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		why[0] = '\0';
		CHECK_INT(validate_repo(good[i], why, sizeof why), 0);
	}
}

/*
 * A URL whose authority names no host after its ssh user name, or an
 * empty IPv6 literal, is refused at submission (it could only fail at
 * the fetch), with the same detail as a URL with no host at all.
 */
static void
test_repo_empty_host_after_user(void)
{
	static const char *const nohost[] = {
		"ssh://git@/x.git", "ssh://git@:22/x.git", "ssh://git@",
		"ssh://git@?x", "https://[]/x", "https://[]:443/x",
		"ssh://git@[]:22/x",
	};
	char why[512];

	for (size_t i = 0; i < sizeof nohost / sizeof nohost[0]; i++) {
		why[0] = '\0';
		CHECK_INT(validate_repo(nohost[i], why, sizeof why), -1);
		CHECK_STR(why, "repo: the URL has no host");
	}
	CHECK_INT(validate_repo("ssh://git@h:22/x.git", why, sizeof why), 0);
	CHECK_INT(validate_repo("ssh://git@[::1]/x.git", why, sizeof why), 0);
}

/* A URL with credentials is refused, and the detail never quotes them. */
static void
test_repo_userinfo_refused(void)
{
	static const char *const bad[] = {
		"https://user:s3cretTOKEN@example.com/x.git",
		"https://s3cretTOKEN@example.com/x.git",
		"http://u:s3cretTOKEN@example.com:8080/x",
		"git://u:s3cretTOKEN@example.com/x",
		"ssh://git:s3cretTOKEN@example.com/x",
		"https://u:s3cretTOKEN@example.com?x",
	};
	static const char *const scp[] = {
		"git:s3cretTOKEN@example.com:x.git",
		"git@example.com:s3cretTOKEN.git",
	};
	char why[512];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		CHECK_INT(validate_repo(bad[i], why, sizeof why), -1);
		CHECK(strstr(why, "credentials") != NULL);
		CHECK(strstr(why, "s3cretTOKEN") == NULL);
		CHECK(strstr(why, "example.com") == NULL);
	}
	for (size_t i = 0; i < sizeof scp / sizeof scp[0]; i++) {
		CHECK_INT(validate_repo(scp[i], why, sizeof why), -1);
		CHECK(strstr(why, "s3cretTOKEN") == NULL);
		CHECK(strstr(why, "ssh://user@host/path") != NULL);
	}
	/* ssh's user name is no secret; '@' in a path is no userinfo. */
	CHECK_INT(validate_repo("ssh://git@example.com/x.git", why,
	    sizeof why), 0);
	CHECK_INT(validate_repo("https://example.com/a@b/x.git", why,
	    sizeof why), 0);
	/* Through the request parser: a 422 naming repo, no secret. */
	{
		struct job *job = NULL;
		unsigned status = 0;
		const char *b = "{\"repo\": \"https://u:s3cretTOKEN@example.com/"
		    "x\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}";
		CHECK_INT(api_parse_job_request(b, strlen(b), &job, &status,
		    why, sizeof why), -1);
		CHECK_INT(status, 422);
		CHECK(strncmp(why, "repo:", 5) == 0);
		CHECK(strstr(why, "s3cretTOKEN") == NULL);
		CHECK(job == NULL);
	}
}

/* validate_local_repo as a configuration asks it. */
static int
local_ok(const struct kiln_config *c, const char *repo, char *why,
    size_t size)
{
	return validate_local_repo(c->allow_local_repos, c->state_dir, repo,
	    why, size);
}

/* Local repositories: only with allow_local_repos, never the state. */
static void
test_repo_allowed(void)
{
	struct kiln_config c;
	char why[512], state[] = "/var/lib/kiln";

	memset(&c, 0, sizeof c);
	c.state_dir = state;
	CHECK_INT(local_ok(&c, "https://example.com/x", why,
	    sizeof why), 0);
	CHECK_INT(local_ok(&c, "/srv/git/x", why, sizeof why),
	    -1);
	CHECK(strstr(why, "allow_local_repos") != NULL);
	CHECK_INT(local_ok(&c, "file:///srv/git/x", why,
	    sizeof why), -1);
	CHECK(strstr(why, "allow_local_repos") != NULL);
	c.allow_local_repos = true;
	CHECK_INT(local_ok(&c, "/srv/git/x", why, sizeof why), 0);
	CHECK_INT(local_ok(&c, "file:///srv/git/x", why,
	    sizeof why), 0);
	/* In, equal to, above the state directory; spelled differently. */
	static const char *const in[] = {
		"/var/lib/kiln", "/var/lib/kiln/", "/var/lib/kiln/mirrors/a.git",
		"/var/lib", "/", "file:///var/lib/kiln/cache/x",
		"file:///var/lib/%6biln/x", "/var//lib/./kiln/x",
		"file:///var/lib/kiln%2fx",
	};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		why[0] = '\0';
		CHECK_INT(local_ok(&c, in[i], why, sizeof why), -1);
		CHECK(strstr(why, "state") != NULL);
	}
	/* Neighbours by prefix are not inside. */
	CHECK_INT(local_ok(&c, "/var/lib/kiln2/x", why,
	    sizeof why), 0);
	CHECK_INT(local_ok(&c, "/var/li", why, sizeof why), 0);
	/* %00 decodes to nothing a path holds. */
	CHECK_INT(local_ok(&c, "file:///srv/a%00b", why,
	    sizeof why), -1);
}

static void
test_ref_field(void)
{
	char *b;

	lib_init();
	refuse("{" REPO ", " TARGETS "}", 422, "ref");
	refuse("{" REPO ", \"ref\": 1, " TARGETS "}", 422, "ref");
	refuse("{" REPO ", \"ref\": null, " TARGETS "}", 422, "ref");

	static const char *const good[] = {
		"main", "v1.2.0", "refs/tags/v1", "feature/x", "refs/heads/main",
		"release-1.x", "0123456789abcdef0123456789abcdef01234567",
		"0123456789ABCDEF0123456789ABCDEF01234567",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct job *job;
		b = xasprintf("{" REPO ", \"ref\": \"%s\", " TARGETS "}",
		    good[i]);
		job = accept_body(b);
		if (job != NULL)
			CHECK_STR(job->ref, good[i]);
		job_free(job);
		free(b);
	}

	static const char *const bad[] = {
		"", "a..b", "a b", "-x", "x.lock", "a//b", "a@{b", "@{",
		"main/", "a~1", "~", "a^", "^", "a:b", ":", "a?b", "a*b",
		"a[b", "a\\\\b", ".x", "x.", "/main", "a\\tb",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		b = xasprintf("{" REPO ", \"ref\": \"%s\", " TARGETS "}",
		    bad[i]);
		refuse(b, 422, "ref");
		free(b);
	}

	/* 255 bytes is the longest ref. */
	{
		char ref[300];
		memset(ref, 'r', 255);
		ref[255] = '\0';
		b = xasprintf("{" REPO ", \"ref\": \"%s\", " TARGETS "}", ref);
		job_free(accept_body(b));
		free(b);
		ref[255] = 'r';
		ref[256] = '\0';
		b = xasprintf("{" REPO ", \"ref\": \"%s\", " TARGETS "}", ref);
		refuse(b, 422, "ref");
		free(b);
	}
}

/*
 * git-check-ref-format, whose rules validate_ref says it applies, also
 * refuses the single character "@" and the DEL character (0x7f).
 */
static void
test_ref_git_rules_at_and_del(void)
{
	char why[512];

	lib_init();
	refuse("{" REPO ", \"ref\": \"@\", " TARGETS "}", 422, "ref");
	refuse("{" REPO ", \"ref\": \"a\\u007fb\", " TARGETS "}", 422,
	    "ref");
	CHECK_INT(validate_ref("@", why, sizeof why), -1);
	CHECK_INT(validate_ref("main\x7f", why, sizeof why), -1);
}

static void
test_ref_checker_direct(void)
{
	char why[512];

	lib_init();
	CHECK_INT(validate_ref("main", why, sizeof why), 0);
	CHECK_INT(validate_ref("a..b", why, sizeof why), -1);
	CHECK(strstr(why, "ref") != NULL && strstr(why, "a..b") != NULL);
	CHECK_INT(validate_ref("", why, sizeof why), -1);
	CHECK(strstr(why, "empty") != NULL);
	/* 40 characters but not hex: a branch name, valid. */
	CHECK_INT(validate_ref("0123456789abcdef0123456789abcdef0123456g",
	    why, sizeof why), 0);
}

static void
test_targets_field(void)
{
	struct job *job;

	lib_init();
	/* Absent: the repository names them; one placeholder row. */
	job = accept_body("{" REPO ", " REF "}");
	if (job != NULL) {
		CHECK_INT(job->ntargets, 1);
		CHECK_STR(job->targets[0].target, JOB_TARGETS_FROM_REPO);
	}
	job_free(job);
	refuse("{" REPO ", " REF ", \"targets\": \"linux/amd64\"}", 422,
	    "targets");
	refuse("{" REPO ", " REF ", \"targets\": null}", 422, "targets");
	refuse("{" REPO ", " REF ", \"targets\": {}}", 422, "targets");
	refuse("{" REPO ", " REF ", \"targets\": []}", 422, "targets");
	refuse("{" REPO ", " REF ", \"targets\": [1]}", 422, "targets[0]");
	refuse("{" REPO ", " REF ", \"targets\": [\"linux/amd64\", null]}",
	    422, "targets[1]");
	refuse("{" REPO ", " REF ", \"targets\": [\"linux/amd64\", "
	    "\"linux/foo\"]}", 422, "targets[1]");
	refuse("{" REPO ", " REF ", \"targets\": [\"linux/foo\"]}", 422,
	    "linux/foo");
	refuse("{" REPO ", " REF ", \"targets\": [\"android/arm64\"]}", 422,
	    "cgo");

	/* Duplicates fold after normalization; order is kept. */
	job = accept_body("{" REPO ", " REF ", \"targets\": [\"linux/arm\", "
	    "\"linux/arm/v7\"]}");
	if (job != NULL) {
		CHECK_INT(job->ntargets, 1);
		CHECK_STR(job->targets[0].target, "linux/arm/v7");
	}
	job_free(job);
	job = accept_body("{" REPO ", " REF ", \"targets\": [\"linux/arm64\", "
	    "\"linux/amd64/v1\", \"linux/arm64\", \"linux/amd64\", "
	    "\"darwin/arm64\"]}");
	if (job != NULL) {
		CHECK_INT(job->ntargets, 3);
		CHECK_STR(job->targets[0].target, "linux/arm64");
		CHECK_STR(job->targets[1].target, "linux/amd64");
		CHECK_STR(job->targets[2].target, "darwin/arm64");
	}
	job_free(job);
}

/* A JSON array of `n` distinct valid targets (pairs, then variants). */
static char *
many_targets(size_t n)
{
	static const char *const amd64[] = {
		"darwin", "dragonfly", "freebsd", "illumos", "linux", "netbsd",
		"openbsd", "plan9", "solaris", "windows",
	};
	static const char *const arm[] = {
		"freebsd", "linux", "netbsd", "openbsd", "plan9", "windows",
	};
	char *names[128];
	size_t k = 0;
	char *out, *p;

	for (size_t i = 0; i < target_pair_count() && k < n; i++)
		names[k++] = xstrdup(target_pair(i));
	for (size_t i = 0; i < 10 && k < n; i++)
		for (int v = 2; v <= 4 && k < n; v++)
			names[k++] = xasprintf("%s/amd64/v%d", amd64[i], v);
	for (size_t i = 0; i < 6 && k < n; i++)
		for (int v = 5; v <= 6 && k < n; v++)
			names[k++] = xasprintf("%s/arm/v%d", arm[i], v);
	CHECK_INT(k, n);
	out = p = xmalloc(n * 40 + 3);
	*p++ = '[';
	for (size_t i = 0; i < k; i++) {
		p += sprintf(p, "%s\"%s\"", i ? "," : "", names[i]);
		free(names[i]);
	}
	*p++ = ']';
	*p = '\0';
	return out;
}

static void
test_targets_limit(void)
{
	struct job *job;
	char *arr, *b;

	lib_init();
	arr = many_targets(64);
	b = body_of("\"/x\"", "\"main\"", arr);
	job = accept_body(b);
	if (job != NULL)
		CHECK_INT(job->ntargets, 64);
	job_free(job);
	free(b);
	free(arr);

	arr = many_targets(65);
	b = body_of("\"/x\"", "\"main\"", arr);
	refuse(b, 422, "targets");
	free(b);
	free(arr);

	/* 65 entries are too many even when they fold to one. */
	{
		char big[65 * 16 + 8], *p = big;
		*p++ = '[';
		for (int i = 0; i < 65; i++)
			p += sprintf(p, "%s\"linux/amd64\"", i ? "," : "");
		strcpy(p, "]");
		b = body_of("\"/x\"", "\"main\"", big);
		refuse(b, 422, "targets");
		free(b);
	}
}

static void
test_priority_field(void)
{
	struct job *job;

	lib_init();
	job = accept_body("{" BASE ", \"priority\": -1000}");
	if (job != NULL)
		CHECK_INT(job->priority, -1000);
	job_free(job);
	job = accept_body("{" BASE ", \"priority\": 1000}");
	if (job != NULL)
		CHECK_INT(job->priority, 1000);
	job_free(job);
	job = accept_body("{" BASE ", \"priority\": 7}");
	if (job != NULL)
		CHECK_INT(job->priority, 7);
	job_free(job);

	refuse("{" BASE ", \"priority\": 1001}", 422, "priority");
	refuse("{" BASE ", \"priority\": -1001}", 422, "priority");
	refuse("{" BASE ", \"priority\": 1.5}", 422, "priority");
	refuse("{" BASE ", \"priority\": 1.0}", 422, "priority");
	refuse("{" BASE ", \"priority\": \"1\"}", 422, "priority");
	refuse("{" BASE ", \"priority\": true}", 422, "priority");
	refuse("{" BASE ", \"priority\": null}", 422, "priority");
	refuse("{" BASE ", \"priority\": 99999999999999999}", 422,
	    "priority");
}

static void
test_recipe_kind(void)
{
	struct job *job;

	lib_init();
	job = accept_body("{" BASE ", \"recipe\": null}");
	if (job != NULL)
		CHECK(job->recipe == NULL);
	job_free(job);
	job = accept_body("{" BASE ", \"recipe\": {\"kind\": \"go\"}}");
	if (job != NULL)
		CHECK_STR(job->recipe, "{\"kind\":\"go\"}");
	job_free(job);
	job = accept_body("{" BASE ", \"recipe\": {\"kind\": \"command\", "
	    "\"command\": \"make all\"}}");
	if (job != NULL)
		CHECK_STR(job->recipe,
		    "{\"command\":\"make all\",\"kind\":\"command\"}");
	job_free(job);

	refuse("{" BASE ", \"recipe\": \"go\"}", 422, "recipe");
	refuse("{" BASE ", \"recipe\": []}", 422, "recipe");
	refuse("{" BASE ", \"recipe\": {}}", 422, "recipe.kind");
	refuse("{" BASE ", \"recipe\": {\"kind\": 1}}", 422, "recipe.kind");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"make\"}}", 422,
	    "recipe.kind");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\"}}", 422,
	    "recipe.command");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", "
	    "\"command\": \"\"}}", 422, "recipe.command");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", "
	    "\"command\": 5}}", 422, "recipe.command");
}

static void
test_recipe_fields(void)
{
	struct job *job;

	lib_init();
	job = accept_body("{" BASE ", \"recipe\": {\"kind\": \"go\", "
	    "\"package\": \"./cmd/x\", \"ldflags\": \"-X main.v=1\", "
	    "\"name\": \"x-tool_1.0+b\", \"tags\": [\"netgo\", \"osusergo\", "
	    "\"a_b.c\"]}}");
	CHECK(job != NULL);
	job_free(job);

	/* Toolchain pin, cgo, flags, templates, several builds. */
	job = accept_body("{" BASE ", \"recipe\": {\"kind\": \"go\", "
	    "\"go\": \"1.22\", \"cgo\": true, \"flags\": [\"-v\"], "
	    "\"dir\": \"sub\", \"project_name\": \"tool\", \"name\": "
	    "\"{{.ProjectName}}_{{.Os}}\", \"ldflags\": \"-X m.v={{.Version}}\", "
	    "\"builds\": [{\"id\": \"a\", \"package\": \"./cmd/a\", "
	    "\"targets\": [\"linux/arm\"], \"env\": {\"CGO_ENABLED\": \"1\"}, "
	    "\"cgo\": false, \"tags\": [\"x\"], \"flags\": []}]}}");
	CHECK(job != NULL);
	job_free(job);
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"go\": \"1.x\"}}",
	    422, "recipe.go");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"cgo\": 1}}",
	    422, "recipe.cgo");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"flags\": [1]}}",
	    422, "recipe.flags[0]");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"builds\": []}}",
	    422, "recipe.builds");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"builds\": "
	    "[{\"targets\": [\"linux/foo\"]}]}}", 422,
	    "recipe.builds[0].targets[0]");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"builds\": "
	    "[{\"go\": \"1.22\"}]}}", 422, "recipe.builds[0]: unknown field 'go'");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"builds\": "
	    "[{\"builds\": []}]}}", 422, "unknown field 'builds'");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"bogus\": 1}}",
	    422, "bogus");
	/* Fields of one kind are unknown to the other. */
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", "
	    "\"command\": \"make\"}}", 422, "command");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", "
	    "\"command\": \"make\", \"package\": \"./x\"}}", 422, "package");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"package\": 1}}",
	    422, "recipe.package");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"package\": \"\"}}",
	    422, "recipe.package");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"ldflags\": []}}",
	    422, "recipe.ldflags");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"name\": \".x\"}}",
	    422, "recipe.name");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"name\": \"-x\"}}",
	    422, "recipe.name");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"name\": \"a/b\"}}",
	    422, "recipe.name");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"name\": 1}}",
	    422, "recipe.name");

	/* Tags. */
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"tags\": \"x\"}}",
	    422, "recipe.tags");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"tags\": [\"\"]}}",
	    422, "recipe.tags[0]");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", "
	    "\"tags\": [\"ok\", \"a b\"]}}", 422, "recipe.tags[1]");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", "
	    "\"tags\": [\"a,b\"]}}", 422, "recipe.tags[0]");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"tags\": [1]}}",
	    422, "recipe.tags[0]");
}

static void
test_recipe_env(void)
{
	struct job *job;

	lib_init();
	job = accept_body("{" BASE ", \"recipe\": {\"kind\": \"command\", "
	    "\"command\": \"make\", \"env\": {\"FOO\": \"1\", \"_x9\": \"\", "
	    "\"KILNX\": \"ok\"}}}");
	CHECK(job != NULL);
	job_free(job);

	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": []}}", 422,
	    "recipe.env");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "\"A=1\"}}", 422, "recipe.env");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"1X\": \"a\"}}}", 422, "1X");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"A-B\": \"a\"}}}", 422, "A-B");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"A=B\": \"a\"}}}", 422, "recipe.env");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"\": \"a\"}}}", 422, "recipe.env");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"KILN_OUT\": \"/tmp\"}}}", 422, "KILN_OUT");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"KILN_\": \"x\"}}}", 422, "KILN_");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"A\": 1}}}", 422, "recipe.env.A");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"go\", \"env\": "
	    "{\"A\": null}}}", 422, "recipe.env.A");
}

static void
test_stored_recipe_is_canonical(void)
{
	struct job *job, *job2;

	lib_init();
	job = accept_body("{" BASE ", \"recipe\": {\"package\": \"./cmd/x\", "
	    "\"kind\": \"go\",   \"env\": {\"ZED\": \"z\", \"ALPHA\": \"a\"},"
	    "\n \"tags\": [\"b\", \"a\"]}}");
	if (job != NULL)
		CHECK_STR(job->recipe, "{\"env\":{\"ALPHA\":\"a\",\"ZED\":\"z\"},"
		    "\"kind\":\"go\",\"package\":\"./cmd/x\","
		    "\"tags\":[\"b\",\"a\"]}");
	/* The same recipe written differently stores the same text. */
	job2 = accept_body("{\"recipe\": {\"tags\": [\"b\",\"a\"], \"env\": "
	    "{\"ALPHA\": \"a\", \"ZED\": \"z\"}, \"kind\": \"go\", "
	    "\"package\": \"./cmd/x\"}, " BASE "}");
	if (job != NULL && job2 != NULL)
		CHECK_STR(job2->recipe, job->recipe);
	job_free(job);
	job_free(job2);
}

/* "archives", "sbom", "image", "verify" and darwin/universal: the job's
 * canonical outputs, and whether they need the release row. */
static void
test_outputs(void)
{
	struct job *job;

	lib_init();
	job = accept_body("{" BASE "}");
	if (job != NULL) {
		CHECK(job->outputs == NULL);
		CHECK(!job->release);
	}
	job_free(job);
	job = accept_body("{" REPO ", " REF ", \"targets\": [\"linux/amd64\", "
	    "\"darwin/universal\", \"darwin/arm64\"], \"archives\": true, "
	    "\"sbom\": true}");
	if (job != NULL) {
		CHECK_STR(job->outputs, "{\"archives\":{},\"sbom\":true,"
		    "\"universal\":true}");
		CHECK(job->release);
		/* The universal binary's two builds, each once. */
		CHECK(job->ntargets == 3);
		CHECK_STR(job->targets[1].target, "darwin/amd64");
		CHECK_STR(job->targets[2].target, "darwin/arm64");
	}
	job_free(job);
	/* A rebuild alone needs no release row; archives false is none. */
	job = accept_body("{" BASE ", \"verify\": \"rebuild\", "
	    "\"archives\": false}");
	if (job != NULL) {
		CHECK_STR(job->outputs, "{\"verify\":\"rebuild\"}");
		CHECK(!job->release);
	}
	job_free(job);
	job = accept_body("{" BASE ", \"image\": {\"name\": \"app\", "
	    "\"entrypoint\": [\"/app\"], \"registry\": "
	    "\"127.0.0.1:5000/team/app\"}}");
	if (job != NULL)
		CHECK(job->release);
	job_free(job);
	refuse("{" BASE ", \"archives\": 1}", 422, "archives: must be true");
	refuse("{" BASE ", \"archives\": {\"format\": \"zip\"}}", 422,
	    "archives.unknown field 'format'");
	refuse("{" BASE ", \"archives\": {\"format_overrides\": [{\"goos\": "
	    "\"windows\"}]}}", 422, "archives.format_overrides[0].formats: "
	    "required");
	refuse("{" BASE ", \"sbom\": \"yes\"}", 422, "sbom: must be true or "
	    "false");
	refuse("{" BASE ", \"archives\": {\"formats\": [\"zip\", \"zip\"]}}",
	    422, "archives.formats[1]: 'zip' is named twice");
	refuse("{" BASE ", \"image\": {\"name\": \"a b\"}}", 422,
	    "image.name: letters");
	refuse("{" BASE ", \"image\": {\"name\": \"app\", \"env\": "
	    "[\"NOEQUALS\"]}}", 422, "image.env[0]: 'NOEQUALS' is not NAME=VALUE");
	refuse("{" BASE ", \"image\": {\"name\": \"app\", \"registry\": "
	    "\"https://x/app\"}}", 422, "image.registry: must be HOST");
	refuse("{" BASE ", \"verify\": true}", 422, "verify: must be");
	/* A command recipe's declared inputs (its SBOMs' packages). */
	job = accept_body("{" BASE ", \"sbom\": true, \"recipe\": {\"kind\": "
	    "\"command\", \"command\": \"true\", \"inputs\": [{\"name\": "
	    "\"zlib\", \"purl\": \"pkg:deb/debian/zlib1g@1.2.13\", "
	    "\"license\": \"Zlib OR MIT\"}]}}");
	job_free(job);
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", \"command\": "
	    "\"true\", \"inputs\": [{\"version\": \"1\"}]}}", 422,
	    "recipe.inputs[0]: must be an object with a name");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", \"command\": "
	    "\"true\", \"inputs\": [{\"name\": \"z\", \"purl\": \"z\"}]}}",
	    422, "recipe.inputs[0].purl: must start with pkg:");
	refuse("{" BASE ", \"recipe\": {\"kind\": \"command\", \"command\": "
	    "\"true\", \"inputs\": [{\"name\": \"z\", \"url\": \"z\"}]}}",
	    422, "recipe.inputs[0]: unknown field 'url'");
}

UNIT_MAIN(
	TEST(test_outputs),
	TEST(test_minimal_request),
	TEST(test_malformed_json_is_400),
	TEST(test_body_must_be_object),
	TEST(test_repo_field),
	TEST(test_nul_in_string_is_422_naming_field),
	TEST(test_file_url_with_dotdot_rejected),
	TEST(test_repo_checker_direct),
	TEST(test_repo_userinfo_refused),
	TEST(test_repo_port),
	TEST(test_repo_empty_host_after_user),
	TEST(test_repo_allowed),
	TEST(test_ref_field),
	TEST(test_ref_git_rules_at_and_del),
	TEST(test_ref_checker_direct),
	TEST(test_targets_field),
	TEST(test_targets_limit),
	TEST(test_priority_field),
	TEST(test_recipe_kind),
	TEST(test_recipe_fields),
	TEST(test_recipe_env),
	TEST(test_stored_recipe_is_canonical)
)
