#!/bin/bash
# An OCI image layout written by worker/oci.c (through tests/oci-write),
# then read with real tools only: skopeo inspects and copies it (checking
# every digest), umoci unpacks each platform, and the unpacked Go
# binaries run, the arm64 one under qemu.  The layout must be the same
# bytes whatever the time zone, umask and locale.
set -uo pipefail

: "${BUILDDIR:=$(pwd)}"
DRIVER=$BUILDDIR/tests/oci-write
GO=
for g in /usr/lib/go-1.23/bin/go /usr/lib/go-1.22/bin/go /usr/lib/go-1.21/bin/go; do
	[ -x "$g" ] && { GO=$g; break; }
done
[ -n "$GO" ] || { echo "SKIP: no Go 1.21 or later (golang-1.2x-go)"; exit 77; }
for tool in skopeo umoci jq qemu-aarch64-static sha256sum tar; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
[ -x "$DRIVER" ] || { echo "FAIL: $DRIVER not built (make check builds it)"; exit 1; }
[ -f /etc/ssl/certs/ca-certificates.crt ] ||
	{ echo "SKIP: no /etc/ssl/certs/ca-certificates.crt (ca-certificates)"; exit 77; }
[ -d /usr/share/zoneinfo ] || { echo "SKIP: no /usr/share/zoneinfo (tzdata)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image.XXXXXX")
trap 'chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT
NFAIL=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
SKOPEO="skopeo --insecure-policy --tmpdir $T"

# --- a static Go program that reads the image's CA bundle and a zone ----
mkdir -p "$T/src"
cat > "$T/src/go.mod" <<'GO'
module example.com/hello

go 1.21
GO
cat > "$T/src/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// The image's root is the first argument: the binary runs on the host,
// not chrooted, and must read the files the layer brought.
func main() {
	root := ""
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	b, err := os.ReadFile(root + "/etc/ssl/certs/ca-certificates.crt")
	if err != nil || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		fmt.Println("no CA bundle:", err)
		os.Exit(3)
	}
	loc, err := time.LoadLocation("America/Havana")
	if err != nil {
		fmt.Println("no zone:", err)
		os.Exit(4)
	}
	fmt.Printf("hello from a kiln image: %d bytes of CA certificates, zone %s\n", len(b), loc)
}
GO
for arch in amd64 arm64; do
	(cd "$T/src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOCACHE=$T/gocache \
		GOPATH=$T/gopath GOPROXY=off GOTOOLCHAIN=local GOFLAGS= \
		"$GO" build -trimpath -buildvcs=false -o "$T/app-$arch" .) ||
		{ echo "FAIL: go build for $arch"; exit 1; }
done
ok "static Go hello built for linux/amd64 and linux/arm64 with $GO"
printf 'bonjour\n' > "$T/note.txt"

REF=v1.2.3
CREATED=1700000000
write_layout() {	# out.tar tmpdir -> prints the index digest
	"$DRIVER" -o "$1" -r $REF -t $CREATED -d "$2" \
		--image linux/amd64 --file "$T/app-amd64" /app 0755 \
		--file "$T/note.txt" "/données/été.txt" 0644 \
		--entrypoint /app --cmd /  --env PATH=/usr/bin:/bin \
		--env ZONEINFO=/usr/share/zoneinfo --workdir / --user 65534:65534 \
		--ca-certs --tzdata \
		--image linux/arm64 --file "$T/app-arm64" /app 0755 \
		--file "$T/note.txt" "/données/été.txt" 0644 \
		--entrypoint /app --cmd / --env PATH=/usr/bin:/bin \
		--ca-certs --tzdata
}
mkdir -p "$T/tmp1" "$T/tmp2"
D1=$( (umask 022; TZ=UTC LC_ALL=C LANG=C write_layout "$T/one.tar" "$T/tmp1") ) ||
	{ echo "FAIL: oci_write_layout (first)"; exit 1; }
D2=$( (umask 077; TZ=Asia/Tokyo LC_ALL=C.UTF-8 LANG=C.UTF-8 write_layout "$T/two.tar" "$T/tmp2") ) ||
	{ echo "FAIL: oci_write_layout (second)"; exit 1; }
ok "layout written twice: index $D1"
check "layout byte-identical across TZ, umask and locale" cmp -s "$T/one.tar" "$T/two.tar"
check "same index digest printed both times" test "$D1" = "$D2"
check "no temporary file left in tmpdir" test -z "$(find "$T/tmp1" "$T/tmp2" -mindepth 1)"
X=$T/one.tar

# --- the layout itself ---------------------------------------------------
mkdir -p "$T/x" && tar -xf "$X" -C "$T/x"
check "oci-layout names version 1.0.0" \
	test "$(jq -r .imageLayoutVersion "$T/x/oci-layout")" = 1.0.0
IDX=$T/x/blobs/sha256/${D1#sha256:}
check "index digest printed = sha256 of the index blob" \
	test "sha256:$(sha256sum < "$IDX" | cut -d' ' -f1) $(jq -r .mediaType "$IDX" 2>/dev/null)" \
	= "$D1 application/vnd.oci.image.index.v1+json"
check "index.json points at the index with ref.name $REF" test "$(jq -r \
	'.manifests[0] | "\(.digest) \(.mediaType) \(.annotations["org.opencontainers.image.ref.name"])"' \
	"$T/x/index.json")" = "$D1 application/vnd.oci.image.index.v1+json $REF"
bad=0
for b in "$T"/x/blobs/sha256/*; do
	[ "$(sha256sum < "$b" | cut -d' ' -f1)" = "$(basename "$b")" ] || bad=1
done
check "every blob is named by its sha256" test $bad = 0

# --- skopeo: the index with both platforms, then a full copy -----------
raw=$($SKOPEO inspect --raw "oci-archive:$X:$REF") || fail "skopeo inspect --raw"
check "skopeo inspect --raw: an image index" \
	test "$(jq -r .mediaType <<<"$raw")" = application/vnd.oci.image.index.v1+json
check "skopeo inspect --raw: platforms linux/amd64 and linux/arm64" test \
	"$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")' <<<"$raw")" \
	= "linux/amd64 linux/arm64"
check "skopeo copy --all oci-archive -> oci (re-checks every digest)" \
	$SKOPEO copy -q --all "oci-archive:$X:$REF" "oci:$T/all:$REF"

# --- umoci: one platform at a time, then run what it unpacked -----------
for arch in amd64 arm64; do
	one=$T/one-$arch b=$T/bundle-$arch
	if ! $SKOPEO copy -q --override-os linux --override-arch $arch \
		"oci-archive:$X:$REF" "oci:$one:$REF"; then
		fail "skopeo copy of linux/$arch alone"; continue
	fi
	cfg=$($SKOPEO inspect --config "oci:$one:$REF") || fail "skopeo inspect --config $arch"
	check "$arch config: architecture, os, Entrypoint, Cmd, created" test \
		"$(jq -r '"\(.architecture) \(.os) \(.config.Entrypoint|join(",")) \(.config.Cmd|join(",")) \(.created)"' <<<"$cfg")" \
		= "$arch linux /app / 2023-11-14T22:13:20Z"
	if ! umoci unpack --rootless --image "$one:$REF" "$b" >/dev/null 2>"$T/umoci.err"; then
		fail "umoci unpack --rootless linux/$arch: $(tail -3 "$T/umoci.err")"; continue
	fi
	ok "umoci unpack --rootless linux/$arch"
	r=$b/rootfs
	check "$arch: /app is executable" test -x "$r/app"
	check "$arch: CA bundle is the host's" cmp -s "$r/etc/ssl/certs/ca-certificates.crt" \
		/etc/ssl/certs/ca-certificates.crt
	if [ -L /usr/share/zoneinfo/Cuba ]; then
		check "$arch: zoneinfo symlink kept as a symlink" \
			test "$(readlink "$r/usr/share/zoneinfo/Cuba")" = "$(readlink /usr/share/zoneinfo/Cuba)"
	fi
	check "$arch: non-ASCII path stored as its UTF-8 bytes" \
		test "$(cat "$r/données/été.txt" 2>/dev/null)" = bonjour
	if [ $arch = amd64 ]; then
		outp=$(ZONEINFO=$r/usr/share/zoneinfo timeout -s KILL 60 "$r/app" "$r" 2>&1)
	else
		outp=$(ZONEINFO=$r/usr/share/zoneinfo timeout -s KILL 300 \
			qemu-aarch64-static "$r/app" "$r" 2>&1)
	fi
	case $outp in
	"hello from a kiln image: "*" zone America/Havana") ok "$arch binary ran: $outp" ;;
	*) fail "$arch binary: $outp" ;;
	esac
done

# --- the layer's entries: sorted, 0:0, mtime = created ------------------
man=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' <<<"$raw")
layer=$(jq -r '.layers[0].digest' "$T/x/blobs/sha256/${man#sha256:}")
LC_ALL=C tar --numeric-owner --full-time -tvzf "$T/x/blobs/sha256/${layer#sha256:}" > "$T/layer.lst"
check "layer: every entry owned by 0/0" test -z "$(awk '$2 != "0/0"' "$T/layer.lst")"
check "layer: every mtime is created (2023-11-14 22:13:20 UTC)" \
	test -z "$(TZ=UTC LC_ALL=C tar --numeric-owner --full-time -tvzf \
		"$T/x/blobs/sha256/${layer#sha256:}" | awk '$4" "$5 != "2023-11-14 22:13:20"')"
LC_ALL=C tar -tzf "$T/x/blobs/sha256/${layer#sha256:}" | sed 's,/$,,' > "$T/names"
check "layer: entries sorted, parents first" env LC_ALL=C sort -c "$T/names"
check "layer: parent directories present" grep -qx 'etc/ssl/certs' "$T/names"

# --- hostile input: a FIFO is refused, not waited on --------------------
mkfifo "$T/fifo"
if timeout -s KILL 60 "$DRIVER" -o "$T/f.tar" -r $REF -t $CREATED -d "$T/tmp1" \
	--image linux/amd64 --file "$T/fifo" /app 0755 2>"$T/fifo.err"; then
	fail "a FIFO input was accepted"
else
	check "a FIFO input is refused: $(cat "$T/fifo.err")" grep -q "not a regular file" "$T/fifo.err"
fi
if "$DRIVER" -o "$T/f.tar" -r $REF -t $CREATED -d "$T/tmp1" \
	--image linux/amd64 --file "$T/note.txt" /a/../etc/passwd 0644 2>"$T/dots.err"; then
	fail "a path with .. was accepted"
else
	check "a path with .. is refused: $(cat "$T/dots.err")" grep -q '".."' "$T/dots.err"
fi

[ $NFAIL -eq 0 ] || { echo "$NFAIL check(s) failed"; exit 1; }
echo "all image checks passed"
