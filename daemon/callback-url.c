#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "callback-url.h"
#include "util.h"

/* Labels of [A-Za-z0-9-], 1 to 63 bytes, no '-' at either end; the last
 * starts with a letter (no top-level domain is numeric, and curl reads
 * an all-numeric or "0x" name as an IPv4 address).  No trailing dot:
 * curl would not match it against the --resolve entry kilnd gives. */
static bool
dns_name_ok(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!isalnum((unsigned char)s[i]) && s[i] != '-')
				return false;
			continue;
		}
		if (i == start || i - start > 63 || s[start] == '-' ||
		    s[i - 1] == '-')
			return false;
		if (i == n && !isalpha((unsigned char)s[start]))
			return false;
		start = i + 1;
	}
	return true;
}

int
callback_url_parse(const char *url, struct callback_url *out, char *why,
    size_t size)
{
	size_t n = strlen(url), hl;
	const char *auth, *end, *host, *rest;
	char h[256];

	memset(out, 0, sizeof *out);
	if (n > CALLBACK_URL_MAX)
		return util_errorf(why, size, "longer than %d bytes",
		    CALLBACK_URL_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f)
			return util_errorf(why, size, "must be printable ASCII without "
			    "spaces (percent-encode anything else)");
	if (strncmp(url, "https://", 8) == 0) {
		out->https = true;
		out->port = 443;
		auth = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		out->port = 80;
		auth = url + 7;
	} else
		return util_errorf(why, size, "must be an http:// or https:// URL");
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return util_errorf(why, size, "must not carry a user name or password "
		    "(user:password@host); callbacks are signed instead");
	if (*auth == '[') {
		const char *close = memchr(auth, ']', (size_t)(end - auth));
		struct in6_addr a6;

		if (close == NULL)
			return util_errorf(why, size, "an IPv6 host must be written "
			    "in brackets: [2001:db8::1]");
		host = auth + 1;
		hl = (size_t)(close - host);
		rest = close + 1;
		if (hl >= INET6_ADDRSTRLEN)
			return util_errorf(why, size, "'[%.60s]' is not an IPv6 "
			    "address", host);
		memcpy(h, host, hl);
		h[hl] = '\0';
		if (inet_pton(AF_INET6, h, &a6) != 1)
			return util_errorf(why, size, "'[%s]' is not an IPv6 address "
			    "(zone ids are not accepted)", h);
		out->literal = true;
	} else {
		struct in_addr a4;

		host = auth;
		rest = memchr(auth, ':', (size_t)(end - auth));
		if (rest == NULL)
			rest = end;
		hl = (size_t)(rest - host);
		if (hl == 0)
			return util_errorf(why, size, "has no host");
		if (hl >= sizeof h)
			return util_errorf(why, size, "host longer than 253 bytes");
		memcpy(h, host, hl);
		h[hl] = '\0';
		if (inet_pton(AF_INET, h, &a4) == 1)
			out->literal = true;
		else if (!dns_name_ok(h, hl))
			return util_errorf(why, size, "host '%.100s' is neither a DNS "
			    "name (letters, digits, '-', '.', ending in a "
			    "name) nor an IP address (dotted quad, or IPv6 in "
			    "brackets)", h);
	}
	if (rest < end) {
		int64_t port = 0;
		size_t digits = (size_t)(end - rest - 1);

		if (*rest != ':' || digits == 0 || digits > 5 ||
		    strspn(rest + 1, "0123456789") < digits)
			return util_errorf(why, size, "the port must be a number from "
			    "1 to 65535");
		for (size_t i = 0; i < digits; i++)
			port = port * 10 + (rest[1 + i] - '0');
		if (port < 1 || port > 65535)
			return util_errorf(why, size, "the port must be a number from "
			    "1 to 65535");
		out->port = (unsigned)port;
	}
	for (size_t i = 0; i <= hl; i++)
		out->host[i] = (char)tolower((unsigned char)h[i]);
	return 0;
}

static bool
same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a == NULL || a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

/* Whether sa is an address of one of this host's interfaces, up or not:
 * kilnd itself may listen there. */
static bool
own_address(const struct sockaddr *sa)
{
	struct ifaddrs *ifa = NULL;
	bool own = false;

	/* Without the list we cannot tell: refuse rather than guess. */
	if (getifaddrs(&ifa) != 0)
		return true;
	for (struct ifaddrs *i = ifa; i != NULL && !own; i = i->ifa_next)
		own = same_addr(i->ifa_addr, sa);
	freeifaddrs(ifa);
	return own;
}

const char *
callback_addr_refused(const struct sockaddr *sa)
{
	struct sockaddr_in v4;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *b = s6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memset(&v4, 0, sizeof v4);
			v4.sin_family = AF_INET;
			memcpy(&v4.sin_addr, b + 12, 4);
			return callback_addr_refused((struct sockaddr *)&v4);
		}
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return "a loopback address";
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			return "an unspecified address";
		if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
			return "a link-local address";
	} else if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);

		if ((a >> 24) == 127)
			return "a loopback address";
		/* 0.0.0.0/8: Linux connects 0.0.0.0 to the host itself. */
		if ((a >> 24) == 0)
			return "an unspecified address";
		if ((a >> 16) == 0xa9fe)
			return "a link-local address";
	} else
		return "not an IP address";
	if (own_address(sa))
		return "an address of this host";
	return NULL;
}

int
callback_url_check(const char *url, bool allow_private, char *why,
    size_t size)
{
	struct callback_url u;
	struct sockaddr_storage ss;
	const char *refused;

	if (callback_url_parse(url, &u, why, size) != 0)
		return -1;
	if (!u.literal || allow_private)
		return 0;
	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, u.host, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, u.host,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return util_errorf(why, size, "'%.100s' is not an IP address", u.host);
	if ((refused = callback_addr_refused((struct sockaddr *)&ss)) != NULL)
		return util_errorf(why, size, "%s is %s; callbacks to loopback, "
		    "link-local and this host's own addresses need "
		    "allow_private_callbacks = yes in [kilnd]", u.host, refused);
	return 0;
}
