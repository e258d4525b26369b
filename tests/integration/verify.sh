#!/bin/bash
# "verify": "rebuild" through kilnd: every target is built twice in two
# different sandboxes (kiln-worker build --rebuild) and says whether the
# outputs were the same.  The Go fixture and the GoReleaser fixture are
# reproducible; a recipe that stamps the time is not, and its log names
# the file (with diffoscope's view when it is installed).  The result is
# in the job's JSON and in the signed provenance, and the build cache
# does not stand in for the second build.
. "$(dirname "$0")/lib.sh"

for tool in git go; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
GO_REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
GR_REPO=$(make_repo go-goreleaser "$SRCDIR/tests/fixtures/go-goreleaser")
start_kilnd -w 2

# A first, plain build fills the cache; the verifying job must not use it.
post_job "{\"repo\": \"$GO_REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json '.targets[0].reproducible' null "a job without verify says nothing"

post_job "{\"repo\": \"$GO_REPO\", \"ref\": \"main\", \"verify\": \"rebuild\",
    \"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\"]}"
expect_status 201 "a verifying job is accepted"
GO=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$GO" 900
expect_json .state succeeded "the Go job succeeds"
expect_json '[.targets[].reproducible] | join(",")' true,true,true \
	"the Go fixture is reproducible on every target"
expect_json '[.targets[].cached] | join(",")' false,false,false \
	"the cache does not stand in for the verifying builds"
api GET "/v1/jobs/$GO/targets/linux_amd64/log"
grep -q "verify: reproducible" <<<"$BODY" &&
	ok "the log says the second build made the same files" ||
	fail "log: $(tail -5 <<<"$BODY")"

post_job "{\"repo\": \"$GR_REPO\", \"ref\": \"main\", \"verify\": \"rebuild\",
    \"targets\": [\"linux/amd64\"]}"
GR=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$GR" 900
expect_json .state succeeded "the GoReleaser job succeeds"
expect_json '.targets[0].reproducible' true "the GoReleaser fixture is reproducible"

post_job "{\"repo\": \"$GO_REPO\", \"ref\": \"main\", \"verify\": \"rebuild\",
    \"targets\": [\"linux/amd64\"], \"recipe\": {\"kind\": \"command\",
    \"command\": \"date +%s%N > /out/stamp; echo same > /out/same\"}}"
BAD=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$BAD" 300
expect_json .state succeeded "an unreproducible build still succeeds"
expect_json '.targets[0].reproducible' false "the time stamp makes it unreproducible"
expect_json '.targets[0].differences | join(",")' stamp "the difference is named"
api GET "/v1/jobs/$BAD/targets/linux_amd64/log"
grep -q "verify: NOT reproducible: .* differs in: stamp" <<<"$BODY" &&
	ok "the log names the differing file" || fail "log: $(tail -5 <<<"$BODY")"
if command -v diffoscope >/dev/null; then
	grep -q -- "--- out/stamp" <<<"$BODY" &&
		ok "diffoscope's summary is in the log" ||
		fail "no diffoscope output: $(tail -20 <<<"$BODY")"
fi

# The provenance records the verification.
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$BAD/provenance.intoto.jsonl"
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
pred=$(printf '%s' "$BODY" | jq -r .payload | base64 -d | jq -c .predicate.buildDefinition)
[ "$(jq -r '.internalParameters.verification["linux/amd64"].reproducible' <<<"$pred")" = false ] &&
	[ "$(jq -r '.externalParameters.outputs.verify' <<<"$pred")" = rebuild ] &&
	ok "the provenance records the request and the result" ||
	fail "provenance: $pred"
finish
