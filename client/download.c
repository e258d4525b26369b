/*
 * kiln download: a job's artifacts, SHA256SUMS, its minisign signature
 * and the provenance into a directory, and with --verify the signature
 * checked against the farm's key and every file against SHA256SUMS.
 *
 * Names come from the server, so none is used as a path before it is
 * checked (sums_check_name: relative, no "..", no control characters),
 * every directory on the way is opened with O_NOFOLLOW below the
 * download directory's descriptor, and each file is written to a
 * temporary name created O_EXCL|O_NOFOLLOW, hashed while it is written,
 * and renamed into place (never over an existing file) only once its
 * hash is the one expected: a file that fails the check never appears
 * under its name.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "client.h"
#include "keys.h"
#include "minisign.h"
#include "sbuf.h"
#include "sums.h"
#include "target.h"
#include "util.h"
#include "xmalloc.h"

#define SIGNED_MAX (16u << 20)	/* SHA256SUMS and its signature, in memory */

static const char usage[] =
    "usage: kiln download JOB [DIR] [--verify] [--pubkey FILE]\n";

struct dl {
	const struct kiln_conf *c;
	int64_t id;
	const char *dir;
	int dirfd;
	bool tty;
	unsigned seq;
	size_t nfiles, ndone;
	int code;		/* the exit status of a failure */
};

struct fetch {
	struct dl *d;
	const char *name;
	int fd;
	crypto_hash_sha256_state sha;
	struct sbuf *keep;	/* NULL: the body only goes to the file */
	bool too_big;
	int werr;
	uint64_t shown;
};

static int
sink(void *arg, const char *p, size_t n)
{
	struct fetch *f = arg;
	size_t off = 0;

	crypto_hash_sha256_update(&f->sha, (const unsigned char *)p, n);
	if (f->keep != NULL) {
		if (f->keep->len + n > SIGNED_MAX) {
			f->too_big = true;
			return -1;
		}
		sbuf_add(f->keep, p, n);
	}
	while (off < n) {
		ssize_t w = write(f->fd, p + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->werr = w < 0 ? errno : EIO;
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

static void
progress(void *arg, uint64_t now, uint64_t total)
{
	struct fetch *f = arg;

	if (!f->d->tty || (now - f->shown < (256u << 10) && now != total))
		return;
	f->shown = now;
	fprintf(stderr, "\r\033[2K[%zu/%zu] %.60s  %" PRIu64 " KiB",
	    f->d->ndone + 1, f->d->nfiles, f->name, now >> 10);
	if (total > 0)
		fprintf(stderr, " of %" PRIu64 " KiB", total >> 10);
	fflush(stderr);
}

/*
 * Open (creating) the directories of name below the download directory,
 * never following a symlink; the descriptor of the last one, and its
 * last component in *base.  -1 with the reason.
 */
static int
open_parent(struct dl *d, const char *name, const char **base, char *err,
    size_t errsize)
{
	int fd = dup(d->dirfd);
	const char *p = name, *slash;

	while (fd >= 0 && (slash = strchr(p, '/')) != NULL) {
		char comp[256];
		int nfd;

		if ((size_t)(slash - p) >= sizeof comp) {
			close(fd);
			return util_errorf(err, errsize, "%s: a name "
			    "component longer than 255 bytes", name);
		}
		memcpy(comp, p, (size_t)(slash - p));
		comp[slash - p] = '\0';
		if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
			util_errorf(err, errsize, "%s/%s: cannot create %s: %s",
			    d->dir, name, comp, strerror(errno));
			close(fd);
			return -1;
		}
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (nfd < 0) {
			util_errorf(err, errsize, "%s/%s: %s is not a "
			    "directory of its own: %s", d->dir, name, comp,
			    strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		fd = nfd;
		p = slash + 1;
	}
	if (fd < 0)
		return util_errorf(err, errsize, "%s: %s", d->dir,
		    strerror(errno));
	*base = p;
	return fd;
}

/*
 * GET path into name under the directory.  want: the hex sha256 it must
 * have (NULL: any), what: where that hash comes from, for the message.
 * keep: the body in memory too.  0 or -1 with the reason.
 */
static int
fetch(struct dl *d, const char *path, const char *name, const char *want,
    const char *what, struct sbuf *keep, char *err, size_t errsize)
{
	struct fetch f = { .d = d, .name = name, .keep = keep };
	struct http_resp r;
	unsigned char h[32];
	char hex[65], tmp[64], why[768];
	const char *base;
	int pfd, rc = -1;

	if (sums_check_name(name, why, sizeof why) != 0)
		return util_errorf(err, errsize, "the server names a file "
		    "unsafely: %s", why);
	if ((pfd = open_parent(d, name, &base, err, errsize)) < 0)
		return -1;
	snprintf(tmp, sizeof tmp, ".kiln-download.%ld.%u", (long)getpid(),
	    d->seq++);
	f.fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (f.fd < 0) {
		util_errorf(err, errsize, "%s/%s: cannot create: %s", d->dir,
		    name, strerror(errno));
		close(pfd);
		return -1;
	}
	crypto_hash_sha256_init(&f.sha);
	if (http_get_stream(d->c, path, sink, &f, progress, &f, &r, why,
	    sizeof why) != 0) {
		if (f.too_big)
			util_errorf(err, errsize, "%s: larger than %u MiB",
			    name, SIGNED_MAX >> 20);
		else if (f.werr != 0)
			util_errorf(err, errsize, "%s/%s: %s", d->dir, name,
			    strerror(f.werr));
		else
			util_errorf(err, errsize, "%s: %s", name, why);
		if (!f.too_big && f.werr == 0)
			d->code = KILN_EXIT_SERVER;
		goto out;
	}
	if (r.status != 200) {
		d->code = KILN_EXIT_SERVER;
		http_problem(&r, why, sizeof why);
		http_resp_free(&r);
		util_errorf(err, errsize, "%s: %s", name, why);
		goto out;
	}
	if (d->tty)
		fputs("\r\033[2K", stderr);
	crypto_hash_sha256_final(&f.sha, h);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	if (want != NULL && strcmp(hex, want) != 0) {
		util_errorf(err, errsize, "%s: sha256 mismatch: the download "
		    "is %s, %s says %s", name, hex, what, want);
		goto out;
	}
	if (fsync(f.fd) != 0) {
		util_errorf(err, errsize, "%s/%s: %s", d->dir, name,
		    strerror(errno));
		goto out;
	}
	if (renameat2(pfd, tmp, pfd, base, RENAME_NOREPLACE) != 0) {
		util_errorf(err, errsize, "%s/%s: %s", d->dir, name, errno ==
		    EEXIST ? "exists already: not overwritten" :
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(f.fd);
	if (rc != 0)
		unlinkat(pfd, tmp, 0);
	close(pfd);
	return rc;
}

/* An artifact's name in SHA256SUMS: "linux_arm_v7/hello". */
static char *
artifact_name(json_t *a, char *err, size_t errsize)
{
	const char *t = json_string_value(json_object_get(a, "target"));
	const char *n = json_string_value(json_object_get(a, "name"));
	char url[TARGET_NAME_MAX], why[256];
	struct target tg;

	if (t == NULL || n == NULL) {
		util_errorf(err, errsize, "an artifact without a target or "
		    "name in the listing");
		return NULL;
	}
	if (target_parse_row(&tg, t, why, sizeof why) != 0) {
		util_errorf(err, errsize, "an artifact's target: %s", why);
		return NULL;
	}
	if (strchr(n, '/') != NULL) {
		util_errorf(err, errsize, "the server names an artifact "
		    "'%.200s' with a '/'", n);
		return NULL;
	}
	target_url_name(url, &tg);
	return xasprintf("%s/%s", url, n);
}

/* The index of name in SHA256SUMS, or n when it is not there. */
static size_t
sums_lookup(const struct sums_entry *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			break;
	return i;
}

/*
 * Whether the signature's trusted comment (attest_trusted_comment: tab-
 * separated fields) says it signs job `id`.  Every job's SHA256SUMS is
 * signed with the same key, so without this a server could answer for
 * one job with another's genuine files and signature.  0, or -1 naming
 * the job the comment names.
 */
static int
signed_for_job(const char *tc, int64_t id, char *err, size_t errsize)
{
	static const char field[] = "kiln-job:";
	const char *p = tc;
	char want[32];
	size_t n;

	snprintf(want, sizeof want, "%" PRId64, id);
	for (;;) {
		n = strcspn(p, "\t");
		if (n > sizeof field - 1 &&
		    strncmp(p, field, sizeof field - 1) == 0) {
			const char *v = p + sizeof field - 1;
			size_t vn = n - (sizeof field - 1);

			if (vn == strlen(want) && strncmp(v, want, vn) == 0)
				return 0;
			return util_errorf(err, errsize, "SHA256SUMS: the "
			    "signature is of job %.*s, not of job %" PRId64,
			    (int)(vn > 20 ? 20 : vn), v, id);
		}
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return util_errorf(err, errsize, "SHA256SUMS: the signature's "
	    "trusted comment names no job (kiln-job:), so it cannot be "
	    "job %" PRId64 "'s", id);
}

static int
download(struct dl *d, json_t *list, bool verify, const char *pubkey,
    char *err, size_t errsize)
{
	static const char *const signed_files[] = { "SHA256SUMS",
	    "SHA256SUMS.minisig", "provenance.intoto.jsonl" };
	struct sbuf sums = { 0 }, sig = { 0 };
	struct sums_entry *v = NULL;
	bool *got = NULL;		/* v[i] was downloaded and matched */
	struct minisign_key key;
	json_t *arts = json_object_get(list, "artifacts"), *a;
	bool is_signed = json_is_true(json_object_get(list, "signed"));
	char path[256], why[768], kid[17], tc[1024];
	size_t nv = 0, i;
	int rc = -1;

	if (verify && !is_signed) {
		const char *st = json_string_value(json_object_get(list,
		    "state"));

		return util_errorf(err, errsize, "job %" PRId64 " is not "
		    "signed (it is %s): nothing to verify", d->id,
		    st != NULL ? st : "?");
	}
	d->nfiles = json_array_size(arts) + (is_signed ? 3 : 0);
	if (is_signed) {
		for (i = 0; i < 3; i++) {
			snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/%s",
			    d->id, signed_files[i]);
			if (fetch(d, path, signed_files[i], NULL, NULL,
			    i == 0 ? &sums : i == 1 ? &sig : NULL, err,
			    errsize) != 0)
				goto out;
			d->ndone++;
		}
	}
	if (verify) {
		if (keys_get(d->c, pubkey, &key, why, sizeof why) != 0) {
			util_errorf(err, errsize, "%s", why);
			goto out;
		}
		if (minisign_verify(&key, sums.p, sums.len, sig.p, sig.len,
		    tc, sizeof tc, why, sizeof why) != 0) {
			util_errorf(err, errsize, "SHA256SUMS: %s", why);
			goto out;
		}
		if (signed_for_job(tc, d->id, err, errsize) != 0)
			goto out;
		if (sums_parse(sums.p, sums.len, &v, &nv, err, errsize) != 0)
			goto out;
		got = xcalloc(nv ? nv : 1, sizeof *got);
	}
	json_array_foreach(arts, i, a) {
		char *name = artifact_name(a, err, errsize), *e1, *e2;
		const char *want, *what = "the job's artifact list";
		const char *t = json_string_value(json_object_get(a,
		    "target"));
		struct target tg;
		char url[TARGET_NAME_MAX];
		size_t at = 0;
		int frc;

		if (name == NULL)
			goto out;
		if (verify) {
			at = sums_lookup(v, nv, name);
			what = "SHA256SUMS";
			if (at == nv) {
				util_errorf(err, errsize, "%s: not in the "
				    "signed SHA256SUMS", name);
				free(name);
				goto out;
			}
			want = v[at].sha256;
		} else {
			want = json_string_value(json_object_get(a, "sha256"));
		}
		target_parse_row(&tg, t, why, sizeof why);
		target_url_name(url, &tg);
		e1 = http_escape(url);
		e2 = http_escape(json_string_value(json_object_get(a,
		    "name")));
		snprintf(path, sizeof path, "/v1/jobs/%" PRId64
		    "/artifacts/%s/%.180s", d->id, e1, e2);
		free(e1);
		free(e2);
		frc = fetch(d, path, name, want, what, NULL, err, errsize);
		free(name);
		if (frc != 0)
			goto out;
		if (verify)
			got[at] = true;
		d->ndone++;
	}
	if (verify) {
		/* Everything signed must have come and matched, not only
		 * what was listed: a file DIR held before proves nothing. */
		for (i = 0; i < nv; i++) {
			if (!got[i]) {
				util_errorf(err, errsize, "%s: in SHA256SUMS "
				    "but not among the job's artifacts",
				    v[i].name);
				goto out;
			}
		}
		minisign_key_id(kid, key.id);
		printf("verified: SHA256SUMS signed by key %s; %zu files "
		    "match it\n", kid, nv);
	}
	printf("downloaded %zu files into %s\n", d->ndone, d->dir);
	rc = 0;
out:
	if (d->tty)
		fputs("\r\033[2K", stderr);
	sbuf_free(&sums);
	sbuf_free(&sig);
	sums_free(v, nv);
	free(got);
	return rc;
}

int
cmd_download(const struct kiln_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verify", no_argument, NULL, 'v' },
		{ "pubkey", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct dl d = { .c = c, .tty = isatty(STDERR_FILENO),
	    .code = KILN_EXIT_FAILED };
	const char *pubkey = NULL;
	char err[2048], path[64], *dir;
	bool verify = false;
	json_t *list;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "vk:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'v': verify = true; break;
		case 'k': pubkey = optarg; verify = true; break;
		case 'h':
			fputs(usage, stdout);
			return KILN_EXIT_OK;
		default:
			fputs(usage, stderr);
			return KILN_EXIT_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		fputs(usage, stderr);
		return KILN_EXIT_USAGE;
	}
	if (parse_job_id(argv[optind], &d.id) != 0)
		return KILN_EXIT_USAGE;
	if (sodium_init() < 0) {
		kiln_err("libsodium cannot initialize");
		return KILN_EXIT_FAILED;
	}
	snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/artifacts", d.id);
	if ((rc = http_get_json(c, path, &list, err, sizeof err)) != 0) {
		kiln_err("job %" PRId64 ": %s", d.id, err);
		return rc;
	}
	dir = optind + 1 < argc ? xstrdup(argv[optind + 1]) :
	    xasprintf("kiln-%" PRId64, d.id);
	d.dir = dir;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		kiln_err("%s: %s", dir, strerror(errno));
		rc = KILN_EXIT_FAILED;
	} else if ((d.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		kiln_err("%s: not a directory: %s", dir, strerror(errno));
		rc = KILN_EXIT_FAILED;
	} else {
		if (download(&d, list, verify, pubkey, err, sizeof err) != 0) {
			kiln_err("job %" PRId64 ": %s", d.id, err);
			/* A failed check is 1; the server's or network's 3. */
			rc = d.code;
		}
		close(d.dirfd);
	}
	json_decref(list);
	free(dir);
	return rc;
}
