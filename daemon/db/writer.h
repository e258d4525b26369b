/*
 * The one database writer (inside daemon/db/ only).  Every write to the
 * queue runs on this thread, on the one connection it owns; the loop
 * thread only hands it operations and later receives their results.
 *
 * Group commit: the operations that arrive while a transaction commits
 * form the next transaction.  Each runs inside a savepoint of it, so one
 * that fails is rolled back alone; the transaction commits once, with one
 * fsync, and only then is any operation's completion delivered: nothing
 * is reported done before it is durable.
 */
#ifndef KILN_DB_WRITER_H
#define KILN_DB_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

struct sqlq;
struct writer;

/* Runs on the writer thread inside the open transaction: 0 or a QUEUE_E*
 * code (then what it wrote is rolled back). */
typedef int (*writer_fn)(struct sqlq *q, void *arg);
/* Runs on the loop thread once the operation's transaction committed
 * (rc as writer_fn returned it) or failed (QUEUE_ERROR). */
typedef void (*writer_done)(void *arg, int rc);

/*
 * Start the thread.  `db` is the connection it owns from now on; nothing
 * else may use it until writer_close() completed.
 */
int writer_start(struct writer **out, uv_loop_t *loop, struct sqlq *q,
    sqlite3 *db);
/* Queue an operation (loop thread).  `arg` must live until done runs. */
void writer_submit(struct writer *w, writer_fn fn, writer_done done,
    void *arg);
/* Operations submitted and not yet completed. */
size_t writer_inflight(const struct writer *w);
/* Transactions committed and operations run since the start. */
uint64_t writer_commits(const struct writer *w);
uint64_t writer_ops(const struct writer *w);
/*
 * Run what is queued, deliver every completion, stop the thread and
 * close the loop handle; then closed(data).  Nothing should be submitted
 * after this is called: what is (a completion's next write) fails with
 * QUEUE_ERROR, after the writes submitted before it.
 */
void writer_close(struct writer *w, void (*closed)(void *), void *data);

#endif
