#!/bin/bash
# A write that PostgreSQL committed but whose answer was lost (the
# connection broke before the reply: tests/integration/dropreply.py
# relays h1's connections and loses one answer).  kilnd cannot know it
# was done and tries again; its result must count once:
# - a finish: the retry finds the target ended; the result is ours,
#   stored once, and the job is signed once;
# - a release at the stop: the target's attempt went back by one and
#   another host (h2) claims it at once with the same attempt; h1's retry
#   must not give h2's build back (h2 builds it once, never "given to
#   another run").
# Needs root: initdb and pg_ctl run as the postgres user.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
for tool in git python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
PSQL=$(command -v psql || echo "$PGBIN/psql")

PGD=$(mktemp -d /tmp/kiln-pglost.XXXXXX)
RPID= H2PID=
pglost_cleanup() {
	[ -n "$H2PID" ] && kill -KILL "$H2PID" 2>/dev/null
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap pglost_cleanup EXIT

q() {
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$PGURL" -c "$1"
}

PGURL=$("$PGCLUSTER" start "$PGD")
PGPORT=$(cat "$PGD/port")
ARM=$T/arm
python3 "$SRCDIR/tests/integration/dropreply.py" "$T/relay.port" "$PGPORT" "$ARM" \
    >"$T/relay.log" 2>&1 &
RPID=$!
for _ in $(seq 1 100); do
	[ -s "$T/relay.port" ] && break
	sleep 0.1
done
RPORT=$(cat "$T/relay.port") || { fail "the relay did not start: $(cat "$T/relay.log")"; exit 1; }
RURL=${PGURL/:$PGPORT\//:$RPORT/}

"$KILND" --keygen -d "$T/key" >/dev/null
for i in 1 2; do
	mkdir -p "$T/s$i"
	chmod 0750 "$T/s$i"
	install -m 0600 "$T/key/kiln.key" "$T/s$i/kiln.key"
	install -m 0644 "$T/key/kiln.pub" "$T/s$i/kiln.pub"
done
printf '[kilnd]\nallow_local_repos = yes\ndatabase = %s\nhost_name = h1\n' "$RURL" \
    >"$T/h1.conf"
printf 'workers = 1\ntarget_lease = 20\ndrain_timeout = 1\n' >>"$T/h1.conf"
printf '[kilnd]\nallow_local_repos = yes\ndatabase = %s\nhost_name = h2\n' "$PGURL" \
    >"$T/h2.conf"
printf 'workers = 1\ntarget_lease = 20\n' >>"$T/h2.conf"

STATE=$T/s1
start_kilnd -c "$T/h1.conf" || { fail "h1 does not start"; exit 1; }
H1LOG=$KLOG
mkdir -p "$T/src"
echo lost >"$T/src/README"
REPO=$(make_repo src "$T/src")
job() {
	post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	    \"cache\": false, \"recipe\": {\"kind\": \"command\",
	    \"command\": \"sleep $1; echo \$KILN_TARGET > /out/ok\"}}"
	expect_status 201 "a job is accepted"
	ID=$(printf '%s' "$BODY" | jq -r .id)
}

# The finish's answer is lost.
job 2
wait_target_state "$ID" linux/amd64 running 60 || exit 1
echo kiln_finish_build >"$ARM"
wait_job "$ID" 60
expect_json .state succeeded "the job whose finish's answer was lost succeeds"
expect_json '.targets[0].attempt' 1 "at attempt 1"
# The job reads succeeded as soon as the lost write's commit is visible;
# h1's retry, which finds it so, comes a moment later.
stored_before() {
	grep -q "job $ID linux/amd64: the result was stored before the connection broke" \
	    "$H1LOG"
}
for _ in $(seq 1 100); do
	stored_before && break
	sleep 0.1
done
stored_before && ok "h1 finds its result stored" ||
	fail "no stored-before line: $(tail -5 "$H1LOG")"
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$ID/SHA256SUMS.minisig"
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
expect_status 200 "the job is signed"
api GET /metrics
printf '%s\n' "$BODY" | grep -q '^kiln_signatures_total{result="ok"} 1$' &&
	ok "signed once" || fail "$(printf '%s\n' "$BODY" | grep signatures_total)"
printf '%s\n' "$BODY" | grep -q '^kiln_superseded_results_total 0$' &&
	ok "nothing counted superseded" ||
	fail "$(printf '%s\n' "$BODY" | grep superseded_results_total)"

# The release's answer is lost, and h2 takes the target at once.
job 30
wait_target_state "$ID" linux/amd64 running 60 || exit 1
H2LOG=$T/kilnd.h2.log
"$KILND" -c "$T/h2.conf" -l 127.0.0.1:0 -d "$T/s2" 2>"$H2LOG" &
H2PID=$!
for _ in $(seq 1 200); do
	grep -q 'listening on' "$H2LOG" && break
	sleep 0.05
done
H2URL=$(grep -o 'listening on http://[0-9.:]*' "$H2LOG" | sed 's/listening on //')
echo kiln_release >"$ARM"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "h1 stops cleanly" || fail "h1 exit $KEXIT"
grep -q "dropreply: an answer lost" "$T/relay.log" ||
	fail "the release's answer was not lost: $(cat "$T/relay.log")"
grep -q "job $ID linux/amd64: the target was given back before the connection broke" \
    "$H1LOG" && ok "h1 finds the target given back" ||
	fail "no given-back line: $(grep "job $ID" "$H1LOG" | tail -5)"
URL=$H2URL
wait_job "$ID" 90
expect_json .state succeeded "h2 builds it"
expect_json '.targets[0].host' h2 "on h2"
! grep -q "given to another run" "$H2LOG" &&
	ok "h2's build was not taken away" ||
	fail "h2's build was taken away: $(grep 'given to another run' "$H2LOG")"
[ "$(grep -c "job $ID linux/amd64: building" "$H2LOG")" = 1 ] &&
	ok "h2 built it once" ||
	fail "h2 built it $(grep -c "job $ID linux/amd64: building" "$H2LOG") times"
kill -TERM "$H2PID"
H2X=0
wait "$H2PID" || H2X=$?
H2PID=
[ "$H2X" = 0 ] && ok "h2 stops cleanly" || fail "h2 exit $H2X"
finish
