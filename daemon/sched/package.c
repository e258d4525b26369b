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
#include "creds.h"
#include "log.h"
#include "outputs.h"
#include "recipe.h"
#include "release.h"
#include "template.h"
#include "util.h"
#include "xmalloc.h"

struct pkg_read {
	struct starget *st;
	struct job *job;
};

/*
 * The image's push, after the package step: kiln-worker push of the
 * layout to the project's registry, once per tag, with the project's
 * credentials on a memfd.  Only a protected ref's release is pushed: a
 * branch anyone may push to must not replace what a registry serves.
 */
struct pkg_push {
	char *layout;		/* ROOT/out/NAME.oci.tar */
	char *registry;
	bool insecure;
	char *project;
	char **tags;
	size_t ntags, next;
	struct sbuf out;	/* the push's stdout: its JSON line */
	struct sbuf err;	/* the last of its stderr */
	int code;		/* the package step's exit code */
};

void
package_push_free(struct starget *st)
{
	struct pkg_push *p = st->push;

	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ntags; i++)
		free(p->tags[i]);
	free(p->tags);
	free(p->layout);
	free(p->registry);
	free(p->project);
	sbuf_free(&p->out);
	sbuf_free(&p->err);
	free(p);
	st->push = NULL;
}

/*
 * Whether the release pushes its image: the spec has one, the job's
 * project names a registry, and the job is protected.  Sets st->push.
 */
static void
plan_push(struct starget *st, const char *spec_text, const char *version)
{
	const struct conf_project *p = st->j->job->project ?
	    conf_project_by_name(st->s->conf, st->j->job->project) : NULL;
	json_t *spec = json_loads(spec_text, 0, NULL);
	json_t *out = st->j->job->outputs ? json_loads(st->j->job->outputs, 0,
	    NULL) : NULL;
	json_t *im = json_object_get(spec, "image"), *tags, *t;
	struct pkg_push *pp;
	size_t i;

	if (im == NULL || p == NULL || p->registry == NULL)
		goto out;
	if (st->j->job->trust != TRUST_PROTECTED) {
		log_line(st, "image: not pushed to %s: %s is not a protected "
		    "ref of project %s", p->registry, st->j->job->ref, p->name);
		goto out;
	}
	pp = xcalloc(1, sizeof *pp);
	pp->layout = xasprintf("%s/out/%s", st->root, json_string_value(
	    json_object_get(im, "file")));
	pp->registry = xstrdup(p->registry);
	pp->insecure = p->registry_insecure;
	pp->project = xstrdup(p->name);
	tags = json_object_get(json_object_get(out, "image"), "tags");
	pp->tags = xcalloc(json_array_size(tags) + 1, sizeof *pp->tags);
	json_array_foreach(tags, i, t)
		pp->tags[pp->ntags++] = xstrdup(json_string_value(t));
	if (pp->ntags == 0 && outputs_tag_ok(version))
		pp->tags[pp->ntags++] = xstrdup(version);
	if (pp->ntags == 0) {
		/* Said, or the release would look pushed. */
		log_line(st, "image: not pushed to %s: the image names no "
		    "tags and the version '%s' is not a tag (letters, digits, "
		    "'_', '.', '-'; at most 128)", p->registry, version);
		st->push = pp;
		package_push_free(st);
		goto out;
	}
	st->push = pp;
out:
	json_decref(spec);
	json_decref(out);
}

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
	spec = release_spec(job, j->recipe, &v, st->s->store, why, whysize);
	free(project);
	/* The work root is made now: the push needs its path. */
	if (spec != NULL && target_run_prepare(st, why, whysize) != 0) {
		free(spec);
		return NULL;
	}
	if (spec != NULL)
		plan_push(st, spec, version);
	return spec;
}

static void
spawn_with(struct starget *st, const char *spec)
{
	struct sched *s = st->s;
	struct sjob *j = st->j;
	char key[33], *mirror, **argv;
	size_t n = 0;
	int rc;

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

/* --- the push ------------------------------------------------------------ */

static void push_next(struct starget *st);

static void
push_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct starget *st = container_of(c, struct starget, child);
	struct pkg_push *p = st->push;

	log_write(st, buf, n);
	if (fd == 1 && p->out.len + n <= 4096)
		sbuf_add(&p->out, buf, n);
	if (fd == 2) {
		/* Its last lines: the reason of a failure. */
		if (p->err.len + n > 4096)
			p->err.len = 0;
		if (n <= 4096)
			sbuf_add(&p->err, buf, n);
	}
}

static void
push_done(struct child *c)
{
	struct starget *st = container_of(c, struct starget, child);
	struct pkg_push *p = st->push;
	const char *tag = p->tags[p->next];
	char why[512];

	if (c->exit_status == 0 && c->term_signal == 0 && !st->cancel) {
		log_info("job %" PRId64 " release: image pushed to %s:%s",
		    st->claim.job_id, p->registry, tag);
		p->next++;
		push_next(st);
		return;
	}
	if (st->cancel)
		snprintf(why, sizeof why, "canceled while it pushed");
	else {
		/* kiln-worker's last line: "kiln-worker: push: ...". */
		char *e = p->err.p ? p->err.p : "";
		size_t n = p->err.len;
		while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == '\r'))
			n--;
		size_t start = n;
		while (start > 0 && e[start - 1] != '\n')
			start--;
		snprintf(why, sizeof why, "push of the image to %s:%s failed: "
		    "%.*s", p->registry, tag, (int)(n - start), e + start);
	}
	log_warn("job %" PRId64 " release: %s", st->claim.job_id, why);
	if (st->root != NULL)
		remove_tree(st->s, st->root);
	end_target(st, st->cancel ? TARGET_CANCELED : TARGET_FAILED, -1, why,
	    NULL, 0);
}

/* The next tag's push, or the publication once every tag is pushed. */
static void
push_next(struct starget *st)
{
	struct sched *s = st->s;
	struct pkg_push *p = st->push;
	const struct conf_project *proj;
	char *to, why[256], *text = NULL, *fd_args[2] = { NULL, NULL };
	char *argv[10], *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	size_t len = 0, n = 0;
	int rc;

	if (p->next == p->ntags) {
		start_publish(st, p->code);
		return;
	}
	proj = conf_project_by_name(s->conf, p->project);
	if (proj != NULL && proj->credentials != NULL &&
	    creds_read_file(&text, &len, proj->credentials, why,
	    sizeof why) != 0) {
		log_warn("job %" PRId64 ": project %s: credentials: %s",
		    st->claim.job_id, p->project, why);
		fail_now(st, "the project's credentials file cannot be used "
		    "for the image's push (kilnd's log says why)");
		return;
	}
	to = xasprintf("%s:%s", p->registry, p->tags[p->next]);
	argv[n++] = s->worker;
	argv[n++] = "push";
	argv[n++] = "--layout";
	argv[n++] = p->layout;
	argv[n++] = "--to";
	argv[n++] = to;
	if (p->insecure)
		argv[n++] = "--insecure-http";
	if (text != NULL) {
		argv[n++] = "--credentials-fd";
		argv[n++] = "3";
		fd_args[0] = text;
	}
	argv[n] = NULL;
	log_line(st, "$ kiln-worker push %s", to);
	sbuf_free(&p->out);
	sbuf_free(&p->err);
	memset(&st->child, 0, sizeof st->child);
	rc = child_spawn_args(&st->child, s->loop, argv, env, 2,
	    text != NULL ? fd_args : NULL, push_data, push_done, st);
	if (rc != 0)
		log_error("job %" PRId64 " release: cannot spawn %s: %s",
		    st->claim.job_id, s->worker, uv_strerror(rc));
	creds_text_free(text, len);
	free(to);
}

void
package_done(struct starget *st, int code)
{
	if (st->push == NULL) {
		start_publish(st, code);
		return;
	}
	st->push->code = code;
	push_next(st);
}
