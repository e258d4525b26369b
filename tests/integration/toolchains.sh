#!/bin/bash
# Go toolchains: kilnd finds the installed ones (/usr/lib/go-*/bin/go) and
# lists them; for each job it reads go.mod's go and toolchain lines and
# builds with the lowest installed Go that satisfies them, and says which
# in the job.  Modules for go 1.19, 1.21, 1.22 and 1.23 that use their
# version's language and library (min/max/slices, range over an int,
# range over an iterator) build and say which Go built them; a toolchain
# line is followed when an installed Go satisfies it; a recipe pins
# a toolchain; a go 1.99 module fails before any build with an error that
# names what it needs and what is installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/goproxy.sh"

command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }
for v in 1.21 1.22 1.23; do
	[ -x "/usr/lib/go-$v/bin/go" ] ||
		{ echo "SKIP: /usr/lib/go-$v/bin/go missing (scripts/bootstrap)"; exit 77; }
done
VERSIONS=$(go_versions)
G19=$(go_lowest 1.19)
G21=$(go_lowest 1.21.0)
G22=$(go_lowest 1.22.0)
G23=$(go_lowest 1.23.0)
echo "# installed: $(echo $VERSIONS)"

R19=$(make_repo gohello "$SRCDIR/tests/fixtures/go-hello")
R21=$(make_repo gonew21 "$SRCDIR/tests/fixtures/go-1.21")
R22=$(make_repo gonew22 "$SRCDIR/tests/fixtures/go-1.22")
R23=$(make_repo gonew23 "$SRCDIR/tests/fixtures/go-1.23")
R99=$(make_repo gonew99 "$SRCDIR/tests/fixtures/go-1.99")

start_kilnd -w 2

# --- what kilnd found -----------------------------------------------------
api GET /v1/toolchains
expect_status 200 "GET /v1/toolchains"
expect_json '[.go[].version] | join(" ")' "$(echo $VERSIONS)" \
	"every installed Go, oldest first"
expect_json '[.go[] | select(.version == "'"$G22"'")][0].path' /usr/lib/go-1.22/bin/go \
	"with its path"

# submit REPO [RECIPE]: one linux/amd64 job; sets JID.
submit() {
	local recipe=
	[ -n "${2:-}" ] && recipe=", \"recipe\": $2"
	post_job "{\"repo\": \"$1\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]$recipe}"
	[ "$STATUS" = 201 ] || fail "submit $1 ${2:-}: HTTP $STATUS $BODY"
	JID=$(printf '%s' "$BODY" | jq -r .id)
}

# built_with ID NAME GOVERSION WHAT: the job succeeded with GOVERSION,
# and its binary NAME says it was built by GOVERSION.
built_with() {
	local id=$1 name=$2 want=$3 what=$4 out
	await "$id" 300
	expect_json .state succeeded "$what"
	expect_json '.targets[0].toolchain' "$want" "$what: the target names its Go"
	out=$("$(out_file "$id" linux_amd64 "$name")" 2>&1) || true
	if [[ "$out" == *" built by $want" ]]; then
		ok "$what: the binary says: $out"
	else
		fail "$what: the binary says: $out (expected built by $want)"
	fi
}

# --- each module with the lowest Go that satisfies it -----------------------
submit "$R19"; J19=$JID
submit "$R21"; J21=$JID
submit "$R22"; J22=$JID
submit "$R23"; J23=$JID
await "$J19" 300
expect_json .state succeeded "go 1.19 module"
expect_json '.targets[0].toolchain' "$G19" "go 1.19 is built with $G19"
built_with "$J21" gonew21 "$G21" "go 1.21.0 (min, max, slices)"
built_with "$J22" gonew22 "$G22" "go 1.22.0 (range over an int)"
built_with "$J23" gonew23 "$G23" "go 1.23.0 (range over iter.Seq)"
out=$("$(out_file "$J21" linux_amd64 gonew21)" 2>&1) || true
[[ "$out" == "go1.21 features: min=1 max=3 sorted=[1 2 3] built by "* ]] &&
	ok "the go 1.21 program computed its answer" || fail "go 1.21 program: $out"
out=$("$(out_file "$J23" linux_amd64 gonew23)" 2>&1) || true
[[ "$out" == "go1.23 features: countdown [3 2 1] built by "* ]] &&
	ok "the go 1.23 program computed its answer" || fail "go 1.23 program: $out"

# --- a recipe pins a newer toolchain ----------------------------------------
submit "$R21" '{"kind": "go", "go": "1.23"}'; P=$JID
built_with "$P" gonew21 "$G23" "go 1.21.0 module pinned to go 1.23"
expect_json .recipe.go 1.23 "the job keeps the pin in its recipe"

# A pin older than go.mod asks for: the job fails, saying 1.23 is needed.
submit "$R23" '{"kind": "go", "go": "1.21"}'; P2=$JID
await "$P2" 300
expect_json .state failed "go 1.23.0 module pinned to go 1.21"
why="$(printf '%s' "$BODY" | jq -r '.error // ""') $(curl -sf "$URL/v1/jobs/$P2/targets/linux_amd64/log" || true)"
[[ "$why" == *1.23* ]] && ok "the failure says go 1.23 is needed" ||
	fail "the failure does not name 1.23: $why"

# A pin no installed Go satisfies: refused, at submission or by the job.
post_job "{\"repo\": \"$R21\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"go\", \"go\": \"1.98\"}}"
if [ "$STATUS" = 422 ]; then
	expect_problem 422 1.98 "a pin to a Go that is not installed"
else
	expect_status 201 "a pin to a Go that is not installed (accepted, then failing)"
	await "$(printf '%s' "$BODY" | jq -r .id)" 120
	expect_json .state failed "a pin to a Go that is not installed"
	expect_json '(.error // "") | contains("1.98")' true "the error names the pin"
fi

# --- a toolchain line raises the minimum --------------------------------------
printf '\ntoolchain go1.22.0\n' >>"$R21/go.mod"
commit_all "$R21" "toolchain go1.22.0"
submit "$R21"; T21=$JID
built_with "$T21" gonew21 "$G22" "go 1.21.0 with toolchain go1.22.0"
# A toolchain line newer than anything installed (real projects have one:
# a patch release newer than Debian's) is still the project's preference:
# the newest installed Go comes closest.  The lowest that satisfies the go
# line is not enough there: lazydocker v0.25.2 says go 1.22 and toolchain
# go1.23.6, and its vendored moby code has //go:build go1.23 files, so
# go1.22.12 fails (undefined: registry.ServiceConfig) where go1.23.5 builds.
GNEW=$(go_versions | tail -1)
printf '\ntoolchain go1.99.1\n' >>"$R22/go.mod"
commit_all "$R22" "toolchain go1.99.1"
submit "$R22"; T99=$JID
built_with "$T99" gonew22 "$GNEW" "go 1.22.0 with toolchain go1.99.1 (not installed)"

# --- go 1.99: nothing installed satisfies it ---------------------------------
post_job "{\"repo\": \"$R99\", \"ref\": \"main\", \"targets\": [\"linux/amd64\", \"linux/arm64\"]}"
expect_status 201 "submit the go 1.99 module"
N=$(printf '%s' "$BODY" | jq -r .id)
await "$N" 120
expect_json .state failed "go 1.99 module"
expect_json '(.error // "") | contains("1.99")' true "the error names go 1.99"
for v in $VERSIONS; do
	expect_json "(.error // \"\") | contains(\"${v#go}\")" true "the error names installed $v"
done
expect_json '[.targets[] | select(.exit_status != null or ((.artifacts // []) | length) > 0)] | length' 0 \
	"no target was built"
expect_json '(.error // "") | contains("'"$T"'")' false "the error names no path of the host"

api GET /healthz
expect_status 200 "kilnd still serves"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
finish
