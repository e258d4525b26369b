/*
 * daemon/child.c: options handed to a child through a memfd (what kilnd
 * gives kiln-worker --config-fd), argv[0] reduced to the program's name,
 * and on_done running exactly once even when the memfd cannot be made.
 * Each test runs a real /bin/sh on a real loop and ends with
 * uv_loop_close() == 0.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <sys/resource.h>

#include <uv.h>

#include "child.h"
#include "sbuf.h"
#include "unit.h"

struct run {
	struct sbuf out;	/* the child's stdout */
	int ndone;
};

static void
on_data(struct child *c, int fd, const char *buf, size_t n)
{
	struct run *r = c->data;

	if (fd == 1)
		sbuf_add(&r->out, buf, n);
}

static void
on_done(struct child *c)
{
	struct run *r = c->data;

	r->ndone++;
}

/* How many of our own fds are a memfd of child.c: none once spawned. */
static int
our_memfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], link[300];
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL) {
		ssize_t len;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		len = readlink(path, link, sizeof link - 1);
		if (len > 0) {
			link[len] = '\0';
			if (strstr(link, "memfd:kiln-args") != NULL)
				n++;
		}
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static void
args_arrive_on_the_fd_after_the_pipes(void)
{
	/* $$'s cmdline shows what the child got as argv; fd 3 the options. */
	char *argv[] = { "/bin/sh", "-c",
	    "tr '\\0' '|' </proc/$$/cmdline; echo; tr '\\0' '|' <&3", NULL };
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	char *opts[] = { "--root", "/state/work/1 with space", "",
	    "--env", "A=b\nc", NULL };
	struct child c;
	struct run r = { { 0 }, 0 };
	uv_loop_t loop;
	char *out;

	uv_loop_init(&loop);
	CHECK_INT(child_spawn_args(&c, &loop, argv, env, 2, opts, on_data,
	    on_done, &r), 0);
	CHECK_INT(our_memfds(), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(r.ndone, 1);
	CHECK(c.spawned);
	CHECK_INT(c.exit_status, 0);
	out = sbuf_steal(&r.out, NULL);
	/* argv[0] is "sh", not /bin/sh; every option whole, the empty one
	 * and the newline included, each ended by its NUL. */
	CHECK_STR(out, "sh|-c|tr '\\0' '|' </proc/$$/cmdline; echo; "
	    "tr '\\0' '|' <&3|\n--root|/state/work/1 with space||--env|A=b\nc|");
	free(out);
	CHECK_INT(uv_loop_close(&loop), 0);
}

static void
without_args_no_fd_is_passed(void)
{
	/* Not "is fd 3 open": make(1) may pass its jobserver fds down. */
	char *argv[] = { "/bin/sh", "-c", "case $(readlink /proc/$$/fd/3 "
	    "2>/dev/null) in *kiln-args*) echo passed;; *) echo none;; esac",
	    NULL };
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	struct child c;
	struct run r = { { 0 }, 0 };
	uv_loop_t loop;
	char *out;

	uv_loop_init(&loop);
	CHECK_INT(child_spawn(&c, &loop, argv, env, 2, on_data, on_done, &r),
	    0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(r.ndone, 1);
	out = sbuf_steal(&r.out, NULL);
	CHECK_STR(out, "none\n");
	free(out);
	CHECK_INT(uv_loop_close(&loop), 0);
}

static void
no_memfd_fails_like_a_failed_spawn(void)
{
	char *argv[] = { "/bin/true", NULL };
	char *env[] = { NULL };
	char *opts[] = { "--x", NULL };
	struct child c;
	struct run r = { { 0 }, 0 };
	struct rlimit old, low;
	uv_loop_t loop;
	int rc, fd;

	/* Every fd up to the limit in use: memfd_create gets EMFILE. */
	uv_loop_init(&loop);
	CHECK_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
	fd = dup(0);
	low = old;
	low.rlim_cur = (rlim_t)fd;
	close(fd);
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
	rc = child_spawn_args(&c, &loop, argv, env, 2, opts, on_data, on_done,
	    &r);
	/* The pipes are initialized before the memfd; restore at once. */
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
	CHECK_INT(rc, -EMFILE);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(r.ndone, 1);
	CHECK(!c.spawned);
	CHECK_INT(c.exit_status, -1);
	sbuf_free(&r.out);
	CHECK_INT(uv_loop_close(&loop), 0);
}

UNIT_MAIN(
	TEST(args_arrive_on_the_fd_after_the_pipes),
	TEST(without_args_no_fd_is_passed),
	TEST(no_memfd_fails_like_a_failed_spawn),
)
