# pick_port: print a port below the kernel's ephemeral range that nothing
# listens on now.  A test's own server, or a kilnd whose base_url must be
# known before it starts, gets one; never a random port in the ephemeral
# range, where a kilnd on port 0 or any client's outgoing connection of a
# test running beside this one may be holding it.  Sourced by
# tests/integration/lib.sh and by the tests that do not use lib.sh.
pick_port() {
	local lo=20000 hi p
	hi=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range)
	for _ in $(seq 50); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
	done
	echo "pick_port: no free port between $lo and $hi" >&2
	return 1
}
