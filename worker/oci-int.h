/* Private to worker/oci*.c. */
#ifndef KILN_OCI_INT_H
#define KILN_OCI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "oci.h"

/* A limit on one layer's entries and on a path, whatever the host holds. */
#define OCI_MAX_ENTRIES 100000
#define OCI_MAX_PATH 4096

enum oci_kind { OCI_DIR, OCI_FILE, OCI_HOSTFILE, OCI_SYMLINK };

/* One entry of a layer. */
struct oci_entry {
	char *path;		/* relative to the image root, no leading '/' */
	enum oci_kind kind;
	unsigned mode;
	int fd;			/* OCI_FILE: the caller's descriptor */
	char *target;		/* OCI_SYMLINK */
};

struct oci_entries {
	struct oci_entry *v;
	size_t n, cap;
};

/* The same path for the host and the layer: both are relative to "/". */
int oci_entries_add(struct oci_entries *es, const char *path, size_t len,
    enum oci_kind kind, unsigned mode, int fd, const char *target,
    char *err, size_t errsize);
void oci_entries_free(struct oci_entries *es);

/* The host's CA bundle and time zone tree (worker/oci-host.c). */
int oci_host_certs(struct oci_entries *es, char *err, size_t errsize);
int oci_host_zoneinfo(struct oci_entries *es, char *err, size_t errsize);
/*
 * Opens a file of the host's tree (path relative to "/", as in the
 * layer) without following any symlink and without blocking on a FIFO;
 * refuses anything but a regular file.  The descriptor, or -1 with a message.
 */
int oci_host_open(const char *path, char *err, size_t errsize);

/*
 * Builds img's layer into a temporary file of tmpdir: *out_fd is the
 * gzip blob (read it with pread from 0), gz_digest and *gz_size its
 * digest and size, diff_id the digest of the uncompressed tar.
 */
int oci_layer_build(const struct oci_image *img, int64_t created,
    const char *tmpdir, int *out_fd, char gz_digest[OCI_DIGEST_SIZE],
    int64_t *gz_size, char diff_id[OCI_DIGEST_SIZE], char *err,
    size_t errsize);

#endif
