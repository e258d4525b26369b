#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

static void maybe_done(struct child *c);

static void
on_handle_closed(uv_handle_t *h)
{
	struct child *c = h->data;

	if (--c->open_handles == 0 && c->on_done != NULL)
		c->on_done(c);
}

static void
close_all(struct child *c)
{
	uv_close((uv_handle_t *)&c->proc, on_handle_closed);
	if (c->spawned)
		uv_close((uv_handle_t *)&c->linger, on_handle_closed);
	for (int i = 0; i < c->npipes; i++)
		uv_close((uv_handle_t *)&c->pipes[i], on_handle_closed);
}

static void
maybe_done(struct child *c)
{
	if (c->exited && c->open_pipes == 0)
		close_all(c);
}

/*
 * Reaped a while ago and a pipe is still open: a descendant holds it (a
 * build tree left frozen by a kiln-worker killed while it tore the tree
 * down, on cgroup v1).  What the child wrote was read long ago; stop
 * reading, or the child never ends and neither does kilnd's stop.
 */
static void
on_linger(uv_timer_t *t)
{
	struct child *c = t->data;

	log_warn("child %d exited %u s ago but a process it left still holds "
	    "its output; no longer waiting for it", c->proc.pid,
	    CHILD_LINGER_MS / 1000);
	for (int i = 0; i < c->npipes; i++) {
		/* At EOF already, or paused: a paused pipe is its reader's,
		 * which resumes it before it waits for the end. */
		if (!uv_is_active((uv_handle_t *)&c->pipes[i]))
			continue;
		uv_read_stop((uv_stream_t *)&c->pipes[i]);
		c->open_pipes--;
	}
	maybe_done(c);
}

static void
on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct child *c = p->data;

	c->exited = true;
	c->exit_status = status;
	c->term_signal = sig;
	if (c->open_pipes > 0)
		uv_timer_start(&c->linger, on_linger, CHILD_LINGER_MS, 0);
	maybe_done(c);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[65536];	/* the loop thread reads one at a time */

	(void)h;
	(void)suggested;
	buf->base = slab;
	buf->len = sizeof slab;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct child *c = s->data;
	int fd = 1 + (int)((uv_pipe_t *)s - c->pipes);

	if (n > 0) {
		c->on_data(c, fd, buf->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	/* EOF or a read error: this pipe is done either way. */
	uv_read_stop(s);
	c->open_pipes--;
	maybe_done(c);
}

void
child_pause(struct child *c, int fd)
{
	uv_stream_t *s;

	if (fd < 1 || fd > c->npipes)
		return;
	s = (uv_stream_t *)&c->pipes[fd - 1];
	if (!uv_is_active((uv_handle_t *)s))
		return;
	uv_read_stop(s);
	c->paused |= 1u << (fd - 1);
}

void
child_resume(struct child *c, int fd)
{
	if (fd < 1 || fd > c->npipes || !(c->paused & (1u << (fd - 1))))
		return;
	c->paused &= ~(1u << (fd - 1));
	uv_read_start((uv_stream_t *)&c->pipes[fd - 1], on_alloc, on_read);
}

/*
 * A memfd holding args, each ended by a NUL byte, read from offset 0.  A
 * memfd and not a pipe: it is written in full before the spawn, so the
 * loop never waits for the child to read.  Close-on-exec here; libuv
 * clears that on the child's copy only.  Returns it, or -errno.
 */
static int
args_memfd(char *const *args)
{
	int fd, err;

	fd = memfd_create("kiln-args", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; args[i] != NULL; i++) {
		const char *p = args[i];
		size_t left = strlen(p) + 1;	/* with its NUL */

		while (left > 0) {
			ssize_t n = write(fd, p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = errno;
				close(fd);
				return -err;
			}
			p += n;
			left -= (size_t)n;
		}
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

int
child_spawn(struct child *c, uv_loop_t *loop, char *const *argv,
    char *const *env, int npipes, child_data_cb on_data,
    child_done_cb on_done, void *data)
{
	return child_spawn_args(c, loop, argv, env, npipes, NULL, on_data,
	    on_done, data);
}

int
child_spawn_args(struct child *c, uv_loop_t *loop, char *const *argv,
    char *const *env, int npipes, char *const *fd_args,
    child_data_cb on_data, child_done_cb on_done, void *data)
{
	uv_process_options_t opt;
	uv_stdio_container_t stdio[5];
	char **args = NULL;
	const char *base;
	size_t n;
	int rc, afd = -1;

	memset(c, 0, sizeof *c);
	c->npipes = npipes;
	c->on_data = on_data;
	c->on_done = on_done;
	c->data = data;
	for (int i = 0; i < npipes; i++) {
		uv_pipe_init(loop, &c->pipes[i], 0);
		c->pipes[i].data = c;
	}
	if (fd_args != NULL && (afd = args_memfd(fd_args)) < 0) {
		/* Not spawned: on_done still runs, once the pipes are closed. */
		c->exited = true;
		c->exit_status = -1;
		c->open_handles = npipes;
		for (int i = 0; i < npipes; i++)
			uv_close((uv_handle_t *)&c->pipes[i], on_handle_closed);
		return afd;
	}
	memset(&opt, 0, sizeof opt);
	memset(stdio, 0, sizeof stdio);
	stdio[0].flags = UV_IGNORE;	/* /dev/null */
	for (int i = 0; i < npipes; i++) {
		stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
		stdio[i + 1].data.stream = (uv_stream_t *)&c->pipes[i];
	}
	if (afd >= 0) {
		stdio[npipes + 1].flags = UV_INHERIT_FD;
		stdio[npipes + 1].data.fd = afd;
	}
	/*
	 * The child's argv[0] is the program's name, not its path: a worker's
	 * command line is readable from inside the build sandbox (its pid 1
	 * is a clone of the worker), and where kiln is installed is the
	 * host's business.
	 */
	for (n = 0; argv[n] != NULL; n++)
		;
	args = xcalloc(n + 1, sizeof *args);
	memcpy(args, argv, n * sizeof *args);
	base = strrchr(argv[0], '/');
	if (base != NULL && base[1] != '\0')
		args[0] = (char *)base + 1;
	opt.file = argv[0];
	opt.args = args;
	opt.env = (char **)env;
	opt.stdio = stdio;
	opt.stdio_count = npipes + 1 + (afd >= 0);
	opt.exit_cb = on_exit_cb;
	c->proc.data = c;
	rc = uv_spawn(loop, &c->proc, &opt);
	free(args);
	/* The child has its copy (or none): ours goes either way. */
	if (afd >= 0)
		close(afd);
	if (rc != 0) {
		/* libuv wants the handles closed even after a failed spawn:
		 * on_done still runs once they are. */
		c->exited = true;
		c->exit_status = -1;
		c->open_handles = 1 + npipes;
		close_all(c);
		return rc;
	}
	c->spawned = true;
	uv_timer_init(loop, &c->linger);
	c->linger.data = c;
	c->open_handles = 2 + npipes;
	c->open_pipes = npipes;
	for (int i = 0; i < npipes; i++)
		uv_read_start((uv_stream_t *)&c->pipes[i], on_alloc, on_read);
	return 0;
}

void
child_kill(struct child *c, int sig)
{
	if (c->spawned && !c->exited)
		uv_process_kill(&c->proc, sig);
}
