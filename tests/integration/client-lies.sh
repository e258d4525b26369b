#!/bin/bash
# kiln download --verify against a farm that lies (lyingfarm.py, a proxy
# in front of a real kilnd): asked for job 2, it answers with job 1's
# files and job 1's genuine signature, which the trusted comment's
# kiln-job field tells apart: refused (exit 1), naming both jobs.  A
# listing that leaves out an artifact SHA256SUMS names is refused even
# when DIR already holds a file of that name, which was never checked.
# The honest farm's downloads of the same jobs verify.
. "$(dirname "$0")/lib.sh"

for tool in git; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
: "${BUILDDIR:=$(pwd)}"
KILN=$BUILDDIR/kiln
[ -x "$KILN" ] || { echo "FAIL: no kiln binary at $KILN" >&2; exit 1; }
export XDG_CONFIG_HOME=$T/config
unset KILN_URL KILN_TOKEN

REPO=$(make_repo lies "$SRCDIR/tests/fixtures/c-hello")
start_kilnd
for v in one two; do
	echo "$v" >"$REPO/VERSION"
	commit_all "$REPO" "version $v"
	post_job "$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main",
		targets: ["linux/amd64"], recipe: {kind: "command",
		command: "cp VERSION /out/a && cp VERSION /out/b"}}')"
	expect_status 201 "submit version $v"
done
# signed ID: wait until the job is signed.
signed() {
	for _ in $(seq 1 1500); do
		api GET "/v1/jobs/$1"
		[ "$(jq -r .signed <<<"$BODY")" = true ] && return 0
		[ "$(jq -r .state <<<"$BODY")" = failed ] && break
		sleep 0.2
	done
	fail "job $1 was not signed: $BODY"
}
signed 1
signed 2

# liar ARGS...: start lyingfarm.py; LIAR is its URL.  Stopped on exit.
LIARS=()
stop_liars() {
	local p
	for p in ${LIARS[@]+"${LIARS[@]}"}; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
trap 'stop_liars; cleanup' EXIT
liar() {
	local pf=$T/liar.$RANDOM
	/usr/bin/python3 "$SRCDIR/tests/integration/lyingfarm.py" "$URL" "$pf" "$@" &
	LIARS+=($!)
	for _ in $(seq 1 200); do [ -s "$pf" ] && break; sleep 0.05; done
	LIAR=http://127.0.0.1:$(cat "$pf")
}
# run ARGS...: RC, OUT, ERR of kiln.
run() {
	RC=0
	"$KILN" "$@" >"$T/out" 2>"$T/err" || RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}

run --url "$URL" download 2 "$T/honest" --verify
[ "$RC" = 0 ] && ok "the honest farm's job 2 verifies" || fail "honest download: rc $RC, $ERR"
[ "$(cat "$T/honest/linux_amd64/a")" = two ] && ok "job 2 is version two" ||
	fail "job 2's a: $(cat "$T/honest/linux_amd64/a")"

liar --as 2:1
run --url "$LIAR" download 2 "$T/swapped" --verify
[ "$RC" = 1 ] && ok "job 1's signed files, given for job 2, are refused (exit 1)" ||
	fail "job 1's files for job 2: rc $RC, out: $OUT, err: $ERR"
[[ "$ERR" == *"job 1"* ]] && ok "the refusal names the job the signature is of" ||
	fail "the refusal: $ERR"

liar --hide b
mkdir -p "$T/stale/linux_amd64"
echo forged >"$T/stale/linux_amd64/b"
run --url "$LIAR" download 2 "$T/stale" --verify
[ "$RC" = 1 ] && ok "a listing without b is refused though DIR holds a b (exit 1)" ||
	fail "b left out of the listing, a stale b in DIR: rc $RC, out: $OUT, err: $ERR"
[[ "$ERR" == *"linux_amd64/b"* ]] && ok "the refusal names linux_amd64/b" ||
	fail "the refusal: $ERR"

finish
