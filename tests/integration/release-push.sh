#!/bin/bash
# A project whose kilnd.conf section names a registry: its release image
# is pushed there by the release row (kiln-worker push, with the
# project's credentials file), for each of the image's tags; skopeo reads
# both platforms back from Debian's docker-registry, started here with
# htpasswd authentication.  A branch that is not protected builds its
# image but does not push it.
. "$(dirname "$0")/lib.sh"

REG=/usr/bin/docker-registry
PY=/usr/bin/python3
for tool in git go skopeo "$REG" "$PY"; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
HASH=$("$PY" -W ignore -c 'import crypt; print(crypt.crypt("r3lease-pw", crypt.mksalt(crypt.METHOD_BLOWFISH)))' 2>/dev/null)
case "$HASH" in
'$2'*) ;;
*) echo "SKIP: python3's crypt makes no bcrypt hash for htpasswd"; exit 77 ;;
esac

PORT=$(pick_port)
mkdir -p "$T/reg"
echo "ci:$HASH" >"$T/htpasswd"
cat >"$T/reg.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $T/reg
http:
  addr: 127.0.0.1:$PORT
auth:
  htpasswd:
    realm: kiln-test
    path: $T/htpasswd
EOF
"$REG" serve "$T/reg.yml" >"$T/reg.log" 2>&1 &
RPID=$!
push_cleanup() {
	kill "$RPID" 2>/dev/null || true
	wait "$RPID" 2>/dev/null || true
	cleanup
}
trap push_cleanup EXIT
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && break
	sleep 0.1
done

REPO=$(make_repo app "$SRCDIR/tests/fixtures/go-hello")
git -C "$REPO" branch feature
printf 'machine 127.0.0.1 login ci password r3lease-pw\n' >"$T/creds"
chmod 600 "$T/creds"
cat >"$T/kilnd.conf" <<EOF
[kilnd]
allow_local_repos = yes

[project app]
repo = $REPO
refs = refs/heads/*
protected_refs = refs/heads/main
credentials = $T/creds
registry = 127.0.0.1:$PORT/team/app
registry_insecure = yes
EOF
start_kilnd -c "$T/kilnd.conf"

post_job "{\"repo\": \"$REPO\", \"ref\": \"main\",
    \"targets\": [\"linux/amd64\", \"linux/arm64\"],
    \"image\": {\"name\": \"app\", \"entrypoint\": [\"/go-hello\"],
    \"tags\": [\"edge\", \"stable\"]}}"
expect_status 201 "a release with an image for a project with a registry"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 600
expect_json .state succeeded "the job succeeds"
expect_json '.targets[-1].state' succeeded "its release row pushed and published"
for tag in edge stable; do
	raw=$(skopeo inspect --raw --tls-verify=false --creds ci:r3lease-pw \
	    "docker://127.0.0.1:$PORT/team/app:$tag" 2>"$T/skopeo.err")
	[ "$(printf %s "$raw" | jq -r '[.manifests[].platform.architecture] | sort | join(",")')" = amd64,arm64 ] &&
		ok "skopeo reads the index of team/app:$tag, amd64 and arm64" ||
		fail "team/app:$tag: $raw $(cat "$T/skopeo.err")"
done
skopeo inspect --tls-verify=false --creds ci:r3lease-pw --override-arch arm64 \
    "docker://127.0.0.1:$PORT/team/app:edge" >"$T/arm.json" 2>"$T/skopeo.err" &&
	[ "$(jq -r .Architecture "$T/arm.json")" = arm64 ] &&
	ok "the arm64 image resolves through the index" ||
	fail "arm64: $(cat "$T/arm.json" "$T/skopeo.err")"
# The pushed index is the one in the release's layout tar.
f=$(printf '%s' "$BODY" | jq -r '.targets[-1].artifacts[] | select(.name | endswith(".oci.tar")) | .name')
curl -sSf -o "$T/layout.tar" "$URL/v1/jobs/$ID/artifacts/release/$f"
want=$(skopeo inspect --raw "oci-archive:$T/layout.tar:app" | sha256sum | cut -c1-64)
got=$(skopeo inspect --raw --tls-verify=false --creds ci:r3lease-pw \
    "docker://127.0.0.1:$PORT/team/app:stable" | sha256sum | cut -c1-64)
[ -n "$want" ] && [ "$want" = "$got" ] &&
	ok "the registry serves the release's own image index (sha256:${got:0:12})" ||
	fail "index differs: $want vs $got"
api GET "/v1/jobs/$ID/targets/release/log"
grep -q '"pushed":"127.0.0.1:'"$PORT"'/team/app:stable"' <<<"$BODY" &&
	ok "the release log shows each push" || fail "log: $(tail -5 <<<"$BODY")"

# An unprotected branch: the image is made, not pushed.
post_job "{\"repo\": \"$REPO\", \"ref\": \"feature\", \"targets\": [\"linux/amd64\"],
    \"image\": {\"name\": \"app\", \"tags\": [\"feature\"]}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 600
expect_json .state succeeded "the branch's job succeeds"
api GET "/v1/jobs/$ID/targets/release/log"
grep -q "image: not pushed to 127.0.0.1:$PORT/team/app: refs/heads/feature is not a protected ref" <<<"$BODY" &&
	ok "the log says why the image is not pushed" || fail "log: $BODY"
skopeo inspect --raw --tls-verify=false --creds ci:r3lease-pw \
    "docker://127.0.0.1:$PORT/team/app:feature" >/dev/null 2>&1 &&
	fail "the unprotected branch's image was pushed" ||
	ok "nothing was pushed for the unprotected branch"

# Wrong credentials: the release row fails, naming the push.
printf 'machine 127.0.0.1 login ci password wrong\n' >"$T/creds"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"image\": {\"name\": \"app\", \"tags\": [\"nope\"]}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 600
expect_json .state failed "a push the registry refuses fails the job"
expect_json '.targets[-1].error | startswith("push of the image to 127.0.0.1:'"$PORT"'/team/app:nope failed: ")' true \
	"the release row names the push"
finish
