# Helpers for the tests of a farm: kilnd hosts h1..hN on one PostgreSQL
# queue, each on its own port with its own state directory $T/sN and
# configuration $T/hN.conf.  Sourced after lib.sh (which sets T and
# checks KILND); the test runs the server and sets PGURL before it starts
# a host.
#   farm_keys N          one signing key for the farm (kilnd --keygen
#                        into $T/key), installed into $T/s1..$T/sN, as an
#                        operator would copy it
#   start_host N EXTRA   kilnd hN, once it listens
#   on N                 point lib.sh's helpers (URL) at hN
# Uses PGURL, KILND, T; sets HPORT[N], HURL[N], HPID[N], HLOG[N].  The
# test's EXIT trap stops what HPID[] still names.

declare -a HPID=() HURL=() HPORT=() HLOG=()

farm_keys() {
	local i
	"$KILND" --keygen -d "$T/key" >/dev/null
	for i in $(seq 1 "$1"); do
		mkdir -p "$T/s$i"
		chmod 0750 "$T/s$i"
		install -m 0600 "$T/key/kiln.key" "$T/s$i/kiln.key"
		install -m 0644 "$T/key/kiln.pub" "$T/s$i/kiln.pub"
	done
}

# start_host N "EXTRA CONF TEXT": writes $T/hN.conf, its [kilnd] section
# (the farm's database, host_name hN, base_url on its port) followed by
# the text given (more [kilnd] keys, further sections), and starts kilnd
# hN; waits until it listens.  A restart keeps the host's port (HPORT[N]
# set); unset HPORT[N] for a new one.  A port taken meanwhile is picked
# again.  On failure prints the host's log and returns 1.
start_host() {
	local i=$1 extra=${2:-} try
	for try in 1 2 3; do
		[ -n "${HPORT[$i]:-}" ] || HPORT[$i]=$(pick_port)
		HURL[$i]=http://127.0.0.1:${HPORT[$i]}
		printf '[kilnd]\nallow_local_repos = yes\ndatabase = %s\n' "$PGURL" \
		    >"$T/h$i.conf"
		printf 'host_name = h%s\nbase_url = %s\n' "$i" "${HURL[$i]}" \
		    >>"$T/h$i.conf"
		[ -z "$extra" ] || printf '%s\n' "$extra" >>"$T/h$i.conf"
		HLOG[$i]=$T/kilnd.h$i.$RANDOM.log
		"$KILND" -c "$T/h$i.conf" -l "127.0.0.1:${HPORT[$i]}" -d "$T/s$i" \
		    2>"${HLOG[$i]}" &
		HPID[$i]=$!
		for _ in $(seq 1 400); do
			grep -q 'listening on http://' "${HLOG[$i]}" && return 0
			kill -0 "${HPID[$i]}" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "${HPID[$i]}" 2>/dev/null; then
			echo "h$i did not start listening:" >&2
			cat "${HLOG[$i]}" >&2
			return 1
		fi
		wait "${HPID[$i]}" 2>/dev/null || true
		HPID[$i]=
		grep -qi 'address already in use' "${HLOG[$i]}" || break
		HPORT[$i]=
	done
	echo "h$i exited during start:" >&2
	cat "${HLOG[$i]}" >&2
	return 1
}

on() {
	URL=${HURL[$1]}
}
