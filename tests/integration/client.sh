#!/bin/bash
# kiln(1), the command-line client, against a real kilnd building the
# go-hello fixture: every subcommand; submit --wait's exit status for a
# job that succeeds and one that fails; the live table under a pty
# (cursor-up redraws, final states) and plain lines through a pipe;
# download --verify agreeing with sha256sum -c and minisign -V, a
# tampered blob in kilnd's store caught naming the file, a changed
# pinned key refused naming both key ids; errors as one line (the
# server's problem detail, or the URL that could not be reached); the
# URL and token from the environment, the config file and the flags.
. "$(dirname "$0")/lib.sh"

for tool in git go minisign sha256sum script; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
: "${BUILDDIR:=$(pwd)}"
KILN=$BUILDDIR/kiln
[ -x "$KILN" ] || { echo "FAIL: no kiln binary at $KILN" >&2; exit 1; }
export XDG_CONFIG_HOME=$T/config
unset KILN_URL KILN_TOKEN
mkdir -p "$T/work"
cd "$T/work"

REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
mkdir -p "$T/broken"
cp -R "$SRCDIR/tests/fixtures/go-hello/." "$T/broken/"
printf 'package main\n\nfunc main() { undefined_call() }\n' >"$T/broken/main.go"
BROKEN=$(make_repo broken "$T/broken")
start_kilnd -w 2
export KILN_URL=$URL

# run NAME CMD...: the command's stdout in OUT, stderr in ERR, status in RC.
run() {
	RC=0
	"$@" >"$T/out" 2>"$T/err" || RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}
expect_rc() {
	if [ "$RC" = "$1" ]; then
		ok "$2: exit $1"
	else
		fail "$2: exit $RC, expected $1; stdout: $OUT; stderr: $ERR"
	fi
}
has() {	# has TEXT NEEDLE WHAT
	if [[ "$1" == *"$2"* ]]; then ok "$3"; else fail "$3: no '$2' in: $1"; fi
}
one_line() {	# one_line TEXT WHAT
	if [ -n "$1" ] && [ "$(printf '%s\n' "$1" | wc -l)" = 1 ]; then
		ok "$2: one line"
	else
		fail "$2: not one line: $1"
	fi
}

# --- usage -------------------------------------------------------------------
run "$KILN" frobnicate
expect_rc 2 "an unknown command"
run "$KILN" submit
expect_rc 2 "submit without a repository"
run "$KILN" show twelve
expect_rc 2 "a job id that is no number"

# --- submit --wait, piped: plain lines ---------------------------------------
run "$KILN" submit "$REPO" main linux/amd64 linux/arm64 --wait
expect_rc 0 "submit --wait of a job that succeeds"
OKID=$(printf '%s\n' "$OUT" | head -1)
[[ "$OKID" =~ ^[0-9]+$ ]] && ok "submit prints the job id first ($OKID)" ||
	fail "submit's first line is not a job id: $OUT"
has "$OUT" "linux/amd64 succeeded" "a plain line per state change (amd64)"
has "$OUT" "linux/arm64 succeeded" "a plain line per state change (arm64)"
has "$OUT" "job $OKID succeeded" "the job's end is a line"
[[ "$OUT" != *$'\e'* ]] && ok "no escape sequences through a pipe" ||
	fail "escape sequences through a pipe: $(printf '%q' "$OUT")"
n=$(printf '%s\n' "$OUT" | grep -c '^linux/amd64 succeeded$')
[ "$n" = 1 ] && ok "each state change is printed once" ||
	fail "'linux/amd64 succeeded' printed $n times"

run "$KILN" submit "$BROKEN" main linux/amd64 --wait
expect_rc 1 "submit --wait of a job that fails"
BADID=$(printf '%s\n' "$OUT" | head -1)
has "$OUT" "linux/amd64 failed" "the failed target is a line"

# --- submit --wait on a terminal: the live table ------------------------------
# linux/386: not built yet, so the job runs long enough to be redrawn.
RC=0
script -qfec "$KILN submit $REPO main linux/386 --wait" /dev/null \
	>"$T/pty.out" 2>&1 </dev/null || RC=$?
OUT=$(cat "$T/pty.out")
expect_rc 0 "submit --wait under a pty"
if grep -qaP '\e\[[0-9]+A' "$T/pty.out"; then
	ok "the table is redrawn in place (cursor up)"
else
	fail "no cursor-up sequence under a pty: $(printf '%q' "$OUT" | head -c 600)"
fi
grep -qa $'\e\[2K' "$T/pty.out" && ok "each line of the table is cleared" ||
	fail "no clear-line sequence under a pty"
# The last drawing (after the last cursor-up) shows the final states.
last=$(sed 's/\x1b\[[0-9]*A/\n@@REDRAW@@\n/g' "$T/pty.out" |
	awk '/@@REDRAW@@/ { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }')
has "$last" "linux/386" "the final table names the target"
has "$last" "succeeded" "the final table shows the final state"
[[ "$last" != *running* ]] && ok "the final table shows nothing running" ||
	fail "the final table still shows 'running': $last"

# --- submit --follow -----------------------------------------------------------
run "$KILN" submit "$REPO" main linux/amd64/v2 --follow
expect_rc 0 "submit --follow of a job that succeeds"
has "$OUT" "[linux/amd64/v2] " "--follow prefixes the target's log lines"
has "$OUT" "linux/amd64/v2 succeeded" "--follow ends with the table's final state"
FID=$(printf '%s\n' "$OUT" | head -1)
api GET "/v1/jobs/$FID/targets/linux_amd64_v2/log"
first=$(printf '%s\n' "$BODY" | head -1)
has "$OUT" "[linux/amd64/v2] $first" "--follow shows the log's own lines"

# --- jobs, show, logs, targets, hosts -----------------------------------------
run "$KILN" jobs
expect_rc 0 "jobs"
printf '%s\n' "$OUT" | grep -q "^$OKID .*succeeded" && ok "jobs lists the job" ||
	fail "jobs does not list job $OKID as succeeded: $OUT"
run "$KILN" jobs --state failed
printf '%s\n' "$OUT" | grep -q "^$BADID " && ok "jobs --state failed lists the failed job" ||
	fail "jobs --state failed: $OUT"
printf '%s\n' "$OUT" | grep -q "^$OKID " && fail "jobs --state failed lists a succeeded job" ||
	ok "jobs --state failed leaves the others out"
run "$KILN" jobs --limit 1
[ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] && ok "jobs --limit 1 lists one" ||
	fail "jobs --limit 1: $OUT"
run "$KILN" jobs --state nonsense
expect_rc 3 "jobs --state nonsense"
has "$ERR" "kiln: jobs: 422" "the server's 422 is shown"
one_line "$ERR" "the 422"

run "$KILN" show "$OKID"
expect_rc 0 "show"
has "$OUT" "job $OKID: succeeded" "show says the job's state"
has "$OUT" "linux/arm64" "show lists the targets"
run "$KILN" show --json "$OKID"
[ "$(printf '%s' "$OUT" | jq -r .id)" = "$OKID" ] && ok "show --json is the job's JSON" ||
	fail "show --json: $OUT"

api GET "/v1/jobs/$OKID/targets/linux_amd64/log"
BODY=$(printf '%s' "$BODY")	# without its last newline, as OUT
[ -n "$BODY" ] || fail "the API gives no log to compare with"
run "$KILN" logs "$OKID" linux/amd64
expect_rc 0 "logs"
[ "$OUT" = "$BODY" ] && ok "logs is the target's log" || fail "logs differs from the API's log"
run "$KILN" logs "$OKID" linux_amd64
[ "$OUT" = "$BODY" ] && ok "logs takes the URL form of a target" || fail "logs linux_amd64 differs"
run "$KILN" logs -f "$OKID" linux/amd64
expect_rc 0 "logs -f of an ended target"
[ "$OUT" = "$BODY" ] && ok "logs -f of an ended target is its whole log" || fail "logs -f differs"
run "$KILN" logs "$OKID" linux/vax
expect_rc 2 "logs of a target that is none"

run "$KILN" targets
expect_rc 0 "targets"
printf '%s\n' "$OUT" | grep -q '^linux/amd64 ' && ok "targets lists linux/amd64" ||
	fail "targets: $OUT"
run "$KILN" hosts
expect_rc 0 "hosts"
api GET /v1/hosts
HNAME=$(printf '%s' "$BODY" | jq -r '.hosts[0].name')
# Liveness and the running count move with the host's beats: only the
# line's form is asserted.
printf '%s\n' "$OUT" | grep -Eq "^$HNAME +(alive|gone) +[0-9]+/2 running " &&
	ok "hosts shows this host ($HNAME), its state and slots" ||
	fail "hosts: $OUT; the API: $BODY"

# --- cancel --------------------------------------------------------------------
api POST /v1/admin/pause
# REF left out: the first word is a target, and the ref is main.
run "$KILN" submit "$REPO" linux/riscv64
QID=$OUT
api GET "/v1/jobs/$QID"
expect_json '[.ref, .targets[0].target] | join(" ")' "main linux/riscv64" \
	"submit without REF asks for main"
run "$KILN" cancel "$QID"
expect_rc 0 "cancel of a queued job"
has "$OUT" "job $QID: canceled" "cancel says the job's state"
run "$KILN" cancel "$OKID"
expect_rc 3 "cancel of a job that ended"
has "$ERR" "kiln: job $OKID: 409 Conflict: " "a conflict names the job, the status and the detail"
one_line "$ERR" "the conflict"
# A relative directory is sent as its absolute path; --recipe, --priority.
printf '{"kind": "command", "command": "make release"}\n' >"$T/recipe.json"
run sh -c "cd '$T/repos' && '$KILN' submit go-hello main linux/amd64 \
	--recipe '$T/recipe.json' --priority 7"
expect_rc 0 "submit of a relative directory with --recipe and --priority"
api GET "/v1/jobs/$OUT"
expect_json .repo "$REPO" "a relative directory is sent as its absolute path"
expect_json .recipe.command "make release" "--recipe's file is the request's recipe"
expect_json .priority 7 "--priority is the job's priority"
"$KILN" cancel "$OUT" >/dev/null
printf '{"kind": ' >"$T/recipe-bad.json"
run "$KILN" submit "$REPO" main linux/amd64 --recipe "$T/recipe-bad.json"
expect_rc 2 "a recipe file that is not JSON"
has "$ERR" "recipe-bad.json line 1" "the recipe error names the file and line"
api POST /v1/admin/resume

# --- retry (POST /v1/jobs/ID/retry) -------------------------------------------
run "$KILN" retry "$BADID"
api POST "/v1/jobs/$BADID/retry" -H 'Content-Type: application/json' --data '{}'
if [ "$STATUS" = 404 ] || [ "$STATUS" = 405 ]; then
	# Not in this tree yet: the server's answer must be shown clearly.
	expect_rc 3 "retry without the endpoint"
	has "$ERR" "kiln: job $BADID: $STATUS " "retry shows the server's $STATUS"
	one_line "$ERR" "retry's error"
	echo "# retry: endpoint absent; the retry checks below run once it is merged"
else
	expect_rc 0 "retry of a failed job"
	RID=$OUT
	[[ "$RID" =~ ^[0-9]+$ ]] && [ "$RID" != "$BADID" ] &&
		ok "retry prints the new job's id ($RID)" || fail "retry printed '$RID'"
	api GET "/v1/jobs/$RID"
	expect_json .retry_of "$BADID" "the new job is a retry of the failed one"
	run "$KILN" retry "$QID"
	expect_rc 0 "retry of a canceled job"
	api POST /v1/admin/pause
	run "$KILN" submit "$REPO" main linux/mips64
	PID_=$OUT
	run "$KILN" retry "$PID_"
	expect_rc 3 "retry of a job that has not ended"
	has "$ERR" "kiln: job $PID_: 409 Conflict: " "retry's conflict is one clear line"
	"$KILN" cancel "$PID_" >/dev/null
	api POST /v1/admin/resume
fi

# --- download --verify ---------------------------------------------------------
PIN=$XDG_CONFIG_HOME/kiln/keys/${URL#http://}.pub
run "$KILN" download "$OKID" "$T/dl" --verify
expect_rc 0 "download --verify"
has "$OUT" "verified: SHA256SUMS signed by key" "download --verify says what it verified"
[ -f "$PIN" ] && ok "the farm's key is pinned in $PIN" || fail "no pinned key at $PIN"
curl -sSf -o "$T/pubkey" "$URL/v1/pubkey"
cmp -s "$PIN" "$T/pubkey" && ok "the pinned key is the farm's" || fail "pinned key differs"
for f in SHA256SUMS SHA256SUMS.minisig provenance.intoto.jsonl \
    linux_amd64/go-hello linux_arm64/go-hello; do
	[ -f "$T/dl/$f" ] && ok "downloaded $f" || fail "missing $f in $T/dl: $(find "$T/dl")"
done
(cd "$T/dl" && sha256sum -c --strict SHA256SUMS >/dev/null 2>&1) &&
	ok "sha256sum -c agrees" || fail "sha256sum -c fails on the download"
minisign -Vm "$T/dl/SHA256SUMS" -p "$PIN" >/dev/null 2>&1 &&
	ok "minisign -V agrees" || fail "minisign -V fails on the download"
ls -A "$T/dl" | grep -q '^\.kiln-download' && fail "a temporary file was left" ||
	ok "no temporary file left"

# Without a DIR: kiln-JOB in the current directory; not over existing files.
run "$KILN" download "$OKID"
expect_rc 0 "download into the default directory"
[ -f "kiln-$OKID/linux_arm64/go-hello" ] && ok "the default directory is kiln-$OKID" ||
	fail "nothing in kiln-$OKID"
run "$KILN" download "$OKID"
[ "$RC" != 0 ] && [[ "$ERR" == *"exists already"* ]] &&
	ok "an existing file is not overwritten" || fail "download over existing files: rc $RC, $ERR"

# The pinned key, when the farm's changes, is refused, naming both ids.
minisign -G -W -p "$T/other.pub" -s "$T/other.key" >/dev/null 2>&1
cp "$PIN" "$T/farm.pub"
cp "$T/other.pub" "$PIN"
run "$KILN" download "$OKID" "$T/dl-key" --verify
OTHER_ID=$(head -1 "$T/other.pub" | awk '{ print $NF }')
FARM_ID=$(head -1 "$T/farm.pub" | awk '{ print $NF }')
[ "$RC" = 1 ] && ok "a changed key fails the download" || fail "a changed key: exit $RC ($ERR)"
has "$ERR" "$OTHER_ID" "the refusal names the pinned key's id"
has "$ERR" "$FARM_ID" "the refusal names the server's key id"
one_line "$ERR" "the refusal"
run "$KILN" download "$OKID" "$T/dl-pk" --pubkey "$T/farm.pub"
expect_rc 0 "--pubkey overrides the pinned key"
run "$KILN" download "$OKID" "$T/dl-pk2" --pubkey "$T/other.pub"
expect_rc 1 "--pubkey with another key fails"
cp "$T/farm.pub" "$PIN"

# A blob changed in kilnd's store: the download fails naming the file.
api GET "/v1/jobs/$OKID/artifacts"
H=$(printf '%s' "$BODY" | jq -r '.artifacts[] | select(.target == "linux/arm64") | .sha256')
BLOB=$STATE/store/sha256/${H:0:2}/$H
if [ -f "$BLOB" ]; then
	chmod u+w "$BLOB"
	printf 'X' | dd of="$BLOB" bs=1 seek=100 conv=notrunc 2>/dev/null
	run "$KILN" download "$OKID" "$T/dl-bad" --verify
	[ "$RC" = 1 ] && ok "a tampered artifact fails download --verify" ||
		fail "a tampered artifact: exit $RC ($OUT $ERR)"
	has "$ERR" "linux_arm64/go-hello: sha256 mismatch" "the failure names the file"
	one_line "$ERR" "the mismatch"
	[ ! -e "$T/dl-bad/linux_arm64/go-hello" ] && ok "the tampered file is not left under its name" ||
		fail "the tampered file was kept"
	run "$KILN" download "$OKID" "$T/dl-bad2"
	[ "$RC" = 1 ] && [[ "$ERR" == *"linux_arm64/go-hello: sha256 mismatch"* ]] &&
		ok "without --verify the listing's hash still catches it" ||
		fail "tampered without --verify: exit $RC ($ERR)"
else
	fail "no blob $BLOB in kilnd's store"
fi

# --- errors: one line -----------------------------------------------------------
run "$KILN" show 999999
expect_rc 3 "show of an unknown job"
[ "$ERR" = "kiln: job 999999: 404 Not Found: no job 999999" ] &&
	ok "the server's 404 is one line with its detail" || fail "404 shown as: $ERR"
run env KILN_URL=http://127.0.0.1:1 "$KILN" jobs
expect_rc 3 "an unreachable server"
has "$ERR" "http://127.0.0.1:1/v1/jobs" "the network error names the URL"
one_line "$ERR" "the network error"

# --- configuration: tokens from the environment, the file, the flags ------------
stop_kilnd
TOKEN=ci-$(openssl rand -hex 16)
cat >"$T/tokens.conf" <<EOF
[kilnd]
paused = yes
allow_local_repos = yes

[tokens]
ci = submit $(printf '%s\n' "$TOKEN" | "$KILND" --hash-token)
EOF
start_kilnd -c "$T/tokens.conf"
export KILN_URL=$URL
run "$KILN" jobs
expect_rc 3 "no token on a farm that needs one"
has "$ERR" "kiln: jobs: 401 " "the 401 is shown"
one_line "$ERR" "the 401"
run env KILN_TOKEN="$TOKEN" "$KILN" submit "$REPO" main linux/amd64
expect_rc 0 "KILN_TOKEN is sent"
run "$KILN" --token "$TOKEN" jobs
expect_rc 0 "--token is sent"
run "$KILN" jobs --token=wrong
expect_rc 3 "--token overrides the others"
printf 'url = %s\ntoken = %s\n' "$URL" "$TOKEN" >"$XDG_CONFIG_HOME/kiln/config"
run env -u KILN_URL "$KILN" jobs
expect_rc 0 "url and token from the config file"
printf 'url = %s\ncolour = yes\n' "$URL" >"$XDG_CONFIG_HOME/kiln/config"
run env -u KILN_URL "$KILN" jobs
expect_rc 2 "an unknown key in the config file"
has "$ERR" "config line 2: unknown key 'colour'" "the config error names the line and key"

finish
