/*
 * The bare mirror caches of git repositories, with libgit2 1.5.1.  Call mirror_init() once per process first.
 */
#ifndef KILN_WORKER_MIRROR_H
#define KILN_WORKER_MIRROR_H

#include <stddef.h>

#include <git2.h>

struct creds;

/*
 * git_libgit2_init(), and no configuration but the mirror's own: the
 * system, XDG and global files (kilnd's HOME) must not change what is
 * fetched or checked out (core.autocrlf, url.*.insteadOf...).  0 or -1.
 */
int mirror_init(void);
void mirror_shutdown(void);

/*
 * Bring the bare mirror at `dir` up to date with `url`: every branch and
 * tag, pruned.  The mirror is created on first use.  When `want` is a
 * 40-hex commit id that is still missing afterwards, it is fetched by id.
 * No network at all when `want` is a 40-hex id already in the mirror
 * that peels to a commit, unless `job_ref` (the job's ref, or NULL) names
 * a tag the mirror does not have on that commit yet.
 * `creds` (creds.h, or NULL) are the project's: its logins go to the
 * hosts they name when asked, its headers with every http(s) request.
 * The caller serializes fetches into one mirror (mirror_lock).
 * Returns 0 with *out open, or -1 with a one-line reason in err
 * ("cannot reach URL: ...", "authentication failed for URL").  Messages
 * of this file never name the mirror's path: they reach the job's error.
 */
int mirror_fetch(git_repository **out, const char *dir, const char *url,
    const char *want, const char *job_ref, const struct creds *creds,
    char *err, size_t errsize);

/*
 * The remote's default branch ("refs/heads/main") as the last fetch that
 * reached it saw it, into out; -1 when no fetch learnt it.
 */
#define MIRROR_DEFAULT_BRANCH_KEY "kiln.defaultbranch"
int mirror_default_branch(git_repository *repo, char *out, size_t size);

/*
 * Resolve `ref` to a commit: a 40-hex id (of a commit, or of an annotated
 * tag, peeled to its commit), else refs/tags/REF,
 * refs/heads/REF, then REF itself when it is a full refs/... name; tags are
 * peeled.  Never the mirror's HEAD.  `url` is for messages only.
 */
int mirror_resolve(git_commit **out, git_repository *repo, const char *ref,
    const char *url, char *err, size_t errsize);

/*
 * Take an exclusive flock on dir + ".lock", waiting for other fetches.
 * Returns the lock fd (close it to release), or -1 with err.
 */
int mirror_lock(const char *dir, char *err, size_t errsize);

/*
 * Write the tree of commit `sha` from the bare mirror at `dir` into
 * `target` (an existing empty directory).  No network, no index written
 * into the mirror.
 */
int mirror_checkout(const char *dir, const char *sha, const char *target,
    char *err, size_t errsize);

/*
 * Replace every occurrence of `path` (alone, or followed by "/..." or
 * other text) in the message `msg` (of `size` bytes) by `name`: paths in
 * kilnd's state directory are kept out of what users see.
 */
void mirror_hide_path(char *msg, size_t size, const char *path,
    const char *name);

/* `url` with any password in it replaced by "***", for messages. */
void mirror_redact_url(char *buf, size_t size, const char *url);

#endif
