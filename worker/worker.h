/*
 * kiln-worker: one git fetch into a mirror, or one sandboxed build of one
 * target.  kilnd spawns it with uv_spawn (which has no pre-exec hook), so
 * everything that must happen between fork and exec happens here.
 *
 * The worker's stdout and stderr are the build's: kilnd captures them into
 * the target's log.  Its own messages are few, one line each, prefixed
 * "kiln-worker: ".
 */
#ifndef KILN_WORKER_H
#define KILN_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKER_NAME "kiln-worker"

/* Exit codes shared by both modes. */
#define WORKER_EXIT_FAIL 1	/* fetch failed */
#define WORKER_EXIT_USAGE 2	/* bad command line */
#define WORKER_EXIT_TIMEOUT 124	/* build: wall clock ran out */
#define WORKER_EXIT_ERROR 125	/* build: sandbox or checkout failed */

int fetch_main(int argc, char **argv);
int build_main(int argc, char **argv);
int package_main(int argc, char **argv);	/* package.c */
int reclaim_main(int argc, char **argv);	/* idmap.c */

/*
 * describe.c: the JSON line kiln-worker fetch prints for kilnd: the
 * commit and what planning its build needs (.kiln.json, go.mod,
 * vendor/, the GoReleaser configuration as a recipe, tag and branch).
 * job_ref: the job's ref as submitted (names the tag or branch).
 */
struct git_repository;
struct git_commit;
struct json_t;
int describe_commit(struct json_t **out, struct git_repository *repo,
    struct git_commit *commit, const char *job_ref, const char *url,
    char *err, size_t errsize);

/* "kiln-worker: <message>\n" on stderr, written with one write(2). */
void worker_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Die with our parent: PR_SET_PDEATHSIG(SIGKILL), then check that the
 * parent did not die before the prctl (we would have been reparented).
 * Returns 0, or -1 when the parent is already gone.
 */
int worker_tie_to_parent(void);

/*
 * A byte count: decimal digits with an optional binary suffix K, M, G or T
 * (also KiB, MiB, GiB, TiB, or with a trailing "B"), in [min, max].
 */
int worker_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* CLOCK_MONOTONIC in milliseconds: deadlines and stage times. */
int64_t worker_mono_ms(void);

/* write(2) until done, retrying on EINTR; 0 or -1 with errno. */
int worker_write_all(int fd, const void *buf, size_t len);

/* Close every fd except 0, 1, 2 and those in keep (close_range(2)). */
void worker_close_fds_except(const int *keep, size_t n);

/*
 * --credentials-fd FD: the project's credentials (creds.h) read to the
 * end of FD, which is closed, and parsed; 0, or -1 with err (never
 * quoting the content).
 */
struct creds;
int worker_read_creds(struct creds **out, const char *fdstr, char *err,
    size_t errsize);
/* Exactly 40 hex digits (either case): a full SHA-1 object id. */
bool worker_is_sha1_hex(const char *s);

/*
 * kiln-worker MODE --config-fd FD: the options of MODE come from FD, not
 * from the command line (kiln-worker(8)).  FD is read to its end and
 * closed; it holds the arguments that would follow MODE on a command
 * line, each ended by a NUL byte.  On success *out is {mode, arguments...,
 * NULL} in one allocation (free(*out) releases all of it) and *outc its
 * length; -1 with a message in err otherwise.
 */
int worker_config_args(char ***out, int *outc, const char *mode,
    const char *fd, char *err, size_t errsize);

#endif
