/*
 * The farm key and minisign signatures (daemon/sign.c), checked with the
 * real minisign: a signature it accepts with its trusted comment, a
 * flipped byte it refuses, and the key file rules.
 */
#include "config.h"

#include <sys/stat.h>

#include "daemon/callback.h"
#include "daemon/sign.h"
#include "unit.h"

/* minisign -Vm file -p pub; with want_comment, it must also print it. */
static int
minisign_verify(const char *file, const char *pub, const char *want_comment)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd, "minisign -Vm '%s' -p '%s' > '%s.out' 2>&1",
	    file, pub, file);
	if (system(cmd) != 0)
		return 1;
	if (want_comment == NULL)
		return 0;
	snprintf(cmd, sizeof cmd, "grep -qF 'Trusted comment: %s' '%s.out'",
	    want_comment, file);
	return system(cmd) != 0;
}

static void
minisign_verifies_what_kiln_signs(void)
{
	const char *dir = unit_tmpdir();
	const char *data = "1f2e  linux_amd64/hello\n3c4d  linux_arm64/hello\n";
	char err[300], path[1024], sigpath[1100], pubpath[1100];
	struct sign_key k;
	char *sig, *pub;

	if (system("command -v minisign >/dev/null") != 0) {
		fprintf(stderr, "  minisign missing (scripts/bootstrap)\n");
		CHECK(0);
		return;
	}
	CHECK_INT(sign_keygen(dir, err, sizeof err), 0);
	CHECK_INT(sign_load(&k, dir, err, sizeof err), 0);
	pub = sign_public_text(&k);
	snprintf(path, sizeof path, "%s/kiln.pub", dir);
	/* The public key file written is the one served. */
	{
		char buf[512] = "";
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		CHECK_STR(buf, pub);
	}
	snprintf(path, sizeof path, "%s/SHA256SUMS", dir);
	write_text(path, data);
	sig = sign_minisig(&k, data, strlen(data),
	    "job 7 https://git.example.com/a.git 0123abcd");
	snprintf(sigpath, sizeof sigpath, "%s.minisig", path);
	write_text(sigpath, sig);
	snprintf(pubpath, sizeof pubpath, "%s/kiln.pub", dir);
	/* minisign checks the signature and the trusted comment. */
	CHECK_INT(minisign_verify(path, pubpath,
	    "job 7 https://git.example.com/a.git 0123abcd"), 0);
	/* One flipped byte of the file: refused. */
	write_text(path, "1f2e  linux_amd64/hello\n3c4d  linux_arm64/hellp\n");
	CHECK(minisign_verify(path, pubpath, NULL) != 0);
	/* A changed trusted comment: refused. */
	write_text(path, data);
	{
		char *bad = strstr(sig, "job 7");
		if (bad != NULL)
			bad[4] = '8';
		write_text(sigpath, sig);
	}
	CHECK(minisign_verify(path, pubpath, NULL) != 0);
	free(sig);
	free(pub);
	sign_key_wipe(&k);
}

static void
key_files_are_guarded(void)
{
	const char *dir = unit_tmpdir();
	char err[300], path[600];
	struct sign_key k;
	struct stat st;

	CHECK_INT(sign_load(&k, dir, err, sizeof err), -2);	/* none yet */
	CHECK_INT(sign_keygen(dir, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/kiln.key", dir);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	/* Never overwrites a key. */
	CHECK_INT(sign_keygen(dir, err, sizeof err), -1);
	CHECK(strstr(err, "refusing to overwrite") != NULL);
	/* A key readable by others is refused. */
	CHECK_INT(chmod(path, 0644), 0);
	CHECK_INT(sign_load(&k, dir, err, sizeof err), -1);
	CHECK(strstr(err, "readable by group or others") != NULL);
	CHECK_INT(chmod(path, 0600), 0);
	CHECK_INT(sign_load(&k, dir, err, sizeof err), 0);
	/* A file that is not a key. */
	write_text(path, "untrusted comment: x\nbm90IGEga2V5\n");
	CHECK_INT(chmod(path, 0600), 0);
	CHECK_INT(sign_load(&k, dir, err, sizeof err), -1);
	CHECK(strstr(err, "not a kiln secret key") != NULL);
	sign_key_wipe(&k);
}

/* GitHub's published webhook test vector, through the callback signer. */
static void
hmac_matches_githubs_vector(void)
{
	char sig[7 + 65];

	callback_sign(sig, "It's a Secret to Everybody", "Hello, World!", 13);
	CHECK_STR(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22"
	    "c46f4379c8b043e17");
}

UNIT_MAIN(
	TEST(minisign_verifies_what_kiln_signs),
	TEST(key_files_are_guarded),
	TEST(hmac_matches_githubs_vector),
)
