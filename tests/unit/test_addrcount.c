/*
 * http/addrcount.c: the networks max_connections_per_ip counts in.
 * Two IPv6 addresses of one /64 are one client (one host may use all of
 * them), of two /64s two; IPv4 counts per address, and an IPv4-mapped
 * IPv6 address as the IPv4 address it carries.  The counts go back to
 * nothing when every connection is gone.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "http/addrcount.h"
#include "unit.h"

static socklen_t
sa_of(struct sockaddr_storage *ss, const char *text)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		return sizeof *s4;
	}
	CHECK(inet_pton(AF_INET6, text, &s6->sin6_addr) == 1);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(40001);
	return sizeof *s6;
}

static struct addrcount_key
key_of(const char *text)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_of(&ss, text);
	struct addrcount_key k;

	CHECK_INT(addrcount_key(&k, (struct sockaddr *)&ss, len), 0);
	return k;
}

static int
same(const char *a, const char *b)
{
	struct addrcount_key ka = key_of(a), kb = key_of(b);

	return memcmp(ka.b, kb.b, sizeof ka.b) == 0;
}

static void
ipv6_counts_per_64(void)
{
	CHECK(same("2001:db8:1:2::1", "2001:db8:1:2::2"));
	CHECK(same("2001:db8:1:2::1",
	    "2001:db8:1:2:ffff:ffff:ffff:ffff"));
	CHECK(same("fd00:6b::2", "fd00:6b::3"));
	CHECK(!same("2001:db8:1:2::1", "2001:db8:1:3::1"));
	CHECK(!same("2001:db8:1:2::1", "2001:db9:1:2::1"));
	CHECK(!same("::1", "fd00:6b::2"));
}

static void
ipv4_counts_per_address(void)
{
	CHECK(!same("127.0.0.2", "127.0.0.3"));
	CHECK(!same("192.0.2.1", "192.0.2.2"));
	CHECK(same("192.0.2.1", "192.0.2.1"));
	/* Mapped, as a dual-stack listener sees IPv4 clients. */
	CHECK(same("::ffff:192.0.2.1", "192.0.2.1"));
	CHECK(!same("::ffff:192.0.2.1", "::ffff:192.0.2.2"));
	/* The same 4 bytes as the start of an IPv6 address stay apart. */
	CHECK(!same("c000:201::", "192.0.2.1"));
}

static void
what_is_not_ip_is_not_counted(void)
{
	struct sockaddr_storage ss;
	struct addrcount_key k;
	socklen_t len;

	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	CHECK_INT(addrcount_key(&k, (struct sockaddr *)&ss, sizeof ss), -1);
	CHECK_INT(addrcount_key(&k, NULL, 0), -1);
	len = sa_of(&ss, "2001:db8::1");
	CHECK_INT(addrcount_key(&k, (struct sockaddr *)&ss, len - 1), -1);
	len = sa_of(&ss, "192.0.2.1");
	CHECK_INT(addrcount_key(&k, (struct sockaddr *)&ss, len - 1), -1);
}

static void
names_in_log_lines(void)
{
	struct addrcount_key k;
	char buf[64];

	k = key_of("2001:db8:1:2:3:4:5:6");
	addrcount_key_str(&k, buf, sizeof buf);
	CHECK_STR(buf, "2001:db8:1:2::/64");
	k = key_of("::ffff:198.51.100.7");
	addrcount_key_str(&k, buf, sizeof buf);
	CHECK_STR(buf, "198.51.100.7");
}

static void
counts_go_up_and_back_to_nothing(void)
{
	struct addrcount *t = addrcount_new();
	struct addrcount_key a = key_of("fd00:6b::2"), b = key_of("fd00:6b::3");
	struct addrcount_key c = key_of("127.0.0.2");

	CHECK_INT(addrcount_get(t, &a), 0);
	CHECK_INT(addrcount_add(t, &a), 1);
	CHECK_INT(addrcount_add(t, &b), 2);
	CHECK_INT(addrcount_get(t, &a), 2);
	CHECK_INT(addrcount_add(t, &c), 1);
	CHECK_INT(addrcount_size(t), 2);
	addrcount_del(t, &a);
	CHECK_INT(addrcount_get(t, &b), 1);
	addrcount_del(t, &b);
	CHECK_INT(addrcount_get(t, &a), 0);
	CHECK_INT(addrcount_size(t), 1);
	addrcount_del(t, &c);
	CHECK_INT(addrcount_size(t), 0);
	addrcount_free(t);
}

/* Many networks at once: the table grows and every count stays its own. */
static void
many_networks(void)
{
	struct addrcount *t = addrcount_new();
	char text[64];
	struct addrcount_key k;
	int bad = 0;

	for (unsigned i = 0; i < 5000; i++) {
		snprintf(text, sizeof text, "2001:db8:%x:%x::%x", i >> 8,
		    i & 0xff, i);
		k = key_of(text);
		for (unsigned j = 0; j <= i % 3; j++)
			addrcount_add(t, &k);
	}
	CHECK_INT(addrcount_size(t), 5000);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(text, sizeof text, "2001:db8:%x:%x::1", i >> 8,
		    i & 0xff);
		k = key_of(text);
		bad += addrcount_get(t, &k) != i % 3 + 1;
		for (unsigned j = 0; j <= i % 3; j++)
			addrcount_del(t, &k);
	}
	CHECK_INT(bad, 0);
	CHECK_INT(addrcount_size(t), 0);
	addrcount_free(t);
}

UNIT_MAIN(
	TEST(ipv6_counts_per_64),
	TEST(ipv4_counts_per_address),
	TEST(what_is_not_ip_is_not_counted),
	TEST(names_in_log_lines),
	TEST(counts_go_up_and_back_to_nothing),
	TEST(many_networks),
)
