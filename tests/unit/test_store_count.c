/*
 * The store's size as the metrics show it (store_count, store_size):
 * unknown until the count at start ended; then the blobs already there,
 * and every blob a publication stores or a sweep removes, with a
 * deduplicated publication counted once.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <uv.h>

#include "daemon/store.h"
#include "lib/util.h"
#include "unit.h"

static void
the_count_follows_publications_and_sweeps(void)
{
	const char *state = unit_tmpdir();
	struct store *s = NULL;
	struct store_stats st;
	char err[256], hex[STORE_HEX_LEN + 1], dir[512];
	uint64_t blobs = 99, bytes = 99;

	CHECK_INT(store_open(&s, state, err, sizeof err), 0);
	if (s == NULL)
		return;
	/* Stored before the count (what an earlier run left). */
	CHECK_INT(store_put_buf(s, "hello\n", 6, hex, err, sizeof err), 0);
	CHECK_INT(store_put_buf(s, "0123456789", 10, hex, err, sizeof err), 0);
	CHECK(!store_size(s, &blobs, &bytes));
	store_count(s);
	CHECK(store_size(s, &blobs, &bytes));
	CHECK_INT(blobs, 2);
	CHECK_INT(bytes, 16);

	/* A new blob counts at once; the same content again does not. */
	CHECK_INT(store_put_buf(s, "abc", 3, hex, err, sizeof err), 0);
	CHECK_INT(store_put_buf(s, "abc", 3, hex, err, sizeof err), 0);
	CHECK(store_size(s, &blobs, &bytes));
	CHECK_INT(blobs, 3);
	CHECK_INT(bytes, 19);
	snprintf(dir, sizeof dir, "%s/out", state);
	CHECK_INT(mkdir(dir, 0755), 0);
	{
		struct store_limits lim = { .max_files = 10,
		    .max_bytes = 1 << 20 };
		struct artifact *arts = NULL;
		size_t n = 0;
		char f[600];

		snprintf(f, sizeof f, "%s/new", dir);
		write_text(f, "a new file\n");		/* 11 bytes */
		snprintf(f, sizeof f, "%s/dup", dir);
		write_text(f, "hello\n");		/* stored already */
		CHECK_INT(store_publish_dir(s, dir, &lim, &arts, &n, err,
		    sizeof err), 0);
		CHECK_INT(n, 2);
		artifacts_free(arts, n);
	}
	CHECK(store_size(s, &blobs, &bytes));
	CHECK_INT(blobs, 4);
	CHECK_INT(bytes, 30);

	/* A sweep with no grace and nothing referenced removes them all. */
	CHECK_INT(store_sweep(s, NULL, 0, -10 * 1000, &st), 0);
	CHECK_INT(st.removed, 4);
	CHECK(store_size(s, &blobs, &bytes));
	CHECK_INT(blobs, 0);
	CHECK_INT(bytes, 0);
	store_close(s);
}

/*
 * The test links with -Wl,--wrap=lstat: while slow_lstat is set, a
 * look-up that finds no blob returns 100 ms late, so that two
 * publications of the same content both find it absent before either
 * stores it.
 */
int __real_lstat(const char *path, struct stat *sb);
int __wrap_lstat(const char *path, struct stat *sb);
static volatile int slow_lstat;

int
__wrap_lstat(const char *path, struct stat *sb)
{
	int rc = __real_lstat(path, sb);

	if (slow_lstat && rc != 0 && strstr(path, "/sha256/") != NULL) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return rc;
}

struct racer {
	struct store *s;
	int rc;
};

static void
store_same(void *arg)
{
	struct racer *r = arg;
	char hex[STORE_HEX_LEN + 1], err[256];

	r->rc = store_put_buf(r->s, "same content\n", 13, hex, err,
	    sizeof err);
}

/* The blobs the store's directories hold, read from the disk. */
static uint64_t
blobs_on_disk(const char *state)
{
	char path[600];
	uint64_t n = 0;

	for (unsigned i = 0; i < STORE_DIRS; i++) {
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof path, "%s/store/sha256/%02x", state, i);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			if (store_digest_valid(de->d_name))
				n++;
		closedir(d);
	}
	return n;
}

/*
 * Two publications of the same content at once (two targets that ship
 * the same file, two jobs of one commit) store one blob, and the count
 * says one: the second finds the first's blob and does not count it
 * again.
 */
static void
same_content_at_once_is_counted_once(void)
{
	const char *state = unit_tmpdir();
	struct store *s = NULL;
	struct racer r[2];
	uv_thread_t th[2];
	char err[256];
	uint64_t blobs = 99, bytes = 99;

	CHECK_INT(store_open(&s, state, err, sizeof err), 0);
	if (s == NULL)
		return;
	store_count(s);
	slow_lstat = 1;
	for (int i = 0; i < 2; i++) {
		r[i].s = s;
		r[i].rc = -1;
		CHECK_INT(uv_thread_create(&th[i], store_same, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		uv_thread_join(&th[i]);
	slow_lstat = 0;
	CHECK_INT(r[0].rc, 0);
	CHECK_INT(r[1].rc, 0);
	CHECK_INT(blobs_on_disk(state), 1);
	CHECK(store_size(s, &blobs, &bytes));
	CHECK_INT(blobs, 1);
	CHECK_INT(bytes, 13);
	store_close(s);
}

UNIT_MAIN(
	TEST(the_count_follows_publications_and_sweeps),
	TEST(same_content_at_once_is_counted_once),
)
