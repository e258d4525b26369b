/*
 * minisign signatures checked with libsodium.  A public key is "Ed",
 * an 8-byte key id and an Ed25519 key, base64 on the line after the
 * untrusted comment.  A signature file has four lines: an untrusted
 * comment; base64 of the algorithm ("Ed": Ed25519 over the file itself,
 * "ED": over its BLAKE2b-512 hash), the key id and the signature; the
 * trusted comment; base64 of the global signature, Ed25519 over the
 * signature bytes followed by the trusted comment's text, which is what
 * makes that comment trusted.
 */
#ifndef KILN_CLIENT_MINISIGN_H
#define KILN_CLIENT_MINISIGN_H

#include <stddef.h>

struct minisign_key {
	unsigned char id[8];
	unsigned char pk[32];
};

/* Parse a public key file's text (or the bare base64 line): 0 or -1. */
int minisign_parse_key(const char *text, size_t len,
    struct minisign_key *out, char *err, size_t errsize);
/* The key id as minisign prints it: 16 upper-case hex digits. */
void minisign_key_id(char out[17], const unsigned char id[8]);
/*
 * Check sig (a .minisig file's text) over msg with key: 0 when both the
 * signature and the trusted comment's global signature hold, else -1
 * with the reason (a key id that differs names both ids).  The trusted
 * comment (after "trusted comment: ") is copied into tc when not NULL.
 */
int minisign_verify(const struct minisign_key *key, const void *msg,
    size_t len, const char *sig, size_t siglen, char *tc, size_t tcsize,
    char *err, size_t errsize);

#endif
