/* libFuzzer: target strings, both forms; a parsed target re-parses to
 * itself (normalization is idempotent) and its URL form round-trips. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[64], err[160], url[TARGET_NAME_MAX];
	struct target t, t2;

	if (size >= sizeof s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (target_parse(&t, s, err, sizeof err) == 0) {
		if (target_parse(&t2, t.name, err, sizeof err) != 0 ||
		    strcmp(t.name, t2.name) != 0)
			abort();
		target_url_name(url, &t);
		if (target_parse_url(&t2, url, err, sizeof err) != 0 ||
		    strcmp(t.name, t2.name) != 0)
			abort();
	} else if (err[0] == '\0')
		abort();
	(void)target_parse_url(&t, s, err, sizeof err);
	return 0;
}
