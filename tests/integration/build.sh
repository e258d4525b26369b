#!/bin/bash
# Real builds end to end: a Go program for seven targets and a C program
# with the cross compilers, both from git repositories this test makes;
# `file` checks every binary, the linux ones run (arm64 under qemu); an
# incremental fetch of a new commit; .kiln.json recipes; live logs; and
# bad recipes and refs failing their job with a reason.
. "$(dirname "$0")/lib.sh"

for tool in git go file qemu-aarch64-static aarch64-linux-gnu-gcc \
    x86_64-w64-mingw32-gcc; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

GO_REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
C_REPO=$(make_repo c-hello "$SRCDIR/tests/fixtures/c-hello")

# The Go repository is served by git daemon on 127.0.0.1 (git://): the
# transport that negotiates, so a second fetch sends only new objects.
GPORT=$(pick_port)
git daemon --export-all --reuseaddr --base-path="$T/repos" \
	--listen=127.0.0.1 --port=$GPORT "$T/repos" 2>"$T/git-daemon.log" &
GITD=$!
for _ in $(seq 1 50); do
	git ls-remote "git://127.0.0.1:$GPORT/go-hello" >/dev/null 2>&1 && break
	sleep 0.1
done
GO_URL=git://127.0.0.1:$GPORT/go-hello
start_kilnd -w 2

# --- Go, seven targets ------------------------------------------------------
post_job "{\"repo\": \"$GO_URL\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\",
	\"linux/riscv64\", \"windows/amd64\", \"darwin/arm64\", \"freebsd/amd64\"]}"
expect_status 201 "submit the Go job"
GO_ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$GO_ID" 900
expect_json .state succeeded "Go job"
expect_json .commit "$(git -C "$GO_REPO" rev-parse HEAD)" "commit resolved from main"
expect_json '[.targets[].artifacts[0].name] | join(",")' \
	"go-hello,go-hello,go-hello,go-hello,go-hello.exe,go-hello,go-hello" \
	"one binary per target, .exe on windows"

check_file() {	# URL-TARGET NAME PATTERN
	local f desc
	f=$(out_file "$GO_ID" "$1" "$2")
	desc=$(file -b "$f" 2>/dev/null) || desc="(missing: $f)"
	if [[ "$desc" == *$3* ]]; then
		ok "$1: file says $3"
	else
		fail "$1: file says '$desc', expected '$3'"
	fi
}
check_file linux_amd64 go-hello "ELF 64-bit LSB executable, x86-64"
check_file linux_arm64 go-hello "ELF 64-bit LSB executable, ARM aarch64"
check_file linux_arm_v7 go-hello "ELF 32-bit LSB executable, ARM, EABI5"
check_file linux_riscv64 go-hello "ELF 64-bit LSB executable, UCB RISC-V"
check_file windows_amd64 go-hello.exe "PE32+ executable (console) x86-64"
check_file darwin_arm64 go-hello "Mach-O 64-bit arm64 executable"
check_file freebsd_amd64 go-hello "FreeBSD"

out=$("$(out_file "$GO_ID" linux_amd64 go-hello)" farm)
[[ "$out" == "hello, farm from linux/amd64 (dev) "* ]] &&
	ok "linux/amd64 binary runs: $out" || fail "linux/amd64 output: $out"
out=$(qemu-aarch64-static "$(out_file "$GO_ID" linux_arm64 go-hello)" farm)
[[ "$out" == "hello, farm from linux/arm64 (dev) "* ]] &&
	ok "linux/arm64 binary runs under qemu: $out" || fail "linux/arm64 output: $out"
out=$(qemu-arm-static "$(out_file "$GO_ID" linux_arm_v7 go-hello)")
[[ "$out" == "hello, kiln from linux/arm "* ]] &&
	ok "linux/arm/v7 binary runs under qemu" || fail "linux/arm/v7 output: $out"

# The log has kilnd's lines and the command it ran.
api GET "/v1/jobs/$GO_ID/targets/linux_arm64/log"
expect_status 200 "log of linux/arm64"
grep -q '^\[kiln\] \$ go build -trimpath -buildvcs=false' <<<"$BODY" &&
	ok "log shows the go build command" || fail "log: $BODY"
grep -q '^\[kiln\] linux/arm64: succeeded' <<<"$BODY" &&
	ok "log ends with the result" || fail "log has no result line: $BODY"

# --- a new commit: incremental fetch, new binary ---------------------------
mirror=$(ls -d "$STATE"/mirrors/*.git)
packs_before=$(ls "$mirror"/objects/pack/*.pack | sort)
sed -i 's/hello, %s from/hi, %s from/' "$GO_REPO/main.go"
commit_all "$GO_REPO" "say hi"
post_job "{\"repo\": \"$GO_URL\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
ID2=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID2" 300
expect_json .state succeeded "second job"
expect_json .commit "$(git -C "$GO_REPO" rev-parse HEAD)" "second job built the new commit"
[ "$(ls -d "$STATE"/mirrors/*.git)" = "$mirror" ] && ok "same mirror reused" ||
	fail "a second mirror appeared"
kept=$(comm -12 <(echo "$packs_before") <(ls "$mirror"/objects/pack/*.pack | sort))
[ "$kept" = "$packs_before" ] && ok "first fetch's packs kept" ||
	fail "the mirror's first packs are gone"
new_pack=$(comm -13 <(echo "$packs_before") <(ls "$mirror"/objects/pack/*.pack | sort))
if [ -n "$new_pack" ]; then
	n_new=$(git verify-pack -v "${new_pack%.pack}.idx" | grep -cE '^[0-9a-f]{40} (commit|tree|blob|tag) ')
	n_all=$(git -C "$GO_REPO" rev-list --objects --all | wc -l)
	[ "$n_new" -lt "$n_all" ] && [ "$n_new" -le 4 ] &&
		ok "incremental fetch: $n_new new objects of $n_all" ||
		fail "second fetch sent $n_new objects of $n_all"
else
	fail "the second fetch added no pack"
fi
out=$("$(out_file "$ID2" linux_amd64 go-hello)")
[[ "$out" == "hi, kiln from linux/amd64 "* ]] && ok "new commit's binary: $out" ||
	fail "new binary says: $out"

# --- C with the cross compilers, recipe from .kiln.json ---------------------
post_job "{\"repo\": \"$C_REPO\", \"ref\": \"main\",
	\"targets\": [\"linux/arm64\", \"windows/amd64\"]}"
C_ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$C_ID" 300
expect_json .state succeeded "C job (recipe from .kiln.json)"
GO_ID=$C_ID	# check_file looks in this job
check_file linux_arm64 hello "ARM aarch64"
check_file windows_amd64 hello.exe "PE32+ executable (console) x86-64"
out=$(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$(out_file "$C_ID" linux_arm64 hello)")
[ "$out" = "hello from C on arm64" ] && ok "C arm64 binary runs under qemu" ||
	fail "C arm64 output: $out"

# --- live log: every byte, and the stream ends with the target --------------
post_job "{\"repo\": \"$C_REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"for i in 1 2 3 4 5 6; do echo line \$i; sleep 0.5; done\"}}"
L_ID=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$L_ID" linux/amd64 running 60
for _ in $(seq 1 50); do
	curl -sf "$URL/v1/jobs/$L_ID/targets/linux_amd64/log" >/dev/null && break
	sleep 0.1
done
# A second follower that leaves half-way must not disturb the first.
curl -sN "$URL/v1/jobs/$L_ID/targets/linux_amd64/log?follow=1" >/dev/null &
QUITTER=$!
( sleep 1; kill $QUITTER 2>/dev/null ) &
timeout 60 curl -sN "$URL/v1/jobs/$L_ID/targets/linux_amd64/log?follow=1" \
	>"$T/follow.out" || fail "follow did not end by itself"
got=$(grep -c '^line [1-6]$' "$T/follow.out")
[ "$got" = 6 ] && ok "?follow=1 received all 6 lines and ended" ||
	fail "?follow=1 received $got lines: $(cat "$T/follow.out")"
grep -q '^\[kiln\] linux/amd64: succeeded' "$T/follow.out" &&
	ok "the followed log ends with the result" || fail "no result line followed"
api GET /healthz
expect_status 200 "kilnd serves after a follower left mid-stream"

# --- following targets that have not started: wait, then stream or end ------
api POST /v1/admin/pause
expect_status 200 "pause the farm"
post_job "{\"repo\": \"$C_REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"for i in 1 2 3; do echo early \$i; sleep 0.3; done\"}}"
W_ID=$(printf '%s' "$BODY" | jq -r .id)
post_job "{\"repo\": \"file://$T/gone\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
N_ID=$(printf '%s' "$BODY" | jq -r .id)
post_job "{\"repo\": \"$C_REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
X_ID=$(printf '%s' "$BODY" | jq -r .id)
api GET "/v1/jobs/$W_ID"
expect_json '.targets[0].state' queued "with the farm paused the target stays queued"
api GET "/v1/jobs/$W_ID/targets/linux_amd64/log"
expect_problem 404 "has not started" "without follow, a queued target's log is 404"
api GET "/v1/jobs/$W_ID/targets/linux_arm64/log?follow=1"
expect_problem 404 "has no target linux/arm64" "follow=1 of a target the job does not have is 404"
declare -A WAITER
for id in $W_ID $N_ID $X_ID; do
	timeout 120 curl -sSN -o "$T/wait.$id.out" -w '%{http_code}' \
		"$URL/v1/jobs/$id/targets/linux_amd64/log?follow=1" >"$T/wait.$id.code" &
	WAITER[$id]=$!
done
sleep 3	# longer than the scheduler's tick: followers were woken and wait on
alive=0
for id in $W_ID $N_ID $X_ID; do
	if kill -0 "${WAITER[$id]}" 2>/dev/null; then alive=$((alive + 1)); fi
done
[ $alive = 3 ] && ok "follow=1 of queued targets waits (3 of 3 still open)" ||
	fail "only $alive of 3 followers of queued targets still wait"
api POST "/v1/jobs/$X_ID/cancel"
rc=0; wait "${WAITER[$X_ID]}" || rc=$?
[ $rc = 0 ] && [ "$(cat "$T/wait.$X_ID.code")" = 200 ] &&
	[ "$(cat "$T/wait.$X_ID.out")" = "[kiln] job $X_ID linux/amd64 was canceled before it started" ] &&
	ok "a target canceled while queued ends its follower: 200, the reason, curl exit 0" ||
	fail "follower of a canceled target: curl exit $rc, HTTP $(cat "$T/wait.$X_ID.code"), $(head -c 300 "$T/wait.$X_ID.out")"
api POST /v1/admin/resume
expect_status 200 "resume the farm"
rc=0; wait "${WAITER[$W_ID]}" || rc=$?
got=$(grep -c '^early [1-3]$' "$T/wait.$W_ID.out" || true)
[ $rc = 0 ] && [ "$got" = 3 ] && [ "$(cat "$T/wait.$W_ID.code")" = 200 ] &&
	ok "the follower started before the build streamed its 3 lines and curl exited 0" ||
	fail "waiting follower: curl exit $rc, $got lines: $(cat "$T/wait.$W_ID.out")"
grep -q '^\[kiln\] linux/amd64: succeeded' "$T/wait.$W_ID.out" &&
	ok "and ended with the result line" || fail "no result line in the waiting follower's stream"
rc=0; wait "${WAITER[$N_ID]}" || rc=$?
[ $rc = 0 ] && [ "$(cat "$T/wait.$N_ID.code")" = 200 ] &&
	ok "a job that fails at its fetch ends its target's follower (curl exit 0)" ||
	fail "follower of a job failing at fetch: curl exit $rc, HTTP $(cat "$T/wait.$N_ID.code")"
wait_job "$N_ID" 60
expect_json .state failed "the job of a missing repository failed"

# --- concurrent jobs of one repository share its mirror safely ---------------
ids=
for i in 1 2 3 4; do
	post_job "{\"repo\": \"$GO_URL\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
		\"recipe\": {\"kind\": \"command\", \"command\": \"test -f /src/main.go && echo ok > /out/r$i\"}}"
	ids="$ids $(printf '%s' "$BODY" | jq -r .id)"
done
all_ok=1
for id in $ids; do
	wait_job "$id" 120
	[ "$(printf '%s' "$BODY" | jq -r .state)" = succeeded ] || { all_ok=0; fail "concurrent job $id: $BODY"; }
done
[ $all_ok = 1 ] && ok "4 jobs of one repository at once all succeed"
git -C "$mirror" fsck --no-progress >/dev/null 2>&1 && ok "the mirror passes git fsck" ||
	fail "the mirror is corrupt: $(git -C "$mirror" fsck 2>&1 | head -3)"

# --- failures with reasons ----------------------------------------------------
post_job "{\"repo\": \"file://$GO_REPO\", \"ref\": \"no-such-branch\", \"targets\": [\"linux/amd64\"]}"
F1=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$F1" 120
expect_json .state failed "unknown ref"
expect_json '.error | test("no-such-branch")' true "the error names the ref"

mkdir -p "$T/plain"; echo 'just text' > "$T/plain/README"
PLAIN=$(make_repo plain "$T/plain")
post_job "{\"repo\": \"$PLAIN\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
F2=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$F2" 120
expect_json .state failed "repo with neither go.mod nor .kiln.json"
expect_json '.error | test("no recipe")' true "the error says there is no recipe"

post_job "{\"repo\": \"$PLAIN\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"echo failing; exit 3\"}}"
F3=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$F3" 120
expect_json .state failed "a command that exits 3"
expect_json '.targets[0].exit_status' 3 "exit status recorded"

post_job "{\"repo\": \"file://$T/nowhere\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
F4=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$F4" 120
expect_json .state failed "a repository that does not exist"
expect_json '.error != null' true "with an error"

# A commit id the repository does not have (over git:// and a local path):
# the error names the commit, and no path inside kilnd's state directory.
NOPE=0123456789abcdef0123456789abcdef01234567
for repo in "$GO_URL" "file://$GO_REPO"; do
	post_job "{\"repo\": \"$repo\", \"ref\": \"$NOPE\", \"targets\": [\"linux/amd64\"]}"
	F5=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$F5" 120
	expect_json .state failed "a commit $repo does not have"
	expect_json ".error | contains(\"$NOPE\")" true "the error names the commit"
	expect_json ".error | contains(\"$STATE\")" false "the error names no path in the state directory"
done
# A mirror's directory that holds something else (left by a crash, say):
# the job says what is wrong, not where (mirrors are named by a hash of
# the URL, as kilnd names them).
# (A repository of its own: every spelling of one repository shares one
# mirror, and C_REPO's exists already.)
J_REPO=$(make_repo junk-mirror "$SRCDIR/tests/fixtures/c-hello")
key=$(printf '%s' "file://$J_REPO" | sha256sum | cut -c1-32)
mkdir -p "$STATE/mirrors/$key.git"
echo junk >"$STATE/mirrors/$key.git/junk"
post_job "{\"repo\": \"file://$J_REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
F6=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$F6" 120
expect_json .state failed "a mirror directory holding something else"
expect_json '.error | test("not a bare git repository")' true "the error says what is wrong"
expect_json ".error | contains(\"$STATE\")" false "and names no path in the state directory"

api GET /healthz
expect_status 200 "kilnd still serves after the failures"

# Cancel while the fetch hangs (a server that accepts and never answers):
# a job with targets and one whose targets the repository would name (its
# placeholder row) both end canceled, their build slots come back, and
# kilnd lives on (a use-after-free and a leaked slot, found in review).
python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' >"$T/hang.port" &
HANG=$!
for _ in $(seq 50); do [ -s "$T/hang.port" ] && break; sleep 0.1; done
HPORT=$(cat "$T/hang.port")
post_job "{\"repo\": \"git://127.0.0.1:$HPORT/x\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
H1=$(printf '%s' "$BODY" | jq -r .id)
post_job "{\"repo\": \"git://127.0.0.1:$HPORT/y\", \"ref\": \"main\"}"
H2=$(printf '%s' "$BODY" | jq -r .id)
expect_json '.targets[0].target' '*' "a job without targets holds one placeholder row"
sleep 1
api POST "/v1/jobs/$H1/cancel"
api POST "/v1/jobs/$H2/cancel"
wait_job "$H1" 60
expect_json .state canceled "a job canceled while it fetches"
wait_job "$H2" 60
expect_json .state canceled "a job without targets canceled while it fetches"
expect_json '.targets[0].state' canceled "its placeholder row ends canceled"
kill $HANG 2>/dev/null || true
api GET /healthz
expect_status 200 "kilnd lives on after the cancels"
expect_json .builds_running 0 "no build slot is held by the canceled jobs"

api GET /v1/targets
expect_json '[.targets[] | select(.target == "linux/arm64")][0].c_toolchain' \
	aarch64-linux-gnu "GET /v1/targets maps linux/arm64 to its cross gcc"
expect_json '[.targets[] | select(.target == "linux/arm64")][0].c_toolchain_installed' \
	true "and finds it installed"

stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
kill $GITD 2>/dev/null || true
finish
