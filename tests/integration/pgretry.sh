#!/bin/bash
# A build that ends while PostgreSQL is down loses nothing: one kilnd on a
# throwaway server (tests/pgcluster.sh) builds a target that sleeps 3 s;
# the server is stopped while it runs, so its result cannot be stored when
# it ends.  kilnd says the result waits and tries again; once the server
# is back the result of that one run is stored: the job succeeds at
# attempt 1 (nothing was built again), it is signed, and its files verify
# with minisign -V and sha256sum -c.
# Needs root: initdb and pg_ctl run as the postgres user.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
for tool in git minisign sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
PSQL=$(command -v psql || echo "$PGBIN/psql")

# The cluster's directory is short (its Unix socket path must fit).
PGD=$(mktemp -d /tmp/kiln-pgretry.XXXXXX)
pgretry_cleanup() {
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap pgretry_cleanup EXIT

q() {
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$PGURL" -c "$1"
}

PGURL=$("$PGCLUSTER" start "$PGD")
# A lease long enough that the outage below stays inside it.
printf '[kilnd]\nallow_local_repos = yes\ndatabase = %s\nworkers = 1\ntarget_lease = 20\n' \
    "$PGURL" >"$T/k.conf"
start_kilnd -c "$T/k.conf" || { fail "kilnd does not start on PostgreSQL"; exit 1; }

mkdir -p "$T/src"
echo retry >"$T/src/README"
REPO=$(make_repo src "$T/src")
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"cache\": false, \"recipe\": {\"kind\": \"command\",
    \"command\": \"sleep 3; echo \$KILN_TARGET \$\$ > /out/ok\"}}"
expect_status 201 "a job is accepted"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$ID" linux/amd64 running 60 || exit 1
TID=$(q "SELECT id FROM job_targets WHERE job_id = $ID")

# The server goes away while the build runs.
"$PGCLUSTER" stop "$PGD" fast >/dev/null || fail "pgcluster.sh stop fast"
msg="job $ID linux/amd64: the result waits for the database: it cannot be reached; retried"
for _ in $(seq 1 300); do
	grep -qF "$msg" "$KLOG" && break
	sleep 0.1
done
grep -q "job $ID linux/amd64: succeeded" "$KLOG" &&
	ok "the build ended while PostgreSQL was down" ||
	fail "no end of the build in the log: $(tail -5 "$KLOG")"
grep -qF "$msg" "$KLOG" && ok "kilnd says the result waits for the database" ||
	fail "no waiting result in the log: $(tail -5 "$KLOG")"
# A few tries fail meanwhile (250 ms, 500 ms, 1 s, ...).
sleep 2
api GET /metrics
printf '%s\n' "$BODY" | grep -q '^kiln_results_waiting 1$' &&
	ok "kiln_results_waiting counts it" ||
	fail "kiln_results_waiting: $(printf '%s\n' "$BODY" | grep results_waiting)"

PGURL2=$("$PGCLUSTER" start "$PGD") || fail "pgcluster.sh start again"
[ "$PGURL2" = "$PGURL" ] || fail "the server came back at $PGURL2, not $PGURL"
wait_job "$ID" 60
expect_json .state succeeded "the job whose result waited succeeds"
expect_json '.targets[0].attempt' 1 "at attempt 1: it was not built again"
grep -q "job $ID linux/amd64: the result is stored after waiting [0-9.]* s for the database" \
    "$KLOG" && ok "kilnd says the result was stored late" ||
	fail "no stored-late line: $(tail -5 "$KLOG")"
[ "$(grep -c "job $ID linux/amd64: building" "$KLOG")" = 1 ] &&
	ok "one build of the target in kilnd's log" ||
	fail "$(grep -c "job $ID linux/amd64: building" "$KLOG") builds in the log"
[ "$(q "SELECT state || ' ' || attempt || ' ' || count(a.id) FROM job_targets t
    LEFT JOIN artifacts a ON a.target_id = t.id WHERE t.id = $TID
    GROUP BY t.state, t.attempt")" = "succeeded 1 1" ] &&
	ok "the database holds the run's result: succeeded, attempt 1, one artifact" ||
	fail "target row: $(q "SELECT state, attempt FROM job_targets WHERE id = $TID")"

# Signed once stored, as at once (on the pool: poll); the files verify.
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$ID/SHA256SUMS.minisig"
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
expect_status 200 "the job is signed"
mkdir -p "$T/dl"
for f in SHA256SUMS SHA256SUMS.minisig; do
	curl -sSf -o "$T/dl/$f" "$URL/v1/jobs/$ID/$f" || fail "no $f"
done
while read -r _ name; do
	mkdir -p "$T/dl/$(dirname "$name")"
	curl -sSf -o "$T/dl/$name" "$URL/v1/jobs/$ID/artifacts/$name" ||
		fail "cannot download $name"
done <"$T/dl/SHA256SUMS"
minisign -V -q -p "$STATE/kiln.pub" -m "$T/dl/SHA256SUMS" \
    -x "$T/dl/SHA256SUMS.minisig" && ok "minisign -V of SHA256SUMS" ||
	fail "minisign -V of SHA256SUMS fails"
(cd "$T/dl" && sha256sum --quiet -c SHA256SUMS) &&
	ok "sha256sum -c of its artifacts ($(wc -l <"$T/dl/SHA256SUMS"))" ||
	fail "sha256sum -c fails"
api GET /metrics
printf '%s\n' "$BODY" | grep -q '^kiln_results_waiting 0$' &&
	ok "kiln_results_waiting is back to 0" ||
	fail "kiln_results_waiting: $(printf '%s\n' "$BODY" | grep results_waiting)"

stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "kilnd stops cleanly" || fail "kilnd exit $KEXIT"

# A server that is there but answers nothing (frozen: SIGSTOP of this
# cluster's processes only) must not hold a write, nor kilnd's stop, for
# ever: a query unanswered for 30 s ends its connection, the result is
# given up at the stop's deadline, and kilnd exits while the server is
# still frozen.
printf '[kilnd]\nallow_local_repos = yes\ndatabase = %s\nworkers = 1\ntarget_lease = 20\ndrain_timeout = 2\nshutdown_timeout = 2\n' \
    "$PGURL" >"$T/k.conf"
start_kilnd -c "$T/k.conf" || { fail "kilnd does not start again"; exit 1; }
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"cache\": false, \"recipe\": {\"kind\": \"command\",
    \"command\": \"sleep 3; echo frozen > /out/ok\"}}"
ID2=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$ID2" linux/amd64 running 60 || exit 1
PMPID=$(head -1 "$PGD/pg/data/postmaster.pid")
FROZEN="$PMPID $(pgrep -d ' ' -P "$PMPID")"
# shellcheck disable=SC2086
kill -STOP $FROZEN
trap '[ -n "$FROZEN" ] && kill -CONT $FROZEN; pgretry_cleanup' EXIT
for _ in $(seq 1 100); do
	grep -q "job $ID2 linux/amd64: succeeded" "$KLOG" && break
	sleep 0.1
done
kill -TERM "$KPID"
for _ in $(seq 1 120); do
	kill -0 "$KPID" 2>/dev/null || break
	sleep 1
done
if kill -0 "$KPID" 2>/dev/null; then
	fail "kilnd still runs 120 s after SIGTERM while the server is frozen"
	# shellcheck disable=SC2086
	kill -CONT $FROZEN
	FROZEN=
	stop_kilnd TERM
else
	wait "$KPID" || true
	KPID=
	ok "kilnd stops while the server answers nothing"
fi
grep -q "connection [0-9]* lost: no answer after 30000 ms" "$KLOG" &&
	ok "kilnd says the server did not answer" ||
	fail "no 'no answer' line: $(grep -i postgresql "$KLOG" | tail -3)"
grep -q "job $ID2 linux/amd64: kilnd is stopping and the database still does not take the result; given up" \
    "$KLOG" && ok "the result is given up at the stop's deadline" ||
	fail "no give-up line: $(tail -3 "$KLOG")"
# shellcheck disable=SC2086
[ -z "$FROZEN" ] || kill -CONT $FROZEN
FROZEN=
finish
