#!/bin/bash
# Hosts of one farm with different target_lease: ha (120 s, so it beats
# every 30 s) is judged alive by hb (8 s) between its beats, by its own
# lease as its beat recorded (schema/pg/011_host_lease.sql): hb lists it
# alive and serves its files for 40 s, never a 503 "host gone".
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
PGD=$(mktemp -d /tmp/kiln-hostlease.XXXXXX)
BPID=
hostlease_cleanup() {
	if [ -n "$BPID" ]; then
		kill -KILL "$BPID" 2>/dev/null || true
		wait "$BPID" 2>/dev/null || true
	fi
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap hostlease_cleanup EXIT

PGURL=$("$PGCLUSTER" start "$PGD")
PA=$(pick_port)
PB=$(pick_port)
conf() {
	printf '[kilnd]\nallow_local_repos = yes\ndatabase = %s\nworkers = 1\n' "$PGURL"
	printf 'host_name = %s\ntarget_lease = %s\n' "$1" "$2"
	printf 'base_url = http://127.0.0.1:%s\nproxy_downloads = yes\n' "$3"
}
conf ha 120 "$PA" >"$T/a.conf"
conf hb 8 "$PB" >"$T/b.conf"
printf 'paused = yes\n' >>"$T/b.conf"
start_kilnd -c "$T/a.conf" -l "127.0.0.1:$PA" || exit 1
mkdir -p "$T/src"
echo x >"$T/src/README"
REPO=$(make_repo src "$T/src")
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"cache\": false, \"recipe\": {\"kind\": \"command\",
    \"command\": \"echo ok > /out/ok\"}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 60 || exit 1
# The farm's key on hb too.
mkdir -p "$T/sb"
cp "$STATE/kiln.key" "$STATE/kiln.pub" "$T/sb/"
"$KILND" -c "$T/b.conf" -l "127.0.0.1:$PB" -d "$T/sb" 2>"$T/kilnd.b.log" >/dev/null &
BPID=$!
bad=
for _ in $(seq 1 20); do
	sleep 2
	c=$(curl -s -o "$T/dl" -w '%{http_code}' \
	    "http://127.0.0.1:$PB/v1/jobs/$ID/artifacts/linux_amd64/ok")
	al=$(curl -s "http://127.0.0.1:$PB/v1/hosts" |
	    jq -r '.hosts[] | select(.name == "ha") | .alive')
	[ "$c" = 200 ] && [ "$al" = true ] || { bad="artifact $c, alive $al"; break; }
done
[ -z "$bad" ] && ok "ha is alive for hb, and its file served, between its beats" ||
	fail "ha (alive, lease 120 s) seen through hb (lease 8 s): $bad"
finish
