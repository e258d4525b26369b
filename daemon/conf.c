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

#include "conf.h"
#include "target.h"
#include "util.h"
#include "xmalloc.h"

enum key_type { K_STRING, K_UINT, K_SIZE, K_LEVEL, K_LISTEN, K_BOOL, K_URL };

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
	{ "max_connections", K_UINT, OFF(max_connections), 1, 65536 },
	{ "max_body", K_SIZE, OFF(max_body), 1024, 1024ULL * 1024 * 1024 },
	{ "max_queued", K_UINT, OFF(max_queued), 1, 100000000 },
	{ "shutdown_timeout", K_UINT, OFF(shutdown_timeout), 0, 3600 },
	{ "max_attempts", K_UINT, OFF(max_attempts), 1, 100 },
	{ "paused", K_BOOL, OFF(paused), 0, 0 },
	{ "worker_path", K_STRING, OFF(worker_path), 0, 0 },
	{ "build_timeout", K_UINT, OFF(build_timeout), 1, 7 * 86400 },
	{ "fetch_timeout", K_UINT, OFF(fetch_timeout), 1, 86400 },
	{ "max_log_size", K_SIZE, OFF(max_log_size), 4096, 1ULL << 30 },
	{ "build_memory", K_SIZE, OFF(build_memory), 64ULL << 20, 1ULL << 40 },
	{ "build_pids", K_UINT, OFF(build_pids), 16, 1000000 },
	{ "build_uid", K_UINT, OFF(build_uid), 1, 4294967294U },
	{ "base_url", K_URL, OFF(base_url), 0, 0 },
	{ "max_artifacts", K_UINT, OFF(max_artifacts), 1, 100000 },
	{ "max_artifact_size", K_SIZE, OFF(max_artifact_size), 1, 1ULL << 40 },
	{ "keep_jobs", K_UINT, OFF(keep_jobs), 0, 100000000 },
	{ "keep_days", K_UINT, OFF(keep_days), 0, 36500 },
	{ "store_max_size", K_SIZE, OFF(store_max_size), 0, 1ULL << 50 },
	{ "sweep_interval", K_UINT, OFF(sweep_interval), 1, 7 * 86400 },
};

/*
 * The C toolchains of Debian's cross compilers (DESIGN.md); [toolchains]
 * in kilnd.conf adds or replaces entries.  "host" is the build host's gcc.
 */
static const struct conf_toolchain default_toolchains[] = {
	{ "linux/amd64", CONF_HOST_TRIPLE },
	{ "linux/arm64", "aarch64-linux-gnu" },
	{ "linux/arm/v7", "arm-linux-gnueabihf" },
	{ "linux/riscv64", "riscv64-linux-gnu" },
	{ "windows/amd64", "x86_64-w64-mingw32" },
};

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
	c->max_connections = 1000;
	c->max_body = 1024 * 1024;
	c->max_queued = 100000;
	c->shutdown_timeout = 10;
	c->max_attempts = 3;
	c->worker_path = NULL;
	c->build_timeout = 30 * 60;
	c->fetch_timeout = 10 * 60;
	c->max_log_size = 16 * 1024 * 1024;
	c->build_memory = 4ULL * 1024 * 1024 * 1024;
	c->build_pids = 1024;
	c->build_uid = 65534;
	c->base_url = NULL;		/* http://LISTEN */
	c->max_artifacts = 256;
	c->max_artifact_size = 2ULL * 1024 * 1024 * 1024;
	c->keep_jobs = 0;
	c->keep_days = 0;
	c->store_max_size = 0;
	c->sweep_interval = 3600;
	memcpy(c->toolchains, default_toolchains, sizeof default_toolchains);
	c->ntoolchains = ARRAY_SIZE(default_toolchains);
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

void
conf_free(struct kiln_config *c)
{
	free(c->listen);
	free(c->state_dir);
	free(c->worker_path);
	free(c->base_url);
	c->listen = c->state_dir = c->worker_path = c->base_url = NULL;
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
		    !(sn == 10 && strncmp(p + 1, "toolchains", 10) == 0)) {
			*end = '\0';
			load_error(ctx, "unknown section [%.64s]", p + 1);
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

	if (strcmp(section, "toolchains") == 0) {
		if (set_toolchain(ctx->c, name, value, why, sizeof why) != 0) {
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
