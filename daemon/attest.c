#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest.h"
#include "util.h"
#include "xmalloc.h"

struct subject {
	char *name;		/* "linux_arm_v7/hello" */
	const char *sha256;
};

static int
cmp_subject(const void *a, const void *b)
{
	return strcmp(((const struct subject *)a)->name,
	    ((const struct subject *)b)->name);
}

/* Every artifact of the job under its SHA256SUMS name, sorted. */
static struct subject *
subjects(const struct job *job, size_t *nout)
{
	struct subject *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < job->ntargets; i++) {
		const struct job_target *t = &job->targets[i];
		char url[TARGET_NAME_MAX], err[128];
		struct target tg;

		if (target_parse_row(&tg, t->target, err, sizeof err) != 0)
			snprintf(url, sizeof url, "%s", t->target);
		else
			target_url_name(url, &tg);
		for (size_t a = 0; a < t->nartifacts; a++) {
			v = xreallocarray(v, n + 1, sizeof *v);
			v[n].name = xasprintf("%s/%s", url,
			    t->artifacts[a].name);
			v[n].sha256 = t->artifacts[a].sha256;
			n++;
		}
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_subject);
	*nout = n;
	return v;
}

static void
free_subjects(struct subject *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

char *
attest_sums(const struct job *job, size_t *len)
{
	size_t n;
	struct subject *v = subjects(job, &n);
	struct sbuf b = { 0 };

	for (size_t i = 0; i < n; i++) {
		if (v[i].sha256 == NULL) {
			free_subjects(v, n);
			sbuf_free(&b);
			return NULL;
		}
		sbuf_adds(&b, v[i].sha256);
		sbuf_add(&b, "  ", 2);
		sbuf_adds(&b, v[i].name);
		sbuf_addc(&b, '\n');
	}
	free_subjects(v, n);
	sbuf_reserve(&b, 1);
	return sbuf_steal(&b, len);
}

/* s with control characters (tab, newline...) shown as '?'. */
static char *
one_line(const char *s)
{
	char *r = xstrdup(s ? s : "");

	for (char *p = r; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return r;
}

char *
attest_trusted_comment(const struct job *job, int64_t now_ms)
{
	char *repo = one_line(job->repo), *commit = one_line(job->commit);
	char *tc;

	/* minisign's own fields first, then the job's. */
	tc = xasprintf("timestamp:%" PRId64 "\tfile:SHA256SUMS\thashed\t"
	    "kiln-job:%" PRId64 "\trepo:%s\tcommit:%s", now_ms / 1000,
	    job->id, repo, commit);
	free(repo);
	free(commit);
	return tc;
}

static json_t *
time_json(int64_t ms)
{
	char buf[40];

	if (ms == 0)
		return json_null();
	util_format_time(buf, sizeof buf, ms);
	return json_string(buf);
}

char *
attest_statement(const struct job *job, const char *builder_id)
{
	json_t *subj = json_array(), *targets = json_array();
	json_t *cached = json_array(), *ext, *recipe = NULL, *st;
	struct subject *v;
	char *uri, *text, id[32];
	size_t n;

	v = subjects(job, &n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(subj, json_pack("{s:s, s:{s:s}}",
		    "name", v[i].name, "digest", "sha256",
		    v[i].sha256 ? v[i].sha256 : ""));
	free_subjects(v, n);
	for (size_t i = 0; i < job->ntargets; i++) {
		json_array_append_new(targets,
		    json_string(job->targets[i].target));
		if (job->targets[i].cached)
			json_array_append_new(cached,
			    json_string(job->targets[i].target));
	}
	if (job->recipe != NULL)
		recipe = json_loads(job->recipe, 0, NULL);
	ext = json_pack("{s:s, s:s, s:o}", "repo", job->repo, "ref", job->ref,
	    "targets", targets);
	/* The recipe the request named; absent when the repository's
	 * own (.kiln.json or go.mod at that commit) was used. */
	if (recipe != NULL)
		json_object_set_new(ext, "recipe", recipe);
	if (!job->cache)
		json_object_set_new(ext, "cache", json_false());
	uri = xasprintf("git+%s@%s", job->repo, job->ref);
	snprintf(id, sizeof id, "%" PRId64, job->id);
	st = json_pack("{s:s, s:o, s:s, s:{s:{s:s, s:o, s:{s:o}, s:[{s:s, "
	    "s:{s:s}}]}, s:{s:{s:s, s:{s:s}}, s:{s:s, s:o, s:o}}}}",
	    "_type", "https://in-toto.io/Statement/v1",
	    "subject", subj,
	    "predicateType", "https://slsa.dev/provenance/v1",
	    "predicate",
	    "buildDefinition",
	    "buildType", ATTEST_BUILD_TYPE,
	    "externalParameters", ext,
	    "internalParameters", "cachedTargets", cached,
	    "resolvedDependencies", "uri", uri, "digest", "gitCommit",
	    job->commit ? job->commit : "",
	    "runDetails",
	    "builder", "id", builder_id, "version", "kiln", PACKAGE_VERSION,
	    "metadata", "invocationId", id,
	    "startedOn", time_json(job->started_at ? job->started_at :
	    job->created_at),
	    "finishedOn", time_json(job->finished_at));
	free(uri);
	if (st == NULL)
		return NULL;	/* invalid UTF-8: the API rejects it first */
	/* Which toolchain built each target ("go1.22.12"): the compiler
	 * is part of what made the bytes. */
	/* And which job built a reused target's files (cachedFrom). */
	{
		json_t *tcs = json_object(), *from = json_object();
		json_t *ip = json_object_get(json_object_get(json_object_get(st,
		    "predicate"), "buildDefinition"), "internalParameters");
		for (size_t i = 0; i < job->ntargets; i++) {
			if (job->targets[i].toolchain != NULL)
				json_object_set_new(tcs, job->targets[i].target,
				    json_string(job->targets[i].toolchain));
			if (job->targets[i].cached && job->targets[i].cached_from)
				json_object_set_new(from, job->targets[i].target,
				    json_integer(job->targets[i].cached_from));
		}
		json_object_set_new(ip, "toolchains", tcs);
		json_object_set_new(ip, "cachedFrom", from);
		/* What was asked beyond the builds (archives, image...), and
		 * what each verifying rebuild showed. */
		if (job->outputs != NULL) {
			json_t *o = json_loads(job->outputs, 0, NULL);
			if (o != NULL)
				json_object_set_new(ext, "outputs", o);
		}
		for (size_t i = 0; i < job->ntargets; i++) {
			json_t *ver = job->targets[i].verified == NULL ? NULL :
			    json_loads(job->targets[i].verified, 0, NULL);
			json_t *all = json_object_get(ip, "verification");

			if (ver == NULL)
				continue;
			if (all == NULL) {
				all = json_object();
				json_object_set_new(ip, "verification", all);
			}
			json_object_set_new(all, job->targets[i].target, ver);
		}
		/* Whose caches the builds read and wrote (SECURITY.md). */
		if (job_trust_name(job->trust) != NULL)
			json_object_set_new(ip, "trust",
			    json_string(job_trust_name(job->trust)));
	}
	text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(st);
	return text;
}

void
attest_pae(struct sbuf *out, const char *type, const void *body,
    size_t len)
{
	char num[24];

	sbuf_add(out, "DSSEv1 ", 7);
	snprintf(num, sizeof num, "%zu ", strlen(type));
	sbuf_adds(out, num);
	sbuf_adds(out, type);
	snprintf(num, sizeof num, " %zu ", len);
	sbuf_adds(out, num);
	sbuf_add(out, body, len);
}

char *
attest_envelope(const struct sign_key *k, const char *payload, size_t len)
{
	struct sbuf pae = { 0 }, b = { 0 };
	unsigned char sig[64];
	char keyid[17], *p64, *s64;

	attest_pae(&pae, ATTEST_PAYLOAD_TYPE, payload, len);
	sign_detached(k, sig, pae.p, pae.len);
	sbuf_free(&pae);
	sign_key_id(keyid, k);
	p64 = sign_base64(payload, len);
	s64 = sign_base64(sig, sizeof sig);
	sbuf_adds(&b, "{\"payloadType\":\"" ATTEST_PAYLOAD_TYPE
	    "\",\"payload\":\"");
	sbuf_adds(&b, p64);
	sbuf_adds(&b, "\",\"signatures\":[{\"keyid\":\"");
	sbuf_adds(&b, keyid);
	sbuf_adds(&b, "\",\"sig\":\"");
	sbuf_adds(&b, s64);
	sbuf_adds(&b, "\"}]}\n");
	free(p64);
	free(s64);
	return sbuf_steal(&b, NULL);
}
