/*
 * Result callbacks: when a job with a notify URL ends (a succeeded job
 * once it is signed), kilnd POSTs the job's JSON there, signed with
 * X-Kiln-Signature-256 ("sha256=" HMAC-SHA256 of the body with the
 * project's first secret, or notify_secret), retrying with backoff for
 * notify_timeout seconds.  The state lives in the jobs table, so a
 * callback due when kilnd stopped is sent after the next start.
 *
 * Each POST is made by curl(1) in a child process: the loop never blocks
 * on a slow receiver, and https works without a TLS client in kilnd.
 */
#ifndef KILN_CALLBACK_H
#define KILN_CALLBACK_H

#include <uv.h>

#include "conf.h"
#include "queue.h"

struct callbacks;

struct callbacks *callbacks_new(uv_loop_t *loop, struct queue *q,
    const struct kiln_config *conf);
/* Stop: callbacks in flight are killed (and sent again after the next
 * start); then done(data). */
void callbacks_close(struct callbacks *cb, void (*done)(void *), void *data);

/* The signature header's value for body with key (for tests too). */
void callback_sign(char out[7 + 65], const char *key, const void *body,
    size_t len);

#endif
