#!/bin/bash
# A full disk and a read-only store: kilnd's state directory on a small
# tmpfs.  A publication that does not fit fails its target with the
# reason, kilnd keeps serving, nothing half-written stays, and once space
# returns the next job succeeds.  Then the store is made read-only (a
# read-only bind mount): the same.  Needs root (mount); skipped otherwise.
. "$(dirname "$0")/../integration/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v mount >/dev/null; then
	echo "SKIP: needs root to mount a tmpfs"
	exit 77
fi
for tool in git; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
SMALL=$T/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=40M kiln-test "$SMALL" || { echo "SKIP: cannot mount a tmpfs"; exit 77; }
umount_all() {
	umount "$STATE/store/sha256" 2>/dev/null || true
	umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null || true
}
trap 'cleanup_small' EXIT
cleanup_small() {
	if [ -n "$KPID" ] && kill -0 "$KPID" 2>/dev/null; then
		kill -KILL "$KPID"; wait "$KPID" 2>/dev/null || true; KPID=
	fi
	umount_all
	cleanup
}
STATE=$SMALL/state
mkdir -p "$T/src" && echo x >"$T/src/README"
REPO=$(make_repo filler "$T/src")

# job MB: a linux/amd64 job that writes MB MiB of its own bytes to out/.
job() {
	post_job "$(jq -cn --arg r "file://$REPO" --arg c "head -c ${1}M /dev/zero | tr '\\0' '$2' > \$KILN_OUT/blob" \
		'{repo: $r, ref: "main", targets: ["linux/amd64"], recipe: {kind: "command", command: $c}}')"
	JID=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$JID" 120
}
start_kilnd -w 1

job 12 a
expect_json .state succeeded "a 12 MiB artifact fits in the 40 MiB state dir"
df -k "$SMALL" | tail -1 | sed 's/^/# /'
# 16 MiB more in the work tree, then a 16 MiB copy into the store: the
# copy does not fit, and kilnd sees it before writing a byte.
job 16 b
expect_json .targets[0].state failed "a publication that does not fit"
expect_json '.targets[0].error | test("the store.s file system has [0-9]+ bytes free; 16777216 bytes more would leave less than its free-space margin of [0-9]+ bytes")' true \
	"fails with the reason"
expect_json '.targets[0].artifacts | length' 0 "and records no artifact"
api GET /healthz
expect_status 200 "kilnd keeps serving on a full disk"
[ -z "$(ls -A "$STATE/store/tmp")" ] && ok "no half-written file stays in store/tmp" ||
	fail "store/tmp: $(ls "$STATE/store/tmp")"
bad=0
for f in $(find "$STATE/store/sha256" -type f); do
	[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || bad=1
done
[ $bad = 0 ] && ok "every blob still matches its name" || fail "a blob is damaged"

mount -o remount,size=200M "$SMALL"
job 16 c
expect_json .state succeeded "once space returns the next job succeeds"

# A read-only store.
mount --bind "$STATE/store/sha256" "$STATE/store/sha256"
mount -o remount,bind,ro "$STATE/store/sha256"
job 4 d
expect_json .targets[0].state failed "a publication into a read-only store"
expect_json '.targets[0].error | test("Read-only file system")' true "fails with the reason"
api GET /healthz
expect_status 200 "kilnd keeps serving"
api GET "/v1/jobs/1/artifacts/linux_amd64/blob"
expect_status 200 "artifacts already stored still download"
umount "$STATE/store/sha256"
job 4 e
expect_json .state succeeded "writable again: the next job succeeds"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd exits 0" || fail "exit $KEXIT"
[ "$(db 'pragma integrity_check')" = ok ] && ok "PRAGMA integrity_check: ok" || fail "integrity"
finish
