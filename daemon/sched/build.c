/*
 * One `kiln-worker build` per target: its options (on a memfd, never on
 * its command line), its output streamed into the target's log, its
 * status read back and never trusted, a backstop on its timeout, and
 * the end of a target however it ended: its result recorded, its
 * followers woken, its slot freed for the next one.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "child.h"
#include "log.h"
#include "metrics.h"
#include "outputs.h"
#include "recipe.h"
#include "sbuf.h"
#include "sched-int.h"
#include "utf8.h"
#include "util.h"
#include "xmalloc.h"

#define BACKSTOP_S 30

/* --- ending a target -------------------------------------------------------- */

/*
 * kiln-worker could not be started (missing, not executable, being
 * replaced): the farm's fault, not the job's.  Its targets go back to
 * the queue, and no build starts for a few seconds.
 */
void
worker_unavailable(struct sched *s, const char *why)
{
	if (s->backoff_until <= util_now_ms())
		log_error("cannot start %s%s%s: targets go back to the queue; "
		    "trying again in 5 s", s->worker, why && *why ? ": " : "",
		    why && *why ? why : "");
	s->backoff_until = util_now_ms() + 5000;
}

/* After a target's memory is gone: stop if stopping, else fill the slot. */
static void
after_target(struct sched *s)
{
	maybe_stopped(s);
	maybe_drained(s);
	sched_kick(s);
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct starget *st = h->data;
	struct sched *s = st->s;

	free_target(st);
	after_target(s);
}

void
end_target(struct starget *st, enum target_state state, int exit_status,
    const char *error, const struct artifact *arts, size_t narts)
{
	struct sched *s = st->s;
	struct watcher *w, *next;
	struct ended *e = xcalloc(1, sizeof *e);
	char shown[2048];
	const char *user_error = NULL;

	/* The operator's log keeps `error` whole; users get it without
	 * paths of the state directory, as valid UTF-8 cut between
	 * characters (it quotes workers, builds and remote servers). */
	if (error != NULL) {
		snprintf(shown, sizeof shown, "%s", error);
		hide_state_dir(s, shown, sizeof shown);
		utf8_fix(shown, sizeof shown);
		user_error = shown;
	}
	e->s = s;
	e->job_id = st->claim.job_id;
	e->target_id = st->claim.target_id;
	e->attempt = st->claim.attempt;
	e->superseded = st->superseded;
	snprintf(e->target, sizeof e->target, "%s", st->t.name);
	if (st->superseded)
		log_line(st, "%s: given to another run; this run's result is "
		    "discarded", st->t.name);
	else if (s->stopping || st->release)
		log_line(st, "%s%s goes back to the queue", s->stopping ?
		    "kilnd is stopping: " : "", st->t.name);
	else {
		log_line(st, "%s: %s%s%s (%.1f s)", st->t.name,
		    target_state_name(state), error ? ": " : "",
		    error ? user_error : "",
		    st->start_ms ? (util_now_ms() - st->start_ms) / 1000.0 : 0);
		log_info("job %" PRId64 " %s: %s%s%s", st->claim.job_id,
		    st->t.name, target_state_name(state), error ? ": " : "",
		    error ? error : "");
		if (st->started && st->start_ms > 0)
			metrics_build(st->t.name, target_state_name(state),
			    (util_now_ms() - st->start_ms) / 1000.0);
	}
	/* Its followers wait for the outcome to be durable (result.c):
	 * a client whose followed log ended then reads the target ended,
	 * with its artifacts. */
	st->ended = true;
	for (w = st->watchers; w; w = next) {
		next = w->next;
		w->t = NULL;
		w->e = e;
		w->next = e->watchers;
		e->watchers = w;
	}
	st->watchers = NULL;
	if (s->stopping || st->release) {
		/* Not the build's fault: it runs again at the next start. */
		result_write(e, NULL);
	} else {
		struct queue_outcome o = {
			.state = state, .exit_status = exit_status,
			.error = user_error, .arts = arts, .narts = narts,
			.cache_key = st->cache_key, .cached = st->cached,
			.cached_from = st->cached_from,
		};
		result_write(e, &o);
	}
	if (st->timer_init) {
		uv_timer_stop(&st->timer);
		st->timer.data = st;
		uv_close((uv_handle_t *)&st->timer, on_timer_closed);
	} else {
		free_target(st);
		after_target(s);
	}
}

void
superseded_result(int64_t target_id, int attempt)
{
	log_warn("target %" PRId64 " attempt %d was given to another run; its "
	    "result is discarded", target_id, attempt);
	metrics_superseded();
}

/*
 * What a verifying rebuild (kiln-worker build --rebuild) showed, from
 * the status line: into the target's log and the queue, before the
 * target's end is written (writes complete in call order).
 */
static void
record_verified(struct starget *st, json_t *res)
{
	json_t *r = json_object_get(res, "reproducible");
	json_t *d = json_object_get(res, "differences");
	json_t *m = json_object_get(res, "more_differences");
	json_t *v;
	char *text;

	if (!json_is_boolean(r))
		return;
	v = json_pack("{s:O}", "reproducible", r);
	if (json_is_false(r)) {
		json_t *list = json_array(), *e;
		struct sbuf line = { 0 };
		size_t i;

		/* The worker's own words, bounded: strings only. */
		json_array_foreach(d, i, e)
			if (json_is_string(e) && i < 100) {
				json_array_append(list, e);
				sbuf_adds(&line, i ? ", " : "");
				sbuf_adds(&line, json_string_value(e));
			}
		json_object_set_new(v, "differences", list);
		if (json_is_integer(m) && json_integer_value(m) > 0)
			json_object_set(v, "more_differences", m);
		sbuf_addc(&line, '\0');
		log_line(st, "verify: NOT reproducible: a second build in a "
		    "different sandbox differs in: %s", line.p ? line.p : "");
		sbuf_free(&line);
	} else
		log_line(st, "verify: reproducible: a second build in a "
		    "different sandbox made the same files");
	text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(v);
	if (text != NULL)
		queue_set_verified(st->s->q, st->claim.target_id,
		    st->claim.attempt, text, NULL, NULL);
	free(text);
}

void
build_done(struct child *c)
{
	struct starget *st = container_of(c, struct starget, child);
	enum target_state state = TARGET_FAILED;
	char why[512] = "";
	int code = -1;
	json_t *res = NULL;

	if (st->status.len > 0 && !st->status_overflow)
		res = json_loads(st->status.p, JSON_DISABLE_EOF_CHECK, NULL);
	const char *status = json_string_value(json_object_get(res, "status"));
	if (status != NULL && strcmp(status, "exited") == 0) {
		code = (int)json_integer_value(json_object_get(res, "code"));
		if (code == 0)
			state = TARGET_SUCCEEDED;
		else
			snprintf(why, sizeof why, "the build exited with status "
			    "%d", code);
	} else if (status != NULL && strcmp(status, "signaled") == 0) {
		snprintf(why, sizeof why, "the build was killed by signal %d",
		    (int)json_integer_value(json_object_get(res, "signal")));
	} else if (status != NULL && strcmp(status, "timed_out") == 0) {
		state = TARGET_TIMED_OUT;
		snprintf(why, sizeof why, "the build ran past its timeout");
	} else if (status != NULL && strcmp(status, "error") == 0) {
		snprintf(why, sizeof why, "%s", json_string_value(
		    json_object_get(res, "error")) ?: "kiln-worker failed");
	} else if (st->timed_out) {
		state = TARGET_TIMED_OUT;
		snprintf(why, sizeof why, "the build ran past its timeout "
		    "(kiln-worker killed)");
	} else if (st->status_overflow) {
		snprintf(why, sizeof why, "kiln-worker's status line is longer "
		    "than the %d bytes kilnd reads", STATUS_MAX);
	} else if (c->exit_status == -1 && !c->spawned) {
		/* Not the build's fault: back to the queue. */
		worker_unavailable(st->s, NULL);
		st->release = true;
		/* Where it is installed is for kilnd's log, not the job's. */
		snprintf(why, sizeof why, "cannot start kiln-worker");
	} else
		snprintf(why, sizeof why, "kiln-worker ended without a result "
		    "(exit %lld, signal %d)", (long long)c->exit_status,
		    c->term_signal);
	if (state == TARGET_SUCCEEDED && !st->superseded && !st->cancel)
		record_verified(st, res);
	if (json_is_object(json_object_get(res, "times"))) {
		/* The worker's own figures: for the operator, never trusted. */
		char *times = json_dumps(json_object_get(res, "times"),
		    JSON_COMPACT);
		log_debug("job %" PRId64 " %s: kiln-worker times (ms): %s",
		    st->claim.job_id, st->t.name, times ? times : "");
		free(times);
	}
	json_decref(res);
	if (st->superseded) {
		/* Whatever it built is another run's to store. */
		state = TARGET_CANCELED;
		snprintf(why, sizeof why, "given to another run");
	} else if (st->cancel && state != TARGET_SUCCEEDED) {
		state = TARGET_CANCELED;
		snprintf(why, sizeof why, "canceled while it ran");
	}
	if (state == TARGET_SUCCEEDED) {
		if (st->packaging)
			package_done(st, code);
		else
			start_publish(st, code);
		return;
	}
	/* The tree of a failed build is of no further use. */
	if (st->root != NULL)
		remove_tree(st->s, st->root);
	end_target(st, state, code, why[0] ? why : NULL, NULL, 0);
}

void
build_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct starget *st = container_of(c, struct starget, child);

	if (fd == 3) {
		/* Nothing after bytes that did not fit: a line with a hole
		 * could still parse. */
		if (!st->status_overflow && st->status.len + n <= STATUS_MAX)
			sbuf_add(&st->status, buf, n);
		else
			st->status_overflow = true;
		return;
	}
	log_write(st, buf, n);
}

void
on_backstop(uv_timer_t *h)
{
	struct starget *st = h->data;

	if (st->cancel) {
		/* The grace after SIGTERM is over. */
		child_kill(&st->child, SIGKILL);
		return;
	}
	/* kiln-worker enforces the timeout itself; this is for a worker
	 * that does not. */
	log_warn("job %" PRId64 " %s: kiln-worker outlived its timeout; "
	    "killing it", st->claim.job_id, st->t.name);
	st->timed_out = true;
	child_kill(&st->child, SIGKILL);
}

unsigned
timeout_of(struct starget *st)
{
	unsigned t = st->s->conf->build_timeout;

	/* A job may lower the farm's limit, never raise it. */
	if (st->j->job->timeout > 0 && (unsigned)st->j->job->timeout < t)
		t = (unsigned)st->j->job->timeout;
	return t;
}

void
fail_now(struct starget *st, const char *why)
{
	end_target(st, TARGET_FAILED, -1, why, NULL, 0);
}

/*
 * kiln-worker build's options, for a build and for the deps step: the
 * work (mirror, commit, root, target, timeout), the farm's limits,
 * `extra` options (NULL-terminated), the plan's variables and program.
 * They reach the worker through --config-fd (spawn_worker_build), never
 * its command line.
 */
char **
worker_build_argv(struct sched *s, const char *mirror, const char *commit,
    const char *root, const char *target, unsigned timeout,
    const char *const *extra, const struct recipe_plan *plan)
{
	const struct kiln_config *conf = s->conf;
	size_t n = 0, cap = 64;
	char **argv = xcalloc(cap, sizeof *argv);

#define ARG(x) do { \
	if (n + 2 > cap) { cap *= 2; argv = xreallocarray(argv, cap, sizeof *argv); } \
	argv[n++] = (x); argv[n] = NULL; \
} while (0)
	ARG(xstrdup("--mirror")); ARG(xstrdup(mirror));
	ARG(xstrdup("--commit")); ARG(xstrdup(commit));
	ARG(xstrdup("--root")); ARG(xstrdup(root));
	ARG(xstrdup("--target")); ARG(xstrdup(target));
	ARG(xstrdup("--timeout")); ARG(xasprintf("%u", timeout));
	for (size_t i = 0; extra[i]; i++)
		ARG(xstrdup(extra[i]));
	ARG(xstrdup("--memory")); ARG(xasprintf("%zu", conf->build_memory));
	ARG(xstrdup("--pids")); ARG(xasprintf("%u", conf->build_pids));
	ARG(xstrdup("--file-size"));
	ARG(xasprintf("%zu", conf->build_file_size));
	ARG(xstrdup("--build-uid")); ARG(xasprintf("%u", conf->build_uid));
	if (conf->allow_same_uid_builds)
		ARG(xstrdup("--allow-same-uid"));
	ARG(xstrdup("--status-fd")); ARG(xstrdup("3"));
	/* Where the time went, for the operator's log (build_done). */
	ARG(xstrdup("--times"));
	for (size_t i = 0; plan->env[i]; i++) {
		ARG(xstrdup("--env"));
		ARG(xstrdup(plan->env[i]));
	}
	ARG(xstrdup("--"));
	for (size_t i = 0; plan->argv[i]; i++)
		ARG(xstrdup(plan->argv[i]));
#undef ARG
	return argv;
}

void
argv_free(char **argv)
{
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/*
 * kiln-worker build with its options (worker_build_argv) in a memfd on
 * its fd 4 (after stdout, stderr and the status pipe), read through
 * --config-fd.  The build's pid 1 is a clone of the worker and the build
 * can read its /proc/1/cmdline: that shows "kiln-worker build
 * --config-fd 4" and nothing of the state directory, the caches or the
 * build's variables.  The environment is PATH alone.
 */
int
spawn_worker_build(struct sched *s, struct child *c, char **opts,
    child_data_cb on_data, child_done_cb on_done, void *data)
{
	char *argv[] = { s->worker, "build", "--config-fd", "4", NULL };
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };

	return child_spawn_args(c, s->loop, argv, env, 3, opts, on_data,
	    on_done, data);
}

/* What a build's templates and toolchain come from. */
void
recipe_ctx_of(struct recipe_ctx *ctx, const struct sjob *j)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->repo = j->job->repo;
	ctx->commit = j->job->commit;
	ctx->commit_time = j->commit_time;
	ctx->tag = j->plan.tag;
	ctx->branch = j->plan.branch;
	ctx->go_bindir = j->plan.go_bindir;
	ctx->vendored = j->plan.vendored;
}

/* The plan's notes, then what the deps step printed, line by line. */
void
log_plan(struct starget *st)
{
	const struct sjob *j = st->j;
	const char *p, *end, *nl;

	if (j->plan.go_version != NULL)
		log_line(st, "toolchain %s (%s)", j->plan.go_version,
		    j->plan.go_path);
	if (j->plan.tag != NULL)
		log_line(st, "version from tag %s", j->plan.tag);
	for (size_t i = 0; i < j->plan.nnotes; i++)
		log_line(st, "%s", j->plan.notes[i]);
	if (j->plan.deps) {
		log_line(st, "deps: $ go mod download (once for the job)");
		p = j->deps_log.p ? j->deps_log.p : "";
		end = p + j->deps_log.len;
		for (; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				nl = end;
			if (nl > p)
				log_line(st, "deps: %.*s", (int)(nl - p), p);
		}
	}
}

/* The job JSON says which toolchain built each target. */
void
record_toolchain(struct starget *st)
{
	const char *tc = st->j->plan.go_version ? st->j->plan.go_version :
	    st->toolid;

	/* Shown in the job; a failure to store it is logged by the queue
	 * and changes nothing about the build. */
	if (tc != NULL)
		queue_set_toolchain(st->s->q, st->claim.target_id, tc, NULL,
		    NULL);
}

/*
 * What every run of a target has: a fresh work root (the worker refuses
 * an old one), the job's work and log directories, and the target's
 * log, which starts with the run's first line.  0, or -1 with why (the
 * target is to fail).
 */
int
target_run_prepare(struct starget *st, char *why, size_t whysize)
{
	struct sched *s = st->s;
	struct sjob *j = st->j;
	char *dir, *lp, *logdir;
	int rc;

	dir = state_path(s, "work/%" PRId64, j->job->id);
	lp = log_path(s, j->job->id, st->url_name);
	logdir = state_path(s, "logs/%" PRId64, j->job->id);
	st->root = xasprintf("%s/%s.%d.%" PRId64, dir, st->url_name,
	    st->claim.attempt, util_now_ms());
	if ((rc = util_mkdir_p(dir, 0750)) != 0 ||
	    (rc = util_mkdir_p(logdir, 0750)) != 0) {
		/* The paths are for the operator, not for users. */
		log_error("job %" PRId64 ": cannot create directories under "
		    "%s: %s", j->job->id, s->conf->state_dir, strerror(-rc));
		snprintf(why, whysize, "kilnd cannot create its work "
		    "directories: %s", strerror(-rc));
	} else if ((rc = log_create(st, lp)) != 0) {
		log_error("job %" PRId64 ": cannot create log %s: %s",
		    j->job->id, lp, strerror(-rc));
		snprintf(why, whysize, "kilnd cannot create the target's log: "
		    "%s", strerror(-rc));
	} else
		log_line(st, "job %" PRId64 " target %s attempt %d, commit %s",
		    j->job->id, st->t.name, st->claim.attempt, j->job->commit);
	free(dir);
	free(lp);
	free(logdir);
	return rc == 0 ? 0 : -1;
}

/* The backstop past the worker's own timeout, and the log's line. */
void
target_run_started(struct starget *st, int rc, const char *what)
{
	struct sched *s = st->s;

	if (rc != 0) {
		log_error("job %" PRId64 " %s: cannot spawn %s: %s",
		    st->j->job->id, st->t.name, s->worker, uv_strerror(rc));
		return;
	}
	uv_timer_init(s->loop, &st->timer);
	st->timer.data = st;
	st->timer_init = true;
	uv_timer_start(&st->timer, on_backstop,
	    ((uint64_t)timeout_of(st) + BACKSTOP_S) * 1000, 0);
	log_info("job %" PRId64 " %s: %s (attempt %d)", st->j->job->id,
	    st->t.name, what, st->claim.attempt);
}

void
spawn_build(struct starget *st)
{
	struct sched *s = st->s;
	struct sjob *j = st->j;
	const struct kiln_config *conf = s->conf;
	struct recipe_plan plan = { 0 };
	char **argv = NULL, key[33], why[256], *mirror, *cache;
	int rc;

	struct recipe_ctx ctx;

	recipe_ctx_of(&ctx, j);
	if (recipe_plan(&plan, j->recipe, &st->t, &ctx, conf, why,
	    sizeof why) != 0) {
		fail_now(st, why);
		return;
	}
	repo_key(key, j->job->repo);
	mirror = state_path(s, "mirrors/%s.git", key);
	cache = state_path(s, "cache/%s.%s", key, trust_word(j));
	if ((rc = util_mkdir_p(cache, 0750)) != 0) {
		log_error("job %" PRId64 ": cannot create %s: %s", j->job->id,
		    cache, strerror(-rc));
		snprintf(why, sizeof why, "kilnd cannot create its work "
		    "directories: %s", strerror(-rc));
	}
	if (rc != 0 || target_run_prepare(st, why, sizeof why) != 0) {
		free(mirror); free(cache);
		recipe_plan_free(&plan);
		fail_now(st, why);
		return;
	}
	log_plan(st);
	log_line(st, "$ %s", plan.summary);
	record_toolchain(st);

	{
		char *mc = NULL;
		const char *extra[8];
		size_t e = 0;

		extra[e++] = "--cache";
		extra[e++] = cache;
		if (j->plan.go_version != NULL) {
			mc = state_path(s, "gomod-%s", trust_word(j));
			util_mkdir_p(mc, 0750);
			extra[e++] = "--modcache";
			extra[e++] = mc;
		}
		if (j->job->network)
			extra[e++] = "--network";
		if (outputs_verify_rebuild(j->job->outputs))
			extra[e++] = "--rebuild";
		extra[e] = NULL;
		argv = worker_build_argv(s, mirror, j->job->commit, st->root,
		    st->t.name, timeout_of(st), extra, &plan);
		free(mc);
	}
	st->start_ms = util_now_ms();
	st->started = true;
	rc = spawn_worker_build(s, &st->child, argv, build_data, build_done,
	    st);
	target_run_started(st, rc, "building");
	argv_free(argv);
	free(mirror); free(cache);
	recipe_plan_free(&plan);
}
