#!/bin/bash
# The release row's push against a registry that accepts connections and
# never answers (a python3 listener written here), for a project whose
# kilnd.conf names it:
#  - a cancel while kiln-worker push runs kills it: the row ends canceled
#    once, naming the push, and the job is canceled;
#  - a credentials file that is gone when the push starts fails the row
#    with a message saying so;
#  - a protected tag whose version is no OCI tag (v1.0.0+meta), with no
#    image.tags, is not pushed, and the release log says why.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
for tool in git go "$PY"; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

PORT=$(pick_port)
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$PORT" &
RPID=$!
stall_cleanup() {
	kill "$RPID" 2>/dev/null || true
	wait "$RPID" 2>/dev/null || true
	cleanup
}
trap stall_cleanup EXIT

REPO=$(make_repo app "$SRCDIR/tests/fixtures/go-hello")
git -C "$REPO" tag v1.0.0+meta
printf 'machine 127.0.0.1 login ci password pw\n' >"$T/creds"
chmod 600 "$T/creds"
cat >"$T/kilnd.conf" <<EOF2
[kilnd]
allow_local_repos = yes

[project app]
repo = $REPO
refs = refs/heads/* refs/tags/*
protected_refs = refs/heads/main refs/tags/*
credentials = $T/creds
registry = 127.0.0.1:$PORT/team/app
registry_insecure = yes
EOF2
start_kilnd -c "$T/kilnd.conf"

post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"image\": {\"name\": \"app\", \"tags\": [\"one\", \"two\"]}}"
expect_status 201 "a release with an image is accepted"
ID=$(printf '%s' "$BODY" | jq -r .id)
pushing=
for _ in $(seq 1 3000); do
	api GET "/v1/jobs/$ID/targets/release/log"
	[ "$STATUS" = 200 ] && grep -q '^\[kiln\] \$ kiln-worker push ' <<<"$BODY" &&
		{ pushing=1; break; }
	api GET "/v1/jobs/$ID"
	case $(jq -r .state <<<"$BODY") in succeeded|failed|canceled) break ;; esac
	sleep 0.2
done
[ -n "$pushing" ] && ok "the release row is pushing" || fail "no push: $BODY"
api POST "/v1/jobs/$ID/cancel"
wait_job "$ID" 120
expect_json .state canceled "the job is canceled"
expect_json '.targets[-1].state' canceled "its release row is canceled"
expect_json '.targets[-1].error' "canceled while it pushed" "the row says it was pushing"
n=$(grep -c "job $ID release: canceled: canceled while it pushed" "$KLOG")
[ "$n" = 1 ] && ok "the row ended once" || fail "ended $n times: $(grep "job $ID" "$KLOG")"

# The credentials file is gone.
rm -f "$T/creds"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"image\": {\"name\": \"app\", \"tags\": [\"three\"]}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 600
expect_json .state failed "a push without its credentials fails the job"
expect_json '.targets[-1].error | test("credentials")' true "the row names the credentials"

# A version that is no tag, and no tags asked for.
printf 'machine 127.0.0.1 login ci password pw\n' >"$T/creds"
chmod 600 "$T/creds"
post_job "{\"repo\": \"$REPO\", \"ref\": \"refs/tags/v1.0.0+meta\", \"targets\": [\"linux/amd64\"],
    \"image\": {\"name\": \"app\"}}"
expect_status 201 "a release of a tag is accepted"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 600
api GET "/v1/jobs/$ID/targets/release/log"
grep -q "image: not pushed to 127.0.0.1:$PORT/team/app: .*1.0.0+meta" <<<"$BODY" &&
	ok "the log says why the image is not pushed" ||
	fail "no word of the push: $(grep -i 'push\|image' <<<"$BODY" | tail -5)"
api GET "/v1/jobs/$ID"
expect_json .state succeeded "the job itself succeeds"
finish
