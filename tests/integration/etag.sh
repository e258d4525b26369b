#!/bin/bash
# ETag and If-None-Match on job resources, as a poller uses them:
# GET /v1/jobs/{id} and GET /v1/jobs carry a strong ETag; sending it back
# in If-None-Match (alone, in a list, weak, or *) gets 304 with the same
# ETag and no body while nothing changed; when the job changes (a build
# finishes it, a new job joins the list) the tag changes and 200 with
# the new body comes back.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }

REPO=$(make_repo c-hello "$SRCDIR/tests/fixtures/c-hello")
start_kilnd -c "$PAUSED_CONF"

JOB="{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"echo hi > /out/hi\"}}"
post_job "$JOB"
expect_status 201 "submit"
ID=$(printf '%s' "$BODY" | jq -r .id)

# get_if PATH IF-NONE-MATCH [METHOD]: sets STATUS, BODY, HEADERS, TAG.
get_if() {
	api "${3:-GET}" "$1" ${2:+-H "If-None-Match: $2"}
	TAG=$(header ETag)
}

get_if "/v1/jobs/$ID"
expect_status 200 "GET the job"
E1=$TAG
[[ "$E1" =~ ^\"[0-9a-f]{32}\"$ ]] && ok "strong ETag, 16 bytes in hex, quoted: $E1" ||
	fail "ETag '$E1'"
[ "$(header Cache-Control)" = "private, no-cache" ] &&
	ok "Cache-Control: private, no-cache (keep, but ask again)" ||
	fail "Cache-Control '$(header Cache-Control)'"
FIRST=$BODY
get_if "/v1/jobs/$ID"
[ "$TAG" = "$E1" ] && [ "$BODY" = "$FIRST" ] && ok "the same job twice: the same ETag" ||
	fail "second GET: ETag '$TAG' (first $E1)"

get_if "/v1/jobs/$ID" "$E1"
expect_status 304 "If-None-Match with the ETag"
[ -z "$BODY" ] && ok "304 has no body" || fail "304 body: $BODY"
[ "$TAG" = "$E1" ] && ok "304 carries the same ETag" || fail "304 ETag '$TAG', expected $E1"
get_if "/v1/jobs/$ID" "\"0123\", $E1"
expect_status 304 "If-None-Match with a list holding the ETag"
get_if "/v1/jobs/$ID" "W/$E1"
expect_status 304 "If-None-Match with the weak form (weak comparison)"
get_if "/v1/jobs/$ID" "*"
expect_status 304 "If-None-Match: *"
get_if "/v1/jobs/$ID" "$E1" HEAD
expect_status 304 "HEAD with If-None-Match"
get_if "/v1/jobs/$ID" "\"00000000000000000000000000000000\""
expect_status 200 "If-None-Match with another tag"
[ "$BODY" = "$FIRST" ] && ok "200 with the job" || fail "body: $BODY"
get_if "/v1/jobs/$ID" "${E1%\"}x\""
expect_status 200 "If-None-Match with a tag that only starts like it"

# Another job has another tag; an unknown job is a 404 without one.
post_job "$JOB"
ID2=$(printf '%s' "$BODY" | jq -r .id)
get_if "/v1/jobs/$ID2" "$E1"
expect_status 200 "job $ID2 with job $ID's ETag"
[ -n "$TAG" ] && [ "$TAG" != "$E1" ] && ok "job $ID2 has its own ETag" ||
	fail "job $ID2 ETag '$TAG'"
get_if "/v1/jobs/999999" "*"
expect_status 404 "an unknown job with If-None-Match: *"
[ -z "$TAG" ] && ok "a 404 has no ETag" || fail "404 ETag '$TAG'"

# The list: its own tag, which changes when a job joins it.
get_if "/v1/jobs?limit=10"
expect_status 200 "GET /v1/jobs"
L1=$TAG
[[ "$L1" =~ ^\"[0-9a-f]{32}\"$ ]] && ok "the list has a strong ETag" || fail "list ETag '$L1'"
get_if "/v1/jobs?limit=10" "$L1"
expect_status 304 "the unchanged list with its ETag"
[ -z "$BODY" ] && [ "$TAG" = "$L1" ] && ok "no body, the same ETag" ||
	fail "list 304: ETag '$TAG', body '$BODY'"
post_job "$JOB"
ID3=$(printf '%s' "$BODY" | jq -r .id)
get_if "/v1/jobs?limit=10" "$L1"
expect_status 200 "the list after job $ID3 joined, with the old ETag"
[ "$TAG" != "$L1" ] && ok "the list's ETag changed" || fail "list ETag unchanged: $TAG"
expect_json '.jobs[0].id' "$ID3" "the new list"

# A build finishes the job: the old tag no longer matches.
api POST /v1/admin/resume
expect_status 200 "resume builds"
wait_job "$ID" 120
expect_json .state succeeded "job $ID"
# Signing follows the build and changes the job too ("signed"): wait
# for it, so that nothing changes the job between the next requests.
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$ID"
	[ "$(printf '%s' "$BODY" | jq -r .signed)" = true ] && break
	sleep 0.1
done
expect_json .signed true "job $ID"
get_if "/v1/jobs/$ID" "$E1"
expect_status 200 "the finished job with the queued job's ETag"
E2=$TAG
expect_json .state succeeded "200 with the job as it is now"
[ -n "$E2" ] && [ "$E2" != "$E1" ] && ok "the ETag changed: $E1 -> $E2" ||
	fail "ETag after the build '$E2' (before $E1)"
get_if "/v1/jobs/$ID" "$E2"
expect_status 304 "the finished job with its new ETag"

stop_kilnd TERM
finish
