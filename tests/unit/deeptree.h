/*
 * Helpers for the tests of the tree walks (test_util's util_rmtree,
 * test_tree's tree_chown): a very deep tree made fast, and a way to run
 * a walk with a small stack and a few fds, which a recursive walk or one
 * that keeps an fd per level cannot survive at 100,000 levels.
 */
#ifndef KILN_DEEPTREE_H
#define KILN_DEEPTREE_H

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#define DEEP 100000
#define NOBODY 65534

/*
 * top/d/d/.../d, levels deep, with a file "f" every 1000 levels and at
 * the bottom; made with openat, whatever PATH_MAX says.
 */
__attribute__((unused)) static int
make_deep(const char *top, size_t levels)
{
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC), sub, f;

	for (size_t i = 0; fd >= 0 && i <= levels; i++) {
		if (i % 1000 == 0 || i == levels) {
			if ((f = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC,
			    0644)) < 0)
				break;
			close(f);
		}
		if (i == levels) {
			close(fd);
			return 0;
		}
		sub = mkdirat(fd, "d", 0755) == 0 ? openat(fd, "d", O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC) : -1;
		close(fd);
		fd = sub;
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The highest open fd. */
__attribute__((unused)) static int
max_fd(void)
{
	int fd = dup(0), max = fd;

	for (int i = fd + 1; i < fd + 64; i++)
		if (fcntl(i, F_GETFD) != -1)
			max = i;
	close(fd);
	return max;
}

struct bounded_call {
	void (*fn)(void *);
	void *arg;
};

static void *
bounded_main(void *p)
{
	struct bounded_call *c = p;

	c->fn(c->arg);
	return NULL;
}

/*
 * fn(arg) in a thread with a 256 KiB stack while only 8 fds are free
 * above those open now.
 */
__attribute__((unused)) static void
run_bounded(void (*fn)(void *), void *arg)
{
	struct bounded_call c = { fn, arg };
	struct rlimit old, low;
	pthread_attr_t attr;
	pthread_t t;

	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = (rlim_t)max_fd() + 1 + 8;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	CHECK(pthread_create(&t, &attr, bounded_main, &c) == 0);
	pthread_join(t, NULL);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	pthread_attr_destroy(&attr);
}

#endif
