/*
 * An OCI image layout as one tar stream (worker/oci.h): the layers come
 * from worker/oci-layer.c; here are the JSON documents that describe
 * them and the outer archive.  Blobs are written as soon as they exist,
 * so that only one layer's temporary file is open at a time.
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "oci-int.h"
#include "util.h"
#include "xmalloc.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define MAX_IMAGES 64
#define MAX_LIST 4096

/* The outer archive and what it holds so far. */
struct layout {
	int out_fd;
	struct archive *a;
	int64_t created;
	char (*written)[OCI_DIGEST_SIZE];	/* blobs already in it */
	size_t nwritten;
	char err[256];
};

static la_ssize_t
out_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct layout *l = data;
	size_t off = 0;
	ssize_t w;

	while (off < len) {
		w = write(l->out_fd, (const char *)buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			archive_set_error(a, errno, "writing the layout: %s",
			    strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	return (la_ssize_t)len;
}

static int
put_header(struct layout *l, const char *name, bool dir, int64_t size,
    char *err, size_t errsize)
{
	struct archive_entry *ae = archive_entry_new();
	int rc = 0;

	archive_entry_set_pathname_utf8(ae, name);
	archive_entry_set_filetype(ae, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(ae, dir ? 0755 : 0644);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, l->created, 0);
	if (!dir)
		archive_entry_set_size(ae, size);
	if (archive_write_header(l->a, ae) != ARCHIVE_OK)
		rc = util_errorf(err, errsize, "%s: %s", name,
		    archive_error_string(l->a));
	archive_entry_free(ae);
	return rc;
}

static bool
blob_seen(struct layout *l, const char *digest)
{
	for (size_t i = 0; i < l->nwritten; i++)
		if (strcmp(l->written[i], digest) == 0)
			return true;
	l->written = xreallocarray(l->written, l->nwritten + 1,
	    sizeof(*l->written));
	memcpy(l->written[l->nwritten++], digest, OCI_DIGEST_SIZE);
	return false;
}

static void
blob_name(char *name, size_t size, const char *digest)
{
	snprintf(name, size, "blobs/sha256/%s", digest + 7);
}

static int
put_memory(struct layout *l, const char *name, const char *buf, size_t len,
    char *err, size_t errsize)
{
	if (put_header(l, name, false, (int64_t)len, err, errsize) < 0)
		return -1;
	if (len > 0 && archive_write_data(l->a, buf, len) != (la_ssize_t)len)
		return util_errorf(err, errsize, "%s: %s", name,
		    archive_error_string(l->a));
	return 0;
}

/* A JSON document as a blob; its digest and size for the descriptor. */
static int
put_json_blob(struct layout *l, json_t *doc, char digest[OCI_DIGEST_SIZE],
    int64_t *size, char *err, size_t errsize)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char name[96];
	char *s;
	size_t len;
	int rc = 0;

	/* Sorted keys, no spaces: the same document, the same bytes. */
	s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL)
		return util_errorf(err, errsize, "JSON encoding failed");
	len = strlen(s);
	crypto_hash_sha256(h, (const unsigned char *)s, len);
	memcpy(digest, "sha256:", 7);
	sodium_bin2hex(digest + 7, OCI_DIGEST_SIZE - 7, h, sizeof(h));
	*size = (int64_t)len;
	blob_name(name, sizeof(name), digest);
	if (!blob_seen(l, digest))
		rc = put_memory(l, name, s, len, err, errsize);
	free(s);
	return rc;
}

/* The layer's temporary file into the archive, in bounded chunks. */
static int
put_file_blob(struct layout *l, int fd, const char *digest, int64_t size,
    char *err, size_t errsize)
{
	unsigned char buf[65536];
	char name[96];
	int64_t off = 0;
	ssize_t r;

	blob_name(name, sizeof(name), digest);
	if (blob_seen(l, digest))
		return 0;
	if (put_header(l, name, false, size, err, errsize) < 0)
		return -1;
	while (off < size) {
		size_t want = sizeof(buf);
		if ((int64_t)want > size - off)
			want = (size_t)(size - off);
		r = pread(fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return util_errorf(err, errsize,
			    "reading back the layer: %s",
			    r < 0 ? strerror(errno) : "short file");
		if (archive_write_data(l->a, buf, (size_t)r) != r)
			return util_errorf(err, errsize, "%s: %s", name,
			    archive_error_string(l->a));
		off += r;
	}
	return 0;
}

static json_t *
descriptor(const char *mt, const char *digest, int64_t size)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest,
	    "size", (json_int_t)size);
}

/* A NULL-terminated list as a JSON array, or NULL with a message. */
static int
str_list(json_t *obj, const char *key, const char *const *v, char *err,
    size_t errsize)
{
	json_t *arr, *s;
	size_t i;

	if (v == NULL)
		return 0;
	arr = json_array();
	for (i = 0; v[i] != NULL; i++) {
		if (i >= MAX_LIST) {
			json_decref(arr);
			return util_errorf(err, errsize,
			    "%s: more than %d items", key, MAX_LIST);
		}
		if ((s = json_string(v[i])) == NULL) {
			json_decref(arr);
			return util_errorf(err, errsize,
			    "%s[%zu]: not valid UTF-8", key, i);
		}
		json_array_append_new(arr, s);
	}
	json_object_set_new(obj, key, arr);
	return 0;
}

static int
opt_str(json_t *obj, const char *key, const char *v, char *err,
    size_t errsize)
{
	json_t *s;

	if (v == NULL)
		return 0;
	if ((s = json_string(v)) == NULL)
		return util_errorf(err, errsize, "%s: not valid UTF-8", key);
	json_object_set_new(obj, key, s);
	return 0;
}

static json_t *
make_config(const struct oci_image *img, const char *created,
    const char *diff_id, char *err, size_t errsize)
{
	json_t *cfg = json_object(), *c = json_object();

	json_object_set_new(cfg, "config", c);
	if (str_list(c, "Entrypoint", img->entrypoint, err, errsize) < 0 ||
	    str_list(c, "Cmd", img->cmd, err, errsize) < 0 ||
	    str_list(c, "Env", img->env, err, errsize) < 0 ||
	    opt_str(c, "WorkingDir", img->workdir, err, errsize) < 0 ||
	    opt_str(c, "User", img->user, err, errsize) < 0) {
		json_decref(cfg);
		return NULL;
	}
	json_object_set_new(cfg, "architecture", json_string(img->arch));
	json_object_set_new(cfg, "os", json_string(img->os));
	if (img->variant != NULL)
		json_object_set_new(cfg, "variant", json_string(img->variant));
	json_object_set_new(cfg, "created", json_string(created));
	json_object_set_new(cfg, "rootfs", json_pack("{s:s, s:[s]}",
	    "type", "layers", "diff_ids", diff_id));
	json_object_set_new(cfg, "history", json_pack("[{s:s, s:s}]",
	    "created", created, "created_by", "kiln-worker package"));
	return cfg;
}

/* One image: its layer, config and manifest; the manifest's descriptor. */
static json_t *
put_image(struct layout *l, const struct oci_image *img, const char *created,
    const char *tmpdir, char *err, size_t errsize)
{
	char gz[OCI_DIGEST_SIZE], diff[OCI_DIGEST_SIZE];
	char cfgd[OCI_DIGEST_SIZE], mand[OCI_DIGEST_SIZE];
	int64_t gzsize, cfgsize, mansize;
	json_t *cfg = NULL, *man = NULL, *desc = NULL, *plat;
	int fd = -1;

	if (oci_layer_build(img, l->created, tmpdir, &fd, gz, &gzsize, diff,
	    err, errsize) < 0)
		goto out;
	if (put_file_blob(l, fd, gz, gzsize, err, errsize) < 0)
		goto out;
	if ((cfg = make_config(img, created, diff, err, errsize)) == NULL ||
	    put_json_blob(l, cfg, cfgd, &cfgsize, err, errsize) < 0)
		goto out;
	man = json_pack("{s:i, s:s, s:o, s:[o]}", "schemaVersion", 2,
	    "mediaType", MT_MANIFEST, "config",
	    descriptor(MT_CONFIG, cfgd, cfgsize), "layers",
	    descriptor(MT_LAYER, gz, gzsize));
	if (put_json_blob(l, man, mand, &mansize, err, errsize) < 0)
		goto out;
	desc = descriptor(MT_MANIFEST, mand, mansize);
	plat = json_pack("{s:s, s:s}", "architecture", img->arch, "os",
	    img->os);
	if (img->variant != NULL)
		json_object_set_new(plat, "variant", json_string(img->variant));
	json_object_set_new(desc, "platform", plat);
out:
	if (fd >= 0)
		close(fd);
	json_decref(cfg);
	json_decref(man);
	return desc;
}

/* os, architecture, variant: short lowercase words as OCI spells them. */
static bool
word_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return i > 0 && i <= 32;
}

/* The OCI grammar of a reference name, in ASCII, bounded. */
static bool
ref_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || strchr("-._:@/+", c) == NULL))
			return false;
	}
	return i > 0 && i <= 255;
}

static int
check_args(const struct oci_image *imgs, size_t n, const char *ref_name,
    int64_t created, char *index_digest, size_t digest_size, char *err,
    size_t errsize)
{
	if (n == 0 || n > MAX_IMAGES)
		return util_errorf(err, errsize,
		    "%zu images: between 1 and %d", n, MAX_IMAGES);
	if (ref_name == NULL || !ref_ok(ref_name))
		return util_errorf(err, errsize,
		    "reference name: letters, digits and -._:@/+, "
		    "1 to 255 characters, starting with a letter or digit");
	if (created < 0 || created > INT64_C(253402300799))
		return util_errorf(err, errsize,
		    "created %lld: outside 1970 to 9999",
		    (long long)created);
	if (index_digest != NULL && digest_size < OCI_DIGEST_SIZE)
		return util_errorf(err, errsize,
		    "the index digest needs %d bytes, %zu given",
		    OCI_DIGEST_SIZE, digest_size);
	for (size_t i = 0; i < n; i++) {
		const struct oci_image *m = &imgs[i];
		if (m->os == NULL || m->arch == NULL || !word_ok(m->os) ||
		    !word_ok(m->arch) ||
		    (m->variant != NULL && !word_ok(m->variant)))
			return util_errorf(err, errsize,
			    "image %zu: os, architecture and variant are "
			    "lowercase words", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(imgs[j].os, m->os) == 0 &&
			    strcmp(imgs[j].arch, m->arch) == 0 &&
			    (imgs[j].variant == NULL) == (m->variant == NULL) &&
			    (m->variant == NULL ||
			    strcmp(imgs[j].variant, m->variant) == 0))
				return util_errorf(err, errsize,
				    "images %zu and %zu: the same platform",
				    j, i);
	}
	return 0;
}

static int write_layout(int out_fd, const struct oci_image *imgs, size_t n,
    const char *ref_name, int64_t created, const char *tmpdir,
    char *index_digest, size_t digest_size, int index_fd, char *err,
    size_t errsize);

/*
 * libarchive turns names into the header's charset through the calling
 * thread's locale: under LANG=C a non-ASCII name fails, and another
 * locale could change the bytes.  This thread runs in C.UTF-8 while it
 * writes, so that the names' bytes are ours whatever the environment;
 * uselocale() touches no other thread.
 */
int
oci_write_layout(int out_fd, const struct oci_image *imgs, size_t n,
    const char *ref_name, int64_t created, const char *tmpdir,
    char *index_digest, size_t digest_size, int index_fd, char *err,
    size_t errsize)
{
	locale_t utf8, old;
	int rc;

	utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
	if (utf8 == (locale_t)0)
		return util_errorf(err, errsize,
		    "the C.UTF-8 locale is missing (glibc 2.35 or later has it)");
	old = uselocale(utf8);
	rc = write_layout(out_fd, imgs, n, ref_name, created, tmpdir,
	    index_digest, digest_size, index_fd, err, errsize);
	uselocale(old);
	freelocale(utf8);
	return rc;
}

static int
write_layout(int out_fd, const struct oci_image *imgs, size_t n,
    const char *ref_name, int64_t created, const char *tmpdir,
    char *index_digest, size_t digest_size, int index_fd, char *err,
    size_t errsize)
{
	static const char oci_layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	struct layout l = { .out_fd = out_fd, .created = created };
	char when[32], idxd[OCI_DIGEST_SIZE];
	json_t *mans = NULL, *idx = NULL, *top = NULL, *d;
	int64_t idxsize;
	struct tm tm;
	time_t t;
	char *s = NULL;
	int rc = -1;

	if (check_args(imgs, n, ref_name, created, index_digest, digest_size,
	    err, errsize) < 0)
		return -1;
	/* UTC whatever TZ says. */
	t = (time_t)created;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return util_errorf(err, errsize, "created: no UTC time");
	if (sodium_init() < 0)
		return util_errorf(err, errsize, "libsodium failed to start");
	l.a = archive_write_new();
	if (archive_write_set_format_pax_restricted(l.a) != ARCHIVE_OK ||
	    archive_write_open(l.a, &l, NULL, out_write, NULL) != ARCHIVE_OK) {
		util_errorf(err, errsize, "layout: %s",
		    archive_error_string(l.a));
		goto out;
	}
	if (put_memory(&l, "oci-layout", oci_layout, strlen(oci_layout), err,
	    errsize) < 0 ||
	    put_header(&l, "blobs", true, 0, err, errsize) < 0 ||
	    put_header(&l, "blobs/sha256", true, 0, err, errsize) < 0)
		goto out;
	mans = json_array();
	for (size_t i = 0; i < n; i++) {
		if ((d = put_image(&l, &imgs[i], when, tmpdir, err,
		    errsize)) == NULL)
			goto out;
		json_array_append_new(mans, d);
	}
	idx = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType",
	    MT_INDEX, "manifests", mans);
	if (put_json_blob(&l, idx, idxd, &idxsize, err, errsize) < 0)
		goto out;
	if (index_fd >= 0) {
		/* The blob's bytes again: put_json_blob's encoding. */
		char *ib = json_dumps(idx, JSON_COMPACT | JSON_SORT_KEYS);
		size_t len = ib ? strlen(ib) : 0, off = 0;
		ssize_t w = ib != NULL ? 0 : -1;

		while (w >= 0 && off < len)
			if ((w = write(index_fd, ib + off, len - off)) > 0)
				off += (size_t)w;
			else if (w < 0 && errno == EINTR)
				w = 0;
		free(ib);
		if (w < 0) {
			util_errorf(err, errsize, "the image index: %s",
			    strerror(errno));
			goto out;
		}
	}
	d = descriptor(MT_INDEX, idxd, idxsize);
	json_object_set_new(d, "annotations", json_pack("{s:s}",
	    "org.opencontainers.image.ref.name", ref_name));
	top = json_pack("{s:i, s:s, s:[o]}", "schemaVersion", 2, "mediaType",
	    MT_INDEX, "manifests", d);
	s = json_dumps(top, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL || put_memory(&l, "index.json", s, strlen(s), err,
	    errsize) < 0)
		goto out;
	if (archive_write_close(l.a) != ARCHIVE_OK) {
		util_errorf(err, errsize, "layout: %s",
		    archive_error_string(l.a));
		goto out;
	}
	if (index_digest != NULL)
		memcpy(index_digest, idxd, OCI_DIGEST_SIZE);
	rc = 0;
out:
	free(s);
	json_decref(top);
	json_decref(idx);
	json_decref(mans);
	archive_write_free(l.a);
	free(l.written);
	return rc;
}
