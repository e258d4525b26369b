#!/bin/bash
# kiln-worker on its own, without kilnd:
#  - fetch: a real git repository into a bare mirror; the JSON line (commit,
#    commit_time, kiln_json, has_go_mod); an incremental second fetch; tag,
#    branch, full ref and commit-id refs; pruning; unknown refs and
#    unreachable URLs failing with exit 1 and a reason; usage errors exit 2;
#  - build: hostile programs in the sandbox, each asserting its specific
#    outcome (with a control where the attack would otherwise work), then
#    real cross builds (go for linux/arm64, aarch64-linux-gnu-gcc).
# Prints a table attack / expected / observed, ok/FAIL lines and
# "# N checks passed, M failed"; exit 1 on any failure, 77 (skip) only
# when user namespaces are unavailable.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
. "$SRCDIR/tests/port.sh"
W=$BUILDDIR/kiln-worker

NCHECK=0
NFAIL=0
ROWS=()
BGPIDS=()
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-worker-it.XXXXXX")
chmod 755 "$T"

# shellcheck disable=SC2317  # called by the trap
cleanup() {
	for p in "${BGPIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

ok() {
	NCHECK=$((NCHECK + 1))
	echo "ok - $*"
}
fail() {
	NFAIL=$((NFAIL + 1))
	echo "FAIL: $*" >&2
	echo "FAIL: $*"
}
# check COND-RESULT(0/1) DESCRIPTION: one ok/FAIL line.
check() {
	if [ "$1" = 0 ]; then ok "$2"; else fail "$2"; fi
}
# row ATTACK EXPECTED OBSERVED
row() {
	ROWS+=("$1"$'\t'"$2"$'\t'"$3")
}

[ -x "$W" ] || { echo "FAIL: $W is missing (make kiln-worker)"; exit 1; }
for tool in git jq file pgrep python3 go aarch64-linux-gnu-gcc; do
	command -v "$tool" >/dev/null ||
		{ echo "FAIL: $tool is missing (scripts/bootstrap installs it)"; exit 1; }
done
# The only reason to skip: no user namespaces here.
if ! unshare --user --mount --pid --net --ipc --uts --fork true 2>/dev/null; then
	echo "SKIP: user namespaces are not available"
	exit 77
fi

git_() {
	git -c user.name=kiln-test -c user.email=kiln@test.invalid \
		-c init.defaultBranch=main -c advice.detachedHead=false "$@"
}

# --- a repository -------------------------------------------------------------

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

import (
	"fmt"
	"runtime"
)

func main() { fmt.Println("hello from", runtime.GOOS+"/"+runtime.GOARCH) }
EOF
cat > "$REPO/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { puts("hello from C"); return 0; }
EOF
printf '{"recipe": {"kind": "go"}, "targets": ["linux/arm64"]}\n' > "$REPO/.kiln.json"
git_ -C "$REPO" add -A
git_ -C "$REPO" commit -qm one
C1=$(git -C "$REPO" rev-parse HEAD)
git_ -C "$REPO" tag -a v1.0 -m "release 1.0"
git_ -C "$REPO" branch feature

# fetch REF [URL [MIRROR]]: sets RC, OUT (stdout), ERR (last stderr line)
fetch() {
	"$W" fetch --mirror "${3:-$MIRROR}" --url "${2:-$REPO}" --ref "$1" \
		>"$T/fetch.out" 2>"$T/fetch.err"
	RC=$?
	OUT=$(cat "$T/fetch.out")
	ERR=$(tail -n 1 "$T/fetch.err")
}
jf() { printf '%s' "$OUT" | jq -r "$1" 2>/dev/null; }
# pack_objects MIRROR: object count of each pack, oldest first
pack_objects() {
	for idx in $(ls -tr "$1"/objects/pack/*.idx 2>/dev/null); do
		git verify-pack -v "$idx" | grep -cE '^[0-9a-f]{40} (commit|tree|blob|tag) '
	done | tr '\n' ' '
}

# The same repository over git:// (git daemon), where libgit2 negotiates:
# its local transport (paths, file://) always sends every object.
# A random port may be taken (another test, another user of the machine):
# a daemon that exits is started again on another one, and one that never
# answers stops the suite here rather than fail every git:// check later.
GREADY=
for _ in 1 2 3 4 5; do
	GPORT=$(pick_port)
	# git-daemon itself, not the git wrapper: $! must be what serves.
	"$(git --exec-path)/git-daemon" --base-path="$T" --export-all \
		--reuseaddr --listen=127.0.0.1 --port="$GPORT" "$T" \
		>/dev/null 2>&1 &
	GPID=$!
	BGPIDS+=($GPID)
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$GPORT") 2>/dev/null; then
			GREADY=1
			break
		fi
		kill -0 "$GPID" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$GREADY" ] && break
	kill "$GPID" 2>/dev/null
done
[ -n "$GREADY" ] || { echo "git daemon did not start" >&2; exit 1; }
GURL=git://127.0.0.1:$GPORT/repo
GMIRROR=$T/mirrors/repo-git.git

# --- fetch ----------------------------------------------------------------------

fetch main
[ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ]
check $? "fetch main: exit 0, one line of output ($ERR)"
[ "$(jf .commit)" = "$C1" ]
check $? "fetch main: commit is git rev-parse HEAD"
[ "$(jf .commit_time)" = "$(git -C "$REPO" log -1 --format=%ct)" ]
check $? "fetch main: commit_time is the commit's time"
[ "$(jf .kiln_json)" = "$(cat "$REPO/.kiln.json")" ]
check $? "fetch main: kiln_json is the text of .kiln.json"
[ "$(jf .has_go_mod)" = true ]
check $? "fetch main: has_go_mod true"
[ "$(git --git-dir="$MIRROR" rev-parse --is-bare-repository 2>/dev/null)" = true ]
check $? "the mirror is a bare repository"
fetch main "$GURL" "$GMIRROR"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C1" ]
check $? "fetch over git:// into a second mirror ($ERR)"

# A second commit: go.mod removed, .kiln.json changed, one new file.
git_ -C "$REPO" rm -q go.mod
printf '{"recipe": {"kind": "command", "command": "make"}}\n' > "$REPO/.kiln.json"
echo "second" > "$REPO/NEWS"
git_ -C "$REPO" add -A
git_ -C "$REPO" commit -qm two
C2=$(git -C "$REPO" rev-parse HEAD)
fetch main
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C2" ]
check $? "second fetch resolves main to the new commit"
[ "$(jf .has_go_mod)" = false ] &&
	[ "$(jf .kiln_json)" = "$(cat "$REPO/.kiln.json")" ]
check $? "second fetch: has_go_mod false, the new kiln_json"
fetch main "$GURL" "$GMIRROR"
PACKS=$(pack_objects "$GMIRROR")
read -r FIRST SECOND REST <<<"$PACKS"
# commit, root tree, NEWS and the new .kiln.json: 4 objects.
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C2" ] && [ "$SECOND" = 4 ] && [ -z "$REST" ]
check $? "second fetch over git:// is incremental: packs of $PACKS objects"
row "incremental fetch (git://)" "new pack: only 4 new objects" "packs of $FIRST, then $SECOND objects"

# A commit no branch or tag reaches (say, a pull request head): by id.
git_ -C "$REPO" checkout -q -b tmp
echo pr > "$REPO/PR"
git_ -C "$REPO" add PR
git_ -C "$REPO" commit -qm pr
C3=$(git -C "$REPO" rev-parse HEAD)
git_ -C "$REPO" checkout -q main
git -C "$REPO" branch -q -D tmp
git -C "$REPO" config uploadpack.allowAnySHA1InWant true
fetch "$C3" "$GURL" "$GMIRROR"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C3" ] &&
	[ "$(git --git-dir="$GMIRROR" rev-parse -q --verify "refs/kiln/commits/$C3")" = "$C3" ]
check $? "an unadvertised commit is fetched by id over git:// ($ERR)"

fetch v1.0
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C1" ]
check $? "annotated tag v1.0 peels to its commit"
fetch feature
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C1" ]
check $? "branch feature resolves"
fetch refs/heads/main
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C2" ]
check $? "full ref refs/heads/main resolves"
fetch "$C1"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C1" ] && [ "$(jf .has_go_mod)" = true ]
check $? "a 40-hex commit id resolves, described from its own tree"
fetch main "file://$REPO"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C2" ]
check $? "file:// URL works like the path"

# An annotated tag's own id (what a forge's push event for a tag carries
# in "after"): peeled, and the commit's id is what fetch reports.
TAGOBJ=$(git -C "$REPO" rev-parse v1.0)
[ "$TAGOBJ" != "$C1" ] && [ "$(git -C "$REPO" cat-file -t "$TAGOBJ")" = tag ]
check $? "v1.0 is an annotated tag: $TAGOBJ is a tag object"
fetch "$TAGOBJ"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$(git -C "$REPO" rev-parse 'v1.0^{commit}')" ]
check $? "--ref <tag object id> reports the tagged commit's id ($ERR)"

# What the mirror has needs no network: with the repository gone (a
# forge outage), an id in the mirror is still answered; a name is not
# (a branch may have moved), nor is the tag a job names when the mirror
# does not have it on that commit (it gives the build its version).
mv "$REPO" "$REPO.away"
fetch "$C1"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C1" ] && [ "$(jf .has_go_mod)" = true ]
check $? "a commit in the mirror is answered with the repository unreachable ($ERR)"
fetch "$TAGOBJ"
[ "$RC" = 0 ] && [ "$(jf .commit)" = "$C1" ]
check $? "so is an annotated tag's id in the mirror, peeled ($ERR)"
"$W" fetch --mirror "$MIRROR" --url "$REPO" --ref "$C1" --job-ref refs/tags/v1.0 \
	>/dev/null 2>"$T/fetch.err"
check $? "and a commit whose job names a tag the mirror has on it ($(tail -1 "$T/fetch.err"))"
"$W" fetch --mirror "$MIRROR" --url "$REPO" --ref "$C1" --job-ref refs/tags/v9.9 \
	>/dev/null 2>"$T/fetch.err"
RC=$?
ERR=$(tail -n 1 "$T/fetch.err")
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: cannot reach $REPO: "* ]]
check $? "a job's tag the mirror lacks is fetched, here failing: '$ERR'"
fetch main
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: cannot reach $REPO: "* ]]
check $? "a branch needs the repository: exit 1, '$ERR'"
fetch 0123456789abcdef0123456789abcdef01234567
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: cannot reach $REPO: "* ]]
check $? "an id the mirror lacks needs the repository: exit 1, '$ERR'"
row "fetch, repository unreachable" "ids in the mirror answered" "commit ok, branch: exit $RC"
mv "$REPO.away" "$REPO"

# Messages never name the mirror's path (they become the job's error).
# Beside the other mirrors: a local repository in or above the mirrors'
# directory is refused (tests/sandbox/fetch.sh).
mkdir -p "$T/mirrors/not-a-mirror"
echo junk > "$T/mirrors/not-a-mirror/file"
fetch main "$REPO" "$T/mirrors/not-a-mirror"
[ "$RC" = 1 ] && [[ "$ERR" == *"not a bare git repository"* ]] &&
	[[ "$(cat "$T/fetch.err")" != *"$T/mirrors/not-a-mirror"* ]]
check $? "a mirror directory holding something else: refused without its path ($ERR)"

git -C "$REPO" branch -q -D feature
fetch main
! git --git-dir="$MIRROR" rev-parse -q --verify refs/heads/feature >/dev/null
check $? "a branch deleted upstream is pruned from the mirror"
fetch feature
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: unknown ref 'feature' in $REPO" ]]
check $? "pruned branch is now an unknown ref ($ERR)"

fetch nope
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: unknown ref 'nope' in $REPO" ]]
check $? "unknown ref: exit 1, '$ERR'"
row "fetch of unknown ref" "exit 1 + reason" "exit $RC: $ERR"
fetch HEAD
[ "$RC" = 1 ]
check $? "HEAD of the mirror is never used (exit $RC)"
fetch main "$T/no-such-repo"
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: cannot reach $T/no-such-repo: "* ]]
check $? "missing repository: exit 1, '$ERR'"
mkdir "$T/plain"
fetch main "$T/plain"
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: cannot reach $T/plain: "* ]]
check $? "a directory that is no repository: exit 1, '$ERR'"
# A repository that answers but lacks an object its branch needs: the
# fetch failed there, it did not fail to reach it.
mkdir "$T/corrupt"
git -C "$T/corrupt" init -q -b main
echo hello > "$T/corrupt/a"
git -C "$T/corrupt" add a
git -C "$T/corrupt" -c user.name=kiln-test -c user.email=t@kiln.invalid commit -q -m a
blob=$(git -C "$T/corrupt" rev-parse HEAD:a)
rm "$T/corrupt/.git/objects/${blob:0:2}/${blob:2}"
fetch main "$T/corrupt" "$T/mirrors/corrupt.git"
[ "$RC" = 1 ] &&
	[[ "$ERR" == "kiln-worker: fetch: fetch from $T/corrupt failed: "*"$blob"* ]]
check $? "a repository missing an object: 'fetch from ... failed', not 'cannot reach' ($ERR)"
fetch main "git://127.0.0.1:1/x.git"
[ "$RC" = 1 ] && [[ "$ERR" == "kiln-worker: fetch: cannot reach git://127.0.0.1:1/x.git: "* ]]
check $? "unreachable git:// URL: exit 1, '$ERR'"
fetch main "https://kiln:s3cret@127.0.0.1:1/x.git"
[ "$RC" = 1 ] && [[ "$ERR" != *s3cret* ]] && [[ "$ERR" == *"kiln:***@"* ]]
check $? "a password in the URL never reaches the message ($ERR)"
fetch main "ftp://example.com/x.git"
[ "$RC" = 1 ] && [[ "$ERR" == *"unsupported URL"* ]]
check $? "unsupported URL scheme: exit 1 ($ERR)"
"$W" fetch --mirror "$MIRROR" --url "$REPO" >/dev/null 2>&1
RC=$?
[ "$RC" = 2 ]
check $? "fetch without --ref: usage error, exit 2 (got $RC)"

# An HTTP server that wants credentials: the callback gives up.
AUTHPORT=$(pick_port)
python3 - "$AUTHPORT" >/dev/null 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="kiln"')
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
BGPIDS+=($!)
# Until it listens, not a fixed time: python starts slowly on a busy host.
for _ in $(seq 1 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$AUTHPORT") 2>/dev/null && break
	sleep 0.05
done
fetch main "http://127.0.0.1:$AUTHPORT/x.git"
[ "$RC" = 1 ] && [ "$ERR" = "kiln-worker: fetch: authentication failed for http://127.0.0.1:$AUTHPORT/x.git" ]
check $? "401 from the server: 'authentication failed', no retry loop ($ERR)"

# .kiln.json over 64 KiB is an error.
git_ -C "$REPO" checkout -q -b big
head -c 70000 /dev/zero | tr '\0' ' ' > "$REPO/.kiln.json"
git_ -C "$REPO" commit -qam big
git_ -C "$REPO" checkout -q main
fetch big
[ "$RC" = 1 ] && [[ "$ERR" == *".kiln.json"*"65536"* ]]
check $? "a .kiln.json over 64 KiB fails the fetch ($ERR)"

# Two fetches at once into one mirror: serialized by the lock, both fine.
"$W" fetch --mirror "$MIRROR" --url "$REPO" --ref main >"$T/p1" 2>&1 &
P1=$!
"$W" fetch --mirror "$MIRROR" --url "$REPO" --ref main >"$T/p2" 2>&1
R2=$?
wait $P1
R1=$?
[ "$R1" = 0 ] && [ "$R2" = 0 ] && [ -e "$MIRROR.lock" ]
check $? "concurrent fetches into one mirror both succeed (flock on $MIRROR.lock)"

# --- build ------------------------------------------------------------------------

# The build commit: the first one (go.mod, main.go, hello.c).
BC=$C1
BASE_ENV=(--env PATH=/usr/bin:/bin --env HOME=/tmp --env TMPDIR=/tmp)
mkdir -p "$T/work"
OURS=()	# the basenames of this test's build roots

# build NAME [options] -- PROGRAM...: a build in a fresh root $T/work/NAME.
# Sets RC, ST (the status line), LOG (stdout+stderr), ROOT, SECS.
build() {
	local name=$1 t0
	shift
	ROOT=$T/work/$name
	OURS+=("$name")
	t0=$(date +%s%N)
	"$W" build --mirror "$MIRROR" --commit "$BC" --root "$ROOT" \
		--target linux/amd64 --status-fd 3 "$@" \
		3>"$T/$name.status" >"$T/$name.log" 2>&1
	RC=$?
	SECS=$(( ($(date +%s%N) - t0) / 1000000 ))
	SECS=$(printf '%d.%03d' $((SECS / 1000)) $((SECS % 1000)))
	ST=$(cat "$T/$name.status")
	LOG=$(cat "$T/$name.log")
}
st() { printf '%s' "$ST" | jq -c . 2>/dev/null; }

build exit3 --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'exit 3'
[ "$ST" = '{"status":"exited","code":3}' ] && [ "$RC" = 3 ]
check $? "sh -c 'exit 3': status $ST, exit $RC"
row "/bin/sh -c 'exit 3'" '{"status":"exited","code":3}' "$ST rc=$RC"

build segv --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'kill -SEGV $$'
[ "$ST" = '{"status":"signaled","signal":11}' ] && [ "$RC" = 139 ]
check $? "a build killed by SIGSEGV: status $ST, exit $RC"

build checkout --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'ls -A /src | tr "\n" " "; pwd'
[ "$ST" = '{"status":"exited","code":0}' ] &&
	[[ "$LOG" == *".kiln.json go.mod hello.c main.go"*"/src"* ]] &&
	[ ! -e "$ROOT/src/.git" ] && [ -d "$ROOT/out" ] && [ -d "$ROOT/tmp" ]
check $? "checkout: the commit's tree in /src, the working directory (${LOG//$'\n'/ })"
! [ -e "$MIRROR/index" ]
check $? "checkout wrote no index into the mirror"

# No network: a listener on the host's loopback records connections.
LPORT=$(pick_port)
: > "$T/hits"
python3 - "$LPORT" "$T/hits" >/dev/null 2>&1 <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write("hit\n")
    c.close()
EOF
BGPIDS+=($!)
# Until it listens (the probe's own hit is then cleared).
for _ in $(seq 1 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$LPORT") 2>/dev/null && break
	sleep 0.05
done
for _ in $(seq 1 100); do [ -s "$T/hits" ] && break; sleep 0.02; done
: > "$T/hits"
NET='exec 3<>/dev/tcp/127.0.0.1/'$LPORT' && echo CONNECTED'
build net --timeout 30 "${BASE_ENV[@]}" -- /bin/bash -c "$NET"
HITS=$(wc -l < "$T/hits")
[ "$RC" = 1 ] && [[ "$LOG" != *CONNECTED* ]] && [[ "$LOG" == *"Connection refused"* ]] && [ "$HITS" = 0 ]
check $? "connect to the host's 127.0.0.1:$LPORT fails (exit $RC, listener hits $HITS)"
row "connect to host 127.0.0.1:$LPORT" "refused, no hit" \
	"exit $RC, $(grep -o 'Connection refused' <<<"$LOG" | head -1), hits=$HITS"
build netctl --timeout 30 --host-network "${BASE_ENV[@]}" -- /bin/bash -c "$NET"
HITS=$(wc -l < "$T/hits")
[ "$RC" = 0 ] && [[ "$LOG" == *CONNECTED* ]] && [ "$HITS" = 1 ]
check $? "control: with --host-network the same connect reaches the listener (hits $HITS)"
build lo --timeout 60 "${BASE_ENV[@]}" -- /bin/bash -c \
	'python3 -m http.server --bind 127.0.0.1 8000 >/dev/null 2>&1 & for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3; exec 3<>/dev/tcp/127.0.0.1/8000 && { echo LOOPBACK-OK; exit 0; }; done 2>/dev/null; exit 1'
[ "$RC" = 0 ] && [[ "$LOG" == *LOOPBACK-OK* ]]
check $? "loopback is up inside: the build talks to itself on 127.0.0.1"

[ -e /etc/shadow ]
check $? "control: /etc/shadow exists on the host"
build shadow --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'cat /etc/shadow'
[ "$RC" != 0 ] && [[ "$LOG" == *"No such file"* ]]
check $? "read /etc/shadow: absent (exit $RC)"
row "cat /etc/shadow" "absent" "exit $RC: $(head -1 <<<"$LOG")"

mkdir -p "$T/state"
echo "signing-key-$$" > "$T/state/secret.key"
build state --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c "cat '$T/state/secret.key'; ls '$T'"
[ "$RC" != 0 ] && [[ "$LOG" != *signing-key* ]] && [[ "$LOG" == *"No such file"* ]]
check $? "read a file in a state dir outside: absent (exit $RC)"
row "cat <state dir>/secret.key" "absent" "exit $RC: $(head -1 <<<"$LOG")"

build usr --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'echo evil > /usr/bin/kiln-evil'
[ "$RC" != 0 ] && [[ "$LOG" == *"Read-only file system"* ]] && [ ! -e /usr/bin/kiln-evil ]
check $? "write to /usr: read-only (exit $RC)"
row "write /usr/bin/kiln-evil" "read-only" "exit $RC: $(head -1 <<<"$LOG")"

WRITES='for d in / /etc /dev /proc /usr/lib /bin /run /home; do
	touch "$d/kiln-probe" 2>/dev/null && echo "WROTE $d"
done
echo x > /out/ok && echo x > /tmp/ok && echo x > /src/ok && echo WRITABLE-OK'
build writes --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c "$WRITES"
[[ "$LOG" != *WROTE* ]] && [[ "$LOG" == *WRITABLE-OK* ]] && [ -f "$ROOT/out/ok" ] &&
	[ -f "$ROOT/tmp/ok" ] && [ -f "$ROOT/src/ok" ]
check $? "writes outside /out, /tmp, /src fail; those three work"
row "touch / /etc /dev /proc /usr/lib /bin /run /home" "all fail" \
	"$(grep -c WROTE <<<"$LOG") succeeded; /out /tmp /src writable"

build envs --timeout 30 --env PATH=/usr/bin:/bin --env KILN_TARGET=linux/amd64 \
	--env 'SPACED=a b  c' --env EMPTY= --env KILN_TARGET=linux/arm64 -- /usr/bin/env
EXPECT=$(printf '%s\n' 'EMPTY=' 'KILN_TARGET=linux/arm64' 'PATH=/usr/bin:/bin' 'SPACED=a b  c' | sort)
GOT=$(printf '%s\n' "$LOG" | sort)
[ "$RC" = 0 ] && [ "$GOT" = "$EXPECT" ]
check $? "env | sort is exactly the --env variables (a repeated name replaced)"
KILN_LEAK_CANARY=leak-$$ build envleak --timeout 30 --env PATH=/usr/bin:/bin -- /usr/bin/env
[ "$LOG" = "PATH=/usr/bin:/bin" ]
check $? "nothing of the worker's environment leaks ($LOG)"
row "env in the build" "only the --env variables" "$(printf '%s' "$GOT" | tr '\n' ' ')"

build ids --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'id -u; id -g; id -G; uname -n; echo > /out/owned'
IDS=$(printf '%s' "$LOG" | tr '\n' ' ')
[ "$RC" = 0 ] && [ "$(sed -n 1p <<<"$LOG")" = 1000 ] && [ "$(sed -n 2p <<<"$LOG")" = 1000 ] &&
	[ "$(sed -n 3p <<<"$LOG")" = 1000 ]
check $? "uid, gid and groups inside are 1000, not 0 ($IDS)"
row "id -u; id -g; id -G" "1000 1000 1000" "$(sed -n 1,3p <<<"$LOG" | tr '\n' ' ')"
if [ "$(id -u)" = 0 ]; then
	[ "$(stat -c %u "$ROOT/out/owned")" = 65534 ]
	check $? "as root, the build is uid 65534 on the host (file in /out owned by $(stat -c %U "$ROOT/out/owned"))"
fi
[ "$(sed -n 4p <<<"$LOG")" = kiln-build ]
check $? "hostname is kiln-build"
row "uname -n" "kiln-build" "$(sed -n 4p <<<"$LOG")"

build seccomp --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c \
	'grep -E "^(Seccomp|NoNewPrivs|CapEff|CapBnd):" /proc/self/status; unshare -U true'
[ "$RC" != 0 ] && [[ "$LOG" == *"unshare failed: Operation not permitted"* ]] &&
	[[ "$LOG" == *$'Seccomp:\t2'* ]] && [[ "$LOG" == *$'NoNewPrivs:\t1'* ]] &&
	[[ "$LOG" == *$'CapEff:\t0000000000000000'* ]]
check $? "unshare -U true fails (seccomp filter on, no_new_privs, no capabilities)"
row "unshare -U true" "EPERM (seccomp)" "exit $RC: $(grep unshare <<<"$LOG")"
if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups unshare -U true 2>/dev/null
	check $? "control: unshare -U true works for an unprivileged uid outside the sandbox"
fi

MOUNT='import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
print("mount", r, os.strerror(ctypes.get_errno()))
r = libc.umount2(b"/proc", 2)
print("umount2", r, os.strerror(ctypes.get_errno()))'
build mount --timeout 30 "${BASE_ENV[@]}" -- python3 -c "$MOUNT"
[[ "$LOG" == *"mount -1 Operation not permitted"* ]] &&
	[[ "$LOG" == *"umount2 -1 Operation not permitted"* ]]
check $? "mount(2) and umount2(2) fail with EPERM"
row "mount(2) tmpfs on /tmp" "EPERM" "$(head -1 <<<"$LOG")"

build ptrace --timeout 30 "${BASE_ENV[@]}" -- python3 -c 'import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print("ptrace", libc.ptrace(16, 1, 0, 0), os.strerror(ctypes.get_errno()))
print("io_uring_setup", libc.syscall(425, 8, 0), os.strerror(ctypes.get_errno()))
try:
    os.listdir("/proc/1/fd")
    print("pid1-fds readable")
except PermissionError:
    print("pid1-fds denied")'
[[ "$LOG" == *"ptrace -1 Operation not permitted"* ]] &&
	[[ "$LOG" == *"io_uring_setup -1 Operation not permitted"* ]] &&
	[[ "$LOG" == *"pid1-fds denied"* ]]
check $? "ptrace of pid 1 and io_uring fail with EPERM; pid 1's fds are out of reach"
row "ptrace(ATTACH, 1); ls /proc/1/fd" "EPERM; denied" "$(sed -n 1p <<<"$LOG"); $(sed -n 3p <<<"$LOG")"

build fds --timeout 30 "${BASE_ENV[@]}" -- /bin/sh -c 'ls /proc/self/fd | tr "\n" " "' \
	7<"$T/state/secret.key"
[ "$LOG" = "0 1 2 3 " ]
check $? "no fd of the worker reaches the build (fds: $LOG)"

# Fork bomb with --pids 64: contained, the worker returns at its timeout,
# nothing is left, the host still forks.
BOMB=kiln-bomb-$$-$RANDOM
( build bomb --timeout 6 --pids 64 "${BASE_ENV[@]}" -- /bin/bash -c \
	": $BOMB; b() { b | b & }; b; sleep 60" ; echo "$RC $SECS $ST" > "$T/bomb.result" ) &
BP=$!
BGPIDS+=($BP)
MAXP=0
while kill -0 "$BP" 2>/dev/null; do
	n=$(pgrep -c -f "$BOMB")
	[ "$n" -gt "$MAXP" ] && MAXP=$n
	sleep 0.1
done
wait "$BP"
read -r RC SECS ST < "$T/bomb.result"
LEFT=$(pgrep -c -f "$BOMB")
# 64 in the build's pids cgroup (its init included), plus the worker.
[ "$MAXP" -gt 10 ] && [ "$MAXP" -le 65 ] && [ "$ST" = '{"status":"timed_out"}' ] &&
	[ "$RC" = 124 ] && [ "$LEFT" = 0 ]
check $? "fork bomb with --pids 64: at most $MAXP processes, $ST after ${SECS}s, $LEFT left"
bash -c 'for i in $(seq 50); do /bin/true & done; wait'
check $? "the host still forks after the bomb"
row "fork bomb, --pids 64" "contained, build fails" "max $MAXP procs, $ST in ${SECS}s, $LEFT left"

ALLOC='import sys
n = int(sys.argv[1]) << 20
b = b"\x01" * n
print("allocated", len(b) >> 20, "MiB")'
build mem --timeout 60 --memory 256M "${BASE_ENV[@]}" -- python3 -c "$ALLOC" 8192
[ "$ST" = '{"status":"signaled","signal":9}' ] && [ "$RC" = 137 ] && [[ "$LOG" != *allocated* ]]
check $? "allocating 8 GiB with --memory 256M is killed ($ST)"
row "allocate 8 GiB, --memory 256M" "killed (SIGKILL)" "$ST rc=$RC"
build memctl --timeout 60 --memory 256M "${BASE_ENV[@]}" -- python3 -c "$ALLOC" 64
[ "$RC" = 0 ] && [[ "$LOG" == *"allocated 64 MiB"* ]]
check $? "control: 64 MiB under --memory 256M works"

build fsize --timeout 30 --file-size 1M "${BASE_ENV[@]}" -- /bin/sh -c \
	'head -c 2000000 /dev/zero > /out/big; echo "head: $?"; stat -c %s /out/big'
[[ "$LOG" == *"1048576"* ]]
check $? "--file-size 1M stops a file at 1 MiB"

# Timeout with a double-forked, setsid'd grandchild.
MARK=kiln-mark-$$-$RANDOM
( build timeout --timeout 2 "${BASE_ENV[@]}" -- /bin/sh -c \
	"(setsid sh -c 'sleep 300; : $MARK' &); sleep 300" ; echo "$RC $SECS $ST" > "$T/to.result" ) &
TP=$!
BGPIDS+=($TP)
SEEN=0
while kill -0 "$TP" 2>/dev/null; do
	pgrep -f "^sh -c sleep 300; : $MARK" >/dev/null && SEEN=1
	sleep 0.1
done
wait "$TP"
read -r RC SECS ST < "$T/to.result"
sleep 0.2
LEFT=$(pgrep -c -f "$MARK")
[ "$SEEN" = 1 ]
check $? "the setsid'd grandchild ran during the build"
[ "$ST" = '{"status":"timed_out"}' ] && [ "$RC" = 124 ] && [ "$LEFT" = 0 ] &&
	awk "BEGIN { exit !($SECS < 5) }"
check $? "--timeout 2: $ST, exit $RC after ${SECS}s, $LEFT processes left"
row "sleep past --timeout 2 (+ setsid'd grandchild)" "timed_out, nothing left" \
	"$ST in ${SECS}s, $LEFT left"

# Cancel: SIGTERM and SIGKILL to the worker leave nothing behind.
for sig in TERM KILL; do
	MARK=kiln-cancel-$sig-$$-$RANDOM
	"$W" build --mirror "$MIRROR" --commit "$BC" --root "$T/work/cancel-$sig" \
		--target linux/amd64 --timeout 60 --status-fd 3 "${BASE_ENV[@]}" -- /bin/sh -c \
		"(setsid sh -c 'sleep 300; : $MARK' &); sleep 300" 3>"$T/cancel.status" \
		>"$T/cancel.log" 2>&1 &
	CP=$!
	for _ in $(seq 50); do
		pgrep -f "^sh -c sleep 300; : $MARK" >/dev/null && break
		sleep 0.1
	done
	kill -"$sig" "$CP"
	{ wait "$CP"; } 2>/dev/null
	RC=$?
	sleep 0.3
	LEFT=$(pgrep -c -f "$MARK")
	ST=$(cat "$T/cancel.status")
	if [ "$sig" = TERM ]; then
		[ "$RC" = 143 ] && [ "$ST" = '{"status":"signaled","signal":15}' ] && [ "$LEFT" = 0 ]
	else
		[ "$RC" = 137 ] && [ "$LEFT" = 0 ]
	fi
	check $? "SIG$sig to the worker: exit $RC, status '$ST', $LEFT processes left"
	row "SIG$sig to the worker" "build tree gone" "exit $RC, $LEFT left"
done

build exec --timeout 30 "${BASE_ENV[@]}" -- no-such-program
[ "$RC" = 125 ] && [[ "$ST" == '{"status":"error","error":"cannot execute '\''no-such-program'\'': No such file or directory"}' ]] &&
	[[ "$(tail -1 <<<"$LOG")" == "kiln-worker: cannot execute 'no-such-program'"* ]]
check $? "a missing program: exit 125, status error ($ST)"
mkdir -p "$T/work/notempty"
touch "$T/work/notempty/leftover"
build notempty --timeout 30 "${BASE_ENV[@]}" -- /bin/true
[ "$RC" = 125 ] && [[ "$(st)" == *'"status":"error"'* ]] && [[ "$ST" == *"not empty"* ]] &&
	[[ "$ST$LOG" != *"$T/work"* ]]
check $? "a non-empty --root is refused, its path not shown ($ST)"
BC=0123456789012345678901234567890123456789 build badcommit2 --timeout 30 "${BASE_ENV[@]}" -- /bin/true
[ "$RC" = 125 ] && [[ "$ST" == *'"status":"error"'* ]] &&
	[[ "$ST" == *"commit 0123456789012345678901234567890123456789 is not in the mirror of this repository"* ]] &&
	[[ "$ST$LOG" != *"$T/"* ]]
check $? "a commit missing from the mirror: exit 125, status error without paths ($ST)"
"$W" build --mirror "$MIRROR" --commit "$BC" --root "$T/work/usage" --target linux/amd64 \
	-- /bin/true >/dev/null 2>&1
RC=$?
[ "$RC" = 2 ]
check $? "build without --timeout: usage error, exit 2 (got $RC)"
"$W" build --mirror "$MIRROR" --commit "$BC" --root "$T/work/usage" --target plan9/vax \
	--timeout 5 -- /bin/true >/dev/null 2>&1
RC=$?
[ "$RC" = 2 ]
check $? "build with an invalid --target: usage error, exit 2 (got $RC)"

# --config-fd: the options in a file descriptor, each ended by a NUL byte
# (how kilnd starts builds).  The build's pid 1 is a clone of the worker:
# its /proc/1/cmdline must show the three words and nothing of the options.
printf '%s\0' --mirror "$MIRROR" --commit "$BC" --root "$T/work/cfgfd" \
	--target linux/amd64 --timeout 30 --status-fd 3 "${BASE_ENV[@]}" \
	--env "KILN_CFG_MARK=a b'c" -- /bin/sh -c \
	'tr "\0" "|" </proc/1/cmdline; echo; echo "mark=$KILN_CFG_MARK"' >"$T/cfgfd.opts"
(exec -a kiln-worker "$W" build --config-fd 5 5<"$T/cfgfd.opts" 3>"$T/cfgfd.status" \
	>"$T/cfgfd.log" 2>&1)
RC=$?
LOG=$(cat "$T/cfgfd.log")
[ "$RC" = 0 ] && [ "$(cat "$T/cfgfd.status")" = '{"status":"exited","code":0}' ] &&
	[ "$(head -1 <<<"$LOG")" = "kiln-worker|build|--config-fd|5|" ] &&
	[[ "$LOG" == *"mark=a b'c"* ]] && [[ "$(head -1 <<<"$LOG")" != *"$T"* ]]
check $? "build --config-fd: options read from fd 5, pid 1 shows only 'kiln-worker build --config-fd 5' (${LOG//$'\n'/ | })"
row "read the worker's options (/proc/1/cmdline)" "kiln-worker build --config-fd N" \
	"$(head -1 <<<"$LOG" | tr '|' ' ' | sed 's/ $//')"
printf '%s\0' --mirror "$MIRROR" --url "$REPO" --ref main >"$T/cfgfetch.opts"
"$W" fetch --config-fd=7 7<"$T/cfgfetch.opts" >"$T/cfgfetch.out" 2>&1
RC=$?
[ "$RC" = 0 ] && [ "$(jq -r .commit "$T/cfgfetch.out" 2>/dev/null)" = "$(git -C "$REPO" rev-parse main)" ]
check $? "fetch --config-fd=7: the same fetch as from the command line (exit $RC)"
# cfgbad NAME FD-CONTENT-FILE EXPECTED-MESSAGE [WORKER ARGS...]: exit 2 and
# the message, and nothing built.
cfgbad() {
	local name=$1 file=$2 want=$3 err
	shift 3
	"$W" build "$@" 5<"$file" >"$T/cfgbad.out" 2>&1
	RC=$?
	err=$(tail -1 "$T/cfgbad.out")
	[ "$RC" = 2 ] && [[ "$err" == *"$want"* ]] && [ ! -e "$T/work/cfgbad" ]
	check $? "--config-fd, $name: exit 2, '$err'"
}
printf '%s\0' --mirror "$MIRROR" --commit "$BC" --root "$T/work/cfgbad" \
	--target linux/amd64 --timeout 30 -- /bin/true >"$T/cfg.good"
head -c -1 "$T/cfg.good" >"$T/cfg.nonul"
: >"$T/cfg.empty"
{ cat "$T/cfg.good"; head -c 3000000 /dev/zero | tr '\0' x; printf '\0'; } >"$T/cfg.big"
printf '%s\0' --mirror "$MIRROR" --frobnicate >"$T/cfg.unknown"
cfgbad "no final NUL byte" "$T/cfg.nonul" "do not end with a NUL byte" --config-fd 5
cfgbad "empty" "$T/cfg.empty" "no options" --config-fd 5
cfgbad "over 2 MiB" "$T/cfg.big" "more than 2097152 bytes" --config-fd 5
cfgbad "an unknown option inside" "$T/cfg.unknown" "unknown option" --config-fd 5
cfgbad "a closed fd" "$T/cfg.good" "wants an open fd above 2, got '9'" --config-fd 9
cfgbad "fd 0" "$T/cfg.good" "wants an open fd above 2, got '0'" --config-fd 0
cfgbad "not a number" "$T/cfg.good" "wants an open fd above 2, got '5x'" --config-fd 5x
cfgbad "no fd" "$T/cfg.good" "wants an open fd above 2, got ''" --config-fd
cfgbad "with other options" "$T/cfg.good" "comes alone" --config-fd 5 --network

# A sandbox message names a directory as the build sees it, even when the
# host path is too long for the sandbox's report (it would be cut short,
# and a cut path cannot be recognised and hidden afterwards).
LONGDIR=$T/$(printf 'm%.0s' $(seq 1 250))/missing
build longpath --timeout 30 --modcache "$LONGDIR" "${BASE_ENV[@]}" -- /bin/true
[ "$RC" = 125 ] && [ "$(st)" = '{"status":"error","error":"/gomod: No such file or directory"}' ] &&
	[[ "$ST$LOG" != *"$T"* ]] && [[ "$ST$LOG" != *mmmmmmmm* ]]
check $? "a missing --modcache under a 300-byte path: '/gomod' in the error, no host path ($ST)"

# As an unprivileged user (what kilnd is under systemd): user namespaces
# without privileges; no writable cgroups here, so one warning and
# RLIMIT_NPROC as the process cap.  nobody has no range in /etc/subuid:
# refused, unless --allow-same-uid (tests/sandbox/subuid.sh has builds
# under subordinate ids).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
	! grep -qE '^(nobody|65534):' /etc/subuid /etc/subgid 2>/dev/null; then
	U=$T/unpriv
	mkdir -p "$U"
	cp -r "$MIRROR" "$U/mirror.git"
	chown -R 65534:65534 "$U"
	setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent \
		"$W" build --mirror "$U/mirror.git" --commit "$BC" --root "$U/refused" \
		--target linux/amd64 --timeout 30 --status-fd 3 "${BASE_ENV[@]}" -- \
		/bin/true 3>"$T/unpriv.status" >"$T/unpriv.log" 2>&1
	RC=$?
	[ "$RC" = 125 ] && [ ! -e "$U/refused" ] &&
		jq -e '.error | contains("/etc/subuid") and contains("allow_same_uid_builds")' \
			"$T/unpriv.status" >/dev/null
	check $? "unprivileged worker without subordinate ids: refused, naming /etc/subuid and the key (exit $RC: $(cat "$T/unpriv.status"))"
	setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent \
		"$W" build --mirror "$U/mirror.git" --commit "$BC" --root "$U/root" \
		--target linux/amd64 --timeout 30 --pids 32 --status-fd 3 --allow-same-uid "${BASE_ENV[@]}" -- \
		/bin/sh -c 'id -u; awk "/Max processes/ { print \$3 }" /proc/self/limits; echo x > /out/f; cat /etc/shadow 2>/dev/null || echo no-shadow' \
		3>"$T/unpriv.status" >"$T/unpriv.log" 2>&1
	RC=$?
	LOG=$(cat "$T/unpriv.log")
	[ "$RC" = 0 ] && [ "$(cat "$T/unpriv.status")" = '{"status":"exited","code":0}' ] &&
		[[ "$LOG" == *$'1000\n32\n'* ]] && [[ "$LOG" == *no-shadow* ]] &&
		[ "$(grep -c '^kiln-worker: warning: no cgroups' <<<"$LOG")" = 1 ] &&
		[ "$(stat -c %u "$U/root/out/f")" = 65534 ]
	check $? "unprivileged worker, --allow-same-uid: sandboxed as uid 1000, one cgroup warning, RLIMIT_NPROC 32 (${LOG//$'\n'/ | })"
	# The warning reaches the build log: no path of the host's cgroup tree.
	grep '^kiln-worker: warning: no cgroups' <<<"$LOG" | grep -qF '<cgroup>' &&
		! grep -qF /sys/fs/cgroup <<<"$LOG"
	check $? "the cgroup warning names '<cgroup>/NAME', not the host's cgroup path ($(grep -m1 'no cgroups' <<<"$LOG"))"
	row "unprivileged worker (uid 65534)" "sandbox, warn, NPROC cap" "exit $RC, $(sed -n 2,3p <<<"$LOG" | tr '\n' ' ')"
fi

# --- the build cache's owner record -------------------------------------------------
# A root worker hands --cache to the build uid and records that beside it
# (DIR.owner), also when DIR is given with a trailing slash: a record
# inside the cache would be the build's to rewrite (or to make a FIFO
# that hangs the next worker in open(2)).  While the record matches the
# cache is not walked again; another build uid walks it.
if [ "$(id -u)" = 0 ]; then
	OC=$T/cache/owned
	build owned1 --timeout 30 --cache "$OC/" "${BASE_ENV[@]}" -- \
		/bin/sh -c 'touch /cache/made; test ! -e /cache/.owner'
	[ "$ST" = '{"status":"exited","code":0}' ] &&
		[ "$(cat "$OC.owner" 2>/dev/null)" = 65534:65534 ] &&
		[ ! -e "$OC/.owner" ] && [ "$(stat -c %u:%g "$OC/made")" = 65534:65534 ]
	check $? "--cache DIR/: handed to 65534, recorded in DIR.owner, nothing in the cache ($ST)"
	row "--cache DIR/ (trailing slash)" "record beside the cache" \
		"$(ls -A "$OC" | tr '\n' ' ')"
	chown 0:0 "$OC/made"
	build owned2 --timeout 30 --cache "$OC" "${BASE_ENV[@]}" -- /bin/true
	[ "$ST" = '{"status":"exited","code":0}' ] &&
		[ "$(stat -c %u:%g "$OC/made")" = 0:0 ]
	check $? "the record matches: the cache is not walked again ($ST)"
	build owned3 --timeout 30 --cache "$OC" --build-uid 1234 "${BASE_ENV[@]}" -- /bin/true
	[ "$ST" = '{"status":"exited","code":0}' ] &&
		[ "$(stat -c %u:%g "$OC/made")" = 1234:1234 ] &&
		[ "$(cat "$OC.owner")" = 1234:1234 ]
	check $? "another build uid: the cache is walked and recorded again ($ST)"
	OURS+=(owned1 owned2 owned3)
fi

# --- real builds --------------------------------------------------------------------

CACHE=$T/cache/repo
build go --timeout 600 --cache "$CACHE" --env PATH=/usr/bin:/bin --env HOME=/tmp \
	--env TMPDIR=/tmp --env GOCACHE=/cache/go-build --env GOPATH=/cache/go \
	--env CGO_ENABLED=0 --env GOFLAGS=-trimpath --env GOPROXY=off \
	--env GOOS=linux --env GOARCH=arm64 -- \
	go build -buildvcs=false -ldflags=-s -o /out/hello .
FILE=$(file -b "$ROOT/out/hello" 2>/dev/null)
[ "$ST" = '{"status":"exited","code":0}' ] && [[ "$FILE" == *"ARM aarch64"* ]]
check $? "go build for linux/arm64 in ${SECS}s: $FILE"
row "go build GOOS=linux GOARCH=arm64" "ARM aarch64 binary" "$ST, ${FILE%%,*}, ${SECS}s"
if command -v qemu-aarch64-static >/dev/null; then
	RUN=$(qemu-aarch64-static "$ROOT/out/hello" 2>&1)
	[ "$RUN" = "hello from linux/arm64" ]
	check $? "the arm64 binary runs under qemu: $RUN"
fi
[ -d "$CACHE/go-build" ]
check $? "the Go build cache landed in --cache"

build gcc --timeout 300 "${BASE_ENV[@]}" -- \
	aarch64-linux-gnu-gcc -O2 -o /out/hello-c hello.c
FILE=$(file -b "$ROOT/out/hello-c" 2>/dev/null)
[ "$ST" = '{"status":"exited","code":0}' ] && [[ "$FILE" == *"ARM aarch64"* ]]
check $? "aarch64-linux-gnu-gcc hello.c: $FILE"
row "aarch64-linux-gnu-gcc hello.c" "ARM aarch64 binary" "$ST, ${FILE%%,*}"
if command -v qemu-aarch64-static >/dev/null; then
	RUN=$(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$ROOT/out/hello-c" 2>&1)
	[ "$RUN" = "hello from C" ]
	check $? "the C binary runs under qemu: $RUN"
fi

# A worker SIGKILLed between freezing its build and thawing it (cgroup
# v1) leaves the build frozen with SIGKILL pending.  The next worker kills
# what such a group lists and thaws it; the one after removes it.
FZ=$(awk -F: '$2 == "freezer" { print $3 }' /proc/self/cgroup)
if [ "$(id -u)" = 0 ] && [ -n "$FZ" ] && [ -w "/sys/fs/cgroup/freezer$FZ" ]; then
	true & DEAD=$!
	wait "$DEAD"
	FG=/sys/fs/cgroup/freezer${FZ%/}/kiln-frozen-$DEAD
	mkdir "$FG"
	sleep 600 & FROZEN_PID=$!
	echo "$FROZEN_PID" >"$FG/cgroup.procs"
	echo FROZEN >"$FG/freezer.state"
	build frozen1 --timeout 30 "${BASE_ENV[@]}" -- /bin/true
	gone=no
	for _ in $(seq 50); do
		kill -0 "$FROZEN_PID" 2>/dev/null || { gone=yes; break; }
		sleep 0.1
	done
	[ "$gone" = no ] || wait "$FROZEN_PID" 2>/dev/null
	build frozen2 --timeout 30 "${BASE_ENV[@]}" -- /bin/true
	[ "$gone" = yes ] && [ ! -d "$FG" ]
	check $? "a frozen group of a dead worker: its process killed ($gone), the group removed ($([ -d "$FG" ] && echo no || echo yes))"
	[ -d "$FG" ] && { echo THAWED >"$FG/freezer.state"; kill -9 "$FROZEN_PID" 2>/dev/null; rmdir "$FG" 2>/dev/null; }
	OURS+=(frozen1 frozen2)

	# A group in use and not frozen, named after a PID not seen here, may
	# be a live worker's: one of a kilnd in another pid namespace under
	# the same parent group.  A build leaves what runs in it alone.
	true & GONE=$!
	wait "$GONE"
	FG=/sys/fs/cgroup/freezer${FZ%/}/kiln-foreign-$GONE
	mkdir "$FG"
	sleep 600 & LIVE_PID=$!
	echo "$LIVE_PID" >"$FG/cgroup.procs"
	build foreign1 --timeout 30 "${BASE_ENV[@]}" -- /bin/true
	sleep 0.2	# a SIGKILL takes effect
	st=$(awk '$1 == "State:" { print $2 }' "/proc/$LIVE_PID/status" 2>/dev/null)
	[ "$st" = S ] || [ "$st" = R ]
	check $? "a live group named after a PID not seen here (another pid namespace's worker): left running (state ${st:-gone})"
	kill -9 "$LIVE_PID" 2>/dev/null; wait "$LIVE_PID" 2>/dev/null
	for _ in $(seq 50); do rmdir "$FG" 2>/dev/null && break; sleep 0.1; done
	OURS+=(foreign1)
fi

# None of this test's builds left a cgroup behind: a group kiln-NAME-PID,
# NAME the basename of one of our roots, whose worker PID is gone.  The
# SIGKILLed worker above leaves one; a later build removes it.  Groups of
# other builds are not ours to count: under make -j another test may have
# just SIGKILLed a worker whose group the next build there removes.
OURS+=(cancel-TERM cancel-KILL usage cfgfd cfgbad root refused)
STALE=0
while read -r d; do
	g=${d##*/}
	pid=${g##*-}
	g=${g#kiln-}
	g=${g%-*}
	case " ${OURS[*]} " in *" $g "*) ;; *) continue ;; esac
	kill -0 "$pid" 2>/dev/null || STALE=$((STALE + 1))
done < <(find /sys/fs/cgroup -maxdepth 4 -type d -name "kiln-*-[0-9]*" 2>/dev/null)
[ "$STALE" = 0 ]
check $? "no per-build cgroup left behind ($STALE)"

echo
printf '%-48s | %-30s | %s\n' "attack / build" "expected" "observed"
printf '%-48s-+-%-30s-+-%s\n' "$(printf '%.0s-' {1..48})" "$(printf '%.0s-' {1..30})" \
	"$(printf '%.0s-' {1..40})"
for r in "${ROWS[@]}"; do
	IFS=$'\t' read -r a e o <<<"$r"
	printf '%-48s | %-30s | %s\n' "$a" "$e" "$o"
done
echo
echo "# $NCHECK checks passed, $NFAIL failed"
[ "$NFAIL" = 0 ]
