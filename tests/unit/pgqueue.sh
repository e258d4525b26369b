#!/bin/bash
# tests/unit/pgqueue.sh: the queue's conformance suite on PostgreSQL.
# The same test programs as for SQLite (test_queue, test_queue_life,
# test_queue_async, test_queue_reads, test_queue_filters, test_queue_hosts,
# test_queue_refuse: written against daemon/db/queue.h only, but for
# test_queue_filters' query plans) run with
# KILN_TEST_PG_DIR naming a throwaway cluster (tests/pgcluster.sh), so
# that their tests/unit/queuefix.h opens each queue on a fresh database of
# it.  Fails when any of them fails, or when the cluster cannot start.
#
# make check sets SRCDIR and BUILDDIR; by hand, run it from the build
# directory: SRCDIR=/path/to/kiln bash /path/to/kiln/tests/unit/pgqueue.sh
set -euo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$PWD}"
BUILDDIR=$(cd "$BUILDDIR" && pwd)
PROGRAMS="test_queue test_queue_life test_queue_async test_queue_reads
    test_queue_filters test_queue_hosts test_queue_refuse"

# The server's programs run as the postgres user: root (CI) or postgres
# can start them, nobody else.
if [ "$(id -u)" -ne 0 ] && [ "$(id -un)" != postgres ]; then
	echo "SKIP: PostgreSQL tests need root (or the postgres user)"
	exit 77
fi
for t in $PROGRAMS; do
	[ -x "$BUILDDIR/tests/unit/$t" ] || {
		echo "FAIL: $BUILDDIR/tests/unit/$t not built (make check builds it)"
		exit 1
	}
done

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-pgq.XXXXXX")
cleanup() {
	if [ -f "$T/pg/data/PG_VERSION" ]; then
		bash "$SRCDIR/tests/pgcluster.sh" stop "$T" immediate || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

if ! url=$(bash "$SRCDIR/tests/pgcluster.sh" start "$T"); then
	echo "FAIL: the PostgreSQL cluster did not start"
	exit 1
fi
echo "# cluster at $url"

export KILN_TEST_PG_DIR=$T SRCDIR
nfail=0
for t in $PROGRAMS; do
	if "$BUILDDIR/tests/unit/$t"; then
		echo "ok - $t on PostgreSQL"
	else
		echo "FAIL: $t on PostgreSQL"
		nfail=$((nfail + 1))
	fi
done
[ "$nfail" -eq 0 ]
