#!/bin/bash
# cgo cross builds: a go recipe with "cgo": true builds a program that
# links zlib through `#cgo pkg-config: zlib` for linux/amd64, linux/arm64,
# linux/arm/v7 and windows/amd64, each with its target's C compiler and
# the target's zlib (Debian multiarch zlib1g-dev:arm64/:armhf, MinGW's
# libz-mingw-w64-dev).  file(1) checks each binary; the linux ones run,
# the arm ones under qemu-user with the multiarch C library and without -L
# (with -L and the cross sysroot, Debian 12's qemu 7.2 hangs threaded
# programs: every cgo binary is one); the windows one imports zlib1.dll.
# A cgo target with no C toolchain (darwin) fails at once with a reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/goproxy.sh"

for tool in git file pkg-config gcc aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc \
    x86_64-w64-mingw32-gcc x86_64-w64-mingw32-objdump qemu-aarch64-static qemu-arm-static; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
for pc in /usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc \
    /usr/lib/aarch64-linux-gnu/pkgconfig/zlib.pc \
    /usr/lib/arm-linux-gnueabihf/pkgconfig/zlib.pc \
    /usr/x86_64-w64-mingw32/lib/pkgconfig/zlib.pc \
    /lib/ld-linux-aarch64.so.1 /lib/ld-linux-armhf.so.3; do
	[ -e "$pc" ] || { echo "SKIP: $pc missing (scripts/bootstrap installs it)"; exit 77; }
done
G21=$(go_lowest 1.21.0)
[ -n "$G21" ] || { echo "SKIP: no Go 1.21 or newer in /usr/lib/go-*"; exit 77; }

REPO=$(make_repo zcgo "$SRCDIR/tests/fixtures/go-cgo")
start_kilnd -w 2

post_job "{\"repo\": \"$REPO\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\", \"windows/amd64\"],
	\"recipe\": {\"kind\": \"go\", \"cgo\": true}}"
expect_status 201 "submit the cgo job"
A=$(printf '%s' "$BODY" | jq -r .id)
await "$A" 600
expect_json .state succeeded "cgo with zlib for four targets"
expect_json '[.targets[] | .target + " " + ([.artifacts[]?.name] | join("+"))] | sort | join(",")' \
	"linux/amd64 zcgo,linux/arm/v7 zcgo,linux/arm64 zcgo,windows/amd64 zcgo.exe" "the binaries"

# check T NAME FILE-PATTERN [RUNNER...]: file(1) says PATTERN; a linux
# binary runs and reports zlib's round trip on its own os/arch.
check() {
	local t=$1 name=$2 pattern=$3 f desc out arch
	shift 3
	f=$(out_file "$A" "$t" "$name")
	desc=$(file -b "$f" 2>/dev/null) || desc="(missing: $t/$name)"
	[[ "$desc" == $pattern ]] && ok "$t: $desc" ||
		fail "$t: file says '$desc', expected '$pattern'"
	[ "${t%%_*}" = linux ] || return 0
	arch=${t#linux_}
	arch=${arch%_v7}
	out=$(timeout -s KILL 60 "$@" "$f" 2>&1) || true
	if [[ "$out" =~ ^zlib\ [0-9.]+\ on\ linux/$arch:\ 256\ bytes\ -\>\ [0-9]+\ -\>\ 256,\ roundtrip\ ok$ ]]; then
		ok "$t runs: $out"
	else
		fail "$t output: $out"
	fi
}
check linux_amd64 zcgo "ELF 64-bit LSB executable, x86-64, *dynamically linked*"
check linux_arm64 zcgo "ELF 64-bit LSB executable, ARM aarch64, *dynamically linked*" \
	qemu-aarch64-static
check linux_arm_v7 zcgo "ELF 32-bit LSB executable, ARM, EABI5 *dynamically linked*" \
	qemu-arm-static
check windows_amd64 zcgo.exe "PE32+ executable (console) x86-64*"
imports=$(x86_64-w64-mingw32-objdump -p "$(out_file "$A" windows_amd64 zcgo.exe)" 2>&1) || true
if grep -qi 'DLL Name: zlib1.dll' <<<"$imports"; then
	ok "windows/amd64 links MinGW's zlib (imports zlib1.dll)"
else
	fail "windows/amd64 does not import zlib1.dll"
fi
expect_json '[.targets[].toolchain] | unique | join(",")' "$G21" "built with $G21"

# --- cgo where there is no C toolchain ---------------------------------------
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"darwin/arm64\"],
	\"recipe\": {\"kind\": \"go\", \"cgo\": true}}"
if [ "$STATUS" = 422 ]; then
	# Refused at submission: for its target, not for the recipe's shape.
	expect_problem 422 darwin/arm64 "a cgo build for darwin/arm64"
	expect_json '.detail | test("cgo|C toolchain"; "i")' true "the problem says why"
else
	expect_status 201 "a cgo build for darwin/arm64 (accepted, then failing)"
	D=$(printf '%s' "$BODY" | jq -r .id)
	await "$D" 120
	expect_json .state failed "a cgo build for darwin/arm64"
	expect_json '[.error, .targets[].error] | map(. // "") | join(" ") | test("cgo|C toolchain"; "i")' true \
		"the error says there is no C toolchain for cgo"
	expect_json '.targets[0].exit_status' null "no build was started"
	log=$(curl -sf "$URL/v1/jobs/$D/targets/darwin_arm64/log" || true)
	[[ "$log" != *"clang"* && "$log" != *"-arch arm64"* ]] &&
		ok "no compiler dump in the log" || fail "the log has a compiler dump: $log"
fi

api GET /healthz
expect_status 200 "kilnd still serves"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
finish
