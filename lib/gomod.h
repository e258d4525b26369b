/*
 * What kiln reads of a repository's go.mod: the module path, the `go` and
 * `toolchain` lines (to choose a Go toolchain, toolchains.h) and whether
 * it requires anything.  Go versions compare as the go command compares
 * them (cmd/go/internal/gover):
 *
 *	1.20rc1 < 1.20 = 1.20.0 < 1.21 < 1.21rc1 < 1.21.0 < 1.21.13 < 1.22
 *
 * Before 1.21 "1.N" names the release 1.N.0; from 1.21 on it is the
 * language version, below every release and release candidate of 1.N.
 */
#ifndef KILN_GOMOD_H
#define KILN_GOMOD_H

#include <stdbool.h>
#include <stddef.h>

struct gomod {
	char module[512];	/* module path, "" if none */
	char go[32];		/* the go line, "1.22.0" or "1.21"; "" if none */
	char toolchain[32];	/* "go1.22.3"; "" if none or "default" */
	bool requires;		/* at least one require */
};

/*
 * Parse go.mod text (from a repository: hostile; no allocation, one pass).
 * Knows comments, blocks (`require ( ... )`) and quoted module paths;
 * other directives are skipped.  Returns 0, or -1 with an error naming
 * the line in err: "go.mod:3: invalid go version '1.x'".
 */
int gomod_parse(struct gomod *out, const char *text, size_t len, char *err,
    size_t errsize);

/*
 * Compare two Go versions ("1.22", "1.22.0", "1.22rc1", each with or
 * without a "go" prefix): <0, 0, >0.  An invalid version sorts below
 * every valid one; two invalid ones are equal.
 */
int gomod_version_cmp(const char *a, const char *b);

/* "1.22", "1.22.0", "1.22rc1", with or without "go": what a go line takes. */
bool gomod_version_valid(const char *v);

/*
 * The language version of v ("go1.22.12" -> "1.22") into out; -1 when v
 * is invalid or out too small.
 */
int gomod_version_lang(char *out, size_t outsize, const char *v);

#endif
