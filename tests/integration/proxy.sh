#!/bin/bash
# proxy_downloads = yes: a host passes on another host's files instead of
# answering 307.  Two kilnd hosts on one PostgreSQL (tests/pgcluster.sh),
# with the same API token; h2 is paused (it builds nothing) and proxies,
# so every file is h1's and every answer of h2 for it comes from h1:
#   1. an artifact through h2, no redirect followed: 200, the bytes
#      sha256sum -c verifies, Content-Length, ETag; HEAD the same headers;
#      Range: 206 with those bytes; If-None-Match: 304; no token: 401;
#   2. a build log followed through h2 while h1 builds shows each line as
#      it comes, not at the end; a follower that leaves ends h2's fetch
#      (no curl child left);
#   2c. a follower of a queued target on a host that does not build it
#      waits for the claim, then gets the builder's log as it comes:
#      through h2 without -L (proxied), and from h1 with -L (307 to h2);
#   3. h1 killed: 502 naming h1 while the farm still thinks it alive,
#      then 503 with Retry-After once it is not.
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
for tool in git sha256sum pgrep; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

PGD=$(mktemp -d /tmp/kiln-proxy-pg.XXXXXX)
FOLLOW=

proxy_cleanup() {
	local i
	[ -z "$FOLLOW" ] || kill "$FOLLOW" 2>/dev/null || true
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
trap proxy_cleanup EXIT

PGURL=$("$PGCLUSTER" start "$PGD")

# One token on both hosts, as the farm's docs ask.  lib.sh's helpers run
# curl without -q: the token goes with each of their requests from a
# curlrc; `curl -q` leaves it out.
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKHASH=$(printf '%s' "$TOKEN" | "$KILND" --hash-token)
# An admin token too, to pause and resume the hosts' builds.
ADMIN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ADMHASH=$(printf '%s' "$ADMIN" | "$KILND" --hash-token)
export CURL_HOME=$T/curlhome
mkdir -p "$CURL_HOME"
printf 'header = "Authorization: Bearer %s"\n' "$TOKEN" >"$CURL_HOME/.curlrc"

farm_keys 2

# proxy_host N EXTRA-CONF: start_host N with the [kilnd] lines given, and
# the tokens.
proxy_host() {
	start_host "$1" "workers = 2
target_lease = 6
$2
[tokens]
ci = submit $TOKHASH
op = admin $ADMHASH"
}

proxy_host 1 "" || { fail "h1 does not start"; exit 1; }
proxy_host 2 "paused = yes
proxy_downloads = yes" || { fail "h2 does not start"; exit 1; }
ok "h1 builds, h2 proxies: ${HURL[1]} ${HURL[2]}"
H1=${HURL[1]}
H2=${HURL[2]}

mkdir -p "$T/src"
echo proxy >"$T/src/README"
REPO=$(make_repo src "$T/src")
job_json() {
	printf '{"repo": "%s", "ref": "main", "targets": ["linux/amd64"],
	    "cache": false, "recipe": {"kind": "command", "command": "%s"}}' \
	    "$REPO" "$1"
}

# ---- 1. an artifact through h2 ------------------------------------------
# 600 kB: more than the proxy buffers, so the pipe is paused and resumed.
URL=$H1
post_job "$(job_json 'head -c 600000 /dev/urandom > /out/big; echo small > /out/small; : > /out/empty')"
[ "$STATUS" = 201 ] || { fail "POST: $STATUS $BODY"; exit 1; }
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 60 || exit 1
expect_json .state succeeded "job $ID"
expect_json '.targets[0].host' h1 "job $ID's target"
D=$T/dl
mkdir -p "$D/linux_amd64"
A=/v1/jobs/$ID/artifacts/linux_amd64
code=$(curl -s -o "$D/SHA256SUMS" -w '%{http_code}' "$H2/v1/jobs/$ID/SHA256SUMS")
[ "$code" = 200 ] && ok "SHA256SUMS through h2 without -L: 200" ||
	fail "SHA256SUMS through h2: $code"
code=$(curl -s -D "$D/h" -o "$D/linux_amd64/big" -w '%{http_code}' "$H2$A/big")
[ "$code" = 200 ] && ok "an artifact through h2 without -L: 200" ||
	fail "artifact through h2: $code $(cat "$D/linux_amd64/big")"
curl -s -o "$D/linux_amd64/small" "$H2$A/small"
curl -s -o "$D/linux_amd64/empty" "$H2$A/empty"
(cd "$D" && sha256sum --quiet -c SHA256SUMS) &&
	ok "the files through h2 verify with sha256sum -c" ||
	fail "sha256sum -c of the files through h2: $(cat "$D/SHA256SUMS")"
HEADERS=$(tr -d '\r' <"$D/h")
[ "$(header Content-Length)" = 600000 ] && ok "Content-Length 600000 passed on" ||
	fail "Content-Length '$(header Content-Length)'"
ETAG=$(header ETag)
SUM=$(grep ' linux_amd64/big$' "$D/SHA256SUMS" | cut -d' ' -f1)
[ "$ETAG" = "\"$SUM\"" ] && ok "ETag is h1's (the digest)" || fail "ETag '$ETAG', digest $SUM"
[ "$(header Content-Disposition)" = 'attachment; filename="big"' ] &&
	ok "Content-Disposition passed on" || fail "Content-Disposition '$(header Content-Disposition)'"
# An empty file has a length too (not a chunked answer of unknown size).
for m in -i -I; do
	HEADERS=$(curl -s --max-time 10 "$m" "$H2$A/empty" | tr -d '\r')
	[ "$(header Content-Length)" = 0 ] && ok "curl $m of an empty file through h2: Content-Length: 0" ||
		fail "curl $m of an empty file through h2: $HEADERS"
done
HEADERS=$(curl -sI "$H2$A/big" | tr -d '\r')
[ "$(printf '%s\n' "$HEADERS" | head -1 | cut -d' ' -f2)" = 200 ] &&
    [ "$(header Content-Length)" = 600000 ] && [ "$(header ETag)" = "$ETAG" ] &&
	ok "HEAD through h2: 200, Content-Length and ETag" || fail "HEAD through h2: $HEADERS"

code=$(curl -s -D "$D/h" -o "$D/part" -w '%{http_code}' -r 1000-1999 "$H2$A/big")
HEADERS=$(tr -d '\r' <"$D/h")
if [ "$code" = 206 ] && cmp -s "$D/part" <(tail -c +1001 "$D/linux_amd64/big" | head -c 1000) &&
    [ "$(header Content-Range)" = "bytes 1000-1999/600000" ]; then
	ok "Range through h2: 206, Content-Range and the right 1000 bytes"
else
	fail "Range through h2: $code, $(header Content-Range), $(wc -c <"$D/part") bytes"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$H2$A/big")
[ "$code" = 304 ] && ok "If-None-Match through h2: 304" || fail "If-None-Match through h2: $code"
# A 304 ends with its headers: bytes after them (a chunked body's last
# chunk) would be read as the next answer on a kept-alive connection.
exec 5<>"/dev/tcp/127.0.0.1/${HPORT[2]}"
printf 'GET %s HTTP/1.1\r\nHost: h2\r\nAuthorization: Bearer %s\r\nIf-None-Match: %s\r\nConnection: close\r\n\r\n' \
    "$A/big" "$TOKEN" "$ETAG" >&5
timeout 10 cat <&5 >"$D/raw304" || true
exec 5<&-
after=$(sed -n '/^\r$/,$p' "$D/raw304" | tail -n +2 | wc -c)
[ "$(head -c 12 "$D/raw304")" = "HTTP/1.1 304" ] && [ "$after" = 0 ] &&
	ok "the 304 through h2 has no body" ||
	fail "304 through h2: $after bytes after the headers: $(od -c "$D/raw304" | tail -4)"
code=$(curl -q -s -o /dev/null -w '%{http_code}' "$H2$A/big")
[ "$code" = 401 ] && ok "no token: 401 from h2" || fail "no token through h2: $code"

# A host whose base_url leads back to h2 (h2 under another name): h2
# would pass the request to itself, again and again, a curl each time.
# The second hop refuses, and the client gets its 502.
PSQL=$(command -v psql || echo "$PGBIN/psql")
"$PSQL" -qAt -X -v ON_ERROR_STOP=1 "$PGURL" -c "INSERT INTO hosts (name, base_url,
    version, started_at, heartbeat_at) VALUES ('h9', 'http://localhost:${HPORT[2]}',
    'x', 0, (extract(epoch from now()) * 1000)::bigint + 3600000);
    UPDATE job_targets SET host = 'h9' WHERE job_id = $ID" >/dev/null
URL=$H2
api GET "$A/small"
expect_problem 502 "not passed on again" "a base_url that leads back to h2"
"$PSQL" -qAt -X -v ON_ERROR_STOP=1 "$PGURL" -c "UPDATE job_targets SET host = 'h1'
    WHERE job_id = $ID; DELETE FROM hosts WHERE name = 'h9'" >/dev/null

# ---- 2. a live log through h2 -------------------------------------------
post_job "$(job_json 'for i in 1 2 3 4 5 6 7 8; do echo proxy-line-$i; sleep 1; done; echo done > /out/ok')"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$ID" linux/amd64 running 60 || exit 1
LP=/v1/jobs/$ID/targets/linux_amd64/log?follow=1
curl -sN "$H2$LP" >"$T/follow.out" 2>/dev/null &
FOLLOW=$!
curl -sN "$H2$LP" >"$T/leaver.out" 2>/dev/null &
LEAVER=$!
for _ in $(seq 1 100); do
	grep -q proxy-line-2 "$T/follow.out" && break
	sleep 0.1
done
if grep -q proxy-line-2 "$T/follow.out" && ! grep -q proxy-line-8 "$T/follow.out"; then
	ok "a followed log through h2 shows its lines as they come"
else
	fail "followed log through h2, mid-build: $(cat "$T/follow.out")"
fi
# The one that leaves mid-build: h2 notices at the next line from h1 and
# ends that fetch, while the other goes on.
kill "$LEAVER"
wait "$LEAVER" 2>/dev/null || true
n=
for _ in $(seq 1 30); do
	n=$(pgrep -c -P "${HPID[2]}" -x curl) || true
	[ "$n" = 1 ] && break
	sleep 0.1
done
if [ "$n" = 1 ] && ! grep -q proxy-line-8 "$T/follow.out"; then
	ok "a follower that left ended its fetch mid-build; the other's goes on"
else
	fail "after one follower left: h2 runs $n curl, follow: $(cat "$T/follow.out")"
fi
wait "$FOLLOW" || true
FOLLOW=
grep -q proxy-line-8 "$T/follow.out" && ok "the follow ends with the build's last line" ||
	fail "followed log through h2 at its end: $(cat "$T/follow.out")"
# Both streams ended (one by its client, one by the build): h2 runs no
# curl any more.
for _ in $(seq 1 50); do
	pgrep -P "${HPID[2]}" -x curl >/dev/null || break
	sleep 0.1
done
pgrep -P "${HPID[2]}" -x curl >/dev/null &&
	fail "h2 still runs curl after its followers left: $(pgrep -a -P "${HPID[2]}")" ||
	ok "h2's fetches ended with their followers"

# ---- 2c. following a target before any host claimed it -----------------
# builds HOST on|off: resume or pause HOST's builds.
builds() {
	local what=pause
	[ "$2" = on ] && what=resume
	curl -q -sf -o /dev/null -X POST -H "Authorization: Bearer $ADMIN" \
	    "$1/v1/admin/$what" || fail "POST $1/v1/admin/$what"
}
# follow_claim WHAT FOLLOWED-HOST BUILDER-HOST BUILDER-NAME CURL-OPTS...:
# both hosts paused, a job queued, a follower on FOLLOWED-HOST; then
# BUILDER-HOST builds it, and the follower must show its lines live.
follow_claim() {
	local what=$1 on=$2 by=$3 name=$4 id state lp fpid i
	shift 4
	URL=$H1
	post_job "$(job_json 'for i in 1 2 3 4 5 6 7 8; do echo claim-line-$i; sleep 1; done')"
	[ "$STATUS" = 201 ] || { fail "$what: POST $STATUS $BODY"; return; }
	id=$(printf '%s' "$BODY" | jq -r .id)
	lp=/v1/jobs/$id/targets/linux_amd64/log?follow=1
	timeout 90 curl -sN "$@" "$on$lp" >"$T/claim.out" 2>/dev/null &
	fpid=$!
	FOLLOW=$fpid
	# It waits (the queue is read again every second) and says nothing.
	sleep 2.5
	api GET "/v1/jobs/$id"
	state=$(printf '%s' "$BODY" | jq -r '.targets[0].state')
	if [ "$state" = queued ] && [ ! -s "$T/claim.out" ] && kill -0 "$fpid" 2>/dev/null; then
		ok "$what: the follower of a queued target waits"
	else
		fail "$what: before the claim: $state, follower: $(cat "$T/claim.out")"
	fi
	builds "$by" on
	for _ in $(seq 1 300); do
		grep -q claim-line-2 "$T/claim.out" && break
		sleep 0.1
	done
	api GET "/v1/jobs/$id"
	state=$(printf '%s' "$BODY" | jq -r .state)
	if grep -q claim-line-2 "$T/claim.out" && [ "$state" = running ] &&
	    ! grep -q claim-line-8 "$T/claim.out"; then
		ok "$what: the follower shows the build's lines as they come"
	else
		fail "$what: mid-build (job $state): $(cat "$T/claim.out")"
	fi
	i=0
	wait "$fpid" || i=$?
	FOLLOW=
	wait_job "$id" 30 || true
	api GET "/v1/jobs/$id"
	if [ "$i" = 0 ] && grep -q claim-line-8 "$T/claim.out" &&
	    [ "$(printf '%s' "$BODY" | jq -r '.targets[0].host')" = "$name" ]; then
		ok "$what: the follow ends with the build's last line ($name built it)"
	else
		fail "$what: at the end (curl $i, host $(printf '%s' "$BODY" |
		    jq -r '.targets[0].host')): $(cat "$T/claim.out")"
	fi
	builds "$by" off
}
builds "$H1" off
follow_claim "queued, followed through h2 (proxied)" "$H2" "$H1" h1
# h1 serves the log itself: a 307 to h2, which builds; the token goes
# along (curl -L alone drops it on another port).
follow_claim "queued, followed on h1 with -L (307 to h2)" "$H1" "$H2" h2 \
    --location-trusted
builds "$H1" on

# ---- 2b. h2 stops while it waits for h1's headers ----------------------
# h1 stopped (SIGSTOP): its socket takes the connection, nothing answers.
# Once h2's 10 s grace is over it closes its connections, and the fetch
# ends with them, not at its own 30 s deadline for the headers.
kill -STOP "${HPID[1]}"
curl -s -o /dev/null "$H2$A/small" &
WAITER=$!
for _ in $(seq 1 50); do
	pgrep -P "${HPID[2]}" -x curl >/dev/null && break
	sleep 0.1
done
kill -TERM "${HPID[2]}"
for _ in $(seq 1 200); do
	grep -q 'grace over' "${HLOG[2]}" && break
	sleep 0.1
done
stopped=
for _ in $(seq 1 100); do
	kill -0 "${HPID[2]}" 2>/dev/null || { stopped=1; break; }
	sleep 0.1
done
[ -n "$stopped" ] && ok "h2 stops with its grace, a fetch waiting for headers ended" ||
	fail "h2 still runs 10 s after its grace, waiting on h1: $(tail -3 "${HLOG[2]}")"
wait "${HPID[2]}" 2>/dev/null || true
grep -q Sanitizer "${HLOG[2]}" && fail "h2: $(grep -A20 Sanitizer "${HLOG[2]}")"
kill -CONT "${HPID[1]}"
wait "$WAITER" 2>/dev/null || true
proxy_host 2 "paused = yes
proxy_downloads = yes" || { fail "h2 does not start again"; exit 1; }
H2=${HURL[2]}

# ---- 3. h1 gone ---------------------------------------------------------
kill -KILL "${HPID[1]}"
wait "${HPID[1]}" 2>/dev/null || true
HPID[1]=
URL=$H2
api GET "$A/small"
expect_problem 502 "host h1" "h1 killed, its beat still fresh: through h2"
for _ in $(seq 1 100); do
	api GET "$A/small"
	[ "$STATUS" = 503 ] && break
	sleep 0.2
done
expect_problem 503 "h1" "h1 no longer alive: through h2"
[ -n "$(header Retry-After)" ] && ok "503 with Retry-After" || fail "503 without Retry-After"

# A clean stop of h2, with a follower waiting for a queued target's claim
# (nothing builds it now): the stop ends the wait (after its grace), and
# leaves no sanitizer report (leaks included) in h2's log.
post_job "$(job_json 'echo never')"
ID=$(printf '%s' "$BODY" | jq -r .id)
timeout 60 curl -sN "$H2/v1/jobs/$ID/targets/linux_amd64/log?follow=1" \
    >"$T/waiter.out" 2>/dev/null &
FOLLOW=$!
sleep 1.5
kill -TERM "${HPID[2]}"
wait "${HPID[2]}" 2>/dev/null || true
HPID[2]=
i=0
wait "$FOLLOW" || i=$?
FOLLOW=
[ "$i" != 124 ] && ok "a follower waiting for a claim ends when h2 stops" ||
	fail "a follower waiting for a claim outlived h2: $(cat "$T/waiter.out")"
grep -q Sanitizer "${HLOG[2]}" && fail "h2: $(grep -A20 Sanitizer "${HLOG[2]}")" ||
	ok "h2 stopped without a sanitizer report"

finish
