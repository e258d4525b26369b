#!/bin/bash
# Live events (GET /v1/events) and the log as server-sent events, with a
# real kilnd, real builds and curl -N:
#  - a client listening while jobs run gets `job` and `target` events
#    through to succeeded, each with an id; ?job= keeps one job's events;
#  - a `: keep-alive` comment while nothing happens (KILN_SSE_KEEPALIVE_MS,
#    the test knob, shortens the period to 1 s here);
#  - Last-Event-ID resumes with exactly the events after it, and an id
#    kilnd no longer holds gives a resync first;
#  - every target's end is told: a job whose fetch fails, and the targets
#    a cancel ends while queued (the last event of each is its state);
#  - the followed log with Accept: text/event-stream: the `log` events'
#    JSON strings, decoded and joined, are the plain log, then `end`;
#  - clients that leave are let go of (kiln_event_subscribers back to 0,
#    kilnd healthy); no read token, 401.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root (the builds' sandbox)"
	exit 77
fi
. "$(dirname "$0")/lib.sh"
command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: $PY missing"; exit 77; }

READ=read-$(openssl rand -hex 16)
ADMIN=admin-$(openssl rand -hex 16)
cat >"$T/k.conf" <<EOF
[kilnd]
allow_local_repos = yes
paused = yes

[tokens]
ops = admin $(printf '%s\n' "$ADMIN" | "$KILND" --hash-token)
dash = read $(printf '%s\n' "$READ" | "$KILND" --hash-token)
EOF
export KILN_SSE_KEEPALIVE_MS=1000
start_kilnd -c "$T/k.conf" -w 2 || exit 1
unset KILN_SSE_KEEPALIVE_MS
RH=(-H "Authorization: Bearer $READ")
# The helpers' requests (api, post_job, wait_job) as the admin.
eval "api_untokened() $(declare -f api | tail -n +2)"
api() {
	local method=$1 path=$2
	shift 2
	api_untokened "$method" "$path" -H "Authorization: Bearer $ADMIN" "$@"
}

# sse FILE: the events of an event stream, one JSON line each:
# {"id":..,"event":..,"data":..} (data parsed), comments as {"comment":..}.
sse() {
	"$PY" - "$1" <<'EOF'
import json, sys
ev = {}
for line in open(sys.argv[1], encoding="utf-8", newline="\n"):
    line = line.rstrip("\n")
    if line == "":
        if ev:
            if "data" in ev:
                ev["data"] = json.loads(ev["data"])
            print(json.dumps(ev, sort_keys=True))
        ev = {}
    elif line.startswith(":"):
        print(json.dumps({"comment": line[1:].strip()}))
    else:
        k, _, v = line.partition(":")
        ev[k] = v[1:] if v.startswith(" ") else v
EOF
}

# --- scope ------------------------------------------------------------------
code=$(curl -s -o "$T/noauth" -w '%{http_code}' --max-time 5 "$URL/v1/events")
[ "$code" = 401 ] && ok "no token: 401" || fail "no token: $code $(cat "$T/noauth")"

# --- headers ----------------------------------------------------------------
curl -sN "${RH[@]}" -D "$T/ev.h" -o "$T/ev.head" --max-time 2 \
    "$URL/v1/events" || true
tr -d '\r' <"$T/ev.h" >"$T/ev.h2"
grep -qi '^content-type: text/event-stream' "$T/ev.h2" &&
	grep -qi '^cache-control: no-store' "$T/ev.h2" &&
	grep -qi '^x-accel-buffering: no' "$T/ev.h2" &&
	ok "text/event-stream, Cache-Control: no-store, X-Accel-Buffering: no" ||
	fail "headers: $(cat "$T/ev.h2")"
[ "$(head -1 "$T/ev.head")" = "retry: 3000" ] && ok "the stream starts with retry: 3000" ||
	fail "first line: $(head -1 "$T/ev.head")"

# --- jobs while a client listens --------------------------------------------
curl -sN "${RH[@]}" -o "$T/all.sse" "$URL/v1/events" &
ALL=$!
mkdir -p "$T/fx"
cat >"$T/fx/emit.sh" <<'EOF'
i=0
while [ $i -lt 300 ]; do
	printf 'line %d: caf\303\251 \342\202\254 \360\237\224\245 "quoted" \\ back\ttab\n' $i
	i=$((i + 1))
done
sleep 1
printf 'last line without newline'
EOF
REPO=$(make_repo emit "$T/fx")
JOB='{"repo": "'$REPO'", "ref": "main", "targets": ["linux/amd64", "linux/arm64"],
	"cache": false, "recipe": {"kind": "command", "command": "sh emit.sh && echo ok > /out/ok"}}'
# Builds are paused until every listener is there: nothing is missed.
for _ in $(seq 1 100); do
	grep -q '^retry: 3000' "$T/all.sse" 2>/dev/null && break
	sleep 0.1
done
post_job "$JOB"
expect_status 201 "submit job A"
A=$(printf '%s' "$BODY" | jq -r .id)
post_job "$JOB"
expect_status 201 "submit job B"
B=$(printf '%s' "$BODY" | jq -r .id)
curl -sN "${RH[@]}" -o "$T/a.sse" "$URL/v1/events?job=$A" &
ONE=$!
LOG=$URL/v1/jobs/$A/targets/linux_amd64/log
curl -sN "${RH[@]}" -H 'Accept: text/event-stream' -D "$T/log.h" \
    -o "$T/log.sse" "$LOG?follow=1" &
LSSE=$!
curl -sN "${RH[@]}" -H 'Accept: text/event-stream' -o "$T/raw.sse" \
    "$LOG?follow=1&raw=1" &
RSSE=$!
for _ in $(seq 1 100); do
	grep -q '^retry: 3000' "$T/a.sse" 2>/dev/null && break
	sleep 0.1
done
api POST /v1/admin/resume
expect_status 200 "resume builds"
wait_job "$A" 300 && expect_json .state succeeded "job A"
wait_job "$B" 300 && expect_json .state succeeded "job B"
# The signature is the last change of each job; a job reads as ended
# as soon as its commit is durable, a moment before the event is out.
# (jq -e's status is its last input's: keep-alive comments come last,
# hence any() over the slurped events.)
signed() {	# FILE JOB
	sse "$1" | jq -s -e "any(.[]; .event == \"job\" and .data.id == $2 and .data.signed)" \
	    >/dev/null 2>&1
}
for _ in $(seq 1 300); do
	signed "$T/all.sse" "$A" && signed "$T/all.sse" "$B" && signed "$T/a.sse" "$A" &&
		break
	sleep 0.1
done
sse "$T/all.sse" >"$T/all.json"
# The order of one job's events: submitted, running, targets running,
# both targets succeeded, the job succeeded, then signed.
got=$(jq -r "select(.data.id == $A or .data.job == $A) |
    [.event, (.data.target // \"-\"), .data.state, (.data.signed // false | tostring)] | join(\" \")" \
    "$T/all.json")
want="job - queued false"
[ "$(printf '%s\n' "$got" | head -1)" = "$want" ] && ok "job A: first event is '$want'" ||
	fail "job A's first event: $(printf '%s\n' "$got" | head -1)"
for t in linux/amd64 linux/arm64; do
	r=$(printf '%s\n' "$got" | grep -n "^target $t running false" | head -1 | cut -d: -f1)
	s=$(printf '%s\n' "$got" | grep -n "^target $t succeeded false" | head -1 | cut -d: -f1)
	[ -n "$r" ] && [ -n "$s" ] && [ "$r" -lt "$s" ] &&
		ok "job A $t: target running, then succeeded" ||
		fail "job A $t events: $got"
done
last=$(printf '%s\n' "$got" | tail -1)
[ "$last" = "job - succeeded true" ] && ok "job A ends with 'job succeeded' signed" ||
	fail "job A's last event: $last (all: $got)"
printf '%s\n' "$got" | grep -q "^job - running false" && ok "job A: a 'running' job event" ||
	fail "job A never running: $got"
jq -s -e "any(.[]; .event == \"job\" and .data.id == $B and .data.state == \"succeeded\")" \
    "$T/all.json" >/dev/null && ok "the unfiltered stream has job B too" ||
	fail "no job B in the unfiltered stream"
# Ids: every event has one, increasing.
if jq -s -e '[.[] | select(.event) | (.id | tonumber)] | . as $i |
    (length > 0) and ([range(1; length) | $i[.] > $i[. - 1]] | all)' "$T/all.json" >/dev/null; then
	ok "every event has an id, increasing"
else
	fail "ids: $(jq -c 'select(.event) | .id' "$T/all.json" | tr '\n' ' ')"
fi

# ?job=A: its events only (the same as the unfiltered ones of A from the
# moment it connected), none of B.
sse "$T/a.sse" >"$T/a.json"
if jq -s -e "[.[] | select(.event == \"job\" or .event == \"target\") |
    (.data.id // .data.job)] | (length > 0) and all(. == $A)" "$T/a.json" >/dev/null; then
	ok "?job=$A: only job $A's events"
else
	fail "?job=$A gave: $(jq -c . "$T/a.json" | head -20)"
fi
jq -s -e 'any(.[]; .event == "job" and .data.state == "succeeded")' "$T/a.json" >/dev/null &&
	ok "?job=$A: ends succeeded" || fail "?job=$A: no succeeded event"

# --- keep-alive -------------------------------------------------------------
n0=$(grep -c '^: keep-alive' "$T/all.sse" || true)
for _ in $(seq 1 100); do
	[ "$(grep -c '^: keep-alive' "$T/all.sse" || true)" -gt "$n0" ] && break
	sleep 0.1
done
[ "$(grep -c '^: keep-alive' "$T/all.sse" || true)" -gt "$n0" ] &&
	ok "a ': keep-alive' comment while nothing happens" ||
	fail "no keep-alive in: $(tail -5 "$T/all.sse")"

# --- Last-Event-ID ----------------------------------------------------------
ids=$(jq -r 'select(.event) | .id' "$T/all.json")
from=$(printf '%s\n' "$ids" | sed -n 3p)
want=$(printf '%s\n' "$ids" | sed -n '4,$p' | tr '\n' ' ')
curl -sN "${RH[@]}" -H "Last-Event-ID: $from" -o "$T/resume.sse" --max-time 3 \
    "$URL/v1/events" || true
got=$(sse "$T/resume.sse" | jq -r 'select(.event) | .id' | tr '\n' ' ')
[ -n "$want" ] && [ "$got" = "$want" ] && ok "Last-Event-ID $from resumes with the events after it" ||
	fail "Last-Event-ID $from: got '$got', want '$want'"
curl -sN "${RH[@]}" -H "Last-Event-ID: 12" -o "$T/old.sse" --max-time 2 \
    "$URL/v1/events" || true
first=$(sse "$T/old.sse" | jq -r 'select(.event) | .event' | head -1)
[ "$first" = resync ] && ok "an id no longer held: resync first" ||
	fail "Last-Event-ID 12: first event '$first'"

# --- the log as server-sent events ------------------------------------------
wait $LSSE || fail "the log's event stream did not end cleanly"
wait $RSSE || fail "the raw log's event stream did not end cleanly"
tr -d '\r' <"$T/log.h" | grep -qi '^content-type: text/event-stream' &&
	ok "the followed log with Accept: text/event-stream is text/event-stream" ||
	fail "log headers: $(cat "$T/log.h")"
curl -sS "${RH[@]}" -o "$T/plain.log" "$LOG"
curl -sS "${RH[@]}" -o "$T/plain.raw" "$LOG?raw=1"
for kind in log raw; do
	plain=$T/plain.$kind
	[ $kind = log ] || plain=$T/plain.raw
	sse "$T/$kind.sse" >"$T/$kind.json"
	"$PY" - "$T/$kind.json" "$plain" <<'EOF' && ok "$kind: the decoded log events are the plain log, then end" || fail "$kind: the events differ from the plain log"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
evs = [e for e in evs if "event" in e]
text = "".join(e["data"] for e in evs if e["event"] == "log")
plain = open(sys.argv[2], "rb").read()
ok = text.encode("utf-8") == plain and evs[-1]["event"] == "end" \
    and evs[-1]["data"] == {} and len(evs) > 2 and "last line without newline" in text
if not ok:
    print("events %d, text %d bytes, plain %d bytes, last %r" % (len(evs), len(text.encode()), len(plain), evs[-1:]), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
done

# --- every end is told ------------------------------------------------------
# A dashboard that keeps targets from events alone must see each one end:
# a job whose fetch fails (its claimed targets were told running) and the
# targets a cancel ends before any build started.  The last event of each
# target is its state in the API.
bad='{"repo": "'$REPO'", "ref": "no-such-ref", "targets": ["linux/amd64", "linux/arm64"],
	"cache": false, "recipe": {"kind": "command", "command": "true"}}'
post_job "$bad"
expect_status 201 "submit job C (its ref does not exist)"
C=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$C" 120 && expect_json .state failed "job C (the fetch fails)"
api POST /v1/admin/pause
expect_status 200 "pause builds"
post_job "$JOB"
expect_status 201 "submit job D"
D=$(printf '%s' "$BODY" | jq -r .id)
api POST "/v1/jobs/$D/cancel" -H 'Content-Type: application/json' -d '{}'
expect_status 200 "cancel job D while it is queued"
api POST /v1/admin/resume
expect_status 200 "resume builds"
for _ in $(seq 1 100); do
	sse "$T/all.sse" | jq -s -e "any(.[]; .event == \"job\" and .data.id == $C and .data.state == \"failed\") and
	    any(.[]; .event == \"job\" and .data.id == $D and .data.state == \"canceled\")" \
	    >/dev/null 2>&1 && break
	sleep 0.1
done
sse "$T/all.sse" >"$T/ends.json"
for j in "$C" "$D"; do
	api GET "/v1/jobs/$j"
	for t in linux/amd64 linux/arm64; do
		want=$(printf '%s' "$BODY" | jq -r --arg t "$t" '.targets[] | select(.target == $t) | .state')
		got=$(jq -r --arg t "$t" "select(.event == \"target\" and .data.job == $j and .data.target == \$t) |
		    .data.state" "$T/ends.json" | tail -1)
		[ -n "$want" ] && [ "$got" = "$want" ] &&
			ok "job $j $t: its last target event is its state ($want)" ||
			fail "job $j $t: last target event '$got', the API says '$want'"
	done
done

# --- clients that leave -----------------------------------------------------
pids=
for i in $(seq 1 20); do
	curl -sN "${RH[@]}" -o /dev/null "$URL/v1/events" &
	pids="$pids $!"
done
subs() {
	curl -s "${RH[@]}" "$URL/metrics" | sed -n 's/^kiln_event_subscribers //p'
}
for _ in $(seq 1 100); do
	[ "$(subs)" = 22 ] && break
	sleep 0.1
done
[ "$(subs)" = 22 ] && ok "22 subscribers counted" || fail "subscribers: $(subs), want 22"
# shellcheck disable=SC2086
kill $pids $ALL $ONE 2>/dev/null || true
# shellcheck disable=SC2086
wait $pids $ALL $ONE 2>/dev/null || true
for _ in $(seq 1 200); do
	[ "$(subs)" = 0 ] && break
	sleep 0.1
done
[ "$(subs)" = 0 ] && ok "clients that left are let go of (0 subscribers)" ||
	fail "subscribers after the clients left: $(subs)"
api GET /healthz
expect_status 200 "kilnd healthy after the clients left"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "kilnd stops cleanly" || fail "kilnd exit $KEXIT"
! grep -q "Sanitizer\|runtime error" "$KLOG" && ok "no sanitizer report" ||
	fail "sanitizer: $(grep -A5 'Sanitizer\|runtime error' "$KLOG" | head -20)"
finish
