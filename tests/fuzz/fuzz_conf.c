/* libFuzzer: kilnd.conf parsing; a refusal always names file:line or the
 * file, and an accepted file leaves every setting in range. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_config c;
	char err[600] = "";
	FILE *f;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (f == NULL)
		return 0;
	conf_defaults(&c);
	if (conf_load_stream(&c, f, "fuzz.conf", err, sizeof err) == 0) {
		if (c.workers < 1 || c.workers > 1024 || c.listen == NULL ||
		    c.state_dir == NULL || c.max_body < 1024)
			abort();
	} else if (strncmp(err, "fuzz.conf", 9) != 0)
		abort();
	fclose(f);
	conf_free(&c);
	return 0;
}
