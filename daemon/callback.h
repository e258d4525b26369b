/*
 * Result callbacks: when a job with a notify URL ends (a succeeded job
 * once it is signed), kilnd POSTs the job's JSON there, retrying with
 * backoff for notify_timeout seconds.  The state lives in the jobs table,
 * so a callback due when kilnd stopped is sent after the next start.
 *
 * Signing: X-Kiln-Signature-256 is "sha256=" and the HMAC-SHA256 of the
 * body with the job's project's notify_secret when it goes to the
 * project's own notify_url, else [kilnd] notify_secret, else the POST
 * goes unsigned.  Never with a project's
 * webhook secret: a receiver holding that key could sign pushes and
 * start builds (conf.c refuses a notify_secret equal to one).
 *
 * Each POST is made by curl(1) in a child process, so the loop never
 * blocks on a receiver and https needs no TLS client in kilnd.  The URL
 * is someone else's input, so curl runs with --globoff (one request, the
 * path taken literally), --proto =http,https, --max-redirs 0 and no -L,
 * reading no curlrc (-q), with headers and body from private files (the
 * signature stays out of argv).  Before that kilnd checks where it goes
 * (callback-url.h): a host name is resolved off the loop, every address
 * it has is checked, and curl is pinned to those with --resolve, so a
 * second lookup (DNS rebinding) cannot send it elsewhere.  A refused
 * destination fails the callback at once, without retries.
 *
 * At most notify_slots callbacks are in flight; the rest wait in the
 * jobs table, oldest due first.  An attempt (resolution included) has
 * notify_deadline seconds, enforced by kilnd: then curl is killed and the
 * attempt fails like any other, so a receiver that never answers holds
 * one slot for at most that long.
 */
#ifndef KILN_CALLBACK_H
#define KILN_CALLBACK_H

#include <uv.h>

#include "conf.h"
#include "db/queue.h"

struct callbacks;

struct callbacks *callbacks_new(uv_loop_t *loop, struct queue *q,
    const struct kiln_config *conf);
/* Stop: callbacks in flight are killed (and sent again after the next
 * start); then done(data). */
void callbacks_close(struct callbacks *cb, void (*done)(void *), void *data);

/* The signature header's value for body with key (for tests too). */
void callback_sign(char out[7 + 65], const char *key, const void *body,
    size_t len);
/*
 * The key a job's callback to `url` is signed with, or NULL: the
 * project's notify_secret only when url is the project's own notify_url
 * (a URL a submitter chose must not collect bodies signed with the key
 * the project's receiver trusts), else the farm's notify_secret.
 */
const char *callback_key(const struct kiln_config *c, const char *project,
    const char *url);

#endif
