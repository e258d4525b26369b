/*
 * libFuzzer: go.mod text from a repository.  No crash; an error names a
 * line; what is accepted is what kiln relies on (a valid go version, a
 * goVERSION toolchain, a printable ASCII module path); and the version
 * order is antisymmetric.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/gomod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
sign(int c)
{
	return (c > 0) - (c < 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gomod m;
	char err[256], a[40], b[40];
	const char *nl;
	size_t n;

	if (gomod_parse(&m, (const char *)data, size, err, sizeof err) == 0) {
		if ((m.go[0] != '\0' && (!gomod_version_valid(m.go) ||
		    m.go[0] == 'g')) || (m.toolchain[0] != '\0' &&
		    (strncmp(m.toolchain, "go", 2) != 0 ||
		    !gomod_version_valid(m.toolchain))))
			abort();
		for (const char *p = m.module; *p; p++)
			if (*p <= ' ' || *p >= 0x7f)
				abort();
	} else if (strncmp(err, "go.mod:", 7) != 0)
		abort();

	/* The first two lines as versions. */
	nl = memchr(data, '\n', size);
	n = nl ? (size_t)(nl - (const char *)data) : size;
	if (n >= sizeof a || memchr(data, '\0', n) != NULL)
		return 0;
	memcpy(a, data, n);
	a[n] = '\0';
	data += n + (nl != NULL);
	size -= n + (nl != NULL);
	n = size < sizeof b - 1 ? size : sizeof b - 1;
	memcpy(b, data, n);
	b[n] = '\0';
	if (sign(gomod_version_cmp(a, b)) != -sign(gomod_version_cmp(b, a)) ||
	    gomod_version_cmp(a, a) != 0)
		abort();
	return 0;
}
