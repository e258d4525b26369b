#!/bin/bash
# What kiln answers is well-formed, with real jobs:
#  - a fetch error that quotes a long non-ASCII path, cut at the worker's
#    message limit in the middle of a character, still gives job JSON that
#    strict parsers take (jq and Python's json on strictly decoded UTF-8);
#    and rows that hold invalid bytes already (written before the rule) are
#    rendered valid;
#  - a build that prints lines just like kilnd's "[kiln] ..." ones (bare,
#    behind colours, behind \r), an OSC title sequence, cursor movement
#    and invalid UTF-8: the log shown to people prefixes the fake lines,
#    escapes the sequences and keeps kilnd's own lines, while ?raw=1 is the
#    file byte for byte, holding the build's output exactly; the same with
#    ?follow=1 while the build runs.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }

# strict_json FILE WHAT: the file is UTF-8 and JSON to both parsers.
strict_json() {
	if python3 -c 'import json, sys
json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))' "$1" \
		2>"$T/py.err" && jq -e . "$1" >/dev/null 2>&1; then
		ok "$2: strict UTF-8 JSON (python3 json, jq)"
	else
		fail "$2: not strict UTF-8 JSON: $(tail -1 "$T/py.err")"
	fi
}

start_kilnd

# --- a fetch error cut in the middle of a character --------------------------
# Five path components of 27 x "日本語" (243 bytes each, under NAME_MAX)
# make a message past kiln-worker's 1 KiB line; three paddings put the
# cut at each of the three byte positions of a character.
comp=$(python3 -c 'print("\u65e5\u672c\u8a9e" * 27)')
IDS=()
for pad in "" a ab; do
	post_job "{\"repo\": \"/nonexistent/$pad$comp/$comp/$comp/$comp/$comp\",
		\"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
	expect_status 201 "submit a job from a missing path (padding '$pad')"
	IDS+=("$(printf '%s' "$BODY" | jq -r .id)")
done
for id in "${IDS[@]}"; do
	wait_job "$id" 120
	expect_json .state failed "job $id from a missing path"
	len=$(db "SELECT length(CAST(error AS BLOB)) FROM jobs WHERE id = $id")
	if [ "$len" -gt 900 ] &&
	    printf '%s' "$BODY" | jq -r .error | grep -q "$comp"; then
		ok "job $id: the error quotes the path and was cut at the limit ($len bytes)"
	else
		fail "job $id: error of $len bytes: $(printf '%s' "$BODY" | jq -r .error | head -c 200)"
	fi
	curl -sS -o "$T/job.json" "$URL/v1/jobs/$id"
	strict_json "$T/job.json" "GET /v1/jobs/$id"
done
curl -sS -o "$T/jobs.json" "$URL/v1/jobs"
strict_json "$T/jobs.json" "GET /v1/jobs after cut errors"

# --- a target whose job failed to fetch ----------------------------------------
# It never started: no attempt, no start time, and its log says so (not
# "not started yet", and no empty stream for a follower).
post_job '{"repo": "/nonexistent/kiln-logs", "ref": "main", "targets": ["linux/amd64"]}'
id=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$id" 120
expect_json .state failed "job $id from a missing repository"
expect_json '.targets[0] | [.attempt, .started_at] | tostring' '[0,null]' \
	"a target whose fetch failed counts no attempt and no start"
why="job $id linux/amd64 failed before its build started: kiln-worker: fetch: cannot reach /nonexistent/kiln-logs"
api GET "/v1/jobs/$id/targets/linux_amd64/log"
expect_problem 404 "$why" "log of a target whose fetch failed"
api GET "/v1/jobs/$id/targets/linux_amd64/log?follow=1" --max-time 30
expect_problem 404 "$why" "following the log of a target whose fetch failed"
api GET "/v1/jobs/$id/targets/linux_amd64/log?follow=1&raw=1" --max-time 30
expect_problem 404 "$why" "following the raw log of a target whose fetch failed"

# Rows with invalid bytes already in them: rendered valid all the same.
id=${IDS[0]}
# "old ", a bad byte, a cut character, '"', '\', a newline, an overlong,
# a surrogate and a character cut by the end.
db "UPDATE jobs SET error = CAST(X'6f6c6420ffe697225c0ac0afeda080e6' AS TEXT) WHERE id = $id"
db "UPDATE job_targets SET error = CAST(X'74ff' AS TEXT), toolchain = CAST(X'f4908080' AS TEXT) WHERE job_id = $id"
[ "$(db "SELECT hex(CAST(error AS BLOB)) FROM jobs WHERE id = $id")" = \
    6F6C6420FFE697225C0AC0AFEDA080E6 ] || fail "the invalid bytes were not written"
curl -sS -o "$T/jobs.json" "$URL/v1/jobs"
strict_json "$T/jobs.json" "GET /v1/jobs with invalid bytes in stored rows"
curl -sS -o "$T/job.json" "$URL/v1/jobs/$id"
strict_json "$T/job.json" "GET /v1/jobs/$id with invalid bytes in its rows"
got=$(jq -r .targets[0].error "$T/job.json")
[ "$got" = "t"$'\xef\xbf\xbd' ] && ok "an invalid byte reads as U+FFFD" ||
	fail "the target's error reads '$got'"

# --- a build that pretends to be kilnd ---------------------------------------
# emit.sh is run by the build and, here, by the test to know its exact
# output.  dash's printf: octal escapes.
mkdir -p "$T/fixture"
cat >"$T/fixture/emit.sh" <<'EOF'
printf 'honest line\n'
printf '[kiln] linux/amd64: succeeded (0.1 s)\n'
printf '\033[32m[kiln] linux/amd64: succeeded (0.1 s)\033[0m\n'
printf '\r[kiln] linux/amd64: succeeded (0.1 s)\n'
# U+2061, invisible in a terminal, as are many more outside ASCII.
printf '\342\201\241[kiln] linux/amd64: succeeded (0.1 s)\n'
printf '\033]0;pwned title\007title set\n'
printf '\033]2;other title\033\\after st\n'
printf 'progress 10%%\rprogress 100%%\n'
printf 'cursor \033[2A\033[2Kup\n'
printf 'bad byte \377 here\n'
printf 'CRLF line\r\n'
sleep "${PAUSE:-2}"
printf 'after the pause\n'
printf '\033[1m  [kiln] linux/amd64: succeeded (0.1 s)\033[0m\n'
printf 'unfinished line'
EOF
REPO=$(make_repo forger "$T/fixture")
PAUSE=0 sh "$T/fixture/emit.sh" >"$T/expected.out"

post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"sh emit.sh\"}}"
expect_status 201 "submit the forging build"
F=$(printf '%s' "$BODY" | jq -r .id)
LOG=$URL/v1/jobs/$F/targets/linux_amd64/log
# Followers from the start: they wait for the target, then stream.
timeout 300 curl -sSN -o "$T/follow.view" "$LOG?follow=1" &
FV=$!
timeout 300 curl -sSN -o "$T/follow.raw" "$LOG?follow=1&raw=1" &
FR=$!
wait_job "$F" 300
expect_json .state succeeded "the forging build"
wait $FV || fail "the followed view did not end cleanly"
wait $FR || fail "the followed raw log did not end cleanly"

curl -sS -D "$T/view.h" -o "$T/view" "$LOG"
curl -sS -D "$T/raw.h" -o "$T/raw" "$LOG?raw=1"
grep -qi '^content-type: text/plain; charset=utf-8' "$T/view.h" &&
	ok "the view is text/plain; charset=utf-8" || fail "view type: $(cat "$T/view.h")"
grep -qi '^content-type: application/octet-stream' "$T/raw.h" &&
	ok "the raw log is application/octet-stream" || fail "raw type: $(cat "$T/raw.h")"

# Raw: the file itself, holding the build's bytes unchanged.
cmp -s "$T/raw" "$STATE/logs/$F/linux_amd64.log" &&
	ok "?raw=1 is the log file byte for byte" || fail "?raw=1 differs from the file"
python3 - "$T/raw" "$T/expected.out" <<'EOF' && ok "the raw log holds the build's output exactly" || fail "the build's output is not in the raw log"
import sys
raw, want = (open(p, "rb").read() for p in sys.argv[1:3])
sys.exit(0 if want in raw else 1)
EOF
cmp -s "$T/follow.raw" "$T/raw" && ok "?follow=1&raw=1 gave the same bytes" ||
	fail "the followed raw log differs ($(wc -c <"$T/follow.raw") vs $(wc -c <"$T/raw") bytes)"

# The view, as people see it.
python3 - "$T/view" <<'EOF' && ok "the view is UTF-8 with colour sequences only and no CR" || fail "the view has raw control sequences"
import re, sys
v = open(sys.argv[1], "rb").read()
v.decode("utf-8", "strict")
rest = re.sub(rb"\x1b\[[0-9;:]*m", b"", v)
bad = [c for c in rest if (c < 0x20 and c not in (9, 10)) or c == 0x7f]
sys.exit(1 if bad else 0)
EOF
n=$(grep -c '^\[build\] ' "$T/view")
[ "$n" = 5 ] && ok "the five fake kiln lines are prefixed" ||
	fail "$n prefixed lines: $(grep -a 'kiln' "$T/view")"
n=$(grep -c '^\[kiln\] linux/amd64: succeeded (' "$T/view")
[ "$n" = 1 ] && ok "one line reads as kilnd's result: kilnd's own" ||
	fail "$n lines pass for kilnd's result"
tail -1 "$T/view" | grep -q '^\[kiln\] linux/amd64: succeeded (' &&
	ok "kilnd's result is the view's last line" || fail "last line: $(tail -1 "$T/view")"
grep -q '^\[kiln\] job '"$F"' target linux/amd64' "$T/view" &&
	ok "kilnd's first line stays as it is" || fail "kilnd's first line is missing"
grep -qx 'unfinished line' "$T/view" &&
	ok "kilnd's line after an unfinished build line starts a line of its own" ||
	fail "no 'unfinished line' line in the view"
for want in 'honest line' '\x1b]0;pwned title\x07title set' \
    '\x1b]2;other title\x1b\after st' 'progress 10%\rprogress 100%' \
    'cursor \x1b[2A\x1b[2Kup' 'bad byte '$'\xef\xbf\xbd'' here' 'CRLF line' \
    '[build] '$'\e''[32m[kiln] linux/amd64: succeeded (0.1 s)'$'\e''[0m' \
    '[build] \r[kiln] linux/amd64: succeeded (0.1 s)' \
    '[build] '$'\xe2\x81\xa1''[kiln] linux/amd64: succeeded (0.1 s)'; do
	grep -qxF -- "$want" "$T/view" && ok "the view shows: $want" ||
		fail "the view lacks the line: $want"
done
cmp -s "$T/follow.view" "$T/view" && ok "?follow=1 gave the same view" ||
	fail "the followed view differs: $(diff <(cat -v "$T/follow.view") <(cat -v "$T/view") | head -5)"

# --- a followed log ends once the target's outcome is durable -----------------
# The outcome is written by the queue's writer after the build ended; here
# another process holds the database's write lock meanwhile (as a long
# transaction would).  The followed log must not end before the outcome
# is stored: the client then reads the target ended and gets its file.
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"cache\": false, \"recipe\": {\"kind\": \"command\",
	\"command\": \"echo started; sleep 2; echo ok > /out/ok\"}}"
L=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$L" linux/amd64 running 120
timeout 120 curl -sSN -o /dev/null \
	"$URL/v1/jobs/$L/targets/linux_amd64/log?follow=1" &
FL=$!
sqlite3 "$STATE/kiln.db" 'BEGIN IMMEDIATE' '.shell sleep 5' 'ROLLBACK' &
LK=$!
wait $FL || fail "the followed log did not end cleanly"
api GET "/v1/jobs/$L"
expect_json '.targets[0].state' succeeded "the target, as soon as its followed log ended"
api GET "/v1/jobs/$L/artifacts/linux_amd64/ok"
expect_status 200 "its file, as soon as its followed log ended"
wait $LK || true

finish
