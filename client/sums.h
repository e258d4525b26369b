/*
 * SHA256SUMS as kilnd writes it and sha256sum -c reads it: one
 * "<64 hex digits>  <name>" per line, names "linux_amd64/hello".  The
 * names come from the server and become paths under the download
 * directory, so each is checked: relative, no empty, "." or ".."
 * component, no control character, no backslash.
 */
#ifndef KILN_CLIENT_SUMS_H
#define KILN_CLIENT_SUMS_H

#include <stddef.h>

#define SUMS_MAX_ENTRIES 65536
#define SUMS_NAME_MAX 1024

struct sums_entry {
	char sha256[65];	/* lower-case hex */
	char *name;
};

/* 0 with *out (n entries, free with sums_free) or -1 naming the line. */
int sums_parse(const char *text, size_t len, struct sums_entry **out,
    size_t *n, char *err, size_t errsize);
void sums_free(struct sums_entry *v, size_t n);
/* Whether name is safe as a relative path under a directory: 0 or -1. */
int sums_check_name(const char *name, char *err, size_t errsize);

#endif
