#!/bin/bash
# A farm of three kilnd hosts on one PostgreSQL queue (tests/pgcluster.sh
# runs a throwaway server), one signing key shared by the operator:
#   1. spread: jobs submitted to h1 are built on several hosts, and every
#      host reads the same jobs and lists the same three live hosts;
#   2. signed once: each job is signed by one host; its SHA256SUMS and
#      artifacts, fetched from every host with curl -L (a host that has
#      not the file answers 307 to the one that has), verify with
#      minisign -V and sha256sum -c; a log read through another host is
#      the builder's;
#   3. kill -9 of a host mid-build: the others answer 503 with
#      Retry-After for its files; after the lease they build its
#      targets again (attempt 2), nothing succeeds twice, and a restart
#      of the killed host takes back nothing;
#   4. PostgreSQL restarted (immediate), then down for 8 s, while jobs
#      are posted to h1 and h3: a POST is 201 or 503 (503 once it waited
#      for a connection longer than the queue does), every 201 ends
#      succeeded, every host reconnects and builds;
#   5. a host paused (SIGSTOP of kilnd and its build) past its lease:
#      another builds the target (attempt 2); resumed (SIGCONT), the
#      paused host's late result is refused by the attempt (fencing) and
#      the job's one artifact and SHA256SUMS are the other host's;
#   6. a cancel posted to another host than the one building: the
#      builder stops its build within seconds, the target ends canceled.
# Needs root: initdb and pg_ctl run as the postgres user.  FARM_KEEP=DIR
# keeps the logs there.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/farmlib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
for tool in git minisign sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
PSQL=$(command -v psql || echo "$PGBIN/psql")

# The cluster's directory is short (its Unix socket path must fit).
PGD=$(mktemp -d /tmp/kiln-farm-pg.XXXXXX)
LOOP=

farm_cleanup() {
	local i
	if [ -n "$LOOP" ]; then
		kill "$LOOP" 2>/dev/null || true
		wait "$LOOP" 2>/dev/null || true
	fi
	for i in 1 2 3; do
		if [ -n "${HPID[$i]:-}" ] && kill -0 "${HPID[$i]}" 2>/dev/null; then
			kill -KILL "${HPID[$i]}" 2>/dev/null || true
			wait "${HPID[$i]}" 2>/dev/null || true
		fi
	done
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	# FARM_KEEP=DIR: keep the hosts' logs, the POST loop's and the
	# server's there, for a look after the run.
	if [ -n "${FARM_KEEP:-}" ]; then
		mkdir -p "$FARM_KEEP"
		cp "$T"/kilnd.*.log "$T"/loop.out "$PGD/pg/server.log" \
		    "$FARM_KEEP/" 2>/dev/null || true
	fi
	rm -rf "$PGD"
	cleanup
}
trap farm_cleanup EXIT

T0=$(date +%s.%N)
LAP=$T0
# lap NAME: print the seconds since the last lap and since the start.
lap() {
	local now
	now=$(date +%s.%N)
	awk -v w="$1" -v n="$now" -v l="$LAP" -v t="$T0" \
	    'BEGIN { printf "# time: %s %.1f s (total %.1f s)\n", w, n - l, n - t }'
	LAP=$now
}

q() {
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$PGURL" -c "$1"
}

PGURL=$("$PGCLUSTER" start "$PGD")
lap "PostgreSQL started"

# One key for the farm, made once and copied into every state directory,
# as an operator would.
farm_keys 3
PUB=$T/key/kiln.pub

# Each host's own lines; the lease is short: parts 3 and 5 wait for it.
HOSTCONF='workers = 2
target_lease = 6'
for i in 1 2 3; do
	start_host "$i" "$HOSTCONF" || { fail "h$i does not start on PostgreSQL"; exit 1; }
done
ok "three hosts on one PostgreSQL: ${HURL[1]} ${HURL[2]} ${HURL[3]}"
lap "hosts started"

mkdir -p "$T/src"
echo farm >"$T/src/README"
REPO=$(make_repo src "$T/src")
TARGETS='["linux/amd64", "linux/arm64", "linux/riscv64"]'
# cache false: every target is built, none taken from an equal build.
job_json() {
	printf '{"repo": "%s", "ref": "main", "targets": %s, "cache": false,
	    "recipe": {"kind": "command", "command": "%s"}}' "$REPO" "$2" "$1"
}
# Each build's output differs (its target, its shell's pid and the clock):
# a blob is in the store of the host that built it only.
FAST=$(job_json 'echo $KILN_TARGET $$ $(date +%N) > /out/ok' "$TARGETS")
SLOW=$(job_json 'sleep 4; echo $KILN_TARGET $$ $(date +%N) > /out/ok' "$TARGETS")

# submit_to N JSON: POST to hN; adds the job's id to IDS.
submit_to() {
	on "$1"
	post_job "$2"
	[ "$STATUS" = 201 ] || { fail "POST to h$1: $STATUS $BODY"; return 0; }
	IDS="$IDS $(printf '%s' "$BODY" | jq -r .id)"
}

# wait_all LIMIT ID...: every job ended, through h1; fails for each that
# is not succeeded.
wait_all() {
	local limit=$1 id bad=0
	shift
	on 1
	for id in "$@"; do
		wait_job "$id" "$limit" || { bad=$((bad + 1)); continue; }
		[ "$(printf '%s' "$BODY" | jq -r .state)" = succeeded ] ||
			{ fail "job $id: $(printf '%s' "$BODY" | jq -c '{state, error, targets}')"; bad=$((bad + 1)); }
	done
	[ $bad -eq 0 ] && ok "jobs $* all succeeded"
}

# hosts_of ID...: target counts by host, as h1 reads them.
hosts_of() {
	local id
	on 1
	for id in "$@"; do
		api GET "/v1/jobs/$id"
		printf '%s' "$BODY" | jq -r '.targets[].host'
	done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'
}

no_double_success() {
	local dup
	dup=$(q "SELECT job_id || ' ' || target FROM job_targets
	    WHERE state = 'succeeded' GROUP BY job_id, target HAVING count(*) > 1")
	[ -z "$dup" ] && ok "$1: no target has two succeeded rows" ||
		fail "$1: targets succeeded twice: $dup"
	dup=$(q "SELECT a.id FROM artifacts a JOIN job_targets t ON t.id = a.target_id
	    WHERE a.host IS DISTINCT FROM t.host")
	[ -z "$dup" ] && ok "$1: every artifact row names its target's host" ||
		fail "$1: artifact rows of another host than their target's: $dup"
}

# ---- 1. spread ----------------------------------------------------------
IDS=
for n in 1 2 3 4 5 6; do
	submit_to 1 "$FAST"
done
IDS1=$IDS
wait_all 120 $IDS1
DIST=$(hosts_of $IDS1)
echo "# spread of 18 targets submitted to h1: $DIST"
[ "$(echo "$DIST" | wc -w)" -ge 2 ] && ok "targets built on at least two hosts ($DIST)" ||
	fail "all 18 targets on one host: $DIST"
same=0
for id in $IDS1; do
	on 1; api GET "/v1/jobs/$id"
	want=$(printf '%s' "$BODY" | jq -S '{state, targets}')
	for h in 2 3; do
		on "$h"; api GET "/v1/jobs/$id"
		got=$(printf '%s' "$BODY" | jq -S '{state, targets}' 2>/dev/null) || got=
		[ "$got" = "$want" ] && same=$((same + 1)) ||
			fail "job $id through h$h differs from h1: $(diff <(echo "$want") <(echo "$got") | head -10)"
	done
done
[ $same -eq 12 ] && ok "each of the 6 jobs reads the same through h2 and h3 as through h1"
for h in 1 2 3; do
	on "$h"; api GET /v1/hosts
	expect_json '[.hosts[] | select(.alive) | .name] | join(",")' h1,h2,h3 \
	    "GET /v1/hosts on h$h"
done
on 1; api GET /v1/info
expect_json .schema "$(find "$SRCDIR/schema/pg" -name '*.sql' | wc -l)" \
    "/v1/info's schema is PostgreSQL's migrations"
lap "1. spread"

# ---- 2. signed once -----------------------------------------------------
# fetch_code FILE URL: prints the HTTP status (000: no answer); no
# redirect followed.
fetch_code() {
	curl -s -o "$1" -w '%{http_code}' "$2" 2>/dev/null || true
}

# expect_redirect URL OWNER_URL: a host that has not the file sends the
# client to the one that has it: 307, Location the same path there.
expect_redirect() {
	local got
	got=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$1" 2>/dev/null) || true
	[ "$got" = "307 $2" ] || { fail "$1: '$got', not '307 $2'"; return 1; }
	REDIRECTS=$((REDIRECTS + 1))
}

# verify_job ID [HOSTS [LINES]]: SHA256SUMS (LINES lines, default 3), its signature and every artifact,
# fetched from each of HOSTS (default 1 2 3) with curl -L, verify with
# the shared key and sha256sum -c; a host that did not sign (build)
# answers 307 to the signer (builder); one host logged the signing and
# the database names it.
verify_job() {
	local id=$1 hosts=${2:-1 2 3} lines=${3:-3} d=$T/v/$1 h o f sum path tdir host signer n s
	mkdir -p "$d"
	signer=$(grep -l "job $id: signed SHA256SUMS" "$T"/kilnd.h*.log |
	    sed 's/.*kilnd\.\(h[0-9]\)\..*/\1/' | sort -u | tr '\n' ' ') || true
	s=${signer% }
	s=${s#h}
	for h in $hosts; do
		mkdir -p "$d/h$h"
		for f in SHA256SUMS SHA256SUMS.minisig; do
			curl -sfL -o "$d/h$h/$f" "${HURL[$h]}/v1/jobs/$id/$f" ||
				{ fail "job $id: h$h does not serve $f (curl -L)"; return; }
			[ "$h" = "$s" ] || [ -z "$s" ] ||
				expect_redirect "${HURL[$h]}/v1/jobs/$id/$f" \
				    "${HURL[$s]}/v1/jobs/$id/$f" || return
		done
		minisign -V -q -p "$PUB" -m "$d/h$h/SHA256SUMS" -x "$d/h$h/SHA256SUMS.minisig" ||
			{ fail "job $id: minisign -V of SHA256SUMS from h$h fails"; return; }
	done
	on 1; api GET "/v1/jobs/$id"
	while read -r sum path; do
		tdir=${path%%/*}
		host=$(printf '%s' "$BODY" |
		    jq -r --arg t "$tdir" '.targets[] | select((.target | gsub("/"; "_")) == $t) | .host')
		o=${host#h}
		for h in $hosts; do
			mkdir -p "$d/h$h/$tdir"
			curl -sfL -o "$d/h$h/$path" "${HURL[$h]}/v1/jobs/$id/artifacts/$path" 2>/dev/null ||
				{ fail "job $id: h$h does not serve $path (built by '$host'; curl -L)"; return; }
			[ "$h" = "$o" ] ||
				expect_redirect "${HURL[$h]}/v1/jobs/$id/artifacts/$path" \
				    "${HURL[$o]:-none}/v1/jobs/$id/artifacts/$path" || return
		done
	done <"$d/h${hosts%% *}/SHA256SUMS"
	[ "$(wc -l <"$d/h${hosts%% *}/SHA256SUMS")" -eq "$lines" ] ||
		{ fail "job $id: SHA256SUMS has not $lines lines: $(cat "$d/h${hosts%% *}/SHA256SUMS")"; return; }
	for h in $hosts; do
		(cd "$d/h$h" && sha256sum --quiet -c SHA256SUMS) ||
			{ fail "job $id: sha256sum -c of the files from h$h fails"; return; }
	done
	n=$(cat "$T"/kilnd.h*.log | grep -c "job $id: signed SHA256SUMS") || true
	[ "$n" = 1 ] || { fail "job $id: signed $n times (logs of: $signer)"; return; }
	[ "$(q "SELECT count(*) FROM jobs WHERE id = $id AND sums_sha256 IS NOT NULL
	    AND sig_sha256 IS NOT NULL AND sign_pending = 0")" = 1 ] ||
		{ fail "job $id: no signed record: $(q "SELECT sums_sha256, sig_sha256, sign_pending FROM jobs WHERE id = $id")"; return; }
	[ "$(q "SELECT signed_by FROM jobs WHERE id = $id") " = "$signer" ] ||
		{ fail "job $id: signed_by '$(q "SELECT signed_by FROM jobs WHERE id = $id")', logged by $signer"; return; }
	[ "$(q "SELECT sums_sha256 FROM jobs WHERE id = $id")" = \
	  "$(sha256sum "$d/h${hosts%% *}/SHA256SUMS" | cut -d' ' -f1)" ] ||
		{ fail "job $id: the recorded SHA256SUMS digest is not the served file's"; return; }
	VERIFIED=$((VERIFIED + 1))
}

REDIRECTS=0
VERIFIED=0
for id in $IDS1; do
	verify_job "$id"
done
[ $VERIFIED -eq 6 ] && ok "6 jobs: signed once; from every host (curl -L), minisign -V and sha256sum -c verify ($REDIRECTS answers 307 to the owner)"
# A log through a host that did not build the target: 307 to the
# builder, and with -L the builder's log, followed or not.
ID=${IDS1## }; ID=${ID%% *}
on 1; api GET "/v1/jobs/$ID"
host=$(printf '%s' "$BODY" | jq -r '.targets[0].host')
tname=$(printf '%s' "$BODY" | jq -r '.targets[0].target | gsub("/"; "_")')
o=${host#h}
h=$((o % 3 + 1))
LP=/v1/jobs/$ID/targets/$tname/log
expect_redirect "${HURL[$h]}$LP?follow=1" "${HURL[$o]}$LP?follow=1" &&
	ok "a log asked of h$h, built by $host: 307 to $host"
curl -sf "${HURL[$o]}$LP" >"$T/log.owner" || fail "GET $LP on its builder $host"
curl -sfL "${HURL[$h]}$LP" >"$T/log.other" || fail "GET -L $LP on h$h"
curl -sfL "${HURL[$h]}$LP?follow=1" >"$T/log.follow" || fail "GET -L $LP?follow=1 on h$h"
[ -s "$T/log.owner" ] && cmp -s "$T/log.owner" "$T/log.other" &&
	cmp -s "$T/log.owner" "$T/log.follow" &&
	ok "the log of job $ID through h$h with -L, followed or not, is $host's" ||
	fail "the log through h$h differs from $host's: $(diff "$T/log.owner" "$T/log.other" | head -5)"
no_double_success "spread"
# Each host serves the farm's key.
for h in 1 2 3; do
	curl -sf "${HURL[$h]}/v1/pubkey" | cmp -s - "$PUB" &&
		ok "h$h serves the shared public key" ||
		fail "h$h: /v1/pubkey is not the shared kiln.pub"
done
lap "2. signed once"

# ---- 3. a host killed ---------------------------------------------------
IDS=
for n in 1 2 3 4; do
	submit_to 1 "$SLOW"
done
IDS3=$IDS
# h2_running: "job target" of each target the queue shows running on h2.
h2_running() {
	local id
	on 1
	for id in $IDS3; do
		api GET "/v1/jobs/$id"
		printf '%s' "$BODY" | jq -r --arg id "$id" \
		    '.targets[] | select(.host == "h2" and .state == "running") | "\($id) \(.target)"'
	done
}
for _ in $(seq 1 150); do
	[ -n "$(h2_running)" ] && break
	sleep 0.2
done
if [ -z "$(h2_running)" ]; then
	fail "h2 never ran a target of jobs$IDS3: $(hosts_of $IDS3)"
else
	kill -KILL "${HPID[2]}"
	wait "${HPID[2]}" 2>/dev/null || true
	HPID[2]=
	# Read after the kill: what h2 had then is still running under its
	# name until a lease runs out (6 s).
	HAD=$(h2_running)
	echo "# h2 killed while running: $(echo "$HAD" | tr '\n' ';')"
	lap "3. h2 runs a target, killed"
	wait_all 120 $IDS3
	lap "3. jobs done without h2"
	# An artifact h2 built earlier: gone with it, 503 (not 404) from
	# the others, with Retry-After, until h2 is back (once h2 is no
	# longer alive: two leases without a beat).
	for _ in $(seq 1 100); do
		on 1; api GET /v1/hosts
		[ "$(printf '%s' "$BODY" | jq -r '.hosts[] | select(.name == "h2") | .alive')" = false ] && break
		sleep 0.2
	done
	GONE=
	for id in $IDS1; do
		on 1; api GET "/v1/jobs/$id/artifacts"
		GONE=$(printf '%s' "$BODY" | jq -r --arg id "$id" '.artifacts[] |
		    select(.target as $t | any($job.targets[]; .target == $t and .host == "h2")) | .url' \
		    --argjson job "$(curl -sf "${HURL[1]}/v1/jobs/$id")" | head -1)
		[ -n "$GONE" ] && break
	done
	if [ -z "$GONE" ]; then
		fail "no artifact of jobs$IDS1 was built by h2: $(hosts_of $IDS1)"
	else
		for h in 1 3; do
			got=$(curl -s -o "$T/gone.body" -D "$T/gone.hdr" -w '%{http_code}' "${HURL[$h]}$GONE") || true
			ra=$(tr -d '\r' <"$T/gone.hdr" | sed -n 's/^[Rr]etry-[Aa]fter: //p')
			[ "$got" = 503 ] && [ -n "$ra" ] && grep -q h2 "$T/gone.body" &&
				ok "$GONE (h2's, h2 killed) from h$h: 503, Retry-After $ra, names h2" ||
				fail "$GONE from h$h with h2 killed: $got Retry-After '$ra' $(cat "$T/gone.body")"
		done
	fi
	bad=0
	while read -r id target; do
		on 1; api GET "/v1/jobs/$id"
		row=$(printf '%s' "$BODY" | jq -r --arg t "$target" \
		    '.targets[] | select(.target == $t) | "\(.state) \(.attempt) \(.host)"')
		set -- $row
		if [ "$1" = succeeded ] && [ "$2" -gt 1 ] && [ "$3" != h2 ]; then
			echo "# job $id $target: h2's, now $row"
		else
			fail "job $id $target (h2's at the kill): state attempt host = $row"
			bad=$((bad + 1))
		fi
	done <<<"$HAD"
	[ $bad -eq 0 ] && ok "h2's targets were built again elsewhere, attempt > 1"
	grep -h "claimed back" "$T"/kilnd.h[13].*.log | head -4 | sed 's/^/# /'
	grep -q "claimed back" "$T"/kilnd.h[13].*.log &&
		ok "h1 or h3 logs that it claimed h2's targets back" ||
		fail "no 'claimed back' line in the logs of h1 and h3"
	for id in $IDS3; do
		verify_job "$id" "1 3"
	done
	no_double_success "after the kill"
	# A restart of h2 takes back only its own running targets: none.
	BEFORE=$(q "SELECT string_agg(id || state || attempt || host, ',' ORDER BY id)
	    FROM job_targets")
	start_host 2 "$HOSTCONF" || fail "h2 does not start again"
	sleep 1
	grep -q "recovered:" "${HLOG[2]}" &&
		fail "h2 recovered targets at its restart: $(grep recovered: "${HLOG[2]}")" ||
		ok "h2 restarted recovers nothing (none of its targets still running)"
	[ "$(q "SELECT string_agg(id || state || attempt || host, ',' ORDER BY id)
	    FROM job_targets")" = "$BEFORE" ] &&
		ok "h2's restart changes no target" ||
		fail "h2's restart changed targets"
	on 2; api GET /v1/hosts
	expect_json '[.hosts[] | select(.alive) | .name] | join(",")' h1,h2,h3 \
	    "GET /v1/hosts on h2 restarted"
	# h2 keeps the log of the attempt it lost; the target's log is
	# its new builder's: h2 sends the client there.
	read -r id target <<<"$HAD"
	on 1; api GET "/v1/jobs/$id"
	o=$(printf '%s' "$BODY" | jq -r --arg t "$target" '.targets[] | select(.target == $t) | .host')
	o=${o#h}
	LP=/v1/jobs/$id/targets/${target//\//_}/log
	expect_redirect "${HURL[2]}$LP" "${HURL[$o]:-none}$LP" &&
		ok "the log of job $id $target from h2 (its lost attempt's is there): 307 to h$o"
fi
lap "3. a host killed"

# ---- 4. PostgreSQL restarted under load ---------------------------------
# While POSTs go to h1 and h3: a restart (immediate: a crash and its
# recovery, a fraction of a second), then an outage longer than the
# queue's wait for a connection (5 s), in which a POST must answer 503
# with Retry-After rather than wait.
OUTAGE=8
ONE=$(job_json 'echo built > /out/ok' '["linux/amd64"]')
# post_loop: POST to h1 and h3 in turn until $T/stop exists; one line per
# POST: host status id retry-after seconds end-ms.
post_loop() {
	local n=0 h out id ra
	while [ ! -e "$T/stop" ]; do
		h=$((n % 2 == 0 ? 1 : 3))
		n=$((n + 1))
		out=$(curl -sS --max-time 20 -o "$T/loop.body" -D "$T/loop.hdr" \
		    -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
		    --data-binary "$ONE" "${HURL[$h]}/v1/jobs" 2>/dev/null) || out="000 20"
		id=$(jq -r '.id // empty' "$T/loop.body" 2>/dev/null) || id=
		ra=$(tr -d '\r' <"$T/loop.hdr" | sed -n 's/^[Rr]etry-[Aa]fter: //p')
		set -- $out
		echo "h$h $1 ${id:--} ${ra:--} $2 $(date +%s%3N)"
		sleep 0.1
	done >"$T/loop.out"
}
rm -f "$T/stop"
post_loop &
LOOP=$!
sleep 2
RS=$(date +%s%3N)
"$PGCLUSTER" restart "$PGD" immediate >/dev/null ||
	fail "pgcluster.sh restart immediate"
lap "4. PostgreSQL restarted (immediate)"
sleep 3
"$PGCLUSTER" stop "$PGD" immediate >/dev/null || fail "pgcluster.sh stop immediate"
DOWN=$(date +%s%3N)
sleep $OUTAGE
"$PGCLUSTER" start "$PGD" >/dev/null || fail "pgcluster.sh start after the outage"
UP=$(date +%s%3N)
RS=$UP
lap "4. PostgreSQL down ${OUTAGE} s, started again"
sleep 4
touch "$T/stop"
wait "$LOOP" || true
LOOP=
n201=$(awk '$2 == 201' "$T/loop.out" | wc -l)
n503=$(awk '$2 == 503' "$T/loop.out" | wc -l)
other=$(awk '$2 != 201 && $2 != 503' "$T/loop.out")
echo "# POSTs during the restart: $(wc -l <"$T/loop.out") in all, $n201 x 201," \
    "$n503 x 503, the slowest $(sort -g -k5 "$T/loop.out" | tail -1 | awk '{ print $5 }') s"
[ -z "$other" ] && ok "every POST answered 201 or 503" ||
	fail "POSTs answered neither 201 nor 503: $(echo "$other" | head -5 | tr '\n' ';')"
nra=$(awk '$2 == 503 && $4 == "-"' "$T/loop.out" | wc -l)
[ "$nra" -eq 0 ] && ok "every 503 has Retry-After ($n503)" ||
	fail "$nra answers 503 without Retry-After"
[ "$n201" -gt 0 ] && ok "$n201 POSTs accepted around the restart" ||
	fail "no POST accepted around the restart"
# Those answered while the server was down (a second after the stop, so
# that none is a commit that came just before it): 503.
indown=$(awk -v d="$DOWN" -v u="$UP" '$6 > d + 1000 && $6 < u' "$T/loop.out")
echo "# answered during the ${OUTAGE} s outage: $(echo "$indown" | awk 'NF { print $1, $2, $5 "s" }' | tr '\n' ';')"
if [ -z "$indown" ]; then
	fail "no POST answered during the ${OUTAGE} s outage"
elif [ -z "$(echo "$indown" | awk '$2 != 503')" ]; then
	ok "POSTs answered during the outage are 503"
else
	fail "POSTs during the outage: $(echo "$indown" | awk '$2 != 503 { print $1, $2 }' | sort | uniq -c | tr '\n' ';')"
fi
IDS4=$(awk '$2 == 201 { print $3 }' "$T/loop.out")
wait_all 120 $IDS4
lap "4. accepted jobs done"
# Every host beats again after the restart, and builds.
for h in 1 2 3; do
	on "$h"
	api GET /healthz
	expect_status 200 "h$h answers after the restart"
done
IDS=
for h in 1 2 3; do
	submit_to "$h" "$FAST"
done
FINAL=$IDS
wait_all 120 $FINAL
echo "# after the restart, built by: $(hosts_of $IDS4 $FINAL)"
on 1; api GET /v1/hosts
alive=$(printf '%s' "$BODY" | jq -r --argjson rs "$RS" \
    '[.hosts[] | select(.alive and .seen_at > $rs) | .name] | join(",")')
[ "$alive" = h1,h2,h3 ] && ok "h1, h2 and h3 beat again after the restart" ||
	fail "hosts seen since the restart: '$alive': $BODY"
for id in $FINAL; do
	verify_job "$id"
done
no_double_success "after the restart"
lap "4. PostgreSQL restarted under load"

# ---- 5. a host paused past its lease ------------------------------------
# A frozen VM: kilnd and its builds stopped at once (SIGSTOP), so it beats
# no more; after its lease another host claims the target back (attempt
# 2) and builds it.  Resumed (SIGCONT), the paused host's heartbeat or
# finish carries attempt 1: refused, its result thrown away, counted.
# tree_of PID: PID and its descendants, parents first.
tree_of() {
	local c
	echo "$1"
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		tree_of "$c"
	done
}
# superseded N: kiln_superseded_results_total on hN.
superseded() {
	curl -sf "${HURL[$1]}/metrics" |
	    awk '$1 == "kiln_superseded_results_total" { print $2 }'
}
IDS=
submit_to 1 "$(job_json 'sleep 5; echo $KILN_TARGET $$ $(date +%N) > /out/ok' '["linux/amd64"]')"
PID5=${IDS# }
X=
for _ in $(seq 1 100); do
	on 1; api GET "/v1/jobs/$PID5"
	X=$(printf '%s' "$BODY" | jq -r '.targets[0] | select(.state == "running") | .host' | sed 's/^h//')
	[ -n "$X" ] && break
	sleep 0.1
done
if [ -z "$X" ]; then
	fail "job $PID5 never ran: $BODY"
else
	# In its sleep: the worker and the build started.
	sleep 1.5
	S0=$(superseded "$X")
	# The daemon first: it forks nothing while the rest is stopped.
	FROZEN=$(tree_of "${HPID[$X]}")
	kill -STOP $FROZEN
	echo "# h$X paused with its build: $(echo $FROZEN | wc -w) processes"
	lap "5. h$X paused"
	Y=
	for _ in $(seq 1 150); do
		on $((X % 3 + 1)); api GET "/v1/jobs/$PID5"
		row=$(printf '%s' "$BODY" | jq -r '"\(.state) \(.targets[0].attempt) \(.targets[0].host)"')
		set -- $row
		[ "$1" = succeeded ] && { Y=${3#h}; break; }
		sleep 0.2
	done
	kill -CONT $FROZEN
	lap "5. job built elsewhere, h$X resumed"
	if [ -z "$Y" ] || [ "$Y" = "$X" ] || [ "$2" != 2 ]; then
		fail "job $PID5 with h$X paused: state attempt host = $row"
	else
		ok "h$X paused: job $PID5 built by h$Y, attempt 2"
	fi
	# Resumed, h$X learns that its claim is gone: refused, counted.
	n=
	for _ in $(seq 1 100); do
		n=$(superseded "$X")
		[ -n "$n" ] && [ "$n" -gt "${S0:-0}" ] && break
		sleep 0.1
	done
	[ -n "$n" ] && [ "$n" -gt "${S0:-0}" ] &&
		ok "h$X resumed: kiln_superseded_results_total $S0 -> $n" ||
		fail "h$X resumed: kiln_superseded_results_total '$S0' -> '$n'"
	grep -q "attempt 1 was given to another run; its result is discarded" "${HLOG[$X]}" &&
		ok "h$X logs that its late result is discarded" ||
		fail "h$X does not log its result discarded: $(tail -5 "${HLOG[$X]}")"
	# Settled: the target is still h$Y's attempt 2, with h$Y's one file.
	sleep 1
	on 1; api GET "/v1/jobs/$PID5"
	expect_json '"\(.state) \(.targets[0].state) \(.targets[0].attempt) \(.targets[0].host)"' \
	    "succeeded succeeded 2 h$Y" "job $PID5 after h$X resumed"
	[ "$(q "SELECT count(*) || ' ' || min(a.host) FROM artifacts a
	    JOIN job_targets t ON t.id = a.target_id WHERE t.job_id = $PID5")" = "1 h$Y" ] &&
		ok "job $PID5 has one artifact row, h$Y's" ||
		fail "job $PID5 artifact rows: $(q "SELECT a.host, a.sha256 FROM artifacts a
		    JOIN job_targets t ON t.id = a.target_id WHERE t.job_id = $PID5")"
	verify_job "$PID5" "1 2 3" 1
	api GET "/v1/jobs/$PID5/artifacts"
	printf '%s' "$BODY" | jq -r '.artifacts[] |
	    "\(.sha256)  \(.target | gsub("/"; "_"))/\(.name)"' >"$T/v5.json.sums"
	cmp -s "$T/v5.json.sums" "$T/v/$PID5/h1/SHA256SUMS" &&
		[ -e "$T/s$Y/store/sha256/$(cut -c1-2 "$T/v5.json.sums")/$(cut -d' ' -f1 "$T/v5.json.sums")" ] &&
		ok "SHA256SUMS of job $PID5 lists h$Y's artifact, which h$Y's store holds" ||
		fail "SHA256SUMS of job $PID5: $(cat "$T/v/$PID5/h1/SHA256SUMS") artifacts: $(cat "$T/v5.json.sums")"
	no_double_success "after a pause"
fi
lap "5. a host paused past its lease"

# ---- 6. a cancel through another host ------------------------------------
# The build runs on hX; the cancel is posted to another host hY, whose
# queue tells every host (NOTIFY kiln_cancel; the heartbeat as the
# fallback): hX stops its build within seconds, and the target ends
# canceled -- not succeeded, not superseded.
IDS=
submit_to 1 "$(job_json 'sleep 60; echo late > /out/ok' '["linux/amd64"]')"
CID=${IDS# }
X=
for _ in $(seq 1 100); do
	on 1; api GET "/v1/jobs/$CID"
	X=$(printf '%s' "$BODY" | jq -r '.targets[0] | select(.state == "running") | .host' | sed 's/^h//')
	[ -n "$X" ] && break
	sleep 0.1
done
if [ -z "$X" ]; then
	fail "job $CID never ran: $BODY"
else
	Y=$((X % 3 + 1))
	S0=$(superseded "$X")
	sleep 1	# in its sleep
	on "$Y"; api POST "/v1/jobs/$CID/cancel"
	expect_status 200 "cancel of job $CID (building on h$X) through h$Y"
	t0=$(date +%s.%N)
	said=
	for _ in $(seq 1 200); do
		on "$X"; api GET "/v1/jobs/$CID/targets/linux_amd64/log"
		grep -q 'canceled: stopping the build' <<<"$BODY" && { said=1; break; }
		sleep 0.1
	done
	[ -n "$said" ] &&
		ok "h$X's build log says it stops the build, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the cancel through h$Y" ||
		fail "h$X's build log after 20 s: $(printf '%s' "$BODY" | tail -3)"
	on "$Y"
	wait_job "$CID" 30 &&
		expect_json '"\(.state) \(.targets[0].state) \(.targets[0].host)"' \
		    "canceled canceled h$X" "job $CID after its cancel through h$Y"
	grep -q "job $CID: .*stopping its builds here" "${HLOG[$X]}" &&
		ok "h$X logs that it stops job $CID's builds" ||
		fail "h$X's log does not say it stops job $CID: $(tail -5 "${HLOG[$X]}")"
	n=$(superseded "$X")
	[ "$n" = "$S0" ] && ok "h$X: the canceled build is not superseded ($n)" ||
		fail "h$X: kiln_superseded_results_total '$S0' -> '$n'"
fi
lap "6. a cancel through another host"

for h in 1 2 3; do
	kill -TERM "${HPID[$h]}"
	code=0
	wait "${HPID[$h]}" || code=$?
	HPID[$h]=
	[ $code -eq 0 ] && ok "h$h stops cleanly" || fail "h$h exit $code"
done
lap "total"
finish
