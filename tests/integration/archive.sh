#!/bin/bash
# Release archives (worker/archives.c) through tests/archive-driver:
#  - every format written twice, by two processes with another TZ, locale,
#    umask, input modes and mtimes and member order: identical bytes;
#  - read back with GNU tar / unzip and libarchive's Python reader: names
#    in bytewise order, modes, mtime, uid/gid 0, "root", contents (sha256);
#  - gzip's header has no timestamp and no file name;
#  - refusals with a message naming the member: duplicate names, "../x",
#    an empty component, an absolute name, a FIFO (without hanging), a
#    directory given as a file, a mode beyond 0777, a file used as a
#    parent directory; an unknown format name.
# Prints ok/FAIL lines; exit 1 on any failure, 77 when a reading tool is
# absent.
set -uo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$SRCDIR}"
D=$BUILDDIR/tests/archive-driver
PY=/usr/bin/python3

for tool in tar unzip xz zstd sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
$PY -c 'import libarchive' 2>/dev/null ||
	{ echo "SKIP: python3-libarchive-c is not installed"; exit 77; }

NFAIL=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-archive.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

MTIME=1600000000	# 2020-09-13 12:26:40 UTC
mkdir in
printf 'hello\n' > in/readme
head -c 300000 /dev/urandom > in/big
: > in/empty
printf '#!/bin/sh\necho hi\n' > in/tool
LONG=$(printf 'd%.0s' $(seq 1 120))	# past ustar's 100 bytes: a pax header

# NAME PATH MODE triples, in an order that is not the archive's.
MEMBERS=(README in/readme 644 "bin/" - 755 bin/tool in/tool 755
	"deep/$LONG/big" in/big 600 a-b in/empty 644 B in/readme 640
	bin/empty in/empty 644)
# The same members reversed.
REV=()
for ((i = ${#MEMBERS[@]} - 3; i >= 0; i -= 3)); do
	REV+=("${MEMBERS[i]}" "${MEMBERS[i + 1]}" "${MEMBERS[i + 2]}")
done
EXPECT_ORDER="B README a-b bin/ bin/empty bin/tool deep/$LONG/big"

for f in tar.gz tar.xz tar.zst tar zip; do
	chmod 644 in/*; touch -d '2001-01-01 00:00' in/*
	(umask 022; TZ=UTC LC_ALL=C "$D" "$f" $MTIME one.$f "${MEMBERS[@]}") \
		>/dev/null 2>err || { fail "$f: write: $(cat err)"; continue; }
	chmod 600 in/*; touch -d '2024-06-30 23:59' in/*
	(umask 077; TZ=Pacific/Chatham LC_ALL=C.utf8 "$D" "$f" $MTIME two.$f "${REV[@]}") \
		>/dev/null 2>err || { fail "$f: second write: $(cat err)"; continue; }
	if cmp -s one.$f two.$f; then
		ok "$f: two processes (TZ, locale, umask, input modes/mtimes, order differ) wrote identical bytes"
	else
		fail "$f: the two writes differ: $(cmp one.$f two.$f 2>&1)"
	fi

	# libarchive's reader: everything of every entry.
	got=$($PY - "one.$f" <<'PYEOF'
import hashlib, sys
import libarchive
with libarchive.file_reader(sys.argv[1]) as a:
    for e in a:
        h = hashlib.sha256()
        for b in e.get_blocks():
            h.update(b)
        print(e.pathname, oct(e.mode), e.mtime, e.uid, e.gid, e.atime, e.ctime,
              h.hexdigest())
PYEOF
) || { fail "$f: libarchive cannot read it"; continue; }
	order=$(echo "$got" | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')
	[ "$order" = "$EXPECT_ORDER" ] && ok "$f: entries in bytewise name order" ||
		fail "$f: order '$order', expected '$EXPECT_ORDER'"
	exp=""
	while read -r name path mode; do
		if [ "$path" = - ]; then
			sum=$(sha256sum < /dev/null | cut -d' ' -f1); type=40
		else
			sum=$(sha256sum < "$path" | cut -d' ' -f1); type=100
		fi
		exp+="$name 0o$type$mode $MTIME 0 0 0 0 $sum"$'\n'
	done < <(printf '%s %s %s\n' "${MEMBERS[@]}" | LC_ALL=C sort)
	if [ "$got" = "${exp%$'\n'}" ]; then
		ok "$f: libarchive reads names, types, modes, mtime, uid/gid 0, no atime/ctime, contents as written"
	else
		fail "$f: libarchive read"$'\n'"$got"$'\n'"expected"$'\n'"$exp"
	fi

	# The real tools of the format.
	if [ "$f" = zip ]; then
		listing=$(TZ=UTC unzip -Z -T one.$f)
		echo "$listing" | grep -q '^-rwxr-xr-x .* unx .* 20200913\.122640 bin/tool$' &&
		echo "$listing" | grep -q '^-rw------- .* unx .* 20200913\.122640 deep/.*/big$' &&
		echo "$listing" | grep -q '^drwxr-xr-x .* unx .* 20200913\.122640 bin/$' &&
			ok "$f: unzip -Z: unix modes and the mtime" ||
			fail "$f: unzip -Z says"$'\n'"$listing"
		a=$(unzip -p one.$f "deep/$LONG/big" | sha256sum)
		b=$(sha256sum < in/big)
		[ "$a" = "$b" ] && ok "$f: unzip -p gives the big file's bytes" ||
			fail "$f: unzip -p content differs"
	else
		listing=$(TZ=UTC tar --full-time -tvf one.$f)
		echo "$listing" | grep -q '^-rwxr-xr-x root/root .* 2020-09-13 12:26:40 bin/tool$' &&
		echo "$listing" | grep -q '^drwxr-xr-x root/root .* 2020-09-13 12:26:40 bin/$' &&
		TZ=UTC tar --numeric-owner -tvf one.$f | grep -q '^-rw------- 0/0 .* deep/.*/big$' &&
			ok "$f: tar -tv: modes, root/root = 0/0, the mtime" ||
			fail "$f: tar -tv says"$'\n'"$listing"
		a=$(tar -xOf one.$f "deep/$LONG/big" | sha256sum)
		b=$(sha256sum < in/big)
		[ "$a" = "$b" ] && ok "$f: tar -xO gives the big file's bytes" ||
			fail "$f: tar -xO content differs"
	fi
done

# gzip: FLG (byte 3) without FNAME, MTIME (bytes 4-7) zero.
hdr=$(od -A n -t x1 -N 8 one.tar.gz | tr -d ' \n')
[ "$hdr" = 1f8b080000000000 ] && ok "tar.gz: gzip header has no name and a zero timestamp" ||
	fail "tar.gz: gzip header $hdr"
# Aliases.
"$D" tgz $MTIME alias.tgz "${MEMBERS[@]}" >/dev/null 2>&1 && cmp -s alias.tgz one.tar.gz &&
	ok "\"tgz\" is tar.gz" || fail "\"tgz\" did not give the tar.gz bytes"
out=$("$D" tar.zst $MTIME x.tar.zst README in/readme 644) &&
	[ "$out" = "extension .tar.zst" ] && ok "tar.zst's extension is .tar.zst" ||
	fail "tar.zst's extension: '$out'"
"$D" rar $MTIME x.rar README in/readme 644 >/dev/null 2>err; rc=$?
[ $rc = 1 ] && grep -q 'unknown format "rar"' err && ok "format rar refused" ||
	fail "format rar: rc $rc, $(cat err)"

# Refusals.  Each: exit 1 and a message with the member and the reason.
mkfifo fifo
refuse() {	# WHAT EXPECTED-SUBSTRING MEMBER-TRIPLES...
	local what=$1 want=$2 rc
	shift 2
	timeout 60 "$D" tar.gz $MTIME bad.tar.gz "$@" >/dev/null 2>err; rc=$?
	if [ $rc = 1 ] && grep -qF -- "$want" err; then
		ok "$what refused: $(cat err)"
	else
		fail "$what: rc $rc (124 = hung), message '$(cat err)', expected '$want'"
	fi
}
refuse "a duplicate name" 'member "x": named twice' x in/readme 644 y in/tool 644 x in/big 644
refuse "a file and a directory of one name" 'member "d": named twice' d/ - 755 d in/readme 644
refuse '"../x"' 'member "../x": "." or ".." component' ../x in/readme 644
refuse '"a/../../x"' 'member "a/../../x": "." or ".." component' a/../../x in/readme 644
refuse '"a//b"' 'member "a//b": empty path component' a//b in/readme 644
refuse "an absolute name" 'member "/etc/x": absolute name' /etc/x in/readme 644
refuse "a control character" 'byte 0x0a' $'a\nb' in/readme 644
refuse "a FIFO" 'member "p": not a regular file (a FIFO)' p fifo 644
refuse "a directory as a file" 'member "dir": not a regular file (a directory)' dir in 644
refuse "a setuid mode" 'member "s": mode 04755 has more than permission bits' s in/tool 4755
refuse "a file used as a parent" 'member "f/x": its parent is a file member' f in/readme 644 f/x in/tool 644
timeout 60 "$D" tar.gz -1 bad.tar.gz x in/readme 644 >/dev/null 2>err
grep -q 'mtime -1 out of range' err && ok "mtime -1 refused" || fail "mtime -1: $(cat err)"

if [ $NFAIL -ne 0 ]; then
	echo "# $NFAIL failed"
	exit 1
fi
echo "# all passed"
