/*
 * kiln logs: a target's build log, as kilnd shows it for people (its
 * view already escapes control sequences other than colours), or
 * followed with follow=1 until the target ends.  The target is given as
 * "linux/arm/v7" or as in URLs, "linux_arm_v7".
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "sbuf.h"
#include "target.h"
#include "xmalloc.h"

struct out {
	const char *prefix;	/* NULL: none */
	bool bol;		/* at the beginning of a line */
};

static int
sink(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	if (o->prefix == NULL)
		return fwrite(p, 1, n, stdout) == n && fflush(stdout) == 0 ?
		    0 : -1;
	for (size_t i = 0; i < n; i++) {
		if (o->bol)
			fputs(o->prefix, stdout);
		putchar(p[i]);
		o->bol = p[i] == '\n';
	}
	return fflush(stdout) == 0 ? 0 : -1;
}

int
logs_follow(const struct kiln_conf *c, int64_t job, const char *target,
    bool follow, const char *prefix, char *err, size_t errsize)
{
	struct target t;
	struct http_resp r;
	struct out o = { .prefix = prefix, .bol = true };
	char url[TARGET_NAME_MAX], path[160], why[256];

	if (target_parse_row(&t, target, why, sizeof why) != 0 &&
	    target_parse_url_row(&t, target, why, sizeof why) != 0) {
		snprintf(err, errsize, "target '%.64s': %s", target, why);
		return KILN_EXIT_USAGE;
	}
	target_url_name(url, &t);
	snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/targets/%s/log%s",
	    job, url, follow ? "?follow=1" : "");
	if (http_get_stream(c, path, sink, &o, NULL, NULL, &r, err,
	    errsize) != 0)
		return KILN_EXIT_SERVER;
	if (!o.bol && prefix != NULL)
		putchar('\n');
	fflush(stdout);
	if (r.status != 200) {
		char p[768];

		http_problem(&r, p, sizeof p);
		snprintf(err, errsize, "%s", p);
		http_resp_free(&r);
		return KILN_EXIT_SERVER;
	}
	http_resp_free(&r);
	return KILN_EXIT_OK;
}

int
cmd_logs(const struct kiln_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	static const char usage[] = "usage: kiln logs [-f] JOB TARGET\n";
	char err[1024];
	bool follow = false;
	int64_t id;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		if (ch == 'f') {
			follow = true;
			continue;
		}
		fputs(usage, ch == 'h' ? stdout : stderr);
		return ch == 'h' ? KILN_EXIT_OK : KILN_EXIT_USAGE;
	}
	if (optind + 2 != argc) {
		fputs(usage, stderr);
		return KILN_EXIT_USAGE;
	}
	if (parse_job_id(argv[optind], &id) != 0)
		return KILN_EXIT_USAGE;
	rc = logs_follow(c, id, argv[optind + 1], follow, NULL, err,
	    sizeof err);
	if (rc != 0)
		kiln_err("job %" PRId64 ": %s: %s", id, argv[optind + 1], err);
	return rc;
}
