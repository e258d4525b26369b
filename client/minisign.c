/*
 * minisign verification (minisign.h).  Everything parsed here comes from
 * the server or a file the user gave: lengths are checked before any
 * copy, and each field must decode to exactly its size.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "minisign.h"

#define B64 sodium_base64_VARIANT_ORIGINAL
#define MINISIG_MAX 8192	/* a signature file is a few hundred bytes */
#define LINES_MAX 4

/* Split text into at most LINES_MAX lines (without "\r\n"); the count. */
static size_t
split_lines(const char *text, size_t len, const char *line[LINES_MAX],
    size_t linelen[LINES_MAX], int *extra)
{
	size_t n = 0, i = 0;

	*extra = 0;
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - text) : len, l = e - i;

		if (l > 0 && text[i + l - 1] == '\r')
			l--;
		if (n == LINES_MAX) {
			if (l > 0)
				*extra = 1;
		} else {
			line[n] = text + i;
			linelen[n++] = l;
		}
		i = e + 1;
	}
	return n;
}

static int
decode(const char *b64, size_t b64len, unsigned char *out, size_t want)
{
	size_t got;

	if (sodium_base642bin(out, want, b64, b64len, NULL, &got, NULL,
	    B64) != 0 || got != want)
		return -1;
	return 0;
}

void
minisign_key_id(char out[17], const unsigned char id[8])
{
	/* minisign shows the id as a little-endian 64-bit number. */
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02X", id[7 - i]);
}

int
minisign_parse_key(const char *text, size_t len, struct minisign_key *out,
    char *err, size_t errsize)
{
	const char *line[LINES_MAX];
	size_t linelen[LINES_MAX], n;
	unsigned char blob[2 + 8 + 32];
	int extra, k = 0;

	if (sodium_init() < 0) {
		snprintf(err, errsize, "libsodium cannot initialize");
		return -1;
	}
	if (len > MINISIG_MAX) {
		snprintf(err, errsize, "not a minisign public key: %zu bytes",
		    len);
		return -1;
	}
	n = split_lines(text, len, line, linelen, &extra);
	if (n >= 1 && linelen[0] >= 18 &&
	    memcmp(line[0], "untrusted comment:", 18) == 0)
		k = 1;
	if ((size_t)k >= n || extra || (n > (size_t)k + 1 && linelen[k + 1])) {
		snprintf(err, errsize, "not a minisign public key: expected "
		    "an untrusted comment line and one base64 line");
		return -1;
	}
	if (decode(line[k], linelen[k], blob, sizeof blob) != 0) {
		snprintf(err, errsize, "not a minisign public key: the key "
		    "line is not base64 of %zu bytes", sizeof blob);
		return -1;
	}
	if (memcmp(blob, "Ed", 2) != 0) {
		snprintf(err, errsize, "not a minisign public key: algorithm "
		    "'%c%c', expected 'Ed'", blob[0] & 0x7f, blob[1] & 0x7f);
		return -1;
	}
	memcpy(out->id, blob + 2, 8);
	memcpy(out->pk, blob + 10, 32);
	return 0;
}

int
minisign_verify(const struct minisign_key *key, const void *msg, size_t len,
    const char *sig, size_t siglen, char *tc, size_t tcsize, char *err,
    size_t errsize)
{
	const char *line[LINES_MAX];
	size_t linelen[LINES_MAX], n, tclen;
	unsigned char blob[2 + 8 + 64], global[64], hash[64];
	unsigned char gmsg[64 + MINISIG_MAX];
	char want[17], got[17];
	const unsigned char *m = msg;
	size_t mlen = len;
	int extra;

	if (sodium_init() < 0) {
		snprintf(err, errsize, "libsodium cannot initialize");
		return -1;
	}
	if (siglen > MINISIG_MAX) {
		snprintf(err, errsize, "not a minisign signature: %zu bytes",
		    siglen);
		return -1;
	}
	n = split_lines(sig, siglen, line, linelen, &extra);
	if (n < 4 || extra) {
		snprintf(err, errsize, "not a minisign signature: expected 4 "
		    "lines, found %s", extra ? "more" : "fewer");
		return -1;
	}
	if (linelen[0] < 18 || memcmp(line[0], "untrusted comment:", 18) != 0) {
		snprintf(err, errsize, "not a minisign signature: line 1 is "
		    "not an untrusted comment");
		return -1;
	}
	if (decode(line[1], linelen[1], blob, sizeof blob) != 0) {
		snprintf(err, errsize, "not a minisign signature: line 2 is "
		    "not base64 of %zu bytes", sizeof blob);
		return -1;
	}
	if (linelen[2] < 17 || memcmp(line[2], "trusted comment: ", 17) != 0) {
		snprintf(err, errsize, "not a minisign signature: line 3 is "
		    "not a trusted comment");
		return -1;
	}
	if (decode(line[3], linelen[3], global, sizeof global) != 0) {
		snprintf(err, errsize, "not a minisign signature: line 4 is "
		    "not base64 of %zu bytes", sizeof global);
		return -1;
	}
	if (memcmp(blob + 2, key->id, 8) != 0) {
		minisign_key_id(want, key->id);
		minisign_key_id(got, blob + 2);
		snprintf(err, errsize, "signed by key %s, not by the trusted "
		    "key %s", got, want);
		return -1;
	}
	if (memcmp(blob, "ED", 2) == 0) {
		/* Prehashed: the signature is over BLAKE2b-512 of the file. */
		crypto_generichash(hash, sizeof hash, msg, len, NULL, 0);
		m = hash;
		mlen = sizeof hash;
	} else if (memcmp(blob, "Ed", 2) != 0) {
		snprintf(err, errsize, "unknown signature algorithm '%c%c'",
		    blob[0] & 0x7f, blob[1] & 0x7f);
		return -1;
	}
	if (crypto_sign_ed25519_verify_detached(blob + 10, m, mlen,
	    key->pk) != 0) {
		snprintf(err, errsize, "the signature does not match the file");
		return -1;
	}
	tclen = linelen[2] - 17;
	memcpy(gmsg, blob + 10, 64);
	memcpy(gmsg + 64, line[2] + 17, tclen);
	if (crypto_sign_ed25519_verify_detached(global, gmsg, 64 + tclen,
	    key->pk) != 0) {
		snprintf(err, errsize, "the trusted comment's signature does "
		    "not match (the comment was changed)");
		return -1;
	}
	if (tc != NULL && tcsize > 0)
		snprintf(tc, tcsize, "%.*s", (int)tclen, line[2] + 17);
	return 0;
}
