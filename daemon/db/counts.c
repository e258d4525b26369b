/*
 * Counts of jobs and targets by state, for /metrics, /healthz and the
 * submitter's max_queued, read in constant time whatever the queue holds.
 *
 * They are counted once when the queue opens, then kept by the writer:
 * TEMP triggers on its connection (they exist for that connection only,
 * not in the schema) call kiln_count() for every state a row enters or
 * leaves.  What an operation changes is gathered in `pending`; the
 * writer applies it to the shared counters when its transaction commits
 * and drops it when the operation or the transaction is rolled back, so
 * the counters only ever show committed states.
 */
#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "db-int.h"

enum { KIND_JOB, KIND_TARGET };

static int
state_index(int kind, const unsigned char *s)
{
	enum job_state js;
	enum target_state ts;

	if (s == NULL)
		return -1;
	if (kind == KIND_JOB)
		return job_state_parse((const char *)s, &js) == 0 ? (int)js : -1;
	return target_state_parse((const char *)s, &ts) == 0 ? (int)ts : -1;
}

static int64_t *
delta_of(struct sqlq *q, int kind, int i)
{
	return kind == KIND_JOB ? &q->pending.jobs[i] : &q->pending.targets[i];
}

/* kiln_count(kind, old_state, new_state): NULL for none. */
static void
count_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct sqlq *q = sqlite3_user_data(ctx);
	int kind = sqlite3_value_int(argv[0]), i;

	(void)argc;
	if ((i = state_index(kind, sqlite3_value_text(argv[1]))) >= 0)
		(*delta_of(q, kind, i))--;
	if ((i = state_index(kind, sqlite3_value_text(argv[2]))) >= 0)
		(*delta_of(q, kind, i))++;
	sqlite3_result_null(ctx);
}

static const char triggers[] =
    "CREATE TEMP TRIGGER kc_job_ins AFTER INSERT ON main.jobs "
    "BEGIN SELECT kiln_count(0, NULL, NEW.state); END;"
    "CREATE TEMP TRIGGER kc_job_upd AFTER UPDATE OF state ON main.jobs "
    "WHEN OLD.state IS NOT NEW.state "
    "BEGIN SELECT kiln_count(0, OLD.state, NEW.state); END;"
    "CREATE TEMP TRIGGER kc_job_del AFTER DELETE ON main.jobs "
    "BEGIN SELECT kiln_count(0, OLD.state, NULL); END;"
    "CREATE TEMP TRIGGER kc_t_ins AFTER INSERT ON main.job_targets "
    "BEGIN SELECT kiln_count(1, NULL, NEW.state); END;"
    "CREATE TEMP TRIGGER kc_t_upd AFTER UPDATE OF state ON main.job_targets "
    "WHEN OLD.state IS NOT NEW.state "
    "BEGIN SELECT kiln_count(1, OLD.state, NEW.state); END;"
    "CREATE TEMP TRIGGER kc_t_del AFTER DELETE ON main.job_targets "
    "BEGIN SELECT kiln_count(1, OLD.state, NULL); END;";

/* One table's rows by state, counted (once, at open). */
static int
count_table(sqlite3 *db, const char *sql, int kind, int64_t *out, int n)
{
	sqlite3_stmt *st = NULL;
	int step;

	for (int i = 0; i < n; i++)
		out[i] = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_log(db, "count");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int i = state_index(kind, sqlite3_column_text(st, 0));
		if (i >= 0)
			out[i] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(db, "count");
		return QUEUE_ERROR;
	}
	return 0;
}

int
db_counts_init(struct sqlq *q)
{
	int64_t jobs[JOB_STATE_COUNT], targets[TARGET_STATE_COUNT];

	if (sqlite3_create_function(q->wr, "kiln_count", 3, SQLITE_UTF8 |
	    SQLITE_DIRECTONLY, q, count_fn, NULL, NULL) != SQLITE_OK ||
	    db_exec(q->wr, triggers) != 0)
		return QUEUE_ERROR;
	if (count_table(q->wr, "SELECT state, count(*) FROM jobs GROUP BY "
	    "state", KIND_JOB, jobs, JOB_STATE_COUNT) != 0 ||
	    count_table(q->wr, "SELECT state, count(*) FROM job_targets "
	    "GROUP BY state", KIND_TARGET, targets, TARGET_STATE_COUNT) != 0)
		return QUEUE_ERROR;
	for (int i = 0; i < JOB_STATE_COUNT; i++)
		__atomic_store_n(&q->base.counts.jobs[i], jobs[i], __ATOMIC_RELAXED);
	for (int i = 0; i < TARGET_STATE_COUNT; i++)
		__atomic_store_n(&q->base.counts.targets[i], targets[i],
		    __ATOMIC_RELAXED);
	memset(&q->pending, 0, sizeof q->pending);
	return 0;
}

void
db_counts_commit(struct sqlq *q)
{
	for (int i = 0; i < JOB_STATE_COUNT; i++)
		if (q->pending.jobs[i] != 0)
			__atomic_add_fetch(&q->base.counts.jobs[i],
			    q->pending.jobs[i], __ATOMIC_RELAXED);
	for (int i = 0; i < TARGET_STATE_COUNT; i++)
		if (q->pending.targets[i] != 0)
			__atomic_add_fetch(&q->base.counts.targets[i],
			    q->pending.targets[i], __ATOMIC_RELAXED);
	memset(&q->pending, 0, sizeof q->pending);
}
