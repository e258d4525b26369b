/*
 * What kilnd signs for a job whose every target succeeded (kilnd(8),
 * "Results and logs"): the SHA256SUMS text, the trusted comment
 * of its minisign signature, and the in-toto Statement v1 with an SLSA
 * Provenance v1 predicate in a DSSE envelope.  Pure functions of the job
 * and the key: no I/O, callable from any thread.
 */
#ifndef KILN_ATTEST_H
#define KILN_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "sbuf.h"
#include "sign.h"

#define ATTEST_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define ATTEST_BUILD_TYPE "urn:kiln:buildtype:cross-compile:v1"

/*
 * "<sha256>  <os>_<arch>[_<variant>]/<file>\n" for every artifact, sorted
 * by name: the format `sha256sum -c` reads.  NULL when an artifact has no
 * digest.  *len gets the length.
 */
char *attest_sums(const struct job *job, size_t *len);
/* The minisign trusted comment (one line) for the job's sums. */
char *attest_trusted_comment(const struct job *job, int64_t now_ms);
/* The in-toto Statement v1 (compact JSON) for the job. */
char *attest_statement(const struct job *job, const char *builder_id);
/* DSSE's pre-authentication encoding of (type, body) appended to out. */
void attest_pae(struct sbuf *out, const char *type, const void *body,
    size_t len);
/* The DSSE envelope (one JSON line, with its newline) around payload. */
char *attest_envelope(const struct sign_key *k, const char *payload,
    size_t len);

#endif
