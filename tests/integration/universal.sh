#!/bin/bash
# Universal macOS binaries (worker/lipo.c) through tests/lipo-driver:
#  - a small Go program built for darwin/amd64 and darwin/arm64, merged:
#    `file` sees a universal binary with 2 architectures, llvm-lipo-14
#    -info lists both, -thin gives back each input byte for byte, and the
#    output is byte-identical to `llvm-lipo-14 -create`'s (in either
#    input order); slices sit at 4 KiB (x86_64) and 16 KiB (arm64);
#  - a synthetic Mach-O of another cputype, whose alignment comes from its
#    segments: still identical to llvm-lipo's;
#  - refusals naming the input: an ELF, a truncated Mach-O (header, and
#    a segment past the end), a 32-bit Mach-O, a universal file, the same
#    cputype twice; the driver refuses a FIFO (without hanging) and a
#    symlink.
# Prints ok/FAIL lines; exit 1 on any failure, 77 when Go or llvm-lipo-14
# is absent.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
D=$BUILDDIR/tests/lipo-driver
PY=/usr/bin/python3
LIPO=/usr/bin/llvm-lipo-14

[ -x "$LIPO" ] || { echo "SKIP: llvm-lipo-14 (Debian llvm-14) is not installed"; exit 77; }
command -v file >/dev/null || { echo "SKIP: file is not installed"; exit 77; }
GO=""
for g in $(ls -d /usr/lib/go-1.*/bin/go 2>/dev/null | sort -t. -k2 -n -r); do
	[ -x "$g" ] && { GO=$g; break; }
done
[ -n "$GO" ] || GO=$(command -v go || true)
[ -n "$GO" ] || { echo "SKIP: no Go toolchain"; exit 77; }

NFAIL=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-universal.XXXXXX")
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1

mkdir src
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from kiln") }\n' > src/main.go
printf 'module example.com/hello\n\ngo 1.19\n' > src/go.mod
export GOCACHE=$T/gocache GOPATH=$T/gopath GOFLAGS='' GOTOOLCHAIN=local GOPROXY=off
for a in amd64 arm64; do
	(cd src && CGO_ENABLED=0 GOOS=darwin GOARCH=$a "$GO" build -trimpath \
		-buildvcs=false -o "$T/hello-$a" .) || { echo "FAIL: go build darwin/$a"; exit 1; }
done

if "$D" u hello-amd64 hello-arm64 2>err; then
	ok "merged darwin/amd64 and darwin/arm64"
else
	fail "merge: $(cat err)"
fi
file u | grep -q 'Mach-O universal binary with 2 architectures' &&
	ok "file: $(file -b u | cut -c1-60)..." || fail "file says: $(file u)"
info=$("$LIPO" -info u 2>&1 | sed 's/ *$//')
[ "$info" = "Architectures in the fat file: u are: x86_64 arm64" ] &&
	ok "llvm-lipo -info: $info" || fail "llvm-lipo -info: $info"
for pair in arm64:arm64 x86_64:amd64; do
	arch=${pair%%:*} goarch=${pair#*:}
	rm -f thin
	"$LIPO" -thin "$arch" u -output thin 2>err && cmp -s thin "hello-$goarch" &&
		ok "llvm-lipo -thin $arch gives the $goarch input byte for byte" ||
		fail "-thin $arch: $(cat err) $(cmp thin "hello-$goarch" 2>&1)"
done
"$LIPO" -create hello-amd64 hello-arm64 -output ref
cmp -s u ref && ok "identical to llvm-lipo -create's bytes" ||
	fail "differs from llvm-lipo -create: $(cmp u ref 2>&1)"
"$D" u2 hello-arm64 hello-amd64 2>err && cmp -s u2 ref &&
	ok "inputs in the other order: still llvm-lipo's bytes" ||
	fail "other order: $(cat err) $(cmp u2 ref 2>&1)"
layout=$($PY - u <<'PYEOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
magic, n = struct.unpack('>II', d[:8])
out = ['%08x' % magic, str(n)]
for i in range(n):
    ct, st, off, size, al = struct.unpack('>iiIII', d[8 + 20 * i:28 + 20 * i])
    out.append('%x:%d:%d:%d' % (ct, off % (1 << al), al, off + size <= len(d)))
print(' '.join(out))
PYEOF
)
[ "$layout" = "cafebabe 2 1000007:0:12:1 100000c:0:14:1" ] &&
	ok "FAT_MAGIC, x86_64 then arm64, aligned to 2^12 and 2^14" ||
	fail "layout: $layout"

# Another cputype (SPARC's number with the 64-bit flag): the alignment
# comes from the smallest segment vmaddr alignment, 2^13 here; it sorts
# after x86_64 (2^12), so its align is the second fat_arch's (byte 44).
$PY - other <<'PYEOF'
import struct, sys
cmds = b''
for vmaddr in (0x6000, 0x10000):
    cmds += struct.pack('<II16sQQQQiiII', 0x19, 72, b'__SEG', vmaddr, 0x1000,
                        0, 0, 7, 5, 0, 0)
hdr = struct.pack('<IiiIIIII', 0xfeedfacf, 0x0100000e, 0, 2, 2, len(cmds), 0, 0)
open(sys.argv[1], 'wb').write(hdr + cmds + b'\0' * 100)
PYEOF
if "$LIPO" -create hello-amd64 other -output ref-other 2>err; then
	"$D" u-other other hello-amd64 2>err2 && cmp -s u-other ref-other &&
		[ "$(od -A n -t x1 -j 44 -N 4 u-other | tr -d ' ')" = 0000000d ] &&
		ok "an unknown cputype aligned (2^13) from its segments as llvm-lipo does" ||
		fail "unknown cputype: $(cat err2) $(cmp u-other ref-other 2>&1)"
else
	fail "llvm-lipo refused the synthetic Mach-O: $(cat err)"
fi

# Refusals.
refuse() {	# WHAT EXPECTED-SUBSTRING INPUT...
	local what=$1 want=$2 rc
	shift 2
	rm -f bad
	timeout 60 "$D" bad "$@" >/dev/null 2>err; rc=$?
	if [ $rc = 1 ] && grep -qF -- "$want" err; then
		ok "$what refused: $(cat err)"
	else
		fail "$what: rc $rc (124 = hung), message '$(cat err)', expected '$want'"
	fi
}
cp /bin/true elf
head -c 20 hello-arm64 > short
head -c 1000000 hello-arm64 > cut.macho
printf '\xce\xfa\xed\xfe\x07\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\0\0\0\0\0\0\0\0\0\0\0\0' > m32
mkfifo fifo
ln -s hello-arm64 link
cp hello-arm64 arm64-again
refuse "an ELF" 'lipo: elf: not a Mach-O file (magic 7f454c46)' hello-amd64 elf
refuse "a Mach-O cut in its header" 'lipo: short: truncated (no whole Mach-O header)' short
refuse "a Mach-O cut in a segment" 'lipo: cut.macho: truncated (a segment ends at' hello-amd64 cut.macho
refuse "a 32-bit Mach-O" 'lipo: m32: a 32-bit Mach-O file' m32
refuse "a universal file" 'lipo: u: a universal (fat) file already' u
refuse "the same arch twice" "lipo: arm64-again: cputype 0x100000c (subtype 0) is also hello-arm64's" hello-arm64 hello-amd64 arm64-again
refuse "a FIFO (driver)" 'lipo-driver: fifo: not a regular file' fifo
refuse "a symlink (driver)" 'lipo-driver: link: ' link

if [ $NFAIL -ne 0 ]; then
	echo "# $NFAIL failed"
	exit 1
fi
echo "# all passed"
