/*
 * Counters and histograms for GET /metrics (Prometheus text format 0.0.4).
 * Everything here is touched on the loop thread only: work done in the
 * thread pool is counted in its after-work callback.  Gauges that are
 * read when scraped (jobs by state, queue depth, memory, fds) are added
 * by api/metrics.c.
 */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "sbuf.h"

/* One answered HTTP request; route is the pattern ("/v1/jobs/{id}"),
 * NULL when nothing matched. */
void metrics_http(const char *method, const char *route, unsigned status);
/* A build that ran (not a cache hit): its target, end state, seconds. */
void metrics_build(const char *target, const char *state, double seconds);
void metrics_fetch(bool ok, double seconds);
/* A webhook delivery: forge and what came of it ("accepted", ...). */
void metrics_hook(const char *forge, const char *result);
void metrics_cache(bool hit);
void metrics_sign(bool ok);
void metrics_store(uint64_t blobs, uint64_t bytes);
/* The store whose size the gauges show as it is now (store_size), from
 * its count at start on; before that, the last sweep's figures. */
struct store;
void metrics_store_source(struct store *s);
void metrics_callback(const char *result);
/* A build's result refused by the queue's fencing: its run was given to
 * another (kiln_superseded_results_total). */
void metrics_superseded(void);
/* A build's result starts (+1) or stops (-1) waiting for the database
 * to take it (kiln_results_waiting). */
void metrics_results_waiting(int delta);

/* The "# HELP" and "# TYPE" lines of a metric family. */
void metrics_head(struct sbuf *b, const char *name, const char *type,
    const char *help);
/* Append every counter and histogram. */
void metrics_render(struct sbuf *b);
/* Forget everything (tests). */
void metrics_reset(void);

#endif
