#!/bin/bash
# kilnd as operators run it: sd_notify READY/STATUS/WATCHDOG/STOPPING to
# a datagram socket of the test's own; SIGHUP with a good and a broken
# kilnd.conf; SIGTERM while a build runs (it finishes, then exit 0) and
# past drain_timeout (it goes back to the queue and the next start builds
# it); /metrics values that move as jobs run; /v1/info; the OpenAPI
# document; the access log.
. "$(dirname "$0")/lib.sh"

for tool in git socat; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
REPO=$(make_repo sh "$SRCDIR/tests/fixtures/c-hello")

# metric NAME-WITH-LABELS: its value in a fresh scrape ("" when absent).
metric() {
	curl -s "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
# wait_building ID: until its linux/amd64 build runs (the log shows the
# command: kiln-worker was started), not merely claimed or fetching.
wait_building() {
	for _ in $(seq 1 300); do
		curl -s "$URL/v1/jobs/$1/targets/linux_amd64/log" | grep -q '^\[kiln\] \$ ' &&
			{ sleep 0.3; return 0; }
		sleep 0.1
	done
	fail "job $1 never started building"
}
# job COMMAND: POST a linux/amd64 job running COMMAND; sets JID.
job() {
	post_job "$(jq -cn --arg r "file://$REPO" --arg c "$1" '{repo: $r, ref: "main",
		targets: ["linux/amd64"], recipe: {kind: "command", command: $c}}')"
	JID=$(printf '%s' "$BODY" | jq -r .id)
}

# --- systemd notify and watchdog --------------------------------------------------------
socat -u UNIX-RECV:"$T/notify" OPEN:"$T/notify.out",creat,append &
SOCAT=$!
trap 'kill $SOCAT 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do [ -S "$T/notify" ] && break; sleep 0.05; done
cat >"$T/kilnd.conf" <<EOF
[kilnd]
allow_local_repos = yes
access_log = yes
drain_timeout = 60
EOF
NOTIFY_SOCKET=$T/notify WATCHDOG_USEC=400000 start_kilnd -c "$T/kilnd.conf" -w 1
sleep 1.2
grep -q 'READY=1' "$T/notify.out" && ok "READY=1 once listening" || fail "no READY=1"
# Datagrams carry no newline: they run together in the file.
n=$(grep -o 'WATCHDOG=1' "$T/notify.out" | wc -l)
[ "$n" -ge 4 ] && ok "WATCHDOG=1 every ~200 ms for WATCHDOG_USEC=400000 ($n in 1.2 s)" ||
	fail "WATCHDOG=1 sent $n times: $(cat "$T/notify.out")"
grep -q "watchdog: WATCHDOG=1 every 200 ms" "$KLOG" && ok "kilnd logs the watchdog interval" ||
	fail "no watchdog log line"
grep -q 'STATUS=serving on 127.0.0.1:[0-9]*: 0 target(s) queued, 0 building' "$T/notify.out" &&
	ok "STATUS= with the counts" || fail "no STATUS with counts: $(cat "$T/notify.out")"

# --- /metrics move as jobs run ------------------------------------------------------------
[ -z "$(metric 'kiln_builds_total{target="linux/amd64",state="succeeded"}')" ] &&
	ok "no build counted before any ran" || fail "a build counted already"
s0=$(metric 'kiln_jobs{state="succeeded"}')
job 'echo one > $KILN_OUT/one'
A=$JID
wait_job "$A" 120
expect_json .state succeeded "a first job"
[ "$(metric 'kiln_builds_total{target="linux/amd64",state="succeeded"}')" = 1 ] &&
	ok "kiln_builds_total{linux/amd64,succeeded} is 1" || fail "builds_total: $(curl -s "$URL/metrics" | grep builds_total)"
[ "$(metric 'kiln_jobs{state="succeeded"}')" = $((s0 + 1)) ] &&
	ok "kiln_jobs{succeeded} went from $s0 to $((s0 + 1))" || fail "kiln_jobs succeeded"
[ "$(metric 'kiln_build_duration_seconds_count{target="linux/amd64"}')" = 1 ] &&
	ok "one build in the duration histogram" || fail "duration histogram"
[ "$(metric 'kiln_fetches_total{result="ok"}')" = 1 ] && ok "one fetch counted" || fail "fetches"
[ "$(metric 'kiln_cache_lookups_total{result="miss"}')" = 1 ] && ok "one cache miss" || fail "cache miss"
job 'echo one > $KILN_OUT/one'
wait_job "$JID" 120
[ "$(metric 'kiln_cache_lookups_total{result="hit"}')" = 1 ] && ok "the same job again: one cache hit" ||
	fail "cache hit: $(curl -s "$URL/metrics" | grep cache_lookups)"
[ "$(metric 'kiln_builds_total{target="linux/amd64",state="succeeded"}')" = 1 ] &&
	ok "a cache hit is not a build" || fail "builds after a hit"
for _ in $(seq 1 50); do [ "$(metric 'kiln_signatures_total{result="ok"}')" = 2 ] && break; sleep 0.1; done
[ "$(metric 'kiln_signatures_total{result="ok"}')" = 2 ] && ok "two jobs signed" || fail "signatures"
v=$(metric 'kiln_http_requests_total{method="POST",route="/v1/jobs",status="201"}')
[ "$v" = 2 ] && ok "POST /v1/jobs 201 counted twice" || fail "http counter: $v"
[ "$(metric process_open_fds)" -gt 3 ] && [ "$(metric process_resident_memory_bytes)" -gt 1000000 ] &&
	ok "process fds and RSS are reported" || fail "process metrics"
# Clients choose methods: unknown ones share one label value.
curl -s -o /dev/null -X FROBNICATE1 "$URL/v1/jobs"
curl -s -o /dev/null -X FROBNICATE2 "$URL/v1/jobs"
[ "$(metric 'kiln_http_requests_total{method="other",route="(none)",status="405"}')" = 2 ] &&
	ok "unknown methods are counted as method=\"other\"" ||
	fail "method label: $(curl -s "$URL/metrics" | grep FROBNICATE)"
# Every sample line is in the text format: name{labels} value.
bad=$(curl -s "$URL/metrics" | grep -v '^#' |
	grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf)$' || true)
[ -z "$bad" ] && ok "every /metrics line is valid text format" || fail "bad lines: $bad"
if command -v promtool >/dev/null; then
	curl -s "$URL/metrics" | promtool check metrics && ok "promtool check metrics" ||
		fail "promtool"
fi
api HEAD /metrics -I
[ "$(header Content-Type)" = "text/plain; version=0.0.4; charset=utf-8" ] &&
	ok "Content-Type of the text format" || fail "metrics content type $(header Content-Type)"

# --- /v1/info, OpenAPI, access log ------------------------------------------------------------
api GET /v1/info
expect_json .version "$("$KILND" --version | awk '{print $2}')" "info"
expect_json .workers 1 "info"
expect_json '.toolchains["linux/arm64"]' aarch64-linux-gnu "info"
expect_json '.pubkey_id | test("^[0-9A-F]{16}$")' true "info"
api GET /v1/openapi.json
expect_json .openapi 3.1.0 "the OpenAPI document"
expect_json '.paths | has("/v1/hooks/github")' true "it documents the webhooks"
grep -q 'access: 127.0.0.1 "GET /v1/info" 200 [0-9]* ms route=/v1/info' "$KLOG" &&
	ok "access_log: one line per request" || fail "no access log line"

# --- SIGHUP ----------------------------------------------------------------------------------
TOKEN=$(openssl rand -hex 20)
cat >>"$T/kilnd.conf" <<EOF
[tokens]
ops = admin $(printf '%s\n' "$TOKEN" | "$KILND" --hash-token)
EOF
kill -HUP "$KPID"
for _ in $(seq 1 50); do grep -q 'reloaded' "$KLOG" && break; sleep 0.05; done
grep -q "reloaded $T/kilnd.conf: 0 project(s), 1 token(s)" "$KLOG" &&
	ok "SIGHUP reloads kilnd.conf" || fail "no reload line: $(tail -3 "$KLOG")"
api GET /v1/jobs
expect_status 401 "after the reload, the new token is required"
api GET /v1/jobs -H "Authorization: Bearer $TOKEN"
expect_status 200 "and accepted"
cp "$T/kilnd.conf" "$T/good.conf"
printf 'this line is not INI\n' >>"$T/kilnd.conf"
kill -HUP "$KPID"
for _ in $(seq 1 50); do grep -q 'reload refused' "$KLOG" && break; sleep 0.05; done
grep -q "reload refused, the running configuration stays: $T/kilnd.conf:[0-9]*: syntax error" "$KLOG" &&
	ok "a broken kilnd.conf is refused with file:line" || fail "broken reload: $(tail -3 "$KLOG")"
api GET /v1/jobs -H "Authorization: Bearer $TOKEN"
expect_status 200 "the old configuration stays"
api GET /healthz -H "Authorization: Bearer $TOKEN"
expect_status 200 "no connection was dropped"
cp "$T/good.conf" "$T/kilnd.conf"
sed -i '/^\[tokens\]/,$d' "$T/kilnd.conf"
kill -HUP "$KPID"
for _ in $(seq 1 50); do api GET /v1/jobs; [ "$STATUS" = 200 ] && break; sleep 0.05; done
expect_status 200 "tokens removed again by a reload (kilnd listens on loopback)"

# --- kiln-worker unavailable (being replaced): jobs wait, they do not fail ---------------------
cp "$KILN_WORKER" "$T/worker-copy"
printf 'worker_path = %s\n' "$T/worker-copy" >>"$T/kilnd.conf"
sed -i "s|^worker_path = .*|worker_path = $T/worker-copy|" "$T/kilnd.conf"
stop_kilnd
start_kilnd -c "$T/kilnd.conf" -w 1
chmod -x "$T/worker-copy"
job 'echo w > $KILN_OUT/w'
W=$JID
sleep 3
api GET "/v1/jobs/$W"
expect_json .state queued "while kiln-worker cannot start, the job waits in the queue"
grep -q "cannot start $T/worker-copy.*go back to the queue" "$KLOG" &&
	ok "kilnd says kiln-worker cannot start" || fail "no log line: $(tail -3 "$KLOG")"
chmod +x "$T/worker-copy"
wait_job "$W" 60
expect_json .state succeeded "once kiln-worker can start, the job runs and succeeds"

# --- SIGTERM while a build runs: it finishes --------------------------------------------------
job 'sleep 2; echo done > $KILN_OUT/slow'
S=$JID
wait_building "$S"
kill -TERM "$KPID"
sleep 0.3
api GET "/v1/jobs/$S"
expect_json .state running "while draining the API still answers"
job 'echo later > $KILN_OUT/later'
expect_status 201 "a job submitted while draining is accepted"
LATER=$JID
KEXIT=0; wait "$KPID" || KEXIT=$?; KPID=
[ "$KEXIT" = 0 ] && ok "exit 0 after the drain" || fail "exit $KEXIT"
grep -q "builds: drained" "$KLOG" && ok "the running build was let finish" || fail "no drain"
sleep 0.3
grep -q 'STOPPING=1' "$T/notify.out" && ok "STOPPING=1 on SIGTERM" || fail "no STOPPING=1"
[ "$(db "select state from job_targets where job_id = $S")" = succeeded ] &&
	ok "the build that ran at SIGTERM succeeded" || fail "drained job: $(db "select state, error from job_targets where job_id = $S")"
# The drain waits for the outcome to be stored, so the job is signed
# before kilnd exits, not at some later start.
[ "$(db "select sums_sha256 is not null and sign_pending = 0 from jobs where id = $S")" = 1 ] &&
	ok "the job that finished during the drain is signed before the exit" ||
	fail "drained job not signed: $(db "select sums_sha256, sign_pending from jobs where id = $S")"
[ "$(db "select state from jobs where id = $LATER")" = queued ] &&
	ok "the job submitted while draining waits in the queue" || fail "later job"

# --- SIGTERM past drain_timeout: back to the queue, built at the next start ------------------
printf '[kilnd]\nallow_local_repos = yes\ndrain_timeout = 1\n' >"$T/short.conf"
start_kilnd -c "$T/short.conf" -w 1
wait_job "$LATER" 60
expect_json .state succeeded "the job queued during the drain ran after the restart"
# The per-repository /cache survives: the first run waits, the second
# (after the restart) finishes at once.
job 'if [ -f /cache/once ]; then echo ok > $KILN_OUT/r; else touch /cache/once; sleep 60; fi'
L=$JID
wait_building "$L"
t0=$(date +%s)
stop_kilnd TERM
t1=$(date +%s)
[ "$KEXIT" = 0 ] && ok "exit 0 after drain_timeout" || fail "exit $KEXIT"
[ $((t1 - t0)) -le 10 ] && ok "stopped after drain_timeout ($((t1 - t0)) s), not after the build" ||
	fail "took $((t1 - t0)) s"
grep -q "drain_timeout (1 s) over with 1 build(s) still running" "$KLOG" &&
	ok "the log says the build goes back to the queue" || fail "no drain timeout line"
[ "$(db "select state || ' ' || attempt from job_targets where job_id = $L")" = "queued 0" ] &&
	ok "the target is queued again, the run not counted" ||
	fail "after drain timeout: $(db "select state, attempt from job_targets where job_id = $L")"
start_kilnd -c "$T/short.conf" -w 1
wait_job "$L" 60
expect_json .state succeeded "the next start builds it to success"
# A second SIGTERM stops at once.
job 'sleep 60'
wait_building "$JID"
printf '[kilnd]\nallow_local_repos = yes\ndrain_timeout = 600\n' >"$T/short.conf"
kill -HUP "$KPID"; sleep 0.3
kill -TERM "$KPID"; sleep 0.5; t0=$(date +%s)
kill -TERM "$KPID"
KEXIT=0; wait "$KPID" || KEXIT=$?; KPID=; t1=$(date +%s)
[ "$KEXIT" = 0 ] && [ $((t1 - t0)) -le 5 ] && ok "a second SIGTERM stops at once, exit 0" ||
	fail "second SIGTERM: exit $KEXIT after $((t1 - t0)) s"
[ "$(db "select state from job_targets where job_id = $JID")" = queued ] &&
	ok "its build went back to the queue" || fail "second SIGTERM lost the target"
finish
