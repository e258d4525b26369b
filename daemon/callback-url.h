/*
 * Where result callbacks may go.  A notify URL comes from whoever may
 * submit a job, and kilnd hands it to curl(1) on the farm itself: without
 * these checks a submitter could make the farm POST to its own loopback
 * services, to a cloud metadata address (169.254.169.254), or to kilnd's
 * API on one of the host's addresses.
 *
 * The grammar is stricter than RFC 3986 on purpose: a host is an IPv4
 * address in dotted-quad form, an IPv6 address in brackets, or a DNS name
 * of letters, digits, '-' and '.' whose last label starts with a letter.
 * That refuses every spelling curl would read as an address that a
 * resolver might not ("127.1", "2130706433", "0x7f.1", "%31%32%37.0.0.1"),
 * so the name kilnd resolves and checks is the name curl connects to.
 */
#ifndef KILN_CALLBACK_URL_H
#define KILN_CALLBACK_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CALLBACK_URL_MAX 2048

struct callback_url {
	bool https;
	bool literal;			/* host is an IP address */
	char host[256];			/* lower case; IPv6 without brackets */
	unsigned port;			/* as written, else 80 or 443 */
};

/*
 * Parse a notify URL: http or https, a host, an optional port, then any
 * printable ASCII (curl runs with --globoff, so '[' and '{' are literal).
 * No user name or password, no spaces or control characters, at most
 * CALLBACK_URL_MAX bytes.  0, or -1 with why (the URL's userinfo is
 * never quoted).
 */
int callback_url_parse(const char *url, struct callback_url *out, char *why,
    size_t whysize);

/*
 * Why callbacks may not go to address sa without allow_private_callbacks:
 * "a loopback address", "a link-local address", "an unspecified
 * address", "an address of this host" (one of its interfaces'), or NULL
 * when it may.  An IPv4-mapped IPv6 address is judged by its IPv4 part.
 */
const char *callback_addr_refused(const struct sockaddr *sa);

/*
 * A notify URL a submitter sent: callback_url_parse, then, for a host
 * that is an IP address, callback_addr_refused unless allow_private.
 * (A host name is resolved and checked when the callback is sent.)
 */
int callback_url_check(const char *url, bool allow_private, char *why,
    size_t whysize);

#endif
