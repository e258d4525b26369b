/*
 * kiln submit: POST /v1/jobs, then (--wait) a live table until the job
 * ends, or (--follow) each target's log as it builds and the table's
 * final state.  The exit status says how the job ended: 0 succeeded,
 * 1 failed or canceled, 3 the server could not be asked.
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
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "target.h"
#include "util.h"
#include "xmalloc.h"

#define RECIPE_MAX (1u << 20)
#define POLL_ERRORS_MAX 5	/* network errors in a row before giving up */

static const char usage[] = "usage: kiln submit REPO [REF] [TARGET...] "
    "[--recipe FILE] [--wait|--follow] [--priority N]\n";

/* The JSON of a recipe file, or NULL with the reason. */
static json_t *
load_recipe(const char *path, char *err, size_t errsize)
{
	json_error_t je;
	struct stat st;
	json_t *j;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		util_errorf(err, errsize, "--recipe %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > RECIPE_MAX) {
		util_errorf(err, errsize, "--recipe %s: not a regular file "
		    "of at most 1 MiB", path);
		close(fd);
		return NULL;
	}
	j = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
	close(fd);
	if (j == NULL)
		util_errorf(err, errsize, "--recipe %s line %d: %s", path,
		    je.line, je.text);
	return j;
}

/* A local directory named without a scheme is sent as its absolute path. */
static char *
repo_arg(const char *repo)
{
	char buf[PATH_MAX];
	struct stat st;

	if (strstr(repo, "://") == NULL && repo[0] != '/' &&
	    stat(repo, &st) == 0 && S_ISDIR(st.st_mode) &&
	    realpath(repo, buf) != NULL)
		return xstrdup(buf);
	return xstrdup(repo);
}

static int
get_job(const struct kiln_conf *c, int64_t id, json_t **job, char *err,
    size_t errsize)
{
	char path[64];

	snprintf(path, sizeof path, "/v1/jobs/%" PRId64, id);
	return http_get_json(c, path, job, err, errsize);
}

static int
exit_for(json_t *job)
{
	const char *s = json_string_value(json_object_get(job, "state"));

	return s != NULL && strcmp(s, "succeeded") == 0 ? KILN_EXIT_OK :
	    KILN_EXIT_FAILED;
}

/* Poll the job about once a second until it ends, drawing the table. */
static int
wait_job(const struct kiln_conf *c, int64_t id)
{
	struct table *t = table_new(isatty(STDOUT_FILENO), STDOUT_FILENO);
	char err[1024];
	json_t *job = NULL;
	int errors = 0, rc;

	for (;;) {
		rc = get_job(c, id, &job, err, sizeof err);
		if (rc != 0) {
			/* A restart of kilnd is not the job's end. */
			if (++errors < POLL_ERRORS_MAX && strstr(err, "://")) {
				sleep(1);
				continue;
			}
			table_free(t);
			kiln_err("job %" PRId64 ": %s", id, err);
			return rc;
		}
		errors = 0;
		table_update(t, job);
		if (job_state_ended(json_string_value(json_object_get(job,
		    "state"))))
			break;
		json_decref(job);
		job = NULL;
		sleep(1);
	}
	rc = exit_for(job);
	json_decref(job);
	table_free(t);
	return rc;
}

static bool
followed(char **done, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(done[i], name) == 0)
			return true;
	return false;
}

/*
 * Follow every target's log in the job's order, one after another (a
 * row that appears later, such as the release row, too), then show
 * the final table.
 */
static int
follow_job(const struct kiln_conf *c, int64_t id)
{
	char err[1024], prefix[TARGET_NAME_MAX + 4], *done[TARGETS_MAX + 8];
	size_t ndone = 0, i;
	json_t *job = NULL, *t;
	int rc;

	for (;;) {
		const char *next = NULL;

		if ((rc = get_job(c, id, &job, err, sizeof err)) != 0) {
			kiln_err("job %" PRId64 ": %s", id, err);
			goto out;
		}
		json_array_foreach(json_object_get(job, "targets"), i, t) {
			const char *n = json_string_value(json_object_get(t,
			    "target"));

			if (n != NULL && !followed(done, ndone, n)) {
				next = n;
				break;
			}
		}
		if (next == NULL || ndone == ARRAY_SIZE(done)) {
			if (job_state_ended(json_string_value(
			    json_object_get(job, "state"))))
				break;
			json_decref(job);
			job = NULL;
			sleep(1);
			continue;
		}
		done[ndone++] = xstrdup(next);
		snprintf(prefix, sizeof prefix, "[%.*s] ", TARGET_NAME_MAX - 1,
		    next);
		if (logs_follow(c, id, next, true, prefix, err,
		    sizeof err) != 0)
			/* A target that ended without a log says so. */
			fprintf(stderr, "kiln: job %" PRId64 ": %s: %s\n", id,
			    next, err);
		json_decref(job);
		job = NULL;
	}
	{
		struct table *tb = table_new(isatty(STDOUT_FILENO),
		    STDOUT_FILENO);

		table_update(tb, job);
		table_free(tb);
	}
	rc = exit_for(job);
out:
	json_decref(job);
	for (i = 0; i < ndone; i++)
		free(done[i]);
	return rc;
}

int
cmd_submit(const struct kiln_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "recipe", required_argument, NULL, 'r' },
		{ "wait", no_argument, NULL, 'w' },
		{ "follow", no_argument, NULL, 'f' },
		{ "priority", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *recipe = NULL, *ref = "main";
	bool wait = false, follow = false;
	int64_t prio = 0, id;
	bool have_prio = false;
	struct http_resp r;
	struct target tg;
	char err[1024], *body, *repo;
	json_t *req, *targets, *j;
	int ch, i;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "r:wfp:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': recipe = optarg; break;
		case 'w': wait = true; break;
		case 'f': follow = true; break;
		case 'p':
			if (util_parse_int64(optarg, INT32_MIN, INT32_MAX,
			    &prio) != 0) {
				kiln_err("--priority: '%.64s' is not an "
				    "integer", optarg);
				return KILN_EXIT_USAGE;
			}
			have_prio = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return KILN_EXIT_OK;
		default:
			fputs(usage, stderr);
			return KILN_EXIT_USAGE;
		}
	}
	if (optind >= argc || (wait && follow)) {
		if (wait && follow)
			kiln_err("--wait and --follow: choose one");
		fputs(usage, stderr);
		return KILN_EXIT_USAGE;
	}
	req = json_object();
	repo = repo_arg(argv[optind++]);
	json_object_set_new(req, "repo", json_string(repo));
	free(repo);
	/* REF may be left out: a first word that is a target is one. */
	if (optind < argc && target_parse(&tg, argv[optind], err,
	    sizeof err) != 0)
		ref = argv[optind++];
	json_object_set_new(req, "ref", json_string(ref));
	if (optind < argc) {
		targets = json_array();
		for (i = optind; i < argc; i++)
			json_array_append_new(targets, json_string(argv[i]));
		json_object_set_new(req, "targets", targets);
	}
	if (recipe != NULL) {
		if ((j = load_recipe(recipe, err, sizeof err)) == NULL) {
			kiln_err("%s", err);
			json_decref(req);
			return KILN_EXIT_USAGE;
		}
		json_object_set_new(req, "recipe", j);
	}
	if (have_prio)
		json_object_set_new(req, "priority", json_integer(prio));
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL) {
		/* An argument that is not UTF-8 cannot be a JSON string. */
		kiln_err("submit: an argument is not valid UTF-8");
		return KILN_EXIT_USAGE;
	}
	if (http_call(c, "POST", "/v1/jobs", body, &r, err, sizeof err) != 0) {
		free(body);
		kiln_err("submit: %s", err);
		return KILN_EXIT_SERVER;
	}
	free(body);
	if (r.status != 201 && r.status != 200) {
		http_problem(&r, err, sizeof err);
		kiln_err("submit: %s", err);
		http_resp_free(&r);
		return KILN_EXIT_SERVER;
	}
	j = json_loadb(r.body, r.len, 0, NULL);
	http_resp_free(&r);
	if (!json_is_integer(json_object_get(j, "id"))) {
		kiln_err("submit: the answer has no job id");
		json_decref(j);
		return KILN_EXIT_SERVER;
	}
	id = json_integer_value(json_object_get(j, "id"));
	json_decref(j);
	printf("%" PRId64 "\n", id);
	fflush(stdout);
	if (wait)
		return wait_job(c, id);
	if (follow)
		return follow_job(c, id);
	return KILN_EXIT_OK;
}
