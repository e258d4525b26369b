/*
 * The content-addressed store (daemon/store.c): digests as sha256sum
 * computes them, one copy per content, every kind of hostile out
 * directory refused with the file named and nothing stored, sparse files
 * counted at their length, a job's cap shared by its targets, free space
 * checked before copying, temp files of an interrupted run cleared, and
 * a sweep that removes only old, unreferenced blobs: never one that a
 * publication in progress stored, never one a touch kept.  Two stores on
 * one directory (hosts sharing it): neither clears the other's temp
 * files, nor sweeps what the other's publication in progress stored.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/time.h>

#include "daemon/store.h"
#include "daemon/store-int.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "unit.h"

/* sha256 of "hello\n", as `printf 'hello\n' | sha256sum` prints it. */
#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

/* Files under store/sha256. */
static int
count_blobs(const char *state)
{
	char cmd[600], buf[32];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof cmd, "find '%s/store/sha256' -type f | wc -l",
	    state);
	p = popen(cmd, "r");
	if (p != NULL && fgets(buf, sizeof buf, p) != NULL)
		n = atoi(buf);
	if (p != NULL)
		pclose(p);
	return n;
}

/* Files left in store/tmp (a refused publication must leave none). */
static int
count_tmp(const char *state)
{
	char cmd[600], buf[32];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof cmd, "find '%s/store/tmp' -type f | wc -l",
	    state);
	p = popen(cmd, "r");
	if (p != NULL && fgets(buf, sizeof buf, p) != NULL)
		n = atoi(buf);
	if (p != NULL)
		pclose(p);
	return n;
}

/* dir/name made by the shell command cmd, run in dir. */
static void
shell_in(const char *dir, const char *cmd)
{
	char line[1200];

	snprintf(line, sizeof line, "mkdir -p '%s' && cd '%s' && %s", dir, dir,
	    cmd);
	CHECK_INT(system(line), 0);
}

static struct store *
open_store(const char *dir)
{
	struct store *s = NULL;
	char err[300];

	CHECK_INT(store_open(&s, dir, err, sizeof err), 0);
	return s;
}

static void
put_buf_names_the_blob_by_sha256(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	char hex[65], why[300], path[600], cmd[1000];
	struct stat st;
	int fd;

	CHECK_INT(store_put_buf(s, "hello\n", 6, hex, why, sizeof why), 0);
	CHECK_STR(hex, HELLO_SHA);
	snprintf(path, sizeof path, "%s/store/sha256/58/%s", dir, HELLO_SHA);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_size, 6);
	CHECK_INT(st.st_mode & 0777, 0444);
	/* sha256sum agrees with the name. */
	snprintf(cmd, sizeof cmd, "test \"$(sha256sum < '%s' | cut -c1-64)\" = "
	    "%s", path, HELLO_SHA);
	CHECK_INT(system(cmd), 0);
	/* The same content again: one blob. */
	CHECK_INT(store_put_buf(s, "hello\n", 6, hex, why, sizeof why), 0);
	CHECK_INT(count_blobs(dir), 1);
	fd = store_open_blob(s, HELLO_SHA);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	/* Names that are not digests never reach the file system. */
	CHECK_INT(store_open_blob(s, "../../kiln.key"), -EINVAL);
	CHECK_INT(store_open_blob(s, "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03"), -EINVAL);
	CHECK_INT(store_open_blob(s, "0000000000000000000000000000000000000000000000000000000000000000"), -ENOENT);
	store_close(s);
}

static void
publish_dir_stores_every_file(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_limits lim = { 10, 1 << 20, NULL, 0 };
	struct artifact *arts = NULL;
	char out[600], p[700], why[300];
	size_t n = 0;

	snprintf(out, sizeof out, "%s/out", dir);
	mkdir(out, 0755);
	snprintf(p, sizeof p, "%s/zeta.txt", out);
	write_text(p, "hello\n");
	snprintf(p, sizeof p, "%s/alpha", out);
	write_text(p, "hello\n");
	snprintf(p, sizeof p, "%s/app-1.0_linux+x.tar.gz", out);
	write_text(p, "other\n");
	CHECK_INT(store_publish_dir(s, out, &lim, &arts, &n, why, sizeof why),
	    0);
	CHECK_INT(n, 3);
	if (n == 3) {
		/* Sorted by name, each with its size and digest. */
		CHECK_STR(arts[0].name, "alpha");
		CHECK_STR(arts[1].name, "app-1.0_linux+x.tar.gz");
		CHECK_STR(arts[2].name, "zeta.txt");
		CHECK_STR(arts[0].sha256, HELLO_SHA);
		CHECK_STR(arts[2].sha256, HELLO_SHA);
		CHECK_INT(arts[1].size, 6);
	}
	/* Two files with one content are stored once. */
	CHECK_INT(count_blobs(dir), 2);
	artifacts_free(arts, n);
	store_close(s);
}

/* Make out/ with `setup` (a shell command run in it) and expect the
 * publication to fail with `want` in the reason, storing nothing. */
static void
refused(const char *setup, const char *want, size_t max_files,
    int64_t max_bytes)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_limits lim = { max_files, max_bytes, NULL, 0 };
	struct artifact *arts = NULL;
	char out[600], cmd[1200], why[300] = "";
	size_t n = 0;

	snprintf(out, sizeof out, "%s/out", dir);
	mkdir(out, 0755);
	snprintf(cmd, sizeof cmd, "cd '%s' && echo ok > good && %s", out,
	    setup);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(store_publish_dir(s, out, &lim, &arts, &n, why, sizeof why),
	    -1);
	if (strstr(why, want) == NULL) {
		fprintf(stderr, "  reason '%s' lacks '%s'\n", why, want);
		unit_failed_checks++;
	}
	CHECK(arts == NULL);
	CHECK_INT(count_blobs(dir), 0);
	store_close(s);
}

static void
hostile_out_directories_are_refused(void)
{
	refused("ln -s /etc/passwd passwd", "out/passwd: a symlink", 10, 1 << 20);
	refused("ln -s /nonexistent dangling", "out/dangling: a symlink", 10, 1 << 20);
	refused("mkfifo pipe", "out/pipe: a fifo", 10, 1 << 20);
	refused("ln good twin", "a hard link", 10, 1 << 20);
	refused("mkdir sub", "out/sub: a directory", 10, 1 << 20);
	refused("touch '.hidden'", "out/.hidden: not a safe file name", 10, 1 << 20);
	refused("touch -- '-rf'", "out/-rf: not a safe file name", 10, 1 << 20);
	refused("touch 'a b'", "out/a b: not a safe file name", 10, 1 << 20);
	refused("touch \"$(printf 'x\\001y')\"", "out/x\\x01y: not a safe", 10, 1 << 20);
	refused("touch \"$(printf 'caf\\303\\251')\"", "not a safe file name", 10, 1 << 20);
	refused("touch $(printf 'n%.0s' $(seq 1 129))", "not a safe file name", 10, 1 << 20);
	refused("for i in 1 2 3; do touch f$i; done", "more than 3 files", 3, 1 << 20);
	refused("head -c 2000 /dev/zero > big", "more than 1024 bytes", 10, 1024);
}

/*
 * truncate -s makes a file that costs the build one inode and the store
 * its whole length, since the copy writes every zero: it counts in full,
 * and the reason says why.
 */
static void
sparse_files_count_at_their_length(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_limits lim = { 10, 1 << 20, NULL, 0 };
	struct artifact *arts = NULL;
	char out[600], why[400] = "";
	size_t n = 0;

	snprintf(out, sizeof out, "%s/out", dir);
	shell_in(out, "truncate -s 512M sparse.bin");
	CHECK_INT(store_publish_dir(s, out, &lim, &arts, &n, why, sizeof why),
	    -1);
	CHECK(strstr(why, "out/ holds 536870912 bytes (") != NULL);
	CHECK(strstr(why, "sparse files count at their full length), more "
	    "than 1048576 bytes (max_artifact_size)") != NULL);
	CHECK(arts == NULL);
	CHECK_INT(count_blobs(dir), 0);
	CHECK_INT(count_tmp(dir), 0);
	store_close(s);
}

/*
 * Targets of one job share max_job_output_size: what one stored counts
 * against the next; a refused one stores nothing and takes nothing of
 * the budget, so a smaller output still fits after it.
 */
static void
a_job_budget_is_shared_by_its_targets(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_budget b;
	struct store_limits lim = { 10, 1 << 20, &b, 10000 };
	struct artifact *arts = NULL;
	char a[600], c[600], d[600], why[400] = "";
	size_t n = 0;

	store_budget_init(&b, 1000);	/* stored before a restart */
	snprintf(a, sizeof a, "%s/a", dir);
	snprintf(c, sizeof c, "%s/c", dir);
	snprintf(d, sizeof d, "%s/d", dir);
	shell_in(a, "head -c 6000 /dev/urandom > app");
	shell_in(c, "head -c 3001 /dev/urandom > app");
	shell_in(d, "head -c 3000 /dev/urandom > app");
	CHECK_INT(store_publish_dir(s, a, &lim, &arts, &n, why, sizeof why), 0);
	artifacts_free(arts, n);
	arts = NULL;
	CHECK_INT(b.used, 7000);
	CHECK_INT(count_blobs(dir), 1);
	CHECK_INT(store_publish_dir(s, c, &lim, &arts, &n, why, sizeof why),
	    -1);
	if (strstr(why, "out/ holds 3001 bytes; with the 7000 bytes of this "
	    "job's other targets, that is more than 10000 bytes "
	    "(max_job_output_size)") == NULL) {
		fprintf(stderr, "  reason: '%s'\n", why);
		unit_failed_checks++;
	}
	CHECK(arts == NULL);
	CHECK_INT(b.used, 7000);
	CHECK_INT(count_blobs(dir), 1);
	CHECK_INT(count_tmp(dir), 0);
	/* Exactly up to the cap is fine. */
	CHECK_INT(store_publish_dir(s, d, &lim, &arts, &n, why, sizeof why), 0);
	artifacts_free(arts, n);
	CHECK_INT(b.used, 10000);
	CHECK_INT(count_blobs(dir), 2);
	store_budget_destroy(&b);
	/* A first target alone over the cap. */
	store_budget_init(&b, 0);
	lim.max_total = 100;
	CHECK_INT(store_publish_dir(s, a, &lim, &arts, &n, why, sizeof why),
	    -1);
	CHECK(strstr(why, "out/ holds 6000 bytes, more than 100 bytes "
	    "(max_job_output_size)") != NULL);
	CHECK_INT(b.used, 0);
	store_budget_destroy(&b);
	store_close(s);
}

struct racer {
	struct store *s;
	struct store_limits *lim;
	const char *dir;
	uv_barrier_t *go;
	int rc;
	char why[400];
};

static void
race(void *arg)
{
	struct racer *r = arg;
	struct artifact *arts = NULL;
	size_t n = 0;

	uv_barrier_wait(r->go);
	r->rc = store_publish_dir(r->s, r->dir, r->lim, &arts, &n, r->why,
	    sizeof r->why);
	artifacts_free(arts, n);
}

/*
 * Two targets of one job publishing at the same moment, each within the
 * cap, both over it together: one is stored, the other refused.  Each
 * takes its share before copying, so however the copies overlap, both
 * cannot pass (counting after the copy would let both through: 16 MiB
 * take a while to hash).
 */
static void
concurrent_targets_cannot_both_pass_the_cap(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_budget b;
	struct store_limits lim = { 10, INT64_MAX, &b, 24 << 20 };
	struct racer r[2];
	uv_thread_t th[2];
	uv_barrier_t go;
	char p[2][600];

	store_budget_init(&b, 0);
	uv_barrier_init(&go, 2);
	for (int i = 0; i < 2; i++) {
		snprintf(p[i], sizeof p[i], "%s/t%d", dir, i);
		shell_in(p[i], "head -c 16M /dev/urandom > app");
		r[i] = (struct racer){ .s = s, .lim = &lim, .dir = p[i],
		    .go = &go, .rc = 99 };
		CHECK_INT(uv_thread_create(&th[i], race, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		uv_thread_join(&th[i]);
	CHECK_INT((r[0].rc == 0) + (r[1].rc == 0), 1);
	CHECK_INT((r[0].rc == -1) + (r[1].rc == -1), 1);
	CHECK(strstr(r[r[0].rc == 0 ? 1 : 0].why,
	    "(max_job_output_size)") != NULL);
	CHECK_INT(b.used, 16 << 20);
	CHECK_INT(count_blobs(dir), 1);
	CHECK_INT(count_tmp(dir), 0);
	uv_barrier_destroy(&go);
	store_budget_destroy(&b);
	store_close(s);
}

/*
 * An output larger than the free space of the store's file system, or
 * one that would leave less than the margin, is refused before a byte is
 * written; its share of the job's budget is given back.
 */
static void
free_space_is_checked_before_copying(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_budget b;
	struct store_limits lim = { 10, INT64_MAX, &b, INT64_MAX };
	struct artifact *arts = NULL;
	char out[600], cmd[200], why[400] = "";
	struct statvfs vfs;
	uint64_t avail, margin = store_free_margin(s);
	size_t n = 0;

	/* 5% of the file system, at most 1 GiB. */
	CHECK(store_fs_size(s) > 0);
	CHECK_INT(margin, store_fs_size(s) / 20 < (1ULL << 30) ?
	    store_fs_size(s) / 20 : 1ULL << 30);
	store_budget_init(&b, 0);
	snprintf(out, sizeof out, "%s/out", dir);
	CHECK_INT(statvfs(dir, &vfs), 0);
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	/* More than is free, by a wide margin (other writers may free some). */
	snprintf(cmd, sizeof cmd, "truncate -s %llu big",
	    (unsigned long long)(avail + (4ULL << 30)));
	shell_in(out, cmd);
	CHECK_INT(store_publish_dir(s, out, &lim, &arts, &n, why, sizeof why),
	    -1);
	if (strstr(why, "bytes free; ") == NULL ||
	    strstr(why, "free-space margin of") == NULL) {
		fprintf(stderr, "  reason: '%s'\n", why);
		unit_failed_checks++;
	}
	CHECK(arts == NULL);
	CHECK_INT(b.used, 0);
	CHECK_INT(count_blobs(dir), 0);
	CHECK_INT(count_tmp(dir), 0);
	/* What fits the free space but not the margin after it. */
	if (avail > margin + (64ULL << 20)) {
		snprintf(cmd, sizeof cmd, "rm big && truncate -s %llu big",
		    (unsigned long long)(avail - margin / 2));
		shell_in(out, cmd);
		why[0] = '\0';
		CHECK_INT(store_publish_dir(s, out, &lim, &arts, &n, why,
		    sizeof why), -1);
		CHECK(strstr(why, "free-space margin of") != NULL);
		CHECK_INT(count_blobs(dir), 0);
		CHECK_INT(count_tmp(dir), 0);
	}
	store_budget_destroy(&b);
	store_close(s);
}

static void
a_socket_is_refused(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct store_limits lim = { 10, 1 << 20, NULL, 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct artifact *arts = NULL;
	char out[100], why[300] = "";
	size_t n = 0;
	int fd;

	snprintf(out, sizeof out, "%.90s/out", dir);
	mkdir(out, 0755);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%.95s/sock", out);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	CHECK_INT(store_publish_dir(s, out, &lim, &arts, &n, why, sizeof why),
	    -1);
	CHECK(strstr(why, "out/sock: a socket") != NULL);
	CHECK_INT(count_blobs(dir), 0);
	store_close(s);
}

static void
open_clears_interrupted_temp_files(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	char p[600];
	struct stat st;

	store_close(s);
	/* What a kill -9 in the middle of a copy leaves. */
	snprintf(p, sizeof p, "%s/store/tmp/blob.AbC123", dir);
	write_text(p, "half a file");
	s = open_store(dir);
	CHECK(stat(p, &st) != 0 && errno == ENOENT);
	CHECK_INT(count_blobs(dir), 0);
	store_close(s);
}

static void
age(const char *dir, const char *hex, int seconds)
{
	struct timeval tv[2];
	char p[700];

	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= seconds;
	tv[1] = tv[0];
	snprintf(p, sizeof p, "%s/store/sha256/%.2s/%s", dir, hex, hex);
	CHECK_INT(utimes(p, tv), 0);
}

static void
sweep_removes_only_old_unreferenced_blobs(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	char a[65], b[65], c[65], why[300];
	struct store_stats st;
	char *keep[1];

	CHECK_INT(store_put_buf(s, "a", 1, a, why, sizeof why), 0);
	CHECK_INT(store_put_buf(s, "bb", 2, b, why, sizeof why), 0);
	CHECK_INT(store_put_buf(s, "ccc", 3, c, why, sizeof why), 0);
	age(dir, a, 7200);
	age(dir, b, 7200);
	keep[0] = a;
	/* a: old, referenced; b: old, unreferenced; c: new, unreferenced. */
	CHECK_INT(store_sweep(s, keep, 1, 3600 * 1000, &st), 0);
	CHECK_INT(st.removed, 1);
	CHECK_INT(st.removed_bytes, 2);
	CHECK_INT(st.blobs, 2);
	CHECK_INT(st.bytes, 4);
	CHECK(store_open_blob(s, b) == -ENOENT);
	/* Reusing an old blob makes it young again: a publication that
	 * found it is not yet recorded, and the sweep must not take it. */
	age(dir, a, 7200);
	CHECK_INT(store_put_buf(s, "a", 1, a, why, sizeof why), 0);
	CHECK_INT(store_sweep(s, NULL, 0, 3600 * 1000, &st), 0);
	CHECK_INT(st.removed, 0);
	CHECK_INT(count_blobs(dir), 2);
	/* So does a cache hit's touch; a swept blob cannot be touched. */
	age(dir, c, 7200);
	CHECK_INT(store_touch(s, c), 0);
	CHECK_INT(store_touch(s, b), -ENOENT);
	CHECK_INT(store_sweep(s, NULL, 0, 3600 * 1000, &st), 0);
	CHECK_INT(st.removed, 0);
	store_close(s);
}

/* Milliseconds since the epoch of a blob's mtime; -1 when it is gone. */
static int64_t
blob_mtime_ms(const char *dir, const char *hex)
{
	char p[700];
	struct stat sb;

	snprintf(p, sizeof p, "%s/store/sha256/%.2s/%s", dir, hex, hex);
	if (stat(p, &sb) != 0)
		return -1;
	return (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
}

struct slow_pub {
	struct store *s;
	const char *out;
	struct artifact *arts;
	size_t n;
	int rc;
	int done;			/* __atomic */
	char why[300];
};

static void
slow_publish(void *arg)
{
	struct slow_pub *p = arg;
	struct store_limits lim = { 10, INT64_MAX, NULL, 0 };

	p->rc = store_publish_dir(p->s, p->out, &lim, &p->arts, &p->n, p->why,
	    sizeof p->why);
	__atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
}

/*
 * A publication that outlasts the sweep's grace: the blob it reused
 * first ("a", an old blob) is recorded only once its last file ("big")
 * is stored and the target finished.  A sweep in between, whose grace
 * (0 here, ten minutes in kilnd) that reuse is already older than, must
 * keep it all the same: the publication is still in progress.
 */
static void
sweep_keeps_what_a_publication_in_progress_stored(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct slow_pub p = { 0 };
	struct store_stats st;
	char a[65], why[300], out[600];
	uv_thread_t th;
	int64_t old;
	bool busy;
	int fd;

	CHECK_INT(store_put_buf(s, "first\n", 6, a, why, sizeof why), 0);
	age(dir, a, 7200);
	old = blob_mtime_ms(dir, a);
	snprintf(out, sizeof out, "%s/out", dir);
	/* 256 MiB to hash and copy: far longer than the wait below. */
	shell_in(out, "printf 'first\\n' > a && truncate -s 256M big");
	p.s = s;
	p.out = out;
	p.rc = 99;
	CHECK_INT(uv_thread_create(&th, slow_publish, &p), 0);
	/* "a" comes first: once it is reused, "big" is being copied. */
	for (int i = 0; i < 30000 && blob_mtime_ms(dir, a) == old; i++)
		usleep(1000);
	CHECK(blob_mtime_ms(dir, a) > old);
	usleep(20 * 1000);	/* the reuse is older than a 0 grace */
	CHECK_INT(store_sweep(s, NULL, 0, 0, &st), 0);
	busy = !__atomic_load_n(&p.done, __ATOMIC_SEQ_CST);
	fd = store_open_blob(s, a);
	if (busy)
		CHECK(fd >= 0);
	else
		fprintf(stderr, "  note: the publication ended before the "
		    "sweep; nothing to judge\n");
	if (fd >= 0)
		close(fd);
	uv_thread_join(&th);
	CHECK_INT(p.rc, 0);
	CHECK_INT(p.n, 2);
	if (p.rc == 0 && p.n == 2)
		CHECK_STR(p.arts[0].sha256, a);
	artifacts_free(p.arts, p.n);
	/* Ended: nothing holds the cutoff back any more. */
	CHECK(store_sweep_cutoff(s, 0) > util_now_ms() - 5000);
	store_close(s);
}

/*
 * The test links with -Wl,--wrap=unlinkat: the store's unlinkat comes
 * here.  Armed (1), the next one waits a moment before it removes, with
 * slow_unlink at 2 meanwhile: the sweep has decided a blob's fate and
 * not yet acted on it, the window a touch or a publication must not
 * slip into.
 */
int __real_unlinkat(int dfd, const char *name, int flags);
int __wrap_unlinkat(int dfd, const char *name, int flags);
static int slow_unlink;		/* __atomic */

int
__wrap_unlinkat(int dfd, const char *name, int flags)
{
	int armed = 1;

	if (__atomic_compare_exchange_n(&slow_unlink, &armed, 2, false,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		usleep(300 * 1000);
	return __real_unlinkat(dfd, name, flags);
}

/*
 * flock(2) as an NFS client has it (it emulates flock with byte-range
 * locks, see flock(2) "NFS details"): an exclusive lock needs a
 * descriptor open for writing, else EBADF.  So every test here holds on
 * a shared store on NFS too.
 */
int __real_flock(int fd, int op);
int __wrap_flock(int fd, int op);

int
__wrap_flock(int fd, int op)
{
	int fl = fcntl(fd, F_GETFL);

	if ((op & LOCK_EX) && fl >= 0 && (fl & O_ACCMODE) == O_RDONLY) {
		errno = EBADF;
		return -1;
	}
	return __real_flock(fd, op);
}

struct sweeper {
	struct store *s;
	struct store_stats st;
	int rc;
};

static void
sweep_thread(void *arg)
{
	struct sweeper *w = arg;

	w->rc = store_sweep(w->s, NULL, 0, 3600 * 1000, &w->st);
}

/* Start a sweep of s and return once it is about to remove a blob. */
static void
sweep_until_unlink(struct sweeper *w, uv_thread_t *th)
{
	__atomic_store_n(&slow_unlink, 1, __ATOMIC_SEQ_CST);
	CHECK_INT(uv_thread_create(th, sweep_thread, w), 0);
	for (int i = 0; i < 30000 &&
	    __atomic_load_n(&slow_unlink, __ATOMIC_SEQ_CST) != 2; i++)
		usleep(1000);
	CHECK_INT(__atomic_load_n(&slow_unlink, __ATOMIC_SEQ_CST), 2);
}

/*
 * A touch (a cache hit) or a publication of the same content, just as
 * the sweep removes an old unreferenced blob: each waits for the sweep's
 * decision on that blob.  The touch then finds it gone (-ENOENT: the
 * cache hit is not used); the publication stores the content again.
 * Neither may go on believing in a blob the sweep then deletes.
 */
static void
touch_and_publication_wait_for_the_sweeps_unlink(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	struct sweeper w = { .s = s, .rc = 99 };
	char b[65], again[65], why[300];
	uv_thread_t th;
	int fd;

	CHECK_INT(store_put_buf(s, "old\n", 4, b, why, sizeof why), 0);
	age(dir, b, 7200);
	sweep_until_unlink(&w, &th);
	CHECK_INT(store_touch(s, b), -ENOENT);
	uv_thread_join(&th);
	CHECK_INT(w.rc, 0);
	CHECK_INT(w.st.removed, 1);
	CHECK_INT(store_open_blob(s, b), -ENOENT);

	CHECK_INT(store_put_buf(s, "old\n", 4, b, why, sizeof why), 0);
	age(dir, b, 7200);
	sweep_until_unlink(&w, &th);
	CHECK_INT(store_put_buf(s, "old\n", 4, again, why, sizeof why), 0);
	CHECK_STR(again, b);
	uv_thread_join(&th);
	CHECK_INT(w.st.removed, 1);
	fd = store_open_blob(s, b);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	store_close(s);
}

static void
names(void)
{
	CHECK(store_name_ok("kiln_1.0_linux-arm64.tar.gz"));
	CHECK(store_name_ok("a+b"));
	CHECK(!store_name_ok(""));
	CHECK(!store_name_ok("."));
	CHECK(!store_name_ok(".."));
	CHECK(!store_name_ok("../x"));
	CHECK(!store_name_ok("a/b"));
	CHECK(!store_name_ok("a%00b"));
	CHECK(!store_name_ok("a\\b"));
	CHECK(store_digest_valid(HELLO_SHA));
	CHECK(!store_digest_valid("5891b5"));
	CHECK(!store_digest_valid(NULL));
}

/* store/tmp/NAME made and locked, as a writer of another host holds it;
 * its mtime `seconds` ago.  The descriptor that holds the lock. */
static int
held_tmp(const char *dir, const char *name, int seconds)
{
	struct timeval tv[2];
	char p[700];
	int fd;

	snprintf(p, sizeof p, "%s/store/tmp/%s", dir, name);
	fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(flock(fd, LOCK_EX), 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= seconds;
	tv[1] = tv[0];
	CHECK_INT(futimes(fd, tv), 0);
	return fd;
}

static void
a_shared_store_keeps_the_other_hosts_temp_files(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir);
	char p[700];
	struct stat st;
	int fd;

	/* Another host, copying a blob: its file stays at our start. */
	fd = held_tmp(dir, "blob.Other1", 0);
	store_close(s);
	s = open_store(dir);
	snprintf(p, sizeof p, "%s/store/tmp/blob.Other1", dir);
	CHECK_INT(stat(p, &st), 0);
	/* That host killed: its lock is gone, and so is the file at the
	 * next start (or sweep). */
	close(fd);
	store_close(s);
	s = open_store(dir);
	CHECK(stat(p, &st) != 0 && errno == ENOENT);
	CHECK_INT(count_tmp(dir), 0);
	store_close(s);
}

static void
a_sweep_keeps_what_another_hosts_publication_stored(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir), *other = open_store(dir);
	char a[65], why[300];
	struct store_stats st;
	int64_t before = util_now_ms();
	int fd;

	/* The other host's publication began an hour ago; its first blob
	 * is as old, and no job names it yet. */
	fd = held_tmp(dir, "pub.Other2", 3600);
	CHECK_INT(store_put_buf(other, "a", 1, a, why, sizeof why), 0);
	age(dir, a, 3590);
	CHECK(store_sweep_cutoff(s, 0) <= before - 3600 * 1000);
	CHECK_INT(store_sweep(s, NULL, 0, 60 * 1000, &st), 0);
	CHECK_INT((int)st.removed, 0);
	CHECK_INT(count_blobs(dir), 1);
	/* Its host died without recording it: the marker and the blob go. */
	close(fd);
	CHECK_INT(store_sweep(s, NULL, 0, 60 * 1000, &st), 0);
	CHECK_INT((int)st.removed, 1);
	CHECK_INT(count_blobs(dir), 0);
	CHECK_INT(count_tmp(dir), 0);
	store_close(other);
	store_close(s);
}

/*
 * Two hosts on one store: the sweep of one has decided that an old blob
 * no job names goes, just as the other host reuses it (a cache hit's
 * touch, a publication of the same content).  The other host's touch
 * and publication must wait for that decision as this host's do: the
 * touch then finds the blob gone, the publication stores it again.
 */
static void
another_hosts_touch_and_publication_wait_for_the_sweep(void)
{
	const char *dir = unit_tmpdir();
	struct store *s = open_store(dir), *other = open_store(dir);
	struct sweeper w = { .s = s, .rc = 99 };
	char b[65], again[65], why[300];
	uv_thread_t th;
	int fd;

	CHECK_INT(store_put_buf(s, "old\n", 4, b, why, sizeof why), 0);
	age(dir, b, 7200);
	sweep_until_unlink(&w, &th);
	CHECK_INT(store_touch(other, b), -ENOENT);
	uv_thread_join(&th);
	CHECK_INT(w.st.removed, 1);
	CHECK_INT(store_open_blob(other, b), -ENOENT);

	CHECK_INT(store_put_buf(s, "old\n", 4, b, why, sizeof why), 0);
	age(dir, b, 7200);
	sweep_until_unlink(&w, &th);
	CHECK_INT(store_put_buf(other, "old\n", 4, again, why, sizeof why), 0);
	CHECK_STR(again, b);
	uv_thread_join(&th);
	CHECK_INT(w.st.removed, 1);
	fd = store_open_blob(other, b);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* The other host stopped while it holds the lock (SIGSTOP in a
	 * publication): the sweep does not wait for it, it keeps the blob. */
	age(dir, b, 7200);
	fd = store_xlock(other, LOCK_SH);
	CHECK(fd >= 0);
	CHECK_INT(store_sweep(s, NULL, 0, 3600 * 1000, &w.st), 0);
	CHECK_INT(w.st.removed, 0);
	store_xunlock(fd);
	CHECK_INT(store_sweep(s, NULL, 0, 3600 * 1000, &w.st), 0);
	CHECK_INT(w.st.removed, 1);
	store_close(other);
	store_close(s);
}

UNIT_MAIN(
	TEST(put_buf_names_the_blob_by_sha256),
	TEST(publish_dir_stores_every_file),
	TEST(hostile_out_directories_are_refused),
	TEST(sparse_files_count_at_their_length),
	TEST(a_job_budget_is_shared_by_its_targets),
	TEST(concurrent_targets_cannot_both_pass_the_cap),
	TEST(free_space_is_checked_before_copying),
	TEST(a_socket_is_refused),
	TEST(open_clears_interrupted_temp_files),
	TEST(sweep_removes_only_old_unreferenced_blobs),
	TEST(sweep_keeps_what_a_publication_in_progress_stored),
	TEST(touch_and_publication_wait_for_the_sweeps_unlink),
	TEST(names),
	TEST(a_shared_store_keeps_the_other_hosts_temp_files),
	TEST(a_sweep_keeps_what_another_hosts_publication_stored),
	TEST(another_hosts_touch_and_publication_wait_for_the_sweep),
)
