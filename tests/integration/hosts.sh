#!/bin/bash
# GET /v1/hosts against a real kilnd on SQLite: the one host lists itself
# with its host_name, base_url, version and slots (its workers), alive,
# and its beat moves seen_at on while it runs; a clean stop leaves its
# row with nothing running; a host whose last beat is old is not alive,
# and two host names are two rows, by name.
. "$(dirname "$0")/lib.sh"

# target_lease = 4 (its least): a beat with every tick (a quarter lease,
# 1 s, is shorter than the 2 s tick), alive for 8 s after the last.
conf() {
	printf '[kilnd]\npaused = yes\nallow_local_repos = yes\nworkers = 3\n'
	printf 'target_lease = 4\nhost_name = %s\n' "$1"
	printf 'base_url = http://%s.invalid:8080\n' "$1"
}
conf it-host-b >"$T/b.conf"
conf it-host-a >"$T/a.conf"

start_kilnd -c "$T/b.conf"

api GET /v1/info
VERSION=$(printf '%s' "$BODY" | jq -r .version)

api GET /v1/hosts
expect_status 200 "hosts"
expect_json '.hosts | length' 1 "one host on SQLite"
expect_json '.hosts[0].name' it-host-b "its host_name"
expect_json '.hosts[0].base_url' http://it-host-b.invalid:8080 "its base_url"
expect_json '.hosts[0].version' "$VERSION" "its version, as /v1/info says"
expect_json '.hosts[0].slots' 3 "slots = workers"
expect_json '.hosts[0].running' 0 "nothing running (paused)"
expect_json '.hosts[0].alive' true "alive"
expect_json '.hosts[0].started_at <= .hosts[0].seen_at' true \
	"seen at or after its start"
FIRST=$(printf '%s' "$BODY" | jq -r '.hosts[0].seen_at')
NOW_MS=$(($(date +%s) * 1000))
[ "$FIRST" -gt $((NOW_MS - 60000)) ] && [ "$FIRST" -lt $((NOW_MS + 60000)) ] &&
	ok "seen_at is ms since the epoch, now" ||
	fail "seen_at $FIRST is not near now ($NOW_MS ms)"

# The beat goes on with the heartbeats (every tick here).
seen=$FIRST
for _ in $(seq 1 50); do
	sleep 0.2
	api GET /v1/hosts
	seen=$(printf '%s' "$BODY" | jq -r '.hosts[0].seen_at')
	[ "$seen" -gt "$FIRST" ] && break
done
[ "$seen" -gt "$FIRST" ] && ok "seen_at moves on ($FIRST -> $seen)" ||
	fail "seen_at still $FIRST after 10 s: $BODY"

api GET /metrics
grep -qx 'kiln_host_info{host="it-host-b"} 1' <<<"$BODY" &&
	ok "/metrics names the host" ||
	fail "/metrics has no kiln_host_info{host=\"it-host-b\"} 1"

# A clean stop writes the row once more, with nothing running.
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "stopped cleanly" || fail "kilnd exited $KEXIT"
last=$(db "select heartbeat_at from hosts where name = 'it-host-b'")
[ "$last" -ge "$seen" ] && ok "the stop's beat is the last ($last)" ||
	fail "heartbeat_at $last is older than the last seen_at $seen"
[ "$(db "select running || ' ' || slots from hosts")" = "0 3" ] &&
	ok "the stopped host's row: running 0, slots 3" ||
	fail "row after stop: $(db 'select * from hosts')"

# Its last beat long ago (as after a crash), and another host_name on
# the same state directory: two rows, by name; only the new one alive.
db "update hosts set heartbeat_at = 1000 where name = 'it-host-b'"
start_kilnd -c "$T/a.conf"
api GET /v1/hosts
expect_status 200 "hosts, two names"
expect_json '[.hosts[].name] | join(",")' it-host-a,it-host-b "two rows, by name"
expect_json '[.hosts[].alive] | map(tostring) | join(",")' true,false \
	"alive: the running one; not the one beaten long ago"
expect_json '.hosts[1].seen_at' 1000 "the old row as it was"

# A target that the earlier name built, whose log is gone: SQLite has one
# host, so the answer is this host's 404, never a 307 (here: to itself,
# the old row alive with this host's base_url) nor a 503.
mkdir -p "$T/src"
echo hosts >"$T/src/README"
REPO=$(make_repo src "$T/src")
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"recipe\": {\"kind\": \"command\", \"command\": \"true\"}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
db "update job_targets set state = 'succeeded', host = 'it-host-b' where job_id = $ID"
db "update hosts set heartbeat_at = $(date +%s%3N),
    base_url = 'http://it-host-a.invalid:8080' where name = 'it-host-b'"
api GET "/v1/jobs/$ID/targets/linux_amd64/log"
expect_status 404 "a log gone, built under the earlier host_name: 404 on SQLite"
stop_kilnd TERM

finish
