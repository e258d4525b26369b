# Shared helpers for the integration tests: a private kilnd on an ephemeral
# port with its own state dir, driven with the real curl and jq.
# Sourced by tests/integration/*.sh; make check sets KILND and SRCDIR.
set -euo pipefail

: "${KILND:?KILND must name the kilnd binary}"
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

for tool in curl jq sqlite3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

. "$SRCDIR/tests/port.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-it.XXXXXX")
STATE=$T/state
KPID=
URL=
KLOG=
NFAIL=0
NCHECK=0

cleanup() {
	if [ -n "$KPID" ] && kill -0 "$KPID" 2>/dev/null; then
		kill -KILL "$KPID" 2>/dev/null || true
		wait "$KPID" 2>/dev/null || true
	fi
	# A failed test leaves the end of each kilnd log in its .log file.
	if [ "$NFAIL" -gt 0 ]; then
		for f in "$T"/kilnd.*.log; do
			[ -f "$f" ] || continue
			echo "--- last lines of $f:" >&2
			tail -40 "$f" >&2
		done
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	NFAIL=$((NFAIL + 1))
}

ok() {
	NCHECK=$((NCHECK + 1))
	echo "ok - $*"
}

# A configuration with builds paused: jobs are accepted and stay queued
# (for tests of the queue and the API, not of builds).  The suites build
# repositories they make under $T, so local repositories are allowed
# (allow_local_repos, kilnd.conf(5)) in every configuration they use.
PAUSED_CONF=$T/paused.conf
printf '[kilnd]\npaused = yes\nallow_local_repos = yes\n' >"$PAUSED_CONF"
LOCAL_CONF=$T/local.conf
printf '[kilnd]\nallow_local_repos = yes\n' >"$LOCAL_CONF"

# Start kilnd with extra arguments; waits until it is listening.  Without
# -c/--config it reads LOCAL_CONF.
start_kilnd() {
	local a conf=(-c "$LOCAL_CONF")
	for a in "$@"; do
		case $a in -c|--config|--config=*) conf=() ;; esac
	done
	KLOG=$T/kilnd.$RANDOM.log
	# KILND_WRAPPER: make valgrind-check runs kilnd under valgrind.
	${KILND_WRAPPER:-} "$KILND" -l 127.0.0.1:0 -d "$STATE" ${conf[@]+"${conf[@]}"} \
		"$@" 2>"$KLOG" &
	KPID=$!
	for _ in $(seq 1 200); do
		URL=$(grep -o 'listening on http://[0-9.:]*' "$KLOG" 2>/dev/null |
			head -1 | sed 's/listening on //') || true
		[ -n "$URL" ] && return 0
		if ! kill -0 "$KPID" 2>/dev/null; then
			echo "kilnd exited during start:" >&2
			cat "$KLOG" >&2
			KPID=
			return 1
		fi
		sleep 0.05
	done
	echo "kilnd did not start listening:" >&2
	cat "$KLOG" >&2
	return 1
}

# Stop kilnd with a signal (default TERM); sets KEXIT to its exit status.
stop_kilnd() {
	local sig=${1:-TERM}
	kill -"$sig" "$KPID"
	KEXIT=0
	wait "$KPID" || KEXIT=$?
	KPID=
}

# api METHOD PATH [curl args...]: sets STATUS, BODY, HEADERS.
api() {
	local method=$1 path=$2
	shift 2
	BODY=$(curl -sS -X "$method" -D "$T/headers" -o - -w '\n%{http_code}' \
		"$@" "$URL$path") || { STATUS=000; HEADERS=; return 0; }
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
	HEADERS=$(tr -d '\r' <"$T/headers")
}

# post_job JSON [curl args...]: POST /v1/jobs with a JSON body.
post_job() {
	local body=$1
	shift
	api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

expect_status() {
	local want=$1 what=$2
	if [ "$STATUS" = "$want" ]; then
		ok "$what: HTTP $want"
	else
		fail "$what: HTTP $STATUS, expected $want; body: $BODY"
	fi
}

# expect_json JQ-FILTER EXPECTED WHAT
expect_json() {
	local got
	got=$(printf '%s' "$BODY" | jq -r "$1" 2>/dev/null) || got="(not JSON)"
	if [ "$got" = "$2" ]; then
		ok "$3: $1 = $2"
	else
		fail "$3: $1 = '$got', expected '$2'; body: $BODY"
	fi
}

# expect_problem STATUS DETAIL-SUBSTRING WHAT: an RFC 9457 problem.
expect_problem() {
	local want=$1 needle=$2 what=$3 ct detail
	expect_status "$want" "$what"
	ct=$(printf '%s\n' "$HEADERS" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
	[ "$ct" = "application/problem+json" ] ||
		fail "$what: Content-Type '$ct', expected application/problem+json"
	detail=$(printf '%s' "$BODY" | jq -r '.detail' 2>/dev/null) || detail=
	if [ "$(printf '%s' "$BODY" | jq -r '.status' 2>/dev/null)" != "$want" ]; then
		fail "$what: problem status field is not $want: $BODY"
	elif [[ "$detail" != *"$needle"* ]]; then
		fail "$what: detail '$detail' does not mention '$needle'"
	else
		ok "$what: detail names '$needle'"
	fi
}

header() {
	printf '%s\n' "$HEADERS" | sed -n "s/^$1: //Ip" | head -1
}

# kilnd writes meanwhile: wait for its lock rather than fail with
# "database is locked".
db() {
	sqlite3 -cmd ".timeout 10000" "$STATE/kiln.db" "$@"
}

finish() {
	echo "# $NCHECK checks passed, $NFAIL failed"
	[ "$NFAIL" -eq 0 ]
}

# make_repo NAME FIXTURE-DIR: a real git repository holding the fixture,
# committed with a fixed identity; prints its path.
make_repo() {
	local dir=$T/repos/$1
	mkdir -p "$dir"
	cp -R "$2/." "$dir/"
	git -C "$dir" init -q -b main
	git -C "$dir" add -A
	GIT_AUTHOR_DATE='2026-01-02T03:04:05Z' \
	GIT_COMMITTER_DATE='2026-01-02T03:04:05Z' \
		git -C "$dir" -c user.name=kiln-test -c user.email=t@kiln.invalid \
		commit -q -m "fixture $1"
	printf '%s' "$dir"
}

# commit_all DIR MESSAGE: commit what changed in DIR.
commit_all() {
	git -C "$1" add -A
	git -C "$1" -c user.name=kiln-test -c user.email=t@kiln.invalid \
		commit -q -m "$2"
}

# wait_job ID [SECONDS]: until the job is succeeded, failed or canceled;
# leaves the job in BODY.  Fails the test on time-out.
wait_job() {
	local id=$1 limit=${2:-600} state
	for _ in $(seq 1 $((limit * 5))); do
		api GET "/v1/jobs/$id"
		state=$(printf '%s' "$BODY" | jq -r .state 2>/dev/null) || state=
		case "$state" in
		succeeded|failed|canceled) return 0 ;;
		esac
		sleep 0.2
	done
	fail "job $id still '$state' after ${limit}s: $BODY"
	return 1
}

# wait_target_state ID TARGET STATE [SECONDS]
wait_target_state() {
	local id=$1 target=$2 want=$3 limit=${4:-120} got
	for _ in $(seq 1 $((limit * 10))); do
		api GET "/v1/jobs/$id"
		got=$(printf '%s' "$BODY" |
			jq -r --arg t "$target" '.targets[] | select(.target == $t) | .state')
		[ "$got" = "$want" ] && return 0
		sleep 0.1
	done
	fail "job $id $target is '$got', waited for '$want'"
	return 1
}

# out_file ID URL-TARGET NAME: download an artifact of a target through
# the API (the work tree is gone once it is published); prints the path.
out_file() {
	local dir=$T/dl/$1/$2
	mkdir -p "$dir"
	curl -sSf -o "$dir/$3" "$URL/v1/jobs/$1/artifacts/$2/$3" 2>/dev/null ||
		return 0
	chmod +x "$dir/$3"
	printf '%s' "$dir/$3"
}
