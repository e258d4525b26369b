/*
 * A fuzz target as a plain test program, for make check without clang's
 * libFuzzer: every file of its seed corpus (tests/fuzz/corpus/NAME, or the
 * files and directories named on the command line) goes through
 * LLVMFuzzerTestOneInput, and so do MUTATIONS variants of each made with
 * a fixed seed (bytes flipped, inserted, deleted; halves swapped), so the
 * same inputs run every time.  A broken property aborts; the exit status
 * says so.  Compiled with the target's file and -DFUZZ_NAME="fuzz_x",
 * -DFUZZ_CORPUS="its corpus" (used when SRCDIR is not set).
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/xmalloc.h"

#if !defined(FUZZ_NAME) || !defined(FUZZ_CORPUS)
#error FUZZ_NAME and FUZZ_CORPUS must name the target and its corpus
#endif

#define MUTATIONS 2000
#define REPLAY_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
next(void)
{
	/* xorshift64*: fixed seed, same sequence on every run. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static size_t
mutate(uint8_t *buf, size_t n, size_t cap)
{
	/* Bytes that matter to text parsers: escapes, UTF-8 leads and
	 * continuations, line ends, quotes. */
	static const uint8_t hot[] = { 0x00, 0x07, 0x09, 0x0a, 0x0d, 0x1b,
	    '[', ']', 'm', ';', '"', '\\', 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe0,
	    0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
	unsigned steps = 1 + (unsigned)(next() % 8);

	for (unsigned s = 0; s < steps; s++) {
		size_t at = n ? (size_t)(next() % n) : 0;

		switch (next() % 5) {
		case 0:
			if (n > 0)
				buf[at] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1:
			if (n < cap) {
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = hot[next() % sizeof hot];
				n++;
			}
			break;
		case 2:
			if (n > 0) {
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
			break;
		case 3:
			if (n > 0)
				buf[at] = hot[next() % sizeof hot];
			break;
		default:
			if (n > 1) {
				/* Rotate: the tail comes first. */
				uint8_t *tmp = xmalloc(n);
				memcpy(tmp, buf + at, n - at);
				memcpy(tmp + (n - at), buf, at);
				memcpy(buf, tmp, n);
				free(tmp);
			}
		}
	}
	return n;
}

static int
run_file(const char *path)
{
	uint8_t *buf = xmalloc(REPLAY_MAX), *m = xmalloc(REPLAY_MAX);
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		perror(path);
		free(buf);
		free(m);
		return -1;
	}
	n = fread(buf, 1, REPLAY_MAX / 2, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	for (int i = 0; i < MUTATIONS; i++) {
		memcpy(m, buf, n);
		LLVMFuzzerTestOneInput(m, mutate(m, n, REPLAY_MAX));
	}
	free(buf);
	free(m);
	return 0;
}

static int
run_path(const char *path, unsigned *files)
{
	struct dirent **names = NULL;
	struct stat st;
	int k, rc = 0;

	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*files)++;
		return run_file(path);
	}
	/* Sorted: the mutations follow the same files in the same order. */
	if ((k = scandir(path, &names, NULL, alphasort)) < 0) {
		perror(path);
		return -1;
	}
	for (int i = 0; i < k; i++) {
		if (names[i]->d_name[0] != '.' && rc == 0) {
			char *p = xasprintf("%s/%s", path, names[i]->d_name);
			rc = run_path(p, files);
			free(p);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *src = getenv("SRCDIR");
	unsigned files = 0;
	int rc = 0;

	if (argc > 1) {
		for (int i = 1; i < argc && rc == 0; i++)
			rc = run_path(argv[i], &files);
	} else if (src != NULL) {
		char *dir = xasprintf("%s/tests/fuzz/corpus/%s", src,
		    FUZZ_NAME);
		rc = run_path(dir, &files);
		free(dir);
	} else
		rc = run_path(FUZZ_CORPUS, &files);
	if (rc == 0 && files == 0) {
		fprintf(stderr, "%s: no corpus files\n", FUZZ_NAME);
		rc = -1;
	}
	if (rc == 0)
		printf("%s: %u corpus files, %u inputs each, all held\n",
		    FUZZ_NAME, files, MUTATIONS + 1);
	return rc == 0 ? 0 : 1;
}
