/*
 * A driver for tests/integration/image.sh: oci_write_layout called as
 * kiln-worker would, on files the test made.
 *
 *   oci-write -o OUT.tar -r REF -t CREATED -d TMPDIR
 *       { --image OS/ARCH[/VARIANT] [--file SRC DEST MODE]...
 *         [--entrypoint ARG]... [--cmd ARG]... [--env K=V]...
 *         [--workdir DIR] [--user USER] [--ca-certs] [--tzdata] }...
 *
 * Prints the index digest.  The locale is the environment's, so that a
 * test can check that it changes nothing.
 */
#include "config.h"

#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/oci.h"

#define MAXI 8
#define MAXL 32

struct img {
	struct oci_image m;
	struct oci_file files[MAXL];
	const char *ep[MAXL + 1], *cmd[MAXL + 1], *env[MAXL + 1];
	size_t nep, ncmd, nenv;
	char *plat;
};

static void
usage(void)
{
	fprintf(stderr, "usage: oci-write -o OUT -r REF -t CREATED -d TMPDIR "
	    "--image OS/ARCH[/VARIANT] [options]...\n");
	exit(2);
}

static void
add(const char **v, size_t *n, const char *s)
{
	if (*n >= MAXL)
		usage();
	v[(*n)++] = s;
}

int
main(int argc, char **argv)
{
	static struct img imgs[MAXI];
	struct oci_image m[MAXI];
	const char *out = NULL, *ref = NULL, *tmpdir = NULL;
	char digest[OCI_DIGEST_SIZE], err[512];
	long long created = -1;
	struct img *cur = NULL;
	size_t n = 0;
	int i, fd;

	setlocale(LC_ALL, "");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED(k) do { if (v == NULL || (k && cur == NULL)) usage(); i++; } while (0)
		if (strcmp(a, "-o") == 0) { NEED(0); out = v; }
		else if (strcmp(a, "-r") == 0) { NEED(0); ref = v; }
		else if (strcmp(a, "-t") == 0) { NEED(0); created = atoll(v); }
		else if (strcmp(a, "-d") == 0) { NEED(0); tmpdir = v; }
		else if (strcmp(a, "--image") == 0) {
			NEED(0);
			if (n >= MAXI)
				usage();
			cur = &imgs[n++];
			cur->plat = strdup(v);
			cur->m.os = strtok(cur->plat, "/");
			cur->m.arch = strtok(NULL, "/");
			cur->m.variant = strtok(NULL, "/");
			cur->m.files = cur->files;
		} else if (strcmp(a, "--file") == 0) {
			if (cur == NULL || i + 3 >= argc || cur->m.nfiles >= MAXL)
				usage();
			/* O_NONBLOCK: a FIFO must reach the library, not hang here. */
			fd = open(argv[i + 1], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0) {
				perror(argv[i + 1]);
				return 1;
			}
			cur->files[cur->m.nfiles].fd = fd;
			cur->files[cur->m.nfiles].path = argv[i + 2];
			cur->files[cur->m.nfiles].mode =
			    (unsigned)strtoul(argv[i + 3], NULL, 8);
			cur->m.nfiles++;
			i += 3;
		} else if (strcmp(a, "--entrypoint") == 0) {
			NEED(1); add(cur->ep, &cur->nep, v); cur->m.entrypoint = cur->ep;
		} else if (strcmp(a, "--cmd") == 0) {
			NEED(1); add(cur->cmd, &cur->ncmd, v); cur->m.cmd = cur->cmd;
		} else if (strcmp(a, "--env") == 0) {
			NEED(1); add(cur->env, &cur->nenv, v); cur->m.env = cur->env;
		} else if (strcmp(a, "--workdir") == 0) {
			NEED(1); cur->m.workdir = v;
		} else if (strcmp(a, "--user") == 0) {
			NEED(1); cur->m.user = v;
		} else if (strcmp(a, "--ca-certs") == 0 && cur != NULL)
			cur->m.ca_certs = true;
		else if (strcmp(a, "--tzdata") == 0 && cur != NULL)
			cur->m.tzdata = true;
		else
			usage();
	}
	if (out == NULL || ref == NULL || tmpdir == NULL || n == 0)
		usage();
	for (size_t k = 0; k < n; k++)
		m[k] = imgs[k].m;
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(out);
		return 1;
	}
	if (oci_write_layout(fd, m, n, ref, (int64_t)created, tmpdir, digest,
	    sizeof(digest), -1, err, sizeof(err)) < 0) {
		fprintf(stderr, "oci-write: %s\n", err);
		return 1;
	}
	if (close(fd) < 0) {
		perror(out);
		return 1;
	}
	printf("%s\n", digest);
	return 0;
}
