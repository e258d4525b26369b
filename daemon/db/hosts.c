/*
 * The hosts table on SQLite (schema/012_hosts_table.sql): a host's beat
 * (a write, through the writer like every write) and the list of hosts
 * (a read on the loop's connection, completed later like every read).
 * On SQLite there is one host, but GET /v1/hosts answers the same on
 * both backends.  And the farm's signing key (schema/013_farm.sql),
 * recorded before the writer starts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "db-int.h"
#include "log.h"
#include "util.h"
#include "writer.h"
#include "xmalloc.h"

struct beat_req {
	queue_done done;
	void *data;
	struct queue_host h;	/* its strings copied */
};

/* On the writer thread.  seen_at is the clock's when the write runs,
 * not when it was called: it says when the row was last written. */
static int
beat_op(struct sqlq *q, void *arg)
{
	struct beat_req *r = arg;
	sqlite3_stmt *st;
	int rc;

	if ((rc = db_begin(q)) != 0)
		return rc;
	rc = QUEUE_ERROR;
	/* A new toolchain map (a reload, a restart with another C
	 * toolchain or Go) makes the host's refusals void: it may build
	 * those targets now (refusals.c). */
	if ((st = db_stmt(q, "DELETE FROM target_refusals WHERE host = ?1 "
	    "AND ?2 IS NOT NULL AND ?2 IS NOT (SELECT toolchains FROM hosts "
	    "WHERE name = ?1)")) == NULL)
		return db_end(q, QUEUE_ERROR);
	sqlite3_bind_text(st, 1, r->h.name, -1, SQLITE_STATIC);
	db_bind_text_or_null(st, 2, r->h.toolchains);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_log(q->wr, "host beat");
		sqlite3_reset(st);
		return db_end(q, QUEUE_ERROR);
	}
	sqlite3_reset(st);
	/* A beat without a toolchain map leaves the last one. */
	if ((st = db_stmt(q, "INSERT INTO hosts (name, base_url, slots, "
	    "running, version, started_at, heartbeat_at, toolchains) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO UPDATE SET "
	    "base_url = excluded.base_url, slots = excluded.slots, "
	    "running = excluded.running, version = excluded.version, "
	    "started_at = excluded.started_at, "
	    "heartbeat_at = excluded.heartbeat_at, "
	    "toolchains = coalesce(excluded.toolchains, hosts.toolchains)")) ==
	    NULL)
		return db_end(q, QUEUE_ERROR);
	sqlite3_bind_text(st, 1, r->h.name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->h.base_url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, r->h.slots);
	sqlite3_bind_int64(st, 4, r->h.running);
	sqlite3_bind_text(st, 5, r->h.version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->h.started_at);
	sqlite3_bind_int64(st, 7, util_now_ms());
	db_bind_text_or_null(st, 8, r->h.toolchains);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_log(q->wr, "host beat");
	sqlite3_reset(st);
	return db_end(q, rc);
}

/* On the loop, once the beat is durable or failed. */
static void
beat_done(void *arg, int rc)
{
	struct beat_req *r = arg;

	if (r->done != NULL)
		r->done(r->data, rc);
	free(r->h.base_url);
	free(r->h.version);
	free(r->h.toolchains);
	free(r);
}

void
sqlite_host_beat(struct queue *base, const struct queue_host *h,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	struct beat_req *r = xcalloc(1, sizeof *r);

	r->done = done;
	r->data = data;
	r->h = *h;
	r->h.name[sizeof r->h.name - 1] = '\0';
	r->h.base_url = xstrdup(h->base_url != NULL ? h->base_url : "");
	r->h.version = xstrdup(h->version != NULL ? h->version : "");
	r->h.toolchains = h->toolchains != NULL ? xstrdup(h->toolchains) :
	    NULL;
	if (q->writer == NULL) {
		/* As every write after queue_stop() completed: the caller's
		 * bug, and it fails rather than vanish. */
		log_error("queue: a write without a running writer");
		beat_done(r, QUEUE_ERROR);
		return;
	}
	writer_submit(q->writer, beat_op, beat_done, r);
}

/* On the loop's connection: every host by name, at most
 * QUEUE_HOSTS_MAX (the primary key's order: byte order). */
static int
db_hosts(struct sqlq *q, struct queue_host **out, size_t *nout)
{
	sqlite3_stmt *st = NULL;
	struct queue_host *v = NULL;
	size_t n = 0;
	int step;

	if (sqlite3_prepare_v2(q->db, "SELECT name, base_url, slots, running, "
	    "version, started_at, heartbeat_at, toolchains FROM hosts "
	    "ORDER BY name LIMIT " QUEUE_STR(QUEUE_HOSTS_MAX), -1, &st,
	    NULL) != SQLITE_OK) {
		db_log(q->db, "hosts");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct queue_host *h;
		const char *name = (const char *)sqlite3_column_text(st, 0);
		char *url = db_col_strdup(st, 1), *version = db_col_strdup(st, 4);

		v = xreallocarray(v, n + 1, sizeof *v);
		h = &v[n++];
		/* Names are host_names (conf.h: at most 63 bytes). */
		snprintf(h->name, sizeof h->name, "%s", name ? name : "");
		h->base_url = url != NULL ? url : xstrdup("");
		h->version = version != NULL ? version : xstrdup("");
		h->slots = (unsigned)sqlite3_column_int64(st, 2);
		h->running = (unsigned)sqlite3_column_int64(st, 3);
		h->started_at = sqlite3_column_int64(st, 5);
		h->seen_at = sqlite3_column_int64(st, 6);
		h->toolchains = db_col_strdup(st, 7);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "hosts");
		queue_hosts_free(v, n);
		return QUEUE_ERROR;
	}
	*out = v;
	*nout = n;
	return 0;
}

void
sqlite_hosts(struct queue *base, struct queue_host **out, size_t *n,
    queue_done done, void *data)
{
	struct sqlq *q = (struct sqlq *)base;
	int rc = !db_read_open(q) ? QUEUE_ERROR : db_hosts(q, out, n);

	if (rc != 0) {
		*out = NULL;
		*n = 0;
	}
	db_read_later(q, done, data, rc);
}

/* Before queue_start(): the write connection is this thread's. */
int
sqlite_farm_key(struct queue *base, const char *key, char **recorded)
{
	struct sqlq *q = (struct sqlq *)base;
	sqlite3_stmt *st;
	int step;

	*recorded = NULL;
	if ((st = db_stmt(q, "INSERT OR IGNORE INTO kiln_farm (key, value) "
	    "VALUES ('public_key', ?)")) == NULL)
		return QUEUE_ERROR;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		db_log(q->wr, "farm key");
		return QUEUE_ERROR;
	}
	if ((st = db_stmt(q, "SELECT value FROM kiln_farm "
	    "WHERE key = 'public_key'")) == NULL)
		return QUEUE_ERROR;
	if ((step = sqlite3_step(st)) == SQLITE_ROW)
		*recorded = xstrdup((const char *)sqlite3_column_text(st, 0));
	else
		db_log(q->wr, "farm key");
	sqlite3_reset(st);
	return *recorded != NULL ? 0 : QUEUE_ERROR;
}
