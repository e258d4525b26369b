/*
 * daemon/pg/pgconn.c and migrate.c against a real PostgreSQL 15 that the
 * test starts for itself (tests/pgcluster.sh, in a temporary directory):
 * queries with parameters and NULLs, SQL errors with their SQLSTATE, 50
 * queries over 3 connections, LISTEN/NOTIFY, the server killed and
 * restarted under the pool (the query in flight is PG_ELOST, the pool and
 * the listener come back by themselves), a stopped server (PG_EDOWN after
 * the queue timeout, queued queries served once it is back), the close
 * with queries in flight, and the migrations: idempotent, atomic, safe
 * when three processes run them at once, refusing a newer database.
 * Each loop ends with every handle closed: uv_loop_close() == 0.
 */
#include "config.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <libpq-fe.h>
#include <uv.h>

#include "log.h"
#include "pg/migrate.h"
#include "pg/pgconn.h"
#include "unit.h"
#include "util.h"

/* The generated daemon/pg/schema-pg.c. */
extern const struct schema_migration pg_schema_migrations[];
extern const unsigned pg_schema_migration_count;

static char dir[256], url[256], script[1024];
static bool have_cluster;

struct fx {
	uv_loop_t loop;
	uv_timer_t tick;
	struct pgpool *pool;
	bool closed;
	int seq, closed_seq;
	uv_process_t proc;
	bool proc_done;
	int64_t proc_status;
	int hello, notes, hello2, notes2;
	char payload[64];
};

struct res {
	struct fx *f;
	bool done;
	int rc, seq, ntuples;
	uint64_t at;		/* uv_now when done ran */
	char v[4][64];
	bool isnull[4];
	char sqlstate[8];
};

/* Run the loop until cond holds or ms pass; the value of cond. */
#define WAIT(f, cond, ms) __extension__ ({ \
	uint64_t end_ = uv_hrtime() / 1000000 + (ms); \
	while (!(cond) && uv_hrtime() / 1000000 < end_) \
		uv_run(&(f)->loop, UV_RUN_ONCE); \
	(cond); \
})

/* tests/pgcluster.sh CMD DIR [ARG]; its first line of output in out. */
static int
cluster(const char *cmd, const char *arg, char *out, size_t size)
{
	char line[1400];
	FILE *p;
	int st;

	snprintf(line, sizeof line, "bash '%s' %s '%s' %s", script, cmd, dir,
	    arg != NULL ? arg : "");
	if ((p = popen(line, "r")) == NULL)
		return -1;
	if (out != NULL) {
		out[0] = '\0';
		if (fgets(out, (int)size, p) != NULL)
			out[strcspn(out, "\n")] = '\0';
	}
	while (fgets(line, sizeof line, p) != NULL)
		;
	st = pclose(p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void
on_exit_proc(uv_process_t *p, int64_t status, int sig)
{
	struct fx *f = container_of(p, struct fx, proc);

	f->proc_done = true;
	f->proc_status = sig != 0 ? -sig : status;
	uv_close((uv_handle_t *)p, NULL);
}

/* The same, while the loop runs on: the pool sees the server go and
 * come back as it would in production. */
static void
cluster_async(struct fx *f, const char *cmd, const char *arg)
{
	char *args[] = { "bash", script, (char *)cmd, dir, (char *)arg, NULL };
	uv_stdio_container_t io[3] = {
		{ .flags = UV_IGNORE }, { .flags = UV_IGNORE },
		{ .flags = UV_INHERIT_FD, .data.fd = 2 } };
	uv_process_options_t o = { .exit_cb = on_exit_proc, .file = "bash",
	    .args = args, .stdio_count = 3, .stdio = io };

	f->proc_done = false;
	CHECK_INT(uv_spawn(&f->loop, &f->proc, &o), 0);
}

/* One value by a blocking connection: the test's own look at the data. */
static char *
sql1(const char *u, const char *sql)
{
	PGconn *c = PQconnectdb(u);
	PGresult *r = NULL;
	char *v = NULL;

	if (PQstatus(c) == CONNECTION_OK)
		r = PQexec(c, sql);
	if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK &&
	    PQntuples(r) > 0)
		v = strdup(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "  sql1 %s: %s", sql, r != NULL ?
		    PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;	/* only wakes UV_RUN_ONCE for WAIT's clock */
}

static bool
fx_open(struct fx *f, const char *u, unsigned size)
{
	char err[512];

	memset(f, 0, sizeof *f);
	CHECK_INT(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	uv_timer_start(&f->tick, on_tick, 20, 20);
	if (!have_cluster || pgpool_open(&f->pool, &f->loop, u, size, err,
	    sizeof err) != 0) {
		fprintf(stderr, "  no pool: %s\n", have_cluster ? err :
		    "no cluster");
		CHECK(!"pool opened");
		return false;
	}
	return true;
}

static void
on_closed(void *data)
{
	struct fx *f = data;

	f->closed = true;
	f->closed_seq = ++f->seq;
}

static void
fx_end(struct fx *f)
{
	if (f->pool != NULL && !f->closed) {
		pgpool_close(f->pool, on_closed, f);
		CHECK(WAIT(f, f->closed, 10000));
	}
	uv_close((uv_handle_t *)&f->tick, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&f->loop), 0);
}

static void
on_res(void *data, PGresult *res, int rc)
{
	struct res *r = data;

	CHECK(!r->done);
	r->done = true;
	r->rc = rc;
	r->seq = ++r->f->seq;
	r->at = uv_now(&r->f->loop);
	CHECK((res != NULL) == (rc == PG_OK || rc == PG_ESQL));
	if (res != NULL && rc == PG_OK) {
		r->ntuples = PQntuples(res);
		for (int i = 0; i < PQnfields(res) && i < 4 && r->ntuples > 0;
		    i++) {
			snprintf(r->v[i], sizeof r->v[i], "%s",
			    PQgetvalue(res, 0, i));
			r->isnull[i] = PQgetisnull(res, 0, i);
		}
	}
	if (res != NULL && rc == PG_ESQL) {
		const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		snprintf(r->sqlstate, sizeof r->sqlstate, "%s", s ? s : "");
	}
}

static void
query(struct fx *f, struct res *r, const char *sql)
{
	memset(r, 0, sizeof *r);
	r->f = f;
	pgpool_query(f->pool, sql, 0, NULL, on_res, r);
	CHECK(!r->done);	/* never from inside the call */
}

static unsigned
nup(struct fx *f)
{
	struct pgpool_stats st;

	pgpool_stats(f->pool, &st);
	return st.up;
}

static void
on_note(void *data, const char *channel, const char *payload)
{
	struct fx *f = data;

	CHECK((channel == NULL) == (payload == NULL));
	if (channel == NULL) {
		f->hello++;
		return;
	}
	CHECK_STR(channel, "kiln_test");
	f->notes++;
	snprintf(f->payload, sizeof f->payload, "%s", payload);
}

static void
on_note2(void *data, const char *channel, const char *payload)
{
	struct fx *f = data;

	if (channel == NULL)
		f->hello2++;
	else {
		CHECK_STR(channel, "kiln_two");
		CHECK_STR(payload, "");
		f->notes2++;
	}
}

/* A test that dies leaves no server behind (a crash still may). */
static void
stop_at_exit(void)
{
	if (!have_cluster)
		return;
	have_cluster = false;
	cluster("stop", "immediate", NULL, 0);
	unit_rmtmp();
}

static void
on_signal(int sig)
{
	(void)sig;
	exit(99);
}

static void
cluster_starts(void)
{
	const char *src = getenv("SRCDIR");

	atexit(stop_at_exit);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	snprintf(script, sizeof script, "%s/tests/pgcluster.sh",
	    src != NULL && *src ? src : KILN_SRCDIR);
	snprintf(dir, sizeof dir, "%s", unit_tmpdir());
	CHECK_INT(cluster("start", NULL, url, sizeof url), 0);
	CHECK(strncmp(url, "postgresql://", 13) == 0);
	have_cluster = strncmp(url, "postgresql://", 13) == 0;
	log_set_level(LOG_LVL_WARN);
}

/* Bad connection strings are refused at once, without their password. */
static void
conninfo_is_checked(void)
{
	struct pgpool *p = NULL;
	uv_loop_t loop;
	char err[512];

	CHECK_INT(uv_loop_init(&loop), 0);
	CHECK_INT(pgpool_open(&p, &loop, "host=127.0.0.1 nosuchkey=1", 2, err,
	    sizeof err), -1);
	CHECK(strstr(err, "nosuchkey") != NULL);
	CHECK_INT(pgpool_open(&p, &loop,
	    "postgresql://kiln:sekrit@127.0.0.1:1/kiln?nosuch=1", 2, err,
	    sizeof err), -1);
	CHECK(strstr(err, "nosuch") != NULL);
	CHECK(strstr(err, "sekrit") == NULL);
	CHECK_INT(pgpool_open(&p, &loop, "host=127.0.0.1", 0, err,
	    sizeof err), -1);
	CHECK(strstr(err, "0 connections") != NULL);
	CHECK_INT(pgpool_open(&p, &loop, "host=db1,db2 port=1,2,3", 1, err,
	    sizeof err), -1);
	CHECK(strstr(err, "3 ports for 2 hosts") != NULL);
	CHECK_INT(pgpool_open(&p, &loop, "host=127.0.0.1 connect_timeout=x",
	    1, err, sizeof err), -1);
	CHECK(strstr(err, "connect_timeout") != NULL);
	CHECK(p == NULL);
	CHECK_INT(uv_loop_close(&loop), 0);
}

/* Text parameters, copied at the call; NULL both ways; a host name. */
static void
params_and_nulls(void)
{
	char local[300], buf[16] = "41";
	const char *params[3] = { buf, NULL, "h\xc3\xa9llo" };
	struct fx f;
	struct res r, e;
	char *at;

	/* localhost is ::1 and 127.0.0.1, the server listens on the latter:
	 * resolved on the thread pool, tried in turn. */
	snprintf(local, sizeof local, "%s", url);
	if ((at = strstr(local, "127.0.0.1")) != NULL)
		memcpy(at, "localhost", 9);	/* as long */
	if (!fx_open(&f, local, 2))
		goto out;
	memset(&r, 0, sizeof r);
	r.f = &f;
	pgpool_query(f.pool, "SELECT $1::int + 1, $2::text IS NULL, $3::text, "
	    "$2::text", 3, params, on_res, &r);
	strcpy(buf, "99");	/* copied: the query still says 41 */
	CHECK(!r.done);
	query(&f, &e, "SELECT 1 WHERE false");
	CHECK(WAIT(&f, r.done && e.done, 10000));
	CHECK_INT(r.rc, PG_OK);
	CHECK_STR(r.v[0], "42");
	CHECK_STR(r.v[1], "t");
	CHECK_STR(r.v[2], "h\xc3\xa9llo");
	CHECK(r.isnull[3] && !r.isnull[2]);
	CHECK_INT(e.rc, PG_OK);
	CHECK_INT(e.ntuples, 0);
out:
	fx_end(&f);
}

/* Host lists: libpq moves on from a refused port to the next host on a
 * new socket (which may have the old fd number); names among them are
 * resolved by the pool, addresses passed as they are. */
static void
host_lists(void)
{
	const char *lists[] = { "host=127.0.0.1,127.0.0.1",
	    "host=localhost,127.0.0.1", "host=127.0.0.1,localhost" };
	const char *at = strstr(url, "127.0.0.1:");
	char port[16] = "", ci[300];

	if (at != NULL)
		snprintf(port, sizeof port, "%.*s", (int)strcspn(at + 10, "/"),
		    at + 10);
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		struct fx f;
		struct res r;

		snprintf(ci, sizeof ci, "%s port=1,%s user=kiln dbname=kiln",
		    lists[i], port);
		if (!fx_open(&f, ci, 1))
			goto out;
		query(&f, &r, "SELECT inet_server_port()");
		CHECK(WAIT(&f, r.done, 10000));
		CHECK_INT(r.rc, PG_OK);
		CHECK_STR(r.v[0], port);
out:
		fx_end(&f);
	}
}

/* A parameter far larger than the socket's buffers goes out in pieces
 * as the socket takes them (PQflush says 1, the pool waits for
 * writable), and arrives whole. */
static void
big_param(void)
{
	size_t n = 24u << 20;
	char *big = malloc(n + 1), want[32];
	const char *params[1] = { big };
	struct fx f;
	struct res r, s;

	CHECK(big != NULL);
	if (big == NULL || !fx_open(&f, url, 1))
		goto out;
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	memset(&r, 0, sizeof r);
	r.f = &f;
	pgpool_query(f.pool, "SELECT length($1), substr($1, 20000001, 3)", 1,
	    params, on_res, &r);
	free(big);	/* copied */
	big = NULL;
	query(&f, &s, "SELECT 5");
	CHECK(WAIT(&f, s.done, 60000));
	CHECK_INT(r.rc, PG_OK);
	snprintf(want, sizeof want, "%zu", n);
	CHECK_STR(r.v[0], want);
	/* 20000000 % 26 == 20: "uvw" */
	CHECK_STR(r.v[1], "uvw");
	CHECK_INT(s.rc, PG_OK);
	CHECK(r.seq < s.seq);
out:
	free(big);
	fx_end(&f);
}

/* A statement that fails is PG_ESQL with its SQLSTATE; the connection
 * goes on serving. */
static void
sql_errors(void)
{
	struct fx f;
	struct res r[4];

	if (!fx_open(&f, url, 1))
		goto out;
	query(&f, &r[0], "SELECT 1/0");
	query(&f, &r[1], "SELECT * FROM no_such_table");
	query(&f, &r[2], "SELEC 1");
	query(&f, &r[3], "SELECT 2");
	CHECK(WAIT(&f, r[3].done, 10000));
	CHECK_INT(r[0].rc, PG_ESQL);
	CHECK_STR(r[0].sqlstate, "22012");
	CHECK_INT(r[1].rc, PG_ESQL);
	CHECK_STR(r[1].sqlstate, "42P01");
	CHECK_INT(r[2].rc, PG_ESQL);
	CHECK_STR(r[2].sqlstate, "42601");
	CHECK_INT(r[3].rc, PG_OK);
	CHECK_STR(r[3].v[0], "2");
	/* in the order sent: one connection, one query at a time */
	CHECK(r[0].seq < r[1].seq && r[1].seq < r[2].seq &&
	    r[2].seq < r[3].seq);
out:
	fx_end(&f);
}

static int
ndone(const struct res *r, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += r[i].done;
	return k;
}

/* 50 queries on 3 connections: all served, by all three. */
static void
fifty_on_three(void)
{
	static struct res r[50];
	static const char *params[50][1];
	static char num[50][16];
	struct pgpool_stats st;
	struct fx f;
	int pids[3] = { 0 }, npids = 0, ok = 0;

	if (!fx_open(&f, url, 3))
		goto out;
	CHECK(WAIT(&f, nup(&f) == 3, 10000));
	for (int i = 0; i < 50; i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i].f = &f;
		snprintf(num[i], sizeof num[i], "%d", i);
		params[i][0] = num[i];
		pgpool_query(f.pool, "SELECT $1::int, pg_backend_pid(), "
		    "pg_sleep(0.005)", 1, params[i], on_res, &r[i]);
	}
	pgpool_stats(f.pool, &st);
	CHECK_INT(st.busy, 3);
	CHECK_INT(st.queued, 47);
	CHECK(WAIT(&f, ndone(r, 50) == 50, 20000));
	for (int i = 0; i < 50; i++) {
		int pid = atoi(r[i].v[1]), k;

		ok += r[i].done && r[i].rc == PG_OK && atoi(r[i].v[0]) == i;
		for (k = 0; k < npids && pids[k] != pid; k++)
			;
		if (k == npids && npids < 3)
			pids[npids++] = pid;
		else
			CHECK(k < npids);
	}
	CHECK_INT(ok, 50);
	CHECK_INT(npids, 3);
	pgpool_stats(f.pool, &st);
	CHECK_INT(st.queries, 50);
	CHECK_INT(st.errors, 0);
	CHECK_INT(st.queued, 0);
	CHECK_INT(st.size, 3);
out:
	fx_end(&f);
}

static void
listen_notify(void)
{
	struct fx f;
	struct res r, s, t;
	struct pgpool_stats st;

	if (!fx_open(&f, url, 1))
		goto out;
	CHECK_INT(pgpool_listen(f.pool, "Kiln", on_note, &f), -1);
	CHECK_INT(pgpool_listen(f.pool, "kiln;drop", on_note, &f), -1);
	CHECK_INT(pgpool_listen(f.pool, "1kiln", on_note, &f), -1);
	CHECK_INT(pgpool_listen(f.pool, "kiln_test", on_note, &f), 0);
	CHECK(WAIT(&f, f.hello == 1, 10000));
	pgpool_stats(f.pool, &st);
	CHECK(st.listening);
	query(&f, &r, "SELECT pg_notify('kiln_test', 'p1')");
	query(&f, &s, "NOTIFY kiln_other, 'not ours'");
	CHECK(WAIT(&f, f.notes == 1 && s.done, 10000));
	CHECK_STR(f.payload, "p1");
	CHECK_INT(r.rc, PG_OK);
	/* A second channel on the subscribed connection. */
	CHECK_INT(pgpool_listen(f.pool, "kiln_two", on_note2, &f), 0);
	CHECK(WAIT(&f, f.hello2 == 1, 10000));
	query(&f, &t, "NOTIFY kiln_two");
	CHECK(WAIT(&f, f.notes2 == 1, 10000));
	CHECK_INT(f.hello, 1);
	CHECK_INT(f.notes, 1);
out:
	fx_end(&f);
}

/* The server killed (stop -m immediate) and started again under a busy
 * pool with a listener. */
static void
server_restart(void)
{
	struct fx f;
	struct res sleep, r[4], n;
	struct pgpool_stats st;

	if (!fx_open(&f, url, 2))
		goto out;
	CHECK_INT(pgpool_listen(f.pool, "kiln_test", on_note, &f), 0);
	CHECK(WAIT(&f, nup(&f) == 2 && f.hello == 1, 10000));
	query(&f, &sleep, "SELECT pg_sleep(30)");
	WAIT(&f, false, 200);	/* the server is in it */
	cluster_async(&f, "restart", "immediate");
	CHECK(WAIT(&f, sleep.done, 10000));
	CHECK_INT(sleep.rc, PG_ELOST);
	CHECK(WAIT(&f, f.proc_done, 60000));
	CHECK_INT(f.proc_status, 0);
	for (int i = 0; i < 4; i++)
		query(&f, &r[i], "SELECT 1");
	CHECK(WAIT(&f, r[0].done && r[1].done && r[2].done && r[3].done,
	    20000));
	for (int i = 0; i < 4; i++)
		CHECK_INT(r[i].rc, PG_OK);
	/* Subscribed again, and told so: a NOTIFY after the restart
	 * arrives. */
	CHECK(WAIT(&f, f.hello == 2, 20000));
	query(&f, &n, "NOTIFY kiln_test, 'after'");
	CHECK(WAIT(&f, f.notes == 1, 10000));
	CHECK_STR(f.payload, "after");
	CHECK(WAIT(&f, nup(&f) == 2, 20000));
	pgpool_stats(f.pool, &st);
	CHECK(st.reconnects >= 3);	/* two query connections, LISTEN */
out:
	fx_end(&f);
}

/* No server: PG_EDOWN after the queue timeout, not before; a query
 * queued while down is served when the server is back. */
static void
server_stopped(void)
{
	struct fx f;
	struct res r, s;
	struct pgpool_stats st;
	uint64_t t0;

	if (!fx_open(&f, url, 2))
		goto out;
	pgpool_set_queue_timeout(f.pool, 300);
	CHECK(WAIT(&f, nup(&f) == 2, 10000));
	cluster_async(&f, "stop", "fast");
	CHECK(WAIT(&f, f.proc_done && !pgpool_up(f.pool), 60000));
	CHECK_INT(f.proc_status, 0);
	t0 = uv_now(&f.loop);
	query(&f, &r, "SELECT 1");
	CHECK(WAIT(&f, r.done, 10000));
	CHECK_INT(r.rc, PG_EDOWN);
	CHECK(r.at - t0 >= 300);
	pgpool_set_queue_timeout(f.pool, 30000);
	query(&f, &s, "SELECT 3");
	WAIT(&f, false, 300);	/* the pool tries, and fails */
	pgpool_stats(f.pool, &st);
	CHECK_INT(st.queued, 1);
	CHECK_INT(st.up, 0);
	CHECK(!s.done);
	cluster_async(&f, "start", NULL);
	CHECK(WAIT(&f, s.done, 30000));
	CHECK_INT(s.rc, PG_OK);
	CHECK_STR(s.v[0], "3");
	CHECK(WAIT(&f, f.proc_done, 60000));
	CHECK_INT(f.proc_status, 0);
out:
	fx_end(&f);
}

static void
on_res_close(void *data, PGresult *res, int rc)
{
	struct res *r = data;

	on_res(data, res, rc);
	pgpool_close(r->f->pool, on_closed, r->f);
}

/* The query in flight finishes, the queued ones are PG_EDOWN, then
 * closed runs; also when closed from a completion or while connecting. */
static void
close_in_flight(void)
{
	struct fx f;
	struct res r[3];

	if (!fx_open(&f, url, 1))
		goto out;
	CHECK(WAIT(&f, nup(&f) == 1, 10000));
	query(&f, &r[0], "SELECT pg_sleep(0.3), 7");
	query(&f, &r[1], "SELECT 8");
	query(&f, &r[2], "SELECT 9");
	pgpool_close(f.pool, on_closed, &f);
	CHECK(!r[0].done && !r[1].done && !f.closed);
	CHECK(WAIT(&f, f.closed, 10000));
	CHECK_INT(r[0].rc, PG_OK);
	CHECK_STR(r[0].v[1], "7");
	CHECK_INT(r[1].rc, PG_EDOWN);
	CHECK_INT(r[2].rc, PG_EDOWN);
	CHECK(f.closed_seq > r[0].seq && f.closed_seq > r[2].seq);
	fx_end(&f);

	/* closed from a completion, a query still queued */
	if (!fx_open(&f, url, 1))
		goto out;
	memset(r, 0, sizeof r);
	r[0].f = r[1].f = &f;
	pgpool_query(f.pool, "SELECT 1", 0, NULL, on_res_close, &r[0]);
	pgpool_query(f.pool, "SELECT 2", 0, NULL, on_res, &r[1]);
	CHECK(WAIT(&f, f.closed, 10000));
	CHECK_INT(r[0].rc, PG_OK);
	CHECK_INT(r[1].rc, PG_EDOWN);
	fx_end(&f);

	/* closed while still connecting, with a listener */
	if (!fx_open(&f, url, 3))
		goto out;
	CHECK_INT(pgpool_listen(f.pool, "kiln_test", on_note, &f), 0);
	pgpool_close(f.pool, on_closed, &f);
	CHECK_INT(pgpool_listen(f.pool, "kiln_test", on_note, &f), -1);
	CHECK(WAIT(&f, f.closed, 10000));
out:
	fx_end(&f);
}

static int
count_rows(const char *u, const char *sql)
{
	char *v = sql1(u, sql);
	int n = v != NULL ? atoi(v) : -1;

	free(v);
	return n;
}

/* The real migrations, twice; then three processes at once. */
static void
migrate_real(void)
{
	char u[300], u3[300], err[512];
	int n = (int)pg_schema_migration_count;
	pid_t pids[3];

	if (!have_cluster || cluster("createdb", "kiln_m1", u, sizeof u) != 0 ||
	    cluster("createdb", "kiln_m3", u3, sizeof u3) != 0) {
		CHECK(!"databases made");
		return;
	}
	CHECK(n >= 1);
	CHECK_INT(pg_migrate(u, pg_schema_migrations, (unsigned)n, err,
	    sizeof err), 0);
	CHECK_INT(pg_migrate(u, pg_schema_migrations, (unsigned)n, err,
	    sizeof err), 0);
	CHECK_INT(count_rows(u, "SELECT count(*) FROM kiln_schema"), n);
	CHECK_INT(count_rows(u, "SELECT max(version) FROM kiln_schema"), n);
	/* Three processes, as three hosts starting at once.  This test runs
	 * before any pool resolved a name: a fork after that would carry
	 * libuv's pool thread's resolver state, lost to valgrind's eyes. */
	fflush(NULL);
	for (int i = 0; i < 3; i++)
		if ((pids[i] = fork()) == 0)
			_exit(pg_migrate(u3, pg_schema_migrations, (unsigned)n,
			    err, sizeof err) == 0 ? 0 : (fprintf(stderr,
			    "  %s\n", err), 1));
	for (int i = 0; i < 3; i++) {
		int st = -1;

		CHECK(pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	CHECK_INT(count_rows(u3, "SELECT count(*) FROM kiln_schema"), n);
}

/* Migrations of our own: each in its own transaction, refusing a newer
 * or a foreign database; errors name the server, not the password. */
static void
migrate_rules(void)
{
	static const struct schema_migration m[] = {
		{ 1, "001_a.sql", "CREATE TABLE a (x int);\n" },
		{ 2, "002_b.sql", "CREATE TABLE b (y int);\n"
		    "INSERT INTO b VALUES (1);\n" },
		{ 3, "003_bad.sql", "CREATE TABLE c (z int);\nSELECT 1/0;\n" },
	};
	const struct schema_migration other[] = {
		{ 1, "001_other.sql", "CREATE TABLE o (x int);\n" },
		{ 2, "002_b.sql", "CREATE TABLE b (y int);\n" },
		{ 3, "003_o.sql", "CREATE TABLE p (x int);\n" } };
	char u[300], err[512];

	CHECK_INT(pg_migrate("postgresql://kiln:sekrit@127.0.0.1:1/kiln", m, 1,
	    err, sizeof err), -1);
	CHECK(strstr(err, "host=127.0.0.1 port=1 dbname=kiln") != NULL);
	CHECK(strstr(err, "sekrit") == NULL);
	CHECK_INT(pg_migrate("host=127.0.0.1 bogus=1", m, 1, err, sizeof err),
	    -1);
	CHECK(strstr(err, "bogus") != NULL);
	if (!have_cluster || cluster("createdb", "kiln_m2", u, sizeof u) != 0) {
		CHECK(!"database made");
		return;
	}
	CHECK_INT(pg_migrate(u, m, 1, err, sizeof err), 0);
	CHECK_INT(count_rows(u, "SELECT max(version) FROM kiln_schema"), 1);
	CHECK_INT(pg_migrate(u, m, 2, err, sizeof err), 0);
	CHECK_INT(pg_migrate(u, m, 2, err, sizeof err), 0);
	CHECK_INT(count_rows(u, "SELECT count(*) FROM b"), 1);
	CHECK_INT(count_rows(u, "SELECT count(*) FROM kiln_schema WHERE "
	    "applied_at > 1700000000"), 2);
	/* a binary older than the database */
	CHECK_INT(pg_migrate(u, m, 1, err, sizeof err), -1);
	CHECK(strstr(err, "version 2, newer than this kilnd's 1") != NULL);
	CHECK(strstr(err, "dbname=kiln_m2") != NULL);
	/* a failing migration leaves nothing of itself */
	CHECK_INT(pg_migrate(u, m, 3, err, sizeof err), -1);
	CHECK(strstr(err, "003_bad.sql") != NULL);
	CHECK(strstr(err, "division by zero") != NULL);
	CHECK_INT(count_rows(u, "SELECT count(*) FROM pg_tables WHERE "
	    "tablename = 'c'"), 0);
	CHECK_INT(count_rows(u, "SELECT max(version) FROM kiln_schema"), 2);
	/* another program's migrations */
	CHECK_INT(pg_migrate(u, other, 3, err, sizeof err), -1);
	CHECK(strstr(err, "not this kilnd's database") != NULL);
	CHECK(strstr(err, "001_other.sql") != NULL);
	CHECK_INT(count_rows(u, "SELECT count(*) FROM pg_tables WHERE "
	    "tablename = 'p'"), 0);
	/* the lock is free again: a plain session takes it at once */
	CHECK_INT(count_rows(u, "SELECT pg_try_advisory_lock("
	    "7739836656251005037)::int"), 1);
}

static void
cluster_stops(void)
{
	if (have_cluster)
		CHECK_INT(cluster("stop", "fast", NULL, 0), 0);
	have_cluster = false;
}

/* migrate_real first: see there. */
UNIT_MAIN(TEST(cluster_starts), TEST(migrate_real), TEST(migrate_rules),
    TEST(conninfo_is_checked), TEST(params_and_nulls), TEST(host_lists),
    TEST(big_param), TEST(sql_errors), TEST(fifty_on_three),
    TEST(listen_notify), TEST(server_restart), TEST(server_stopped),
    TEST(close_in_flight), TEST(cluster_stops))
