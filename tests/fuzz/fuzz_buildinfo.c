/*
 * libFuzzer: a Go binary's bytes and module-information text, both
 * hostile.  No crash and no read outside the input (ASan); an error says
 * what was wrong; what is accepted has every field set and no dep path
 * twice, and the text parser agrees with itself on a second run.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buildinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct buildinfo *b)
{
	size_t i, j;

	if (b->main.path != NULL && (b->main.version == NULL ||
	    b->main.sum == NULL))
		abort();
	for (i = 0; i < b->ndeps; i++) {
		if (b->deps[i].path == NULL || b->deps[i].path[0] == '\0' ||
		    b->deps[i].version == NULL || b->deps[i].sum == NULL)
			abort();
		if (b->deps[i].replace != NULL &&
		    (b->deps[i].replace->path == NULL ||
		    b->deps[i].replace->replace != NULL))
			abort();
		/* Quadratic, but fuzz inputs are small. */
		for (j = 0; j < i && j < 64; j++)
			if (strcmp(b->deps[i].path, b->deps[j].path) == 0)
				abort();
	}
	for (i = 0; i < b->nsettings; i++)
		if (b->settings_key[i] == NULL || b->settings_value[i] == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buildinfo a, b;
	char err[256];
	int rc;

	err[0] = '\0';
	if (buildinfo_from_binary(&a, data, size, err, sizeof err) == 0) {
		if (a.go_version == NULL || a.go_version[0] == '\0')
			abort();
		check(&a);
		buildinfo_free(&a);
	} else if (err[0] == '\0')
		abort();

	err[0] = '\0';
	rc = buildinfo_parse(&a, (const char *)data, size, err, sizeof err);
	if (rc == 0) {
		check(&a);
		if (buildinfo_parse(&b, (const char *)data, size, err,
		    sizeof err) != 0 || b.ndeps != a.ndeps ||
		    b.nsettings != a.nsettings)
			abort();
		buildinfo_free(&b);
		buildinfo_free(&a);
	} else if (strncmp(err, "build information", 17) != 0)
		abort();
	return 0;
}
