#!/bin/bash
# Two kilnd hosts on one PostgreSQL queue that share one store directory,
# as kilnd.conf(5) "A farm of hosts" describes (an NFS mount at each
# host's STATE/store; here a symlink to one directory):
#   1. jobs submitted to h1 are built on both hosts, and every artifact
#      is served by BOTH with 200 (no 307: the blob is in the store each
#      reads), its content the digest the artifact row records;
#      SHA256SUMS verifies with minisign -V and sha256sum -c;
#   2. a retention sweep (sweep_interval 2 s) on either host, with every
#      blob made older than the sweep's grace, removes a blob no job
#      names and keeps every blob that a job of either host names.
# Needs root: initdb and pg_ctl run as the postgres user.
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/farmlib.sh"

PGCLUSTER=$SRCDIR/tests/pgcluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/pg_ctl" ] || { echo "SKIP: $PGBIN/pg_ctl missing (postgresql-15)"; exit 77; }
for tool in git minisign sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

PGD=$(mktemp -d /tmp/kiln-shared-pg.XXXXXX)

shared_cleanup() {
	local i
	for i in 1 2; do
		if [ -n "${HPID[$i]:-}" ] && kill -0 "${HPID[$i]}" 2>/dev/null; then
			kill -KILL "${HPID[$i]}" 2>/dev/null || true
			wait "${HPID[$i]}" 2>/dev/null || true
		fi
	done
	"$PGCLUSTER" stop "$PGD" immediate >/dev/null 2>&1 || true
	rm -rf "$PGD"
	cleanup
}
trap shared_cleanup EXIT

PGURL=$("$PGCLUSTER" start "$PGD")

# One key and one store for the farm; each state directory of its own.
farm_keys 2
PUB=$T/key/kiln.pub
mkdir -p "$T/shared"
for i in 1 2; do
	ln -s "$T/shared" "$T/s$i/store"
done

for i in 1 2; do
	start_host "$i" "workers = 2
sweep_interval = 2" || { fail "h$i does not start"; exit 1; }
done
ok "two hosts on one PostgreSQL, one store directory"

mkdir -p "$T/src"
echo shared >"$T/src/README"
REPO=$(make_repo src "$T/src")
# Each build's output differs: a blob is stored by the host that built it.
JOB=$(printf '{"repo": "%s", "ref": "main", "cache": false,
    "targets": ["linux/amd64", "linux/arm64", "linux/riscv64"],
    "recipe": {"kind": "command", "command": "%s"}}' "$REPO" \
    'sleep 0.3; echo $KILN_TARGET $$ $(date +%N) > /out/ok')
URL=${HURL[1]}
IDS=
for _ in 1 2 3 4; do
	post_job "$JOB"
	[ "$STATUS" = 201 ] || fail "POST: $STATUS $BODY"
	IDS="$IDS $(printf '%s' "$BODY" | jq -r .id)"
done
for id in $IDS; do
	wait_job "$id" 120 || continue
	expect_json .state succeeded "job $id"
done
HOSTS=$(for id in $IDS; do
	api GET "/v1/jobs/$id"
	printf '%s' "$BODY" | jq -r '.targets[].host'
done | sort -u | tr '\n' ' ')
[ "$HOSTS" = "h1 h2 " ] && ok "the 12 targets were built on both hosts" ||
	fail "targets built on: '$HOSTS'"

# ---- 1. every artifact from both hosts, 200 -----------------------------
n=0
for id in $IDS; do
	api GET "/v1/jobs/$id/artifacts"
	ARTS=$BODY
	while read -r sum url; do
		for h in 1 2; do
			code=$(curl -s -o "$T/a" -w '%{http_code}' "${HURL[$h]}$url") || code=000
			[ "$code" = 200 ] && [ "$(sha256sum <"$T/a" | cut -c1-64)" = "$sum" ] &&
				n=$((n + 1)) ||
				fail "$url from h$h: $code, sha256 $(sha256sum <"$T/a" | cut -c1-64), not $sum"
		done
	done < <(printf '%s' "$ARTS" | jq -r '.artifacts[] | "\(.sha256) \(.url)"')
	d=$T/v/$id
	mkdir -p "$d"
	for h in 1 2; do
		mkdir -p "$d/h$h"
		for f in SHA256SUMS SHA256SUMS.minisig; do
			curl -sfL -o "$d/h$h/$f" "${HURL[$h]}/v1/jobs/$id/$f" ||
				fail "job $id: h$h does not serve $f"
		done
		minisign -V -q -p "$PUB" -m "$d/h$h/SHA256SUMS" -x "$d/h$h/SHA256SUMS.minisig" ||
			fail "job $id: minisign -V of SHA256SUMS from h$h"
		while read -r sum path; do
			mkdir -p "$d/h$h/${path%/*}"
			curl -sf -o "$d/h$h/$path" "${HURL[$h]}/v1/jobs/$id/artifacts/$path" ||
				fail "job $id: h$h does not serve $path"
		done <"$d/h$h/SHA256SUMS"
		(cd "$d/h$h" && sha256sum --quiet -c SHA256SUMS) ||
			fail "job $id: sha256sum -c of the files from h$h"
	done
done
[ $n -eq 24 ] && ok "each of the 12 artifacts is served by both hosts: 200, its digest"

# ---- 2. a sweep keeps what the jobs of either host name -----------------
WANT=$(for id in $IDS; do
	api GET "/v1/jobs/$id/artifacts"
	printf '%s' "$BODY" | jq -r '.artifacts[].sha256'
done | sort -u)
# A blob no job names, and every blob older than the sweep's grace.
STRAY=$(printf 'no job names this %s\n' "$RANDOM" | sha256sum | cut -c1-64)
mkdir -p "$T/shared/sha256/${STRAY:0:2}"
printf 'no job names this\n' >"$T/shared/sha256/${STRAY:0:2}/$STRAY"
find "$T/shared/sha256" -type f -exec touch -d '-1 hour' {} +
swept=
for _ in $(seq 1 100); do
	[ -e "$T/shared/sha256/${STRAY:0:2}/$STRAY" ] || { swept=1; break; }
	sleep 0.1
done
[ -n "$swept" ] && ok "a sweep removed the blob no job names ($(grep -l 'blob(s) removed' "$T"/kilnd.h*.log | sed 's/.*kilnd\.\(h[0-9]*\)\..*/\1/' | tr '\n' ' '))" ||
	fail "the stray blob is still in the shared store"
# Both hosts swept meanwhile (every 2 s).
sleep 4
missing=
for sum in $WANT; do
	[ -f "$T/shared/sha256/${sum:0:2}/$sum" ] || missing="$missing $sum"
done
[ -z "$missing" ] && ok "both hosts swept; the $(echo "$WANT" | wc -l) blobs the jobs name are all kept" ||
	fail "blobs swept though a job names them:$missing"
for h in 1 2; do
	grep -q "retention sweep failed" "${HLOG[$h]}" &&
		fail "h$h: $(grep 'retention sweep failed' "${HLOG[$h]}" | head -1)"
	code=$(curl -s -o /dev/null -w '%{http_code}' "${HURL[$h]}$(printf '%s' "$ARTS" | jq -r '.artifacts[0].url')")
	[ "$code" = 200 ] || fail "after the sweeps, h$h answers $code for an artifact"
done

for h in 1 2; do
	kill -TERM "${HPID[$h]}"
	code=0
	wait "${HPID[$h]}" || code=$?
	HPID[$h]=
	[ $code -eq 0 ] && ok "h$h stops cleanly" || fail "h$h exit $code"
done
finish
