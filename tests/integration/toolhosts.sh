#!/bin/bash
# Hosts with different toolchains on one PostgreSQL queue
# (tests/pgcluster.sh runs a throwaway server): each host plans what it
# claims with its own toolchains, and a target it lacks the toolchain for
# is left to the farm instead of failed.
#   1. GET /v1/hosts shows each host's toolchain map: h2 has the C
#      toolchain of linux/arm64, h1 has not ([toolchains] maps it to a
#      compiler that is not installed: Debian's cross compilers are in
#      kilnd's defaults, and a host that lacks one is a host whose map
#      names another);
#   2. a cgo job for linux/amd64 and linux/arm64, submitted to h1 while h2
#      is paused (SIGSTOP: still alive, its beat is recent): h1 builds
#      linux/amd64 and refuses linux/arm64 ("left to the farm"), which
#      stays queued with no attempt counted; h2 resumed builds it (its
#      "host" is h2), and the job succeeds;
#   3. a cgo target no host has a C toolchain for fails with "no host of
#      the farm can build it", naming each host's reason; so does a job
#      pinned to a Go release no host has (its whole plan fails);
#   4. a host reloaded (SIGHUP) with the C toolchain it lacked forgets
#      its refusal and its old plan: it builds the target.
# Needs root: initdb and pg_ctl run as the postgres user.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/farmlib.sh"
. "$(dirname "$0")/goproxy.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
for tool in git file pkg-config gcc aarch64-linux-gnu-gcc; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
for pc in /usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc \
    /usr/lib/aarch64-linux-gnu/pkgconfig/zlib.pc; do
	[ -e "$pc" ] || { echo "SKIP: $pc missing (scripts/bootstrap installs it)"; exit 77; }
done
G21=$(go_lowest 1.21.0)
[ -n "$G21" ] || { echo "SKIP: no Go 1.21 or newer in /usr/lib/go-*"; exit 77; }
PSQL=$(command -v psql || echo "$PGBIN/psql")

# The cluster's directory is short (its Unix socket path must fit).
PGD=$(mktemp -d /tmp/kiln-tool-pg.XXXXXX)

toolhosts_cleanup() {
	local i
	for i in 1 2; do
		if [ -n "${HPID[$i]:-}" ] && kill -0 "${HPID[$i]}" 2>/dev/null; then
			kill -CONT "${HPID[$i]}" 2>/dev/null || true
			kill -KILL "${HPID[$i]}" 2>/dev/null || true
			wait "${HPID[$i]}" 2>/dev/null || true
		fi
	done
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap toolhosts_cleanup EXIT

q() {
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$PGURL" -c "$1"
}

PGURL=$("$PGCLUSTER" start "$PGD")

# One key for the farm, copied into every state directory.
farm_keys 2

# tool_host N TOOLCHAINS: start_host N with the [toolchains] lines given.
# The lease is long: a paused host stays alive (two leases) through part 2.
tool_host() {
	start_host "$1" "workers = 2
target_lease = 30
[toolchains]
$2"
}

# Nobody has riscv64's; only h2 has arm64's.
tool_host 1 'linux/arm64 = kiln-missing-linux-gnu
linux/riscv64 = kiln-missing-linux-gnu' || { fail "h1 does not start"; exit 1; }
tool_host 2 'linux/riscv64 = kiln-missing-linux-gnu' ||
	{ fail "h2 does not start"; exit 1; }
ok "two hosts on one PostgreSQL: ${HURL[1]} ${HURL[2]}"

# ---- 1. the toolchain maps ----------------------------------------------
# Written with the beat that follows the Go toolchains' discovery (the
# next tick: 2 s).
on 1
for _ in $(seq 1 100); do
	api GET /v1/hosts
	MAP1=$(printf '%s' "$BODY" | jq -r '.hosts[] | select(.name == "h1") | .toolchains')
	MAP2=$(printf '%s' "$BODY" | jq -r '.hosts[] | select(.name == "h2") | .toolchains')
	[[ "$MAP1" == go* && "$MAP2" == go* ]] && break
	sleep 0.1
done
expect_status 200 "GET /v1/hosts"
echo "# h1: $MAP1"
echo "# h2: $MAP2"
[[ "$MAP1" == *"$G21"*"; cgo "*linux/amd64* && " $MAP1 " != *" linux/arm64 "* &&
    " $MAP1 " != *" linux/riscv64 "* ]] &&
	ok "h1's map: its Go, cgo for linux/amd64, not linux/arm64 or riscv64" ||
	fail "h1's map: '$MAP1'"
[[ "$MAP2" == *"; cgo "*" linux/arm64"* && " $MAP2 " != *" linux/riscv64 "* ]] &&
	ok "h2's map has cgo for linux/arm64" || fail "h2's map: '$MAP2'"

REPO=$(make_repo zcgo "$SRCDIR/tests/fixtures/go-cgo")

# ---- 2. linux/arm64 left to h2 ------------------------------------------
kill -STOP "${HPID[2]}"
on 1
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\"],
	\"recipe\": {\"kind\": \"go\", \"cgo\": true}}"
expect_status 201 "submit the cgo job to h1"
A=$(printf '%s' "$BODY" | jq -r .id)
for _ in $(seq 1 600); do
	grep -q "job $A linux/arm64: this host cannot build it" "${HLOG[1]}" && break
	sleep 0.2
done
grep -q "job $A linux/arm64: this host cannot build it (cgo: the C toolchain for linux/arm64 (kiln-missing-linux-gnu) is not installed on this host); left to the farm" "${HLOG[1]}" &&
	ok "h1 refuses linux/arm64, saying why" ||
	fail "h1 did not refuse linux/arm64: $(grep "job $A" "${HLOG[1]}" | tail -5)"
wait_target_state "$A" linux/amd64 succeeded 300
expect_json '.targets[] | select(.target == "linux/amd64") | .host' h1 \
	"linux/amd64 built by h1"
expect_json '.targets[] | select(.target == "linux/arm64") | "\(.state) \(.attempt)"' \
	"queued 0" "linux/arm64 queued again, no attempt counted"
[ "$(q "SELECT r.host FROM target_refusals r JOIN job_targets t ON t.id = r.target_id
    WHERE t.job_id = $A AND t.target = 'linux/arm64'")" = h1 ] &&
	ok "the refusal is recorded for h1" || fail "no refusal recorded for h1"
kill -CONT "${HPID[2]}"
wait_job "$A" 600 || true
expect_json .state succeeded "the cgo job succeeds"
expect_json '.targets[] | select(.target == "linux/arm64") | "\(.host) \(.attempt)"' \
	"h2 1" "linux/arm64 built by h2, on its first attempt"
mkdir -p "$T/dl"
f=$T/dl/zcgo.arm64
curl -sSfL -o "$f" "$URL/v1/jobs/$A/artifacts/linux_arm64/zcgo" 2>/dev/null || true
desc=$(file -b "$f" 2>/dev/null) || desc="(missing)"
[[ "$desc" == "ELF 64-bit LSB executable, ARM aarch64, "*"dynamically linked"* ]] &&
	ok "linux/arm64 through h1: $desc" || fail "linux/arm64 binary: $desc"

# ---- 3. nobody can build it ---------------------------------------------
on 2
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/riscv64\"],
	\"recipe\": {\"kind\": \"go\", \"cgo\": true}}"
expect_status 201 "submit a cgo job for linux/riscv64"
B=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$B" 300 || true
expect_json .state failed "no host can build linux/riscv64: the job fails"
WHY="cgo: the C toolchain for linux/riscv64 (kiln-missing-linux-gnu) is not installed on this host"
expect_json '.targets[0].error' \
	"no host of the farm can build it: h1: $WHY; h2: $WHY" \
	"the error names every host's reason"
expect_json '"\(.targets[0].attempt) \(.targets[0].exit_status)"' "0 null" \
	"no attempt counted, no build started"

# A Go release no host has: the whole plan fails on each host, which
# refuses the job's target instead of failing the job.
on 1
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"go\", \"go\": \"1.99\"}}"
expect_status 201 "submit a job pinned to Go 1.99"
C=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$C" 300 || true
expect_json .state failed "no host has Go 1.99: the job fails"
expect_json '.targets[0].error | test("^no host of the farm can build it: h1: recipe.go pins 1.99; installed: .*; h2: recipe.go pins 1.99; installed: ")' \
	true "the error names both hosts' missing Go"
grep -q "job $C linux/amd64: this host cannot build it (recipe.go pins 1.99" \
    "${HLOG[1]}" "${HLOG[2]}" && ok "a host logs that it cannot build it" ||
	fail "no host logged its refusal of job $C"

# ---- 4. a reload that brings the toolchain ------------------------------
# Neither host has arm64's C toolchain; h1 refuses the target (h2 paused,
# alive), then is given the toolchain and reloaded (SIGHUP): its old
# refusal and its plan of the job are void, so h2's refusal leaves the
# target to h1, which builds it.
kill -TERM "${HPID[2]}"
wait "${HPID[2]}" || true
HPID[2]=
tool_host 2 'linux/arm64 = kiln-missing-linux-gnu
linux/riscv64 = kiln-missing-linux-gnu' || { fail "h2 does not restart"; exit 1; }
on 2
for _ in $(seq 1 100); do
	api GET /v1/hosts
	MAP2=$(printf '%s' "$BODY" | jq -r '.hosts[] | select(.name == "h2") | .toolchains')
	[[ "$MAP2" == go* && " $MAP2 " != *" linux/arm64 "* ]] && break
	sleep 0.1
done
kill -STOP "${HPID[2]}"
on 1
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/arm64\"],
	\"recipe\": {\"kind\": \"go\", \"cgo\": true}, \"cache\": false}"
expect_status 201 "submit a cgo job for linux/arm64 again"
D=$(printf '%s' "$BODY" | jq -r .id)
for _ in $(seq 1 600); do
	grep -q "job $D linux/arm64: this host cannot build it" "${HLOG[1]}" && break
	sleep 0.2
done
grep -q "job $D linux/arm64: this host cannot build it" "${HLOG[1]}" &&
	ok "h1 refuses it before its reload" || fail "h1 did not refuse job $D"
sed -i '/^linux\/arm64 = kiln-missing-linux-gnu$/d' "$T/h1.conf"
kill -HUP "${HPID[1]}"
for _ in $(seq 1 200); do
	api GET /v1/hosts
	MAP1=$(printf '%s' "$BODY" | jq -r '.hosts[] | select(.name == "h1") | .toolchains')
	[[ " $MAP1 " == *" linux/arm64 "* ]] && break
	sleep 0.1
done
[[ " $MAP1 " == *" linux/arm64 "* ]] && ok "h1's map has linux/arm64 after SIGHUP" ||
	fail "h1's map after SIGHUP: '$MAP1'"
kill -CONT "${HPID[2]}"
wait_job "$D" 600 || true
expect_json '"\(.state) \(.targets[0].host)"' "succeeded h1" \
	"h1, reloaded with the toolchain, builds it (no stale refusal)"

for i in 1 2; do
	kill -TERM "${HPID[$i]}"
	wait "${HPID[$i]}" && ok "h$i exits 0" || fail "h$i exit status $?"
	HPID[$i]=
done
finish
