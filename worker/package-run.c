/*
 * The package sandbox's work (package.h): in order, the repository's
 * files the archives hold, the universal macOS binaries, the archives,
 * the SBOMs and the image, each written once into PACKAGE_OUT.  Inputs
 * are the descriptors package.c opened (read with pread, so that several
 * outputs may read one); nothing here opens a path outside PACKAGE_OUT,
 * PACKAGE_SCRATCH and the mirror, which is all the sandbox shows.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archives.h"
#include "buildinfo.h"
#include "lipo.h"
#include "oci.h"
#include "package-int.h"
#include "sbom.h"
#include "target.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define TOOL "kiln " PACKAGE_VERSION

struct run {
	struct package_job *pj;
	json_t *spec;
	int64_t created;
	struct package_files files;
	int *universal;		/* read fds of the universal binaries */
	size_t nuniversal;
	char *err;
	size_t errsize;
};

static int
idx(json_t *v)
{
	return (int)json_integer_value(v);
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A new file in PACKAGE_OUT: the fd, or -1 with err. */
static int
create_out(struct run *r, const char *name, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", PACKAGE_OUT, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0)
		util_errorf(r->err, r->errsize, "%s: %s", name, strerror(errno));
	return fd;
}

/* Finish an output: its bytes on disk before kilnd publishes them. */
static int
close_out(struct run *r, int fd, const char *name)
{
	int rc = fsync(fd);

	if (close(fd) != 0 || rc != 0)
		return util_errorf(r->err, r->errsize, "%s: %s", name,
		    strerror(errno));
	return 0;
}

/* The union of the archives' globs. */
static json_t *
all_globs(json_t *spec)
{
	json_t *out = json_array(), *a, *g;
	size_t i, j;

	json_array_foreach(json_object_get(spec, "archives"), i, a)
		json_array_foreach(json_object_get(a, "files"), j, g)
			json_array_append(out, g);
	return out;
}

static int
make_universal(struct run *r)
{
	json_t *u, *uni = json_object_get(r->spec, "universal");
	size_t i;

	r->universal = xcalloc(json_array_size(uni) + 1, sizeof *r->universal);
	json_array_foreach(uni, i, u) {
		json_t *ins = json_object_get(u, "inputs");
		int in[2] = { r->pj->fds[idx(json_array_get(ins, 0))],
		    r->pj->fds[idx(json_array_get(ins, 1))] };
		const char *names[2] = { "darwin/amd64", "darwin/arm64" };
		int fd = create_out(r, str(u, "file"), 0755);

		if (fd < 0)
			return -1;
		if (lipo_merge(fd, in, names, 2, r->err, r->errsize) != 0) {
			close(fd);
			return -1;
		}
		if (fsync(fd) != 0)
			return util_errorf(r->err, r->errsize, "%s: %s",
			    str(u, "file"), strerror(errno));
		r->universal[r->nuniversal++] = fd;
		printf("universal binary %s: darwin/amd64 + darwin/arm64\n",
		    str(u, "file"));
	}
	return 0;
}

/* Copy the one binary of a "binary" format output. */
static int
copy_binary(struct run *r, const char *file, int in)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;
	int fd = create_out(r, file, 0755);

	if (fd < 0)
		return -1;
	while ((n = pread(in, buf, sizeof buf, off)) > 0) {
		if (worker_write_all(fd, buf, (size_t)n) != 0)
			break;
		off += n;
	}
	if (n != 0) {
		close(fd);
		return util_errorf(r->err, r->errsize, "%s: %s", file,
		    strerror(errno));
	}
	return close_out(r, fd, file);
}

static int
make_archive(struct run *r, json_t *a)
{
	json_t *ins = json_object_get(a, "inputs");
	json_t *uni = json_object_get(a, "universal"), *x;
	json_t *wrap = json_object_get(a, "wrap");
	const char *file = str(a, "file"), *fmt = str(a, "format");
	size_t cap = json_array_size(ins) + json_array_size(uni) +
	    r->files.n + 1, n = 0, i;
	struct kiln_archive_member *m = xcalloc(cap, sizeof *m);
	char **names = xcalloc(cap, sizeof *names);
	int *opened = xcalloc(cap, sizeof *opened), nopened = 0;
	enum kiln_archive_format f;
	int fd = -1, rc = -1;
	const char *w = json_string_value(wrap);

#define MEMBER(nm, fdv, md) do { \
	names[n] = w ? xasprintf("%s/%s", w, (nm)) : xstrdup(nm); \
	m[n].name = names[n]; m[n].fd = (fdv); m[n].mode = (md); n++; \
} while (0)
	json_array_foreach(ins, i, x)
		MEMBER(str(json_array_get(json_object_get(r->spec, "inputs"),
		    (size_t)idx(x)), "name"), r->pj->fds[idx(x)], 0755);
	json_array_foreach(uni, i, x)
		MEMBER(str(json_array_get(json_object_get(r->spec, "universal"),
		    (size_t)idx(x)), "name"), r->universal[idx(x)], 0755);
	if (strcmp(fmt, "binary") == 0) {
		if (n != 1) {
			util_errorf(r->err, r->errsize, "%s: the binary format "
			    "takes one binary, the target built %zu", file, n);
			goto out;
		}
		rc = copy_binary(r, file, m[0].fd);
		goto out;
	}
	for (i = 0; i < r->files.n; i++) {
		char p[4200];
		int ffd;

		snprintf(p, sizeof p, "%s/repo/%s", PACKAGE_SCRATCH,
		    r->files.path[i]);
		if ((ffd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			util_errorf(r->err, r->errsize, "%s: %s",
			    r->files.path[i], strerror(errno));
			goto out;
		}
		opened[nopened++] = ffd;
		MEMBER(r->files.path[i], ffd, r->files.exec[i] ? 0755 : 0644);
	}
#undef MEMBER
	if (kiln_archive_format_parse(fmt, &f) != 0) {
		util_errorf(r->err, r->errsize, "%s: unknown format %s", file,
		    fmt);
		goto out;
	}
	if ((fd = create_out(r, file, 0644)) < 0)
		goto out;
	if (kiln_archive_write(fd, f, m, n, r->created, r->err, r->errsize) !=
	    0)
		goto out;
	rc = close_out(r, fd, file);
	fd = -1;
	if (rc == 0)
		printf("archive %s: %zu files\n", file, n);
out:
	if (fd >= 0)
		close(fd);
	for (int k = 0; k < nopened; k++)
		close(opened[k]);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(m);
	free(opened);
	return rc;
}

/* Write text (consumed) to a new output. */
static int
write_text(struct run *r, const char *file, char *text)
{
	int fd;
	int rc = -1;

	if (text == NULL)
		return -1;
	if ((fd = create_out(r, file, 0644)) >= 0) {
		if (worker_write_all(fd, text, strlen(text)) != 0 ||
		    worker_write_all(fd, "\n", 1) != 0) {
			util_errorf(r->err, r->errsize, "%s: %s", file,
			    strerror(errno));
			close(fd);
		} else
			rc = close_out(r, fd, file);
	}
	free(text);
	return rc;
}

static int
make_sbom(struct run *r, json_t *s)
{
	json_t *in = json_array_get(json_object_get(r->spec, "inputs"),
	    (size_t)idx(json_object_get(s, "input")));
	int fd = r->pj->fds[idx(json_object_get(s, "input"))];
	struct sbom_subject subj = { .name = str(in, "name"),
	    .sha256 = str(in, "sha256"), .target = str(s, "target") };
	struct buildinfo bi;
	struct stat sb;
	void *map = MAP_FAILED;
	char why[256];
	int rc = -1, go;

	memset(&bi, 0, sizeof bi);
	if (fstat(fd, &sb) != 0)
		return util_errorf(r->err, r->errsize, "%s: %s", subj.name,
		    strerror(errno));
	if (sb.st_size > 0)
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd,
		    0);
	go = map != MAP_FAILED && buildinfo_from_binary(&bi, map,
	    (size_t)sb.st_size, why, sizeof why) == 0 && bi.path != NULL;
	if (map != MAP_FAILED)
		munmap(map, (size_t)sb.st_size);
	if (go) {
		printf("sbom %s: %s, %zu modules\n", subj.name, bi.go_version,
		    bi.ndeps + 1);
		rc = write_text(r, str(s, "spdx"), sbom_spdx(&bi, &subj, TOOL,
		    r->created, r->err, r->errsize));
		if (rc == 0)
			rc = write_text(r, str(s, "cyclonedx"), sbom_cyclonedx(&bi,
			    &subj, TOOL, r->created, r->err, r->errsize));
	} else {
		/* Not a Go program with modules: the file alone. */
		printf("sbom %s: no Go module information (%s); the file "
		    "alone\n", subj.name, map == MAP_FAILED && sb.st_size > 0 ?
		    strerror(errno) : bi.go_version ? "built without modules" :
		    why);
		json_t *ins = json_object_get(r->spec, "sbom_inputs");
		char *spdx = sbom_spdx_files(subj.name, &subj, 1, TOOL,
		    r->created, r->err, r->errsize);
		char *cdx = spdx == NULL ? NULL : sbom_cyclonedx_files(subj.name,
		    &subj, 1, TOOL, r->created, r->err, r->errsize);

		if (cdx != NULL && json_array_size(ins) > 0) {
			/* What the recipe declares its files are made of. */
			char *a = sbom_spdx_add_inputs(spdx, ins, r->err,
			    r->errsize);
			char *b = a == NULL ? NULL : sbom_cyclonedx_add_inputs(cdx,
			    ins, r->err, r->errsize);

			free(spdx);
			free(cdx);
			spdx = a;
			cdx = b;
			if (cdx != NULL)
				printf("sbom %s: %zu declared inputs of the "
				    "recipe\n", subj.name, json_array_size(ins));
		}
		if (cdx == NULL)
			free(spdx);
		else if ((rc = write_text(r, str(s, "spdx"), spdx)) == 0)
			rc = write_text(r, str(s, "cyclonedx"), cdx);
		else
			free(cdx);
	}
	buildinfo_free(&bi);
	return rc;
}

/* NULL-terminated copies of a list of strings (NULL for none). */
static const char **
list(json_t *a)
{
	const char **v;
	size_t i;
	json_t *s;

	if (a == NULL)
		return NULL;
	v = xcalloc(json_array_size(a) + 1, sizeof *v);
	json_array_foreach(a, i, s)
		v[i] = json_string_value(s);
	return v;
}

static int
make_image(struct run *r, json_t *im)
{
	json_t *plats = json_object_get(im, "platforms"), *p, *x;
	size_t np = json_array_size(plats), i, j;
	struct oci_image *imgs = xcalloc(np, sizeof *imgs);
	struct oci_file **files = xcalloc(np, sizeof *files);
	char **paths = NULL, digest[80] = "";
	size_t npaths = 0;
	const char **ep = list(json_object_get(im, "entrypoint"));
	const char **cmd = list(json_object_get(im, "cmd"));
	const char **env = list(json_object_get(im, "env"));
	struct target *tg = xcalloc(np, sizeof *tg);
	int fd = -1, ifd = -1, rc = -1;

	json_array_foreach(plats, i, p) {
		json_t *ins = json_object_get(p, "inputs");

		if (target_parse(&tg[i], str(p, "target"), r->err, r->errsize)
		    != 0)
			goto out;
		files[i] = xcalloc(json_array_size(ins), sizeof *files[i]);
		paths = xreallocarray(paths, npaths + json_array_size(ins),
		    sizeof *paths);
		json_array_foreach(ins, j, x) {
			paths[npaths] = xasprintf("/%s", str(json_array_get(
			    json_object_get(r->spec, "inputs"), (size_t)idx(x)),
			    "name"));
			files[i][j].path = paths[npaths++];
			files[i][j].fd = r->pj->fds[idx(x)];
			files[i][j].mode = 0755;
		}
		imgs[i].os = tg[i].os;
		imgs[i].arch = tg[i].arch;
		imgs[i].variant = tg[i].variant[0] ? tg[i].variant : NULL;
		imgs[i].files = files[i];
		imgs[i].nfiles = json_array_size(ins);
		imgs[i].entrypoint = ep;
		imgs[i].cmd = cmd;
		imgs[i].env = env;
		imgs[i].workdir = str(im, "workdir");
		imgs[i].user = str(im, "user");
		imgs[i].ca_certs = json_is_true(json_object_get(im, "ca_certs"));
		imgs[i].tzdata = json_is_true(json_object_get(im, "tzdata"));
	}
	if ((fd = create_out(r, str(im, "file"), 0644)) < 0 ||
	    (ifd = create_out(r, str(im, "index_file"), 0644)) < 0)
		goto out;
	if (oci_write_layout(fd, imgs, np, str(im, "name"), r->created,
	    PACKAGE_SCRATCH, digest, sizeof digest, ifd, r->err,
	    r->errsize) != 0)
		goto out;
	rc = close_out(r, fd, str(im, "file"));
	fd = -1;
	if (rc == 0)
		rc = close_out(r, ifd, str(im, "index_file"));
	ifd = -1;
	if (rc == 0)
		printf("image %s: %zu platforms, index %s\n", str(im, "file"),
		    np, digest);
out:
	if (fd >= 0)
		close(fd);
	if (ifd >= 0)
		close(ifd);
	for (i = 0; i < npaths; i++)
		free(paths[i]);
	for (i = 0; i < np; i++)
		free(files[i]);
	free(paths);
	free(files);
	free(imgs);
	free(tg);
	free(ep);
	free(cmd);
	free(env);
	return rc;
}

int
package_run(void *data, char *err, size_t errsize)
{
	struct package_job *pj = data;
	struct run r = { .pj = pj, .spec = pj->spec, .err = err,
	    .errsize = errsize };
	json_t *globs = all_globs(pj->spec), *e;
	size_t i;
	int rc = 1;

	r.created = json_integer_value(json_object_get(pj->spec,
	    "commit_time"));
	if (package_repo_files(&r.files, pj->commit, globs, err, errsize) != 0)
		goto out;
	if (make_universal(&r) != 0)
		goto out;
	json_array_foreach(json_object_get(pj->spec, "archives"), i, e)
		if (make_archive(&r, e) != 0)
			goto out;
	json_array_foreach(json_object_get(pj->spec, "sboms"), i, e)
		if (make_sbom(&r, e) != 0)
			goto out;
	e = json_object_get(pj->spec, "image");
	if (e != NULL && make_image(&r, e) != 0)
		goto out;
	rc = 0;
out:
	fflush(stdout);
	for (i = 0; i < r.nuniversal; i++)
		close(r.universal[i]);
	free(r.universal);
	package_files_free(&r.files);
	json_decref(globs);
	return rc;
}
