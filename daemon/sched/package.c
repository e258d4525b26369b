/*
 * The release row's run: once every build of a job succeeded, the queue
 * adds the row (schema/015_outputs.sql) and a host claims it like any
 * target.  Its work order comes from the job as the queue has it now
 * (every build's artifacts, whichever host built them), made into a spec
 * by daemon/release.c, and kiln-worker package carries it out in a
 * sandbox of its own; what it writes to its out directory is published
 * and recorded as the row's artifacts, as a build's are (publish.c), so
 * that SHA256SUMS, the signature and the provenance cover them.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched-int.h"
#include "log.h"
#include "recipe.h"
#include "release.h"
#include "template.h"
#include "util.h"
#include "xmalloc.h"

struct pkg_read {
	struct starget *st;
	struct job *job;
};

/* Every input must be in this host's store: a farm's hosts share one
 * store directory, or the release row fails with the name of the file.
 * On a shared queue, where another host may have built it, the message
 * says so; a lone host's missing blob is a damaged store, not a farm's
 * setup. */
static int
inputs_here(struct starget *st, const struct job *job, char *why,
    size_t whysize)
{
	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *jt = &job->targets[i];

		for (size_t a = 0; a < jt->nartifacts; a++) {
			const char *hex = jt->artifacts[a].sha256;
			int fd;

			if (hex == NULL || !store_digest_valid(hex))
				return util_errorf(why, whysize, "%s/%s has no "
				    "stored digest", jt->target,
				    jt->artifacts[a].name);
			if ((fd = store_open_blob(st->s->store, hex)) < 0)
				return util_errorf(why, whysize, "%s/%s is not "
				    "in this host's store (%s)%s", jt->target,
				    jt->artifacts[a].name, strerror(-fd),
				    queue_shared(st->s->q) ? "; the hosts "
				    "of a farm that packages releases share one "
				    "store directory" : "");
			close(fd);
		}
	}
	return 0;
}

static char *
make_spec(struct starget *st, const struct job *job, char *why,
    size_t whysize)
{
	struct sjob *j = st->j;
	struct template_vars v = { 0 };
	char version[128], raw[128], tag[128], *project, *spec;

	template_version(j->plan.tag, job->commit, version, sizeof version,
	    raw, sizeof raw, tag, sizeof tag, &v.is_snapshot);
	project = recipe_project_name(j->recipe, job->repo);
	v.project_name = project;
	v.version = version;
	v.raw_version = raw;
	v.tag = tag;
	v.commit = job->commit;
	v.branch = j->plan.branch ? j->plan.branch : "";
	v.commit_time = j->commit_time;
	spec = release_spec(job, &v, st->s->store, why, whysize);
	free(project);
	return spec;
}

static void
spawn_with(struct starget *st, const char *spec)
{
	struct sched *s = st->s;
	struct sjob *j = st->j;
	char key[33], *mirror, **argv, why[256];
	size_t n = 0;
	int rc;

	if (target_run_prepare(st, why, sizeof why) != 0) {
		fail_now(st, why);
		return;
	}
	repo_key(key, j->job->repo);
	mirror = state_path(s, "mirrors/%s.git", key);
	argv = xcalloc(16, sizeof *argv);
	argv[n++] = xstrdup("--mirror");
	argv[n++] = mirror;
	argv[n++] = xstrdup("--commit");
	argv[n++] = xstrdup(j->job->commit);
	argv[n++] = xstrdup("--root");
	argv[n++] = xstrdup(st->root);
	argv[n++] = xstrdup("--timeout");
	argv[n++] = xasprintf("%u", timeout_of(st));
	argv[n++] = xstrdup("--status-fd");
	argv[n++] = xstrdup("3");
	argv[n++] = xstrdup("--spec");
	argv[n++] = xstrdup(spec);
	argv[n] = NULL;
	log_line(st, "$ kiln-worker package (archives, SBOMs, universal "
	    "binaries, image: as the job's outputs ask)");
	st->start_ms = util_now_ms();
	st->started = true;
	{
		char *wargv[] = { s->worker, "package", "--config-fd", "4",
		    NULL };
		char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };

		rc = child_spawn_args(&st->child, s->loop, wargv, env, 3, argv,
		    build_data, build_done, st);
	}
	target_run_started(st, rc, "packaging");
	argv_free(argv);
}

static void
job_read(void *data, int rc)
{
	struct pkg_read *r = data;
	struct starget *st = r->st;
	char why[512] = "";
	char *spec = NULL;

	st->busy = false;
	if (ended_before_start(st))
		goto out;
	if (rc != 0)
		snprintf(why, sizeof why, "the job cannot be read (queue error "
		    "%d); retried by a later claim", rc);
	else if (r->job->commit == NULL)
		snprintf(why, sizeof why, "the job has no commit");
	else if (inputs_here(st, r->job, why, sizeof why) == 0)
		spec = make_spec(st, r->job, why, sizeof why);
	if (spec == NULL) {
		log_warn("job %" PRId64 " release: %s", st->claim.job_id, why);
		fail_now(st, why);
	} else
		spawn_with(st, spec);
out:
	free(spec);
	job_free(r->job);
	free(r);
}

void
spawn_package(struct starget *st)
{
	struct pkg_read *r = xcalloc(1, sizeof *r);

	r->st = st;
	st->busy = true;
	queue_get(st->s->q, st->claim.job_id, &r->job, job_read, r);
}
