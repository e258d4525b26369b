/*
 * An OCI image layout written as one tar stream, without a container
 * daemon: for each platform one image (a gzip layer, a config, a
 * manifest), one image index over them, and index.json naming that index.
 *
 * Everything is deterministic: the same files and `created` give the
 * same bytes whatever the user, umask, time zone or locale.
 */
#ifndef KILN_OCI_H
#define KILN_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oci_file {
	const char *path;	/* absolute path in the image, e.g. "/app" */
	int fd;			/* open regular file */
	unsigned mode;		/* permission bits only: 0755, 0644 */
};

struct oci_image {
	const char *os, *arch, *variant;	/* "linux", "arm", "v7" (variant may be NULL) */
	const struct oci_file *files;
	size_t nfiles;
	/* NULL-terminated arrays, or NULL */
	const char *const *entrypoint;
	const char *const *cmd;
	const char *const *env;
	const char *workdir, *user;		/* may be NULL */
	bool ca_certs;	/* the host's /etc/ssl/certs/ca-certificates.crt, into the layer */
	bool tzdata;	/* the host's /usr/share/zoneinfo, into the layer */
};

/* "sha256:" and 64 hex digits, with its NUL. */
#define OCI_DIGEST_SIZE 72

/*
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...)
 * as a tar to out_fd: one manifest, config and gzip layer per image, one
 * image index over them (platform os/architecture/variant), and
 * index.json pointing at that index with the annotation
 * org.opencontainers.image.ref.name = ref_name.  Every timestamp is
 * `created` (seconds since the epoch, written in RFC 3339 UTC); layer
 * entries are sorted, owned by 0:0, with their parent directories.
 * Each layer goes through a temporary file in tmpdir, never whole in
 * memory.  index_digest (may be NULL) receives "sha256:<hex>" of the
 * image index; digest_size must be at least OCI_DIGEST_SIZE.  index_fd
 * (-1 for none) receives the image index's own bytes: a file whose
 * sha256 is that digest, so that a signature over files covers it.
 * Returns 0, or -1 with a message in err.
 */
int oci_write_layout(int out_fd, const struct oci_image *imgs, size_t n,
    const char *ref_name, int64_t created, const char *tmpdir,
    char *index_digest, size_t digest_size, int index_fd, char *err,
    size_t errsize);

#endif
