#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "addrcount.h"
#include "xmalloc.h"

struct entry {
	struct addrcount_key k;
	unsigned n;
	struct entry *next;
};

/*
 * A chained hash table.  Clients choose their addresses, so the hash is
 * keyed (SipHash with a key drawn at start): nobody can aim many
 * networks at one bucket.  Entries exist only while a connection does,
 * so the table never holds more than max_connections of them.
 */
struct addrcount {
	struct entry **buckets;
	size_t nbuckets;	/* a power of two */
	size_t nentries;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

int
addrcount_key(struct addrcount_key *out, const struct sockaddr *sa,
    socklen_t len)
{
	memset(out, 0, sizeof *out);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		out->b[0] = 4;
		memcpy(out->b + 1, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			out->b[0] = 4;
			memcpy(out->b + 1, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			out->b[0] = 6;
			memcpy(out->b + 1, s6->sin6_addr.s6_addr, 8);
		}
		return 0;
	}
	return -1;
}

void
addrcount_key_str(const struct addrcount_key *k, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	unsigned char b[16] = { 0 };

	if (k->b[0] == 4 && inet_ntop(AF_INET, k->b + 1, a, sizeof a))
		snprintf(buf, size, "%s", a);
	else if (k->b[0] == 6 && (memcpy(b, k->b + 1, 8),
	    inet_ntop(AF_INET6, b, a, sizeof a)))
		snprintf(buf, size, "%s/64", a);
	else
		snprintf(buf, size, "?");
}

struct addrcount *
addrcount_new(void)
{
	struct addrcount *t = xcalloc(1, sizeof *t);

	if (sodium_init() < 0)
		abort();	/* kilnd cannot run without libsodium */
	randombytes_buf(t->hkey, sizeof t->hkey);
	t->nbuckets = 64;
	t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
	return t;
}

void
addrcount_free(struct addrcount *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct entry *e = t->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->buckets);
	free(t);
}

static size_t
bucket(const struct addrcount *t, const struct addrcount_key *k)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, k->b, sizeof k->b, t->hkey);
	memcpy(&v, h, sizeof v);
	return (size_t)(v & (t->nbuckets - 1));
}

static struct entry **
find(const struct addrcount *t, const struct addrcount_key *k)
{
	struct entry **e = &t->buckets[bucket(t, k)];

	while (*e != NULL && memcmp((*e)->k.b, k->b, sizeof k->b) != 0)
		e = &(*e)->next;
	return e;
}

static void
grow(struct addrcount *t)
{
	struct entry **old = t->buckets;
	size_t n = t->nbuckets;

	t->nbuckets *= 2;
	t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
	for (size_t i = 0; i < n; i++) {
		struct entry *e = old[i], *next;
		for (; e != NULL; e = next) {
			size_t b = bucket(t, &e->k);
			next = e->next;
			e->next = t->buckets[b];
			t->buckets[b] = e;
		}
	}
	free(old);
}

unsigned
addrcount_get(const struct addrcount *t, const struct addrcount_key *k)
{
	struct entry *e = *find(t, k);

	return e != NULL ? e->n : 0;
}

unsigned
addrcount_add(struct addrcount *t, const struct addrcount_key *k)
{
	struct entry **p = find(t, k);

	if (*p == NULL) {
		if (t->nentries >= t->nbuckets) {
			grow(t);
			p = find(t, k);
		}
		*p = xcalloc(1, sizeof **p);
		(*p)->k = *k;
		t->nentries++;
	}
	return ++(*p)->n;
}

void
addrcount_del(struct addrcount *t, const struct addrcount_key *k)
{
	struct entry **p = find(t, k), *e = *p;

	/* Every del pairs with an add. */
	assert(e != NULL && e->n > 0);
	if (--e->n == 0) {
		*p = e->next;
		free(e);
		t->nentries--;
	}
}

size_t
addrcount_size(const struct addrcount *t)
{
	return t->nentries;
}
