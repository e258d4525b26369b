/*
 * Shared by sandbox-ns.c and sandbox-fs.c (the build's sandbox) and
 * sandbox-run.c (the fetch's and the checkout's) only: the mount-tree
 * steps both take.  All of them but write_text run in the child, in its
 * new user and mount namespaces.
 */
#ifndef KILN_WORKER_SANDBOX_INT_H
#define KILN_WORKER_SANDBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A bind source, opened with O_PATH before anything is mounted. */
struct bind_src {
	const char *host;	/* path on the host */
	const char *inside;	/* path in the new root */
	bool optional;		/* skip when missing on the host */
	bool writable;
	bool device;		/* a device node: no nodev on its mount */
	int fd;			/* O_PATH, or -1 */
	bool is_dir;
	char *link;		/* a symlink reproduced as such, or NULL */
};

/* Open b->host (O_PATH), or with keep_symlink read the symlink it is. */
int open_src(struct bind_src *b, bool keep_symlink, char *err,
    size_t errsize);
void close_src(struct bind_src *b);
/* Bind b at root + b->inside, whose parent must exist; nosuid, nodev,
 * read-only unless b->writable. */
int bind_at(const char *root, const struct bind_src *b, char *err,
    size_t errsize);
int make_dir(const char *root, const char *path, mode_t mode, char *err,
    size_t errsize);
int make_link(const char *root, const char *path, const char *target,
    char *err, size_t errsize);
/* PR_SET_PDEATHSIG(SIGKILL), and -1 when the worker, which holds the
 * read end of the pipe whose write end is fd, has already exited. */
int tie_to_worker(int fd);
/* Every capability, the bounding and ambient sets included. */
int drop_capabilities(char *err, size_t errsize);
/* Write text to path (opened O_WRONLY | extra); "shown" names it in err. */
int write_text(const char *path, int extra, const char *text,
    const char *shown, char *err, size_t errsize);

struct sandbox_config;
/*
 * The build's new root on a tmpfs, and pivot_root into it (sandbox-fs.c);
 * pid 1 becomes the build user on the way.  report_fd: see tie_to_worker.
 */
int setup_fs(const struct sandbox_config *cfg, int report_fd, char *err,
    size_t errsize);

#endif
