#!/bin/bash
# kiln-worker push against Debian's docker-registry (the distribution
# project's registry) on 127.0.0.1 over http, once without authentication
# and once with htpasswd (Basic) authentication:
#  - a layout with an image index over linux/amd64 and linux/arm64 is
#    pushed; skopeo reads back the index with both platforms, each
#    platform's image, and copies everything (--all) re-checking digests;
#  - a second push uploads nothing (the registry's access log shows no new
#    upload) and names the same digest;
#  - a wrong password fails with a message naming the step and the 401;
#  - a layout whose blob does not match its name is refused before any
#    request reaches the registry.
# Exit 77 only when docker-registry, skopeo or python3 is missing; the
# htpasswd part is skipped (and says so) when no bcrypt is available.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
. "$SRCDIR/tests/port.sh"
W=${KILN_WORKER:-$BUILDDIR/kiln-worker}
PY=/usr/bin/python3
REG=/usr/bin/docker-registry

for tool in "$REG" "$PY"; do
	[ -x "$tool" ] || { echo "SKIP: $tool missing"; exit 77; }
done
command -v skopeo >/dev/null || { echo "SKIP: skopeo missing"; exit 77; }

NFAIL=0
NCHECK=0
RPID=
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-push.XXXXXX")
cleanup() {
	if [ -n "$RPID" ]; then
		kill "$RPID" 2>/dev/null
		wait "$RPID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
ok() { NCHECK=$((NCHECK + 1)); echo "ok - $*"; }
fail() { NCHECK=$((NCHECK + 1)); NFAIL=$((NFAIL + 1)); echo "FAIL: $*"; }

# --- the test layout: an image index over two platforms ---------------------
# Written by python3 byte for byte: gzip layers of a one-file tar, an OCI
# config and manifest per platform, the index, index.json and oci-layout,
# all in one ustar tarball (with the blobs/ directories, as tar makes them).
cat >"$T/mklayout.py" <<'PY'
import gzip, hashlib, io, json, sys, tarfile

out, corrupt = sys.argv[1], len(sys.argv) > 2
blobs = {}

def blob(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return "sha256:" + d, len(data)

def layer(arch):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        body = ("hello from %s\n" % arch).encode()
        ti = tarfile.TarInfo("hello.txt")
        ti.size, ti.mtime, ti.mode = len(body), 0, 0o644
        t.addfile(ti, io.BytesIO(body))
    diff = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    gz = gzip.compress(raw.getvalue(), mtime=0)
    return blob(gz), diff

manifests = []
for arch in ("amd64", "arm64"):
    (ld, ls), diff = layer(arch)
    cfg = json.dumps({"architecture": arch, "os": "linux",
                      "config": {"Cmd": ["/hello.txt"]},
                      "rootfs": {"type": "layers", "diff_ids": [diff]}},
                     sort_keys=True).encode()
    cd, cs = blob(cfg)
    m = json.dumps({"schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": cd, "size": cs},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": ld, "size": ls}]}).encode()
    md, ms = blob(m)
    manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": md, "size": ms,
                      "platform": {"architecture": arch, "os": "linux"}})
idx = json.dumps({"schemaVersion": 2,
                  "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": manifests}).encode()
xd, xs = blob(idx)
top = json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.index.v1+json",
     "digest": xd, "size": xs}]}).encode()
if corrupt:
    # The amd64 layer keeps its name, its content changes.
    d = manifests[0]["digest"]
    lay = json.loads(blobs[d[7:]])["layers"][0]["digest"][7:]
    b = bytearray(blobs[lay]); b[-1] ^= 1; blobs[lay] = bytes(b)

def add(t, name, data=None):
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    if data is None:
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        t.addfile(ti)
    else:
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))

with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add(t, "blobs/")
    add(t, "blobs/sha256/")
    for d in sorted(blobs):
        add(t, "blobs/sha256/" + d, blobs[d])
    add(t, "index.json", top)
print(xd)
PY
IDX=$("$PY" "$T/mklayout.py" "$T/layout.tar") || { echo "FAIL: mklayout"; exit 1; }
"$PY" "$T/mklayout.py" "$T/corrupt.tar" corrupt >/dev/null || exit 1

# --- a registry ---------------------------------------------------------------
# start_registry NAME [AUTH-YAML]: a fresh registry with its own storage;
# its log (access log included) in $T/NAME.log.
start_registry() {
	local name=$1 auth=${2-}
	PORT=$(pick_port) || exit 1
	mkdir -p "$T/$name"
	cat >"$T/$name.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $T/$name
http:
  addr: 127.0.0.1:$PORT
$auth
EOF
	"$REG" serve "$T/$name.yml" >"$T/$name.log" 2>&1 &
	RPID=$!
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && return 0
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "FAIL: docker-registry did not start:"; tail -5 "$T/$name.log"
	exit 1
}
stop_registry() {
	kill "$RPID" 2>/dev/null
	wait "$RPID" 2>/dev/null
	RPID=
}
uploads() { grep -c '"POST /v2/[^ ]*/blobs/uploads/' "$T/$1.log"; }

# check_pushed LABEL REF [USER:PASSWORD]: what skopeo reads back.
check_pushed() {
	local label=$1 ref=$2 creds=() src=() raw a
	[ -z "${3-}" ] || { creds=(--creds "$3"); src=(--src-creds "$3"); }
	set -- "${creds[@]}"
	raw=$(skopeo inspect --raw --tls-verify=false "$@" "docker://$ref")
	if [ "$(printf %s "$raw" | jq -r '[.manifests[].platform.architecture] | sort | join(",")')" = amd64,arm64 ] &&
	    [ "sha256:$(printf %s "$raw" | sha256sum | cut -c1-64)" = "$IDX" ]; then
		ok "$label: the tag names the pushed index with amd64 and arm64"
	else
		fail "$label: skopeo inspect --raw: $raw"
	fi
	for a in amd64 arm64; do
		if [ "$(skopeo inspect --tls-verify=false "$@" --override-os linux \
		    --override-arch "$a" "docker://$ref" | jq -r .Architecture)" = "$a" ]; then
			ok "$label: skopeo inspect --override-arch $a"
		else
			fail "$label: skopeo inspect --override-arch $a"
		fi
	done
	rm -rf "$T/copy"
	if skopeo copy -q --all --src-tls-verify=false "${src[@]}" "docker://$ref" \
	    "oci:$T/copy" >"$T/copy.log" 2>&1 &&
	    [ "$(jq -r '.manifests[0].digest' "$T/copy/index.json")" = "$IDX" ]; then
		ok "$label: skopeo copy --all re-reads every blob with its digest"
	else
		fail "$label: skopeo copy --all: $(tail -3 "$T/copy.log")"
	fi
}

# --- no authentication ---------------------------------------------------------
start_registry open
OUT=$("$W" push --layout "$T/layout.tar" --to "127.0.0.1:$PORT/kiln/hello:v1" \
    --insecure-http 2>"$T/push.err")
if [ $? -eq 0 ] && [ "$(jq -r .digest <<<"$OUT")" = "$IDX" ] &&
    [ "$(jq -r .pushed <<<"$OUT")" = "127.0.0.1:$PORT/kiln/hello:v1" ]; then
	ok "push prints {pushed, digest} of the index"
else
	fail "push: $OUT $(cat "$T/push.err")"
fi
N1=$(uploads open)
[ "$N1" -eq 4 ] && ok "4 blobs uploaded (2 layers, 2 configs)" ||
	fail "expected 4 uploads, the registry saw $N1"
check_pushed "open" "127.0.0.1:$PORT/kiln/hello:v1"

OUT2=$("$W" push --layout "$T/layout.tar" --to "127.0.0.1:$PORT/kiln/hello:v1" \
    --insecure-http 2>"$T/push2.err")
if [ $? -eq 0 ] && [ "$(uploads open)" -eq "$N1" ] &&
    [ "$(jq -r .digest <<<"$OUT2")" = "$IDX" ] &&
    grep -q "0 blob(s) uploaded, 4 already there" "$T/push2.err"; then
	ok "a second push uploads nothing (HEAD finds every blob)"
else
	fail "second push: uploads $(uploads open) (was $N1): $(cat "$T/push2.err")"
fi

# A corrupt layout: refused, and the registry sees no request at all.
before=$(grep -c '"[A-Z]* /v2/' "$T/open.log")
"$W" push --layout "$T/corrupt.tar" --to "127.0.0.1:$PORT/kiln/bad:v1" \
    --insecure-http >"$T/bad.out" 2>"$T/bad.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "layout is corrupt" "$T/bad.err" &&
    [ "$(grep -c '"[A-Z]* /v2/' "$T/open.log")" -eq "$before" ] &&
    [ ! -s "$T/bad.out" ]; then
	ok "a corrupt blob is refused before any request: $(cat "$T/bad.err")"
else
	fail "corrupt layout: rc $rc, $(cat "$T/bad.err")"
fi

# Without --insecure-http, http is not used (https is refused here).
if ! "$W" push --layout "$T/layout.tar" --to "127.0.0.1:$PORT/kiln/hello:v2" \
    >/dev/null 2>"$T/tls.err" && grep -q "HEAD blob" "$T/tls.err"; then
	ok "https by default: $(cat "$T/tls.err")"
else
	fail "https by default: $(cat "$T/tls.err")"
fi
stop_registry

# --- htpasswd (Basic) ----------------------------------------------------------
HASH=$("$PY" -W ignore -c 'import crypt; print(crypt.crypt("s3cret-pw", crypt.mksalt(crypt.METHOD_BLOWFISH)))' 2>/dev/null)
case "$HASH" in
'$2'*)
	echo "ci:$HASH" >"$T/htpasswd"
	start_registry auth "auth:
  htpasswd:
    realm: kiln-test
    path: $T/htpasswd"
	exec 3<<<"machine 127.0.0.1 login ci password s3cret-pw"
	OUT=$("$W" push --layout "$T/layout.tar" --to "127.0.0.1:$PORT/kiln/hello:v1" \
	    --insecure-http --credentials-fd 3 2>"$T/push.err")
	rc=$?
	exec 3<&-
	if [ $rc -eq 0 ] && [ "$(jq -r .digest <<<"$OUT")" = "$IDX" ] &&
	    [ "$(uploads auth)" -eq 4 ]; then
		ok "htpasswd: push with Basic credentials from the fd"
	else
		fail "htpasswd push: rc $rc: $(cat "$T/push.err")"
	fi
	check_pushed "htpasswd" "127.0.0.1:$PORT/kiln/hello:v1" ci:s3cret-pw

	exec 3<<<"machine 127.0.0.1 login ci password wrong-pw"
	"$W" push --layout "$T/layout.tar" --to "127.0.0.1:$PORT/kiln/hello:v9" \
	    --insecure-http --credentials-fd 3 >/dev/null 2>"$T/wrong.err"
	rc=$?
	exec 3<&-
	if [ $rc -eq 1 ] && grep -q "push: HEAD blob sha256:.*401" "$T/wrong.err" &&
	    ! grep -q wrong-pw "$T/wrong.err"; then
		ok "a wrong password: $(cat "$T/wrong.err")"
	else
		fail "wrong password: rc $rc: $(cat "$T/wrong.err")"
	fi
	"$W" push --layout "$T/layout.tar" --to "127.0.0.1:$PORT/kiln/hello:v9" \
	    --insecure-http >/dev/null 2>"$T/none.err"
	if [ $? -eq 1 ] && grep -q "401" "$T/none.err"; then
		ok "no credentials: $(cat "$T/none.err")"
	else
		fail "no credentials: $(cat "$T/none.err")"
	fi
	stop_registry
	;;
*)
	echo "# SKIP htpasswd part: python3's crypt makes no bcrypt hash here"
	;;
esac

echo "# $NCHECK checks, $NFAIL failed"
[ "$NFAIL" -eq 0 ]
