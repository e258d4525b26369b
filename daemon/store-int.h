/*
 * What store.c and store-sweep.c share of the store: its struct, and the
 * publications in progress that a sweep must not undercut.
 */
#ifndef KILN_STORE_INT_H
#define KILN_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "store.h"

/*
 * How far a file's new mtime may lag the clock util_now_ms() reads: the
 * kernel stamps files from a coarse clock, up to a tick behind.
 */
#define STAMP_SLACK_MS 1000

/*
 * A publication in progress, on its caller's stack (store_publish_dir).
 * Its marker, STORE/tmp/pub.XXXXXX (made at its start, locked while it
 * lasts), tells the sweeps of other hosts that share the store too.
 */
struct pub {
	int64_t start_ms;
	int fd;			/* the marker's, locked; -1: none */
	char *marker;
	struct pub *prev, *next;
};

struct store {
	char *root;		/* STATE/store */
	char *blobs;		/* STATE/store/sha256 */
	char *tmp;		/* STATE/store/tmp */
	char *xlock;		/* STATE/store/lock (store_xlock) */
	/*
	 * Readers: a publisher between "is the blob there?" and the rename
	 * or the touch that keeps it.  Writer: the sweep deciding a blob's
	 * fate, so it never deletes one that a publisher just reused.
	 */
	uv_rwlock_t lock;
	/*
	 * Bytes that publications in progress have yet to write: the free
	 * space statvfs reports does not show them, so each check counts
	 * them as taken.
	 */
	uv_mutex_t space_lock;
	int64_t pending;
	/* The publications in progress: a sweep keeps what they stored. */
	struct pub *pubs;	/* under space_lock */
	uint64_t fs_size;	/* bytes, at store_open() */
	uint64_t margin;	/* free bytes a publication leaves */
	/*
	 * What the store holds (store_count, store_size), under space_lock.
	 * A directory's blobs are counted under the write lock, and then
	 * counted[i] is set: a blob stored or removed later (under the
	 * lock too) changes the count only in a directory already counted,
	 * so none is counted twice or missed.
	 */
	uint64_t nblobs, nbytes;
	unsigned ncounted;		/* directories counted */
	bool counted[STORE_DIRS];
};

/*
 * A new file STORE/tmp/PREFIX.XXXXXX (its path into tmp, PATH_MAX), open
 * and locked (flock) for as long as its writer keeps the descriptor: the
 * lock is what tells every host on the store that it is in use.
 */
int store_open_tmp(struct store *s, const char *prefix, char *tmp,
    char *why, size_t whysize);

/*
 * Remove from STORE/tmp what no live writer holds (the lock is free: what
 * a killed kilnd left), never what another host on a shared store is
 * writing.  *oldest_pub: the mtime (ms) of the oldest publication marker
 * still held, INT64_MAX when none.
 */
void store_clear_tmp(struct store *s, int64_t *oldest_pub);

/*
 * The lock of s->lock's readers and writer across the hosts that share
 * the store: flock(op) on STORE/lock through a descriptor of its own
 * (a flock belongs to one open file, so no two threads share it), taken
 * after s->lock.  Shared: a publisher or a touch between "is the blob
 * there?" and what keeps it; exclusive: a sweep deciding a blob's fate.
 * The descriptor that holds it (store_xunlock), -1 when the file system
 * has no flock (then only this host's threads are ordered), -2 when
 * LOCK_NB was asked and another host holds it.
 */
int store_xlock(struct store *s, int op);
void store_xunlock(int fd);

/* The blob `hex` of `size` bytes was stored (+1) or removed (-1); the
 * caller holds s->lock. */
void store_counted(struct store *s, const char *hex, int sign,
    uint64_t size);

#endif
