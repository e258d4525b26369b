/*
 * Open connections per client network, for max_connections_per_ip.
 *
 * An IPv4 client is one address.  An IPv6 client is its /64: a single
 * host (or a single customer of an ISP) routinely holds a whole /64 and
 * may pick any of its 2^64 addresses per connection, so counting exact
 * IPv6 addresses would limit nothing.  An IPv4-mapped IPv6 address (a
 * dual-stack listener's IPv4 client) counts as the IPv4 address it
 * carries.
 */
#ifndef KILN_ADDRCOUNT_H
#define KILN_ADDRCOUNT_H

#include <stddef.h>
#include <sys/socket.h>

/* A family byte, then 4 (IPv4) or 8 (IPv6 /64) bytes, zero-padded. */
#define ADDRCOUNT_KEY_LEN 9

struct addrcount_key {
	unsigned char b[ADDRCOUNT_KEY_LEN];
};

struct addrcount;

/*
 * The network `sa` counts in.  -1 for what is not an IPv4 or IPv6
 * address (or is shorter than its family says): such clients are not
 * counted.
 */
int addrcount_key(struct addrcount_key *out, const struct sockaddr *sa,
    socklen_t len);
/* "192.0.2.7" or "2001:db8:1:2::/64", for log lines. */
void addrcount_key_str(const struct addrcount_key *k, char *buf,
    size_t size);

struct addrcount *addrcount_new(void);
void addrcount_free(struct addrcount *t);
/* Connections counted for the network now. */
unsigned addrcount_get(const struct addrcount *t,
    const struct addrcount_key *k);
/* One more connection; returns the new count. */
unsigned addrcount_add(struct addrcount *t, const struct addrcount_key *k);
/* One fewer (a network at 0 is forgotten). */
void addrcount_del(struct addrcount *t, const struct addrcount_key *k);
/* Networks with at least one connection. */
size_t addrcount_size(const struct addrcount *t);

#endif
