/*
 * kilnd: the kiln build farm daemon.  One libuv loop owns everything:
 * HTTP (libmicrohttpd on the loop), the group-commit submitter, signals.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <sodium.h>
#include <uv.h>

#include "callback.h"
#include "cgroup-self.h"
#include "conf.h"
#include "events.h"
#include "db/queue.h"
#include "../http/http.h"
#include "kilnd-env.h"
#include "log.h"
#include "looplag.h"
#include "metrics.h"
#include "notify.h"
#include "sched/sched.h"
#include "sign.h"
#include "submit.h"
#include "store.h"
#include "subid.h"
#include "toolchains.h"
#include "util.h"
#include "xmalloc.h"

struct kilnd {
	uv_loop_t loop;
	struct kiln_config conf;
	struct queue *queue;
	struct submitter *submitter;
	struct { struct sched *s; } sched;
	struct http_server *http;
	char *worker;
	struct api_env env;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t grace;
	uv_timer_t watchdog, status;	/* systemd notify */
	char status_text[256];
	char where[80];			/* ADDR:PORT served */
	int shutting_down;
	int draining;			/* SIGTERM: builds finishing */
	const char *conf_path;		/* -c, or NULL: the default */
	const char *flags[4];		/* -l -d -w --log-level, for reloads */
	int lock_fd;
	int keygen;			/* --keygen: make a key and exit */
	struct sign_key key;
	char *pubkey;			/* kiln.pub's text, served */
	char key_id[17];
	struct store *store;
	struct callbacks *callbacks;
	struct toolchains *toolchains;	/* the Go toolchains found */
	unsigned toolchains_gen;	/* of the newest discovery asked for */
	struct looplag *looplag;	/* kiln_loop_lag_seconds */
	struct events *events;		/* GET /v1/events */
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: kilnd [-c FILE] [-l ADDR:PORT] [-d STATE_DIR] [-w WORKERS]\n"
"             [--log-level LEVEL]\n"
"       kilnd --keygen [-d STATE_DIR]\n"
"       kilnd --hash-token < TOKEN-FILE\n"
"       kilnd --check-config [-c FILE]\n"
"       kilnd --version | --help\n"
"\n"
"  -c, --config FILE      configuration file (default " CONF_DEFAULT_PATH ";\n"
"                         embedded defaults when it does not exist)\n"
"  -l, --listen ADDR:PORT address to serve the API on (default "
	CONF_DEFAULT_LISTEN ")\n"
"  -d, --state-dir DIR    database, mirrors, work trees, logs (default "
	CONF_DEFAULT_STATE_DIR ")\n"
"  -w, --workers N        build slots (default: number of CPUs)\n"
"      --log-level LEVEL  error, warn, info or debug (default info)\n"
"      --keygen           create the farm's signing key in the state\n"
"                         directory (kiln.key, kiln.pub) and exit\n"
"      --hash-token       read an API token on standard input, print the\n"
"                         SHA-256 that [tokens] in kilnd.conf takes, exit\n"
"      --check-config     read the configuration and flags, say whether\n"
"                         they are valid, exit (1 and the error if not)\n"
"      --version          print the version and exit\n"
"  -h, --help             print this help and exit\n"
"\n"
"Flags override the configuration file.  See kilnd(8), kilnd.conf(5).\n");
}

/*
 * KILN_SSE_KEEPALIVE_MS: a test knob, not a setting.  The event streams'
 * keep-alive period (default 15 s), shortened so that a test sees a
 * keep-alive without waiting.  Anything but a number in 100..3600000 is
 * ignored.
 */
static uint64_t
sse_keepalive_ms(void)
{
	const char *v = getenv("KILN_SSE_KEEPALIVE_MS");
	int64_t ms;

	if (v == NULL || util_parse_int64(v, 100, 3600000, &ms) != 0)
		return EVENTS_KEEPALIVE_MS;
	return (uint64_t)ms;
}

static void
on_closed_handle(uv_handle_t *h)
{
	(void)h;
}

static void
close_rest(struct kilnd *k)
{
	uv_close((uv_handle_t *)&k->sighup, on_closed_handle);
	uv_close((uv_handle_t *)&k->watchdog, on_closed_handle);
	uv_close((uv_handle_t *)&k->status, on_closed_handle);
	k->env.looplag = NULL;
	looplag_close(k->looplag);
	k->looplag = NULL;
	/* After the HTTP layer (its streams subscribe) and the builds. */
	k->env.events = NULL;
	events_close(k->events);
	k->events = NULL;
	if (k->callbacks != NULL) {
		callbacks_close(k->callbacks, NULL, NULL);
		k->callbacks = NULL;
	}
	uv_close((uv_handle_t *)&k->sigterm, on_closed_handle);
	uv_close((uv_handle_t *)&k->sigint, on_closed_handle);
	/*
	 * Closing a signal's last handle gives it back its default action:
	 * a second SIGTERM now (kill twice, systemd and a user at once)
	 * would kill kilnd before its writer commits and the database is
	 * closed, without "stopped cleanly".  It is stopping already.
	 */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	uv_close((uv_handle_t *)&k->grace, on_closed_handle);
	/* Last: what the parts above wrote on their way out is committed
	 * before the writer's thread ends and the loop can stop. */
	queue_stop(k->queue, NULL, NULL);
}

static void
on_sched_stopped(void *data)
{
	struct kilnd *k = data;

	k->sched.s = NULL;
	log_info("builds: stopped");
	close_rest(k);
}

static void
on_submitter_closed(void *data)
{
	struct kilnd *k = data;

	k->submitter = NULL;
	/* Builds still running are killed and go back to the queue. */
	sched_shutdown(k->sched.s, on_sched_stopped, k);
}

static void
on_commit(void *data)
{
	struct kilnd *k = data;

	sched_kick(k->sched.s);
}

/*
 * kiln-worker: worker_path when set; else next to this kilnd (a build
 * tree, the quick start); else the installed one in libexecdir.
 */
static char *
find_worker(const struct kiln_config *conf)
{
	char self[4096], *slash;
	ssize_t n;

	if (conf->worker_path != NULL)
		return xstrdup(conf->worker_path);
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			char *p;
			*slash = '\0';
			p = xasprintf("%s/kiln-worker", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xstrdup(LIBEXECDIR "/kiln-worker");
}

static void
on_http_closed(void *data)
{
	struct kilnd *k = data;

	k->http = NULL;
	log_info("http: stopped");
	/* Waits for a commit in flight: an accepted job is on disk. */
	submitter_close(k->submitter, on_submitter_closed, k);
}

static void
on_grace(uv_timer_t *h)
{
	struct kilnd *k = container_of(h, struct kilnd, grace);

	if (k->http != NULL) {
		log_warn("shutdown: %u s grace over; closing connections",
		    k->conf.shutdown_timeout);
		http_shutdown(k->http, 1, NULL, NULL);
	}
}

/* The builds are drained (or drain_timeout passed): stop serving. */
static void
on_drained(void *data)
{
	struct kilnd *k = data;

	k->draining = 0;
	log_info("shutting down: finishing requests in progress");
	uv_timer_start(&k->grace, on_grace,
	    (uint64_t)k->conf.shutdown_timeout * 1000, 0);
	http_shutdown(k->http, 0, on_http_closed, k);
}

/*
 * SIGTERM/SIGINT: no new builds; running builds finish, for at most
 * drain_timeout, while the API still answers (a job submitted meanwhile
 * is queued for the next start); then the requests in progress, the
 * commit in flight, and exit 0.  A second signal stops at once: builds
 * still running go back to the queue.
 */
static void
on_signal(uv_signal_t *h, int signum)
{
	struct kilnd *k = h->data;

	if (k->shutting_down) {
		log_warn("received %s again: stopping now; running builds go "
		    "back to the queue", strsignal(signum));
		if (k->draining)
			sched_drain_now(k->sched.s);
		if (k->http != NULL)
			http_shutdown(k->http, 1, NULL, NULL);
		return;
	}
	k->shutting_down = 1;
	k->draining = 1;
	log_info("received %s: draining (no new builds; %u running may "
	    "finish within %u s)", strsignal(signum),
	    sched_running(k->sched.s), k->conf.drain_timeout);
	notify_send("STOPPING=1");
	sched_drain(k->sched.s, on_drained, k);
}

static void
log_toolchains(const struct toolchains *tc)
{
	for (size_t i = 0; i < tc->n; i++)
		log_info("go toolchain %s: %s", tc->v[i].version,
		    tc->v[i].go);
	if (tc->n == 0)
		log_warn("no Go toolchain found (/usr/lib/go-1.NN/bin/go or "
		    "[toolchains] go in kilnd.conf): go recipes cannot build");
}

/* A discovery of the Go toolchains after a reload, in the thread pool. */
struct discovery {
	uv_work_t req;
	struct kilnd *k;
	struct kiln_config conf;	/* only its go_toolchains */
	struct toolchains *tc;
	unsigned gen;
	int rc;
	char err[256];
};

static void
discover_work(uv_work_t *req)
{
	struct discovery *d = container_of(req, struct discovery, req);

	d->tc = xcalloc(1, sizeof *d->tc);
	d->rc = toolchains_discover(d->tc, &d->conf, d->err, sizeof d->err);
}

/* On the loop thread: the newest discovery replaces the set in use. */
static void
discover_after(uv_work_t *req, int status)
{
	struct discovery *d = container_of(req, struct discovery, req);
	struct kilnd *k = d->k;
	struct toolchains *old;

	if (status != 0 || d->gen != k->toolchains_gen)
		;	/* canceled, or a later reload asked again */
	else if (d->rc != 0)
		log_error("reload: Go toolchains unchanged: %s", d->err);
	else {
		old = k->toolchains;
		k->toolchains = d->tc;
		d->tc = NULL;
		k->env.toolchains = k->toolchains;
		if (k->sched.s != NULL)
			sched_set_toolchains(k->sched.s, k->toolchains);
		log_toolchains(k->toolchains);
		toolchains_free(old);
		free(old);
	}
	if (d->tc != NULL) {
		toolchains_free(d->tc);
		free(d->tc);
	}
	conf_free(&d->conf);
	free(d);
}

/* `go version` of each blocks: ask the thread pool. */
static void
rediscover_toolchains(struct kilnd *k)
{
	struct discovery *d = xcalloc(1, sizeof *d);

	d->k = k;
	d->gen = ++k->toolchains_gen;
	for (size_t i = 0; i < k->conf.ngo_toolchains; i++)
		d->conf.go_toolchains[i] = xstrdup(k->conf.go_toolchains[i]);
	d->conf.ngo_toolchains = k->conf.ngo_toolchains;
	if (uv_queue_work(&k->loop, &d->req, discover_work,
	    discover_after) != 0) {
		log_error("reload: cannot look for Go toolchains");
		conf_free(&d->conf);
		free(d);
	}
}

/*
 * SIGHUP: read kilnd.conf again (and the flags over it).  A file with an
 * error is refused and the running configuration kept.  Projects,
 * tokens, toolchains and limits change at once; what is bound at start
 * (listen, state_dir, TLS, thread pool, connection limits) needs a
 * restart, which the log says.
 */
static void
on_sighup(uv_signal_t *h, int signum)
{
	static const char *const flag_keys[] = {
		"listen", "state_dir", "workers", "log_level",
	};
	struct kilnd *k = h->data;
	struct kiln_config nc, *oc = &k->conf;
	const char *path = k->conf_path ? k->conf_path : CONF_DEFAULT_PATH;
	char err[512];
	int rc;

	(void)signum;
	/* Stopping, the modules a reload reaches are closing or gone. */
	if (k->shutting_down) {
		log_warn("reload ignored: kilnd is stopping");
		return;
	}
	conf_defaults(&nc);
	rc = conf_load(&nc, path, err, sizeof err);
	if (rc == -2 && k->conf_path == NULL)
		rc = 0;		/* still no file: the embedded defaults */
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(flag_keys); i++)
		if (k->flags[i] != NULL &&
		    conf_set(&nc, flag_keys[i], k->flags[i], err,
		    sizeof err) != 0)
			rc = -1;
	if (rc == 0 && nc.ntokens == 0 && oc->ntokens > 0 &&
	    strncmp(k->where, "127.", 4) != 0 && strncmp(k->where, "[::1]", 5)) {
		snprintf(err, sizeof err, "the new configuration has no tokens, "
		    "and kilnd listens on %s, not loopback", k->where);
		rc = -1;
	}
	if (rc != 0) {
		log_error("reload refused, the running configuration stays: %s",
		    err);
		conf_free(&nc);
		return;
	}
#define KEEP(f) do { \
	if ((nc.f == NULL) != (oc->f == NULL) || \
	    (nc.f && strcmp(nc.f, oc->f) != 0)) \
		log_warn("reload: %s changed; it applies at the next start", #f); \
	free(nc.f); \
	nc.f = oc->f ? xstrdup(oc->f) : NULL; \
} while (0)
	KEEP(listen);
	KEEP(state_dir);
	KEEP(tls_cert);
	KEEP(tls_key);
	KEEP(base_url);
	KEEP(database);
	KEEP(host_name);
	KEEP(worker_path);
#undef KEEP
	/* max_connections_per_ip and header_timeout are read by http.c
	 * as connections come and go: they apply at once. */
	if (nc.max_connections != oc->max_connections ||
	    nc.http_timeout != oc->http_timeout)
		log_warn("reload: HTTP connection limits apply at the next "
		    "start");
	/* Read once when the scheduler starts; POST /v1/admin/pause and
	 * /v1/admin/resume change a running kilnd's pause. */
	if (nc.paused != oc->paused || nc.sweep_interval != oc->sweep_interval)
		log_warn("reload: paused and sweep_interval apply at the next "
		    "start");
	if (nc.allow_same_uid_builds != oc->allow_same_uid_builds)
		subid_log_builds(nc.allow_same_uid_builds, NULL,
		    nc.state_dir);
	conf_free(oc);
	*oc = nc;		/* every module holds &k->conf */
	log_set_level(oc->log_level);
	queue_set_lease(k->queue, (int64_t)oc->target_lease * 1000);
	submitter_set_max_queued(k->submitter, oc->max_queued);
	sched_kick(k->sched.s);	/* workers may have grown */
	log_info("reloaded %s: %zu project(s), %u token(s), %u workers",
	    path, oc->nprojects, oc->ntokens, oc->workers);
	/* Go may have been installed or upgraded meanwhile. */
	rediscover_toolchains(k);
}

/* systemd: WATCHDOG=1 at half the interval, from the loop itself. */
static void
on_watchdog(uv_timer_t *h)
{
	(void)h;
	notify_send("WATCHDOG=1");
}

/* systemd: STATUS= when the counts change. */
static void
on_status(uv_timer_t *h)
{
	struct kilnd *k = container_of(h, struct kilnd, status);
	char text[256];
	int64_t queued = 0;

	queue_count_targets(k->queue, TARGET_QUEUED, &queued);
	snprintf(text, sizeof text, "STATUS=%s on %s: %lld target(s) queued, "
	    "%u building%s", k->draining ? "draining" : "serving", k->where,
	    (long long)queued, sched_running(k->sched.s),
	    sched_paused(k->sched.s) ? " (paused)" : "");
	if (strcmp(text, k->status_text) != 0) {
		snprintf(k->status_text, sizeof k->status_text, "%s", text);
		notify_send(text);
	}
}

/* WATCHDOG_USEC, when systemd set it for this process. */
static uint64_t
watchdog_usec(void)
{
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	int64_t v, pid;

	if (u == NULL || util_parse_int64(u, 1, INT64_MAX, &v) != 0)
		return 0;
	if (p != NULL && (util_parse_int64(p, 1, INT64_MAX, &pid) != 0 ||
	    pid != (int64_t)getpid()))
		return 0;
	return (uint64_t)v;
}

/*
 * One kilnd per state directory: a second one would share the database
 * safely, but not the mirrors, work trees and store that come with
 * workers.  flock is released by the kernel when kilnd dies.
 */
static int
lock_state_dir(struct kilnd *k, char *err, size_t errsize)
{
	char *path = xasprintf("%s/kilnd.lock", k->conf.state_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		snprintf(err, errsize, "cannot open %s: %s", path,
		    strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errsize, "state directory %s is in use by another "
		    "kilnd (%s is locked)", k->conf.state_dir, path);
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	k->lock_fd = fd;
	return 0;
}

/*
 * kilnd --hash-token: the token is read from standard input (never from
 * the command line, where ps would show it) and only its SHA-256 is
 * printed, for [tokens] in kilnd.conf.
 */
static int
hash_token(void)
{
	char tok[1024];
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	size_t n;

	if (fgets(tok, sizeof tok, stdin) == NULL) {
		fprintf(stderr, "kilnd: --hash-token: no token on standard "
		    "input\n");
		return 1;
	}
	n = strcspn(tok, "\r\n");
	tok[n] = '\0';
	if (n < 16 || strchr(tok, ' ') != NULL) {
		fprintf(stderr, "kilnd: --hash-token: a token is at least 16 "
		    "characters without spaces (try: openssl rand -hex 32)\n");
		sodium_memzero(tok, sizeof tok);
		return 1;
	}
	crypto_hash_sha256(h, (unsigned char *)tok, n);
	sodium_memzero(tok, sizeof tok);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	printf("%s\n", hex);
	return 0;
}

static int
parse_args(struct kilnd *k, int argc, char **argv)
{
	enum { OPT_LOG_LEVEL = 256, OPT_VERSION, OPT_KEYGEN, OPT_HASH_TOKEN,
		OPT_CHECK };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "keygen", no_argument, NULL, OPT_KEYGEN },
		{ "hash-token", no_argument, NULL, OPT_HASH_TOKEN },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* Flags are applied after the file; a repeated flag: last wins. */
	static const char *const flag_keys[] = {
		"listen", "state_dir", "workers", "log_level",
	};
	const char **flags = k->flags;
	const char *cfile = NULL;
	int check = 0;
	char err[512];
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:l:d:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfile = optarg; break;
		case 'l': flags[0] = optarg; break;
		case 'd': flags[1] = optarg; break;
		case 'w': flags[2] = optarg; break;
		case OPT_LOG_LEVEL: flags[3] = optarg; break;
		case OPT_KEYGEN: k->keygen = 1; break;
		case OPT_HASH_TOKEN:
			return hash_token();
		case OPT_CHECK: check = 1; break;
		case OPT_VERSION:
			printf("kilnd %s (schema %d, PostgreSQL schema %d)\n",
			    PACKAGE_VERSION, queue_schema_version(),
			    queue_pg_schema_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kilnd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	k->conf_path = cfile;
	rc = conf_load(&k->conf, cfile ? cfile : CONF_DEFAULT_PATH, err,
	    sizeof err);
	if (rc == -1 || (rc == -2 && cfile != NULL)) {
		fprintf(stderr, "kilnd: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(flag_keys); i++) {
		if (flags[i] != NULL && conf_set(&k->conf, flag_keys[i],
		    flags[i], err, sizeof err) != 0) {
			fprintf(stderr, "kilnd: command line: %s\n", err);
			return 2;
		}
	}
	if (check) {
		struct toolchains tc;
		struct sockaddr_storage ss;
		socklen_t sslen;

		if (conf_check_listen(&k->conf, &ss, &sslen, err,
		    sizeof err) != 0) {
			fprintf(stderr, "kilnd: %s\n", err);
			return 1;
		}
		printf("%s: ok (%zu project(s), %u token(s))\n",
		    rc == -2 ? "embedded defaults" : cfile ? cfile :
		    CONF_DEFAULT_PATH, k->conf.nprojects, k->conf.ntokens);
		if (toolchains_discover(&tc, &k->conf, err, sizeof err) != 0)
			fprintf(stderr, "kilnd: %s\n", err);
		for (size_t i = 0; i < tc.n; i++)
			printf("go toolchain %s %s\n", tc.v[i].version,
			    tc.v[i].go);
		if (tc.n == 0)
			printf("no go toolchain found\n");
		toolchains_free(&tc);
		return 0;
	}
	log_set_level(k->conf.log_level);
	if (rc == -2)
		log_info("no %s: using embedded defaults", CONF_DEFAULT_PATH);
	else
		log_info("configuration from %s", cfile ? cfile :
		    CONF_DEFAULT_PATH);
	return -1;
}

int
main(int argc, char **argv)
{
	struct kilnd k;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char err[1024], host[INET6_ADDRSTRLEN], where[INET6_ADDRSTRLEN + 16];
	char status[256];
	int rc, requeued, failed, exit_code = 1;
	int64_t queued = 0;

	memset(&k, 0, sizeof k);
	k.lock_fd = -1;
	log_init();
	conf_defaults(&k.conf);
	if ((rc = parse_args(&k, argc, argv)) >= 0) {
		conf_free(&k.conf);
		return rc;
	}
	/* Without tokens, loopback only: the same check as --check-config. */
	if (conf_check_listen(&k.conf, &addr, &addrlen, err,
	    sizeof err) != 0) {
		log_error("%s", err);
		goto out;
	}
	if ((rc = util_mkdir_p(k.conf.state_dir, 0750)) != 0) {
		log_error("cannot create state directory %s: %s",
		    k.conf.state_dir, strerror(-rc));
		goto out;
	}
	/* Workers get absolute paths under it, whatever the cwd was. */
	{
		char *abs = realpath(k.conf.state_dir, NULL);
		if (abs == NULL) {
			log_error("cannot resolve state directory %s: %s",
			    k.conf.state_dir, strerror(errno));
			goto out;
		}
		free(k.conf.state_dir);
		k.conf.state_dir = abs;
	}
	if (k.keygen) {
		struct sign_key key;
		char id[17];
		if (sign_keygen(k.conf.state_dir, err, sizeof err) != 0 ||
		    sign_load(&key, k.conf.state_dir, err, sizeof err) != 0) {
			log_error("%s", err);
			goto out;
		}
		sign_key_id(id, &key);
		sign_key_wipe(&key);
		printf("%s/%s\n%s/%s\nkey id %s\n", k.conf.state_dir,
		    SIGN_SECRET_FILE, k.conf.state_dir, SIGN_PUBLIC_FILE, id);
		exit_code = 0;
		goto out;
	}
	if (lock_state_dir(&k, err, sizeof err) != 0) {
		log_error("%s", err);
		goto out;
	}
	/* Before any thread or child: kilnd leaves its delegated cgroup
	 * for a child of it, so that builds can get limits next to it. */
	if (cgroup_self_setup("/sys/fs/cgroup", err, sizeof err) == 0)
		log_info("%s", err);
	else
		log_warn("%s", err);
	/*
	 * The farm's signing key: created on first start, refused when
	 * others can read it.  It stays in this process; no worker or
	 * sandbox ever gets it.
	 */
	rc = sign_load(&k.key, k.conf.state_dir, err, sizeof err);
	if (rc == -2) {
		if (sign_keygen(k.conf.state_dir, err, sizeof err) != 0 ||
		    sign_load(&k.key, k.conf.state_dir, err, sizeof err) != 0) {
			log_error("%s", err);
			goto out;
		}
		log_info("created the signing key %s/%s; its public key is %s/%s",
		    k.conf.state_dir, SIGN_SECRET_FILE, k.conf.state_dir,
		    SIGN_PUBLIC_FILE);
	} else if (rc != 0) {
		log_error("%s", err);
		goto out;
	}
	k.pubkey = sign_public_text(&k.key);
	sign_key_id(k.key_id, &k.key);
	signal(SIGPIPE, SIG_IGN);
	git_libgit2_init();

	/* SQLite in the state directory, or the farm's PostgreSQL. */
	char *dbpath = k.conf.database != NULL ? xstrdup(k.conf.database) :
	    xasprintf("%s/kiln.db", k.conf.state_dir);
	rc = queue_open(&k.queue, dbpath, err, sizeof err);
	sodium_memzero(dbpath, strlen(dbpath));
	free(dbpath);
	if (rc != 0) {
		log_error("%s", err);
		goto out_git;
	}
	queue_set_host(k.queue, k.conf.host_name);
	queue_set_lease(k.queue, (int64_t)k.conf.target_lease * 1000);
	/* Every host of a farm signs with the same key; a state directory
	 * moved under another key is caught the same way. */
	if (queue_farm_key(k.queue, k.pubkey, err, sizeof err) != 0) {
		log_error("%s", err);
		goto out_queue;
	}
	if (queue_recover(k.queue, (int)k.conf.max_attempts, &requeued,
	    &failed) != 0) {
		log_error("cannot recover the queue after the last run");
		goto out_queue;
	}
	if (requeued || failed)
		log_info("recovered: %d interrupted target(s) queued again, %d "
		    "failed after %u attempts", requeued, failed,
		    k.conf.max_attempts);
	if (store_open(&k.store, k.conf.state_dir, err, sizeof err) != 0) {
		log_error("%s", err);
		goto out_queue;
	}
	if (k.conf.store_max_size == CONF_STORE_MAX_AUTO &&
	    store_fs_size(k.store) == 0)
		log_info("store_max_size not set and the store's file system "
		    "reports no size: no cap on the bytes of artifacts kept");
	else if (k.conf.store_max_size == CONF_STORE_MAX_AUTO)
		log_info("store_max_size not set: retention keeps %llu bytes "
		    "of artifacts, half the store's file system",
		    (unsigned long long)conf_store_max_size(&k.conf,
		    store_fs_size(k.store)));
	k.worker = find_worker(&k.conf);
	if (access(k.worker, X_OK) != 0) {
		log_error("kiln-worker not found at %s: builds cannot run (set "
		    "worker_path in kilnd.conf)", k.worker);
		goto out_queue;
	}
	subid_log_builds(k.conf.allow_same_uid_builds, k.worker,
	    k.conf.state_dir);
	/* Before the loop runs, so blocking on `go version` is fine. */
	k.toolchains = xcalloc(1, sizeof *k.toolchains);
	if (toolchains_discover(k.toolchains, &k.conf, err, sizeof err) != 0)
		log_error("%s", err);
	log_toolchains(k.toolchains);

	/*
	 * libuv's thread pool (4 threads by default) runs publications
	 * (hashing up to max_artifact_size per target), signing and the
	 * retention sweep's reading; database writes have their own thread
	 * (the queue's writer).  One thread per build slot plus room for the
	 * rest, so that publications never hold up signing; set before the
	 * pool starts, unless the operator chose a size.
	 */
	if (getenv("UV_THREADPOOL_SIZE") == NULL) {
		char n[16];
		snprintf(n, sizeof n, "%u", k.conf.workers + 4 > 1024 ? 1024 :
		    k.conf.workers + 4);
		setenv("UV_THREADPOOL_SIZE", n, 1);
	}
	uv_loop_init(&k.loop);
	if (queue_start(k.queue, &k.loop) != 0) {
		log_error("cannot start the database writer");
		uv_loop_close(&k.loop);
		goto out_queue;
	}
	k.submitter = submitter_new(&k.loop, k.queue, k.conf.max_queued);
	k.sched.s = sched_new(&k.loop, k.queue, &k.conf, k.worker, k.store,
	    &k.key);
	k.events = events_new(&k.loop, sse_keepalive_ms());
	submitter_set_events(k.submitter, k.events);
	sched_set_events(k.sched.s, k.events);
	k.env.events = k.events;
	sched_set_toolchains(k.sched.s, k.toolchains);
	k.callbacks = callbacks_new(&k.loop, k.queue, &k.conf);
	submitter_on_commit(k.submitter, on_commit, &k);
	k.env.queue = k.queue;
	k.env.conf = &k.conf;
	k.env.started_at = util_now_ms();
	k.env.submit = submitter_submit;
	k.env.submit_ctx = k.submitter;
	kilnd_env_builds(&k.env, k.sched.s);
	k.env.pubkey = k.pubkey;
	k.env.store = k.store;
	k.env.key_id = k.key_id;
	k.env.toolchains = k.toolchains;
	k.env.loop = &k.loop;
	uv_signal_init(&k.loop, &k.sigterm);
	uv_signal_init(&k.loop, &k.sigint);
	uv_timer_init(&k.loop, &k.grace);
	k.sigterm.data = k.sigint.data = &k;
	uv_signal_start(&k.sigterm, on_signal, SIGTERM);
	uv_signal_start(&k.sigint, on_signal, SIGINT);
	uv_signal_init(&k.loop, &k.sighup);
	k.sighup.data = &k;
	uv_signal_start(&k.sighup, on_sighup, SIGHUP);
	uv_timer_init(&k.loop, &k.watchdog);
	uv_timer_init(&k.loop, &k.status);
	/* 20 samples a second: a stall of a few ms is seen, and an idle
	 * kilnd wakes no more often than that. */
	looplag_start(&k.looplag, &k.loop, 50);
	k.env.looplag = k.looplag;

	if (http_start(&k.http, &k.loop, (struct sockaddr *)&addr, addrlen,
	    &k.conf, &k.env, err, sizeof err) != 0) {
		log_error("%s", err);
		submitter_close(k.submitter, NULL, NULL);
		sched_shutdown(k.sched.s, NULL, NULL);
		close_rest(&k);
		uv_run(&k.loop, UV_RUN_DEFAULT);
		uv_loop_close(&k.loop);
		goto out_queue;
	}
	if (addr.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr,
		    host, sizeof host);
		snprintf(where, sizeof where, "[%s]:%u", host,
		    http_port(k.http));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr,
		    host, sizeof host);
		snprintf(where, sizeof where, "%s:%u", host,
		    http_port(k.http));
	}
	queue_count_jobs(k.queue, JOB_QUEUED, &queued);
	{
		const char *scheme = k.conf.tls_cert ? "https" : "http";
		log_info("kilnd %s listening on %s://%s (state %s, %u workers, "
		    "%lld jobs queued); try: curl %s://%s/healthz",
		    PACKAGE_VERSION, scheme, where, k.conf.state_dir,
		    k.conf.workers, (long long)queued, scheme, where);
	}
	snprintf(status, sizeof status, "READY=1\nSTATUS=serving on %s, "
	    "%lld jobs queued", where, (long long)queued);
	notify_send(status);
	snprintf(k.where, sizeof k.where, "%s", where);
	k.status.data = &k;
	uv_timer_start(&k.status, on_status, 500, 2000);
	{
		uint64_t wd = watchdog_usec();
		if (wd > 0) {
			/* Half the interval, in ms, at least 1. */
			uint64_t ms = wd / 2000 ? wd / 2000 : 1;
			notify_send("WATCHDOG=1");
			uv_timer_start(&k.watchdog, on_watchdog, ms, ms);
			log_info("systemd watchdog: WATCHDOG=1 every %llu ms",
			    (unsigned long long)ms);
		}
	}
	log_info("builds: up to %u at once with %s", k.conf.workers, k.worker);
	/* Jobs queued before this start (or requeued by recovery). */
	sched_kick(k.sched.s);

	uv_run(&k.loop, UV_RUN_DEFAULT);

	rc = uv_loop_close(&k.loop);
	if (rc != 0) {
		log_error("event loop still has open handles at exit (%s)",
		    uv_strerror(rc));
		goto out_queue;
	}
	exit_code = 0;
out_queue:
	metrics_store_source(NULL);
	store_close(k.store);
	queue_close(k.queue);
	if (exit_code == 0)
		log_info("stopped cleanly");
out_git:
	git_libgit2_shutdown();
out:
	if (k.lock_fd >= 0)
		close(k.lock_fd);
	if (k.toolchains != NULL) {
		toolchains_free(k.toolchains);
		free(k.toolchains);
	}
	free(k.worker);
	free(k.pubkey);
	sign_key_wipe(&k.key);
	conf_free(&k.conf);
	metrics_reset();
	return exit_code;
}
