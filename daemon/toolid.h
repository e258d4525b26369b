/*
 * The identity of the toolchain a target's build uses, for the build
 * cache key: the first line of `go version` (go recipes) or of
 * `$CC --version` (command recipes, CC from [toolchains]), plus the
 * compiler's resolved path.  An upgraded compiler gives a new identity,
 * so nothing built with the old one is reused.
 *
 * Runs the compiler, so it is for the thread pool; answers are kept per
 * (path, inode, size, mtime) and reused while the binary is unchanged.
 * Thread-safe.
 */
#ifndef KILN_TOOLID_H
#define KILN_TOOLID_H

#include "conf.h"
#include "target.h"

/*
 * The identity (malloc'd) for building with the recipe (validated JSON),
 * the target's C toolchain triple from [toolchains] (NULL: none) and the
 * go binary the build runs (NULL: the go on the builds' PATH), or NULL
 * with a reason in err when a compiler cannot be run: the build then goes
 * ahead uncached.  The caller reads the triple from the configuration on
 * the loop thread (a reload may replace it).
 */
char *toolid_for(const char *recipe_json, const char *triple,
    const char *go_path, char *err, size_t errsize);

/*
 * The identity of the go binary at go_path (NULL: the go on the builds'
 * PATH), "RESOLVED-PATH: go version go1.22.12 linux/amd64" (malloc'd), or
 * NULL with a reason in err.
 */
char *toolid_go(const char *go_path, char *err, size_t errsize);

#endif
