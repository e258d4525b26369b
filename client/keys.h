/* The farm's public key, given or pinned on first use (keys.c). */
#ifndef KILN_CLIENT_KEYS_H
#define KILN_CLIENT_KEYS_H

#include <stddef.h>

#include "client.h"
#include "minisign.h"

/*
 * The key to check signatures with: pubkey_file's (NULL: the server's,
 * pinned per host:port, refused when it differs from the pinned one).
 * 0, or -1 with the reason.
 */
int keys_get(const struct kiln_conf *c, const char *pubkey_file,
    struct minisign_key *key, char *err, size_t errsize);
/* A regular file (no symlink, no FIFO) of at most max bytes, NUL-ended. */
int keys_read_file(const char *path, char **text, size_t *len, size_t max,
    char *err, size_t errsize);

#endif
