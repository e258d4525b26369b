/*
 * A small unit-test harness: each test is a function; CHECK records a
 * failure with file:line and goes on; the program prints one TAP line per
 * test and exits 1 when any failed.  Tests that need files get a fresh
 * temporary directory (unit_tmpdir) removed at exit.
 */
#ifndef KILN_UNIT_H
#define KILN_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int unit_failed_checks;
static char unit_tmp[256];

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
		unit_failed_checks++; \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) { \
		fprintf(stderr, "  %s:%d: CHECK_STR failed: %s == \"%s\", " \
		    "expected \"%s\"\n", __FILE__, __LINE__, #a, \
		    a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		unit_failed_checks++; \
	} \
} while (0)

#define CHECK_INT(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) { \
		fprintf(stderr, "  %s:%d: CHECK_INT failed: %s == %lld, " \
		    "expected %lld\n", __FILE__, __LINE__, #a, a_, b_); \
		unit_failed_checks++; \
	} \
} while (0)

struct unit_test {
	const char *name;
	void (*fn)(void);
};

static void
unit_rmtmp(void)
{
	char cmd[300];

	if (unit_tmp[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", unit_tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", unit_tmp);
	}
}

/* Write text to path (a test's input file). */
__attribute__((unused)) static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

/* A fresh empty directory for the current test. */
__attribute__((unused)) static const char *
unit_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	unit_rmtmp();
	snprintf(unit_tmp, sizeof unit_tmp, "%s/kiln-unit-XXXXXX",
	    base ? base : "/tmp");
	if (mkdtemp(unit_tmp) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	return unit_tmp;
}

static int
unit_run(const struct unit_test *tests, size_t n)
{
	int failed = 0;

	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		int before = unit_failed_checks;
		tests[i].fn();
		if (unit_failed_checks != before) {
			printf("not ok %zu - %s\n", i + 1, tests[i].name);
			failed++;
		} else
			printf("ok %zu - %s\n", i + 1, tests[i].name);
		fflush(stdout);
	}
	unit_rmtmp();
	printf("# %zu passed, %d failed\n", n - (size_t)failed, failed);
	return failed ? 1 : 0;
}

#define UNIT_MAIN(...) \
	int main(void) { \
		static const struct unit_test t_[] = { __VA_ARGS__ }; \
		return unit_run(t_, sizeof t_ / sizeof t_[0]); \
	}
#define TEST(fn) { #fn, fn }

#endif
