/*
 * The hosts of the farm on PostgreSQL: a host's beat (one call of
 * kiln_host_beat(), schema/pg/008_refusals.sql, on the writes' connection
 * like every write) and the list of every host (one SELECT on a read
 * connection).  The hosts table is 001_init.sql's.  And the farm's
 * signing key (kiln_farm, 001_init.sql), before the loop runs; and the
 * changes and cancels other hosts tell (LISTEN kiln_queue and kiln_cancel
 * on the reads' pool).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pg-int.h"
#include "util.h"
#include "xmalloc.h"

#define Q(base) ((struct pgq *)(base))

void
pg_host_beat(struct queue *base, const struct queue_host *h,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "host beat", NULL, done, data);
	char name[QUEUE_HOST_MAX], b1[PGQ_INT_BUF], b2[PGQ_INT_BUF],
	    b3[PGQ_INT_BUF], b4[PGQ_INT_BUF], b5[PGQ_INT_BUF];
	const char *params[9];

	/* pgq_write() copies the parameters. */
	snprintf(name, sizeof name, "%s", h->name);
	params[0] = name;
	params[1] = h->base_url != NULL ? h->base_url : "";
	params[2] = pgq_int(b1, h->slots);
	params[3] = pgq_int(b2, h->running);
	params[4] = h->version != NULL ? h->version : "";
	params[5] = pgq_int(b3, h->started_at);
	params[6] = pgq_int(b4, util_now_ms());
	params[7] = h->toolchains;	/* NULL: the last one stays */
	/* Others judge this host alive by its lease (011_host_lease.sql). */
	params[8] = pgq_int(b5, queue_lease_ms(base));
	pgq_write(c, "kiln_host_beat($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9,
	    params);
}

static int
hosts_parse(struct pgq_call *c, const PGresult *res)
{
	int rows = PQntuples(res);
	struct queue_host *v = NULL;

	if (rows > 0)
		v = xcalloc((size_t)rows, sizeof *v);
	for (int r = 0; r < rows; r++) {
		char *url = pgq_get_str(res, r, 1), *version =
		    pgq_get_str(res, r, 4);

		/* Names are host_names (conf.h: at most 63 bytes). */
		snprintf(v[r].name, sizeof v[r].name, "%s",
		    PQgetvalue(res, r, 0));
		v[r].base_url = url != NULL ? url : xstrdup("");
		v[r].version = version != NULL ? version : xstrdup("");
		v[r].slots = (unsigned)pgq_get_int(res, r, 2);
		v[r].running = (unsigned)pgq_get_int(res, r, 3);
		v[r].started_at = pgq_get_int(res, r, 5);
		v[r].seen_at = pgq_get_int(res, r, 6);
		v[r].toolchains = pgq_get_str(res, r, 7);
		v[r].lease_ms = pgq_is_null(res, r, 8) ? 0 :
		    pgq_get_int(res, r, 8);
	}
	*(struct queue_host **)c->out[0] = v;
	*(size_t *)c->out[1] = (size_t)rows;
	return 0;
}

void
pg_hosts(struct queue *base, struct queue_host **out, size_t *n,
    queue_done done, void *data)
{
	struct pgq_call *c = pgq_call(Q(base), "hosts", hosts_parse, done,
	    data);

	*out = NULL;
	*n = 0;
	c->out[0] = out;
	c->out[1] = n;
	/* name is COLLATE "C": byte order, as SQLite's. */
	pgq_read(c, "SELECT name, base_url, slots, running, version, "
	    "started_at, heartbeat_at, toolchains, lease_ms FROM hosts "
	    "ORDER BY name "
	    "LIMIT " QUEUE_STR(QUEUE_HOSTS_MAX), 0, NULL);
}

/*
 * On the synchronous connection, before queue_start().  Two statements:
 * when another host records its key at the same moment, the INSERT
 * waits for its commit and does nothing, and only a later statement's
 * snapshot sees the key it recorded.
 */
int
pg_farm_key(struct queue *base, const char *key, char **recorded)
{
	struct pgq *q = Q(base);
	const char *params[1] = { key };
	PGresult *res;
	int rc;

	*recorded = NULL;
	if ((rc = pgq_sync_exec(q, "farm key", "INSERT INTO kiln_farm "
	    "(key, value) VALUES ('public_key', $1) ON CONFLICT (key) DO "
	    "NOTHING", 1, params, &res)) != 0)
		return rc;
	PQclear(res);
	if ((rc = pgq_sync_exec(q, "farm key", "SELECT value FROM kiln_farm "
	    "WHERE key = 'public_key'", 0, NULL, &res)) != 0)
		return rc;
	if (PQntuples(res) == 1 && !pgq_is_null(res, 0, 0))
		*recorded = xstrdup(PQgetvalue(res, 0, 0));
	else
		log_error("queue: farm key: an answer not understood");
	PQclear(res);
	return *recorded != NULL ? 0 : QUEUE_ERROR;
}

/* --- change notifications (005_fence.sql's NOTIFY kiln_queue) ----- */

static void
on_changed_idle(uv_idle_t *h)
{
	struct pgq *q = h->data;

	uv_idle_stop(h);
	q->changed_due = false;
	if (!q->stopping && q->changed != NULL)
		q->changed(q->changed_data);
}

/* A NOTIFY, or (channel NULL) a new subscription after which the caller
 * looks for itself: one changed() at the next iteration for all that
 * came in this one. */
static void
notified(void *data, const char *channel, const char *payload)
{
	struct pgq *q = data;

	(void)channel;
	(void)payload;
	if (q->stopping || q->changed == NULL || q->changed_due)
		return;
	q->changed_due = true;
	uv_idle_start(&q->idle, on_changed_idle);
}

/*
 * A cancel of a job with targets running (kiln_cancel, 010_cancel.sql):
 * told at once, the payload being the job's id.  A new subscription
 * (channel NULL) has nothing to look for: a cancel missed meanwhile is
 * told by the heartbeats of its targets (QUEUE_ECANCELED).
 */
static void
cancel_notified(void *data, const char *channel, const char *payload)
{
	struct pgq *q = data;
	long long id;
	char *end;

	if (channel == NULL || payload == NULL || q->stopping ||
	    q->canceled == NULL)
		return;
	errno = 0;
	id = strtoll(payload, &end, 10);
	if (errno != 0 || end == payload || *end != '\0' || id <= 0) {
		log_warn("queue: a cancel notification not understood: "
		    "\"%.40s\"", payload);
		return;
	}
	q->canceled(q->canceled_data, (int64_t)id);
}

void
pgq_subscribe(struct pgq *q)
{
	if (!q->started || q->stopping)
		return;
	if (!q->subscribed && q->changed != NULL) {
		if (pgpool_listen(q->rd, "kiln_queue", notified, q) == 0)
			q->subscribed = true;
		else
			log_error("queue: cannot listen for changes; other "
			    "hosts' work is seen at the next poll");
	}
	if (!q->cancels_subscribed && q->canceled != NULL) {
		if (pgpool_listen(q->rd, "kiln_cancel", cancel_notified,
		    q) == 0)
			q->cancels_subscribed = true;
		else
			log_error("queue: cannot listen for cancels; other "
			    "hosts' cancels are seen at the next heartbeat");
	}
}

void
pg_watch(struct queue *base, void (*changed)(void *), void *data)
{
	struct pgq *q = (struct pgq *)base;

	q->changed = changed;
	q->changed_data = data;
	pgq_subscribe(q);
}

void
pg_watch_cancels(struct queue *base, void (*canceled)(void *, int64_t),
    void *data)
{
	struct pgq *q = (struct pgq *)base;

	q->canceled = canceled;
	q->canceled_data = data;
	pgq_subscribe(q);
}

bool
pg_shared(const struct queue *base)
{
	(void)base;
	return true;
}

bool
pg_reachable(const struct queue *base)
{
	const struct pgq *q = (const struct pgq *)base;

	return q->wr != NULL && q->rd != NULL && pgpool_up(q->wr) &&
	    pgpool_up(q->rd);
}
