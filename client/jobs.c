/*
 * The subcommands that are one call each: jobs, show, cancel, retry,
 * targets, hosts.  Each prints what people read; `show --json` prints
 * the server's JSON as it came, for scripts.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "util.h"
#include "xmalloc.h"

void
kiln_err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("kiln: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
parse_job_id(const char *s, int64_t *id)
{
	if (s == NULL || util_parse_int64(s, 1, INT64_MAX, id) != 0) {
		kiln_err("'%.64s' is not a job id (a positive integer)",
		    s ? s : "");
		return -1;
	}
	return 0;
}

/* A string field for printing: control characters as '?', "-" if none. */
static const char *
field(json_t *o, const char *k, char *buf, size_t size)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (s == NULL)
		return "-";
	return util_snippet(buf, size, s, strlen(s));
}

/* A time stamp of the API ("2026-12-01T11:41:35.812Z") as
 * "2026-12-01 11:41:35" (UTC), or the field as it is when shorter. */
static const char *
when(json_t *o, const char *k, char *buf, size_t size)
{
	const char *s = field(o, k, buf, size);

	if (s == buf && strlen(buf) >= 19 && buf[10] == 'T') {
		buf[10] = ' ';
		buf[19] = '\0';
	}
	return s;
}

/* Parse only -h and the given long options; returns optind or -1. */
static int
no_options(int argc, char **argv, const char *usage)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'h')
			printf("usage: kiln %s\n", usage);
		else
			fprintf(stderr, "usage: kiln %s\n", usage);
		return -1 - (ch != 'h');
	}
	return optind;
}

/* path + "?" or "&" + name=value, escaped; path is freed. */
static char *
add_param(char *path, const char *name, const char *value)
{
	char *e, *p;

	if (value == NULL)
		return path;
	e = http_escape(value);
	p = xasprintf("%s%c%s=%s", path, strchr(path, '?') ? '&' : '?', name,
	    e);
	free(e);
	free(path);
	return p;
}

#define JOBS_USAGE "usage: kiln jobs [--state S] [--project P] " \
	"[--repo URL] [--limit N]\n"

int
cmd_jobs(const struct kiln_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "project", required_argument, NULL, 'p' },
		{ "repo", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *state = NULL, *limit = NULL, *project = NULL;
	const char *repo = NULL;
	char err[1024], b1[80], b2[200], b3[40], *path;
	json_t *root, *o;
	size_t i;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:p:r:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's': state = optarg; break;
		case 'p': project = optarg; break;
		case 'r': repo = optarg; break;
		case 'n': limit = optarg; break;
		case 'h':
			printf(JOBS_USAGE);
			return KILN_EXIT_OK;
		default:
			fprintf(stderr, JOBS_USAGE);
			return KILN_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, JOBS_USAGE);
		return KILN_EXIT_USAGE;
	}
	/* The server checks the values and says which one is wrong. */
	path = xstrdup("/v1/jobs");
	path = add_param(path, "state", state);
	path = add_param(path, "project", project);
	path = add_param(path, "repo", repo);
	path = add_param(path, "limit", limit);
	if ((c->url ? strlen(c->url) : 0) + strlen(path) >= HTTP_URL_MAX) {
		kiln_err("jobs: the request's URL would be longer than %d "
		    "bytes (a shorter --repo?)", HTTP_URL_MAX - 1);
		free(path);
		return KILN_EXIT_USAGE;
	}
	rc = http_get_json(c, path, &root, err, sizeof err);
	free(path);
	if (rc != 0) {
		kiln_err("jobs: %s", err);
		return rc;
	}
	json_array_foreach(json_object_get(root, "jobs"), i, o) {
		printf("%-6" PRId64 " %-10s %-19s  %-20s %s\n",
		    (int64_t)json_integer_value(json_object_get(o, "id")),
		    field(o, "state", b3, sizeof b3),
		    when(o, "created_at", b1, 25),
		    field(o, "ref", b1 + 25, 40),
		    field(o, "repo", b2, sizeof b2));
	}
	json_decref(root);
	return KILN_EXIT_OK;
}

static void
print_job(json_t *job)
{
	char b[512];
	json_t *t, *err;
	size_t i;

	printf("job %" PRId64 ": %s\n",
	    (int64_t)json_integer_value(json_object_get(job, "id")),
	    field(job, "state", b, sizeof b));
	printf("  repo:     %s\n", field(job, "repo", b, sizeof b));
	printf("  ref:      %s\n", field(job, "ref", b, sizeof b));
	printf("  commit:   %s\n", field(job, "commit", b, sizeof b));
	if (json_is_string(json_object_get(job, "project")))
		printf("  project:  %s\n", field(job, "project", b, sizeof b));
	printf("  created:  %s\n", field(job, "created_at", b, sizeof b));
	printf("  started:  %s\n", field(job, "started_at", b, sizeof b));
	printf("  finished: %s\n", field(job, "finished_at", b, sizeof b));
	if (json_is_integer(json_object_get(job, "retry_of")))
		printf("  retry of: job %" PRId64 "\n", (int64_t)
		    json_integer_value(json_object_get(job, "retry_of")));
	if (json_is_string(json_object_get(job, "error")))
		printf("  error:    %s\n", field(job, "error", b, sizeof b));
	printf("  signed:   %s\n", json_is_true(json_object_get(job,
	    "signed")) ? "yes" : "no");
	printf("  targets:\n");
	json_array_foreach(json_object_get(job, "targets"), i, t) {
		char n[64], s[32];

		printf("    %-18s %-10s attempt %" PRId64 "%s%s",
		    field(t, "target", n, sizeof n),
		    field(t, "state", s, sizeof s),
		    (int64_t)json_integer_value(json_object_get(t, "attempt")),
		    json_is_true(json_object_get(t, "cached")) ? ", cached" :
		    "", json_is_true(json_object_get(t, "reproducible")) ?
		    ", reproducible" : "");
		if (json_array_size(json_object_get(t, "artifacts")) > 0)
			printf(", %zu artifacts", json_array_size(
			    json_object_get(t, "artifacts")));
		err = json_object_get(t, "error");
		if (json_is_string(err))
			printf("\n      error: %s", field(t, "error", b,
			    sizeof b));
		putchar('\n');
	}
}

int
cmd_show(const struct kiln_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct http_resp r;
	char err[1024], path[64];
	bool raw = false;
	int64_t id;
	json_t *job;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (ch == 'j') {
			raw = true;
			continue;
		}
		fprintf(ch == 'h' ? stdout : stderr,
		    "usage: kiln show [--json] JOB\n");
		return ch == 'h' ? KILN_EXIT_OK : KILN_EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: kiln show [--json] JOB\n");
		return KILN_EXIT_USAGE;
	}
	if (parse_job_id(argv[optind], &id) != 0)
		return KILN_EXIT_USAGE;
	snprintf(path, sizeof path, "/v1/jobs/%" PRId64, id);
	if (http_call(c, "GET", path, NULL, &r, err, sizeof err) != 0) {
		kiln_err("job %" PRId64 ": %s", id, err);
		return KILN_EXIT_SERVER;
	}
	if (r.status != 200) {
		http_problem(&r, err, sizeof err);
		kiln_err("job %" PRId64 ": %s", id, err);
		http_resp_free(&r);
		return KILN_EXIT_SERVER;
	}
	if (raw) {
		fwrite(r.body, 1, r.len, stdout);
		if (r.len == 0 || r.body[r.len - 1] != '\n')
			putchar('\n');
	} else if ((job = json_loadb(r.body, r.len, 0, NULL)) == NULL) {
		kiln_err("job %" PRId64 ": the answer is not JSON", id);
		http_resp_free(&r);
		return KILN_EXIT_SERVER;
	} else {
		print_job(job);
		json_decref(job);
	}
	http_resp_free(&r);
	return KILN_EXIT_OK;
}

/* POST /v1/jobs/ID/what; the answer's JSON (or NULL after an error). */
static json_t *
post_job_action(const struct kiln_conf *c, int64_t id, const char *what,
    long want, int *rc)
{
	struct http_resp r;
	char err[1024], path[96];
	json_t *j;

	snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/%s", id, what);
	if (http_call(c, "POST", path, "{}", &r, err, sizeof err) != 0) {
		kiln_err("job %" PRId64 ": %s", id, err);
		*rc = KILN_EXIT_SERVER;
		return NULL;
	}
	if (r.status != want) {
		http_problem(&r, err, sizeof err);
		kiln_err("job %" PRId64 ": %s", id, err);
		http_resp_free(&r);
		*rc = KILN_EXIT_SERVER;
		return NULL;
	}
	j = json_loadb(r.body, r.len, 0, NULL);
	if (j == NULL)
		j = json_object();
	http_resp_free(&r);
	*rc = KILN_EXIT_OK;
	return j;
}

int
cmd_cancel(const struct kiln_conf *c, int argc, char **argv)
{
	int64_t id;
	json_t *j;
	char b[32];
	int i, rc = KILN_EXIT_OK;

	if ((i = no_options(argc, argv, "cancel JOB")) < 0)
		return i == -1 ? KILN_EXIT_OK : KILN_EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "usage: kiln cancel JOB\n");
		return KILN_EXIT_USAGE;
	}
	if (parse_job_id(argv[i], &id) != 0)
		return KILN_EXIT_USAGE;
	if ((j = post_job_action(c, id, "cancel", 200, &rc)) == NULL)
		return rc;
	printf("job %" PRId64 ": %s\n", id, json_is_string(json_object_get(j,
	    "state")) ? field(j, "state", b, sizeof b) : "canceled");
	json_decref(j);
	return KILN_EXIT_OK;
}

int
cmd_retry(const struct kiln_conf *c, int argc, char **argv)
{
	int64_t id;
	json_t *j, *nid;
	int i, rc = KILN_EXIT_OK;

	if ((i = no_options(argc, argv, "retry JOB")) < 0)
		return i == -1 ? KILN_EXIT_OK : KILN_EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "usage: kiln retry JOB\n");
		return KILN_EXIT_USAGE;
	}
	if (parse_job_id(argv[i], &id) != 0)
		return KILN_EXIT_USAGE;
	if ((j = post_job_action(c, id, "retry", 201, &rc)) == NULL)
		return rc;
	nid = json_object_get(j, "id");
	if (!json_is_integer(nid)) {
		kiln_err("job %" PRId64 ": the retry's answer has no job id",
		    id);
		json_decref(j);
		return KILN_EXIT_SERVER;
	}
	printf("%" PRId64 "\n", (int64_t)json_integer_value(nid));
	json_decref(j);
	return KILN_EXIT_OK;
}

int
cmd_targets(const struct kiln_conf *c, int argc, char **argv)
{
	char err[1024], b[64], cc[64];
	json_t *root, *o;
	size_t i;
	int rc;

	if ((rc = no_options(argc, argv, "targets")) < 0)
		return rc == -1 ? KILN_EXIT_OK : KILN_EXIT_USAGE;
	if ((rc = http_get_json(c, "/v1/targets", &root, err,
	    sizeof err)) != 0) {
		kiln_err("targets: %s", err);
		return rc;
	}
	json_array_foreach(json_object_get(root, "targets"), i, o) {
		printf("%-18s %s", field(o, "target", b, sizeof b),
		    json_is_true(json_object_get(o, "go")) ? "go" : "-");
		if (json_is_string(json_object_get(o, "c_toolchain")))
			printf("  c: %s%s", field(o, "c_toolchain", cc,
			    sizeof cc), json_is_true(json_object_get(o,
			    "c_toolchain_installed")) ? "" : " (not installed)");
		putchar('\n');
	}
	json_decref(root);
	return KILN_EXIT_OK;
}

int
cmd_hosts(const struct kiln_conf *c, int argc, char **argv)
{
	char err[1024], n[80], v[40], u[200];
	json_t *root, *o;
	size_t i;
	int rc;

	if ((rc = no_options(argc, argv, "hosts")) < 0)
		return rc == -1 ? KILN_EXIT_OK : KILN_EXIT_USAGE;
	if ((rc = http_get_json(c, "/v1/hosts", &root, err, sizeof err)) != 0) {
		kiln_err("hosts: %s", err);
		return rc;
	}
	json_array_foreach(json_object_get(root, "hosts"), i, o) {
		printf("%-20s %-5s %" PRId64 "/%" PRId64 " running  %s  %s\n",
		    field(o, "name", n, sizeof n),
		    json_is_true(json_object_get(o, "alive")) ? "alive" :
		    "gone",
		    (int64_t)json_integer_value(json_object_get(o, "running")),
		    (int64_t)json_integer_value(json_object_get(o, "slots")),
		    field(o, "version", v, sizeof v),
		    field(o, "base_url", u, sizeof u));
	}
	json_decref(root);
	return KILN_EXIT_OK;
}
