#!/bin/bash
# Slow and greedy clients.  MHD's own timeout is an idle timeout: a client
# sending a header line every second is never idle and kept its slot
# forever.  kilnd gives every request header_timeout to arrive whole, and
# counts max_connections_per_ip per IPv4 address and per IPv6 /64.
#  - 200 connections trickling headers from 127.0.0.2..6 fill
#    max_connections; a normal client from 127.0.0.1 is still served,
#    kilnd closes every trickler (seen from the client side) and its fds
#    go back to what they were;
#  - a slow but honest upload within the deadline succeeds, and the next
#    request on its kept-alive connection gets a deadline of its own;
#  - a body trickled past the deadline is cut and creates nothing;
#  - a followed log (a request that arrived whole) is not cut;
#  - two IPv6 addresses of one /64 share one per-address limit (in a
#    network namespace of the test's own);
#  - /healthz answers anyone {"status":"ok"}, counts only with read.
# Outcomes only: no latency is asserted (bench/slowclients has figures).
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
PY=$SRCDIR/tests/integration/trickle.py

fds() { ls "/proc/$KPID/fd" 2>/dev/null | wc -l; }

# Run by this script itself under `unshare -n`: a network namespace of
# our own whose lo gets fd00:6b::2 and fd00:6b::3 (one /64); kilnd
# listens on [::1] (loopback, no tokens needed).
v6_in_netns() {
	local code HPID fd0
	ip link set lo up
	ip -6 addr add fd00:6b::2/64 dev lo nodad
	ip -6 addr add fd00:6b::3/64 dev lo nodad
	printf '[kilnd]\npaused = yes\nheader_timeout = 60\nmax_connections_per_ip = 2\n' >"$T/v6.conf"
	KLOG=$T/kilnd.v6.log
	"$KILND" -l '[::1]:0' -d "$STATE" -c "$T/v6.conf" 2>"$KLOG" &
	KPID=$!
	URL=
	for _ in $(seq 1 200); do
		URL=$(grep -o 'listening on http://\[::1\]:[0-9]*' "$KLOG" |
			sed 's/listening on //') || true
		[ -n "$URL" ] && break
		sleep 0.05
	done
	[ -n "$URL" ] || { fail "kilnd did not listen on [::1]: $(cat "$KLOG")"; return; }
	fd0=$(fds)
	python3 "$PY" hold --host ::1 --port "${URL##*:}" --addrs fd00:6b::2 \
		--count 2 --seconds 30 --ready "$T/hold.ready" &
	HPID=$!
	for _ in $(seq 1 100); do [ -s "$T/hold.ready" ] && break; sleep 0.05; done
	# Accepted and counted once kilnd has seen them: wait for its fds.
	for _ in $(seq 1 100); do
		[ "$(fds)" -ge $((fd0 + 2)) ] && break
		sleep 0.05
	done
	code=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 5 \
		--interface fd00:6b::3 "$URL/healthz" || true)
	[ "$code" != 200 ] &&
		ok "IPv6: fd00:6b::3 is refused while fd00:6b::2, same /64, holds max_connections_per_ip = 2 (got '$code')" ||
		fail "IPv6: a second address of the same /64 was served past the limit"
	code=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 5 \
		--interface ::1 "$URL/healthz" || true)
	[ "$code" = 200 ] && ok "IPv6: ::1, another /64, is served meanwhile" ||
		fail "IPv6: ::1 got '$code' while another /64 was at its limit"
	kill "$HPID"
	wait "$HPID" 2>/dev/null || true
	for _ in $(seq 1 50); do
		code=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 5 \
			--interface fd00:6b::3 "$URL/healthz" || true)
		[ "$code" = 200 ] && break
		sleep 0.1
	done
	[ "$code" = 200 ] && ok "IPv6: fd00:6b::3 is served once the /64's connections closed" ||
		fail "IPv6: fd00:6b::3 still refused after the /64's connections closed: '$code'"
	grep -q 'refused [0-9]* connection(s) over max_connections_per_ip (2), the last from fd00:6b::/64' "$KLOG" &&
		ok "IPv6: the log names the /64" ||
		fail "IPv6: no log line for the refusal: $(grep refused "$KLOG")"
	stop_kilnd
}
if [ "${1:-}" = --in-netns ]; then
	v6_in_netns
	finish
	exit
fi

# --- header_timeout is a key of its own, 1 to 3600 s ---------------------------
for bad in 0 3601 soon; do
	printf '[kilnd]\nheader_timeout = %s\n' "$bad" >"$T/bad.conf"
	out=$("$KILND" -c "$T/bad.conf" --check-config 2>&1) &&
		fail "--check-config accepted header_timeout = $bad" ||
		{ [[ "$out" == *"bad.conf:2: header_timeout"* ]] &&
		  ok "header_timeout = $bad is refused naming file:line and the key" ||
		  fail "header_timeout = $bad: $out"; }
done

# --- 200 tricklers against max_connections = 150 ----------------------------
# 5 addresses x 40 = 200 connections: max_connections_per_ip does not stop
# them, max_connections is exhausted, and only header_timeout frees slots.
cat >"$T/slow.conf" <<EOF
[kilnd]
paused = yes
header_timeout = 2
max_connections = 150
max_connections_per_ip = 40
EOF
start_kilnd -c "$T/slow.conf"
PORT=${URL##*:}
FD0=$(fds)

python3 "$PY" trickle --port "$PORT" --count 200 --interval 1 --seconds 25 \
	--addrs 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6 \
	--ready "$T/trickle.ready" >"$T/trickle.json" 2>"$T/trickle.err" &
TPID=$!
for _ in $(seq 1 200); do [ -s "$T/trickle.ready" ] && break; sleep 0.05; done
[ "$(cat "$T/trickle.ready" 2>/dev/null)" = "opened 200" ] &&
	ok "200 trickling connections opened from 127.0.0.2..6" ||
	fail "the tricklers did not open: $(cat "$T/trickle.ready" "$T/trickle.err" 2>/dev/null)"
# The precondition: kilnd holds max_connections of them (the rest wait in
# the listen queue).  Counted on kilnd's side, before any deadline.
held=0
for _ in $(seq 1 40); do
	held=$(($(fds) - FD0))
	[ "$held" -ge 150 ] && break
	sleep 0.05
done
[ "$held" -ge 150 ] &&
	ok "kilnd holds all 150 slots with tricklers ($held fds more than idle)" ||
	fail "kilnd holds only $held connections: the slots were not exhausted"

code=$(curl -sS -o "$T/hz" -w '%{http_code}' --max-time 10 "$URL/healthz" 2>"$T/curl.err") || code="$code $(cat "$T/curl.err")"
[ "$code" = 200 ] && [ "$(jq -r .status "$T/hz")" = ok ] &&
	ok "a normal client from 127.0.0.1 is served while 200 connections trickle" ||
	fail "the normal client got '$code' while 200 connections trickled"

wait "$TPID" || true
R=$(cat "$T/trickle.json")
echo "# tricklers: $R"
[ "$(jq .closed_by_server <<<"$R")" = 200 ] && [ "$(jq .still_open <<<"$R")" = 0 ] &&
	ok "kilnd closed all 200 trickling connections (seen by the clients)" ||
	fail "tricklers not closed by kilnd: $R"
# Never before the deadline: a lower bound, which load can only lengthen.
jq -e '.min_life >= 1.95' <<<"$R" >/dev/null &&
	ok "none was closed before header_timeout (shortest life $(jq .min_life <<<"$R") s)" ||
	fail "a trickler was closed before header_timeout = 2: $R"
n=
for _ in $(seq 1 100); do
	n=$(fds)
	[ "$n" -le "$FD0" ] && break
	sleep 0.05
done
[ "$n" -le "$FD0" ] && ok "kilnd's open fds are back to $FD0: every slot was released" ||
	fail "kilnd has $n fds, $FD0 before the tricklers"
grep -q 'closed [0-9]* connection(s) that sent no whole request within header_timeout (2 s)' "$KLOG" &&
	ok "the log counts the connections cut" || fail "no log line for the cut connections"

# --- honest slow clients are served -------------------------------------------
JOB='{"repo": "https://git.example.com/slow.git", "ref": "main", "targets": ["linux/amd64"]}'
out=$(python3 "$PY" upload --port "$PORT" --body "$JOB" --pieces 3 --gap 0.2 \
	--then-wait 1.2 --seconds 10 2>"$T/upload.err")
first=$(sed -n 1p <<<"$out") second=$(sed -n 2p <<<"$out")
[[ "$first" == "HTTP/1.1 201"* ]] &&
	ok "a POST trickled in 5 parts within header_timeout is accepted ($(cat "$T/upload.err"))" ||
	fail "the honest slow upload got '$first' ($(cat "$T/upload.err"))"
# The second request is sent over 2 s after the connection was accepted,
# but within 2 s of the end of the first: the deadline is per request.
[[ "$second" == "HTTP/1.1 200"* ]] &&
	ok "the next request on the kept-alive connection has its own deadline" ||
	fail "the kept-alive connection's next request got '$second'"

api GET '/v1/jobs?limit=100'
before=$(jq '.jobs | length' <<<"$BODY")
out=$(python3 "$PY" stall --port "$PORT" --gap 0.5 --seconds 15)
[[ "$out" == "closed after "*" of 100 bytes" ]] &&
	ok "a body trickled past header_timeout is cut without an answer ($out)" ||
	fail "the stalled upload: '$out'"
api GET '/v1/jobs?limit=100'
[ "$(jq '.jobs | length' <<<"$BODY")" = "$before" ] &&
	ok "and created no job" || fail "a cut upload created a job: $BODY"

# A request that arrived whole is not cut, however long its answer: follow
# the log of a target that cannot start (builds are paused) past the
# deadline, then cancel the job, which ends the stream cleanly.
post_job "$JOB"
expect_status 201 "a job to follow"
ID=$(jq -r .id <<<"$BODY")
curl -sS -N -o "$T/follow.out" -w '%{http_code}' --max-time 30 \
	"$URL/v1/jobs/$ID/targets/linux_amd64/log?follow=1" >"$T/follow.code" 2>"$T/follow.err" &
FPID=$!
sleep 3.5
kill -0 "$FPID" 2>/dev/null &&
	ok "a log follower is still connected 3.5 s in (header_timeout = 2)" ||
	fail "the follower ended early: $(cat "$T/follow.err")"
api POST "/v1/jobs/$ID/cancel"
expect_status 200 "cancel the followed job"
frc=0
wait "$FPID" || frc=$?
[ "$frc" = 0 ] && [ "$(cat "$T/follow.code")" = 200 ] &&
	ok "the follower's stream ended cleanly when the job was canceled" ||
	fail "the follower: curl exit $frc, HTTP $(cat "$T/follow.code"): $(cat "$T/follow.err")"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd exits 0" || fail "kilnd exit $KEXIT"

# --- /healthz for probes, counts for readers -----------------------------------
READER=reader-token-$RANDOM$RANDOM
h_read=$(printf '%s\n' "$READER" | "$KILND" --hash-token)
cat >"$T/tokens.conf" <<EOF
[kilnd]
paused = yes

[tokens]
probe-reader = read $h_read
EOF
start_kilnd -c "$T/tokens.conf"
api GET /healthz
expect_status 200 "/healthz without a token (public_read off)"
[ "$(jq -cS . <<<"$BODY")" = '{"status":"ok"}' ] &&
	ok "and only {\"status\":\"ok\"} in it" || fail "/healthz told a caller without a token: $BODY"
api GET /healthz -H "Authorization: Bearer wrong-$READER"
[ "$STATUS" = 200 ] && [ "$(jq -cS . <<<"$BODY")" = '{"status":"ok"}' ] &&
	ok "a wrong token gets the same" || fail "/healthz with a wrong token: $STATUS $BODY"
api GET /healthz -H "Authorization: Bearer $READER"
expect_status 200 "/healthz with a read token"
expect_json '.version | type' string "the read scope sees the version"
expect_json '.jobs_queued | type' number "and the counts"
api GET /v1/jobs
expect_status 401 "the rest still needs a token"
stop_kilnd

# --- per-address limits: an IPv6 /64 is one client ---------------------------
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
	v6rc=0
	unshare -n bash "$0" --in-netns >"$T/v6.out" 2>&1 || v6rc=$?
	grep -E '^(ok|FAIL|#)' "$T/v6.out" | grep -v '^# [0-9]* checks'
	NCHECK=$((NCHECK + $(grep -c '^ok' "$T/v6.out")))
	[ "$v6rc" = 0 ] || fail "the IPv6 /64 part failed (exit $v6rc): $(tail -5 "$T/v6.out")"
else
	echo "# no network namespace here: the /64 counting is held by test_addrcount only"
fi

finish
