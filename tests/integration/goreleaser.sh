#!/bin/bash
# GoReleaser configurations and version stamping: a repository with a
# version 2 .goreleaser.yaml, released with an annotated tag, is built for
# the file's matrix (goos x goarch minus ignore) when the request names no
# targets; the binary gets the file's name and prints the stamped version
# (the tag without v), commit and date (the commit time); the file's
# archives are made by the job's release row, named by its name_template
# with the tag's version; the sections kiln does not run are reported as
# ignored.  An older unversioned .goreleaser.yml
# (ldflags as a list, goarm) with a lightweight tag; an untagged commit gets
# a snapshot version.  .kiln.json targets; a request with no targets and no
# configuration that names them; an unsupported builder and an unknown
# template fail their job with a reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/goproxy.sh"

for tool in git file qemu-aarch64-static qemu-arm-static aarch64-linux-gnu-gcc \
    x86_64-w64-mingw32-gcc; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
G21=$(go_lowest 1.21.0)
[ -n "$G21" ] || { echo "SKIP: no Go 1.21 or newer in /usr/lib/go-*"; exit 77; }

# tag_a DIR TAG: an annotated tag, as `git tag -a` makes for a release.
tag_a() {
	GIT_COMMITTER_DATE='2026-01-03T00:00:00Z' git -C "$1" -c user.name=kiln-test \
		-c user.email=t@kiln.invalid tag -a "$2" -m "release $2"
}

REL=$(make_repo relcli "$SRCDIR/tests/fixtures/go-goreleaser")
tag_a "$REL" v1.2.3
REL_COMMIT=$(git -C "$REL" rev-parse 'v1.2.3^{commit}')
[ "$(git -C "$REL" cat-file -t v1.2.3)" = tag ] && ok "v1.2.3 is an annotated tag" ||
	fail "v1.2.3 is not a tag object"
OLD=$(make_repo oldcli "$SRCDIR/tests/fixtures/go-goreleaser-v1")
git -C "$OLD" tag v0.9.1
OLD_COMMIT=$(git -C "$OLD" rev-parse HEAD)

start_kilnd -w 2

# run_out ID URL-TARGET NAME [RUNNER...]: what the artifact prints.
run_out() {
	local id=$1 t=$2 name=$3 f
	shift 3
	f=$(out_file "$id" "$t" "$name")
	[ -n "$f" ] || { echo "(no artifact $t/$name)"; return 0; }
	timeout -s KILL 60 "$@" "$f" 2>&1 || true
}

# --- version 2, annotated tag, no targets in the request --------------------
post_job "{\"repo\": \"$REL\", \"ref\": \"v1.2.3\"}"
expect_status 201 "a request without targets for a .goreleaser.yaml repository"
A=$(printf '%s' "$BODY" | jq -r .id)
await "$A" 600
expect_json .state succeeded "the GoReleaser job"
expect_json '[.targets[].target] | sort | join(",")' "linux/amd64,linux/arm64,release,windows/amd64" \
	"targets are the file's goos x goarch minus ignore, then the release row"
expect_json .commit "$REL_COMMIT" "the annotated tag is peeled to its commit"
expect_json .ref v1.2.3 "the job keeps the tag as its ref"
expect_json '[.targets[] | select(.target != "release") | .target + " " + ([.artifacts[]?.name] | join("+"))] | sort | join(",")' \
	"linux/amd64 relcli,linux/arm64 relcli,windows/amd64 relcli.exe" \
	"the binary is named by the build's binary key"
expect_json '[.targets[] | select(.target == "release") | .artifacts[].name] | join(",")' \
	"relcli_1.2.3_linux_amd64.tar.gz,relcli_1.2.3_linux_arm64.tar.gz,relcli_1.2.3_windows_amd64.zip" \
	"the file's archives: its name_template, tar.gz, zip for windows"
expect_json '[.targets[] | select(.target != "release") | .toolchain] | unique | join(",")' "$G21" "built with $G21 (go 1.21.0)"
want="relcli version=1.2.3 commit=$REL_COMMIT date=2026-01-02T03:04:05Z"
out=$(run_out "$A" linux_amd64 relcli)
[ "$out" = "$want linux/amd64" ] && ok "linux/amd64 prints the stamps: $out" ||
	fail "linux/amd64 says '$out', expected '$want linux/amd64'"
out=$(run_out "$A" linux_arm64 relcli qemu-aarch64-static)
[ "$out" = "$want linux/arm64" ] && ok "linux/arm64 under qemu prints the stamps" ||
	fail "linux/arm64 says '$out'"
desc=$(file -b "$(out_file "$A" windows_amd64 relcli.exe)") || true
[[ "$desc" == "PE32+ executable (console) x86-64"* ]] && ok "windows/amd64 is a PE32+" ||
	fail "windows/amd64: $desc"
LOG=$(curl -sf "$URL/v1/jobs/$A/targets/linux_amd64/log" || true)
ign=$(grep -i 'ignored' <<<"$LOG" || true)
[[ "$ign" != *archives* ]] && ok "archives are not reported ignored" ||
	fail "an 'ignored' line names archives: $ign"
[[ "$ign" == *checksum* ]] && ok "the log says checksum is ignored" ||
	fail "no 'ignored' line naming checksum in the log: $ign"
[[ "$ign" != *ldflags* && "$ign" != *goarch* && "$ign" != *binary* ]] &&
	ok "and none of the build keys it used" || fail "a used key reported ignored: $ign"

# --- the older format, a lightweight tag ---------------------------------
post_job "{\"repo\": \"$OLD\", \"ref\": \"v0.9.1\"}"
expect_status 201 "a request without targets for a .goreleaser.yml repository"
B=$(printf '%s' "$BODY" | jq -r .id)
await "$B" 600
expect_json .state succeeded "the older-format job"
expect_json '[.targets[].target] | sort | join(",")' "linux/amd64,linux/arm/v7,release" \
	"targets from goos, goarch and goarm (and the release row of its archives)"
expect_json .commit "$OLD_COMMIT" "the lightweight tag's commit"
out=$(run_out "$B" linux_amd64 oldcli)
[ "$out" = "oldcli version=0.9.1 commit=none date=unknown linux/amd64" ] &&
	ok "linux/amd64: $out" || fail "linux/amd64 says '$out'"
out=$(run_out "$B" linux_arm_v7 oldcli qemu-arm-static)
[ "$out" = "oldcli version=0.9.1 commit=none date=unknown linux/arm" ] &&
	ok "linux/arm/v7 under qemu: $out" || fail "linux/arm/v7 says '$out'"
desc=$(file -b "$(out_file "$B" linux_arm_v7 oldcli)") || true
[[ "$desc" == "ELF 32-bit LSB executable, ARM, EABI5"* ]] && ok "linux/arm/v7 is an EABI5 ELF" ||
	fail "linux/arm/v7: $desc"

# --- an untagged commit: a snapshot version ---------------------------------
echo "// another commit" >>"$OLD/main.go"
GIT_COMMITTER_DATE='2026-01-04T00:00:00Z' GIT_AUTHOR_DATE='2026-01-04T00:00:00Z' \
	commit_all "$OLD" "after the release"
SNAP_COMMIT=$(git -C "$OLD" rev-parse HEAD)
post_job "{\"repo\": \"$OLD\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
C=$(printf '%s' "$BODY" | jq -r .id)
await "$C" 300
expect_json .state succeeded "an untagged commit"
out=$(run_out "$C" linux_amd64 oldcli)
v=$(sed -n 's/^oldcli version=\([^ ]*\) .*/\1/p' <<<"$out")
short=${v#0.0.0-SNAPSHOT-}
if [[ "$v" =~ ^0\.0\.0-SNAPSHOT-[0-9a-f]{7,40}$ ]] && [[ "$SNAP_COMMIT" == "$short"* ]]; then
	ok "an untagged commit is version $v"
else
	fail "untagged commit $SNAP_COMMIT: version '$v' ($out)"
fi

# --- .kiln.json names the targets --------------------------------------------
CREPO=$(make_repo c-hello "$SRCDIR/tests/fixtures/c-hello")
post_job "{\"repo\": \"$CREPO\", \"ref\": \"main\"}"
expect_status 201 "a request without targets for a repository whose .kiln.json names them"
D=$(printf '%s' "$BODY" | jq -r .id)
await "$D" 300
expect_json .state succeeded "the .kiln.json job"
expect_json '[.targets[].target] | sort | join(",")' "linux/arm64,windows/amd64" \
	"targets from .kiln.json"

# --- no targets anywhere -------------------------------------------------------
HELLO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
post_job "{\"repo\": \"$HELLO\", \"ref\": \"main\"}"
if [ "$STATUS" = 422 ]; then
	expect_problem 422 targets "no targets in the request nor in the repository"
else
	expect_status 201 "no targets in the request nor in the repository (accepted, then failing)"
	await "$(printf '%s' "$BODY" | jq -r .id)" 120
	expect_json .state failed "no targets in the request nor in the repository"
	expect_json '(.error // "") | test("target")' true "the error says targets are needed"
fi

# --- configurations kiln refuses ------------------------------------------------
# bad_config NAME SED-EXPR NEEDLE WHAT: the fixture's .goreleaser.yaml
# changed by SED-EXPR fails its job with an error containing NEEDLE.
bad_config() {
	local dir=$T/src/$1 repo id
	mkdir -p "$T/src"
	cp -R "$SRCDIR/tests/fixtures/go-goreleaser" "$dir"
	sed -i "$2" "$dir/.goreleaser.yaml"
	repo=$(make_repo "$1" "$dir")
	post_job "{\"repo\": \"$repo\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
	id=$(printf '%s' "$BODY" | jq -r .id)
	await "$id" 120
	expect_json .state failed "$4"
	expect_json "[.error, .targets[].error] | map(. // \"\") | join(\" \") | contains(\"$3\")" \
		true "$4: the error (the job's or its target's) names $3"
	expect_json '[.targets[] | (.artifacts // []) | length] | add // 0' 0 "$4: no artifacts"
}
bad_config rustrel 's/^    main: \.\/cmd\/relcli$/    builder: rust\n&/' rust \
	"an unsupported builder"
bad_config tmplrel 's/{{.Date}}/{{.NoSuchField}}/' NoSuchField \
	"an unknown template"
bad_config yamlrel 's/^builds:$/builds: [unclosed/' .goreleaser.yaml \
	"a .goreleaser.yaml that is not YAML"

api GET /healthz
expect_status 200 "kilnd still serves"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
finish
