/* api_env's build hooks: each calls the scheduler it was given. */
#include "config.h"

#include "kilnd-env.h"

static void
env_cancel(void *ctx, int64_t job_id)
{
	sched_cancel(ctx, job_id);
}

static int
env_log_open(void *ctx, int64_t job_id, const char *target, int *fd)
{
	return sched_log_open(ctx, job_id, target, fd);
}

static int
env_log_marks_open(void *ctx, int64_t job_id, const char *target, int *fd)
{
	return sched_log_marks_open(ctx, job_id, target, fd);
}

static bool
env_log_live(void *ctx, int64_t job_id, const char *target)
{
	return sched_log_live(ctx, job_id, target);
}

static void *
env_log_watch(void *ctx, int64_t job_id, const char *target,
    void (*wake)(void *), void *data)
{
	return sched_log_watch(ctx, job_id, target, wake, data);
}

static void
env_log_unwatch(void *ctx, void *handle)
{
	sched_log_unwatch(ctx, handle);
}

static void
env_pause(void *ctx, bool paused)
{
	sched_pause(ctx, paused);
}

static bool
env_paused(void *ctx)
{
	return sched_paused(ctx);
}

static unsigned
env_running(void *ctx)
{
	return sched_running(ctx);
}

void
kilnd_env_builds(struct api_env *env, struct sched *s)
{
	env->cancel = env_cancel;
	env->log_open = env_log_open;
	env->log_marks_open = env_log_marks_open;
	env->log_live = env_log_live;
	env->log_watch = env_log_watch;
	env->log_unwatch = env_log_unwatch;
	env->pause = env_pause;
	env->paused = env_paused;
	env->running = env_running;
	env->build_ctx = s;
}
