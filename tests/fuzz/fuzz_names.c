/*
 * libFuzzer: the name checkers that stand between a URL or a build's
 * output and the file system or git: artifact names (store_name_ok),
 * store digests, refs and repository URLs.  Properties: an accepted
 * artifact name has no '/', is not "." or "..", and starts with neither
 * '.' nor '-'; an accepted digest is 64 lowercase hex digits; an
 * accepted ref has no "..", no control character, no space and no '\';
 * an accepted notify URL is http(s), printable ASCII without userinfo,
 * with a host and a port in range; a rejection always says why.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "api/api.h"
#include "lib/validate.h"
#include "daemon/callback-url.h"
#include "daemon/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	char s[512], why[512];

	/* validate_ref asks libgit2, which must be set up first. */
	if (!init) {
		git_libgit2_init();
		init = 1;
	}
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
	if (validate_ref(s, why, sizeof why) == 0) {
		if (strstr(s, "..") || strpbrk(s, " \\~^:?*[") != NULL)
			abort();
		for (size_t i = 0; i < size; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				abort();
	} else if (why[0] == '\0')
		abort();
	why[0] = '\0';
	if (validate_repo(s, why, sizeof why) != 0 && why[0] == '\0')
		abort();
	why[0] = '\0';
	if (api_check_notify_url(s, why, sizeof why) == 0) {
		struct callback_url u;
		const char *auth = s + (s[4] == 's' ? 8 : 7);
		if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
			abort();
		/* No userinfo, nothing curl or a log could misread. */
		if (memchr(auth, '@', strcspn(auth, "/?#")) != NULL)
			abort();
		for (size_t i = 0; i < size; i++)
			if ((unsigned char)s[i] <= 0x20 ||
			    (unsigned char)s[i] >= 0x7f)
				abort();
		if (callback_url_parse(s, &u, why, sizeof why) != 0 ||
		    u.host[0] == '\0' || u.port < 1 || u.port > 65535 ||
		    strpbrk(u.host, "%@/?#") != NULL)
			abort();
	} else if (why[0] == '\0')
		abort();
	why[0] = '\0';
	if (callback_url_check(s, false, why, sizeof why) != 0 &&
	    why[0] == '\0')
		abort();
	return 0;
}
