/*
 * kiln-worker push: an OCI image layout tarball uploaded to a registry
 * over the OCI distribution API (kiln-worker(8)).  Three parts:
 * push-layout.c reads and checks the tarball, push-http.c makes the
 * registry's requests with libcurl (authentication, errors), push.c
 * drives the upload.
 */
#ifndef KILN_WORKER_PUSH_H
#define KILN_WORKER_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest index.json or manifest taken, bytes. */
#define PUSH_JSON_MAX (4 * 1024 * 1024)
/* The largest blob taken, bytes. */
#define PUSH_BLOB_MAX (64ULL * 1024 * 1024 * 1024)
/* The most entries in a layout tarball. */
#define PUSH_ENTRIES_MAX 100000

/* One file of the layout: where its bytes are in the tarball. */
struct push_entry {
	char name[80];		/* "index.json", "oci-layout", "blobs/sha256/<hex>" */
	uint64_t offset;	/* of its data in the tarball */
	uint64_t size;
};

struct push_layout {
	int fd;			/* the tarball, read with pread */
	struct push_entry *entries;
	size_t nentries;
};

/*
 * Open the layout tarball at path and check all of it before anything is
 * pushed: only regular files named index.json, oci-layout and
 * blobs/sha256/<64 lowercase hex> (and the directories blobs/,
 * blobs/sha256/), each once, sizes within bounds, and every blob's
 * SHA-256 equal to its name.  0, or -1 with a message in err.
 */
int push_layout_open(struct push_layout *out, const char *path, char *err,
    size_t errsize);
void push_layout_close(struct push_layout *l);

/* The entry named digest ("sha256:<hex>"), or NULL. */
const struct push_entry *push_layout_blob(const struct push_layout *l,
    const char *digest);
const struct push_entry *push_layout_find(const struct push_layout *l,
    const char *name);

/*
 * An entry's bytes, for the small JSON files (at most PUSH_JSON_MAX):
 * *out is NUL-terminated, free() it.  0 or -1 with a message.
 */
int push_layout_read(char **out, const struct push_layout *l,
    const struct push_entry *e, char *err, size_t errsize);

/* One registry session (push-http.c). */
struct push_http;

struct push_answer {
	long status;
	char *location;		/* Location header, or NULL */
	char *digest;		/* Docker-Content-Digest header, or NULL */
	char *error;		/* "CODE: message" of an OCI error body, or NULL */
};

/*
 * base: "https://HOST[:PORT]" (or http:// with --insecure-http); name:
 * the repository, for the token's scope.  user and password may be NULL
 * (anonymous).  Copies what it keeps.
 */
struct push_http *push_http_new(const char *base, const char *name,
    bool insecure_http, const char *user, const char *password);
void push_http_free(struct push_http *h);

/*
 * A request's body: len bytes at offset of fd (a blob, streamed from the
 * tarball), or of mem when mem is not NULL.  When digest is set
 * ("sha256:<hex>"), the bytes are hashed as they go and the upload is
 * aborted before its last byte if they do not match.
 */
struct push_body {
	int fd;
	uint64_t offset;
	uint64_t len;
	const char *mem;
	const char *digest;
};

/*
 * One request: method on url (absolute, or a path from the registry's
 * root) with body (or none: NULL) and Content-Type ctype (or none).  A
 * 401 is answered once with the registry's scheme (Basic, or a Bearer
 * token from its realm) and the request made again.  0 with *ans filled
 * (whatever the status), or -1 with a message in err when no answer came.
 * push_answer_clear() after either.
 */
int push_http_do(struct push_http *h, struct push_answer *ans,
    const char *method, const char *url, const char *ctype,
    const struct push_body *body, char *err, size_t errsize);
void push_answer_clear(struct push_answer *a);

int push_main(int argc, char **argv);

#endif
