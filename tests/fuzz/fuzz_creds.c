/*
 * libFuzzer: a project's credentials file (lib/creds.c), as the worker
 * reads it from kilnd.  No crash; what is accepted is what libgit2 is
 * handed safely: every header "Name: value" on one line without control
 * characters, every login complete with a plain host name; an error
 * names a line or the whole file and never quotes a value.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct creds *c = NULL;
	char err[256], host[64];

	if (creds_parse(&c, (const char *)data, size, err, sizeof err) != 0) {
		if (c != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (c == NULL || (c->nlogins == 0) == (c->nheaders == 0))
		abort();
	for (size_t i = 0; i < c->nheaders; i++) {
		const char *h = c->headers[i], *colon = strchr(h, ':');
		if (colon == NULL || colon == h || colon[1] != ' ' ||
		    colon[2] == '\0' || colon[2] == ' ')
			abort();
		for (const char *p = h; *p; p++)
			if (((unsigned char)*p < 0x20 && *p != '\t') ||
			    *p == 0x7f)
				abort();
	}
	for (size_t i = 0; i < c->nlogins; i++) {
		const struct creds_login *l = &c->logins[i];
		if (l->machine == NULL || l->login == NULL ||
		    l->password == NULL || l->machine[0] == '\0' ||
		    strpbrk(l->machine, "/@ \t\r\n") != NULL ||
		    creds_login_for(c, l->machine) == NULL)
			abort();
	}
	/* The host of a URL: never longer than asked, never with a '/'. */
	if (size < 200) {
		char url[256];
		memcpy(url, "https://", 8);
		memcpy(url + 8, data, size);
		url[8 + size] = '\0';
		if (creds_url_host(host, sizeof host, url) == 0 &&
		    (strlen(host) >= sizeof host || strchr(host, '/') != NULL))
			abort();
	}
	creds_free(c);
	return 0;
}
