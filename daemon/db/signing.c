/*
 * Signing bookkeeping: the succeeded jobs waiting for their SHA256SUMS,
 * signature and provenance, and recording those once the signer made them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "db-int.h"
#include "xmalloc.h"

int
db_unsigned_jobs(struct sqlq *q, int64_t **ids, size_t *n)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int step;

	*ids = NULL;
	*n = 0;
	/* The partial index jobs_unsigned, oldest first, bounded. */
	if (sqlite3_prepare_v2(q->db, "SELECT id FROM jobs WHERE "
	    "sign_pending = 1 ORDER BY id LIMIT " QUEUE_STR(QUEUE_UNSIGNED_MAX),
	    -1, &st, NULL) != SQLITE_OK) {
		db_log(q->db, "unsigned jobs");
		return QUEUE_ERROR;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*ids = xreallocarray(*ids, cap, sizeof **ids);
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		db_log(q->db, "unsigned jobs");
		free(*ids);
		*ids = NULL;
		*n = 0;
		return QUEUE_ERROR;
	}
	return 0;
}

int
db_set_signed(struct sqlq *q, int64_t job_id, const char *sums,
    const char *sig, const char *prov)
{
	sqlite3_stmt *st = NULL;
	int rc = QUEUE_ERROR;

	if (sqlite3_prepare_v2(q->wr, "UPDATE jobs SET sums_sha256 = ?2, "
	    "sig_sha256 = ?3, prov_sha256 = ?4, sign_pending = 0 WHERE id = ?1 "
	    "AND state = 'succeeded' AND expired_at IS NULL", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, job_id);
		sqlite3_bind_text(st, 2, sums, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, sig, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, prov, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = sqlite3_changes(q->wr) == 1 ? 0 : QUEUE_ENOTFOUND;
	}
	if (rc == QUEUE_ERROR)
		db_log(q->wr, "set signed");
	sqlite3_finalize(st);
	return rc;
}
