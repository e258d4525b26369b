/*
 * The hosts of the farm in the queue (queue_host_beat, queue_hosts): a
 * beat inserts or replaces the row of its name with the queue's clock as
 * seen_at, and its toolchain map when it tells one; the list is every
 * host by name.  Part of the conformance suite: written against queue.h
 * only (and the fixtures).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/db/queue.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "queuefix.h"
#include "qsync.h"
#include "unit.h"

static struct queue_host
host(const char *name, const char *url, unsigned slots, unsigned running,
    int64_t started_at)
{
	struct queue_host h;

	memset(&h, 0, sizeof h);
	snprintf(h.name, sizeof h.name, "%s", name);
	h.base_url = (char *)url;
	h.version = (char *)"1.2.3";
	h.slots = slots;
	h.running = running;
	h.started_at = started_at;
	return h;
}

/* A queue that never had a beat lists no host. */
static void
test_no_hosts(void)
{
	struct queue *q = fresh_queue();
	struct queue_host *hs = (struct queue_host *)1;
	size_t n = 1;

	if (q == NULL)
		return;
	CHECK_INT(qs_hosts(q, &hs, &n), 0);
	CHECK_INT(n, 0);
	queue_hosts_free(hs, n);
	qs_close(q);
}

/* Beating twice under one name updates its one row: every field is the
 * last beat's, and seen_at is the queue's clock at each, not the
 * caller's. */
static void
test_beat_twice_one_row(void)
{
	struct queue *q = fresh_queue();
	struct queue_host h = host("build1", "http://127.0.0.1:8080", 4, 1,
	    1700000000000), *hs = NULL;
	size_t n = 0;
	int64_t before, after, first = 0;

	if (q == NULL)
		return;
	h.seen_at = 5;		/* not read */
	before = util_now_ms();
	CHECK_INT(qs_host_beat(q, &h), 0);
	after = util_now_ms();
	CHECK_INT(qs_hosts(q, &hs, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(hs[0].name, "build1");
		CHECK_STR(hs[0].base_url, "http://127.0.0.1:8080");
		CHECK_STR(hs[0].version, "1.2.3");
		CHECK_INT(hs[0].slots, 4);
		CHECK_INT(hs[0].running, 1);
		CHECK_INT(hs[0].started_at, 1700000000000);
		CHECK(hs[0].seen_at >= before && hs[0].seen_at <= after);
		first = hs[0].seen_at;
	}
	queue_hosts_free(hs, n);

	h = host("build1", "https://build1.example.com", 8, 0, 1700000009000);
	h.version = (char *)"1.2.4";
	CHECK_INT(qs_host_beat(q, &h), 0);
	after = util_now_ms();
	hs = NULL;
	CHECK_INT(qs_hosts(q, &hs, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(hs[0].name, "build1");
		CHECK_STR(hs[0].base_url, "https://build1.example.com");
		CHECK_STR(hs[0].version, "1.2.4");
		CHECK_INT(hs[0].slots, 8);
		CHECK_INT(hs[0].running, 0);
		CHECK_INT(hs[0].started_at, 1700000009000);
		CHECK(hs[0].seen_at >= first && hs[0].seen_at <= after);
	}
	queue_hosts_free(hs, n);
	qs_close(q);
}

/* Two names are two rows, listed by name whatever order they beat in. */
static void
test_two_names_two_rows(void)
{
	struct queue *q = fresh_queue();
	struct queue_host z = host("zeta", "http://10.0.0.2:8080", 2, 2, 2000),
	    a = host("alpha", "http://10.0.0.1:8080", 1, 0, 1000), *hs = NULL;
	size_t n = 0;

	if (q == NULL)
		return;
	CHECK_INT(qs_host_beat(q, &z), 0);
	CHECK_INT(qs_host_beat(q, &a), 0);
	CHECK_INT(qs_hosts(q, &hs, &n), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(hs[0].name, "alpha");
		CHECK_STR(hs[0].base_url, "http://10.0.0.1:8080");
		CHECK_INT(hs[0].slots, 1);
		CHECK_INT(hs[0].started_at, 1000);
		CHECK_STR(hs[1].name, "zeta");
		CHECK_STR(hs[1].base_url, "http://10.0.0.2:8080");
		CHECK_INT(hs[1].slots, 2);
		CHECK_INT(hs[1].running, 2);
		CHECK_INT(hs[1].started_at, 2000);
	}
	queue_hosts_free(hs, n);
	qs_close(q);
}

struct fired {
	int n, rc;
};

static void
on_done(void *data, int rc)
{
	struct fired *f = data;

	f->n++;
	f->rc = rc;
}

/*
 * The beat copies what it is given: the caller's strings may go at once
 * (ASan sees a use after free otherwise).  The list completes after its
 * call returned, never inside it.
 */
static void
test_beat_copies_and_list_completes_later(void)
{
	struct queue *q = fresh_queue();
	struct queue_host h = host("copied", NULL, 3, 0, 42), *hs = NULL;
	struct fired beat = { 0, -9 }, list = { 0, -9 };
	size_t n = 0;

	if (q == NULL)
		return;
	qs_attach(q);
	h.base_url = xstrdup("http://copied:1");
	h.version = xstrdup("9.9");
	queue_host_beat(q, &h, on_done, &beat);
	memset(h.base_url, 'X', strlen(h.base_url));
	free(h.base_url);
	free(h.version);
	memset(h.name, 'Y', sizeof h.name - 1);
	while (beat.n == 0)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(beat.n, 1);
	CHECK_INT(beat.rc, 0);
	queue_hosts(q, &hs, &n, on_done, &list);
	CHECK_INT(list.n, 0);
	while (list.n == 0)
		uv_run(qs_loop(), UV_RUN_ONCE);
	CHECK_INT(list.n, 1);
	CHECK_INT(list.rc, 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(hs[0].name, "copied");
		CHECK_STR(hs[0].base_url, "http://copied:1");
		CHECK_STR(hs[0].version, "9.9");
		CHECK_INT(hs[0].slots, 3);
	}
	queue_hosts_free(hs, n);
	qs_close(q);
}

/* The toolchain map: a beat writes it, a beat without one (NULL) keeps
 * the last; a host that never told has none. */
static void
test_toolchains_kept_until_told(void)
{
	struct queue *q = fresh_queue();
	struct queue_host h = host("h1", "http://h1:1", 1, 0, 1),
	    g = host("h2", "http://h2:1", 1, 0, 1), *hs = NULL;
	size_t n = 0;

	if (q == NULL)
		return;
	h.toolchains = (char *)"go1.22.12; cgo linux/amd64";
	CHECK_INT(qs_host_beat(q, &h), 0);
	CHECK_INT(qs_host_beat(q, &g), 0);
	h.toolchains = NULL;
	CHECK_INT(qs_host_beat(q, &h), 0);
	CHECK_INT(qs_hosts(q, &hs, &n), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(hs[0].toolchains, "go1.22.12; cgo linux/amd64");
		CHECK(hs[1].toolchains == NULL);
	}
	queue_hosts_free(hs, n);
	h.toolchains = (char *)"no Go; cgo none";
	CHECK_INT(qs_host_beat(q, &h), 0);
	hs = NULL;
	CHECK_INT(qs_hosts(q, &hs, &n), 0);
	if (n == 2)
		CHECK_STR(hs[0].toolchains, "no Go; cgo none");
	queue_hosts_free(hs, n);
	qs_close(q);
}

UNIT_MAIN(
	TEST(test_no_hosts),
	TEST(test_toolchains_kept_until_told),
	TEST(test_beat_twice_one_row),
	TEST(test_two_names_two_rows),
	TEST(test_beat_copies_and_list_completes_later)
)
