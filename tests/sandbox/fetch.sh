#!/bin/bash
# The sandbox of kiln-worker fetch and of the checkout before a build,
# asserted from the host while libgit2 runs in it, next to a fake state
# directory holding kiln.key, kiln.db, kilnd.conf and another mirror:
#  - a fetch from an http:// server that accepts and never answers: the
#    process holding the connection is a child of the worker, sees none
#    of the state directory, has no capabilities, no_new_privs, seccomp,
#    and user, mount, pid, IPC and UTS namespaces of its own;
#  - a fetch from a local repository whose config is a FIFO (libgit2
#    waits in open(2)): a network namespace of its own, that repository
#    read-only and nothing else of the host's files;
#  - a checkout held the same way (a blob that is a FIFO): the mirror
#    read-only, /src writable, no network;
#  - local URLs in or above the mirrors' directory refused, through a
#    symlink too; messages name the mirror <mirror>;
#  - fetches that work: a path, file://, a name from /etc/hosts, a TLS
#    handshake.
# Prints a table attack / expected / observed, ok/FAIL lines and
# "# N checks passed, M failed"; exit 1 on any failure, 77 (skip) only
# when user namespaces are unavailable.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
W=${KILN_WORKER:-$BUILDDIR/kiln-worker}

NCHECK=0
NFAIL=0
ROWS=()
BGPIDS=()
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-fetch-sb.XXXXXX")
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
check() {
	if [ "$1" = 0 ]; then ok "$2"; else fail "$2"; fi
}
row() {
	ROWS+=("$(printf '%-34s | %-32s | %s' "$1" "$2" "$3")")
}

[ -x "$W" ] || { echo "FAIL: $W is missing (make kiln-worker)"; exit 1; }
for tool in git python3 ss openssl pgrep; do
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

# A state directory as kilnd keeps it, with secrets to look for.
STATE=$T/state
mkdir -p "$STATE/mirrors"
head -c 64 /dev/urandom > "$STATE/kiln.key"
chmod 600 "$STATE/kiln.key"
printf 'SQLite format 3\0kiln database\n' > "$STATE/kiln.db"
printf '[tokens]\nadmin = secret-token\n' > "$STATE/kilnd.conf"
OTHER=$STATE/mirrors/other.git
git init -q --bare "$OTHER"

REPO=$T/src/repo
mkdir -p "$REPO"
git_ init -q "$REPO"
echo "hello" > "$REPO/README"
git_ -C "$REPO" add -A
git_ -C "$REPO" commit -qm one
C1=$(git -C "$REPO" rev-parse HEAD)
git -C "$REPO" push -q "$OTHER" main

ME=$(id -u)

# wait_until SECONDS COMMAND...: poll every 0.05 s.
wait_until() {
	local limit=$1
	shift
	for _ in $(seq 1 $((limit * 20))); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# conn_pid PORT: the pid holding an established connection to PORT.
conn_pid() {
	ss -Htnp state established "( dport = :$1 )" 2>/dev/null |
		grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

has_conn() { [ -n "$(conn_pid "$HPORT")" ]; }
has_child() { [ -n "$(pgrep -P "$WPID")" ]; }

# blocked_in_fifo PID: waiting in open(2) of a FIFO.
blocked_in_fifo() {
	[ "$(cat "/proc/$1/wchan" 2>/dev/null)" = wait_for_partner ]
}

# confined WHAT PID: the checks every sandboxed process passes.
confined() {
	local what=$1 p=$2 n ns status visible
	[ "$(awk '{ print $4 }' "/proc/$p/stat")" = "$WPID" ]
	check $? "$what: the sandboxed process $p is a child of the worker $WPID"
	status=$(cat "/proc/$p/status")
	grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$status" &&
		grep -q '^Seccomp:[[:space:]]*2$' <<<"$status"
	check $? "$what: NoNewPrivs 1, Seccomp 2 (filter mode)"
	n=0
	for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
		grep -q "^$cap:[[:space:]]*0000000000000000$" <<<"$status" ||
			n=$((n + 1))
	done
	[ "$n" = 0 ]
	check $? "$what: CapEff, CapPrm, CapBnd, CapInh, CapAmb all 0 ($(grep ^CapEff <<<"$status"))"
	n=0
	for ns in user mnt pid ipc uts cgroup; do
		[ "$(readlink "/proc/$p/ns/$ns")" != "$(readlink "/proc/$$/ns/$ns")" ] ||
			n=$((n + 1))
	done
	[ "$n" = 0 ]
	check $? "$what: user, mnt, pid, ipc, uts, cgroup namespaces differ from the test shell's"
	[ "$(awk '{ print $1, $2, $3 }' "/proc/$p/uid_map")" = "$ME $ME 1" ]
	check $? "$what: the worker's uid $ME mapped to itself, nothing else ($(cat "/proc/$p/uid_map"))"

	# What the process can open is what its root shows.
	[ -r "$STATE/kiln.key" ] && cat "$STATE/kiln.key" >/dev/null
	check $? "$what: control: the host reads $STATE/kiln.key"
	! cat "/proc/$p/root$STATE/kiln.key" >/dev/null 2>&1 &&
		! cat "/proc/$p/root$STATE/kiln.db" >/dev/null 2>&1 &&
		[ ! -e "/proc/$p/root$STATE" ]
	check $? "$what: cat /proc/$p/root$STATE/kiln.key fails; no state directory there"
	visible=$(find "/proc/$p/root/" -path "/proc/$p/root/proc" -prune -o \
		-path "/proc/$p/root/usr" -prune -o -print 2>/dev/null)
	! grep -qE 'kiln\.key|kiln\.db|kilnd\.conf|other\.git' <<<"$visible" &&
		! grep -qF "$STATE" <<<"$visible" && ! grep -qF "$REPO" <<<"$visible"
	check $? "$what: no key, database, configuration or other mirror anywhere in its root"
	! grep -qE '^/proc/[0-9]+/root/etc/(passwd|shadow)$' <<<"$visible"
	check $? "$what: no /etc/passwd, no /etc/shadow"
	[ "$(sed -n 's/^[0-9]* [0-9]* [^ ]* [^ ]* \/ \([^ ]*\).*/\1/p' "/proc/$p/mountinfo" | cut -d, -f1)" = ro ]
	check $? "$what: its / is read-only"
}

# port_of FILE: the port a server of this test wrote to FILE once it
# listens.  Servers bind port 0: a port of the kernel's choosing, never
# one another program (or another test running beside this one) holds.
port_of() {
	wait_until 10 test -s "$1" && cat "$1"
}

# A server that accepts and never answers: the fetch stays in libgit2.
python3 - "$T/hang.port" <<'EOF' &
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    held.append(s.accept())
EOF
BGPIDS+=($!)
HPORT=$(port_of "$T/hang.port") || { fail "the hanging server did not start"; exit 1; }

# --- a remote fetch, held in libgit2 ------------------------------------------

# HOME is the state directory: nothing of it may follow into the sandbox.
HOME=$STATE "$W" fetch --mirror "$STATE/mirrors/hang.git" \
	--url "http://127.0.0.1:$HPORT/x.git" --ref main >"$T/hang.out" 2>"$T/hang.err" &
WPID=$!
BGPIDS+=("$WPID")
P=
wait_until 10 has_conn && P=$(conn_pid "$HPORT")
if [ -z "$P" ]; then
	fail "remote fetch: no process connected to 127.0.0.1:$HPORT ($(cat "$T/hang.err"))"
else
	ok "remote fetch: process $P holds the connection to 127.0.0.1:$HPORT"
	confined "remote fetch" "$P"
	[ "$(readlink "/proc/$P/ns/net")" = "$(readlink "/proc/$$/ns/net")" ]
	check $? "remote fetch: the host's network namespace (it must reach the forge)"
	[ -f "/proc/$P/root/kiln mirror/HEAD" ] &&
		grep -q ' /kiln\\040mirror rw,' "/proc/$P/mountinfo"
	check $? "remote fetch: its own mirror is there, writable, at /kiln mirror"
	[ -f "/proc/$P/root/etc/ssl/certs/ca-certificates.crt" ] &&
		[ -f "/proc/$P/root/etc/resolv.conf" ] && [ -f "/proc/$P/root/etc/hosts" ]
	check $? "remote fetch: the CA bundle, resolv.conf and hosts are there"
	if [ -e "/proc/$P/root$STATE/kiln.key" ]; then
		row "fetch process opens kiln.key" "not in its file system" "VISIBLE"
	else
		row "fetch process opens kiln.key" "not in its file system" "absent"
	fi
	row "fetch process: capabilities" "none, no_new_privs, seccomp" \
		"$(grep -E '^(CapEff|NoNewPrivs|Seccomp):' "/proc/$P/status" | tr -s '\t\n' '  ')"
	kill -TERM "$WPID"
	wait "$WPID" 2>/dev/null
	gone() { ! grep -qE '^State:[[:space:]]*[RSD]' "/proc/$P/status" 2>/dev/null; }
	wait_until 5 gone
	check $? "remote fetch: the sandboxed process dies with its worker"
fi

# --- a local fetch, held in open(2) of a FIFO -------------------------------------

HELD=$T/src/held.git
git clone -q --bare "$REPO" "$HELD"
rm "$HELD/config"
mkfifo "$HELD/config"
"$W" fetch --mirror "$STATE/mirrors/held.git" --url "$HELD" --ref main \
	>"$T/held.out" 2>"$T/held.err" &
WPID=$!
BGPIDS+=("$WPID")
P=
wait_until 10 has_child && P=$(pgrep -P "$WPID")
if [ -z "$P" ] || ! wait_until 10 blocked_in_fifo "$P"; then
	fail "local fetch: no sandboxed process waiting on the repository's FIFO ($(cat "$T/held.err"))"
else
	ok "local fetch: process $P waits in open(2) of the repository's config"
	confined "local fetch" "$P"
	[ "$(readlink "/proc/$P/ns/net")" != "$(readlink "/proc/$$/ns/net")" ] &&
		[ "$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' "/proc/$P/net/dev")" = lo ]
	check $? "local fetch: a network namespace of its own, with only lo"
	[ -p "/proc/$P/root$HELD/config" ] &&
		grep -qF " $HELD ro," "/proc/$P/mountinfo" &&
		[ "$(ls "/proc/$P/root$T/src")" = held.git ] &&
		[ ! -e "/proc/$P/root/etc/resolv.conf" ]
	check $? "local fetch: the repository read-only at its own path, nothing beside it, no resolver"
	row "local fetch: network" "own namespace, lo only" "$(awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s ", $1 }' "/proc/$P/net/dev")"
	kill -TERM "$WPID"
	wait "$WPID" 2>/dev/null
fi

# --- a checkout, held in open(2) of a FIFO -----------------------------------------

# Loose objects (a copy of the work repository's), one blob a FIFO.
CO=$STATE/mirrors/checkout.git
cp -r "$REPO/.git" "$CO"
git --git-dir="$CO" config core.bare true
BLOB=$(git -C "$REPO" rev-parse HEAD:README)
rm "$CO/objects/${BLOB:0:2}/${BLOB:2}"
mkfifo "$CO/objects/${BLOB:0:2}/${BLOB:2}"
mkdir -p "$STATE/work"
"$W" build --mirror "$CO" --commit "$C1" --root "$STATE/work/co" \
	--target linux/amd64 --timeout 60 -- /bin/true >"$T/co.out" 2>&1 &
WPID=$!
BGPIDS+=("$WPID")
# The worker starts the build's sandbox while the checkout runs: of its
# children, the one in open(2) of the FIFO.
fifo_child() {
	local c
	for c in $(pgrep -P "$WPID"); do
		blocked_in_fifo "$c" && { echo "$c"; return 0; }
	done
	return 1
}
P=
wait_until 10 fifo_child >/dev/null && P=$(fifo_child)
if [ -z "$P" ]; then
	fail "checkout: no sandboxed process waiting on the blob's FIFO ($(cat "$T/co.out"))"
else
	ok "checkout: process $P waits in open(2) of a blob"
	confined "checkout" "$P"
	[ "$(readlink "/proc/$P/ns/net")" != "$(readlink "/proc/$$/ns/net")" ]
	check $? "checkout: a network namespace of its own"
	grep -q ' /kiln\\040mirror ro,' "/proc/$P/mountinfo" &&
		grep -q ' /src rw,' "/proc/$P/mountinfo" &&
		[ "$(stat -c %i "/proc/$P/root/src")" = "$(stat -c %i "$STATE/work/co/src")" ]
	check $? "checkout: the mirror read-only, the work tree's src writable at /src"
	row "checkout process opens kiln.key" "not in its file system" \
		"$([ -e "/proc/$P/root$STATE/kiln.key" ] && echo VISIBLE || echo absent)"
	kill -TERM "$WPID"
	wait "$WPID" 2>/dev/null
fi

# --- fetches that work ----------------------------------------------------------------

# fetch URL MIRROR: sets RC, OUT, ERR (the last line of stderr)
fetch() {
	HOME=$STATE "$W" fetch --mirror "$2" --url "$1" --ref "${3:-main}" \
		${KEEP_OUT:+--keep-out "$KEEP_OUT"} >"$T/f.out" 2>"$T/f.err"
	RC=$?
	OUT=$(cat "$T/f.out")
	ERR=$(tail -n 1 "$T/f.err")
}
commit_of() { sed -n 's/^{"commit":"\([0-9a-f]*\)".*/\1/p' <<<"$OUT"; }

fetch "$REPO" "$STATE/mirrors/a.git"
[ "$RC" = 0 ] && [ "$(commit_of)" = "$C1" ]
check $? "a fetch from a path works in the sandbox ($ERR)"
[ "$(stat -c %u "$STATE/mirrors/a.git")" = "$ME" ] &&
	[ "$(stat -c %u "$STATE/mirrors/a.git/HEAD")" = "$ME" ] &&
	[ -z "$(find "$STATE/mirrors/a.git" ! -user "$ME")" ]
check $? "the mirror is the worker's uid's, as before"
echo two >> "$REPO/README"
git_ -C "$REPO" commit -qam two
C2=$(git -C "$REPO" rev-parse HEAD)
fetch "file://$REPO" "$STATE/mirrors/a.git"
[ "$RC" = 0 ] && [ "$(commit_of)" = "$C2" ]
check $? "a second fetch over file:// brings the new commit ($ERR)"
fetch "file://localhost$REPO" "$STATE/mirrors/b.git"
[ "$RC" = 0 ] && [ "$(commit_of)" = "$C2" ]
check $? "file://localhost/PATH is bound at PATH too ($ERR)"
row "fetch of a path, file://" "works" "exit $RC"

# A server that wants a password, reached by the name from /etc/hosts.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
	-days 1 -subj /CN=localhost >/dev/null 2>&1
for tls in 0 1; do
	python3 - "$T/auth$tls.port" "$tls" "$T/cert.pem" "$T/key.pem" <<'EOF' &
import http.server, os, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="kiln"')
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
if sys.argv[2] == "1":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.server_address[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
	BGPIDS+=($!)
done
APORT=$(port_of "$T/auth0.port") && TPORT=$(port_of "$T/auth1.port") ||
	{ fail "the password servers did not start"; exit 1; }
fetch "http://localhost:$APORT/x.git" "$STATE/mirrors/auth.git"
[ "$RC" = 1 ] && [ "$ERR" = "kiln-worker: fetch: authentication failed for http://localhost:$APORT/x.git" ]
check $? "http://localhost: resolved through /etc/hosts in the sandbox, the server reached ($ERR)"
fetch "https://localhost:$TPORT/x.git" "$STATE/mirrors/tls.git"
[ "$RC" = 1 ] && [[ "$ERR" == *"the SSL certificate is invalid"* ]]
check $? "https://: the TLS handshake runs in the sandbox, a self-signed certificate refused ($ERR)"
row "TLS to a self-signed server" "certificate refused" "${ERR#kiln-worker: fetch: }"

# --- local URLs that would show the state directory or another mirror ---------------

refused() {
	local what=$1 url=$2 m=$STATE/mirrors/refused-$RANDOM.git
	fetch "$url" "$m"
	[ "$RC" = 1 ] && [[ "$ERR" == *"is in or above kilnd's state directory or its mirrors: refused" ]] &&
		[ -z "$(git --git-dir="$m" for-each-ref 2>/dev/null)" ]
	check $? "$what: refused, nothing fetched ($ERR)"
}
refused "the state directory as a local repository" "$STATE"
refused "another repository's mirror" "$OTHER"
refused "another mirror, percent-encoded" "file://${OTHER%.git}%2Egit"
ln -s "$OTHER" "$T/src/innocent.git"
refused "another mirror behind a symlink" "$T/src/innocent.git"
row "fetch url = another mirror" "refused" "exit $RC"
# A git repository elsewhere in the state directory (a cache of a trust
# class, a work tree, the module cache's VCS copies): kilnd passes its
# state directory as --keep-out.
mkdir -p "$STATE/cache/k.protected"
git init -q --bare "$STATE/cache/k.protected/repo.git"
git -C "$REPO" push -q "$STATE/cache/k.protected/repo.git" main
KEEP_OUT=$STATE refused "a repository in a cache of the state directory" "$STATE/cache/k.protected/repo.git"
KEEP_OUT=$STATE refused "the same through file://" "file://$STATE/cache/k.protected/repo.git"
fetch "$STATE/cache/k.protected/repo.git" "$STATE/mirrors/control.git"
[ "$RC" = 0 ]
check $? "control: without --keep-out the same repository fetches ($ERR)"
row "fetch url = a cache in the state dir" "refused (--keep-out)" "exit $RC without, refused with"

# --- messages name the mirror <mirror> --------------------------------------------

BAD=$STATE/mirrors/bad.git
cp -r "$STATE/mirrors/a.git" "$BAD"
printf '[core\n' > "$BAD/config"
fetch "$REPO" "$BAD"
[ "$RC" = 1 ] && [[ "$ERR" == *"(in <mirror>/config:1)"* ]] &&
	! grep -qE "kiln mirror|$STATE" "$T/f.err"
check $? "fetch: libgit2's message names <mirror>, no path ($ERR)"
"$W" build --mirror "$BAD" --commit "$C1" --root "$STATE/work/bad" \
	--target linux/amd64 --timeout 60 --status-fd 3 -- /bin/true \
	3>"$T/bad.status" >"$T/bad.out" 2>&1
RC=$?
[ "$RC" = 125 ] && grep -q '(in <mirror>/config:1)' "$T/bad.status" &&
	! grep -qE "kiln mirror|$STATE" "$T/bad.status" "$T/bad.out"
check $? "checkout: exit 125, libgit2's message names <mirror>, no path ($(cat "$T/bad.status"))"

echo
printf '%-34s | %-32s | %s\n' attack expected observed
printf '%s\n' "${ROWS[@]}"
echo "# $NCHECK checks passed, $NFAIL failed"
[ "$NFAIL" = 0 ]
