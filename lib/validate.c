/*
 * What a repository, a ref and a recipe may be: the checks a job request,
 * a project section of kilnd.conf and a recipe found in a repository all
 * go through.  Pure (no I/O but realpath of the state directory), so that
 * kilnd and the tests share them, and fuzzed through
 * tests/fuzz/fuzz_job_request.c and fuzz_names.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "gomod.h"
#include "target.h"
#include "util.h"
#include "validate.h"
#include "xmalloc.h"

#define REPO_MAX 2048
#define REF_MAX 255
#define COMMAND_MAX (64 * 1024)
#define ENV_MAX 64

static bool
has_ctl_or_space(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A path segment ".." anywhere ("/a/../b", "/a/..") is refused. */
static bool
has_dotdot_segment(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2) {
		bool starts = p == path || p[-1] == '/';
		bool ends = p[2] == '\0' || p[2] == '/';
		if (starts && ends)
			return true;
	}
	return false;
}

/*
 * Whether the authority of a URL (what follows "scheme://", up to the
 * path, query or fragment) holds userinfo, and whether that holds a
 * password: "user@host", "user:secret@host".
 */
static void
url_userinfo(const char *rest, bool *user, bool *password)
{
	size_t alen = strcspn(rest, "/?#");
	const char *at = NULL;

	for (const char *p = rest; p < rest + alen; p++)
		if (*p == '@')
			at = p;
	*user = at != NULL;
	*password = at != NULL && memchr(rest, ':', (size_t)(at - rest)) != NULL;
}

/*
 * The port of a URL's authority, when it names one: nothing, or 1 to 5
 * digits from 1 to 65535.  "host:" with nothing after the colon is
 * refused although RFC 3986 allows it: git and curl read it each their
 * own way, and the job would keep a URL that fails only at its fetch.
 * 0, or -1 with why.
 */
static int
url_port(const char *rest, char *why, size_t size)
{
	size_t alen = strcspn(rest, "/?#");
	const char *host = rest, *end = rest + alen, *colon;
	unsigned long port = 0;

	for (const char *p = rest; p < end; p++)
		if (*p == '@')
			host = p + 1;
	/* "ssh://git@/x", "ssh://git@:22/x", "https://[]/x" */
	if (host == end || *host == ':' || (end - host >= 2 &&
	    memcmp(host, "[]", 2) == 0))
		return util_errorf(why, size, "repo: the URL has no host");
	if (*host == '[') {	/* [v6]:port */
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (close == NULL)
			return util_errorf(why, size, "repo: the URL's host "
			    "opens '[' (an IPv6 address) without its ']'");
		colon = close + 1 < end ? close + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return util_errorf(why, size, "repo: the URL has "
			    "something other than ':PORT' after its IPv6 "
			    "address");
	} else
		colon = memchr(host, ':', (size_t)(end - host));
	if (colon == NULL)
		return 0;
	if (colon + 1 == end)
		return util_errorf(why, size, "repo: the URL's port is empty "
		    "(a ':' after the host with no number): give the port "
		    "or drop the ':'");
	for (const char *p = colon + 1; p < end; p++) {
		if (!isdigit((unsigned char)*p) || p - colon > 5)
			return util_errorf(why, size, "repo: the URL's port is "
			    "not a number from 1 to 65535");
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return util_errorf(why, size, "repo: the URL's port is not a "
		    "number from 1 to 65535");
	return 0;
}

/*
 * The syntax of a repository.  A detail never quotes the URL: it may
 * hold a secret (https://user:token@host/), and a detail reaches the
 * client, kilnd's log and tests' output.  The client has its URL.
 */
int
validate_repo(const char *repo, char *why, size_t size)
{
	static const char *const schemes[] = {
		"https://", "http://", "ssh://", "git://", "file://",
	};
	size_t n = strlen(repo);

	if (n == 0)
		return util_errorf(why, size, "repo: must not be empty");
	if (n > REPO_MAX)
		return util_errorf(why, size, "repo: longer than %d bytes", REPO_MAX);
	if (has_ctl_or_space(repo))
		return util_errorf(why, size, "repo: contains a space or control "
		    "character");
	if (repo[0] == '/') {
		if (has_dotdot_segment(repo))
			return util_errorf(why, size, "repo: the path contains a '..' "
			    "segment");
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		size_t sl = strlen(schemes[i]);
		bool user, password;

		if (strncmp(repo, schemes[i], sl) != 0)
			continue;
		const char *rest = repo + sl;
		if (i == 4) {	/* file:// needs an absolute path */
			if (rest[0] != '/' || rest[1] == '\0')
				return util_errorf(why, size, "repo: a file URL needs "
				    "an absolute path (file:///path)");
			if (has_dotdot_segment(rest))
				return util_errorf(why, size, "repo: the path of the "
				    "file URL contains a '..' segment");
			return 0;
		}
		/*
		 * Credentials never travel in the URL: it is stored in the
		 * job, shown by GET /v1/jobs, logged, put in callbacks and in
		 * provenance.  Any userinfo of http(s) and git is refused (a
		 * bare "TOKEN@" is a credential to several forges); ssh's
		 * user name ("ssh://git@host/") is no secret and stays, a
		 * password with it does not.
		 */
		url_userinfo(rest, &user, &password);
		if (password || (user && i != 2))
			return util_errorf(why, size, "repo: the URL carries "
			    "credentials (user%s@ before the host): "
			    "remove them from the URL and give them to the "
			    "project's `credentials` file in kilnd.conf "
			    "(kilnd.conf(5))", password ? ":password" : "");
		if (rest[0] == '\0' || rest[0] == '/' || rest[0] == ':' ||
		    rest[0] == '@')
			return util_errorf(why, size, "repo: the URL has no host");
		return url_port(rest, why, size);
	}
	/* Not echoed: "user:token@host:path" (scp-like) lands here. */
	return util_errorf(why, size, "repo: not an http(s)://, ssh://, git:// or "
	    "file:// URL, nor an absolute path (scp-like user@host:path is "
	    "written ssh://user@host/path)");
}

/*
 * The directory a local repository names ("/a/b", "file:///a/%62"):
 * %XX decoded, "//" and "." segments and a trailing '/' dropped, so that
 * it compares with the state directory.  NULL when it is not local, or
 * when it decodes to something no path should hold (a NUL byte, "..").
 */
static char *
local_repo_path(const char *repo)
{
	const char *p = repo[0] == '/' ? repo :
	    strncmp(repo, "file://", 7) == 0 ? repo + 7 : NULL;
	char *dec = NULL, *out = NULL, *d, *o, *seg, *save = NULL;

	if (p == NULL || p[0] != '/')
		return NULL;
	d = dec = xmalloc(strlen(p) + 1);
	for (; *p != '\0'; p++) {
		if (p[0] == '%' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2])) {
			char hex[3] = { p[1], p[2], '\0' };
			if ((*d++ = (char)strtol(hex, NULL, 16)) == '\0')
				goto bad;
			p += 2;
		} else
			*d++ = *p;
	}
	*d = '\0';
	o = out = xmalloc(strlen(dec) + 2);
	for (seg = strtok_r(dec, "/", &save); seg != NULL;
	    seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0)
			goto bad;
		*o++ = '/';
		memcpy(o, seg, strlen(seg));
		o += strlen(seg);
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	free(dec);
	return out;
bad:
	free(dec);
	free(out);
	return NULL;
}

/* Whether path a is b, or in it, or above it (whole segments). */
static bool
path_overlaps(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), l;

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	l = la < lb ? la : lb;
	if (strncmp(a, b, l) != 0)
		return false;
	if (la == lb)
		return true;
	/* "/" is above everything; else the longer one goes on with '/'. */
	if (l == 1)
		return true;
	return (la > lb ? a[l] : b[l]) == '/';
}

int
validate_local_repo(bool allowed, const char *state_dir, const char *repo,
    char *why, size_t size)
{
	char *path, *real = NULL;
	int rc = 0;

	if (repo[0] != '/' && strncmp(repo, "file://", 7) != 0)
		return 0;
	/*
	 * A local repository is read with kilnd's own permissions: whoever
	 * may submit could have any repository the kilnd user can read
	 * built, and read it in the build's log and artifacts.
	 */
	if (!allowed)
		return util_errorf(why, size, "repo: local repositories (file:// URLs "
		    "and paths) are not built unless allow_local_repos = yes "
		    "in [kilnd] of kilnd.conf");
	/*
	 * Never kilnd's own state (its key, database, caches of every trust
	 * class, mirrors), nor a directory above it.  This is the lexical
	 * check, for a clear 422 without touching the file system on the
	 * loop (a path may sit on a slow mount); the fetch checks what it
	 * opened again, after symlinks (kiln-worker --keep-out).
	 */
	path = local_repo_path(repo);
	if (state_dir != NULL)
		real = realpath(state_dir, NULL);
	if (path == NULL)
		rc = util_errorf(why, size, "repo: the path is not a plain absolute "
		    "path once %%XX escapes are decoded");
	else if (state_dir != NULL && (path_overlaps(path, state_dir) ||
	    (real != NULL && path_overlaps(path, real))))
		rc = util_errorf(why, size, "repo: the path is in, or above, kilnd's "
		    "state directory (state_dir), which is never built, even "
		    "with allow_local_repos");
	free(real);
	free(path);
	return rc;
}

static bool
is_hex40(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return i == 40;
}

int
validate_ref(const char *ref, char *why, size_t size)
{
	char norm[REF_MAX + 1];

	if (*ref == '\0')
		return util_errorf(why, size, "ref: must not be empty");
	if (strlen(ref) > REF_MAX)
		return util_errorf(why, size, "ref: longer than %d bytes", REF_MAX);
	if (is_hex40(ref))
		return 0;
	/* Rules libgit2's normalizer lets through but git refuses. */
	if (strcmp(ref, "@") == 0 || has_ctl_or_space(ref))
		return util_errorf(why, size, "ref: '%.255s' is not a valid git ref "
		    "name (branch, tag, or 40-hex commit)", ref);
	/*
	 * git's own rules (git-check-ref-format), as libgit2 applies them to
	 * a branch or tag name, short ("main") or full ("refs/tags/v1").
	 * Anything the normalizer would rewrite is refused, not rewritten.
	 */
	if (git_reference_normalize_name(norm, sizeof norm, ref,
	    GIT_REFERENCE_FORMAT_ALLOW_ONELEVEL |
	    GIT_REFERENCE_FORMAT_REFSPEC_SHORTHAND) != 0 ||
	    strcmp(norm, ref) != 0 || ref[0] == '-')
		return util_errorf(why, size, "ref: '%.255s' is not a valid git ref "
		    "name (branch, tag, or 40-hex commit)", ref);
	return 0;
}

/* Object keys are C strings to us: one holding a NUL is refused. */
bool
validate_keys_without_nul(json_t *obj, const char *where, char *why, size_t size)
{
	const char *k;
	size_t klen;
	json_t *v;

	json_object_keylen_foreach(obj, k, klen, v) {
		(void)v;
		if (strlen(k) != klen) {
			util_errorf(why, size, "%sfield name '%.64s...' contains a NUL "
			    "byte", where, k);
			return true;
		}
	}
	return false;
}

static bool
valid_env_name(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static int
check_env(json_t *env, const char *where, char *why, size_t size)
{
	const char *k;
	json_t *v;

	if (!json_is_object(env))
		return util_errorf(why, size, "%s.env: must be an object of strings",
		    where);
	if (json_object_size(env) > ENV_MAX)
		return util_errorf(why, size, "%s.env: at most %d variables", where,
		    ENV_MAX);
	if (validate_keys_without_nul(env, "recipe.env: ", why, size))
		return -1;
	json_object_foreach(env, k, v) {
		if (!valid_env_name(k) || strlen(k) > 128)
			return util_errorf(why, size, "%s.env: '%.128s' is not a "
			    "variable name", where, k);
		/* The farm owns its own variables (kilnd(8)). */
		if (strncmp(k, "KILN_", 5) == 0)
			return util_errorf(why, size, "%s.env: %s is set by kiln and "
			    "cannot be overridden", where, k);
		if (!json_is_string(v) || strlen(json_string_value(v)) > 4096 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return util_errorf(why, size, "%s.env.%s: must be a string of "
			    "at most 4096 bytes without NUL", where, k);
	}
	return 0;
}

static bool
safe_file_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-+", *s))
			return false;
	return true;
}

/* A non-empty string without NUL, at most max bytes. */
int
validate_string(json_t *v, const char *field, size_t max, char *why,
    size_t size)
{
	if (!json_is_string(v))
		return util_errorf(why, size, "%s: must be a string", field);
	if (json_string_length(v) == 0)
		return util_errorf(why, size, "%s: must not be empty", field);
	if (json_string_length(v) > max)
		return util_errorf(why, size, "%s: longer than %zu bytes", field, max);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return util_errorf(why, size, "%s: contains a NUL byte", field);
	return 0;
}

/* Build tags: words of letters, digits, '_' and '.'. */
static int
check_tags(json_t *v, const char *field, char *why, size_t size)
{
	size_t i;
	json_t *t;

	if (!json_is_array(v) || json_array_size(v) > 64)
		return util_errorf(why, size, "%s: must be an array of at most 64 build "
		    "tags", field);
	json_array_foreach(v, i, t) {
		const char *s = json_is_string(t) ? json_string_value(t) : NULL;
		if (s == NULL || *s == '\0' || strlen(s) > 128 ||
		    strspn(s, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != strlen(s) ||
		    strlen(s) != json_string_length(t))
			return util_errorf(why, size, "%s[%zu]: not a build tag", field, i);
	}
	return 0;
}

/* An array of at most `max` strings without NUL, each at most 4096. */
static int
check_strings(json_t *v, const char *field, size_t max, char *why,
    size_t size)
{
	char f[160];
	size_t i;
	json_t *s;

	if (!json_is_array(v) || json_array_size(v) > max)
		return util_errorf(why, size, "%s: must be an array of at most %zu "
		    "strings", field, max);
	json_array_foreach(v, i, s) {
		if (snprintf(f, sizeof f, "%.100s[%zu]", field, i) < 0 ||
		    validate_string(s, f, 4096, why, size) != 0)
			return -1;
	}
	return 0;
}

static int check_go_builds(json_t *v, char *why, size_t size);

/*
 * A command recipe's declared inputs, what its SBOMs list as what the
 * files were made from: [{"name", "version"?, "purl"?, "license"?}],
 * at most 256.  A license is an SPDX expression's characters.
 */
static int
check_inputs(json_t *v, char *why, size_t size)
{
	static const char *const keys[] = { "name", "version", "purl",
	    "license" };
	const char *k;
	json_t *e, *f;
	size_t i;
	char field[64];

	if (!json_is_array(v) || json_array_size(v) > 256)
		return util_errorf(why, size, "recipe.inputs: must be an array of "
		    "at most 256 objects");
	json_array_foreach(v, i, e) {
		if (!json_is_object(e) || json_object_get(e, "name") == NULL)
			return util_errorf(why, size, "recipe.inputs[%zu]: must be "
			    "an object with a name", i);
		json_object_foreach(e, k, f) {
			size_t n;

			for (n = 0; n < 4 && strcmp(keys[n], k) != 0; n++)
				;
			if (n == 4)
				return util_errorf(why, size, "recipe.inputs[%zu]: "
				    "unknown field '%.32s' (name, version, purl, "
				    "license)", i, k);
			snprintf(field, sizeof field, "recipe.inputs[%zu].%s", i,
			    k);
			if (validate_string(f, field, 512, why, size) != 0)
				return -1;
		}
		f = json_object_get(e, "license");
		if (f != NULL && strspn(json_string_value(f), "abcdefghijklmnop"
		    "qrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-() :") !=
		    json_string_length(f))
			return util_errorf(why, size, "recipe.inputs[%zu].license: "
			    "an SPDX license expression (MIT, Apache-2.0 OR "
			    "MIT...)", i);
		f = json_object_get(e, "purl");
		if (f != NULL && strncmp(json_string_value(f), "pkg:", 4) != 0)
			return util_errorf(why, size, "recipe.inputs[%zu].purl: must "
			    "start with pkg:", i);
	}
	return 0;
}

/*
 * One field of a go recipe, or of one of its "builds" (top = false).
 * 1: valid; 0: not a go field; -1: invalid (why says so).  ldflags,
 * flags, env values and name may hold GoReleaser templates, expanded
 * per target when the build is planned.
 */
static int
check_go_field(json_t *obj, const char *k, json_t *v, const char *where,
    bool top, char *why, size_t size)
{
	char field[160];

	(void)obj;
	snprintf(field, sizeof field, "%s.%s", where, k);
	if (strcmp(k, "package") == 0 || strcmp(k, "ldflags") == 0 ||
	    strcmp(k, "dir") == 0 || strcmp(k, "id") == 0)
		return validate_string(v, field, 4096, why, size) ? -1 : 1;
	if (strcmp(k, "env") == 0 && !top)
		return check_env(v, where, why, size) ? -1 : 1;
	if (strcmp(k, "name") == 0) {
		const char *s = json_string_value(v);
		if (s == NULL || strlen(s) != json_string_length(v) ||
		    (strstr(s, "{{") == NULL && !safe_file_name(s)) ||
		    strlen(s) > 512)
			return util_errorf(why, size, "%s: must be a file name of "
			    "letters, digits, '.', '_', '-', '+' (at most 128, "
			    "not starting with '.' or '-'), or a template", field);
		return 1;
	}
	if (strcmp(k, "tags") == 0)
		return check_tags(v, field, why, size) ? -1 : 1;
	if (strcmp(k, "flags") == 0)
		return check_strings(v, field, 64, why, size) ? -1 : 1;
	if (strcmp(k, "cgo") == 0) {
		if (!json_is_boolean(v))
			return util_errorf(why, size, "%s: must be true or false", field);
		return 1;
	}
	if (top && strcmp(k, "go") == 0) {
		const char *s = json_string_value(v);
		if (s == NULL || !gomod_version_valid(s))
			return util_errorf(why, size, "%s: must be a Go version such as "
			    "\"1.22\" or \"1.22.12\"", field);
		return 1;
	}
	if (top && strcmp(k, "project_name") == 0) {
		const char *s = json_string_value(v);
		if (s == NULL || !safe_file_name(s))
			return util_errorf(why, size, "%s: must be a name of letters, "
			    "digits, '.', '_', '-', '+'", field);
		return 1;
	}
	if (top && strcmp(k, "builds") == 0)
		return check_go_builds(v, why, size) ? -1 : 1;
	if (!top && strcmp(k, "targets") == 0) {
		size_t i;
		json_t *t;
		struct target tt;
		char terr[128];
		if (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > TARGETS_MAX)
			return util_errorf(why, size, "%s: must be an array of 1 to %d "
			    "targets", field, TARGETS_MAX);
		json_array_foreach(v, i, t)
			if (!json_is_string(t) || target_parse(&tt,
			    json_string_value(t), terr, sizeof terr) != 0)
				return util_errorf(why, size, "%s[%zu]: not a target",
				    field, i);
		return 1;
	}
	return 0;
}

/* "builds": several binaries per target, each with its own matrix. */
static int
check_go_builds(json_t *v, char *why, size_t size)
{
	char where[48];
	const char *k;
	json_t *b, *f;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > 32)
		return util_errorf(why, size, "recipe.builds: must be an array of 1 to "
		    "32 builds");
	json_array_foreach(v, i, b) {
		snprintf(where, sizeof where, "recipe.builds[%zu]", i);
		if (!json_is_object(b))
			return util_errorf(why, size, "%s: must be an object", where);
		if (validate_keys_without_nul(b, where, why, size))
			return -1;
		json_object_foreach(b, k, f) {
			int rc = check_go_field(b, k, f, where, false, why, size);
			if (rc < 0)
				return -1;
			if (rc == 0)
				return util_errorf(why, size, "%s: unknown field "
				    "'%.64s'", where, k);
		}
	}
	return 0;
}

int
validate_recipe(json_t *r, char *why, size_t size)
{
	const char *kind, *k;
	json_t *v;

	if (!json_is_object(r))
		return util_errorf(why, size, "recipe: must be an object");
	v = json_object_get(r, "kind");
	if (v == NULL)
		return util_errorf(why, size, "recipe.kind: required (\"go\" or "
		    "\"command\")");
	if (!json_is_string(v))
		return util_errorf(why, size, "recipe.kind: must be a string");
	kind = json_string_value(v);
	if (strlen(kind) != json_string_length(v))
		return util_errorf(why, size, "recipe.kind: contains a NUL byte");
	if (validate_keys_without_nul(r, "recipe: ", why, size))
		return -1;
	if (strcmp(kind, "go") != 0 && strcmp(kind, "command") != 0)
		return util_errorf(why, size, "recipe.kind: '%.64s' is not \"go\" or "
		    "\"command\"", kind);
	json_object_foreach(r, k, v) {
		if (strcmp(k, "kind") == 0)
			continue;
		if (strcmp(k, "env") == 0) {
			if (check_env(v, "recipe", why, size) != 0)
				return -1;
		} else if (strcmp(kind, "command") == 0 &&
		    strcmp(k, "command") == 0) {
			if (validate_string(v, "recipe.command", COMMAND_MAX, why,
			    size) != 0)
				return -1;
		} else if (strcmp(kind, "command") == 0 &&
		    strcmp(k, "inputs") == 0) {
			if (check_inputs(v, why, size) != 0)
				return -1;
		} else if (strcmp(kind, "go") == 0) {
			int rc = check_go_field(r, k, v, "recipe", true, why,
			    size);
			if (rc < 0)
				return -1;
			if (rc == 0)
				return util_errorf(why, size, "recipe: unknown field "
				    "'%.64s' for kind \"go\"", k);
		} else
			return util_errorf(why, size, "recipe: unknown field '%.64s' "
			    "for kind \"%s\"", k, kind);
	}
	if (strcmp(kind, "command") == 0 &&
	    json_object_get(r, "command") == NULL)
		return util_errorf(why, size, "recipe.command: required for kind "
		    "\"command\"");
	return 0;
}

