/*
 * bench/storeput DIR STATE RUNS: publish the files of DIR into a fresh
 * content-addressed store under STATE, RUNS times, with the code kilnd
 * uses (store_publish_dir: hash, copy, fsync, rename); prints one line
 * per run: "run N: BYTES bytes in SECONDS s = MB/s".  The store is
 * removed before each run so that every run writes every byte.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/store.h"
#include "lib/util.h"

int
main(int argc, char **argv)
{
	struct store_limits lim = { 100000, INT64_MAX };
	char err[512];
	int runs;

	if (argc != 4 || (runs = atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: storeput DIR STATE RUNS\n");
		return 2;
	}
	for (int r = 1; r <= runs; r++) {
		struct store *s;
		struct artifact *arts = NULL;
		struct timespec a, b;
		size_t n = 0;
		int64_t bytes = 0;
		char *store = NULL;
		double secs;

		if (asprintf(&store, "%s/store", argv[2]) < 0)
			return 1;
		util_rmtree(store);
		free(store);
		if (store_open(&s, argv[2], err, sizeof err) != 0) {
			fprintf(stderr, "storeput: %s\n", err);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (store_publish_dir(s, argv[1], &lim, &arts, &n, err,
		    sizeof err) != 0) {
			fprintf(stderr, "storeput: %s\n", err);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		for (size_t i = 0; i < n; i++)
			bytes += arts[i].size;
		artifacts_free(arts, n);
		store_close(s);
		secs = (double)(b.tv_sec - a.tv_sec) +
		    (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		printf("run %d: %lld bytes in %.3f s = %.1f MB/s\n", r,
		    (long long)bytes, secs, (double)bytes / secs / 1e6);
	}
	return 0;
}
