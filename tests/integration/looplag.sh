#!/bin/bash
# The loop-lag probe as a scraper and an operator see it: GET /metrics
# has kiln_loop_lag_seconds, a well-formed histogram (buckets in order,
# cumulative, the +Inf bucket equal to _count) that keeps counting;
# GET /v1/info has the worst lag and the last minute's figures; and the
# probe's timer does not keep kilnd from stopping cleanly.  Nothing here
# depends on how late the loop actually is.
. "$(dirname "$0")/lib.sh"

start_kilnd -c "$PAUSED_CONF"

# lag_family: the kiln_loop_lag_seconds lines of one scrape, in order.
lag_family() {
	api GET /metrics
	[ "$STATUS" = 200 ] || { fail "GET /metrics: $STATUS $BODY"; return 1; }
	printf '%s\n' "$BODY" | grep -E '^(# (HELP|TYPE) )?kiln_loop_lag_seconds'
}

# check_histogram LINES WHAT: sets COUNT; fails on a malformed family.
check_histogram() {
	local lines=$1 what=$2 les counts sum prev=0 n c inf
	COUNT=
	grep -qx '# TYPE kiln_loop_lag_seconds histogram' <<<"$lines" &&
		ok "$what: TYPE histogram" || fail "$what: no '# TYPE kiln_loop_lag_seconds histogram'"
	les=$(sed -nE 's/^kiln_loop_lag_seconds_bucket\{le="([^"]+)"\} [0-9]+$/\1/p' <<<"$lines" |
		tr '\n' ' ')
	[ "$les" = "0.001 0.002 0.005 0.01 0.02 0.05 0.1 0.25 0.5 1 +Inf " ] &&
		ok "$what: buckets 0.001 to 1 and +Inf, in order" ||
		fail "$what: bucket bounds '$les'"
	counts=$(sed -nE 's/^kiln_loop_lag_seconds_bucket\{le="[^"]+"\} ([0-9]+)$/\1/p' <<<"$lines")
	n=0
	for c in $counts; do
		if [ "$c" -lt "$prev" ]; then
			fail "$what: bucket counts go down: $(tr '\n' ' ' <<<"$counts")"
			break
		fi
		prev=$c
		n=$((n + 1))
	done
	[ "$n" = 11 ] && ok "$what: 11 cumulative bucket counts, never decreasing" ||
		fail "$what: $n bucket counts"
	inf=$(sed -nE 's/^kiln_loop_lag_seconds_bucket\{le="\+Inf"\} ([0-9]+)$/\1/p' <<<"$lines")
	COUNT=$(sed -nE 's/^kiln_loop_lag_seconds_count ([0-9]+)$/\1/p' <<<"$lines")
	sum=$(sed -nE 's/^kiln_loop_lag_seconds_sum ([0-9]+\.[0-9]+)$/\1/p' <<<"$lines")
	[ -n "$COUNT" ] && [ "$inf" = "$COUNT" ] && ok "$what: +Inf bucket = _count = $COUNT" ||
		fail "$what: +Inf bucket '$inf', _count '$COUNT'"
	[ -n "$sum" ] && ok "$what: _sum is a number ($sum)" || fail "$what: no numeric _sum"
}

# The probe fires every 50 ms from the start: the first scrape has some.
for _ in $(seq 1 50); do
	first=$(lag_family) || break
	c=$(sed -nE 's/^kiln_loop_lag_seconds_count ([0-9]+)$/\1/p' <<<"$first")
	[ "${c:-0}" -gt 0 ] && break
	sleep 0.1
done
check_histogram "$first" "first scrape"
c1=$COUNT
b1=$(sed -nE 's/^kiln_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9]+)$/\1 \2/p' <<<"$first")

# It keeps counting, and no bucket ever goes down (a counter).
for _ in $(seq 1 100); do
	second=$(lag_family) || break
	c=$(sed -nE 's/^kiln_loop_lag_seconds_count ([0-9]+)$/\1/p' <<<"$second")
	[ "${c:-0}" -gt "${c1:-0}" ] && break
	sleep 0.1
done
check_histogram "$second" "a later scrape"
c2=$COUNT
[ -n "$c1" ] && [ -n "$c2" ] && [ "$c2" -gt "$c1" ] &&
	ok "_count grows: $c1, then $c2" || fail "_count did not grow: '$c1', then '$c2'"
shrunk=$(join <(sort <<<"$b1") <(sed -nE 's/^kiln_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9]+)$/\1 \2/p' <<<"$second" | sort) |
	awk '$3 < $2 { print $1 }')
[ -z "$shrunk" ] && ok "no bucket went down between scrapes" ||
	fail "buckets went down between scrapes: $shrunk"

# /v1/info: the worst since the start and the last minute's figures, in
# ms, consistent with each other.
api GET /v1/info
expect_status 200 "GET /v1/info"
expect_json '[.loop_lag_max_ms, .loop_lag_1m_max_ms, .loop_lag_1m_p99_ms] | map(type) | join(",")' \
	"number,number,number" "the loop lag fields"
expect_json '.loop_lag_max_ms >= 0 and .loop_lag_1m_p99_ms >= 0' true "lags are not negative"
expect_json '.loop_lag_1m_p99_ms <= .loop_lag_1m_max_ms' true "p99 of the minute <= its max"
expect_json '.loop_lag_1m_max_ms <= .loop_lag_max_ms' true "the minute's max <= the max since start"

# One probe feeds both: the maximum (read after the scrape) is at least
# the highest bucket bound that some sample of the scrape exceeded.
max_s=$(printf '%s' "$BODY" | jq -r '.loop_lag_max_ms / 1000')
over=$(sed -nE 's/^kiln_loop_lag_seconds_bucket\{le="([0-9.]+)"\} ([0-9]+)$/\1 \2/p' <<<"$second" |
	awk -v n="$c2" '$2 < n { b = $1 } END { print b + 0 }')
awk -v m="$max_s" -v b="$over" 'BEGIN { exit !(m >= b) }' &&
	ok "the max in /v1/info ($max_s s) >= the highest bound a sample exceeded ($over s)" ||
	fail "max $max_s s, but a sample exceeded $over s"

# The probe's timer is closed at shutdown: the loop ends, exit 0.
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $KEXIT"
grep -q "stopped cleanly" "$KLOG" && ok "stopped cleanly (no handle left open)" ||
	fail "no 'stopped cleanly' in the log: $(tail -3 "$KLOG")"
finish
