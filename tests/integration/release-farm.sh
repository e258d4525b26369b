#!/bin/bash
# The release row on a farm of two kilnd hosts on one PostgreSQL queue
# that do NOT share a store directory:
#   1. h1 builds the job's one target and is paused (POST
#      /v1/admin/pause) while the build runs, so that it finishes it but
#      claims nothing more;
#   2. h2, started afterwards, claims the release row, lacks h1's blob,
#      and fails the row with a reason that names the file and tells the
#      operator that the hosts of a farm that package releases share one
#      store directory.
# Needs root: initdb and pg_ctl run as the postgres user.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/farmlib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }

PGD=$(mktemp -d /tmp/kiln-relfarm-pg.XXXXXX)
relfarm_cleanup() {
	local i
	for i in 1 2; do
		if [ -n "${HPID[$i]:-}" ] && kill -0 "${HPID[$i]}" 2>/dev/null; then
			kill -KILL "${HPID[$i]}" 2>/dev/null || true
			wait "${HPID[$i]}" 2>/dev/null || true
		fi
	done
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap relfarm_cleanup EXIT

PGURL=$("$PGCLUSTER" start "$PGD")
farm_keys 2
start_host 1 'workers = 1' || { fail "h1 does not start"; exit 1; }
ok "h1 on PostgreSQL"

mkdir -p "$T/src"
echo MIT >"$T/src/LICENSE"
REPO=$(make_repo src "$T/src")
on 1
# The build runs long enough for the pause to land while it runs (the
# pause is one request; the build's end does not wait for the sleep's
# full length to be any kind of deadline of the test).
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"cache\": false,
    \"targets\": [\"linux/amd64\"], \"archives\": true,
    \"recipe\": {\"kind\": \"command\",
    \"command\": \"sleep 10; date +%s%N > /out/app\"}}"
expect_status 201 "a job with archives is accepted by h1"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$ID" linux/amd64 running 120
api POST /v1/admin/pause
expect_status 200 "h1 paused while its build runs"
wait_target_state "$ID" linux/amd64 succeeded 120
expect_json '.targets[-1].target' release "the release row is queued"
expect_json '.targets[-1].state' queued "h1, paused, leaves it queued"

start_host 2 'workers = 1' || { fail "h2 does not start"; exit 1; }
on 2
wait_job "$ID" 120
expect_json .state failed "the release fails on h2, which lacks h1's blob"
expect_json '.targets[-1].host' h2 "h2 claimed the release row"
err=$(printf '%s' "$BODY" | jq -r '.targets[-1].error')
case $err in
"linux/amd64/app is not in this host's store ("*"); the hosts of a farm that packages releases share one store directory")
	ok "the reason names the file and the farm's shared store: $err" ;;
*)	fail "release error: $err" ;;
esac
finish
