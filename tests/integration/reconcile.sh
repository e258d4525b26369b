#!/bin/bash
# The lease on running targets.  A build's result that cannot be stored
# (here: a trigger the test puts into kilnd's database refuses the row's
# move to succeeded) leaves the target running in the database with no
# build behind it; once its heartbeat is older than target_lease, kilnd
# gives it back to the queue and it is built again (attempt 2).  With
# max_attempts reached, it fails, naming the lease.  Counts in /metrics
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

# The build ran; its result could not be stored.
for _ in $(seq 1 600); do
	grep -q "job $ID linux/amd64: cannot record the result" "$KLOG" && break
	sleep 0.1
done
grep -q "job $ID linux/amd64: cannot record the result" "$KLOG" &&
	ok "the failed finish is logged" || fail "no failed finish in the log: $(tail -5 "$KLOG")"
[ "$(db "select state || ' ' || attempt from job_targets where job_id = $ID")" = "running 1" ] &&
	ok "the target stays running in the database (attempt 1)" ||
	fail "target row: $(db "select state, attempt from job_targets where job_id = $ID")"

# Stored results work again; the lease runs out; it is built again.
heal
wait_job "$ID" 120
expect_json .state succeeded "the job succeeds after the target was claimed back"
expect_json '.targets[0].attempt' 2 "its second run is the one recorded"
grep -q "target .*: its build stopped reporting (no heartbeat for target_lease, 4 s): claimed back" "$KLOG" &&
	ok "kilnd says it claimed the target back" || fail "no reclaim line in the log"
curl -sf "$URL/v1/jobs/$ID/artifacts/linux_amd64/ok" | grep -q built &&
	ok "the artifact of the second run is served" || fail "artifact"

# Every run refused: after max_attempts the target fails, naming the lease.
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
heal

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
