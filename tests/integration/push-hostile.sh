#!/bin/bash
# kiln-worker push against a hostile registry written here (python3).
# It never hands the registry's login or token to another host: the
# registry answers an upload's POST with a Location on 127.0.0.2, a second
# server:
#  - Basic: the registry itself gets the login; the other host gets a PUT
#    without any Authorization header;
#  - Bearer (a token from the registry's realm): the same, for the token;
#  - the other host answering 401 ends the push with a message naming it,
#    and no second PUT carries the login there;
#  - a Location on the registry itself ("/upload/...", and
#    "http://127.0.0.1:PORT/...") still gets the login: the push completes.
# And an answer whose body never ends (sent as fast as it is read) ends
# the push with a message instead of holding it: the `timeout` around
# that push only turns a hang into a failure.
# Exit 77 only when python3 is missing.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
. "$SRCDIR/tests/port.sh"
W=${KILN_WORKER:-$BUILDDIR/kiln-worker}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: $PY missing"; exit 77; }

NFAIL=0
PIDS=()
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-push-origin.XXXXXX")
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
ok() { echo "ok - $*"; }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }

# A one-platform layout: a layer, a config, a manifest, index.json.
cat >"$T/mklayout.py" <<'PY'
import hashlib, io, json, sys, tarfile
blobs = {}
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return {"digest": "sha256:" + d, "size": len(data)}
layer = blob(b"not really a layer\n")
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": []}}).encode())
man = blob(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]}).encode())
index = json.dumps({"schemaVersion": 2, "manifests": [dict(man,
    mediaType="application/vnd.oci.image.manifest.v1+json")]}).encode()
with tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for d, data in sorted(blobs.items()):
        add("blobs/sha256/" + d, data)
PY
"$PY" "$T/mklayout.py" "$T/layout.tar" || { fail "layout"; exit 1; }

# registry.py ADDR PORT LOG AUTH LOCATION: AUTH basic|bearer|none, each
# request logged as "METHOD PATH AUTHORIZATION".  LOCATION is the POST's
# answer; a PUT of a blob or manifest is taken (201), except with AUTH
# "deny", which answers every request 401 Basic, and "endless", whose
# POST answers a 500 with a body that never ends.
cat >"$T/registry.py" <<'PY'
import http.server, json, sys
addr, port, logf, auth, location = sys.argv[1:6]
port = int(port)
log = open(logf, "a", buffering=1)
TOKEN = "tok-zz81"
LOGIN = "Basic YWxpY2U6czNjcmV0LXB3"      # alice:s3cret-pw
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, hdrs=(), body=b""):
        self.send_response(code)
        for k, v in hdrs: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        a = self.headers.get("Authorization") or "-"
        log.write("%s %s %s\n" % (self.command, self.path, a))
        if self.path.startswith("/token"):
            return self.answer(200, body=json.dumps({"token": TOKEN}).encode())
        if auth == "endless" and self.command == "POST":
            self.send_response(500)
            self.send_header("Content-Length", str(1 << 50))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        if auth == "deny":
            return self.answer(401, [("WWW-Authenticate", 'Basic realm="r"')])
        want = {"basic": LOGIN, "bearer": "Bearer " + TOKEN}.get(auth)
        if want and a != want:
            ch = 'Basic realm="r"' if auth == "basic" else \
                'Bearer realm="http://%s:%d/token",service="s"' % (addr, port)
            return self.answer(401, [("WWW-Authenticate", ch)])
        if self.command == "HEAD":
            return self.answer(404)
        if self.command == "POST":
            return self.answer(202, [("Location", location)])
        return self.answer(201)
    do_GET = do_HEAD = do_POST = do_PUT = handle_one
http.server.ThreadingHTTPServer((addr, port), H).serve_forever()
PY

start() {	# ADDR PORT LOG AUTH LOCATION
	"$PY" "$T/registry.py" "$@" 2>>"$T/server.err" &
	PIDS+=($!)
	for _ in $(seq 100); do
		ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	fail "server on $1:$2 did not start: $(cat "$T/server.err")"
	exit 1
}

push() {	# PORT: push to the registry on 127.0.0.1:PORT with alice's login
	exec 3<<<"machine 127.0.0.1 login alice password s3cret-pw"
	"$W" push --layout "$T/layout.tar" --to "127.0.0.1:$1/kiln/app:v1" \
	    --insecure-http --credentials-fd 3 >"$T/push.out" 2>"$T/push.err"
	local rc=$?
	exec 3<&-
	return $rc
}

for auth in basic bearer; do
	P=$(pick_port); Q=$(pick_port)
	: >"$T/reg.log"; : >"$T/other.log"
	start 127.0.0.2 "$Q" "$T/other.log" none x
	start 127.0.0.1 "$P" "$T/reg.log" "$auth" "http://127.0.0.2:$Q/upload/9"
	push "$P"
	rc=$?
	secret=$([ $auth = basic ] && echo 'Basic ' || echo 'Bearer tok-zz81')
	if grep -q "^POST .* $secret" "$T/reg.log"; then
		ok "$auth: the registry itself gets the credentials"
	else
		fail "$auth: the registry saw no credentials: $(cat "$T/reg.log")"
	fi
	if grep -q '^PUT /upload/9?digest=sha256:' "$T/other.log" &&
	    ! grep -qv ' -$' "$T/other.log"; then
		ok "$auth: the other host's PUT carries no Authorization (rc $rc)"
	else
		fail "$auth: the other host saw: $(cat "$T/other.log")"
	fi
done

# The other host asks for a login: refused, and nothing sent there.
P=$(pick_port); Q=$(pick_port)
: >"$T/reg.log"; : >"$T/other.log"
start 127.0.0.2 "$Q" "$T/other.log" deny x
start 127.0.0.1 "$P" "$T/reg.log" basic "http://127.0.0.2:$Q/upload/9"
push "$P"
rc=$?
if [ $rc -eq 1 ] && grep -q "401 from http://127.0.0.2:$Q/upload/9.*not the registry" \
    "$T/push.err" && [ "$(wc -l <"$T/other.log")" -eq 1 ] &&
    ! grep -qv ' -$' "$T/other.log"; then
	ok "a 401 from another host ends the push: $(cat "$T/push.err")"
else
	fail "401 elsewhere: rc $rc: $(cat "$T/push.err"); other: $(cat "$T/other.log")"
fi

# A Location on the registry itself, relative and absolute: pushed.
for loc in /upload/7 "http://127.0.0.1:PORT/upload/7"; do
	P=$(pick_port)
	: >"$T/reg.log"
	start 127.0.0.1 "$P" "$T/reg.log" basic "${loc/PORT/$P}"
	push "$P"
	rc=$?
	if [ $rc -eq 0 ] && grep -q '^PUT /upload/7?digest=sha256:.* Basic ' "$T/reg.log" &&
	    grep -q '^PUT /v2/kiln/app/manifests/v1 Basic ' "$T/reg.log"; then
		ok "Location $loc: the registry's own, pushed with the login"
	else
		fail "Location $loc: rc $rc: $(cat "$T/push.err"); $(cat "$T/reg.log")"
	fi
done

# An endless answer: over 64 KiB is refused, the push ends.
P=$(pick_port)
: >"$T/reg.log"
start 127.0.0.1 "$P" "$T/reg.log" endless /upload/7
exec 3</dev/null
timeout 120 "$W" push --layout "$T/layout.tar" --to "127.0.0.1:$P/kiln/app:v1" \
    --insecure-http >/dev/null 2>"$T/push.err"
rc=$?
exec 3<&-
if [ $rc -eq 1 ] && grep -q "POST upload of sha256:.*answer is over 64 KiB" "$T/push.err"; then
	ok "an endless answer ends the push: $(cat "$T/push.err")"
else
	fail "endless answer: rc $rc (124: still reading after 120 s): $(cat "$T/push.err")"
fi

[ $NFAIL -eq 0 ] || exit 1
