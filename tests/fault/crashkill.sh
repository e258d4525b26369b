#!/bin/bash
# The crash-kill suite: jobs of the Go fixture (two targets each, built
# for real) stream into kilnd while kilnd is killed with SIGKILL at random
# moments (submitting, fetching, building, publishing, signing) and
# started again, KILLS times (default 10; bench/crashkill runs 100).
# Then, with nothing killed any more, every job must end, and:
#   - every job that got a 201 exists (lost = 0);
#   - each is in exactly one terminal state;
#   - every succeeded job is signed, its artifacts download, and
#     `sha256sum -c SHA256SUMS` and `minisign -V` pass (corrupt = 0);
#   - every blob of the store hashes to its name and is as long as every
#     artifact row that names it;
#   - no kiln-worker outlives a kill;
#   - PRAGMA integrity_check is ok.
. "$(dirname "$0")/../integration/lib.sh"

KILLS=${KILLS:-10}
for tool in git go minisign sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
ACCEPTED=$T/accepted
: >"$ACCEPTED"
cat >"$T/kilnd.conf" <<EOF
[kilnd]
allow_local_repos = yes
max_attempts = 50
drain_timeout = 5
EOF
REQ="{\"repo\": \"file://$REPO\", \"ref\": \"main\", \"cache\": false,
	\"targets\": [\"linux/amd64\", \"linux/arm64\"]}"

# poster: submit jobs until told to stop; the id of every 201 is kept.
poster() {
	local out code
	while [ ! -e "$T/stop-posting" ]; do
		out=$(curl -s -m 5 -w '\n%{http_code}' -H 'Content-Type: application/json' \
			--data-binary "$REQ" "$URL/v1/jobs" 2>/dev/null) || out=
		code=${out##*$'\n'}
		[ "$code" = 201 ] && printf '%s\n' "${out%$'\n'*}" | jq -r .id >>"$ACCEPTED"
		sleep 0.$((2 + RANDOM % 6))
	done
}

workers_of_state() { pgrep -f "kiln-worker .*$STATE" || true; }

start_kilnd -c "$T/kilnd.conf" -w 2
# A first build warms the repository's Go cache: later builds take about
# a second each, so kills land in every phase.
post_job "$REQ"
first=$(printf '%s' "$BODY" | jq -r .id)
echo "$first" >>"$ACCEPTED"
wait_job "$first" 600
phases=()
orphans=0
for k in $(seq 1 "$KILLS"); do
	rm -f "$T/stop-posting"
	poster &
	PPID_=$!
	sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
	# What was going on at the moment of the kill, for the report.
	phase=idle
	ls "$STATE/store/tmp/" 2>/dev/null | grep -q . && phase=publishing
	[ $phase = idle ] && pgrep -f "kiln-worker build.*$STATE" >/dev/null && phase=building
	[ $phase = idle ] && pgrep -f "kiln-worker fetch.*$STATE" >/dev/null && phase=fetching
	kill -KILL "$KPID"
	wait "$KPID" 2>/dev/null || true
	KPID=
	phases+=("$phase")
	touch "$T/stop-posting"
	wait "$PPID_" 2>/dev/null || true
	# PR_SET_PDEATHSIG: the workers die with kilnd.
	for _ in $(seq 1 50); do [ -z "$(workers_of_state)" ] && break; sleep 0.1; done
	if [ -n "$(workers_of_state)" ]; then
		orphans=$((orphans + 1))
		fail "kill $k: kiln-worker outlived kilnd: $(workers_of_state | tr '\n' ' ')"
	fi
	start_kilnd -c "$T/kilnd.conf" -w 2
done
echo "# kill phases: ${phases[*]}"

# --- nothing is killed any more: every job must end ---------------------------
n=$(wc -l <"$ACCEPTED")
for _ in $(seq 1 $((600 * 5))); do
	open=$(db "select count(*) from jobs where state in ('queued', 'running')")
	[ "$open" = 0 ] && break
	sleep 0.2
done
[ "$open" = 0 ] && ok "all $n accepted jobs ended after $KILLS kills" ||
	fail "$open job(s) still open: $(db "select id, state from jobs where state in ('queued','running')" | tr '\n' ' ')"
lost=0
while read -r id; do
	[ "$(db "select count(*) from jobs where id = $id")" = 1 ] || { lost=$((lost + 1)); fail "job $id (201) is lost"; }
done <"$ACCEPTED"
[ $lost = 0 ] && ok "every one of the $n jobs that got a 201 exists"
bad_state=$(db "select count(*) from jobs where state not in ('succeeded', 'failed', 'canceled')")
[ "$bad_state" = 0 ] && ok "each job is in exactly one terminal state" || fail "$bad_state jobs not terminal"

# Signed files follow the last target off the loop: give them a moment.
for _ in $(seq 1 100); do
	[ "$(db "select count(*) from jobs where state = 'succeeded' and sums_sha256 is null")" = 0 ] && break
	sleep 0.1
done
curl -sf -o "$T/kiln.pub" "$URL/v1/pubkey"
corrupt=0 verified=0
for id in $(db "select id from jobs where state = 'succeeded'"); do
	d=$T/v/$id
	mkdir -p "$d"
	ok_job=1
	for u in $(curl -sf "$URL/v1/jobs/$id/artifacts" | jq -r '.artifacts[].url'); do
		rel=${u#/v1/jobs/$id/artifacts/}
		mkdir -p "$d/$(dirname "$rel")"
		curl -sf -o "$d/$rel" "$URL$u" || ok_job=0
	done
	curl -sf -o "$d/SHA256SUMS" "$URL/v1/jobs/$id/SHA256SUMS" || ok_job=0
	curl -sf -o "$d/SHA256SUMS.minisig" "$URL/v1/jobs/$id/SHA256SUMS.minisig" || ok_job=0
	if [ $ok_job = 1 ] && (cd "$d" && sha256sum -c --quiet SHA256SUMS) >/dev/null 2>&1 &&
	    [ "$(wc -l <"$d/SHA256SUMS")" = 2 ] &&
	    minisign -Vqm "$d/SHA256SUMS" -p "$T/kiln.pub" >/dev/null 2>&1; then
		verified=$((verified + 1))
	else
		corrupt=$((corrupt + 1))
		fail "job $id: its artifacts or signed sums do not verify"
	fi
	rm -rf "$d"
done
nsucc=$(db "select count(*) from jobs where state = 'succeeded'")
[ $corrupt = 0 ] && [ "$verified" = "$nsucc" ] &&
	ok "all $verified succeeded jobs verify with sha256sum -c and minisign -V"
nfailed=$(db "select count(*) from jobs where state <> 'succeeded'")
[ "$nfailed" = 0 ] && ok "no job failed (max_attempts = 50)" ||
	fail "$nfailed job(s) did not succeed: $(db "select j.id, t.target, t.error from jobs j join job_targets t on t.job_id = j.id where t.state <> 'succeeded'" | head -5)"

# The store: every blob hashes to its name and is as long as its rows.
badblob=0
while read -r f; do
	[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || { badblob=$((badblob + 1)); fail "blob $f misnamed"; }
done < <(find "$STATE/store/sha256" -type f)
short=$(db "select a.sha256, a.size from artifacts a" | while IFS='|' read -r h sz; do
	f=$STATE/store/sha256/${h:0:2}/$h
	[ -f "$f" ] && [ "$(stat -c %s "$f")" = "$sz" ] || echo "$h"
done | sort -u | wc -l)
[ $badblob = 0 ] && [ "$short" = 0 ] &&
	ok "every blob hashes to its name and has the size its artifact rows record" ||
	fail "$badblob misnamed blob(s), $short artifact(s) without a whole blob"
[ -z "$(ls -A "$STATE/store/tmp")" ] && ok "no temp file left in the store" ||
	fail "store/tmp: $(ls "$STATE/store/tmp")"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd exits 0 at the end" || fail "exit $KEXIT"
[ "$(db 'pragma integrity_check')" = ok ] && ok "PRAGMA integrity_check: ok" ||
	fail "integrity_check: $(db 'pragma integrity_check' | head -3)"
[ -z "$(workers_of_state)" ] && ok "no kiln-worker left" || fail "orphans at the end"
# A job can be committed and its 201 lost with the kill that followed:
# it is in the database (and runs) though the poster never saw its id.
indb=$(db 'select count(*) from jobs')
echo "crash-kill: kills=$KILLS jobs=$n (201 seen; $indb in the database)" \
	"succeeded=$nsucc lost=$lost corrupt=$corrupt orphan_workers=$orphans"
finish
