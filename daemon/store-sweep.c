/*
 * The store's half of retention: removing the blobs nothing references.
 * A blob goes only when no job row names it and it is older than the
 * sweep's cutoff (a grace, and the start of every publication still in
 * progress, this host's or, by its marker in tmp, another's that shares
 * the store), decided under the store's lock against touches and
 * deduplicated publications.  Also the clearing of tmp.  The directories 00 to ff can be swept in
 * batches, so that a caller may stop between them (kilnd stopping).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <uv.h>

#include "log.h"
#include "store.h"
#include "store-int.h"
#include "util.h"
#include "xmalloc.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sweep one ab/ directory; -1 when it cannot be read (absent: 0). */
static int
sweep_dir(struct store *s, const char *path, char *const *keep,
    size_t nkeep, int64_t cutoff_ms, struct store_stats *st)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		log_warn("store: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		struct stat sb;
		int64_t mtime;
		int xl;

		if (!store_digest_valid(name))
			continue;
		if (nkeep > 0 && bsearch(&name, keep, nkeep, sizeof *keep,
		    cmp_str) != NULL) {
			if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
				st->blobs++;
				st->bytes += (uint64_t)sb.st_size;
			}
			continue;
		}
		/*
		 * The age read and the unlink under the write lock: a
		 * touch or a deduplicated publication (read lock) comes
		 * wholly before (the blob is young and stays) or after
		 * (it finds the blob gone and does not reuse it).
		 */
		uv_rwlock_wrlock(&s->lock);
		/*
		 * And the flock against other hosts' touches and
		 * publications; without waiting, so that a host stopped
		 * while it holds it never stops this one's publications
		 * (held: the blob stays, for the next sweep).
		 */
		xl = store_xlock(s, LOCK_EX | LOCK_NB);
		if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			store_xunlock(xl);
			uv_rwlock_wrunlock(&s->lock);
			continue;
		}
		mtime = (int64_t)sb.st_mtim.tv_sec * 1000 +
		    sb.st_mtim.tv_nsec / 1000000;
		if (xl != -2 && mtime < cutoff_ms &&
		    unlinkat(dirfd(d), name, 0) == 0) {
			st->removed++;
			st->removed_bytes += (uint64_t)sb.st_size;
			store_counted(s, name, -1, (uint64_t)sb.st_size);
		} else {
			st->blobs++;
			st->bytes += (uint64_t)sb.st_size;
		}
		store_xunlock(xl);
		uv_rwlock_wrunlock(&s->lock);
	}
	closedir(d);
	return 0;
}

void
store_clear_tmp(struct store *s, int64_t *oldest_pub)
{
	DIR *d = opendir(s->tmp);
	struct dirent *de;

	*oldest_pub = INT64_MAX;
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		/*
		 * Open for writing: on NFS, flock is a byte-range lock and
		 * an exclusive one needs a writable descriptor (else EBADF,
		 * and every file, a dead host's too, would look held).
		 */
		fd = openat(dirfd(d), de->d_name, O_RDWR | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		/*
		 * Held: a publication of this or another host that shares
		 * the store.  Free: its writer is gone (a lock dies with
		 * its process); unlinked while we hold the lock, so that a
		 * writer that locks it just after sees it has no name.
		 */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				log_info("store: removed %s/%s, left by an "
				    "interrupted publication", s->tmp,
				    de->d_name);
		} else if (strncmp(de->d_name, "pub.", 4) == 0 &&
		    fstat(fd, &sb) == 0) {
			int64_t ms = (int64_t)sb.st_mtim.tv_sec * 1000 +
			    sb.st_mtim.tv_nsec / 1000000;
			if (ms < *oldest_pub)
				*oldest_pub = ms;
		}
		close(fd);
	}
	closedir(d);
}

int64_t
store_sweep_cutoff(struct store *s, int64_t grace_ms)
{
	int64_t cutoff = util_now_ms() - grace_ms, oldest;

	/* Every host's publications on a shared store, by their markers. */
	store_clear_tmp(s, &oldest);
	if (oldest != INT64_MAX && oldest - STAMP_SLACK_MS < cutoff)
		cutoff = oldest - STAMP_SLACK_MS;
	uv_mutex_lock(&s->space_lock);
	for (const struct pub *p = s->pubs; p != NULL; p = p->next)
		if (p->start_ms - STAMP_SLACK_MS < cutoff)
			cutoff = p->start_ms - STAMP_SLACK_MS;
	uv_mutex_unlock(&s->space_lock);
	return cutoff;
}

int
store_sweep_dirs(struct store *s, char *const *keep, size_t nkeep,
    int64_t cutoff_ms, unsigned first, unsigned count,
    struct store_stats *st)
{
	int rc = 0;

	for (unsigned i = first; i < first + count && i < STORE_DIRS; i++) {
		char *sub = xasprintf("%s/%02x", s->blobs, i);
		if (sweep_dir(s, sub, keep, nkeep, cutoff_ms, st) != 0)
			rc = -1;
		free(sub);
	}
	return rc;
}

void
store_counted(struct store *s, const char *hex, int sign, uint64_t size)
{
	char two[3] = { hex[0], hex[1], '\0' };
	unsigned dir = (unsigned)strtoul(two, NULL, 16);

	uv_mutex_lock(&s->space_lock);
	if (dir < STORE_DIRS && s->counted[dir]) {
		s->nblobs += (uint64_t)sign;
		s->nbytes += sign > 0 ? size : -size;
	}
	uv_mutex_unlock(&s->space_lock);
}

void
store_count(struct store *s)
{
	for (unsigned i = 0; i < STORE_DIRS; i++) {
		char *sub = xasprintf("%s/%02x", s->blobs, i);
		uint64_t blobs = 0, bytes = 0;
		struct dirent *de;
		struct stat sb;
		DIR *d;

		/* The write lock: no blob comes or goes in between. */
		uv_rwlock_wrlock(&s->lock);
		if ((d = opendir(sub)) != NULL) {
			while ((de = readdir(d)) != NULL)
				if (store_digest_valid(de->d_name) &&
				    fstatat(dirfd(d), de->d_name, &sb,
				    AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISREG(sb.st_mode)) {
					blobs++;
					bytes += (uint64_t)sb.st_size;
				}
			closedir(d);
		} else if (errno != ENOENT)
			log_warn("store: cannot read %s: %s", sub,
			    strerror(errno));
		uv_mutex_lock(&s->space_lock);
		s->nblobs += blobs;
		s->nbytes += bytes;
		s->counted[i] = true;
		s->ncounted++;
		uv_mutex_unlock(&s->space_lock);
		uv_rwlock_wrunlock(&s->lock);
		free(sub);
	}
}

bool
store_size(struct store *s, uint64_t *blobs, uint64_t *bytes)
{
	bool known;

	uv_mutex_lock(&s->space_lock);
	known = s->ncounted == STORE_DIRS;
	*blobs = s->nblobs;
	*bytes = s->nbytes;
	uv_mutex_unlock(&s->space_lock);
	return known;
}

int
store_sweep(struct store *s, char *const *keep, size_t nkeep,
    int64_t grace_ms, struct store_stats *st)
{
	memset(st, 0, sizeof *st);
	return store_sweep_dirs(s, keep, nkeep, store_sweep_cutoff(s, grace_ms),
	    0, STORE_DIRS, st);
}
