/*
 * kiln(1)'s minisign verifier and SHA256SUMS parser (client/minisign.c,
 * client/sums.c): signatures made here with libsodium in both of
 * minisign's forms ("Ed" over the file, "ED" over its BLAKE2b-512 hash)
 * hold, and each way of breaking one (the file, the trusted comment,
 * the key, the encoding) is caught with a reason.  tests/integration/
 * client.sh checks the same verifier against minisign -V on kilnd's
 * own signatures.
 */
#include "config.h"

#include <sodium.h>

#include "unit.h"
#include "client/minisign.h"
#include "client/sums.h"

static unsigned char pk[32], sk[64], kid[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static char *
b64(const unsigned char *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len,
	    sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);

	sodium_bin2base64(s, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

static void
pubkey_text(char *buf, size_t size, const unsigned char *id,
    const unsigned char *key)
{
	unsigned char blob[42];
	char *e;

	memcpy(blob, "Ed", 2);
	memcpy(blob + 2, id, 8);
	memcpy(blob + 10, key, 32);
	e = b64(blob, sizeof blob);
	snprintf(buf, size, "untrusted comment: minisign public key\n%s\n", e);
	free(e);
}

/* A .minisig of msg: alg "Ed" or "ED", the trusted comment tc. */
static void
sign(char *buf, size_t size, const char *alg, const char *msg,
    const char *tc)
{
	unsigned char blob[74], h[64], g[64 + 512];
	const unsigned char *m = (const unsigned char *)msg;
	size_t mlen = strlen(msg);
	char *e1, *e2;

	if (strcmp(alg, "ED") == 0) {
		crypto_generichash(h, 64, m, mlen, NULL, 0);
		m = h;
		mlen = 64;
	}
	memcpy(blob, alg, 2);
	memcpy(blob + 2, kid, 8);
	crypto_sign_ed25519_detached(blob + 10, NULL, m, mlen, sk);
	memcpy(g, blob + 10, 64);
	memcpy(g + 64, tc, strlen(tc));
	crypto_sign_ed25519_detached(h, NULL, g, 64 + strlen(tc), sk);
	e1 = b64(blob, sizeof blob);
	e2 = b64(h, 64);
	snprintf(buf, size, "untrusted comment: signature\n%s\n"
	    "trusted comment: %s\n%s\n", e1, tc, e2);
	free(e1);
	free(e2);
}

static int
verify(const struct minisign_key *k, const char *msg, const char *sig,
    char *err)
{
	char tc[256];

	return minisign_verify(k, msg, strlen(msg), sig, strlen(sig), tc,
	    sizeof tc, err, 256);
}

static void
both_forms_verify(void)
{
	struct minisign_key k;
	char text[256], sig[1024], err[256], tc[128];
	static const char msg[] = "0123  linux_amd64/hello\n";

	pubkey_text(text, sizeof text, kid, pk);
	CHECK_INT(minisign_parse_key(text, strlen(text), &k, err, sizeof err),
	    0);
	minisign_key_id(tc, k.id);
	CHECK_STR(tc, "0807060504030201");
	sign(sig, sizeof sig, "Ed", msg, "timestamp:1 job:12");
	CHECK_INT(minisign_verify(&k, msg, strlen(msg), sig, strlen(sig), tc,
	    sizeof tc, err, sizeof err), 0);
	CHECK_STR(tc, "timestamp:1 job:12");
	sign(sig, sizeof sig, "ED", msg, "prehashed");
	CHECK_INT(verify(&k, msg, sig, err), 0);
}

static void
each_break_is_caught(void)
{
	struct minisign_key k, other;
	unsigned char pk2[32], sk2[64], id2[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
	char text[256], sig[1024], bad[1024], err[256];
	static const char msg[] = "abc  linux_amd64/hello\n";
	char *p;

	pubkey_text(text, sizeof text, kid, pk);
	minisign_parse_key(text, strlen(text), &k, err, sizeof err);
	sign(sig, sizeof sig, "ED", msg, "tc");
	/* The file changed. */
	CHECK_INT(verify(&k, "abd  linux_amd64/hello\n", sig, err), -1);
	CHECK(strstr(err, "does not match the file") != NULL);
	/* The trusted comment changed. */
	snprintf(bad, sizeof bad, "%s", sig);
	p = strstr(bad, "trusted comment: tc");
	p[strlen("trusted comment: t")] = 'x';
	CHECK_INT(verify(&k, msg, bad, err), -1);
	CHECK(strstr(err, "trusted comment") != NULL);
	/* Another key with the same id, and another id. */
	crypto_sign_ed25519_keypair(pk2, sk2);
	pubkey_text(text, sizeof text, kid, pk2);
	minisign_parse_key(text, strlen(text), &other, err, sizeof err);
	CHECK_INT(verify(&other, msg, sig, err), -1);
	pubkey_text(text, sizeof text, id2, pk);
	minisign_parse_key(text, strlen(text), &other, err, sizeof err);
	CHECK_INT(verify(&other, msg, sig, err), -1);
	CHECK(strstr(err, "0807060504030201") != NULL &&
	    strstr(err, "0909090909090909") != NULL);
	/* Not a signature at all; lines missing; base64 broken. */
	CHECK_INT(verify(&k, msg, "hello\n", err), -1);
	snprintf(bad, sizeof bad, "%s", sig);
	p = strchr(bad, '\n') + 5;
	*p = '!';
	CHECK_INT(verify(&k, msg, bad, err), -1);
	CHECK(strstr(err, "line 2") != NULL);
	snprintf(bad, sizeof bad, "%sextra\n", sig);
	CHECK_INT(verify(&k, msg, bad, err), -1);
	/* An unknown algorithm. */
	sign(sig, sizeof sig, "Ex", msg, "tc");
	CHECK_INT(verify(&k, msg, sig, err), -1);
	CHECK(strstr(err, "algorithm") != NULL);
	/* Keys that are not keys. */
	CHECK_INT(minisign_parse_key("x\n", 2, &other, err, sizeof err), -1);
	CHECK_INT(minisign_parse_key("", 0, &other, err, sizeof err), -1);
}

static void
sums_parse_and_names(void)
{
	struct sums_entry *v;
	size_t n;
	char err[256], text[512];
	static const char h[] =
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

	snprintf(text, sizeof text, "%s  linux_amd64/hello\n%s  "
	    "release/app_1.0_linux_amd64.tar.gz\n", h, h);
	CHECK_INT(sums_parse(text, strlen(text), &v, &n, err, sizeof err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].name, "linux_amd64/hello");
		CHECK_STR(v[0].sha256, h);
		CHECK_STR(v[1].name, "release/app_1.0_linux_amd64.tar.gz");
		sums_free(v, n);
	}
	/* Names that would leave the directory, or are not lines at all. */
	static const char *const bad[] = { "../etc/passwd", "/etc/passwd",
	    "a/../../b", "a//b", "a/./b", "a/", "a\tb", "a\\b", "..", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "%s  %s\n", h, bad[i]);
		CHECK_INT(sums_parse(text, strlen(text), &v, &n, err,
		    sizeof err), -1);
		CHECK(strstr(err, "line 1") != NULL);
	}
	snprintf(text, sizeof text, "%s  ok\nzz  short\n", h);
	CHECK_INT(sums_parse(text, strlen(text), &v, &n, err, sizeof err), -1);
	CHECK(strstr(err, "line 2") != NULL);
	snprintf(text, sizeof text, "%.63sg  x\n", h);
	CHECK_INT(sums_parse(text, strlen(text), &v, &n, err, sizeof err), -1);
	CHECK_INT(sums_check_name("linux_arm_v7/hello.exe", err, sizeof err),
	    0);
}

static void
setup(void)
{
	CHECK(sodium_init() >= 0);
	crypto_sign_ed25519_keypair(pk, sk);
}

UNIT_MAIN(
	TEST(setup),
	TEST(both_forms_verify),
	TEST(each_break_is_caught),
	TEST(sums_parse_and_names),
)
