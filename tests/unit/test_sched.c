/*
 * The scheduler (daemon/sched/) on a real loop, a real queue (SQLite, its
 * writer thread), a real store and a real signing key, forking a real
 * process: a stand-in for kiln-worker that the test writes as a /bin/sh
 * script.  It speaks just enough of kiln-worker's command line: `fetch`
 * prints the JSON line of a resolved commit; `build --config-fd 4` reads
 * its options from the memfd, writes an artifact into ROOT/out and a
 * status line on fd 3, or fails, or hangs, as a file in its directory
 * says.  Every case asserts outcomes through the queue and the store
 * (never timing) and ends with uv_loop_close() == 0.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <sodium.h>
#include <uv.h>

#include "daemon/db/queue.h"
#include "daemon/sched/sched.h"
#include "daemon/sign.h"
#include "daemon/store.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "qsync.h"
#include "unit.h"

/* Only so that a broken scheduler fails the test instead of hanging it. */
#define DEADLINE_MS 30000
#define POLL_MS 20

#define COMMIT "0123456789abcdef0123456789abcdef01234567"

/*
 * kiln-worker, as far as the scheduler can tell.  D is its directory:
 * mode.TARGET (the target with '_' for '/') holds "ok", "slow" (ok after
 * a moment, so that builds run at once if the scheduler lets them),
 * "fail CODE" or "hang" (records its pid, then waits to be killed);
 * events gets "start TARGET PID" and "end TARGET" lines.
 */
static const char standin[] =
"#!/bin/sh\n"
"D='%s'\n"
"case \"$1\" in\n"
"fetch)\n"
"	printf '{\"commit\":\"%s\",\"commit_time\":1700000000}\\n'\n"
"	exit 0 ;;\n"
"build) ;;\n"
"*) echo \"kiln-worker stand-in: $1?\" >&2; exit 2 ;;\n"
"esac\n"
"[ \"$2\" = --config-fd ] && [ \"$3\" = 4 ] || exit 2\n"
"tr '\\0' '\\n' <&4 >\"$D/opts.$$\"\n"
"root= target= prev=\n"
"while IFS= read -r a; do\n"
"	case \"$prev\" in\n"
"	--root) root=$a ;;\n"
"	--target) target=$a ;;\n"
"	esac\n"
"	prev=$a\n"
"done <\"$D/opts.$$\"\n"
"name=$(printf %%s \"$target\" | tr / _)\n"
"mode=ok code=0\n"
"[ -f \"$D/mode.$name\" ] && read -r mode code <\"$D/mode.$name\"\n"
"echo \"start $name $$\" >>\"$D/events\"\n"
"echo \"building $target in $root\"\n"
"case $mode in\n"
"hang)\n"
"	echo $$ >\"$D/pid.tmp\" && mv \"$D/pid.tmp\" \"$D/pid.$name\"\n"
"	echo 'waiting to be killed'\n"
"	exec sleep 600 ;;\n"
"fail)\n"
"	echo \"end $name\" >>\"$D/events\"\n"
"	printf '{\"status\":\"exited\",\"code\":%%d}\\n' \"$code\" >&3\n"
"	exit \"$code\" ;;\n"
"slow)\n"
"	sleep 0.3 ;;\n"
"esac\n"
"mkdir -p \"$root/out\" || exit 125\n"
"printf 'artifact of %%s\\n' \"$target\" >\"$root/out/hello-$name\"\n"
"echo \"end $name\" >>\"$D/events\"\n"
"echo '{\"status\":\"exited\",\"code\":0}' >&3\n";

struct fx {
	uv_loop_t loop;
	uv_timer_t poll;		/* wakes the waits below */
	struct kiln_config conf;
	struct queue *q;
	struct store *store;
	struct sign_key key;
	struct sched *s;
	char db[300], bin[300];		/* the queue; the stand-in's dir */
	char worker[320];
	int wrote, write_rc;		/* a write's completion */
	int drained, stopping, stopped, closed;
	size_t nrunning;		/* queue_cancel's answer */
	int64_t cancel_id;
};

static void
on_poll(uv_timer_t *h)
{
	(void)h;
}

/* Whole file as a string (malloc'd), "" when absent. */
static char *
slurp_fd(int fd)
{
	char *buf = xmalloc(65536);
	size_t len = 0;
	ssize_t n;

	while (fd >= 0 && len < 65535 &&
	    (n = read(fd, buf + len, 65535 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (fd >= 0)
		close(fd);
	return buf;
}

static char *
slurp(const char *dir, const char *name)
{
	char path[600];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return slurp_fd(open(path, O_RDONLY | O_CLOEXEC));
}

/* The pid the hanging stand-in recorded for target `name`, or 0. */
static pid_t
standin_pid(struct fx *f, const char *name)
{
	char file[300], *text;
	pid_t pid;

	snprintf(file, sizeof file, "pid.%s", name);
	text = slurp(f->bin, file);
	pid = (pid_t)atol(text);
	free(text);
	return pid;
}

/*
 * A wait that never ended: the scheduler cannot be trusted to stop what
 * it started.  Kill the stand-ins that wait to be killed, and stop here.
 */
static void
give_up(struct fx *f, const char *file, int line, const char *what)
{
	DIR *d = opendir(f->bin);
	struct dirent *e;
	pid_t pid;

	fprintf(stderr, "  %s:%d: gave up waiting for %s\n", file, line, what);
	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "pid.", 4) == 0 &&
		    (pid = standin_pid(f, e->d_name + 4)) > 1)
			kill(pid, SIGKILL);
	if (d != NULL)
		closedir(d);
	unit_rmtmp();
	exit(1);
}

/*
 * Run the loop until cond holds.  What the test waits for is a write of
 * the scheduler's, whose completion wakes the loop; the poll timer also
 * wakes it for what only a file shows (the stand-in's pid).
 */
#define RUN_UNTIL(f, cond, what) do {					\
	uint64_t until_ = uv_now(&(f)->loop) + DEADLINE_MS;		\
	uv_timer_start(&(f)->poll, on_poll, POLL_MS, POLL_MS);		\
	while (!(cond)) {						\
		if (uv_now(&(f)->loop) > until_)			\
			give_up((f), __FILE__, __LINE__, (what));	\
		uv_run(&(f)->loop, UV_RUN_ONCE);			\
	}								\
	uv_timer_stop(&(f)->poll);					\
} while (0)

/* sweep_interval for the next setup(), when not 0. */
static unsigned setup_sweep_interval;

static void
setup(struct fx *f, unsigned workers)
{
	const char *tmp = unit_tmpdir();
	char path[400], err[256], *script;

	memset(f, 0, sizeof *f);
	log_set_level(LOG_LVL_ERROR);
	conf_defaults(&f->conf);
	free(f->conf.state_dir);
	f->conf.state_dir = xasprintf("%s/state", tmp);
	f->conf.workers = workers;
	if (setup_sweep_interval > 0)
		f->conf.sweep_interval = setup_sweep_interval;
	CHECK_INT(mkdir(f->conf.state_dir, 0750), 0);

	snprintf(f->bin, sizeof f->bin, "%s/bin", tmp);
	snprintf(f->worker, sizeof f->worker, "%s/kiln-worker", f->bin);
	CHECK_INT(mkdir(f->bin, 0755), 0);
	script = xasprintf(standin, f->bin, COMMIT);
	write_text(f->worker, script);
	free(script);
	CHECK_INT(chmod(f->worker, 0755), 0);

	CHECK_INT(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->poll);
	snprintf(f->db, sizeof f->db, "%s/kiln.db", tmp);
	CHECK_INT(queue_open(&f->q, f->db, err, sizeof err), 0);
	CHECK_INT(queue_start(f->q, &f->loop), 0);
	CHECK_INT(store_open(&f->store, f->conf.state_dir, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/keys", tmp);
	CHECK_INT(mkdir(path, 0700), 0);
	CHECK_INT(sign_keygen(path, err, sizeof err), 0);
	CHECK_INT(sign_load(&f->key, path, err, sizeof err), 0);
	f->s = sched_new(&f->loop, f->q, &f->conf, f->worker, f->store,
	    &f->key);
}

static void
on_queue_closed(void *data)
{
	((struct fx *)data)->closed = 1;
}

/* As kilnd: the scheduler stopped, then the queue's writer. */
static void
on_stopped(void *data)
{
	struct fx *f = data;

	f->stopped = 1;
	f->s = NULL;
	queue_stop(f->q, on_queue_closed, f);
}

/* The scheduler stops (unless told to already), then the queue; the
 * loop ends with no handle left. */
static void
teardown(struct fx *f)
{
	if (!f->stopping)
		sched_shutdown(f->s, on_stopped, f);
	RUN_UNTIL(f, f->closed, "the scheduler and the queue to stop");
	CHECK(f->stopped);
	uv_close((uv_handle_t *)&f->poll, NULL);
	CHECK_INT(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	CHECK_INT(uv_loop_close(&f->loop), 0);
	queue_close(f->q);
	store_close(f->store);
	sign_key_wipe(&f->key);
	conf_free(&f->conf);
}

static void
on_write(void *data, int rc)
{
	struct fx *f = data;

	f->write_rc = rc;
	f->wrote = 1;
}

/* Submit a job of n targets (a command recipe; cache false: always
 * built), then kick, as kilnd does once a submission is committed. */
static int64_t
submit(struct fx *f, const char *const *targets, size_t n)
{
	struct job *j = xcalloc(1, sizeof *j);
	int64_t id;

	j->repo = xstrdup("https://git.example.com/kiln/hello.git");
	j->ref = xstrdup("main");
	j->recipe = xstrdup("{\"kind\":\"command\",\"command\":\"true\"}");
	j->created_at = 1000;
	j->ntargets = n;
	j->targets = xcalloc(n, sizeof *j->targets);
	for (size_t i = 0; i < n; i++)
		snprintf(j->targets[i].target, TARGET_NAME_MAX, "%s",
		    targets[i]);
	f->wrote = 0;
	queue_submit(f->q, &j, 1, on_write, f);
	RUN_UNTIL(f, f->wrote, "the submission");
	CHECK_INT(f->write_rc, 0);
	id = j->id;
	job_free(j);
	sched_kick(f->s);
	return id;
}

/* The stand-in's behaviour for one target ("linux_amd64"). */
static void
set_mode(struct fx *f, const char *name, const char *mode)
{
	char path[400];

	snprintf(path, sizeof path, "%s/mode.%s", f->bin, name);
	write_text(path, mode);
}

static struct job *
get_job(struct fx *f, int64_t id)
{
	struct job *j = NULL;

	CHECK_INT(qs_get_on(&f->loop, f->q, id, &j), 0);
	return j;
}

static const struct job_target *
find_target(const struct job *j, const char *name)
{
	for (size_t i = 0; j != NULL && i < j->ntargets; i++)
		if (strcmp(j->targets[i].target, name) == 0)
			return &j->targets[i];
	return NULL;
}

/* Whether the job and its targets ended; and, if it succeeded, whether
 * it was signed too. */
static bool
job_settled(struct fx *f, int64_t id)
{
	struct job *j = get_job(f, id);
	bool done = j != NULL && job_state_terminal(j->state);

	for (size_t i = 0; done && i < j->ntargets; i++)
		done = target_state_terminal(j->targets[i].state);
	if (done && j->state == JOB_SUCCEEDED)
		done = j->sums_sha256 != NULL;
	job_free(j);
	return done;
}

static enum target_state
target_state(struct fx *f, int64_t id, const char *name)
{
	struct job *j = get_job(f, id);
	const struct job_target *t = find_target(j, name);
	enum target_state st = t ? t->state : TARGET_STATE_COUNT;

	job_free(j);
	return st;
}

/* The stand-in's events: builds started, ended, and the most that ran
 * at once (a start before the previous build's end). */
struct events {
	int starts, ends, most;
};

static struct events
read_events(struct fx *f)
{
	char *text = slurp(f->bin, "events"), *line, *save = NULL;
	struct events ev = { 0, 0, 0 };
	int now = 0;

	for (line = strtok_r(text, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "start ", 6) == 0) {
			ev.starts++;
			if (++now > ev.most)
				ev.most = now;
		} else if (strncmp(line, "end ", 4) == 0) {
			ev.ends++;
			now--;
		}
	}
	free(text);
	return ev;
}

/* --- the cases --------------------------------------------------------------- */

/*
 * Both targets are claimed and built by the stand-in, their artifacts
 * land in the store under their SHA-256, the job succeeds and is signed:
 * SHA256SUMS in the store names both artifacts.
 */
static void
two_targets_are_built_published_and_signed(void)
{
	static const char *const targets[] = { "linux/amd64", "linux/arm64" };
	static const char *const names[] = { "linux_amd64", "linux_arm64" };
	struct fx f;
	struct job *j;
	struct events ev;
	char *sums = NULL, *log = NULL;
	int64_t id;
	int fd = -1;

	setup(&f, 2);
	id = submit(&f, targets, 2);
	RUN_UNTIL(&f, job_settled(&f, id), "the job to end and be signed");

	j = get_job(&f, id);
	CHECK(j != NULL);
	if (j == NULL)
		goto out;
	CHECK_INT(j->state, JOB_SUCCEEDED);
	CHECK_STR(j->commit, COMMIT);
	CHECK(j->sums_sha256 && j->sig_sha256 && j->prov_sha256);
	if (j->sums_sha256 != NULL)
		sums = slurp_fd(store_open_blob(f.store, j->sums_sha256));
	for (size_t i = 0; i < 2; i++) {
		const struct job_target *t = find_target(j, targets[i]);
		char content[64], want[STORE_HEX_LEN + 1], name[64], line[200];
		unsigned char h[crypto_hash_sha256_BYTES];
		char *blob;

		CHECK(t != NULL);
		if (t == NULL)
			continue;
		CHECK_INT(t->state, TARGET_SUCCEEDED);
		CHECK_INT(t->attempt, 1);
		CHECK(t->has_exit_status && t->exit_status == 0);
		CHECK_INT(t->nartifacts, 1);
		if (t->nartifacts != 1)
			continue;
		snprintf(content, sizeof content, "artifact of %s\n",
		    targets[i]);
		snprintf(name, sizeof name, "hello-%s", names[i]);
		crypto_hash_sha256(h, (unsigned char *)content,
		    strlen(content));
		sodium_bin2hex(want, sizeof want, h, sizeof h);
		CHECK_STR(t->artifacts[0].name, name);
		CHECK_INT(t->artifacts[0].size, strlen(content));
		CHECK_STR(t->artifacts[0].sha256, want);
		/* The store holds the very bytes under that digest. */
		blob = slurp_fd(store_open_blob(f.store, want));
		CHECK_STR(blob, content);
		free(blob);
		snprintf(line, sizeof line, "%s  ", want);
		CHECK(sums != NULL && strstr(sums, line) != NULL);
	}
	/* Real processes ran: each build's stand-in recorded itself, and its
	 * output reached the target's log. */
	ev = read_events(&f);
	CHECK_INT(ev.starts, 2);
	CHECK_INT(ev.ends, 2);
	CHECK_INT(sched_log_open(f.s, id, "linux/arm64", &fd), 0);
	log = slurp_fd(fd);
	CHECK(strstr(log, "building linux/arm64 in ") != NULL);
out:
	free(log);
	free(sums);
	job_free(j);
	teardown(&f);
}

/*
 * A build that exits 3 ends failed with exit status 3 and a reason that
 * says so; the job fails and is not signed.  The other target still
 * succeeds.
 */
static void
failed_build_fails_the_job(void)
{
	static const char *const targets[] = { "linux/amd64", "linux/arm64" };
	struct fx f;
	const struct job_target *t;
	struct job *j;
	int64_t id;

	setup(&f, 2);
	set_mode(&f, "linux_arm64", "fail 3\n");
	id = submit(&f, targets, 2);
	RUN_UNTIL(&f, job_settled(&f, id), "the job to end");

	j = get_job(&f, id);
	CHECK(j != NULL);
	if (j == NULL)
		goto out;
	CHECK_INT(j->state, JOB_FAILED);
	CHECK(j->sums_sha256 == NULL);
	t = find_target(j, "linux/arm64");
	CHECK(t != NULL);
	if (t != NULL) {
		CHECK_INT(t->state, TARGET_FAILED);
		CHECK(t->has_exit_status);
		CHECK_INT(t->exit_status, 3);
		CHECK(t->error != NULL &&
		    strstr(t->error, "exited with status 3") != NULL);
		CHECK_INT(t->nartifacts, 0);
	}
	t = find_target(j, "linux/amd64");
	CHECK(t != NULL && t->state == TARGET_SUCCEEDED);
out:
	job_free(j);
	teardown(&f);
}

/*
 * workers = 1: three targets are built one after the other.  Each build
 * takes a moment (mode slow), so a scheduler that started the next one
 * early would show two starts in a row in the stand-in's events.
 */
static void
one_worker_builds_one_target_at_a_time(void)
{
	static const char *const targets[] = { "linux/amd64", "linux/arm64",
	    "linux/386" };
	struct fx f;
	struct events ev;
	struct job *j;
	int64_t id;

	setup(&f, 1);
	set_mode(&f, "linux_amd64", "slow\n");
	set_mode(&f, "linux_arm64", "slow\n");
	set_mode(&f, "linux_386", "slow\n");
	id = submit(&f, targets, 3);
	RUN_UNTIL(&f, job_settled(&f, id), "the job to end and be signed");

	ev = read_events(&f);
	CHECK_INT(ev.starts, 3);
	CHECK_INT(ev.ends, 3);
	CHECK_INT(ev.most, 1);
	j = get_job(&f, id);
	CHECK(j != NULL && j->state == JOB_SUCCEEDED);
	for (size_t i = 0; j != NULL && i < j->ntargets; i++)
		CHECK_INT(j->targets[i].attempt, 1);
	job_free(j);
	teardown(&f);
}

/* As api/jobs.c: the queue cancels, then running builds are stopped. */
static void
on_canceled(void *data, int rc)
{
	struct fx *f = data;

	f->write_rc = rc;
	f->wrote = 1;
	if (rc == 0 && f->nrunning > 0)
		sched_cancel(f->s, f->cancel_id);
}

/*
 * Cancel while the build runs: the stand-in process is killed (its pid
 * is gone), it never reached its end, and the target ends canceled.
 */
static void
cancel_kills_the_running_build(void)
{
	static const char *const targets[] = { "linux/amd64" };
	struct fx f;
	struct job *j;
	pid_t pid;
	int64_t id;

	setup(&f, 1);
	set_mode(&f, "linux_amd64", "hang\n");
	id = submit(&f, targets, 1);
	RUN_UNTIL(&f, target_state(&f, id, "linux/amd64") == TARGET_RUNNING &&
	    standin_pid(&f, "linux_amd64") > 0, "the build to start");
	pid = standin_pid(&f, "linux_amd64");
	CHECK_INT(kill(pid, 0), 0);	/* alive before */

	f.wrote = 0;
	f.cancel_id = id;
	queue_cancel(f.q, id, &f.nrunning, on_canceled, &f);
	RUN_UNTIL(&f, target_state_terminal(target_state(&f, id,
	    "linux/amd64")), "the canceled target to end");

	CHECK_INT(f.write_rc, 0);
	CHECK_INT(f.nrunning, 1);
	CHECK_INT(target_state(&f, id, "linux/amd64"), TARGET_CANCELED);
	j = get_job(&f, id);
	CHECK(j != NULL && j->state == JOB_CANCELED);
	job_free(j);
	/* Reaped by the scheduler: no such process any more. */
	errno = 0;
	CHECK_INT(kill(pid, 0), -1);
	CHECK_INT(errno, ESRCH);
	CHECK_INT(read_events(&f).starts, 1);
	CHECK_INT(read_events(&f).ends, 0);	/* killed before its end */
	CHECK_INT(sched_running(f.s), 0);
	teardown(&f);
}

/*
 * Paused, the scheduler claims nothing: after a kick, a write of ours
 * (ordered after any claim that kick made) finds the target still
 * queued.  Resumed, the job is built.
 */
static void
paused_scheduler_claims_nothing(void)
{
	static const char *const targets[] = { "linux/amd64" };
	struct fx f;
	struct job *j;
	int64_t id, tid = 0;

	setup(&f, 2);
	sched_pause(f.s, true);
	CHECK(sched_paused(f.s));
	id = submit(&f, targets, 1);		/* kicks */
	sched_kick(f.s);
	j = get_job(&f, id);
	if (j != NULL && j->ntargets == 1)
		tid = j->targets[0].id;
	job_free(j);
	/* A heartbeat answers ECONFLICT for a target that is not running
	 * (attempt 1 would be the first claim's); writes run in order, so
	 * any claim came first. */
	f.wrote = 0;
	queue_heartbeat(f.q, tid, 1, on_write, &f);
	RUN_UNTIL(&f, f.wrote, "the heartbeat");
	CHECK_INT(f.write_rc, QUEUE_ECONFLICT);
	j = get_job(&f, id);
	CHECK(j != NULL && j->state == JOB_QUEUED);
	if (j != NULL && j->ntargets == 1) {
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		CHECK_INT(j->targets[0].attempt, 0);
	}
	job_free(j);
	CHECK_INT(sched_running(f.s), 0);

	sched_pause(f.s, false);
	RUN_UNTIL(&f, job_settled(&f, id), "the resumed job to end");
	j = get_job(&f, id);
	CHECK(j != NULL && j->state == JOB_SUCCEEDED);
	job_free(j);
	CHECK_INT(read_events(&f).starts, 1);
	teardown(&f);
}

/* As kilnd on SIGTERM's drain timeout: shut the scheduler down. */
static void
on_drained(void *data)
{
	struct fx *f = data;

	f->drained = f->stopping = 1;
	sched_shutdown(f->s, on_stopped, f);
}

/*
 * Drain with a build in flight leaves it running; at drain's end the
 * shutdown kills it and gives the target back to the queue, queued with
 * its attempt not counted; the shutdown's callback runs, the queue stops
 * and no handle is left on the loop.
 */
static void
shutdown_gives_a_running_build_back(void)
{
	static const char *const targets[] = { "linux/amd64" };
	struct fx f;
	struct job *j;
	char err[256];
	pid_t pid;
	int64_t id;

	setup(&f, 1);
	set_mode(&f, "linux_amd64", "hang\n");
	id = submit(&f, targets, 1);
	RUN_UNTIL(&f, target_state(&f, id, "linux/amd64") == TARGET_RUNNING &&
	    standin_pid(&f, "linux_amd64") > 0, "the build to start");
	pid = standin_pid(&f, "linux_amd64");

	sched_drain(f.s, on_drained, &f);
	/* drain_timeout is a minute: the build may still finish. */
	CHECK(!f.drained);
	CHECK_INT(sched_running(f.s), 1);
	CHECK_INT(kill(pid, 0), 0);
	/* A second SIGTERM: drain's wait ends now. */
	sched_drain_now(f.s);
	CHECK(f.drained);
	teardown(&f);		/* already stopping: waits for it */

	/* As the next start finds it (its loop is closed: read on
	 * qsync's). */
	CHECK_INT(queue_open(&f.q, f.db, err, sizeof err), 0);
	j = NULL;
	CHECK_INT(qs_get(f.q, id, &j), 0);
	if (j != NULL && j->ntargets == 1) {
		CHECK_INT(j->state, JOB_QUEUED);
		CHECK_INT(j->targets[0].state, TARGET_QUEUED);
		CHECK_INT(j->targets[0].attempt, 0);
		CHECK(!j->targets[0].has_exit_status);
	}
	job_free(j);
	errno = 0;
	CHECK_INT(kill(pid, 0), -1);
	CHECK_INT(errno, ESRCH);
	CHECK_INT(read_events(&f).ends, 0);
	qs_close(f.q);
}

/* A blob's path in the fixture's store: directory i, the k-th name. */
static void
blob_path(struct fx *f, char *path, size_t size, unsigned i, unsigned k)
{
	snprintf(path, size, "%s/store/sha256/%02x/%02x%062x",
	    f->conf.state_dir, i, i, k);
}

static bool
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/*
 * A stop while the retention sweep goes through the store ends the
 * sweep between two batches of its directories: kilnd's shutdown does
 * not wait for the whole store.  Every directory holds old blobs that
 * nothing references; the stop comes as soon as the first directory's
 * are gone; the last directory's are still there when it has stopped.
 */
static void
stop_ends_the_store_sweep_between_batches(void)
{
	struct timeval old[2];
	char path[600], dir[600];
	struct fx f;

	setup_sweep_interval = 1;
	setup(&f, 1);
	setup_sweep_interval = 0;
	gettimeofday(&old[0], NULL);
	old[0].tv_sec -= 7200;
	old[1] = old[0];
	for (unsigned i = 0; i < 256; i++) {
		snprintf(dir, sizeof dir, "%s/store/sha256/%02x",
		    f.conf.state_dir, i);
		CHECK_INT(mkdir(dir, 0755), 0);
		for (unsigned k = 0; k < 4; k++) {
			blob_path(&f, path, sizeof path, i, k);
			write_text(path, "unreferenced");
			CHECK_INT(utimes(path, old), 0);
		}
	}
	blob_path(&f, path, sizeof path, 0, 0);
	RUN_UNTIL(&f, !exists(path), "the sweep to remove a blob");
	sched_shutdown(f.s, on_stopped, &f);
	f.stopping = 1;
	blob_path(&f, path, sizeof path, 255, 3);
	teardown(&f);
	CHECK(exists(path));
}

UNIT_MAIN(
	TEST(two_targets_are_built_published_and_signed),
	TEST(failed_build_fails_the_job),
	TEST(one_worker_builds_one_target_at_a_time),
	TEST(cancel_kills_the_running_build),
	TEST(paused_scheduler_claims_nothing),
	TEST(shutdown_gives_a_running_build_back),
	TEST(stop_ends_the_store_sweep_between_batches)
)
