/*
 * A job as JSON, the one representation the API answers with and result
 * callbacks carry (kiln-api(7)).
 */
#ifndef KILN_JOBJSON_H
#define KILN_JOBJSON_H

#include "job.h"
#include "sbuf.h"

/* Append the job, its targets and their artifacts as one JSON object. */
void job_render_json(struct sbuf *b, const struct job *job);

#endif
