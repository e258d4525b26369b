#!/bin/bash
# The lease on running targets.  A build's result that cannot be stored
# (here: a trigger the test puts into kilnd's database refuses the row's
# move to succeeded) waits in kilnd, which tries again and keeps the
# target's lease meanwhile: past target_lease it is not claimed back, and
# once the database takes it again the result of its one run is stored
# (attempt 1, no rebuild).  A result refused for three leases is given
# up: once its heartbeat is older than target_lease, kilnd gives the
# target back to the queue and it is built again; with max_attempts
# reached, it fails, naming the lease.  A build whose target
# was given to another run meanwhile is fenced off: its heartbeat is
# refused, it is stopped and its result discarded.  Counts in /metrics
# follow what was committed, not what was tried.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 missing"; exit 77; }

mkdir -p "$T/src"
echo x >"$T/src/README"
REPO=$(make_repo src "$T/src")
JOB="{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"echo built > /out/ok\"}}"

# The fault: a row of table `fault` makes every move to succeeded fail.
inject() {
	db "CREATE TABLE IF NOT EXISTS fault (x);
	    CREATE TRIGGER IF NOT EXISTS refuse_success
	    BEFORE UPDATE OF state ON job_targets
	    WHEN NEW.state = 'succeeded' AND (SELECT count(*) FROM fault) > 0
	    BEGIN SELECT RAISE(ABORT, 'injected by reconcile.sh'); END;
	    INSERT INTO fault VALUES (1);"
}
heal() {
	db "DELETE FROM fault;"
}

printf '[kilnd]\nallow_local_repos = yes\ntarget_lease = 4\nmax_attempts = 3\n' \
	>"$T/k.conf"
start_kilnd -c "$T/k.conf"
inject
post_job "$JOB"
expect_status 201 "a job is accepted"
ID=$(printf '%s' "$BODY" | jq -r .id)

# The build ran; its result could not be stored: it waits.
msg="job $ID linux/amd64: the result waits for the database: it failed to store it; retried"
for _ in $(seq 1 600); do
	grep -qF "$msg" "$KLOG" && break
	sleep 0.1
done
grep -qF "$msg" "$KLOG" &&
	ok "the failed finish is logged: the result waits" || fail "no waiting result in the log: $(tail -5 "$KLOG")"
api GET /metrics
printf '%s\n' "$BODY" | grep -q '^kiln_results_waiting 1$' &&
	ok "kiln_results_waiting counts it" ||
	fail "kiln_results_waiting: $(printf '%s\n' "$BODY" | grep results_waiting)"
# Past the lease (4 s): its heartbeats keep it; nobody claims it back.
sleep 6
[ "$(db "select state || ' ' || attempt from job_targets where job_id = $ID")" = "running 1" ] &&
	ok "past its lease the target stays running in the database (attempt 1)" ||
	fail "target row: $(db "select state, attempt from job_targets where job_id = $ID")"
grep -q "claimed back" "$KLOG" && fail "a waiting result's target was claimed back" ||
	ok "a waiting result's target is not claimed back"
[ "$(grep -cF "$msg" "$KLOG")" = 1 ] && ok "the wait is logged once" ||
	fail "logged $(grep -cF "$msg" "$KLOG") times"

# Stored results work again: the one run's result is stored, not rebuilt.
heal
wait_job "$ID" 60
expect_json .state succeeded "the job succeeds once the database takes the result"
expect_json '.targets[0].attempt' 1 "its first and only run is the one recorded"
grep -q "job $ID linux/amd64: the result is stored after waiting [0-9.]* s for the database" "$KLOG" &&
	ok "kilnd says the result was stored late" || fail "no stored-late line in the log"
curl -sf "$URL/v1/jobs/$ID/artifacts/linux_amd64/ok" | grep -q built &&
	ok "the artifact of the run is served" || fail "artifact"
# Signed after the late store, as at once (on the pool: poll).
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$ID/SHA256SUMS"
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
expect_status 200 "the job whose result was stored late is signed"
api GET /metrics
printf '%s\n' "$BODY" | grep -q '^kiln_results_waiting 0$' &&
	ok "kiln_results_waiting is back to 0" ||
	fail "kiln_results_waiting: $(printf '%s\n' "$BODY" | grep results_waiting)"

# Every run refused: each result is given up after three leases, the
# target claimed back; after max_attempts it fails, naming the lease.
printf '[kilnd]\nallow_local_repos = yes\ntarget_lease = 4\nmax_attempts = 2\n' \
	>"$T/k.conf"
stop_kilnd TERM
start_kilnd -c "$T/k.conf"
inject
post_job "$JOB"
ID2=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID2" 180
expect_json .state failed "a target whose result is never stored fails"
expect_json '.targets[0].attempt' 2 "after max_attempts runs"
expect_json '.targets[0].error | test("no heartbeat within target_lease")' true \
	"its error names the lease"
grep -q "job $ID2 linux/amd64: the database did not take the result for [0-9]* s; given up" "$KLOG" &&
	ok "a result refused for three leases is given up, logged" || fail "no give-up line"
grep -q "target .*: its build stopped reporting (no heartbeat for target_lease, 4 s): claimed back" "$KLOG" &&
	ok "kilnd says it claimed the target back" || fail "no reclaim line in the log"
heal

# Fencing: while a build runs, its target is given to another run (as
# when this host was paused past its lease and another host claimed it
# again: attempt 2).  This host's next heartbeat is refused; it stops the
# build, discards its result and counts it; the other run's row stands.
SLOW="{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"sleep 60; echo late > /out/ok\"}}"
post_job "$SLOW"
ID3=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$ID3" linux/amd64 running 60
TID3=$(db "select id from job_targets where job_id = $ID3")
db "PRAGMA busy_timeout = 5000; UPDATE job_targets SET attempt = attempt + 1,
    host = 'elsewhere', heartbeat_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
    WHERE id = $TID3 AND state = 'running'" >/dev/null
msg="target $TID3 attempt 1 was given to another run; its result is discarded"
for _ in $(seq 1 100); do grep -q "$msg" "$KLOG" && break; sleep 0.1; done
grep -q "$msg" "$KLOG" && ok "a refused heartbeat: kilnd says the run was given away" ||
	fail "no superseded line: $(tail -5 "$KLOG")"
for _ in $(seq 1 100); do
	api GET /metrics
	printf '%s\n' "$BODY" | grep -q '^kiln_builds_running 0$' && break
	sleep 0.1
done
printf '%s\n' "$BODY" | grep -q '^kiln_builds_running 0$' &&
	ok "the superseded build was stopped (slot free), not left to run 60 s" ||
	fail "still running: $(printf '%s\n' "$BODY" | grep kiln_builds_running)"
printf '%s\n' "$BODY" | grep -q '^kiln_superseded_results_total 1$' &&
	ok "kiln_superseded_results_total counts it once" ||
	fail "superseded counter: $(printf '%s\n' "$BODY" | grep superseded)"
[ "$(grep -c "$msg" "$KLOG")" = 1 ] && ok "logged once" ||
	fail "logged $(grep -c "$msg" "$KLOG") times"
[ "$(db "select state || ' ' || attempt || ' ' || host from job_targets where id = $TID3")" = \
    "running 2 elsewhere" ] && ok "the other run's row stands (running, attempt 2)" ||
	fail "target row: $(db "select state, attempt, host from job_targets where id = $TID3")"
[ "$(db "select count(*) from artifacts where target_id = $TID3")" = 0 ] &&
	ok "nothing of the superseded run is recorded" || fail "artifacts recorded"
# The other run never existed: canceled, the lease's reclaim ends it.
api POST "/v1/jobs/$ID3/cancel"
wait_job "$ID3" 60
expect_json .state canceled "the job whose run was given away is canceled"

# The counters kept on transitions equal the database's own counts.
api GET /metrics
for s in queued running succeeded failed canceled; do
	m=$(printf '%s\n' "$BODY" | sed -n "s/^kiln_jobs{state=\"$s\"} //p")
	d=$(db "select count(*) from jobs where state = '$s'")
	[ "${m:-0}" = "$d" ] && ok "kiln_jobs{state=\"$s\"} = $d, as the database counts" ||
		fail "kiln_jobs{state=\"$s\"}: metrics '$m', database $d"
done
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "kilnd stops cleanly" || fail "kilnd exit $KEXIT"
finish
