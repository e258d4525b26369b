#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

/* A counter with up to three label values, kept in a list per family. */
struct counter {
	char *l[3];
	uint64_t n;
	struct counter *next;
};

/* Build seconds: a few seconds warm, minutes cold (measured here). */
static const double build_buckets[] = { 1, 5, 10, 30, 60, 120, 300, 600,
	1800, 3600 };
static const double fetch_buckets[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10, 30, 60, 300 };
#define NB_BUILD (sizeof build_buckets / sizeof *build_buckets)
#define NB_FETCH (sizeof fetch_buckets / sizeof *fetch_buckets)

struct histogram {
	char *label;		/* target, or NULL */
	uint64_t buckets[16];	/* cumulative counts per bound */
	uint64_t count;
	double sum;
	struct histogram *next;
};

static struct counter *http, *builds, *hooks, *callbacks;
static struct histogram *build_hist, *fetch_hist;
static uint64_t cache_hits, cache_misses, signs_ok, signs_failed;
static uint64_t fetches_ok, fetches_failed;
static uint64_t superseded;
static int64_t results_waiting;
static uint64_t store_blobs, store_bytes;
static bool store_known;
static struct store *store_source;

static struct counter *
counter(struct counter **list, const char *a, const char *b, const char *c)
{
	const char *v[3] = { a, b, c };
	struct counter *k;

	for (k = *list; k; k = k->next) {
		bool same = true;
		for (int i = 0; i < 3 && same; i++)
			same = (k->l[i] == NULL && v[i] == NULL) ||
			    (k->l[i] && v[i] && strcmp(k->l[i], v[i]) == 0);
		if (same)
			return k;
	}
	k = xcalloc(1, sizeof *k);
	for (int i = 0; i < 3; i++)
		k->l[i] = v[i] ? xstrdup(v[i]) : NULL;
	k->next = *list;
	*list = k;
	return k;
}

static void
observe(struct histogram **list, const char *label, const double *bounds,
    size_t nb, double v)
{
	struct histogram *h;

	for (h = *list; h; h = h->next)
		if ((h->label == NULL && label == NULL) ||
		    (h->label && label && strcmp(h->label, label) == 0))
			break;
	if (h == NULL) {
		h = xcalloc(1, sizeof *h);
		h->label = label ? xstrdup(label) : NULL;
		h->next = *list;
		*list = h;
	}
	for (size_t i = 0; i < nb; i++)
		if (v <= bounds[i])
			h->buckets[i]++;
	h->count++;
	h->sum += v;
}

void
metrics_http(const char *method, const char *route, unsigned status)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT",
	    "DELETE", "PATCH", "OPTIONS" };
	const char *m = "other";
	char st[8];

	/* Clients choose the method: only known ones become label values,
	 * so the number of series stays bounded. */
	for (size_t i = 0; i < sizeof known / sizeof *known; i++)
		if (strcmp(method, known[i]) == 0)
			m = known[i];
	snprintf(st, sizeof st, "%u", status);
	counter(&http, m, route ? route : "(none)", st)->n++;
}

void
metrics_build(const char *target, const char *state, double seconds)
{
	counter(&builds, target, state, NULL)->n++;
	observe(&build_hist, target, build_buckets, NB_BUILD, seconds);
}

void
metrics_fetch(bool ok, double seconds)
{
	if (ok)
		fetches_ok++;
	else
		fetches_failed++;
	observe(&fetch_hist, NULL, fetch_buckets, NB_FETCH, seconds);
}

void
metrics_hook(const char *forge, const char *result)
{
	counter(&hooks, forge, result, NULL)->n++;
}

void
metrics_cache(bool hit)
{
	if (hit)
		cache_hits++;
	else
		cache_misses++;
}

void
metrics_sign(bool ok)
{
	if (ok)
		signs_ok++;
	else
		signs_failed++;
}

void
metrics_store(uint64_t blobs, uint64_t bytes)
{
	store_blobs = blobs;
	store_bytes = bytes;
	store_known = true;
}

void
metrics_store_source(struct store *s)
{
	store_source = s;
}

void
metrics_callback(const char *result)
{
	counter(&callbacks, result, NULL, NULL)->n++;
}

void
metrics_superseded(void)
{
	superseded++;
}

void
metrics_results_waiting(int delta)
{
	results_waiting += delta;
}

/* A label value: \, " and newline escaped (the text format's rule). */
static void
label(struct sbuf *b, const char *name, const char *v)
{
	sbuf_adds(b, name);
	sbuf_add(b, "=\"", 2);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sbuf_addc(b, '\\');
		if (*v == '\n') {
			sbuf_add(b, "\\n", 2);
			continue;
		}
		sbuf_addc(b, *v);
	}
	sbuf_addc(b, '"');
}

void
metrics_head(struct sbuf *b, const char *name, const char *type,
    const char *help)
{
	sbuf_adds(b, "# HELP ");
	sbuf_adds(b, name);
	sbuf_addc(b, ' ');
	sbuf_adds(b, help);
	sbuf_adds(b, "\n# TYPE ");
	sbuf_adds(b, name);
	sbuf_addc(b, ' ');
	sbuf_adds(b, type);
	sbuf_addc(b, '\n');
}

static void
value(struct sbuf *b, uint64_t v)
{
	sbuf_addc(b, ' ');
	sbuf_addi(b, (int64_t)v);
	sbuf_addc(b, '\n');
}

static void
counters(struct sbuf *b, const char *name, const char *help,
    const struct counter *list, const char *const names[3])
{
	metrics_head(b, name, "counter", help);
	for (const struct counter *k = list; k; k = k->next) {
		bool first = true;
		sbuf_adds(b, name);
		for (int i = 0; i < 3; i++) {
			if (names[i] == NULL || k->l[i] == NULL)
				continue;
			sbuf_addc(b, first ? '{' : ',');
			first = false;
			label(b, names[i], k->l[i]);
		}
		if (!first)
			sbuf_addc(b, '}');
		value(b, k->n);
	}
}

static void
histograms(struct sbuf *b, const char *name, const char *help,
    const char *lname, const struct histogram *list, const double *bounds,
    size_t nb)
{
	char num[64];

	metrics_head(b, name, "histogram", help);
	for (const struct histogram *h = list; h; h = h->next) {
		for (size_t i = 0; i <= nb; i++) {
			sbuf_adds(b, name);
			sbuf_adds(b, "_bucket{");
			if (h->label) {
				label(b, lname, h->label);
				sbuf_addc(b, ',');
			}
			if (i < nb)
				snprintf(num, sizeof num, "%g", bounds[i]);
			else
				snprintf(num, sizeof num, "+Inf");
			label(b, "le", num);
			sbuf_addc(b, '}');
			value(b, i < nb ? h->buckets[i] : h->count);
		}
		sbuf_adds(b, name);
		sbuf_adds(b, "_sum");
		if (h->label) {
			sbuf_addc(b, '{');
			label(b, lname, h->label);
			sbuf_addc(b, '}');
		}
		snprintf(num, sizeof num, " %.3f\n", h->sum);
		sbuf_adds(b, num);
		sbuf_adds(b, name);
		sbuf_adds(b, "_count");
		if (h->label) {
			sbuf_addc(b, '{');
			label(b, lname, h->label);
			sbuf_addc(b, '}');
		}
		value(b, h->count);
	}
}

void
metrics_render(struct sbuf *b)
{
	static const char *const http_l[3] = { "method", "route", "status" };
	static const char *const build_l[3] = { "target", "state", NULL };
	static const char *const hook_l[3] = { "forge", "result", NULL };
	static const char *const cb_l[3] = { "result", NULL, NULL };

	counters(b, "kiln_http_requests_total", "HTTP requests answered, by "
	    "method, route pattern and status.", http, http_l);
	counters(b, "kiln_builds_total", "Builds that ran (not cache hits), by "
	    "target and end state.", builds, build_l);
	histograms(b, "kiln_build_duration_seconds", "Wall-clock time of builds "
	    "that ran, by target.", "target", build_hist, build_buckets,
	    NB_BUILD);
	metrics_head(b, "kiln_fetches_total", "counter", "Repository fetches, by "
	    "result.");
	sbuf_adds(b, "kiln_fetches_total{result=\"ok\"}");
	value(b, fetches_ok);
	sbuf_adds(b, "kiln_fetches_total{result=\"failed\"}");
	value(b, fetches_failed);
	histograms(b, "kiln_fetch_duration_seconds", "Time of repository "
	    "fetches.", NULL, fetch_hist, fetch_buckets, NB_FETCH);
	counters(b, "kiln_webhook_deliveries_total", "Webhook deliveries, by "
	    "forge and result.", hooks, hook_l);
	metrics_head(b, "kiln_cache_lookups_total", "counter", "Build cache lookups, by "
	    "result.");
	sbuf_adds(b, "kiln_cache_lookups_total{result=\"hit\"}");
	value(b, cache_hits);
	sbuf_adds(b, "kiln_cache_lookups_total{result=\"miss\"}");
	value(b, cache_misses);
	metrics_head(b, "kiln_signatures_total", "counter", "Jobs signed (SHA256SUMS, "
	    "minisig, provenance), by result.");
	sbuf_adds(b, "kiln_signatures_total{result=\"ok\"}");
	value(b, signs_ok);
	sbuf_adds(b, "kiln_signatures_total{result=\"failed\"}");
	value(b, signs_failed);
	counters(b, "kiln_callbacks_total", "Result callback attempts, by "
	    "result.", callbacks, cb_l);
	metrics_head(b, "kiln_superseded_results_total", "counter", "Builds "
	    "whose result was discarded: their target had been given to "
	    "another run (a lease that ran out).");
	sbuf_adds(b, "kiln_superseded_results_total");
	value(b, superseded);
	metrics_head(b, "kiln_results_waiting", "gauge", "Builds ended "
	    "whose result waits for the database to take it (retried).");
	sbuf_adds(b, "kiln_results_waiting");
	value(b, results_waiting > 0 ? (uint64_t)results_waiting : 0);
	/* Counted at start, then kept as blobs are stored and swept. */
	if (store_source != NULL && store_size(store_source, &store_blobs,
	    &store_bytes))
		store_known = true;
	if (store_known) {
		metrics_head(b, "kiln_store_blobs", "gauge", "Blobs in the "
		    "content-addressed store.");
		sbuf_adds(b, "kiln_store_blobs");
		value(b, store_blobs);
		metrics_head(b, "kiln_store_bytes", "gauge", "Bytes in the "
		    "content-addressed store.");
		sbuf_adds(b, "kiln_store_bytes");
		value(b, store_bytes);
	}
}

static void
free_counters(struct counter **list)
{
	for (struct counter *k = *list, *n; k; k = n) {
		n = k->next;
		for (int i = 0; i < 3; i++)
			free(k->l[i]);
		free(k);
	}
	*list = NULL;
}

static void
free_histograms(struct histogram **list)
{
	for (struct histogram *h = *list, *n; h; h = n) {
		n = h->next;
		free(h->label);
		free(h);
	}
	*list = NULL;
}

void
metrics_reset(void)
{
	free_counters(&http);
	free_counters(&builds);
	free_counters(&hooks);
	free_counters(&callbacks);
	free_histograms(&build_hist);
	free_histograms(&fetch_hist);
	cache_hits = cache_misses = signs_ok = signs_failed = 0;
	fetches_ok = fetches_failed = 0;
	superseded = 0;
	results_waiting = 0;
	store_blobs = store_bytes = 0;
	store_known = false;
	store_source = NULL;
}
