/*
 * The content-addressed store (store.h): opening it, reading and touching
 * blobs, and publication (checking an out directory, copying and hashing
 * its files into blobs).  The retention sweep is in store-sweep.c.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "log.h"
#include "store.h"
#include "store-int.h"
#include "util.h"
#include "xmalloc.h"

#define COPY_CHUNK (256 * 1024)
#define MARGIN_MAX (1ULL << 30)

static void
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int
store_open(struct store **out, const char *state_dir, char *err,
    size_t errsize)
{
	struct store *s = xcalloc(1, sizeof *s);
	struct statvfs vfs;
	int64_t oldest;
	int rc;

	s->root = xasprintf("%s/store", state_dir);
	s->blobs = xasprintf("%s/sha256", s->root);
	s->tmp = xasprintf("%s/tmp", s->root);
	s->xlock = xasprintf("%s/lock", s->root);
	if ((rc = util_mkdir_p(s->blobs, 0755)) != 0 ||
	    (rc = util_mkdir_p(s->tmp, 0700)) != 0) {
		snprintf(err, errsize, "cannot create %s: %s", s->root,
		    strerror(-rc));
		free(s->root);
		free(s->blobs);
		free(s->tmp);
		free(s->xlock);
		free(s);
		return -1;
	}
	/*
	 * A file system that reports no size (an unlimited tmpfs, some FUSE
	 * and network file systems) or none at all: no free-space check and
	 * no default cap; a write that really fails still fails cleanly.
	 */
	if (statvfs(s->root, &vfs) != 0) {
		log_warn("store: cannot read the size of the file system of "
		    "%s (%s): no free-space check, no default store_max_size",
		    s->root, strerror(errno));
		memset(&vfs, 0, sizeof vfs);
	}
	s->fs_size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	s->margin = s->fs_size / 20 < MARGIN_MAX ? s->fs_size / 20 : MARGIN_MAX;
	uv_rwlock_init(&s->lock);
	uv_mutex_init(&s->space_lock);
	/* What a crash left in tmp (never visible under a digest). */
	store_clear_tmp(s, &oldest);
	*out = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	uv_rwlock_destroy(&s->lock);
	uv_mutex_destroy(&s->space_lock);
	free(s->root);
	free(s->blobs);
	free(s->tmp);
	free(s->xlock);
	free(s);
}

int
store_xlock(struct store *s, int op)
{
	int fd = open(s->xlock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);

	if (fd < 0)
		return -1;
	while (flock(fd, op) != 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		close(fd);
		return e == EWOULDBLOCK ? -2 : -1;
	}
	return fd;
}

void
store_xunlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

uint64_t
store_fs_size(const struct store *s)
{
	return s->fs_size;
}

uint64_t
store_free_margin(const struct store *s)
{
	return s->margin;
}

void
store_budget_init(struct store_budget *b, int64_t used)
{
	uv_mutex_init(&b->lock);
	b->used = used;
}

void
store_budget_destroy(struct store_budget *b)
{
	uv_mutex_destroy(&b->lock);
}

bool
store_digest_valid(const char *s)
{
	return s != NULL && strlen(s) == STORE_HEX_LEN &&
	    strspn(s, "0123456789abcdef") == STORE_HEX_LEN;
}

char *
store_blob_path(const struct store *s, const char *hex)
{
	return xasprintf("%s/%.2s/%s", s->blobs, hex, hex);
}

int
store_open_blob(const struct store *s, const char *hex)
{
	char *p;
	int fd;

	if (!store_digest_valid(hex))
		return -EINVAL;
	p = store_blob_path(s, hex);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(p);
	return fd < 0 ? -errno : fd;
}

int
store_touch(struct store *s, const char *hex)
{
	char *p;
	int rc = 0, xl;

	if (!store_digest_valid(hex))
		return -EINVAL;
	p = store_blob_path(s, hex);
	uv_rwlock_rdlock(&s->lock);
	xl = store_xlock(s, LOCK_SH);
	if (utimensat(AT_FDCWD, p, NULL, AT_SYMLINK_NOFOLLOW) != 0)
		rc = -errno;
	store_xunlock(xl);
	uv_rwlock_rdunlock(&s->lock);
	free(p);
	return rc;
}

/*
 * Give the fsynced temp file its digest name, or drop it when that
 * content is already stored (and mark the blob as just used).
 */
static int
commit_blob(struct store *s, const char *tmp, const char *hex, char *why,
    size_t whysize)
{
	char dir[PATH_MAX], *path;
	struct stat sb, old;
	bool dedup = false;
	int rc = 0, xl;

	snprintf(dir, sizeof dir, "%s/%.2s", s->blobs, hex);
	if (mkdir(dir, 0755) == 0)
		fsync_dir(s->blobs);
	else if (errno != EEXIST) {
		snprintf(why, whysize, "cannot create %s: %s", dir,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	path = xasprintf("%s/%s", dir, hex);
	/*
	 * Publishers share the read lock, so two that store the same
	 * content at once may both find it absent.  link() never replaces
	 * a name: one of them makes the blob (and counts it), the other
	 * gets EEXIST and has it deduplicated.  (rename() would let both
	 * make it, and the count would take it twice.)  The flock orders
	 * this against the sweeps of other hosts on a shared store.
	 */
	uv_rwlock_rdlock(&s->lock);
	xl = store_xlock(s, LOCK_SH);
	if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		dedup = true;
	else if (lstat(tmp, &sb) != 0)
		rc = -1;
	else if (link(tmp, path) == 0) {
		fsync_dir(dir);
		store_counted(s, hex, 1, (uint64_t)sb.st_size);
	} else if (errno == EEXIST && lstat(path, &old) == 0 &&
	    S_ISREG(old.st_mode))
		dedup = true;	/* stored meanwhile by another publisher */
	else
		rc = -1;
	if (rc != 0)
		snprintf(why, whysize, "cannot store %s: %s", path,
		    strerror(errno));
	else if (dedup)
		/* Deduplicated.  The touch tells a sweep it is in use. */
		utimensat(AT_FDCWD, path, NULL, 0);
	unlink(tmp);
	store_xunlock(xl);
	uv_rwlock_rdunlock(&s->lock);
	free(path);
	return rc;
}

int
store_open_tmp(struct store *s, const char *prefix, char *tmp, char *why,
    size_t whysize)
{
	struct stat sb;
	int fd;

	for (int try = 0; try < 10; try++) {
		snprintf(tmp, PATH_MAX, "%s/%s.XXXXXX", s->tmp, prefix);
		if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
			snprintf(why, whysize, "cannot create a file in %s: "
			    "%s", s->tmp, strerror(errno));
			return -1;
		}
		if (flock(fd, LOCK_EX) != 0) {
			snprintf(why, whysize, "cannot lock %s (the store's "
			    "file system must support flock): %s", tmp,
			    strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		/* Removed, unlocked, by another host's store_clear_tmp()
		 * before the lock: it has no name left; make another. */
		if (fstat(fd, &sb) == 0 && sb.st_nlink > 0)
			return fd;
		close(fd);
	}
	snprintf(why, whysize, "cannot keep a file in %s: removed as soon as "
	    "made", s->tmp);
	return -1;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * fsync the temp file; on failure close and remove it.  Else it stays
 * open, and locked, until commit_blob() gave it its name.
 */
static int
seal_tmp(int fd, const char *tmp, char *why, size_t whysize)
{
	if (fchmod(fd, 0444) != 0 || fsync(fd) != 0) {
		snprintf(why, whysize, "cannot write to the store: %s",
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
store_put_buf(struct store *s, const void *buf, size_t len,
    char hex[STORE_HEX_LEN + 1], char *why, size_t whysize)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char tmp[PATH_MAX];
	int fd, rc;

	crypto_hash_sha256(h, buf, len);
	sodium_bin2hex(hex, STORE_HEX_LEN + 1, h, sizeof h);
	if ((fd = store_open_tmp(s, "blob", tmp, why, whysize)) < 0)
		return -1;
	if (write_all(fd, buf, len) != 0) {
		snprintf(why, whysize, "cannot write to the store: %s",
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (seal_tmp(fd, tmp, why, whysize) != 0)
		return -1;
	rc = commit_blob(s, tmp, hex, why, whysize);
	close(fd);
	return rc;
}

/*
 * Copy in (one pass: what is hashed is what is written) and store.  The
 * copy is kiln's own inode: nothing the build left behind can change it.
 */
static int
put_fd(struct store *s, int in, const char *name, int64_t size,
    char hex[STORE_HEX_LEN + 1], char *why, size_t whysize)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES], *buf;
	char tmp[PATH_MAX];
	int64_t total = 0;
	int out, rc = -1;

	if ((out = store_open_tmp(s, "blob", tmp, why, whysize)) < 0)
		return -1;
	buf = xmalloc(COPY_CHUNK);
	crypto_hash_sha256_init(&st);
	for (;;) {
		/* At most one byte past the checked size: a file that grew
		 * meanwhile is refused without copying what it grew by. */
		size_t want = size - total < COPY_CHUNK ?
		    (size_t)(size - total) + 1 : COPY_CHUNK;
		ssize_t n = read(in, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, whysize, "out/%s: cannot read: %s", name,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (n > size - total) {
			snprintf(why, whysize, "out/%s changed while it was "
			    "stored", name);
			goto fail;
		}
		crypto_hash_sha256_update(&st, buf, (size_t)n);
		if (write_all(out, buf, (size_t)n) != 0) {
			snprintf(why, whysize, "cannot write to the store: %s",
			    strerror(errno));
			goto fail;
		}
		total += n;
	}
	if (total != size) {
		snprintf(why, whysize, "out/%s changed while it was stored",
		    name);
		goto fail;
	}
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, STORE_HEX_LEN + 1, h, sizeof h);
	free(buf);
	if (seal_tmp(out, tmp, why, whysize) != 0)
		return -1;
	rc = commit_blob(s, tmp, hex, why, whysize);
	close(out);
	return rc;
fail:
	free(buf);
	close(out);
	unlink(tmp);
	return rc;
}

bool
store_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+-") == n;
}

/* One printable rendering of a hostile name for a message. */
static void
show_name(char *out, size_t size, const char *name)
{
	size_t j = 0;

	for (size_t i = 0; name[i] != '\0' && j + 5 < size && i < 64; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[j++] = (char)c;
		else
			j += (size_t)snprintf(out + j, size - j, "\\x%02x", c);
	}
	out[j] = '\0';
}

/* a + b, or INT64_MAX when that does not fit; both are >= 0. */
static int64_t
add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/*
 * Reserve n bytes of the job's budget, or say why not.  Under the lock,
 * so that targets of one job publishing at once share the cap.
 */
static int
take_budget(const struct store_limits *lim, int64_t n, const char *sparse,
    char *why, size_t whysize)
{
	struct store_budget *b = lim->budget;
	int rc = 0;

	if (b == NULL)
		return 0;
	uv_mutex_lock(&b->lock);
	if (add_sat(b->used, n) > lim->max_total && b->used == 0) {
		snprintf(why, whysize, "out/ holds %lld bytes%s, more than "
		    "%lld bytes (max_job_output_size)", (long long)n, sparse,
		    (long long)lim->max_total);
		rc = -1;
	} else if (add_sat(b->used, n) > lim->max_total) {
		snprintf(why, whysize, "out/ holds %lld bytes%s; with the %lld "
		    "bytes of this job's other targets, that is more than %lld "
		    "bytes (max_job_output_size)", (long long)n,
		    sparse, (long long)b->used, (long long)lim->max_total);
		rc = -1;
	} else
		b->used += n;
	uv_mutex_unlock(&b->lock);
	return rc;
}

static void
give_budget(const struct store_limits *lim, int64_t n)
{
	if (lim->budget == NULL)
		return;
	uv_mutex_lock(&lim->budget->lock);
	lim->budget->used -= n;
	uv_mutex_unlock(&lim->budget->lock);
}

/*
 * Reserve n bytes of the store's file system: what statvfs says is free,
 * less what publications in progress will still write, must keep the
 * margin after n more.  Better a clear error now than a full disk under
 * the database and every build.
 */
static int
take_space(struct store *s, int64_t n, char *why, size_t whysize)
{
	struct statvfs vfs;
	uint64_t avail, need;
	int rc = 0;

	if (n == 0 || s->fs_size == 0)
		return 0;
	uv_mutex_lock(&s->space_lock);
	if (statvfs(s->tmp, &vfs) != 0) {
		snprintf(why, whysize, "cannot read the free space of the "
		    "store: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	need = (uint64_t)n + (uint64_t)s->pending + s->margin;
	if (avail < need) {
		snprintf(why, whysize, "the store's file system has %llu "
		    "bytes free; %lld bytes more%s would leave less than its "
		    "free-space margin of %llu bytes (free space, or keep "
		    "fewer jobs: store_max_size)", (unsigned long long)avail,
		    (long long)n, s->pending > 0 ? ", with the publications in "
		    "progress," : "", (unsigned long long)s->margin);
		rc = -1;
	} else
		s->pending += n;
out:
	uv_mutex_unlock(&s->space_lock);
	return rc;
}

static void
give_space(struct store *s, int64_t n)
{
	if (n == 0)
		return;
	uv_mutex_lock(&s->space_lock);
	s->pending -= n;
	uv_mutex_unlock(&s->space_lock);
}

static void
pub_begin(struct store *s, struct pub *p)
{
	char path[PATH_MAX], why[PATH_MAX + 200];

	/* Made before the first blob: no blob of it is older. */
	p->marker = NULL;
	if ((p->fd = store_open_tmp(s, "pub", path, why, sizeof why)) >= 0)
		p->marker = xstrdup(path);
	else
		log_warn("store: %s; a sweep by another host sharing the "
		    "store may not see this publication", why);
	uv_mutex_lock(&s->space_lock);
	p->start_ms = util_now_ms();
	p->prev = NULL;
	p->next = s->pubs;
	if (s->pubs != NULL)
		s->pubs->prev = p;
	s->pubs = p;
	uv_mutex_unlock(&s->space_lock);
}

static void
pub_end(struct store *s, struct pub *p)
{
	uv_mutex_lock(&s->space_lock);
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		s->pubs = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	uv_mutex_unlock(&s->space_lock);
	if (p->fd >= 0) {
		unlink(p->marker);
		close(p->fd);
	}
	free(p->marker);
}

static int
cmp_artifact(const void *a, const void *b)
{
	return strcmp(((const struct artifact *)a)->name,
	    ((const struct artifact *)b)->name);
}

/* Why this entry may not be published, or NULL; st from lstat. */
static const char *
reject(const struct stat *sb)
{
	if (S_ISLNK(sb->st_mode))
		return "a symlink";
	if (S_ISDIR(sb->st_mode))
		return "a directory";
	if (S_ISFIFO(sb->st_mode))
		return "a fifo";
	if (S_ISSOCK(sb->st_mode))
		return "a socket";
	if (S_ISCHR(sb->st_mode) || S_ISBLK(sb->st_mode))
		return "a device";
	if (!S_ISREG(sb->st_mode))
		return "not a regular file";
	if (sb->st_nlink != 1)
		return "a hard link (its content could be changed from "
		    "elsewhere)";
	return NULL;
}

int
store_publish_dir(struct store *s, const char *dir,
    const struct store_limits *lim, struct artifact **out, size_t *nout,
    char *why, size_t whysize)
{
	struct artifact *arts = NULL;
	size_t n = 0, cap = 0;
	int64_t total = 0, disk = 0;
	bool budget = false, space = false;
	struct dirent *de;
	struct pub pub;
	char shown[400], sparse[100] = "";
	int dfd, rc = -1;
	DIR *d;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		snprintf(why, whysize, "cannot read the out directory: %s",
		    strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	/*
	 * Known to sweeps from before its first blob until it returns: the
	 * first file stored (or reused) is referenced only once the last
	 * is copied and the target's finish recorded, and copying
	 * gigabytes to a slow disk may outlast any fixed grace.  The grace
	 * covers the rest, the writer's short wait for that finish.
	 */
	pub_begin(s, &pub);
	/* First the whole listing: a bad entry fails the target before
	 * anything is hashed. */
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		const char *bad;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		show_name(shown, sizeof shown, de->d_name);
		if (!store_name_ok(de->d_name)) {
			snprintf(why, whysize, "out/%s: not a safe file name "
			    "(letters, digits, '.', '_', '+', '-', not first "
			    "'.' or '-'; at most 128 bytes)", shown);
			goto out;
		}
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			snprintf(why, whysize, "out/%s: %s", shown,
			    strerror(errno));
			goto out;
		}
		if ((bad = reject(&sb)) != NULL) {
			snprintf(why, whysize, "out/%s: %s; only regular files "
			    "are published", shown, bad);
			goto out;
		}
		if (n == lim->max_files) {
			snprintf(why, whysize, "out/ holds more than %zu files "
			    "(max_artifacts)", lim->max_files);
			goto out;
		}
		/* What the copy writes is the length, holes and all. */
		total = add_sat(total, sb.st_size);
		disk = add_sat(disk, (int64_t)sb.st_blocks * 512);
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			arts = xreallocarray(arts, cap, sizeof *arts);
		}
		arts[n].name = xstrdup(de->d_name);
		arts[n].size = sb.st_size;
		arts[n].sha256 = NULL;
		n++;
	}
	if (n > 1)
		qsort(arts, n, sizeof *arts, cmp_artifact);
	/* A build that made sparse files is told why its few blocks on
	 * disk count as much more. */
	if (disk < total)
		snprintf(sparse, sizeof sparse, " (%lld bytes on disk: "
		    "sparse files count at their full length)",
		    (long long)disk);
	if (total > lim->max_bytes) {
		snprintf(why, whysize, "out/ holds %lld bytes%s, more than "
		    "%lld bytes (max_artifact_size)", (long long)total, sparse,
		    (long long)lim->max_bytes);
		goto out;
	}
	if (take_budget(lim, total, sparse, why, whysize) != 0)
		goto out;
	budget = true;
	if (take_space(s, total, why, whysize) != 0)
		goto out;
	space = true;
	for (size_t i = 0; i < n; i++) {
		char hex[STORE_HEX_LEN + 1];
		struct stat sb;
		int fd;

		/* O_NONBLOCK: should a fifo appear now, open does not
		 * wait for a writer; fstat then refuses it. */
		fd = openat(dfd, arts[i].name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &sb) != 0 || reject(&sb) != NULL ||
		    sb.st_size != arts[i].size) {
			snprintf(why, whysize, "out/%s changed while it was "
			    "stored", arts[i].name);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		rc = put_fd(s, fd, arts[i].name, sb.st_size, hex, why,
		    whysize);
		close(fd);
		if (rc != 0)
			goto out;
		rc = -1;
		arts[i].sha256 = xstrdup(hex);
	}
	*out = arts;
	*nout = n;
	arts = NULL;
	n = 0;
	rc = 0;
out:
	/* Written now: statvfs counts it.  Refused: the job's share too. */
	if (space)
		give_space(s, total);
	if (budget && rc != 0)
		give_budget(lim, total);
	pub_end(s, &pub);
	artifacts_free(arts, n);
	closedir(d);
	return rc;
}
