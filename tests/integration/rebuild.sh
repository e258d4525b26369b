#!/bin/bash
# kiln-worker build --rebuild on its own, without kilnd: a build whose
# first run exits 0 is built again in a second sandbox that differs in
# work path, uid, umask, TZ, locale, environment order and wall-clock
# second, and the two /out trees are compared.  Each check asserts the
# status line's "reproducible" and "differences":
#  - deterministic output (files, a directory, a symlink) is reproducible;
#  - a nanosecond stamp is not, names "stamp", and diffoscope's report
#    follows "kiln-worker: rebuild: differs: stamp" in the output;
#  - output embedding $PWD, the umask, id -u, TZ's offset, the locale,
#    the environment's order or the second is not: each variation is real;
#  - a real Go program (CGO_ENABLED=0, -trimpath) is reproducible;
#  - a FIFO in /out is a difference by type, and nothing hangs on it;
#  - a second run that exits 2 gives "second build exited 2", while the
#    target itself still succeeded (exited 0);
#  - the second tree is removed every time and /out stays the first's.
# Exit 1 on any failure, 77 (skip) only when user namespaces are missing.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
W=${KILN_WORKER:-$BUILDDIR/kiln-worker}

NCHECK=0
NFAIL=0
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-rebuild-it.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT

ok() { NCHECK=$((NCHECK + 1)); echo "ok - $*"; }
fail() { NFAIL=$((NFAIL + 1)); echo "FAIL: $*"; }
check() { if [ "$1" = 0 ]; then ok "$2"; else fail "$2"; fi; }

[ -x "$W" ] || { echo "FAIL: $W is missing (make kiln-worker)"; exit 1; }
for tool in git jq go diffoscope timeout; do
	command -v "$tool" >/dev/null ||
		{ echo "FAIL: $tool is missing (scripts/bootstrap installs it)"; exit 1; }
done
if ! unshare --user --mount --pid --net --ipc --uts --fork true 2>/dev/null; then
	echo "SKIP: user namespaces are not available"
	exit 77
fi

git_() {
	git -c user.name=kiln-test -c user.email=kiln@test.invalid \
		-c init.defaultBranch=main "$@"
}

REPO=$T/repo
MIRROR=$T/mirrors/repo.git
mkdir -p "$REPO"
git_ init -q "$REPO"
cat > "$REPO/go.mod" <<'EOF'
module example.com/hello

go 1.19
EOF
cat > "$REPO/main.go" <<'EOF'
package main

import "fmt"

func main() { fmt.Println("hello, reproducibly") }
EOF
git_ -C "$REPO" add -A
git_ -C "$REPO" commit -qm one
C1=$(git -C "$REPO" rev-parse HEAD)
"$W" fetch --mirror "$MIRROR" --url "$REPO" --ref main >/dev/null ||
	{ echo "FAIL: kiln-worker fetch"; exit 1; }

N=0
# rb [--env NAME=VALUE...] -- PROGRAM...: one --rebuild build; sets RC,
# ST (the status line), OUT (stdout and stderr) and ROOT.
rb() {
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	N=$((N + 1))
	ROOT=$T/work$N
	timeout -s KILL 600 "$W" build --mirror "$MIRROR" --commit "$C1" \
		--root "$ROOT" --target linux/amd64 --timeout 300 --rebuild \
		--status-fd 3 --env PATH=/usr/bin:/bin "${envs[@]}" -- "$@" \
		3>"$T/status" >"$T/out" 2>&1
	RC=$?
	ST=$(cat "$T/status")
	OUT=$(cat "$T/out")
}
sj() { printf '%s' "$ST" | jq -c "$1" 2>/dev/null; }
# expect_diff NAME DIFFERENCES-JSON: the build succeeded, not reproducible,
# with exactly these differences, and its second tree is gone.
expect_diff() {
	local got
	got=$(sj '[.status, .code, .reproducible, .differences, .more_differences]')
	[ "$got" = "[\"exited\",0,false,$2,0]" ]
	check $? "$1: not reproducible, differences $2 (status $ST)"
	[ ! -e "$ROOT/rebuild" ]
	check $? "$1: the second tree is removed"
}

# (1) Deterministic output.
rb -- sh -c 'echo hello > /out/a; mkdir /out/d; chmod 750 /out/d;
	ln -s ../a /out/d/l; head -c 300000 /dev/zero > /out/d/big'
[ "$RC" = 0 ] && [ "$(sj '[.status, .code, .reproducible]')" = '["exited",0,true]' ] &&
	[ "$(sj 'has("differences")')" = false ]
check $? "deterministic output: reproducible true, no differences (status $ST)"
[ "$(cat "$ROOT/out/a" 2>/dev/null)" = hello ] && [ ! -e "$ROOT/rebuild" ]
check $? "deterministic output: /out is the first run's, the second tree removed"
printf '%s\n' "$OUT" | grep -qx 'kiln-worker: rebuild: reproducible'
check $? "deterministic output: the log says reproducible"

# (2) A nanosecond stamp; diffoscope's report in the output.
rb -- sh -c 'echo same > /out/same; date +%s%N > /out/stamp'
expect_diff "date +%s%N > /out/stamp" '["stamp"]'
printf '%s\n' "$OUT" | grep -qx 'kiln-worker: rebuild: differs: stamp' &&
	printf '%s\n' "$OUT" | grep -q -- '^--- out/stamp' &&
	printf '%s\n' "$OUT" | grep -q -- '^+++ rebuild/out/stamp'
check $? "stamp: 'differs: stamp' then diffoscope's report (--- out/stamp, +++ rebuild/out/stamp)"
printf '%s\n' "$OUT" | grep -q "$T"
check $((1 - $?)) "stamp: no host path of the work root in the output"

# (3) Each variation is real.
rb -- sh -c 'echo same > /out/same; pwd > /out/pwd'
expect_diff "work path (pwd)" '["pwd"]'
rb -- sh -c 'echo same > /out/same; umask > /out/u'
expect_diff "umask" '["u"]'
# Group-write alone follows the umask (022 or 002) and is not compared;
# every other permission bit is.
rb -- sh -c 'echo same > /out/same; touch /out/mode'
[ "$(sj .reproducible)" = true ]
check $? "a mode that only the umask's group-write bit decides is the same (status $ST)"
rb -- sh -c 'echo same > /out/same; touch /out/mode;
	[ "$PWD" = /src ] || chmod o+w /out/mode'
expect_diff "another permission bit" '["mode"]'
rb -- sh -c 'echo same > /out/same; id -u > /out/id'
expect_diff "uid (id -u)" '["id"]'
# Same size, different bytes past the first block compared.
rb -- sh -c 'echo same > /out/same; head -c 200000 /dev/zero > /out/big;
	id -u >> /out/big'
expect_diff "uid at the end of a 200 kB file" '["big"]'
rb -- sh -c 'echo same > /out/same; date +%z > /out/tz'
expect_diff "TZ (date +%z)" '["tz"]'
rb -- sh -c 'echo same > /out/same; echo "$LANG $LC_ALL" > /out/lang'
expect_diff "LANG, LC_ALL" '["lang"]'
# cp's own environment, in the order it was given (a shell reorders).
rb --env A=1 --env B=2 -- cp /proc/self/environ /out/env
expect_diff "environment order" '["env"]'
rb -- sh -c 'echo same > /out/same; date +%s > /out/sec'
expect_diff "wall-clock second" '["sec"]'
# The caller's variables are the same in both runs.
rb --env GOOS=linux --env KILN_TARGET=linux/amd64 -- sh -c \
	'echo "$GOOS $KILN_TARGET" > /out/vars'
[ "$(sj .reproducible)" = true ]
check $? "the caller's --env values are the same in both runs (status $ST)"

# (4) A real Go program.
rb --env CGO_ENABLED=0 --env GOFLAGS=-buildvcs=false --env HOME=/tmp \
	--env GOCACHE=/tmp/gocache --env GOPATH=/tmp/gopath \
	--env GOTOOLCHAIN=local -- go build -trimpath -o /out/hello .
[ "$RC" = 0 ] && [ "$(sj '[.status, .code, .reproducible]')" = '["exited",0,true]' ]
check $? "go build -trimpath: reproducible true (status $ST)"
[ "$("$ROOT/out/hello" 2>/dev/null)" = "hello, reproducibly" ]
check $? "go build: the first run's binary is in /out and runs"

# (5) A FIFO in /out: a difference by type, never opened.
rb -- sh -c 'echo same > /out/same; mkfifo /out/p'
[ "$RC" != 137 ]
check $? "FIFO: the worker ends (no hang)"
expect_diff "FIFO in /out" '["p"]'

# (6) The second run fails: the target still succeeded.
rb -- sh -c 'echo x > /out/x; [ "$PWD" = /src ] || exit 2'
[ "$RC" = 0 ]
check $? "failing second run: the worker exits 0 (the target succeeded)"
expect_diff "failing second run" '["second build exited 2"]'

echo "# $NCHECK checks passed, $NFAIL failed"
[ "$NFAIL" = 0 ]
