#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "sbuf.h"
#include "sign.h"
#include "util.h"
#include "xmalloc.h"

#define B64 sodium_base64_VARIANT_ORIGINAL

char *
sign_base64(const void *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, B64);
	char *s = xmalloc(n);

	sodium_bin2base64(s, n, bin, len, B64);
	return s;
}

void
sign_hmac_sha256(unsigned char out[32], const char *key, const void *msg,
    size_t len)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	    strlen(key));
	crypto_auth_hmacsha256_update(&st, msg, len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

void
sign_key_id(char out[17], const struct sign_key *k)
{
	/* minisign shows the id as a little-endian 64-bit number. */
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02X", k->id[7 - i]);
}

char *
sign_public_text(const struct sign_key *k)
{
	unsigned char blob[2 + 8 + 32];
	char id[17], *enc, *text;

	memcpy(blob, "Ed", 2);
	memcpy(blob + 2, k->id, 8);
	memcpy(blob + 10, k->pk, 32);
	enc = sign_base64(blob, sizeof blob);
	sign_key_id(id, k);
	text = xasprintf("untrusted comment: minisign public key %s\n%s\n", id,
	    enc);
	free(enc);
	return text;
}

/* Write dir/name atomically (util_write_atomic); excl: never over an
 * existing file (a key), even one another kilnd --keygen writes now. */
static int
write_file(const char *dir, const char *name, const char *text, mode_t mode,
    int excl, char *err, size_t errsize)
{
	char *path = xasprintf("%s/%s", dir, name);
	int rc = util_write_atomic(dir, path, text, strlen(text), mode, excl,
	    err, errsize);

	if (rc == 1) {
		snprintf(err, errsize, "%s exists: refusing to overwrite a key",
		    path);
		rc = -1;
	}
	free(path);
	return rc;
}

int
sign_keygen(const char *dir, char *err, size_t errsize)
{
	struct sign_key k;
	unsigned char blob[2 + 8 + 64];
	char *enc = NULL, *sec = NULL, *pub = NULL, id[17];
	int rc = -1;

	if (sodium_init() < 0) {
		snprintf(err, errsize, "libsodium cannot initialize");
		return -1;
	}
	randombytes_buf(k.id, sizeof k.id);
	crypto_sign_ed25519_keypair(k.pk, k.sk);
	memcpy(blob, "Ed", 2);
	memcpy(blob + 2, k.id, 8);
	memcpy(blob + 10, k.sk, 64);
	enc = sign_base64(blob, sizeof blob);
	sign_key_id(id, &k);
	sec = xasprintf("untrusted comment: kiln secret key %s (Ed25519, "
	    "unencrypted; keep it 0600)\n%s\n", id, enc);
	pub = sign_public_text(&k);
	if (write_file(dir, SIGN_SECRET_FILE, sec, 0600, 1, err, errsize) != 0 ||
	    write_file(dir, SIGN_PUBLIC_FILE, pub, 0644, 0, err, errsize) != 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(blob, sizeof blob);
	if (sec != NULL)
		sodium_memzero(sec, strlen(sec));
	if (enc != NULL)
		sodium_memzero(enc, strlen(enc));
	free(sec);
	free(enc);
	free(pub);
	sign_key_wipe(&k);
	return rc;
}

int
sign_load(struct sign_key *out, const char *dir, char *err, size_t errsize)
{
	char *path = xasprintf("%s/%s", dir, SIGN_SECRET_FILE);
	char buf[512], *line2;
	unsigned char blob[2 + 8 + 64];
	size_t blen;
	struct stat st;
	ssize_t n;
	int fd, rc = -1;

	if (sodium_init() < 0) {
		snprintf(err, errsize, "libsodium cannot initialize");
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			rc = -2;
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* A key others can read is not secret any more: refuse it. */
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		snprintf(err, errsize, "%s is readable by group or others "
		    "(mode %03o): refusing to use it; chmod 600 it (and "
		    "consider the key compromised)", path,
		    (unsigned)(st.st_mode & 0777));
		close(fd);
		goto out;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errsize, "%s: cannot read", path);
		goto out;
	}
	buf[n] = '\0';
	line2 = strchr(buf, '\n');
	if (line2 == NULL || sodium_base642bin(blob, sizeof blob, line2 + 1,
	    strcspn(line2 + 1, "\n"), NULL, &blen, NULL, B64) != 0 ||
	    blen != sizeof blob || memcmp(blob, "Ed", 2) != 0) {
		snprintf(err, errsize, "%s is not a kiln secret key", path);
		goto wipe;
	}
	memcpy(out->id, blob + 2, 8);
	memcpy(out->sk, blob + 10, 64);
	crypto_sign_ed25519_sk_to_pk(out->pk, out->sk);
	rc = 0;
wipe:
	sodium_memzero(buf, sizeof buf);
	sodium_memzero(blob, sizeof blob);
out:
	free(path);
	return rc;
}

char *
sign_minisig(const struct sign_key *k, const void *data, size_t len,
    const char *tc)
{
	unsigned char hash[crypto_generichash_BYTES_MAX];
	unsigned char sigblob[2 + 8 + 64];
	unsigned char *global;
	size_t tclen = strlen(tc);
	char *s1, *s2, *text;

	/* "ED": the signature is over BLAKE2b-512 of the file. */
	crypto_generichash(hash, sizeof hash, data, len, NULL, 0);
	memcpy(sigblob, "ED", 2);
	memcpy(sigblob + 2, k->id, 8);
	crypto_sign_ed25519_detached(sigblob + 10, NULL, hash, sizeof hash,
	    k->sk);
	/* The global signature covers the signature and the comment. */
	global = xmalloc(64 + tclen);
	memcpy(global, sigblob + 10, 64);
	memcpy(global + 64, tc, tclen);
	unsigned char gsig[64];
	crypto_sign_ed25519_detached(gsig, NULL, global, 64 + tclen, k->sk);
	free(global);
	s1 = sign_base64(sigblob, sizeof sigblob);
	s2 = sign_base64(gsig, sizeof gsig);
	text = xasprintf("untrusted comment: signature from kiln secret key\n"
	    "%s\ntrusted comment: %s\n%s\n", s1, tc, s2);
	free(s1);
	free(s2);
	return text;
}

void
sign_detached(const struct sign_key *k, unsigned char sig[64],
    const void *msg, size_t len)
{
	crypto_sign_ed25519_detached(sig, NULL, msg, len, k->sk);
}

void
sign_key_wipe(struct sign_key *k)
{
	sodium_memzero(k, sizeof *k);
}
