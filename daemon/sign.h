/*
 * The farm's Ed25519 key and minisign signatures (minisign's formats),
 * with libsodium.  The public key file is minisign's own format, so
 * `minisign -V -p kiln.pub` checks what kilnd signs.  The secret key file
 * is kiln's (minisign's is scrypt-encrypted; an unattended daemon has no
 * one to type a password): a comment line, then base64 of
 * "Ed" || key id (8 bytes) || Ed25519 secret key (64 bytes), mode 0600.
 */
#ifndef KILN_SIGN_H
#define KILN_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_SECRET_FILE "kiln.key"
#define SIGN_PUBLIC_FILE "kiln.pub"

struct sign_key {
	unsigned char id[8];
	unsigned char sk[64];
	unsigned char pk[32];
};

/*
 * Create a new key pair in dir (kiln.key 0600, kiln.pub 0644); refuses to
 * overwrite an existing secret key.  0, or -1 with a reason in err.
 */
int sign_keygen(const char *dir, char *err, size_t errsize);
/*
 * Load dir's secret key; refuses a file readable by group or others.
 * Returns 0, -2 when there is no key, or -1 with a reason in err.
 */
int sign_load(struct sign_key *out, const char *dir, char *err,
    size_t errsize);
/* The key id as minisign prints it (16 uppercase hex digits). */
void sign_key_id(char out[17], const struct sign_key *k);
/* The public key file's text (malloc'd). */
char *sign_public_text(const struct sign_key *k);
/*
 * A minisign signature of data (prehashed BLAKE2b-512, "ED"), with the
 * trusted comment (one line, no newline).  Returns the .minisig text.
 */
char *sign_minisig(const struct sign_key *k, const void *data, size_t len,
    const char *trusted_comment);
/* Ed25519 of msg (for DSSE); sig is 64 bytes. */
void sign_detached(const struct sign_key *k, unsigned char sig[64],
    const void *msg, size_t len);
void sign_key_wipe(struct sign_key *k);
/* Standard base64 with padding (malloc'd), as minisign and DSSE use. */
char *sign_base64(const void *bin, size_t len);
/* HMAC-SHA256 of msg with a text key: webhook and callback signatures. */
void sign_hmac_sha256(unsigned char out[32], const char *key,
    const void *msg, size_t len);

#endif
