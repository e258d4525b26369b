/*
 * A child process with pipes on its stdout, stderr and (optionally) fd 3,
 * run with uv_spawn.  It is finished only when it is reaped AND every pipe
 * reached EOF, in either order (tmux job.c); then every handle is closed
 * and on_done runs, after which the struct may be freed.  A pipe still
 * open CHILD_LINGER_MS after the reaping is closed all the same: what
 * holds it is not the child (a descendant it left, frozen or escaped),
 * and it must not keep the child, its slot and kilnd's stop waiting.
 */
#ifndef KILN_CHILD_H
#define KILN_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct child;

/* Bytes from the child's fd 1, 2 or 3 (fd is 1, 2 or 3). */
typedef void (*child_data_cb)(struct child *c, int fd, const char *buf,
    size_t n);
typedef void (*child_done_cb)(struct child *c);

struct child {
	uv_process_t proc;
	uv_pipe_t pipes[3];		/* the child's fds 1, 2, 3 */
	uv_timer_t linger;		/* reaped, pipes not at EOF yet */
	int npipes;			/* 2 or 3 */
	int open_pipes;			/* not yet at EOF */
	int open_handles;		/* not yet closed */
	bool exited, spawned;
	unsigned paused;		/* bit fd - 1: reading stopped */
	int64_t exit_status;
	int term_signal;
	child_data_cb on_data;
	child_done_cb on_done;
	void *data;
};

/*
 * Spawn argv[0] (an absolute path) with `env` (NULL-terminated) and
 * npipes (2 or 3) pipes; the child's own argv[0] is the path's last
 * component.  Returns 0, or a negative libuv error.  Either way on_done
 * runs once every handle is closed: only then may c be freed.
 */
int child_spawn(struct child *c, uv_loop_t *loop, char *const *argv,
    char *const *env, int npipes, child_data_cb on_data,
    child_done_cb on_done, void *data);
/*
 * child_spawn, and fd_args (NULL-terminated) for the child to read on its
 * fd npipes + 1 (3 or 4): each string followed by a NUL byte, the
 * format of kiln-worker --config-fd.  A failure to make that fd is
 * returned as -errno, with on_done run as for a failed spawn.
 */
int child_spawn_args(struct child *c, uv_loop_t *loop, char *const *argv,
    char *const *env, int npipes, char *const *fd_args,
    child_data_cb on_data, child_done_cb on_done, void *data);
/* How long the pipes may stay open after the child was reaped. */
#define CHILD_LINGER_MS 5000

/*
 * Stop reading the child's fd (1, 2 or 3) until resumed: a consumer that
 * cannot keep up lets the pipe fill and the child block, instead of
 * buffering without limit.  A pipe paused or already at EOF is left as
 * it is by a pause, a pipe not paused by a resume.  A paused pipe keeps
 * the child from being done: resume it before waiting for on_done.
 */
void child_pause(struct child *c, int fd);
void child_resume(struct child *c, int fd);

/* Send a signal if the child still runs. */
void child_kill(struct child *c, int sig);

#endif
