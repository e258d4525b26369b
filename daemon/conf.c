#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#include "callback-url.h"
#include "conf.h"
#include "conf-int.h"
#include "job.h"
#include "target.h"
#include "util.h"
#include "validate.h"
#include "xmalloc.h"

enum key_type { K_STRING, K_UINT, K_SIZE, K_LEVEL, K_LISTEN, K_BOOL, K_URL,
    K_GOENV, K_DATABASE, K_HOSTNAME };

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	unsigned long long min, max;
};

#define OFF(f) offsetof(struct kiln_config, f)
static const struct key keys[] = {
	{ "listen", K_LISTEN, OFF(listen), 0, 0 },
	{ "state_dir", K_STRING, OFF(state_dir), 0, 0 },
	{ "workers", K_UINT, OFF(workers), 1, 1024 },
	{ "log_level", K_LEVEL, OFF(log_level), 0, 0 },
	{ "http_timeout", K_UINT, OFF(http_timeout), 1, 86400 },
	{ "header_timeout", K_UINT, OFF(header_timeout), 1, 3600 },
	{ "max_connections", K_UINT, OFF(max_connections), 1, 65536 },
	{ "max_body", K_SIZE, OFF(max_body), 1024, 1024ULL * 1024 * 1024 },
	{ "max_queued", K_UINT, OFF(max_queued), 1, 100000000 },
	{ "max_priority", K_UINT, OFF(max_priority), 0, JOB_PRIORITY_MAX },
	{ "shutdown_timeout", K_UINT, OFF(shutdown_timeout), 0, 3600 },
	{ "max_attempts", K_UINT, OFF(max_attempts), 1, 100 },
	{ "target_lease", K_UINT, OFF(target_lease), 4, 86400 },
	{ "paused", K_BOOL, OFF(paused), 0, 0 },
	{ "worker_path", K_STRING, OFF(worker_path), 0, 0 },
	{ "build_timeout", K_UINT, OFF(build_timeout), 1, 7 * 86400 },
	{ "fetch_timeout", K_UINT, OFF(fetch_timeout), 1, 86400 },
	{ "max_log_size", K_SIZE, OFF(max_log_size), 4096, 1ULL << 30 },
	{ "build_memory", K_SIZE, OFF(build_memory), 64ULL << 20, 1ULL << 40 },
	{ "build_pids", K_UINT, OFF(build_pids), 16, 1000000 },
	{ "build_uid", K_UINT, OFF(build_uid), 1, 4294967294U },
	{ "allow_same_uid_builds", K_BOOL, OFF(allow_same_uid_builds), 0, 0 },
	{ "build_file_size", K_SIZE, OFF(build_file_size), 1ULL << 20, 1ULL << 40 },
	{ "base_url", K_URL, OFF(base_url), 0, 0 },
	{ "database", K_DATABASE, OFF(database), 0, 0 },
	{ "host_name", K_HOSTNAME, OFF(host_name), 0, 0 },
	{ "proxy_downloads", K_BOOL, OFF(proxy_downloads), 0, 0 },
	{ "max_artifacts", K_UINT, OFF(max_artifacts), 1, 100000 },
	{ "max_artifact_size", K_SIZE, OFF(max_artifact_size), 1, 1ULL << 40 },
	{ "max_job_output_size", K_SIZE, OFF(max_job_output_size), 1, 1ULL << 50 },
	{ "keep_jobs", K_UINT, OFF(keep_jobs), 0, 100000000 },
	{ "keep_days", K_UINT, OFF(keep_days), 0, 36500 },
	{ "store_max_size", K_SIZE, OFF(store_max_size), 0, 1ULL << 50 },
	{ "sweep_interval", K_UINT, OFF(sweep_interval), 1, 7 * 86400 },
	{ "open_submissions", K_BOOL, OFF(open_submissions), 0, 0 },
	{ "allow_local_repos", K_BOOL, OFF(allow_local_repos), 0, 0 },
	{ "public_read", K_BOOL, OFF(public_read), 0, 0 },
	{ "tls_cert", K_STRING, OFF(tls_cert), 0, 0 },
	{ "tls_key", K_STRING, OFF(tls_key), 0, 0 },
	{ "max_connections_per_ip", K_UINT, OFF(max_connections_per_ip), 0, 65536 },
	{ "max_hook_secrets", K_UINT, OFF(max_hook_secrets), 0, 1000000 },
	{ "notify_secret", K_STRING, OFF(notify_secret), 0, 0 },
	{ "notify_timeout", K_UINT, OFF(notify_timeout), 1, 86400 },
	{ "notify_deadline", K_UINT, OFF(notify_deadline), 1, 600 },
	{ "notify_slots", K_UINT, OFF(notify_slots), 1, 64 },
	{ "allow_private_callbacks", K_BOOL, OFF(allow_private_callbacks), 0, 0 },
	{ "drain_timeout", K_UINT, OFF(drain_timeout), 0, 86400 },
	{ "access_log", K_BOOL, OFF(access_log), 0, 0 },
	{ "goproxy", K_GOENV, OFF(goproxy), 0, 0 },
	{ "gosumdb", K_GOENV, OFF(gosumdb), 0, 0 },
};

/*
 * The C toolchains of Debian's cross compilers; [toolchains]
 * in kilnd.conf adds or replaces entries.  "host" is the build host's gcc.
 */
static const struct conf_toolchain default_toolchains[] = {
	{ "linux/amd64", CONF_HOST_TRIPLE },
	{ "linux/arm64", "aarch64-linux-gnu" },
	{ "linux/arm/v7", "arm-linux-gnueabihf" },
	{ "linux/riscv64", "riscv64-linux-gnu" },
	{ "windows/amd64", "x86_64-w64-mingw32" },
};

/* The system's host name up to its first dot, or "localhost". */
static char *
default_host_name(void)
{
	char buf[256];

	if (gethostname(buf, sizeof buf) != 0 || buf[0] == '\0')
		return xstrdup("localhost");
	buf[sizeof buf - 1] = '\0';
	buf[strcspn(buf, ".")] = '\0';
	if (conf_host_name_ok(buf) != 0)
		return xstrdup("localhost");
	return xstrdup(buf);
}

int
conf_host_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONF_HOST_NAME_MAX || s[0] == '-' || s[0] == '.')
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' &&
		    s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') &&
		    s[i] != '-' && s[i] != '.' && s[i] != '_')
			return -1;
	return 0;
}

void
conf_defaults(struct kiln_config *c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof *c);
	c->listen = xstrdup(CONF_DEFAULT_LISTEN);
	c->state_dir = xstrdup(CONF_DEFAULT_STATE_DIR);
	c->workers = n > 0 ? (unsigned)n : 1;
	c->log_level = LOG_LVL_INFO;
	c->http_timeout = 60;
	c->header_timeout = 10;
	c->max_connections = 1000;
	c->max_body = 1024 * 1024;
	c->max_queued = 10000;
	c->max_priority = 0;		/* tokens below admin: normal or lower */
	c->shutdown_timeout = 10;
	c->max_attempts = 3;
	c->target_lease = 120;
	c->worker_path = NULL;
	c->build_timeout = 30 * 60;
	c->fetch_timeout = 10 * 60;
	c->max_log_size = 16 * 1024 * 1024;
	c->build_memory = 4ULL * 1024 * 1024 * 1024;
	c->build_pids = 1024;
	c->build_uid = 65534;
	c->build_file_size = 2ULL * 1024 * 1024 * 1024;
	c->base_url = NULL;		/* http://LISTEN */
	c->database = NULL;		/* SQLite in state_dir */
	c->host_name = default_host_name();
	c->proxy_downloads = false;	/* 307 to the owner */
	c->max_artifacts = 256;
	c->max_artifact_size = 2ULL * 1024 * 1024 * 1024;
	/*
	 * Two targets at max_artifact_size, or a release of 20 targets with
	 * 100 MB binaries and their archives; without it a job of
	 * JOB_MAX_TARGETS targets could make the store write 128 GiB.
	 */
	c->max_job_output_size = 4ULL * 1024 * 1024 * 1024;
	c->keep_jobs = 0;
	c->keep_days = 0;
	c->store_max_size = CONF_STORE_MAX_AUTO;	/* half the disk */
	c->sweep_interval = 3600;
	c->max_connections_per_ip = 128;
	c->max_hook_secrets = 64;
	c->notify_timeout = 600;
	c->notify_deadline = 30;
	c->notify_slots = 4;
	c->drain_timeout = 60;
	c->goproxy = xstrdup("https://proxy.golang.org,direct");
	c->gosumdb = xstrdup("sum.golang.org");
	memcpy(c->toolchains, default_toolchains, sizeof default_toolchains);
	c->ntoolchains = ARRAY_SIZE(default_toolchains);
}

/*
 * Without store_max_size, retention keeps artifacts up to half the
 * store's file system: the other half holds mirrors, caches, work trees,
 * logs and the database, and the store grows past its cap between two
 * sweeps.  0 (a file system that reports no size) sets no cap.
 */
uint64_t
conf_store_max_size(const struct kiln_config *c, uint64_t fs_size)
{
	if (c->store_max_size != CONF_STORE_MAX_AUTO)
		return c->store_max_size;
	return fs_size / 2;
}

const char *
conf_toolchain(const struct kiln_config *c, const char *target)
{
	const char *v;

	for (size_t i = 0; i < c->ntoolchains; i++)
		if (strcmp(c->toolchains[i].target, target) == 0)
			return c->toolchains[i].triple;
	/* amd64 v2..v4 use the plain amd64 compiler (the level is a -march
	 * matter); arm variants differ in ABI and need their own entry. */
	v = strstr(target, "/amd64/");
	if (v != NULL) {
		char base[TARGET_NAME_MAX];
		snprintf(base, sizeof base, "%.*s/amd64", (int)(v - target),
		    target);
		return conf_toolchain(c, base);
	}
	return NULL;
}

/* [toolchains] TARGET = TRIPLE */
static int
set_toolchain(struct kiln_config *c, const char *key, const char *value,
    char *err, size_t errsize)
{
	struct target t;
	char why[160];
	size_t i;

	if (target_parse(&t, key, why, sizeof why) != 0) {
		snprintf(err, errsize, "toolchains: %s", why);
		return -1;
	}
	if (*value == '\0' || strlen(value) >= sizeof c->toolchains[0].triple ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_.-") !=
	    strlen(value)) {
		snprintf(err, errsize, "toolchains: %s: '%s' is not a GNU "
		    "triple (like aarch64-linux-gnu) or \"host\"", key, value);
		return -1;
	}
	for (i = 0; i < c->ntoolchains; i++)
		if (strcmp(c->toolchains[i].target, t.name) == 0)
			break;
	if (i == CONF_MAX_TOOLCHAINS) {
		snprintf(err, errsize, "toolchains: more than %d entries",
		    CONF_MAX_TOOLCHAINS);
		return -1;
	}
	snprintf(c->toolchains[i].target, sizeof c->toolchains[i].target,
	    "%s", t.name);
	snprintf(c->toolchains[i].triple, sizeof c->toolchains[i].triple,
	    "%s", value);
	if (i == c->ntoolchains)
		c->ntoolchains++;
	return 0;
}

/*
 * GOPROXY, GOSUMDB and GOPRIVATE values: lists of URLs, host names and
 * patterns.  They become one environment variable of the deps step, so
 * no spaces, quotes or control characters.
 */
int
conf_go_env_check(const char *name, const char *value, char *err,
    size_t errsize)
{
	if (*value == '\0') {
		snprintf(err, errsize, "%s: empty value", name);
		return -1;
	}
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' ||
		    *p == '\'' || *p == '\\') {
			snprintf(err, errsize, "%s: no spaces, quotes or control "
			    "characters (a comma-separated list)", name);
			return -1;
		}
	return 0;
}

/* Split a list on spaces and commas; calls fn for each item. */
int
conf_each_word(const char *value,
    int (*fn)(void *, const char *, char *, size_t), void *arg, char *err,
    size_t errsize)
{
	char *copy = xstrdup(value), *save = NULL, *w;
	int rc = 0;

	for (w = strtok_r(copy, " \t,", &save); w != NULL && rc == 0;
	    w = strtok_r(NULL, " \t,", &save))
		rc = fn(arg, w, err, errsize);
	free(copy);
	return rc;
}

/*
 * [toolchains] go = PATH...: more go binaries for toolchains.c.  Builds
 * see only /usr (the sandbox binds nothing else of the host), so a binary
 * anywhere else could never run in one: refused here rather than failing
 * every build that would choose it.
 */
static int
add_go_toolchain(void *arg, const char *w, char *err, size_t errsize)
{
	struct kiln_config *c = arg;
	size_t n = strlen(w);
	bool ok = strncmp(w, "/usr/", 5) == 0 && n < PATH_MAX &&
	    w[n - 1] != '/' && strstr(w, "//") == NULL &&
	    strstr(w, "/./") == NULL && strstr(w, "/../") == NULL &&
	    strcmp(w + n - 2, "/.") != 0 && strcmp(w + n - 3, "/..") != 0;

	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)w[i] > ' ' && w[i] != 0x7f;
	if (!ok) {
		snprintf(err, errsize, "toolchains: go: '%.200s' is not an "
		    "absolute path under /usr (builds see only /usr)", w);
		return -1;
	}
	for (size_t i = 0; i < c->ngo_toolchains; i++)
		if (strcmp(c->go_toolchains[i], w) == 0) {
			snprintf(err, errsize, "toolchains: go: %.200s is "
			    "listed twice", w);
			return -1;
		}
	if (c->ngo_toolchains == CONF_MAX_GO_TOOLCHAINS) {
		snprintf(err, errsize, "toolchains: go: more than %d binaries",
		    CONF_MAX_GO_TOOLCHAINS);
		return -1;
	}
	c->go_toolchains[c->ngo_toolchains++] = xstrdup(w);
	return 0;
}

/* [tokens] NAME = SCOPE SHA256-HEX */
static int
set_token(struct kiln_config *c, const char *name, const char *value,
    char *err, size_t errsize)
{
	static const char *const scopes[] = { "read", "submit", "admin" };
	struct conf_token *t;
	unsigned char hash[sizeof t->hash];
	char scope[16], hex[80];
	int si = -1;

	if (strlen(name) >= sizeof t->name ||
	    sscanf(value, "%15s %79s", scope, hex) != 2) {
		snprintf(err, errsize, "tokens: %s: expected 'SCOPE HASH' (scope "
		    "read, submit or admin; HASH from kilnd --hash-token)",
		    name);
		return -1;
	}
	for (int i = 0; i < 3; i++)
		if (strcmp(scope, scopes[i]) == 0)
			si = i;
	if (si < 0) {
		snprintf(err, errsize, "tokens: %s: scope '%s' is not read, "
		    "submit or admin", name, scope);
		return -1;
	}
	for (unsigned i = 0; i < c->ntokens; i++)
		if (strcmp(c->tokens[i].name, name) == 0) {
			snprintf(err, errsize, "tokens: '%s' is set twice", name);
			return -1;
		}
	if (strlen(hex) == 64 && sodium_hex2bin(hash, sizeof hash, hex, 64,
	    NULL, NULL, NULL) == 0) {
		/* Jobs belong to the token's name: one token, one name. */
		for (unsigned i = 0; i < c->ntokens; i++)
			if (sodium_memcmp(c->tokens[i].hash, hash,
			    sizeof hash) == 0) {
				snprintf(err, errsize, "tokens: %s has the same "
				    "hash as %s: give each token its own secret",
				    name, c->tokens[i].name);
				return -1;
			}
	}
	c->tokens = xreallocarray(c->tokens, c->ntokens + 1, sizeof *c->tokens);
	t = &c->tokens[c->ntokens];
	memset(t, 0, sizeof *t);
	if (strlen(hex) != 64 || sodium_hex2bin(t->hash, sizeof t->hash, hex,
	    64, NULL, NULL, NULL) != 0) {
		snprintf(err, errsize, "tokens: %s: '%.16s...' is not a SHA-256 "
		    "in hex (64 digits; make it with kilnd --hash-token)", name,
		    hex);
		return -1;
	}
	snprintf(t->name, sizeof t->name, "%s", name);
	t->scope = si + 1;	/* API_SCOPE_READ.. */
	c->ntokens++;
	return 0;
}

void
conf_free(struct kiln_config *c)
{
	free(c->listen);
	free(c->state_dir);
	free(c->worker_path);
	free(c->base_url);
	if (c->database != NULL)
		sodium_memzero(c->database, strlen(c->database));
	free(c->database);
	free(c->host_name);
	c->database = c->host_name = NULL;
	free(c->tls_cert);
	free(c->tls_key);
	if (c->notify_secret != NULL)
		sodium_memzero(c->notify_secret, strlen(c->notify_secret));
	free(c->notify_secret);
	free(c->goproxy);
	free(c->gosumdb);
	c->goproxy = c->gosumdb = NULL;
	c->listen = c->state_dir = c->worker_path = c->base_url = NULL;
	c->tls_cert = c->tls_key = c->notify_secret = NULL;
	if (c->tokens != NULL)
		sodium_memzero(c->tokens, c->ntokens * sizeof *c->tokens);
	free(c->tokens);
	c->tokens = NULL;
	c->ntokens = 0;
	for (size_t i = 0; i < c->nprojects; i++)
		conf_project_free(&c->projects[i]);
	free(c->projects);
	c->projects = NULL;
	c->nprojects = 0;
	for (size_t i = 0; i < c->ngo_toolchains; i++)
		free(c->go_toolchains[i]);
	c->ngo_toolchains = 0;
}

/* Sizes take an optional K, M or G suffix (powers of 1024). */
static int
parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v, mul = 1;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'K' || *end == 'k')
		mul = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		mul = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		mul = 1024 * 1024 * 1024, end++;
	if (*end != '\0' || v > ULLONG_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int
conf_set(struct kiln_config *c, const char *name, const char *value,
    char *err, size_t errsize)
{
	const struct key *k = NULL;
	char *field;
	unsigned long long v;
	int64_t iv;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			k = &keys[i];
	if (k == NULL) {
		snprintf(err, errsize, "unknown key '%s'", name);
		return -1;
	}
	field = (char *)c + k->offset;
	switch (k->type) {
	case K_LISTEN: {
		struct sockaddr_storage ss;
		socklen_t len;
		if (conf_parse_listen(value, &ss, &len, err, errsize) != 0)
			return -1;
	}
		/* FALLTHROUGH */
	case K_URL:
		if (k->type == K_URL && ((strncmp(value, "http://", 7) != 0 &&
		    strncmp(value, "https://", 8) != 0) ||
		    strpbrk(value, " \t\"<>\\") != NULL ||
		    value[strlen(value) - 1] == '/')) {
			snprintf(err, errsize, "%s: '%s' is not an http:// or "
			    "https:// URL without a trailing '/'", name, value);
			return -1;
		}
		/* FALLTHROUGH */
	case K_GOENV:
		if (conf_go_env_check(name, value, err, errsize) != 0)
			return -1;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_DATABASE:
		/* Never quote the value: it may hold a password. */
		if (strncmp(value, "postgresql://", 13) != 0 &&
		    strncmp(value, "postgres://", 11) != 0) {
			snprintf(err, errsize, "%s: not a postgresql:// URL "
			    "(leave it unset for SQLite in state_dir)", name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_HOSTNAME:
		if (conf_host_name_ok(value) != 0) {
			snprintf(err, errsize, "%s: '%.80s' is not 1 to %d "
			    "letters, digits, '-', '.' or '_'", name, value,
			    CONF_HOST_NAME_MAX);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_STRING:
		if (*value == '\0') {
			snprintf(err, errsize, "%s: empty value", name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
		    strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
			*(bool *)field = false;
		else {
			snprintf(err, errsize, "%s: '%s' is not yes or no", name,
			    value);
			return -1;
		}
		return 0;
	case K_LEVEL:
		if (log_level_parse(value, (enum log_level *)field) != 0) {
			snprintf(err, errsize, "%s: '%s' is not one of error, "
			    "warn, info, debug", name, value);
			return -1;
		}
		return 0;
	case K_UINT:
		if (util_parse_int64(value, (int64_t)k->min, (int64_t)k->max,
		    &iv) != 0) {
			snprintf(err, errsize, "%s: '%s' is not a whole number "
			    "from %llu to %llu", name, value, k->min, k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)iv;
		return 0;
	case K_SIZE:
		if (parse_size(value, &v) != 0 || v < k->min || v > k->max) {
			snprintf(err, errsize, "%s: '%s' is not a size from %llu "
			    "to %llu bytes (K, M, G suffixes allowed)", name,
			    value, k->min, k->max);
			return -1;
		}
		*(size_t *)field = (size_t)v;
		return 0;
	}
	return -1;
}

struct load_ctx {
	struct kiln_config *c;
	FILE *f;
	int line;		/* of the line inih is handling */
	int err_line;		/* of the first error, 0 = none */
	char msg[512];
	char seen[ARRAY_SIZE(keys)];
};

static void
load_error(struct load_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
load_error(struct load_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->err_line != 0)
		return;		/* the first error is the one reported */
	ctx->err_line = ctx->line;
	va_start(ap, fmt);
	vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
	va_end(ap);
}

/* A [project NAME] header: a new project, named once per file. */
static void
project_header(struct load_ctx *ctx, const char *name)
{
	struct kiln_config *c = ctx->c;
	struct conf_project *p;

	if (*name == '\0' || strlen(name) > 64 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != strlen(name)) {
		load_error(ctx, "[project %.64s]: a project name is 1 to 64 "
		    "letters, digits, '.', '_' or '-'", name);
		return;
	}
	for (size_t i = 0; i < c->nprojects; i++)
		if (strcmp(c->projects[i].name, name) == 0) {
			load_error(ctx, "[project %s] is defined twice", name);
			return;
		}
	c->projects = xreallocarray(c->projects, c->nprojects + 1,
	    sizeof *c->projects);
	p = &c->projects[c->nprojects++];
	memset(p, 0, sizeof *p);
	p->name = xstrdup(name);
	p->line = ctx->line;
}

/*
 * A callback receiver learns the key its callbacks are signed with, so
 * that key must never be one that authenticates webhooks: whoever holds
 * it could then start builds.  And a project's own notify_url obeys the
 * address rules of a submitted one (callback-url.h).
 */
static int
check_project_notify(struct load_ctx *ctx, const struct conf_project *p)
{
	const struct kiln_config *c = ctx->c;
	char why[400];

	for (size_t k = 0; k < p->nsecrets; k++) {
		if (p->notify_secret != NULL &&
		    strcmp(p->notify_secret, p->secrets[k]) == 0) {
			load_error(ctx, "[project %s] notify_secret equals one "
			    "of its webhook secrets; callbacks must be signed "
			    "with a key of their own", p->name);
			return -1;
		}
		if (c->notify_secret != NULL &&
		    strcmp(c->notify_secret, p->secrets[k]) == 0) {
			load_error(ctx, "[kilnd] notify_secret equals a webhook "
			    "secret of [project %s]; callbacks must be signed "
			    "with a key of their own", p->name);
			return -1;
		}
	}
	if (p->notify_url != NULL && callback_url_check(p->notify_url,
	    c->allow_private_callbacks, why, sizeof why) != 0) {
		load_error(ctx, "[project %s] notify_url: %s", p->name, why);
		return -1;
	}
	return 0;
}

/* After the file: every project complete, no repo twice. */
static void
check_projects(struct load_ctx *ctx)
{
	struct kiln_config *c = ctx->c;
	char why[400];

	for (size_t i = 0; i < c->nprojects; i++) {
		struct conf_project *p = &c->projects[i];

		ctx->line = p->line;
		if (p->repo == NULL) {
			load_error(ctx, "[project %s] has no repo", p->name);
			return;
		}
		/* The same rule as for submissions (allow_local_repos); the
		 * state_dir here is the file's, -d is checked at fetch. */
		if (validate_local_repo(c->allow_local_repos, c->state_dir,
		    p->repo, why, sizeof why) != 0) {
			load_error(ctx, "[project %s] %s", p->name, why);
			return;
		}
		conf_project_default_refs(p);
		/* One mirror each: the same repository spelled two ways
		 * is one repo too. */
		for (size_t j = 0; j < i; j++)
			if (conf_same_repo(c->projects[j].repo, p->repo)) {
				load_error(ctx, "[project %s] has the repo of "
				    "[project %s]", p->name,
				    c->projects[j].name);
				return;
			}
		if (check_project_notify(ctx, p) != 0)
			return;
	}
}

/*
 * inih reads through this, so we know the line number of everything it
 * hands the handler, and see what it never reports: section headers with
 * no keys under them, and lines longer than its buffer (which it would
 * split into two "lines").
 */
static char *
read_line(char *buf, int size, void *data)
{
	struct load_ctx *ctx = data;
	char *p;
	size_t n;

	if (fgets(buf, size, ctx->f) == NULL)
		return NULL;
	ctx->line++;
	n = strlen(buf);
	if (n == (size_t)size - 1 && buf[n - 1] != '\n' && !feof(ctx->f)) {
		int ch;
		load_error(ctx, "line longer than %d bytes", size - 2);
		while ((ch = fgetc(ctx->f)) != EOF && ch != '\n')
			;
	}
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '[') {
		char *end = strchr(p, ']');
		size_t sn = end != NULL ? (size_t)(end - p - 1) : 0;
		if (end != NULL && !(sn == 5 && strncmp(p + 1, "kilnd", 5) == 0) &&
		    !(sn == 10 && strncmp(p + 1, "toolchains", 10) == 0) &&
		    !(sn == 6 && strncmp(p + 1, "tokens", 6) == 0) &&
		    !(sn > 8 && strncmp(p + 1, "project ", 8) == 0)) {
			*end = '\0';
			load_error(ctx, "unknown section [%.64s]", p + 1);
			*end = ']';
		} else if (end != NULL && sn > 8 &&
		    strncmp(p + 1, "project ", 8) == 0) {
			*end = '\0';
			project_header(ctx, p + 9);
			*end = ']';
		}
	}
	return buf;
}

static int
ini_cb(void *data, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = data;
	char why[512];

	if (strncmp(section, "project ", 8) == 0) {
		struct conf_project *p = NULL;
		for (size_t i = 0; i < ctx->c->nprojects; i++)
			if (strcmp(ctx->c->projects[i].name, section + 8) == 0)
				p = &ctx->c->projects[i];
		if (p == NULL || conf_set_project(p, name, value, why,
		    sizeof why) != 0) {
			load_error(ctx, "[%s]: %s", section, p ? why :
			    "not declared");
			return 0;
		}
		return 1;
	}
	if (strcmp(section, "tokens") == 0) {
		if (set_token(ctx->c, name, value, why, sizeof why) != 0) {
			load_error(ctx, "%s", why);
			return 0;
		}
		return 1;
	}
	if (strcmp(section, "toolchains") == 0) {
		if ((strcmp(name, "go") == 0 ? conf_each_word(value,
		    add_go_toolchain, ctx->c, why, sizeof why) :
		    set_toolchain(ctx->c, name, value, why, sizeof why)) != 0) {
			load_error(ctx, "%s", why);
			return 0;
		}
		return 1;
	}
	if (strcmp(section, "kilnd") != 0) {
		if (*section == '\0')
			load_error(ctx, "'%s' is outside a section: put it "
			    "under [kilnd]", name);
		else
			load_error(ctx, "unknown section [%s]", section);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (strcmp(keys[i].name, name) == 0 && ctx->seen[i]++) {
			load_error(ctx, "'%s' is set twice", name);
			return 0;
		}
	}
	if (conf_set(ctx->c, name, value, why, sizeof why) != 0) {
		load_error(ctx, "%s", why);
		return 0;
	}
	return 1;
}

int
conf_load_stream(struct kiln_config *c, FILE *f, const char *name, char *err,
    size_t errsize)
{
	struct load_ctx ctx;
	int line;

	memset(&ctx, 0, sizeof ctx);
	ctx.c = c;
	ctx.f = f;
	line = ini_parse_stream(read_line, &ctx, ini_cb, &ctx);
	if (line == 0 && ctx.err_line == 0)
		check_projects(&ctx);
	if (line == 0 && ctx.err_line == 0)
		return 0;
	if (ctx.err_line != 0 && (line <= 0 || ctx.err_line <= line))
		snprintf(err, errsize, "%s:%d: %s", name, ctx.err_line, ctx.msg);
	else if (line > 0)
		snprintf(err, errsize, "%s:%d: syntax error (expected "
		    "[section], key = value, or a ; or # comment)", name, line);
	else
		snprintf(err, errsize, "%s: cannot parse (out of memory)", name);
	return -1;
}

int
conf_load(struct kiln_config *c, const char *path, char *err,
    size_t errsize)
{
	FILE *f;
	int rc;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? -2 : -1;
	}
	rc = conf_load_stream(c, f, path, err, errsize);
	fclose(f);
	return rc;
}

int
conf_parse_listen(const char *s, struct sockaddr_storage *out,
    socklen_t *outlen, char *err, size_t errsize)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port;
	size_t hlen;
	int64_t p;

	memset(out, 0, sizeof *out);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof host)
			goto bad;
		memcpy(host, s + 1, hlen);
		port = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			goto bad;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof host || memchr(s, ':', hlen) != NULL)
			goto bad;
		memcpy(host, s, hlen);
		port = colon + 1;
	}
	host[hlen] = '\0';
	if (util_parse_int64(port, 0, 65535, &p) != 0)
		goto bad;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		*outlen = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		*outlen = sizeof *in6;
		return 0;
	}
bad:
	snprintf(err, errsize, "listen: '%s' is not ADDRESS:PORT with a numeric "
	    "IPv4 address, [IPv6] address or localhost, and a port 0-65535",
	    s);
	return -1;
}

/*
 * Security: without tokens there is no authentication, so the API must not
 * be reachable from other hosts.  kilnd refuses to start rather than warn,
 * and --check-config runs this same function so that it never passes a
 * file the daemon would refuse.
 */
int
conf_check_listen(const struct kiln_config *c, struct sockaddr_storage *out,
    socklen_t *outlen, char *err, size_t errsize)
{
	if (conf_parse_listen(c->listen, out, outlen, err, errsize) != 0)
		return -1;
	if (c->ntokens == 0 && !conf_is_loopback((struct sockaddr *)out)) {
		snprintf(err, errsize, "refusing to listen on %s: no API tokens "
		    "are configured, so kilnd serves only on a loopback address "
		    "(127.0.0.1, [::1]); use -l 127.0.0.1:PORT or add a [tokens] "
		    "section", c->listen);
		return -1;
	}
	return 0;
}

bool
conf_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}
