# Shared helpers for the integration tests: a private kilnd on an ephemeral
# port with its own state dir, driven with the real curl and jq.
# Sourced by tests/integration/*.sh; make check sets KILND and SRCDIR.
set -euo pipefail

: "${KILND:?KILND must name the kilnd binary}"
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

for tool in curl jq sqlite3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

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

# Start kilnd with extra arguments; waits until it is listening.
start_kilnd() {
	KLOG=$T/kilnd.$RANDOM.log
	"$KILND" -l 127.0.0.1:0 -d "$STATE" "$@" 2>"$KLOG" &
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

# post_job JSON: POST /v1/jobs with a JSON body.
post_job() {
	api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "$1"
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

db() {
	sqlite3 "$STATE/kiln.db" "$@"
}

finish() {
	echo "# $NCHECK checks passed, $NFAIL failed"
	[ "$NFAIL" -eq 0 ]
}
