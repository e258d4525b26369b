/*
 * bench/pgclaims: claims per second on one PostgreSQL database through
 * daemon/db/queue.h itself, with 1, 2, ... H hosts.  For each H, on a
 * fresh database of a tests/pgcluster.sh cluster: submit JOBS jobs of
 * TARGETS targets once, then H processes, each one "host" (its own queue
 * handle, queue_set_host "hN", its own libuv loop and connections), keep
 * SLOTS claims in flight each (kilnd's workers) and finish every claimed
 * target at once (succeeded, no artifacts) until the queue is empty.
 * Prints claims/s and finishes/s per H and the ratio to H = 1.
 *
 * usage: bench/pgclaims [-j JOBS] [-t TARGETS] [-H HOSTS] [-c SLOTS] DIR
 *
 * DIR is a running cluster of tests/pgcluster.sh (its `createdb` makes
 * each database), found as $SRCDIR/tests/pgcluster.sh (SRCDIR defaults
 * to "."), so as root or the postgres user.
 *
 * One process per host, forked before any queue is opened, not H handles
 * on one loop: a kilnd host is a process of its own, and the backend does
 * all of its libpq work (building queries, parsing answers) on its loop
 * thread, so H handles on one loop would measure one core's worth of
 * client work for every H.  Forked, the hosts compete for the database
 * and the cores as a farm's hosts do.  All start claiming at once (a
 * pipe closed by the parent), and the rate is every host's claims over
 * the time from the first start to the last host's end.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "daemon/db/queue.h"
#include "lib/xmalloc.h"

#define SLOTS_MAX	64
#define SUBMIT_BATCH	100	/* jobs per queue_submit */

static const char *const names[] = {
	"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/riscv64",
	"linux/386", "windows/amd64", "darwin/arm64", "freebsd/amd64",
};
#define NNAMES (sizeof names / sizeof names[0])

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- one host ------------------------------------------------------- */

/* What a host sends back to the parent through its pipe. */
struct result {
	long claims, finishes, errors;
	int64_t start_ns, end_ns;
	int64_t claim_ns, finish_ns;	/* summed round trips */
};

struct host;

struct slot {
	struct host *h;
	struct queue_claim claim;
	int64_t t0;
	bool done;
};

struct host {
	struct queue *q;
	struct slot slots[SLOTS_MAX];
	int nslots, nactive;
	struct result r;
	bool stopped;
};

static void claim_next(struct slot *s);

static void
on_stopped(void *data)
{
	*(bool *)data = true;
}

static void
slot_end(struct slot *s)
{
	struct host *h = s->h;

	s->done = true;
	if (--h->nactive == 0) {
		h->r.end_ns = now_ns();
		queue_stop(h->q, on_stopped, &h->stopped);
	}
}

static void
on_finished(void *data, int rc)
{
	struct slot *s = data;

	s->h->r.finish_ns += now_ns() - s->t0;
	if (rc == 0)
		s->h->r.finishes++;
	else {
		fprintf(stderr, "pgclaims: finish of target %lld: rc %d\n",
		    (long long)s->claim.target_id, rc);
		s->h->r.errors++;
	}
	claim_next(s);
}

static void
on_claimed(void *data, int rc)
{
	static const struct queue_outcome ok = {
		.state = TARGET_SUCCEEDED, .exit_status = 0,
	};
	struct slot *s = data;
	struct host *h = s->h;

	h->r.claim_ns += now_ns() - s->t0;
	if (rc == QUEUE_EEMPTY) {
		slot_end(s);
		return;
	}
	if (rc != 0) {
		/* Counted and given up: a failing database ends the run
		 * rather than spinning on it. */
		fprintf(stderr, "pgclaims: claim: rc %d\n", rc);
		h->r.errors++;
		slot_end(s);
		return;
	}
	h->r.claims++;
	s->t0 = now_ns();
	queue_finish_build(h->q, s->claim.target_id, s->claim.attempt, &ok,
	    NULL, on_finished, s);
}

static void
claim_next(struct slot *s)
{
	s->t0 = now_ns();
	queue_claim(s->h->q, &s->claim, on_claimed, s);
}

/* The child: open, say ready, wait for the go (EOF), claim until empty,
 * write the result.  Exit status 0 when the result was written. */
static int
run_host(const char *url, int n, int nslots, int ready_fd, int go_fd,
    int out_fd)
{
	struct host h;
	uv_loop_t loop;
	char err[512], name[16], c;

	memset(&h, 0, sizeof h);
	if (queue_open(&h.q, url, err, sizeof err) != 0) {
		fprintf(stderr, "pgclaims: h%d: %s\n", n, err);
		return 1;
	}
	snprintf(name, sizeof name, "h%d", n);
	queue_set_host(h.q, name);
	uv_loop_init(&loop);
	if (queue_start(h.q, &loop) != 0) {
		fprintf(stderr, "pgclaims: h%d: queue_start failed\n", n);
		return 1;
	}
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	while (read(go_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(go_fd);
	h.nslots = h.nactive = nslots;
	h.r.start_ns = now_ns();
	for (int i = 0; i < nslots; i++) {
		h.slots[i].h = &h;
		claim_next(&h.slots[i]);
	}
	while (!h.stopped)
		uv_run(&loop, UV_RUN_ONCE);
	queue_close(h.q);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (write(out_fd, &h.r, sizeof h.r) != (ssize_t)sizeof h.r)
		return 1;
	return 0;
}

/* ---- the parent ------------------------------------------------------ */

struct submit {
	struct queue *q;
	struct job **jobs;
	int njobs, ntargets, next, batch;
	int rc;
	bool stopped;
};

static struct job *
make_job(int i, int ntargets)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->repo = xstrdup("https://git.example.com/app.git");
	j->ref = xstrdup("main");
	j->state = JOB_QUEUED;
	j->created_at = 1700000000000 + i;
	j->targets = xcalloc((size_t)ntargets, sizeof *j->targets);
	for (int t = 0; t < ntargets; t++) {
		snprintf(j->targets[t].target, sizeof j->targets[t].target,
		    "%s", names[t]);
		j->targets[t].state = TARGET_QUEUED;
	}
	j->ntargets = (size_t)ntargets;
	return j;
}

static void submit_next(struct submit *s);

static void
on_submitted(void *data, int rc)
{
	struct submit *s = data;

	for (int i = s->next - s->batch; i < s->next; i++)
		job_free(s->jobs[i]);
	if (rc != 0) {
		fprintf(stderr, "pgclaims: submit: rc %d\n", rc);
		s->rc = -1;
		queue_stop(s->q, on_stopped, &s->stopped);
		return;
	}
	submit_next(s);
}

static void
submit_next(struct submit *s)
{
	if (s->next == s->njobs) {
		queue_stop(s->q, on_stopped, &s->stopped);
		return;
	}
	s->batch = s->njobs - s->next < SUBMIT_BATCH ?
	    s->njobs - s->next : SUBMIT_BATCH;
	for (int i = s->next; i < s->next + s->batch; i++)
		s->jobs[i] = make_job(i, s->ntargets);
	s->next += s->batch;
	queue_submit(s->q, s->jobs + s->next - s->batch, (size_t)s->batch,
	    on_submitted, s);
}

/* Submit the jobs in batches, one after the other; 0 or -1. */
static int
submit_all(const char *url, int njobs, int ntargets, double *secs)
{
	struct submit s;
	uv_loop_t loop;
	char err[512];
	int64_t t0;

	memset(&s, 0, sizeof s);
	if (queue_open(&s.q, url, err, sizeof err) != 0) {
		fprintf(stderr, "pgclaims: %s: %s\n", url, err);
		return -1;
	}
	queue_set_host(s.q, "submitter");
	uv_loop_init(&loop);
	if (queue_start(s.q, &loop) != 0) {
		queue_close(s.q);
		return -1;
	}
	s.jobs = xcalloc((size_t)njobs, sizeof *s.jobs);
	s.njobs = njobs;
	s.ntargets = ntargets;
	t0 = now_ns();
	submit_next(&s);
	while (!s.stopped)
		uv_run(&loop, UV_RUN_ONCE);
	*secs = (double)(now_ns() - t0) / 1e9;
	queue_close(s.q);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(s.jobs);
	return s.rc;
}

/* A new database of the cluster: its URL (malloc'd), or NULL. */
static char *
createdb(const char *script, const char *dir, const char *name)
{
	char *cmd, line[1024];
	FILE *p;
	size_t len;
	int st;

	cmd = xasprintf("'%s' createdb '%s' %s", script, dir, name);
	p = popen(cmd, "r");
	if (p == NULL) {
		free(cmd);
		return NULL;
	}
	if (fgets(line, sizeof line, p) == NULL)
		line[0] = '\0';
	st = pclose(p);
	len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == ' '))
		line[--len] = '\0';
	if (st != 0 || len == 0) {
		fprintf(stderr, "pgclaims: %s: failed\n", cmd);
		free(cmd);
		return NULL;
	}
	free(cmd);
	return xstrdup(line);
}

struct row {
	long claims, finishes, errors, targets;
	double secs, rate, frate, claim_ms, finish_ms, submit_s;
	long per_host[SLOTS_MAX];
};

/* One measurement with nhosts hosts; 0 or -1. */
static int
measure(const char *url, int nhosts, int nslots, int njobs, int ntargets,
    struct row *row)
{
	int ready[2], go[2], out[2 * SLOTS_MAX];
	pid_t pids[SLOTS_MAX];
	int64_t start = INT64_MAX, end = 0;
	int rc = 0;
	char c;

	memset(row, 0, sizeof *row);
	row->targets = (long)njobs * ntargets;
	if (submit_all(url, njobs, ntargets, &row->submit_s) != 0)
		return -1;
	if (pipe(ready) != 0 || pipe(go) != 0)
		return -1;
	fflush(NULL);
	for (int i = 0; i < nhosts; i++) {
		if (pipe(out + 2 * i) != 0)
			return -1;
		pids[i] = fork();
		if (pids[i] < 0)
			return -1;
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			close(out[2 * i]);
			_exit(run_host(url, i + 1, nslots, ready[1], go[0],
			    out[2 * i + 1]));
		}
		close(out[2 * i + 1]);
	}
	close(ready[1]);
	close(go[0]);
	/* Every host connected and started before any claims. */
	for (int i = 0; i < nhosts; i++)
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "pgclaims: a host did not start\n");
			rc = -1;
			break;
		}
	close(ready[0]);
	close(go[1]);		/* go: every host reads EOF at once */
	for (int i = 0; i < nhosts; i++) {
		struct result r;
		int st;

		if (read(out[2 * i], &r, sizeof r) != (ssize_t)sizeof r) {
			fprintf(stderr, "pgclaims: h%d sent no result\n", i + 1);
			rc = -1;
		} else {
			row->claims += r.claims;
			row->finishes += r.finishes;
			row->errors += r.errors;
			row->per_host[i] = r.claims;
			row->claim_ms += (double)r.claim_ns / 1e6;
			row->finish_ms += (double)r.finish_ns / 1e6;
			if (r.start_ns < start)
				start = r.start_ns;
			if (r.end_ns > end)
				end = r.end_ns;
		}
		close(out[2 * i]);
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			rc = -1;
	}
	if (rc != 0 || end <= start)
		return -1;
	row->secs = (double)(end - start) / 1e9;
	row->rate = (double)row->claims / row->secs;
	row->frate = (double)row->finishes / row->secs;
	/* Mean round trip of one call (claims include the last, empty one
	 * of each slot). */
	row->claim_ms /= (double)(row->claims + nhosts * nslots);
	row->finish_ms /= row->finishes > 0 ? (double)row->finishes : 1;
	return 0;
}

static int
count_arg(const char *s, int max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < 1 || v > max)
		return -1;
	return (int)v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: pgclaims [-j JOBS] [-t TARGETS] [-H HOSTS] "
	    "[-c SLOTS] CLUSTER-DIR\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct row rows[SLOTS_MAX];
	const char *src = getenv("SRCDIR");
	char *script, *url, name[64];
	int njobs = 2000, ntargets = 5, maxhosts = 3, nslots = 2, o;

	while ((o = getopt(argc, argv, "j:t:H:c:")) != -1) {
		switch (o) {
		case 'j': njobs = count_arg(optarg, 10000000); break;
		case 't': ntargets = count_arg(optarg, (int)NNAMES); break;
		case 'H': maxhosts = count_arg(optarg, SLOTS_MAX); break;
		case 'c': nslots = count_arg(optarg, SLOTS_MAX); break;
		default: usage();
		}
		if (njobs < 0 || ntargets < 0 || maxhosts < 0 || nslots < 0)
			usage();
	}
	if (optind != argc - 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	script = xasprintf("%s/tests/pgcluster.sh", src != NULL && *src ?
	    src : ".");
	printf("pgclaims: %d jobs x %d targets, %d claims in flight per "
	    "host, one process per host\n", njobs, ntargets, nslots);
	for (int h = 1; h <= maxhosts; h++) {
		struct row *r = &rows[h - 1];

		snprintf(name, sizeof name, "pgclaims_%ld_h%d", (long)getpid(),
		    h);
		if ((url = createdb(script, argv[optind], name)) == NULL)
			return 1;
		if (measure(url, h, nslots, njobs, ntargets, r) != 0) {
			fprintf(stderr, "pgclaims: H = %d failed\n", h);
			return 1;
		}
		printf("H=%d: submitted in %.2f s; %ld claims, %ld finishes, "
		    "%ld errors in %.2f s; per host:", h, r->submit_s,
		    r->claims, r->finishes, r->errors, r->secs);
		for (int i = 0; i < h; i++)
			printf(" h%d %ld", i + 1, r->per_host[i]);
		printf("%s\n", r->claims == r->targets ? "" :
		    "  (claims != targets submitted!)");
		free(url);
	}
	printf("\n%-6s %10s %10s %8s %12s %12s\n", "hosts", "claims/s",
	    "finish/s", "ratio", "claim ms", "finish ms");
	for (int h = 1; h <= maxhosts; h++) {
		struct row *r = &rows[h - 1];

		printf("%-6d %10.0f %10.0f %8.2f %12.2f %12.2f\n", h, r->rate,
		    r->frate, r->rate / rows[0].rate, r->claim_ms,
		    r->finish_ms);
	}
	free(script);
	return 0;
}
