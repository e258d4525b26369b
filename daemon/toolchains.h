/*
 * The Go toolchains of this host and the choice of one for a module.
 *
 * Debian installs each Go release series at /usr/lib/go-1.NN/bin/go
 * (golang-go's 1.19, and 1.21 to 1.23 from bookworm-backports); the `go`
 * key of [toolchains] in kilnd.conf adds others.  Builds see only /usr,
 * so a toolchain whose binary resolves elsewhere is not offered.
 */
#ifndef KILN_TOOLCHAINS_H
#define KILN_TOOLCHAINS_H

#include <stddef.h>

#include <jansson.h>

#include "conf.h"

struct toolchain {
	char *go;	/* the go binary, resolved: /usr/lib/go-1.22/bin/go */
	char *bindir;	/* its directory, first on the build's PATH */
	char *version;	/* "go1.22.12", from `go version` */
	char *identity;	/* its build-cache identity (toolid_go) */
};

/*
 * Ascending by version (then by path); a binary reached by two paths
 * (/usr/bin/go is /usr/lib/go-1.19/bin/go) is there once.
 */
struct toolchains {
	struct toolchain *v;
	size_t n;
};

/*
 * Find every /usr/lib/go-1.NN/bin/go and conf's go_toolchains and run
 * `go version` of each: it blocks, so call it before the loop starts or
 * in the thread pool.  One that does not run or resolves outside /usr is
 * left out with a warning naming it.  Returns 0 (out may be empty), or
 * -1 with err when /usr/lib cannot be listed.
 */
int toolchains_discover(struct toolchains *out,
    const struct kiln_config *conf, char *err, size_t errsize);
void toolchains_free(struct toolchains *tc);

/*
 * Whether the go.mod lines and the recipe's pin are well formed
 * (toolchains_choose's first checks): 0, or -1 with the reason in err.
 * When they are, toolchains_choose fails only for want of an installed
 * Go that fits: another host, with other releases, may have one.
 */
int toolchains_check(const char *go_line, const char *toolchain_line,
    const char *pin, char *err, size_t errsize);
/*
 * Whether some Go release could satisfy both the go.mod go line and the
 * recipe's pin (both well formed, toolchains_check): false when the pin
 * is a release below the go line, or a series older than the go line's.
 * True without a pin or a go line.
 */
bool toolchains_pin_possible(const char *go_line, const char *pin);
/*
 * The toolchain to build a module with, or NULL with the reason in err.
 *
 * pin, the recipe's "go" (NULL: none): "1.22" is the newest installed
 * 1.22.x, "1.22.12" exactly that; older than the go line is an error.
 * Without a pin, as the go command with GOTOOLCHAIN=auto would, short of
 * downloading: the lowest installed version >= max(go line, toolchain
 * line), else the newest >= the go line (none reaches the toolchain
 * line, the newest comes closest); no go line: the lowest installed.  A release before 1.21
 * cannot read a toolchain line or a go line like "1.19.5" or "1.21rc1",
 * so it is not chosen for one.  go_line and toolchain_line are as in
 * struct gomod ("" or NULL: none).
 */
const struct toolchain *toolchains_choose(const struct toolchains *tc,
    const char *go_line, const char *toolchain_line, const char *pin,
    char *err, size_t errsize);

/* [{"version", "path", "identity"}, ...] */
json_t *toolchains_json(const struct toolchains *tc);
/*
 * What this host can build, for the farm's hosts table (GET /v1/hosts):
 * its Go releases, then the targets whose C toolchain is mapped and
 * installed, "go1.21.13 go1.22.12; cgo linux/amd64 linux/arm64" ("no
 * Go", "cgo none" when so).  malloc'd.
 */
char *toolchains_map(const struct toolchains *tc,
    const struct kiln_config *conf);

#endif
