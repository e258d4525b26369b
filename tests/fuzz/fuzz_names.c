/*
 * libFuzzer: the name checkers that stand between a URL or a build's
 * output and the file system or git: artifact names (store_name_ok),
 * store digests, refs and repository URLs.  Properties: an accepted
 * artifact name has no '/', is not "." or "..", and starts with neither
 * '.' nor '-'; an accepted digest is 64 lowercase hex digits; an
 * accepted ref has no "..", no control character, no space and no '\';
 * a rejection always says why.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "daemon/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512], why[512];

	if (size >= sizeof s || memchr(data, '\0', size) != NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (store_name_ok(s)) {
		if (strchr(s, '/') || s[0] == '.' || s[0] == '-' ||
		    strcmp(s, "..") == 0 || size == 0 || size > 128)
			abort();
	}
	if (store_digest_valid(s) &&
	    (size != 64 || strspn(s, "0123456789abcdef") != 64))
		abort();
	why[0] = '\0';
	if (api_check_ref(s, why, sizeof why) == 0) {
		if (strstr(s, "..") || strpbrk(s, " \\~^:?*[") != NULL)
			abort();
		for (size_t i = 0; i < size; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				abort();
	} else if (why[0] == '\0')
		abort();
	why[0] = '\0';
	if (api_check_repo(s, why, sizeof why) != 0 && why[0] == '\0')
		abort();
	why[0] = '\0';
	if (api_check_notify_url(s, why, sizeof why) == 0) {
		if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
			abort();
	} else if (why[0] == '\0')
		abort();
	return 0;
}
