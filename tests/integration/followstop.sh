#!/bin/bash
# Followers of a target still queued on a farm (one paused host on
# PostgreSQL: nobody claims it) wait for its claim; a SIGTERM answers
# them at once with 503 "kilnd is stopping" (api.h gone_at_stop), and
# kilnd exits without waiting shutdown_timeout for them.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
PGD=$(mktemp -d /tmp/kiln-followstop.XXXXXX)
followstop_cleanup() {
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap followstop_cleanup EXIT

PGURL=$("$PGCLUSTER" start "$PGD")
printf '[kilnd]\npaused = yes\nallow_local_repos = yes\ndatabase = %s\nshutdown_timeout = 30\n' \
    "$PGURL" >"$T/k.conf"
start_kilnd -c "$T/k.conf" || exit 1
mkdir -p "$T/src"
echo x >"$T/src/README"
REPO=$(make_repo src "$T/src")
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"cache\": false, \"recipe\": {\"kind\": \"command\",
    \"command\": \"echo ok > /out/ok\"}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
pids=
for i in 1 2 3; do
	curl -s -o "$T/f$i.out" -w '%{http_code}' \
	    "$URL/v1/jobs/$ID/targets/linux_amd64/log?follow=1" >"$T/f$i.code" &
	pids="$pids $!"
done
sleep 3
t0=$(date +%s)
stop_kilnd TERM
took=$(($(date +%s) - t0))
# shellcheck disable=SC2086
wait $pids || true
[ "$KEXIT" = 0 ] && [ "$took" -lt 10 ] && ok "kilnd stops at once ($took s)" ||
	fail "kilnd exit $KEXIT after $took s (shutdown_timeout 30)"
for i in 1 2 3; do
	[ "$(cat "$T/f$i.code")" = 503 ] && grep -q "kilnd is stopping" "$T/f$i.out" &&
		ok "follower $i: 503 kilnd is stopping" ||
		fail "follower $i: $(cat "$T/f$i.code") $(cat "$T/f$i.out")"
done
! grep -q "Sanitizer\|runtime error" "$KLOG" && ok "no sanitizer report" ||
	fail "sanitizer: $(grep -A5 'Sanitizer\|runtime error' "$KLOG" | head -20)"
finish
