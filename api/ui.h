/*
 * The dashboard's files (ui/), compiled into kilnd by scripts/embed-ui
 * (the generated api/ui-assets.c) and served by api/ui.c.
 */
#ifndef KILN_API_UI_H
#define KILN_API_UI_H

#include <stdbool.h>
#include <stddef.h>

struct ui_asset {
	const char *name;		/* "app.js": ui/'s file name */
	const char *type;		/* its Content-Type */
	const unsigned char *raw;	/* the file's bytes */
	size_t raw_len;
	const char *raw_etag;		/* "\"hex\"": a hash of raw */
	const unsigned char *gz;	/* the same, gzip -9n */
	size_t gz_len;
	const char *gz_etag;		/* a hash of gz */
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_asset_count;

/* The asset called name, or NULL. */
const struct ui_asset *ui_asset_find(const char *name);
/*
 * Whether an Accept-Encoding header value lets the answer be gzip: gzip
 * (or x-gzip) listed with a q above 0, or "*" above 0 while gzip is not
 * listed.  NULL (no header): no.
 */
bool ui_accepts_gzip(const char *accept_encoding);

#endif
