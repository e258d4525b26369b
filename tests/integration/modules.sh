#!/bin/bash
# Module dependencies and the deps step, against a Go module proxy this
# test makes from Debian's golang.org/x/text sources and serves on
# loopback (goproxy.sh): a module requiring it builds for three targets,
# its go.sum verified (GOSUMDB off, go.sum made here with go mod tidy
# against the proxy); two jobs of the same module graph fetch the zip
# once; a vendored copy runs no deps step; a tampered zip fails the job with
# go's checksum error and publishes nothing; a missing module and an
# unreachable proxy fail the job with go's own message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/goproxy.sh"

for tool in git file zip tar dpkg-query python3 qemu-aarch64-static; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
[ -f "$GOPROXY_MODSRC/go.mod" ] ||
	{ echo "SKIP: golang-golang-x-text-dev missing"; exit 77; }
GOV=$(go_lowest 1.21.0)
[ -n "$GOV" ] || { echo "SKIP: no Go 1.21 or newer in /usr/lib/go-*"; exit 77; }
HOSTGO=$(go_bin "$GOV")

# go marks its module cache read-only; let lib.sh's cleanup remove it.
trap 'stop_goproxy; chmod -R u+w "$T" 2>/dev/null || true; cleanup' EXIT

make_goproxy "$T/proxy" || { echo "could not make the module proxy" >&2; exit 1; }
serve_goproxy "$T/proxy" || exit 1
V=$GOPROXY_VERSION
ZIP="/golang.org/x/text/@v/$V.zip"
echo "# proxy $GOPROXY_URL serves golang.org/x/text $V; builds expect $GOV"

# hostgo ARGS...: the host's go with nothing of the caller's Go settings,
# against the test's proxy.
hostgo() {
	env -u GOFLAGS -u GOPRIVATE -u GONOPROXY -u GONOSUMDB -u GOENV \
		GOPROXY="$GOPROXY_URL" GOSUMDB=off GOTOOLCHAIN=local \
		GOPATH="$T/hostgo" GOMODCACHE="$T/hostgo/mod" GOCACHE="$T/hostgo/cache" \
		"$HOSTGO" "$@"
}

# The project: go.mod gets its require line and go.sum from go mod tidy
# against the proxy, as its author would have made them.
mkdir -p "$T/src"
cp -R "$SRCDIR/tests/fixtures/go-deps" "$T/src/textdep"
(cd "$T/src/textdep" && GOFLAGS=-mod=mod hostgo mod tidy) >"$T/tidy.out" 2>&1 ||
	{ cat "$T/tidy.out" >&2; echo "go mod tidy against the proxy failed" >&2; exit 1; }
grep -q "^golang.org/x/text $V h1:" "$T/src/textdep/go.sum" &&
	ok "go mod tidy against the proxy wrote go.sum" ||
	fail "go.sum: $(cat "$T/src/textdep/go.sum")"
REPO=$(make_repo textdep "$T/src/textdep")
zip0=$(goproxy_gets "$ZIP")

cat >"$T/kilnd.conf" <<EOF
[kilnd]
allow_local_repos = yes
goproxy = $GOPROXY_URL
gosumdb = off
EOF
start_kilnd -c "$T/kilnd.conf" -w 2

# no_paths WHAT: the job in BODY names nothing inside the test's tree
# (state directory, module cache) in its error.
no_paths() {
	local e
	e=$(printf '%s' "$BODY" | jq -r '.error // ""')
	[[ "$e" != *"$T"* ]] && ok "$1: the error names no path of the state dir" ||
		fail "$1: the error shows a host path: $e"
}

# log_of ID URL-TARGET: a target's log, or nothing.
log_of() {
	curl -sf "$URL/v1/jobs/$1/targets/$2/log" 2>/dev/null || true
}

# --- three targets, dependencies fetched by the deps step -------------------
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\"]}"
expect_status 201 "submit the module job"
A=$(printf '%s' "$BODY" | jq -r .id)
await "$A" 600
expect_json .state succeeded "module with a dependency, no vendor/"
expect_json '[.targets[].toolchain] | unique | join(",")' "$GOV" \
	"every target says which Go built it (lowest satisfying go 1.21.0)"
expect_json '[.targets[] | .target + " " + .artifacts[0].name] | sort | join(",")' \
	"linux/amd64 textdep,linux/arm64 textdep,windows/amd64 textdep.exe" "the binaries"
for t in linux_amd64 linux_arm64 windows_amd64; do
	if log_of "$A" "$t" | grep -q '^\[kiln\] deps: '; then
		ok "$t: the log shows the deps step"
	else
		fail "$t: no '[kiln] deps: ' line in the log: $(log_of "$A" "$t" | head -20)"
	fi
done
out=$("$(out_file "$A" linux_amd64 textdep)" 2>&1) || true
[ "$out" = "textdep: IJsselmeer Dijk on linux/amd64" ] &&
	ok "linux/amd64 binary runs with x/text: $out" || fail "linux/amd64 output: $out"
out=$(timeout -s KILL 60 qemu-aarch64-static "$(out_file "$A" linux_arm64 textdep)" 2>&1) || true
[ "$out" = "textdep: IJsselmeer Dijk on linux/arm64" ] &&
	ok "linux/arm64 binary runs under qemu: $out" || fail "linux/arm64 output: $out"
desc=$(file -b "$(out_file "$A" windows_amd64 textdep.exe)") || true
[[ "$desc" == "PE32+ executable (console) x86-64"* ]] && ok "windows/amd64 is a PE32+" ||
	fail "windows/amd64: $desc"
n=$(goproxy_gets "$ZIP")
[ "$n" = $((zip0 + 1)) ] && ok "the deps step fetched the zip once for three targets" ||
	fail "the zip was fetched $((n - zip0)) times by the first job"

# --- a second commit of the same module graph: the cache answers -----------
sed -i 's/"ijsselmeer dijk"/"ijsland"/' "$REPO/main.go"
commit_all "$REPO" "another default"
B_COMMIT=$(git -C "$REPO" rev-parse HEAD)
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
B=$(printf '%s' "$BODY" | jq -r .id)
await "$B" 300
expect_json .state succeeded "second job of the same module graph"
expect_json .commit "$B_COMMIT" "built the new commit"
n=$(goproxy_gets "$ZIP")
[ "$n" = $((zip0 + 1)) ] && ok "the proxy served the zip once across two jobs" ||
	fail "the zip was fetched $((n - zip0)) times across two jobs"
out=$("$(out_file "$B" linux_amd64 textdep)" 2>&1) || true
[ "$out" = "textdep: IJsland on linux/amd64" ] && ok "second binary: $out" ||
	fail "second binary says: $out"

# --- vendored: Go's own rule, no deps step, the proxy is not asked ----------
(cd "$REPO" && GOFLAGS=-mod=mod hostgo mod vendor) >"$T/vendor.out" 2>&1 ||
	fail "go mod vendor: $(cat "$T/vendor.out")"
commit_all "$REPO" "vendor x/text"
gets0=$(goproxy_gets "")
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
C=$(printf '%s' "$BODY" | jq -r .id)
await "$C" 300
expect_json .state succeeded "the vendored module"
if log_of "$C" linux_amd64 | grep -q '^\[kiln\] deps: '; then
	fail "a deps step ran for a vendored module: $(log_of "$C" linux_amd64 | grep deps)"
else
	ok "no deps step for a module with vendor/modules.txt"
fi
[ "$(goproxy_gets "")" = "$gets0" ] && ok "the vendored job asked the proxy nothing" ||
	fail "the vendored job made $(( $(goproxy_gets "") - gets0 )) requests to the proxy"
out=$("$(out_file "$C" linux_amd64 textdep)" 2>&1) || true
[ "$out" = "textdep: IJsland on linux/amd64" ] && ok "vendored binary runs" ||
	fail "vendored binary says: $out"

# --- a tampered zip, an empty module cache: go's checksum error -------------
stop_kilnd TERM
STATE=$T/state-tampered
tamper_goproxy "$T/proxy" || { fail "tamper the zip"; exit 1; }
zip1=$(goproxy_gets "$ZIP")
start_kilnd -c "$T/kilnd.conf" -w 2
post_job "{\"repo\": \"$REPO\", \"ref\": \"$B_COMMIT\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\"]}"
D=$(printf '%s' "$BODY" | jq -r .id)
await "$D" 300
expect_json .state failed "a zip that does not match go.sum"
expect_json '(.error // "") | contains("checksum mismatch")' true "the job's error is go's checksum error"
expect_json '(.error // "") | contains("golang.org/x/text@'"$V"'")' true "and names the module"
no_paths "checksum mismatch"
expect_json '[.targets[] | (.artifacts // []) | length] | add' 0 "no artifacts"
expect_json '[.targets[].state] | unique | join(",")' failed "every target failed"
for t in linux_amd64 linux_arm64; do
	log_of "$D" "$t" | grep -q 'checksum mismatch' &&
		ok "$t: the log holds go's checksum error" ||
		fail "$t: the log has no checksum error: $(log_of "$D" "$t" | tail -5)"
done
api GET "/v1/jobs/$D/SHA256SUMS"
expect_status 404 "nothing signed for the failed job"
[ "$(goproxy_gets "$ZIP")" -gt "$zip1" ] && ok "the tampered zip was fetched from the proxy" ||
	fail "the tampered zip was never fetched (was a cache used?)"
left=$(find "$STATE" \( -name "$V.zip" -o -name "text@$V" \) 2>/dev/null | head -3)
[ -z "$left" ] && ok "nothing of the bad zip is in the module cache" ||
	fail "the bad module is in the cache: $left"

# --- a module the proxy does not have --------------------------------------
git -C "$REPO" rm -rq vendor
printf 'require example.com/nothere v1.0.0\n' >>"$REPO/go.mod"
echo 'example.com/nothere v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' \
	>>"$REPO/go.sum"
commit_all "$REPO" "require a module nobody serves"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
E=$(printf '%s' "$BODY" | jq -r .id)
await "$E" 300
expect_json .state failed "a module missing from the proxy"
expect_json '(.error // "") | contains("example.com/nothere@v1.0.0")' true "the error names the module"
expect_json '(.error // "") | contains("404")' true "and says the proxy answered 404"
no_paths "missing module"

# --- the proxy is down -------------------------------------------------------
stop_kilnd TERM
stop_goproxy
STATE=$T/state-down
start_kilnd -c "$T/kilnd.conf" -w 2
post_job "{\"repo\": \"$REPO\", \"ref\": \"$B_COMMIT\", \"targets\": [\"linux/amd64\"]}"
F=$(printf '%s' "$BODY" | jq -r .id)
await "$F" 300
expect_json .state failed "an unreachable proxy"
expect_json '(.error // "") | contains("connection refused")' true "the error is go's dial error"
expect_json '[.targets[] | (.artifacts // []) | length] | add' 0 "no artifacts"
no_paths "unreachable proxy"

api GET /healthz
expect_status 200 "kilnd still serves"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
finish
