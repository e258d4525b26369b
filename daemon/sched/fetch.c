/*
 * What runs before a job's builds.  `kiln-worker fetch` (libgit2, in
 * its own process: the loop never blocks on git) updates the job's bare
 * mirror and resolves the ref; its result gives the job its commit, its
 * trust class and its plan (recipe, targets named by the repository,
 * toolchain).  When the plan asks for it, the deps step then runs `go
 * mod download` once for the job.  Then the job's parked targets launch.
 * On a farm's queue, a target this host lacks a toolchain for is refused
 * (queue_refuse), for a host that has one, instead of failing the job.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "child.h"
#include "creds.h"
#include "jobplan.h"
#include "log.h"
#include "metrics.h"
#include "recipe.h"
#include "sbuf.h"
#include "sched-int.h"
#include "utf8.h"
#include "util.h"
#include "validate.h"
#include "xmalloc.h"

#define FETCH_OUTPUT_MAX (256 * 1024)

/* --- fetch and deps --------------------------------------------------------- */

/* The deps step's output kept for the targets' logs, and its reason. */
#define DEPS_LOG_MAX (64 * 1024)

static void
fetch_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct fetch *f = container_of(c, struct fetch, child);
	struct sbuf *b = fd == 1 ? &f->out : fd == 2 ? &f->err : &f->status;
	size_t max = fd == 3 ? STATUS_MAX : f->deps ? DEPS_LOG_MAX :
	    FETCH_OUTPUT_MAX;

	if (b->len + n <= max)
		sbuf_add(b, buf, n);
}

/* The last non-empty line of the worker's stderr: its reason. */
static void
last_line(const struct sbuf *b, char *out, size_t size)
{
	const char *end, *start;

	snprintf(out, size, "fetch failed");
	if (b->len == 0)
		return;
	end = b->p + b->len;
	while (end > b->p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > b->p && start[-1] != '\n')
		start--;
	if (end > start)
		snprintf(out, size, "%.*s", (int)(end - start), start);
}

/* The last `size` bytes of a log, whole lines, newlines as "; ". */
static void
tail_lines(const struct sbuf *b, char *out, size_t size)
{
	const char *p = b->p ? b->p : "", *end = p + b->len;
	size_t o = 0;

	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if ((size_t)(end - p) > size - 1) {
		p = end - (size - 1);
		while (p < end && *p != '\n')
			p++;
		if (p < end)
			p++;
	}
	while (p < end && (*p == '\n' || *p == '\r'))
		p++;
	for (; p < end && o + 3 < size; p++) {
		if (*p == '\n') {
			/* One separator for a run of (blank) lines. */
			while (p + 1 < end && (p[1] == '\n' || p[1] == '\r'))
				p++;
			out[o++] = ';';
			out[o++] = ' ';
		} else if (*p == '\t')
			out[o++] = ' ';
		else if (*p != '\r')
			out[o++] = *p;
	}
	out[o] = '\0';
}

static void
fetch_closed(uv_handle_t *h)
{
	struct fetch *f = h->data;

	sbuf_free(&f->out);
	sbuf_free(&f->err);
	sbuf_free(&f->status);
	free(f->root);
	free(f->refused);
	free(f);
}

/* Write the deps step's output to a target's log, which never started. */
static void
deps_log_to(struct starget *st, const char *why)
{
	if (!open_unbuilt_log(st))
		return;
	log_plan(st);
	log_line(st, "%s: failed: %s", st->t.name, why);
	log_close(st);
}

/* The deps step ended: go's own message is the reason when it failed. */
static void
deps_result(struct fetch *f, char *why, size_t whysize)
{
	struct sjob *j = f->j;
	json_t *res = NULL;
	const char *status;
	char tail[768];

	sbuf_free(&j->deps_log);
	sbuf_add(&j->deps_log, f->out.p ? f->out.p : "", f->out.len);
	sbuf_add(&j->deps_log, f->err.p ? f->err.p : "", f->err.len);
	if (f->status.len > 0)
		res = json_loadb(f->status.p, f->status.len,
		    JSON_DISABLE_EOF_CHECK, NULL);
	status = json_string_value(json_object_get(res, "status"));
	if (f->timed_out)
		snprintf(why, whysize, "deps: go mod download took longer than "
		    "fetch_timeout (%u s)", j->s->conf->fetch_timeout);
	else if (status != NULL && strcmp(status, "exited") == 0 &&
	    json_integer_value(json_object_get(res, "code")) == 0)
		;	/* the module cache holds everything */
	else if (status != NULL && strcmp(status, "exited") == 0) {
		tail_lines(&j->deps_log, tail, sizeof tail);
		snprintf(why, whysize, "deps: go mod download failed: %s",
		    tail[0] ? tail : "(no output)");
	} else if (status != NULL && strcmp(status, "error") == 0)
		snprintf(why, whysize, "deps: %s", json_string_value(
		    json_object_get(res, "error")) ?: "kiln-worker failed");
	else if (f->child.spawned)
		snprintf(why, whysize, "deps: kiln-worker ended without a result");
	else
		last_line(&f->err, why, whysize);
	json_decref(res);
	if (f->root != NULL)
		remove_tree(j->s, f->root);
}

static void start_deps(struct sjob *j);

/*
 * The trust class of a job whose submitter may build protected: the ref it
 * named (as the fetch resolved it: a tag or branch that still points at
 * the commit) against the project's protected_refs, or tags and the
 * repository's default branch.
 */
static enum job_trust
trust_of(struct sched *s, const struct sjob *j, json_t *res)
{
	const struct conf_project *p = j->job->project ?
	    conf_project_by_name(s->conf, j->job->project) : NULL;
	const char *ref = json_string_value(json_object_get(res, "ref_name"));
	const char *def = json_string_value(json_object_get(res,
	    "default_branch"));

	return conf_ref_protected(p, ref, def) ? TRUST_PROTECTED :
	    TRUST_UNPROTECTED;
}

/* The targets a repository named, on their way to the database: once
 * they are stored they can be claimed. */
struct expanded {
	struct sched *s;
	int64_t job_id;
};

/* A job failed as a whole, told to live events once it is durable (a
 * client that reads the job then sees it failed), with each of its
 * targets: claimed ones were told running, and end here. */
struct failing {
	struct sched *s;
	int64_t job_id;
	/* Its targets, each told failed too (every one ends with it). */
	size_t ntargets;
	char (*targets)[TARGET_NAME_MAX];
};

static void
job_failed(void *data, int rc)
{
	struct failing *f = data;
	struct sched *s = f->s;

	s->writes--;
	if (rc == 0) {
		for (size_t i = 0; i < f->ntargets; i++)
			events_target(s->events, f->job_id, f->targets[i],
			    target_state_name(TARGET_FAILED));
		events_job(s->events, f->job_id, job_state_name(JOB_FAILED));
	}
	free(f->targets);
	free(f);
	sched_settle(s, false);
}

static void
fail_job(struct sched *s, int64_t job_id, const struct job *job,
    const char *why)
{
	struct failing *f = xcalloc(1, sizeof *f);

	f->s = s;
	f->job_id = job_id;
	/* The job as claimed names them all (a repository's own list is
	 * not recorded yet when the job fails: its one row is told). */
	if (job != NULL && job->ntargets > 0) {
		f->targets = xcalloc(job->ntargets, sizeof *f->targets);
		f->ntargets = job->ntargets;
		for (size_t i = 0; i < job->ntargets; i++)
			memcpy(f->targets[i], job->targets[i].target,
			    TARGET_NAME_MAX);
	}
	s->writes++;
	queue_fail_job(s->q, job_id, why, job_failed, f);
}

static void
expanded(void *data, int rc)
{
	struct expanded *e = data;
	struct sched *s = e->s;

	s->writes--;
	if (rc != 0) {
		log_error("job %" PRId64 ": cannot record the targets the "
		    "repository names", e->job_id);
		if (!s->stopping) {
			fail_job(s, e->job_id, NULL, "cannot record the targets "
			    "the repository names");
		}
	} else
		/* Its targets are new rows: the job is to be read again. */
		events_job(s->events, e->job_id, job_state_name(JOB_RUNNING));
	free(e);
	sched_settle(s, true);
}

/* --- targets this host cannot build ------------------------------------ */

/* A refusal on its way to the queue. */
struct refusal {
	struct sched *s;
	int64_t job_id, target_id;
	int attempt;
	char target[TARGET_NAME_MAX];
	bool everyone;
};

static void
refused(void *data, int rc)
{
	struct refusal *r = data;
	struct sched *s = r->s;

	s->writes--;
	if (rc == 0 && r->everyone)
		log_info("job %" PRId64 " %s: failed: no host of the farm can "
		    "build it", r->job_id, r->target);
	else if (rc == QUEUE_ECONFLICT)
		superseded_result(r->target_id, r->attempt);
	else if (rc != 0)
		/* Still ours in the queue: its lease runs out and another
		 * host reclaims it. */
		log_error("job %" PRId64 " %s: cannot give it back to the farm "
		    "(the database); it waits for its lease", r->job_id,
		    r->target);
	free(r);
	sched_settle(s, true);
}

/*
 * This host lacks a toolchain for st (why): the queue gets it back and
 * this host's claims pass it over (queue_refuse) for two leases, the time
 * a host counts as alive without a beat; once every live host refused
 * it, it fails.  Only on a farm's queue: one host fails it.  The caller
 * frees st.
 */
static void
refuse_target(struct starget *st, const char *why)
{
	struct sched *s = st->s;
	struct refusal *r = xcalloc(1, sizeof *r);

	r->s = s;
	r->job_id = st->claim.job_id;
	r->target_id = st->claim.target_id;
	r->attempt = st->claim.attempt;
	snprintf(r->target, sizeof r->target, "%s", st->claim.target);
	log_info("job %" PRId64 " %s: this host cannot build it (%s); left "
	    "to the farm", r->job_id, r->target, why);
	s->writes++;
	queue_refuse(s->q, st->claim.target_id, st->claim.attempt,
	    s->conf->host_name != NULL ? s->conf->host_name : "localhost",
	    why, 2 * (int64_t)s->conf->target_lease * 1000, &r->everyone,
	    refused, r);
}

bool
plan_refuses(struct starget *st)
{
	struct sjob *j = st->j;
	struct recipe_plan plan = { 0 };
	struct recipe_ctx ctx;
	char why[1024];
	int rc;

	if (st->placeholder || !queue_shared(st->s->q))
		return false;
	if (j->recipe == NULL) {
		const char *m = jobplan_missing(&j->plan, st->t.name);

		if (m == NULL)
			return false;
		snprintf(why, sizeof why, "%s", m);
	} else {
		/*
		 * Planned again with the toolchains of now, not the job's
		 * plan (jobplan_missing): the job stays in memory across
		 * claims, and a reload since may have added the C
		 * toolchain (build it) or taken it away (refuse it, rather
		 * than fail it at its spawn).
		 */
		recipe_ctx_of(&ctx, j);
		rc = recipe_plan(&plan, j->recipe, &st->t, &ctx, st->s->conf,
		    why, sizeof why);
		recipe_plan_free(&plan);
		if (rc != RECIPE_ENOTOOL)
			return false;	/* built, or failed by spawn_build */
	}
	refuse_target(st, why);
	free_target(st);
	return true;
}

/*
 * The fetch ended: record the (peeled) commit and make the job's plan:
 * recipe, targets named by the repository, toolchain, deps step.
 * *notool: the plan failed for want of a Go release on this host.
 */
static void
fetch_result(struct fetch *f, char *why, size_t whysize, bool *notool)
{
	struct child *c = &f->child;
	struct sjob *j = f->j;
	struct sched *s = j->s;
	struct starget *ph = NULL;
	json_t *res = NULL;
	const char *commit;
	enum job_trust trust;
	int rc;

	*notool = false;
	if (f->refused != NULL) {
		snprintf(why, whysize, "%s", f->refused);
		return;
	}
	if (f->timed_out) {
		snprintf(why, whysize, "fetch of %s took longer than "
		    "fetch_timeout (%u s)", j->job->repo, s->conf->fetch_timeout);
		return;
	}
	if (c->exit_status != 0 || c->term_signal != 0) {
		last_line(&f->err, why, whysize);
		return;
	}
	if ((res = json_loadb(f->out.p ? f->out.p : "", f->out.len,
	    JSON_DISABLE_EOF_CHECK, NULL)) == NULL ||
	    (commit = json_string_value(json_object_get(res, "commit"))) ==
	    NULL || strlen(commit) != 40) {
		snprintf(why, whysize, "kiln-worker fetch gave no commit");
		goto out;
	}
	j->commit_time = json_integer_value(json_object_get(res,
	    "commit_time"));
	/*
	 * A webhook's commit may be an annotated tag's object: the fetch
	 * peeled it, and the commit is what the job records and builds.
	 */
	trust = j->job->trust != TRUST_UNKNOWN ? j->job->trust :
	    trust_of(s, j, res);
	if (j->job->commit == NULL || strcmp(j->job->commit, commit) != 0 ||
	    trust != j->job->trust) {
		/* Written before anything of the build: writes run in order,
		 * and a failure is logged by the queue. */
		queue_set_commit(s->q, j->job->id, commit, trust, NULL, NULL);
		log_info("job %" PRId64 ": %s resolved to %s%s, %s", j->job->id,
		    j->job->ref, commit, j->job->commit ? " (peeled)" : "",
		    job_trust_name(trust));
		free(j->job->commit);
		j->job->commit = xstrdup(commit);
		j->job->trust = trust;
	}
	if (j->recipe != NULL)
		goto out;	/* planned by an earlier fetch */
	/* Canceled or stopping meanwhile: plan nothing, queue nothing. */
	if (j->cancel || s->stopping || s->draining)
		goto out;
	for (struct starget *st = j->targets; st; st = st->next)
		if (st->placeholder)
			ph = st;
	jobplan_free(&j->plan);
	if ((rc = jobplan_make(&j->plan, j->job, res, ph != NULL,
	    s->toolchains, s->conf, validate_recipe, why, whysize)) != 0) {
		*notool = rc == JOBPLAN_ENOTOOL;
		goto out;
	}
	/* One host: a target it cannot build fails the job, as any plan
	 * error does.  A farm's host refuses it at launch (plan_refuses). */
	if (j->plan.nmissing > 0 && !queue_shared(s->q)) {
		snprintf(why, whysize, "%s: %s", j->plan.missing[0].target,
		    j->plan.missing[0].why);
		jobplan_free(&j->plan);
		goto out;
	}
	j->recipe = xstrdup(j->plan.recipe);
	if ((j->plan.outputs == NULL) != (j->job->outputs == NULL) ||
	    (j->plan.outputs != NULL &&
	    strcmp(j->plan.outputs, j->job->outputs) != 0)) {
		/* The repository asks for release outputs: recorded before
		 * any build can end, for the release row to follow. */
		queue_set_outputs(s->q, j->job->id, j->plan.outputs,
		    j->plan.release, NULL, NULL);
		free(j->job->outputs);
		j->job->outputs = j->plan.outputs ? xstrdup(j->plan.outputs) :
		    NULL;
		j->job->release = j->plan.release;
	}
	if (ph != NULL) {
		struct expanded *e = xcalloc(1, sizeof *e);

		e->s = s;
		e->job_id = j->job->id;
		s->writes++;
		queue_expand_targets(s->q, j->job->id, ph->claim.target_id,
		    j->plan.targets, j->plan.ntargets, expanded, e);
		log_info("job %" PRId64 ": targets from the repository: %zu",
		    j->job->id, j->plan.ntargets);
		/* Its row is gone: no outcome to record.  The job stays
		 * (FETCH_RUNNING or DONE) while it has no target. */
		j->fetch = j->plan.deps ? FETCH_RUNNING : FETCH_DONE;
		free_target(ph);
		j->fetch = FETCH_NONE;
	}
out:
	json_decref(res);
}

static void
fetch_done(struct child *c)
{
	struct fetch *f = container_of(c, struct fetch, child);
	struct sjob *j = f->j;
	struct sched *s = j->s;
	char why[1024] = "";
	bool deps = f->deps, none, notool = false, refuse;
	/* Not started for want of a worker (not refused): given back. */
	bool unspawned = !c->spawned && f->refused == NULL;

	s->fetches--;
	j->fetch = FETCH_NONE;
	j->f = NULL;
	uv_timer_stop(&f->timer);
	f->timer.data = f;
	if (deps)
		deps_result(f, why, sizeof why);
	else {
		fetch_result(f, why, sizeof why, &notool);
		metrics_fetch(why[0] == '\0',
		    (util_now_ms() - f->start_ms) / 1000.0);
	}
	uv_close((uv_handle_t *)&f->timer, fetch_closed);

	if (unspawned && !s->stopping && !j->cancel)
		worker_unavailable(s, why);
	if (s->stopping || s->draining || unspawned ||
	    (why[0] != '\0' && !j->cancel)) {
		unsigned n = j->ntargets;
		bool giveback = s->stopping || s->draining || unspawned;

		/* A farm's host without the Go the job needs: its targets
		 * are left to the hosts that have it. */
		refuse = !giveback && notool && queue_shared(s->q);
		if (refuse)
			utf8_fix(why, sizeof why);
		if (!giveback && !refuse) {
			log_info("job %" PRId64 ": failed: %s", j->job->id, why);
			hide_state_dir(s, why, sizeof why);
			/* A fetch's message quotes the remote and the URL,
			 * cut to fit: valid UTF-8 before it is stored. */
			utf8_fix(why, sizeof why);
			for (struct starget *st = j->targets; deps && st;
			    st = st->next)
				deps_log_to(st, why);
			/* The whole job fails: every target, queued or
			 * parked (none of them has started). */
			fail_job(s, j->job->id, j->job, why);
		}
		if (n == 0)
			drop_job_if_idle(j);
		/* Freeing the last target frees j: count, do not walk j. */
		for (unsigned i = 0; i < n; i++) {
			struct starget *st = j->targets;
			if (giveback)
				queue_release(s->q, st->claim.target_id,
				    st->claim.attempt, NULL, NULL);
			else if (refuse)
				refuse_target(st, why);
			free_target(st);
		}
		sched_settle(s, true);
		return;
	}
	if (!deps && j->plan.deps && !j->cancel) {
		start_deps(j);
		sched_kick(s);	/* targets named by the repository */
		return;
	}
	j->fetch = FETCH_DONE;
	/* Ending the last target frees j: decide now, never read j after. */
	none = j->ntargets == 0;
	/* Parked targets start now (or end, when canceled meanwhile); a
	 * placeholder still here was not planned (the job was canceled). */
	for (struct starget *st = j->targets, *next; st; st = next) {
		next = st->next;
		if (st->started && !st->placeholder)
			continue;
		if (j->cancel)
			end_target(st, TARGET_CANCELED, -1, "canceled before it "
			    "started", NULL, 0);
		else if (st->placeholder)
			end_target(st, TARGET_FAILED, -1, "the repository's "
			    "targets were not planned", NULL, 0);
		else
			launch(st);
	}
	if (none)
		drop_job_if_idle(j);
	sched_kick(s);
}

static void
on_fetch_timeout(uv_timer_t *h)
{
	struct fetch *f = h->data;

	/* A refused fetch ends here, on the next turn of the loop. */
	if (f->refused != NULL) {
		fetch_done(&f->child);
		return;
	}
	f->timed_out = true;
	child_kill(&f->child, SIGKILL);
}

static struct fetch *
fetch_new(struct sjob *j, bool deps)
{
	struct sched *s = j->s;
	struct fetch *f = xcalloc(1, sizeof *f);

	f->j = j;
	f->deps = deps;
	f->start_ms = util_now_ms();
	j->f = f;
	j->fetch = FETCH_RUNNING;
	s->fetches++;
	uv_timer_init(s->loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, on_fetch_timeout,
	    (uint64_t)s->conf->fetch_timeout * 1000, 0);
	return f;
}

/*
 * The project whose job this is, for what only a project's fetch gets:
 * its credentials and kilnd's ssh agent.  The job must name the
 * project's repository exactly, as it is today: a job queued before the
 * project's repo changed gets nothing.
 */
static const struct conf_project *
fetch_project(const struct sched *s, const struct job *job)
{
	const struct conf_project *p;

	if (job->project == NULL)
		return NULL;
	p = conf_project_by_name(s->conf, job->project);
	if (p == NULL || strcmp(p->repo, job->repo) != 0)
		return NULL;
	return p;
}

void
start_fetch(struct sjob *j)
{
	struct sched *s = j->s;
	const struct conf_project *p = fetch_project(s, j->job);
	const char *agent = getenv("SSH_AUTH_SOCK");
	struct fetch *f;
	struct creds *cr = NULL;
	char key[33], *mirror, *mirrors, why[600];
	char *home = getenv("HOME") ? xasprintf("HOME=%s", getenv("HOME")) :
	    xstrdup("HOME=/");
	char *sock = NULL, *text = NULL, *fd_args[2] = { NULL, NULL };
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", home, NULL, NULL };
	char *argv[15];
	size_t len = 0;
	int rc;

	f = fetch_new(j, false);
	/*
	 * Submissions were checked; this is for a job queued before the
	 * configuration changed (allow_local_repos turned off, -d moved).
	 */
	if (validate_local_repo(s->conf->allow_local_repos, s->conf->state_dir,
	    j->job->repo, why, sizeof why) != 0) {
		f->refused = xstrdup(why);
		goto refused;
	}
	/*
	 * The project's credentials, read now so that a rotated file needs
	 * no restart, and handed over on a memfd (child_spawn_args): never
	 * argv, the environment or a log line.
	 */
	if (p != NULL && p->credentials != NULL) {
		if (creds_read_file(&text, &len, p->credentials, why,
		    sizeof why) != 0 ||
		    creds_parse(&cr, text, len, why, sizeof why) != 0) {
			/* Where the operator keeps the file and what is
			 * wrong with it is the operator's business: the
			 * job's readers get the project's name only. */
			log_warn("job %" PRId64 ": project %s: credentials: %s",
			    j->job->id, p->name, why);
			f->refused = xasprintf("project %s: its credentials "
			    "file cannot be used (kilnd's log says why)",
			    p->name);
			goto refused;
		}
		creds_free(cr);
		fd_args[0] = text;
	}
	/*
	 * kilnd's ssh agent signs for whatever host a fetch names: only a
	 * project's repository, which the operator chose, gets it, never a
	 * URL a client submitted.
	 */
	if (p != NULL && strncmp(j->job->repo, "ssh://", 6) == 0 &&
	    agent != NULL && agent[0] == '/') {
		sock = xasprintf("SSH_AUTH_SOCK=%s", agent);
		env[2] = sock;
	}

	repo_key(key, j->job->repo);
	mirrors = state_path(s, "mirrors");
	mirror = xasprintf("%s/%s.git", mirrors, key);
	util_mkdir_p(mirrors, 0750);
	argv[0] = s->worker;
	argv[1] = "fetch";
	argv[2] = "--mirror";
	argv[3] = mirror;
	argv[4] = "--url";
	argv[5] = j->job->repo;
	argv[6] = "--ref";
	/* A job whose ref was resolved before a restart keeps its commit. */
	argv[7] = j->job->commit ? j->job->commit : j->job->ref;
	/* The job's ref names the tag or branch of version stamping. */
	argv[8] = "--job-ref";
	argv[9] = j->job->ref;
	/* A local URL never shows the fetch anything of the state dir. */
	argv[10] = "--keep-out";
	argv[11] = s->conf->state_dir;
	argv[12] = NULL;
	if (text != NULL) {
		/* The memfd is the child's fd 3, after its stdout and stderr. */
		argv[12] = "--credentials-fd";
		argv[13] = "3";
		argv[14] = NULL;
	}
	rc = child_spawn_args(&f->child, s->loop, argv, env, 2,
	    text != NULL ? fd_args : NULL, fetch_data, fetch_done, f);
	if (rc != 0) {
		sbuf_adds(&f->err, "cannot start kiln-worker: ");
		sbuf_adds(&f->err, uv_strerror(rc));
	}
	log_debug("job %" PRId64 ": fetching %s %s%s", j->job->id,
	    j->job->repo, argv[7], text != NULL ? " with the project's "
	    "credentials" : "");
	free(mirror);
	free(mirrors);
	goto out;
refused:
	/* Ends through fetch_done, as a failed fetch, on the next turn. */
	uv_timer_start(&f->timer, on_fetch_timeout, 0, 0);
out:
	creds_text_free(text, len);
	free(sock);
	free(home);
}

/*
 * The deps step: kiln's own `go mod download`, once per job, in a build
 * sandbox with the network and the farm's module cache writable; builds
 * then find every module there, offline and read-only.
 */
static void
start_deps(struct sjob *j)
{
	struct sched *s = j->s;
	const struct kiln_config *conf = s->conf;
	struct recipe_plan plan = { 0 };
	struct recipe_ctx ctx;
	struct fetch *f;
	char key[33], why[256], *dir, *modcache;
	char **argv;
	int rc;

	recipe_ctx_of(&ctx, j);
	recipe_deps_plan(&plan, &ctx, conf, j->job->project ?
	    conf_project_by_name(conf, j->job->project) : NULL, why,
	    sizeof why);
	repo_key(key, j->job->repo);
	dir = state_path(s, "work/%" PRId64, j->job->id);
	modcache = state_path(s, "gomod-%s", trust_word(j));
	util_mkdir_p(dir, 0750);
	util_mkdir_p(modcache, 0750);
	f = fetch_new(j, true);
	f->root = xasprintf("%s/deps.%" PRId64, dir, util_now_ms());
	{
		char *mirror = state_path(s, "mirrors/%s.git", key);
		/* The host's own platform: nothing is built. */
		/*
		 * The host's network, unlike a network = yes build (slirp4netns,
		 * none of the host's addresses): it runs only kiln's own `go
		 * mod download`, which must reach the module proxy wherever
		 * the operator runs it, on the host's loopback too.
		 */
		const char *extra[] = { "--modcache", modcache, "--modcache-rw",
		    "--host-network", NULL };

		argv = worker_build_argv(s, mirror, j->job->commit, f->root,
		    "linux/amd64", conf->fetch_timeout, extra, &plan);
		free(mirror);
	}
	rc = spawn_worker_build(s, &f->child, argv, fetch_data, fetch_done,
	    f);
	if (rc != 0) {
		sbuf_adds(&f->err, "cannot start kiln-worker: ");
		sbuf_adds(&f->err, uv_strerror(rc));
	} else
		log_info("job %" PRId64 ": deps: go mod download with %s",
		    j->job->id, j->plan.go_version);
	argv_free(argv);
	free(dir);
	free(modcache);
	recipe_plan_free(&plan);
}
