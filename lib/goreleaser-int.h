/*
 * Shared by goreleaser.c (the document and each build),
 * goreleaser-fields.c (reading typed values, the messages) and
 * goreleaser-targets.c (which targets a build makes) only.
 */
#ifndef KILN_GORELEASER_INT_H
#define KILN_GORELEASER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "util.h"

/* Entries in one list (goos, env, flags, targets...). */
#define LIST_MAX 64
#define IGNORE_MAX 256
#define VALUE_MAX 4096
#define LDFLAGS_MAX (16 * 1024)

struct strvec {
	char **v;		/* NULL-terminated once non-empty */
	size_t n, cap;
};

/* One conversion: what it met so far, and where its error goes. */
struct conv {
	struct strvec ignored;
	size_t more;		/* messages past GORELEASER_MAX_IGNORED */
	struct strvec targets;	/* union over the builds */
	char *err;
	size_t errsize;
};

/* --- goreleaser-outputs.c ------------------------------------------------ */

/* archives, universal_binaries, sboms and kos as canonical outputs
 * (outputs.h), or NULL when the file asks for none. */
char *gr_outputs(struct conv *c, const json_t *doc);

/* --- goreleaser-fields.c ------------------------------------------------- */

bool gr_in_list(const char *const *list, size_t n, const char *s);
#define IN(list, s) gr_in_list(list, ARRAY_SIZE(list), s)
bool gr_strvec_has(const struct strvec *sv, const char *s);
void gr_strvec_add(struct strvec *sv, const char *s);
void gr_strvec_free(struct strvec *sv);
/* qsort(3) comparison of two char *. */
int gr_cmp_str(const void *a, const void *b);
/* s fit for a message, in buf. */
const char *gr_clean(char *buf, size_t size, const char *s);
/* The error into c->err; returns -1. */
int gr_fail(struct conv *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One "ignored" message. */
void gr_note(struct conv *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A scalar's text (buf holds a number's), or NULL. */
const char *gr_scalar(const json_t *v, char *buf, size_t size);
/*
 * Field key of mapping o, at "where" ("builds[0]", or NULL at the top)
 * for the messages.  Each returns 0, or -1 through gr_fail.
 */
int gr_get_string(struct conv *c, const json_t *o, const char *where,
    const char *key, char **out);
int gr_get_bool(struct conv *c, const json_t *o, const char *where,
    const char *key, bool *out);
int gr_get_list(struct conv *c, const json_t *o, const char *where,
    const char *key, bool single, bool unique, struct strvec *out);
int gr_get_env(struct conv *c, const json_t *o, const char *where,
    json_t *obj);

/* --- goreleaser-targets.c ------------------------------------------------ */

/* Add the kiln name(s) of one `targets:` entry s to tg. */
int gr_explicit_target(struct conv *c, const char *where, const char *s,
    struct strvec *tg);
/* Add the targets of build b's goos x goarch matrix to tg. */
int gr_matrix(struct conv *c, const json_t *b, const char *where,
    struct strvec *tg);
/* One message per key of build b kiln does not act on. */
void gr_note_build_keys(struct conv *c, const json_t *b, const char *where);

#endif
