/* A growable byte buffer for building responses (out of memory is fatal). */
#ifndef KILN_SBUF_H
#define KILN_SBUF_H

#include <stddef.h>
#include <stdint.h>

struct sbuf {
	char *p;
	size_t len, cap;
};

void sbuf_reserve(struct sbuf *b, size_t more);
void sbuf_add(struct sbuf *b, const char *s, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addc(struct sbuf *b, char c);
void sbuf_addi(struct sbuf *b, int64_t v);
/* Hand the buffer (NUL-terminated) to the caller; b is empty after. */
char *sbuf_steal(struct sbuf *b, size_t *len);
void sbuf_free(struct sbuf *b);

#endif
