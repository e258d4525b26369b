#!/bin/bash
# tests/pgcluster.sh: a throwaway PostgreSQL 15 server for the tests of
# the PostgreSQL queue and of a farm of hosts.  Everything lives in DIR, a
# directory the caller made (mktemp -d); it is fast and unsafe on purpose
# (no fsync, trust authentication on loopback), never for real data.
#
#   tests/pgcluster.sh start DIR              initdb the first time, start,
#                                             print the URL of database kiln
#   tests/pgcluster.sh stop DIR [fast|immediate]
#   tests/pgcluster.sh restart DIR [fast|immediate]   stop, start, print URL
#   tests/pgcluster.sh url DIR                print the URL of database kiln
#   tests/pgcluster.sh createdb DIR NAME      a new database NAME owned by
#                                             kiln; print its URL
#
# The URL is postgresql://kiln@127.0.0.1:PORT/kiln.  PORT is chosen once,
# below the kernel's ephemeral range (so that no client's outgoing
# connection can be holding it), and kept in DIR/port: a restart keeps
# the URL.  Clients connect over TCP; the server's own Unix socket
# directory, DIR/pg/s, is reachable by root and postgres only.
#
# initdb and pg_ctl refuse to run as root, so as root they run as the
# postgres user (runuser); that user must be able to reach DIR, so DIR
# and its parents get go+x where they lack it (never / or /tmp).  As the
# postgres user itself the script runs them directly; as anyone else it
# refuses.  PGBIN overrides where the server's programs are.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ME=pgcluster

usage() {
	echo "usage: $0 start DIR | stop DIR [fast|immediate] |" \
	    "restart DIR [fast|immediate] | url DIR | createdb DIR NAME" >&2
	exit 2
}

# The end of the server's log (or of initdb's) explains most failures.
die() {
	echo "$ME: $*" >&2
	local f
	for f in "${LOGS[@]}"; do
		[ -s "$f" ] || continue
		echo "$ME: last lines of $f:" >&2
		tail -n 20 "$f" | sed 's/^/  /' >&2
	done
	exit 1
}
LOGS=()

# A mistake of the caller's: the server's log has nothing to add.
fail() {
	echo "$ME: $*" >&2
	exit 1
}

# Runs a server program as the postgres user.  cd / first: the caller's
# working directory may be one postgres cannot enter.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

check_user() {
	[ "$(id -u)" -eq 0 ] && return 0
	[ "$(id -un)" = postgres ] && return 0
	fail "needs root (runuser -u postgres) or the postgres user:" \
	    "initdb and pg_ctl must run as postgres"
}

# setdir DIR: the absolute paths of everything in the cluster.
setdir() {
	[ -d "$1" ] || fail "$1: no such directory"
	D=$(cd "$1" && pwd -P)
	PG=$D/pg
	DATA=$PG/data
	SOCK=$PG/s
	SLOG=$PG/server.log
	LOGS=("$SLOG")
	# A Unix socket path holds at most 107 bytes: the server's is
	# $SOCK/.s.PGSQL.NNNNN.
	if [ $((${#SOCK} + 15)) -gt 107 ]; then
		fail "$D: too long a path for the server's Unix socket" \
		    "($SOCK/.s.PGSQL.NNNNN must fit 107 bytes); use a" \
		    "directory made by mktemp -d under /tmp"
	fi
}

port() {
	[ -s "$D/port" ] || fail "$D: no cluster here (start it first)"
	cat "$D/port"
}

url() {
	local p
	p=$(port) || exit 1
	echo "postgresql://kiln@127.0.0.1:$p/${1:-kiln}"
}

# psql as the superuser over loopback TCP (trust authentication): works
# for root and postgres alike, without the socket directory.
admin() {
	local p
	p=$(port) || exit 1
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p" \
	    -U postgres -d postgres "$@"
}

running() {
	[ -f "$DATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# postgres must be able to traverse DIR and every directory above it.
# Each one that lacks the search bit for others gets it (go+x, so a
# mktemp -d directory becomes 0711); / and /tmp are never changed.
reachable() {
	as_pg test -x "$D" && return 0
	[ "$(id -u)" -eq 0 ] || die "postgres cannot reach $D"
	local d=$D mode
	while [ "$d" != / ] && [ -n "$d" ]; do
		if [ "$d" != /tmp ]; then
			mode=$(stat -c %a "$d")
			if [ $((8#$mode & 1)) -eq 0 ]; then
				[ "$d" = "$D" ] ||
					echo "$ME: chmod go+x $d (postgres must traverse it)" >&2
				chmod go+x "$d" || die "cannot chmod go+x $d"
			fi
		fi
		d=$(dirname "$d")
	done
	as_pg test -x "$D" ||
		die "postgres still cannot reach $D (check / and /tmp, ACLs, mount options)"
}

# A port below the ephemeral range that nothing listens on now.  Another
# cluster may take it before this one binds it; start then picks again.
pick_port() {
	local lo=15000 hi p tries
	hi=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
	[ "$hi" -gt $((lo + 1000)) ] || lo=1025
	for tries in $(seq 50); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		[ "$p" -ne 5432 ] || continue
		if command -v ss >/dev/null; then
			[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || continue
		fi
		echo "$p"
		return 0
	done
	die "no free port between $lo and $hi after $tries tries"
}

initdb_once() {
	[ -f "$DATA/PG_VERSION" ] && return 0
	if [ "$(id -u)" -eq 0 ]; then
		install -d -o postgres -g postgres -m 0700 "$PG" ||
			die "cannot make $PG for postgres"
	else
		[ -d "$PG" ] || mkdir -m 0700 "$PG"
	fi
	as_pg rm -rf "$DATA" "$SOCK"
	as_pg mkdir -m 0700 "$SOCK" || die "cannot make $SOCK as postgres"
	LOGS=("$PG/initdb.log")
	if ! as_pg env LC_ALL=C.UTF-8 "$PGBIN/initdb" -D "$DATA" -U postgres \
	    --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync \
	    >"$PG/initdb.log" 2>&1; then
		as_pg rm -rf "$DATA"
		die "initdb of $DATA failed"
	fi
	LOGS=("$SLOG")
	# A test's data must survive a crash of the server (stop immediate),
	# not one of the machine: the page cache is enough, so nothing is
	# flushed to disk (fsync off).  synchronous_commit stays on: off, a
	# commit returns before its WAL is even written to the page cache,
	# and an immediate stop right after it loses the transaction (seen
	# here: every row committed just before the stop was gone).  One
	# socket directory per cluster, so that several run at once.
	cat <<-EOF | as_pg tee -a "$DATA/postgresql.conf" >/dev/null ||
		# tests/pgcluster.sh: a throwaway cluster.
		fsync = off
		full_page_writes = off
		shared_buffers = 32MB
		max_connections = 100
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$SOCK'
		port = $(port)
	EOF
		die "cannot write $DATA/postgresql.conf"
}

# pg_start: 0 when the server runs.  Otherwise TAKEN says whether the
# port was the trouble (another program holds it), from what this start
# added to the server's log.
pg_start() {
	local off
	off=$(stat -c %s "$SLOG" 2>/dev/null || echo 0)
	TAKEN=no
	as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$SLOG" -w -t 60 start \
	    >"$PG/pg_ctl.out" 2>&1 && return 0
	if tail -c +$((off + 1)) "$SLOG" 2>/dev/null |
	    grep -q 'could not bind\|could not create any TCP/IP sockets'; then
		TAKEN=yes
	fi
	return 1
}

cmd_start() {
	local p tries=0
	check_user
	reachable
	if [ ! -s "$D/port" ]; then
		pick_port > "$D/port.tmp"
		mv "$D/port.tmp" "$D/port"
	fi
	initdb_once
	while ! running && ! pg_start; do
		p=$(port)
		# Only a first start may move: a kept port is part of the URL.
		if [ "$TAKEN" = yes ] && [ -f "$D/ready" ]; then
			die "port $p is taken by another program; the cluster in" \
			    "$D keeps its port (its URL), so free the port"
		fi
		if [ "$TAKEN" = no ] || [ $((tries += 1)) -ge 5 ]; then
			cat "$PG/pg_ctl.out" >&2
			die "cannot start the server in $DATA on port $p"
		fi
		p=$(pick_port)
		echo "$ME: port $(port) taken, trying $p" >&2
		echo "$p" > "$D/port"
		as_pg sed -i "s/^port = .*/port = $p/" "$DATA/postgresql.conf"
	done
	if [ ! -f "$D/ready" ]; then
		admin -c "DO \$\$ BEGIN
			IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kiln') THEN
				CREATE ROLE kiln LOGIN;
			END IF; END \$\$" || die "cannot create the role kiln"
		if [ -z "$(admin -c "SELECT 1 FROM pg_database WHERE datname = 'kiln'")" ]; then
			admin -c "CREATE DATABASE kiln OWNER kiln" ||
				die "cannot create the database kiln"
		fi
		: > "$D/ready"
	fi
	url
}

# mode: fast (sessions end with FATAL 57P01, open transactions roll back)
# or immediate (no shutdown at all: the next start recovers, like after a
# crash).  Stopping a stopped cluster is not an error.
cmd_stop() {
	local mode=${1:-fast}
	case $mode in
	fast|immediate) ;;
	*) usage ;;
	esac
	check_user
	[ -f "$DATA/PG_VERSION" ] || fail "$D: no cluster here"
	running || return 0
	as_pg "$PGBIN/pg_ctl" -D "$DATA" -m "$mode" -w -t 60 stop >/dev/null ||
		die "cannot stop the server in $DATA ($mode)"
}

cmd_createdb() {
	local name=$1
	case $name in
	''|[!a-z_]*|*[!a-z0-9_]*)
		fail "database name \"$name\": use [a-z_][a-z0-9_]*" ;;
	esac
	[ ${#name} -le 63 ] || fail "database name \"$name\": longer than 63 bytes"
	check_user
	if ! admin -c "CREATE DATABASE $name OWNER kiln"; then
		running || fail "the server in $D is not running (start it first)"
		# psql has said why.
		fail "cannot create the database $name"
	fi
	url "$name"
}

[ $# -ge 2 ] || usage
cmd=$1
setdir "$2"
shift 2
[ -x "$PGBIN/pg_ctl" ] || fail "$PGBIN/pg_ctl missing: install postgresql-15 (scripts/bootstrap)"
case $cmd in
start)		[ $# -eq 0 ] || usage; cmd_start ;;
stop)		[ $# -le 1 ] || usage; cmd_stop "${1-}" ;;
restart)	[ $# -le 1 ] || usage; cmd_stop "${1-}"; cmd_start ;;
url)		[ $# -eq 0 ] || usage; url ;;
createdb)	[ $# -eq 1 ] || usage; cmd_createdb "$1" ;;
*)		usage ;;
esac
