/*
 * What kilnd signs (daemon/attest.c): SHA256SUMS in the format sha256sum
 * reads, the trusted comment, the in-toto Statement with its SLSA
 * predicate, and the DSSE envelope, whose signature is checked here over
 * the PAE with libsodium's verify (independent of the signing path's
 * encoding) and against the DSSE specification's PAE example.
 */
#include "config.h"

#include <jansson.h>
#include <sodium.h>

#include "daemon/attest.h"
#include "lib/xmalloc.h"
#include "unit.h"

#define SHA_A "1111111111111111111111111111111111111111111111111111111111111111"
#define SHA_B "2222222222222222222222222222222222222222222222222222222222222222"
#define SHA_C "3333333333333333333333333333333333333333333333333333333333333333"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

static void
add_art(struct job_target *t, const char *name, const char *sha)
{
	t->artifacts = xreallocarray(t->artifacts, t->nartifacts + 1,
	    sizeof *t->artifacts);
	t->artifacts[t->nartifacts].name = xstrdup(name);
	t->artifacts[t->nartifacts].size = 10;
	t->artifacts[t->nartifacts].sha256 = sha ? xstrdup(sha) : NULL;
	t->nartifacts++;
}

/* A succeeded job of three targets, in submission (not name) order. */
static struct job *
sample_job(void)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->id = 42;
	j->repo = xstrdup("https://git.example.org/app.git");
	j->ref = xstrdup("v1.2.0");
	j->commit = xstrdup(COMMIT);
	j->cache = true;
	j->state = JOB_SUCCEEDED;
	j->created_at = 1790000000000;
	j->started_at = 1790000001000;
	j->finished_at = 1790000061500;
	j->ntargets = 3;
	j->targets = xcalloc(3, sizeof *j->targets);
	snprintf(j->targets[0].target, TARGET_NAME_MAX, "windows/amd64");
	snprintf(j->targets[1].target, TARGET_NAME_MAX, "linux/arm/v7");
	snprintf(j->targets[2].target, TARGET_NAME_MAX, "linux/amd64");
	add_art(&j->targets[0], "app.exe", SHA_A);
	add_art(&j->targets[1], "app", SHA_B);
	add_art(&j->targets[2], "app", SHA_C);
	add_art(&j->targets[2], "README", SHA_A);
	j->targets[2].cached = true;
	j->targets[2].toolchain = xstrdup("go1.22.12");
	j->targets[2].cached_from = 7;
	return j;
}

static void
sums_are_sorted_sha256sum_lines(void)
{
	struct job *j = sample_job();
	size_t len;
	char *s = attest_sums(j, &len);

	CHECK_STR(s,
	    SHA_A "  linux_amd64/README\n"
	    SHA_C "  linux_amd64/app\n"
	    SHA_B "  linux_arm_v7/app\n"
	    SHA_A "  windows_amd64/app.exe\n");
	CHECK_INT(len, strlen(s ? s : ""));
	free(s);
	/* An artifact without a digest cannot be summed. */
	free(j->targets[1].artifacts[0].sha256);
	j->targets[1].artifacts[0].sha256 = NULL;
	CHECK(attest_sums(j, &len) == NULL);
	job_free(j);
}

static void
trusted_comment_names_the_job(void)
{
	struct job *j = sample_job();
	char *tc = attest_trusted_comment(j, 1790000062999);

	CHECK_STR(tc, "timestamp:1790000062\tfile:SHA256SUMS\thashed\t"
	    "kiln-job:42\trepo:https://git.example.org/app.git\tcommit:" COMMIT);
	free(tc);
	/* A control character cannot split the one-line comment. */
	free(j->repo);
	j->repo = xstrdup("https://x/\ny\tz");
	tc = attest_trusted_comment(j, 0);
	CHECK(strstr(tc, "repo:https://x/?y?z\t") != NULL);
	CHECK(strchr(tc, '\n') == NULL);
	free(tc);
	job_free(j);
}

static void
pae_matches_the_dsse_example(void)
{
	struct sbuf b = { 0 };

	attest_pae(&b, "http://example.com/HelloWorld", "hello world", 11);
	sbuf_addc(&b, '\0');
	CHECK_STR(b.p, "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
	sbuf_free(&b);
}

static void
statement_is_slsa_provenance_v1(void)
{
	struct job *j = sample_job();
	char *text = attest_statement(j, "https://farm.example.org");
	json_t *st = json_loads(text ? text : "", 0, NULL), *p, *sub;

	CHECK(st != NULL);
	CHECK_STR(json_string_value(json_object_get(st, "_type")),
	    "https://in-toto.io/Statement/v1");
	CHECK_STR(json_string_value(json_object_get(st, "predicateType")),
	    "https://slsa.dev/provenance/v1");
	sub = json_object_get(st, "subject");
	CHECK_INT(json_array_size(sub), 4);
	CHECK_STR(json_string_value(json_object_get(json_array_get(sub, 1),
	    "name")), "linux_amd64/app");
	CHECK_STR(json_string_value(json_object_get(json_object_get(
	    json_array_get(sub, 1), "digest"), "sha256")), SHA_C);
	p = json_object_get(st, "predicate");
	CHECK_STR(json_string_value(json_object_get(json_object_get(p,
	    "buildDefinition"), "buildType")), ATTEST_BUILD_TYPE);
	json_t *ext = json_object_get(json_object_get(p, "buildDefinition"),
	    "externalParameters");
	CHECK_STR(json_string_value(json_object_get(ext, "repo")),
	    "https://git.example.org/app.git");
	CHECK_STR(json_string_value(json_object_get(ext, "ref")), "v1.2.0");
	CHECK_INT(json_array_size(json_object_get(ext, "targets")), 3);
	CHECK(json_object_get(ext, "recipe") == NULL);
	json_t *dep = json_array_get(json_object_get(json_object_get(p,
	    "buildDefinition"), "resolvedDependencies"), 0);
	CHECK_STR(json_string_value(json_object_get(dep, "uri")),
	    "git+https://git.example.org/app.git@v1.2.0");
	CHECK_STR(json_string_value(json_object_get(json_object_get(dep,
	    "digest"), "gitCommit")), COMMIT);
	json_t *cached = json_object_get(json_object_get(json_object_get(p,
	    "buildDefinition"), "internalParameters"), "cachedTargets");
	CHECK_INT(json_array_size(cached), 1);
	CHECK_STR(json_string_value(json_array_get(cached, 0)), "linux/amd64");
	/* Each target's toolchain, where one is known. */
	json_t *tcs = json_object_get(json_object_get(json_object_get(p,
	    "buildDefinition"), "internalParameters"), "toolchains");
	CHECK_INT(json_object_size(tcs), 1);
	CHECK_STR(json_string_value(json_object_get(tcs, "linux/amd64")),
	    "go1.22.12");
	/* A reused target names the job that built it. */
	json_t *from = json_object_get(json_object_get(json_object_get(p,
	    "buildDefinition"), "internalParameters"), "cachedFrom");
	CHECK_INT(json_object_size(from), 1);
	CHECK_INT(json_integer_value(json_object_get(from, "linux/amd64")), 7);
	json_t *rd = json_object_get(p, "runDetails");
	CHECK_STR(json_string_value(json_object_get(json_object_get(rd,
	    "builder"), "id")), "https://farm.example.org");
	json_t *md = json_object_get(rd, "metadata");
	CHECK_STR(json_string_value(json_object_get(md, "invocationId")), "42");
	CHECK_STR(json_string_value(json_object_get(md, "startedOn")),
	    "2026-09-21T14:13:21.000Z");
	CHECK_STR(json_string_value(json_object_get(md, "finishedOn")),
	    "2026-09-21T14:14:21.500Z");
	json_decref(st);
	free(text);
	job_free(j);
}

static void
envelope_verifies_over_the_pae(void)
{
	struct sign_key k;
	const char *payload = "{\"_type\":\"https://in-toto.io/Statement/v1\"}";
	char *env, id[17];
	json_t *e, *sig;
	unsigned char raw[128], s[64];
	size_t len, slen;
	struct sbuf pae = { 0 };

	CHECK(sodium_init() >= 0);
	randombytes_buf(k.id, sizeof k.id);
	crypto_sign_ed25519_keypair(k.pk, k.sk);
	env = attest_envelope(&k, payload, strlen(payload));
	CHECK(env[strlen(env) - 1] == '\n');
	CHECK(strchr(env, '\n') == env + strlen(env) - 1);
	e = json_loads(env, 0, NULL);
	CHECK(e != NULL);
	CHECK_STR(json_string_value(json_object_get(e, "payloadType")),
	    "application/vnd.in-toto+json");
	CHECK_INT(sodium_base642bin(raw, sizeof raw,
	    json_string_value(json_object_get(e, "payload")),
	    json_string_length(json_object_get(e, "payload")), NULL, &len,
	    NULL, sodium_base64_VARIANT_ORIGINAL), 0);
	CHECK_INT(len, strlen(payload));
	CHECK(memcmp(raw, payload, len) == 0);
	sig = json_array_get(json_object_get(e, "signatures"), 0);
	sign_key_id(id, &k);
	CHECK_STR(json_string_value(json_object_get(sig, "keyid")), id);
	CHECK_INT(sodium_base642bin(s, sizeof s,
	    json_string_value(json_object_get(sig, "sig")),
	    json_string_length(json_object_get(sig, "sig")), NULL, &slen,
	    NULL, sodium_base64_VARIANT_ORIGINAL), 0);
	CHECK_INT(slen, 64);
	/* The PAE written out by hand, not by attest_pae(). */
	char *manual = xasprintf("DSSEv1 28 application/vnd.in-toto+json %zu %s",
	    strlen(payload), payload);
	CHECK_INT(crypto_sign_ed25519_verify_detached(s,
	    (unsigned char *)manual, strlen(manual), k.pk), 0);
	manual[strlen(manual) - 2] ^= 1;
	CHECK(crypto_sign_ed25519_verify_detached(s, (unsigned char *)manual,
	    strlen(manual), k.pk) != 0);
	free(manual);
	sbuf_free(&pae);
	json_decref(e);
	free(env);
	sign_key_wipe(&k);
}

UNIT_MAIN(
	TEST(sums_are_sorted_sha256sum_lines),
	TEST(trusted_comment_names_the_job),
	TEST(pae_matches_the_dsse_example),
	TEST(statement_is_slsa_provenance_v1),
	TEST(envelope_verifies_over_the_pae),
)
