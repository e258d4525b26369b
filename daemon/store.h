/*
 * The content-addressed store: STATE/store/sha256/ab/abcdef… holds each
 * distinct artifact once, named by its SHA-256.  A file appears under its
 * digest only complete and fsynced (written to STATE/store/tmp, then
 * renamed, then the directory fsynced), so a crash at any moment leaves at
 * worst a temp file, which store_open() removes.
 *
 * Every call but store_open() and store_close() may run on any thread;
 * hashing and copying are meant for the thread pool, never the loop.
 * Blobs are immutable; store_sweep() removes those nothing references.
 */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "job.h"

#define STORE_HEX_LEN 64

struct store;

/* Create (if needed) STATE/store/{sha256,tmp} and clear tmp. */
int store_open(struct store **out, const char *state_dir, char *err,
    size_t errsize);
void store_close(struct store *s);

/* Whether s is 64 lowercase hex digits: a digest the store could hold. */
bool store_digest_valid(const char *s);
/* The blob's path (malloc'd); hex must be valid. */
char *store_blob_path(const struct store *s, const char *hex);
/* Open a blob for reading: an fd, or -errno (-ENOENT when absent). */
int store_open_blob(const struct store *s, const char *hex);

/*
 * Mark a blob as just used, as a publication does: a sweep running now
 * keeps it.  0, or -ENOENT when it is gone (then it cannot be reused).
 */
int store_touch(struct store *s, const char *hex);

/* Store the bytes of buf; hex receives the digest. 0 or -1 with why. */
int store_put_buf(struct store *s, const void *buf, size_t len,
    char hex[STORE_HEX_LEN + 1], char *why, size_t whysize);

/*
 * What several publications may write together: one job's targets share
 * one (max_job_output_size).  A publication reserves its whole size
 * before it copies a byte, under the lock, so two targets publishing at
 * once cannot both pass the cap; a failed one gives its share back.
 */
struct store_budget {
	uv_mutex_t lock;
	int64_t used;			/* published or reserved, bytes */
};
void store_budget_init(struct store_budget *b, int64_t used);
void store_budget_destroy(struct store_budget *b);

struct store_limits {
	size_t max_files;		/* files per out directory */
	int64_t max_bytes;		/* their total size */
	/* With a budget: the most its publications write together.  NULL:
	 * no cap but max_bytes. */
	struct store_budget *budget;
	int64_t max_total;
};

/*
 * Check a finished build's out directory and store what it holds.  Only
 * regular files with a single link and a safe name (store_name_ok) are
 * accepted, within the limits; anything else fails the whole directory
 * with a reason naming the file, and nothing is stored: every entry is
 * checked before the first is copied.  An empty directory is fine (a
 * recipe that only tests publishes nothing).
 * Sizes are what the store will write: each file's length, holes
 * included (a sparse file costs the build almost nothing and the store
 * its whole length).  Before copying, the total must fit the limits and
 * the store's file system must keep its free-space margin after it and
 * after the publications in progress (store_free_margin).
 * On success *arts (sorted by name, sha256 set) has *n entries.
 */
int store_publish_dir(struct store *s, const char *dir,
    const struct store_limits *lim, struct artifact **arts, size_t *n,
    char *why, size_t whysize);
/* The size of the store's file system in bytes, read at store_open(). */
uint64_t store_fs_size(const struct store *s);
/*
 * Free space a publication must leave on that file system: 5% of its
 * size, at most 1 GiB, so that the database, logs and builds can still
 * write when the store is nearly full.
 */
uint64_t store_free_margin(const struct store *s);

/* Letters, digits, '.', '_', '+', '-'; not starting with '.' or '-';
 * 1..128 bytes. */
bool store_name_ok(const char *name);

struct store_stats {
	uint64_t blobs, bytes;		/* what remains */
	uint64_t removed, removed_bytes;
};
/*
 * The blobs live in STORE_DIRS directories, 00 to ff (the digest's first
 * two hex digits); a sweep may go through them in batches.
 */
#define STORE_DIRS 256
/*
 * The time (ms since the epoch) before which an unreferenced blob may
 * go: grace_ms ago, and before the start of every publication still in
 * progress (its blobs are recorded only once it has stored its last
 * file, however long that takes).  Read it once, before the references:
 * a blob written or reused since is younger.
 */
int64_t store_sweep_cutoff(struct store *s, int64_t grace_ms);
/*
 * Remove every blob of directories first .. first+count-1 whose digest
 * is not in keep[] (sorted, strcmp order) and that was last written or
 * reused (store_touch, a deduplicated publication) before cutoff_ms.
 * Each blob's fate is decided under the store's lock, against the
 * publications and touches that run meanwhile.  Adds to *st.  0, or
 * -1 when a directory could not be read (logged; the others were swept).
 */
int store_sweep_dirs(struct store *s, char *const *keep, size_t nkeep,
    int64_t cutoff_ms, unsigned first, unsigned count,
    struct store_stats *st);
/*
 * Count the blobs the store holds (a walk of every directory: for the
 * thread pool), once, at start; from then on every blob stored or swept
 * changes the count, which store_size() reads at any time: false before
 * the count ended.
 */
void store_count(struct store *s);
bool store_size(struct store *s, uint64_t *blobs, uint64_t *bytes);
/* All directories at once, with store_sweep_cutoff(grace_ms); *st is
 * set.  0 or -1 as store_sweep_dirs(). */
int store_sweep(struct store *s, char *const *keep, size_t nkeep,
    int64_t grace_ms, struct store_stats *st);

#endif
