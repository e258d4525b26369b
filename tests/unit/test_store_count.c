/*
 * The store's size as the metrics show it (store_count, store_size):
 * unknown until the count at start ended; then the blobs already there,
 * and every blob a publication stores or a sweep removes, with a
 * deduplicated publication counted once.
 */
#include "config.h"

#include <stdint.h>
#include <sys/stat.h>

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

UNIT_MAIN(
	TEST(the_count_follows_publications_and_sweeps),
)
