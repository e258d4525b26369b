#!/bin/bash
# Every error status of the job API, each an RFC 9457 problem naming what
# was wrong, and none of them writing to the database.
. "$(dirname "$0")/lib.sh"

start_kilnd -c "$PAUSED_CONF"
count() { db "select count(*) from jobs"; }
base=$(count)

post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/amd64"'
expect_problem 400 "malformed JSON" "truncated JSON"
post_job '{"repo": "https://x/y.git", "repo": "https://x/z.git", "ref": "main", "targets": ["linux/amd64"]}'
expect_problem 400 "duplicate" "duplicate key"
post_job '[1, 2]'
expect_problem 422 "object" "not an object"
post_job '{"ref": "main", "targets": ["linux/amd64"]}'
expect_problem 422 "repo" "missing repo"
post_job '{"repo": "ftp://x/y", "ref": "main", "targets": ["linux/amd64"]}'
expect_problem 422 "repo" "ftp URL"
post_job '{"repo": "relative/path", "ref": "main", "targets": ["linux/amd64"]}'
expect_problem 422 "repo" "relative path"
post_job '{"repo": "http://127.0.0.1:/r.git", "ref": "main", "targets": ["linux/amd64"]}'
expect_problem 422 "repo: the URL's port is empty" "an http URL with an empty port"
post_job '{"repo": "https://host:/x.git", "ref": "main", "targets": ["linux/amd64"]}'
expect_problem 422 "repo: the URL's port is empty" "an https URL with an empty port"
post_job '{"repo": "https://host:99999/x.git", "ref": "main", "targets": ["linux/amd64"]}'
expect_problem 422 "repo: the URL's port is not a number from 1 to 65535" "a port past 65535"
post_job '{"repo": "https://x/y.git", "ref": "a..b", "targets": ["linux/amd64"]}'
expect_problem 422 "ref" "bad ref"
post_job '{"repo": "https://x/y.git", "ref": 7, "targets": ["linux/amd64"]}'
expect_problem 422 "ref" "ref of the wrong type"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": []}'
expect_problem 422 "targets" "empty target list"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/vax"]}'
expect_problem 422 "linux/vax" "unknown target"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["android/arm64"]}'
expect_problem 422 "cgo" "android needs cgo"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/arm/v9"]}'
expect_problem 422 "variant" "bad arm variant"
many=$(printf '"linux/amd64",%.0s' $(seq 1 65)); many="[${many%,}]"
post_job "{\"repo\": \"https://x/y.git\", \"ref\": \"main\", \"targets\": $many}"
expect_problem 422 "64" "65 targets"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/amd64"], "priority": "high"}'
expect_problem 422 "priority" "priority of the wrong type"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/amd64"], "recipe": {"kind": "make"}}'
expect_problem 422 "recipe.kind" "unknown recipe kind"
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/amd64"], "colour": "blue"}'
expect_problem 422 "colour" "unknown field"

api POST /v1/jobs -H 'Content-Type: text/plain' --data-binary '{}'
expect_problem 415 "application/json" "text/plain body"
api POST /v1/jobs --data-binary '{}' -H 'Content-Type:'
expect_problem 415 "application/json" "no Content-Type"

# 413: a declared Content-Length over 1 MiB is refused before the body is
# read; a chunked body is counted and refused once past the limit.
head -c 1100000 /dev/zero | tr '\0' ' ' > "$T/big"
api POST /v1/jobs -H 'Content-Type: application/json' --data-binary @"$T/big"
expect_problem 413 "max_body" "1.1 MB body with Content-Length"
api POST /v1/jobs -H 'Content-Type: application/json' \
	-H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
expect_problem 413 "max_body" "1.1 MB chunked body"
# Just under the limit is parsed (and fails as JSON, not as size).
head -c 1000000 /dev/zero | tr '\0' ' ' > "$T/under"; echo '{' >> "$T/under"
api POST /v1/jobs -H 'Content-Type: application/json' --data-binary @"$T/under"
expect_problem 400 "malformed" "1 MB body is read whole"

api GET /v1/jobs/424242
expect_problem 404 "424242" "unknown job"
api GET /v1/jobs/abc
expect_problem 404 "abc" "non-numeric job id"
api GET /v1/nothing
expect_problem 404 "/v1/nothing" "unknown path"
api DELETE /v1/jobs
expect_problem 405 "DELETE" "DELETE /v1/jobs"
allow=$(header Allow)
[ "$allow" = "POST, GET, HEAD" ] && ok "Allow: $allow" || fail "Allow header '$allow'"
api GET /v1/jobs/1/cancel
expect_problem 405 "GET" "GET on cancel"
[ "$(header Allow)" = "POST" ] && ok "Allow: POST" || fail "Allow '$(header Allow)'"

api GET '/v1/jobs?limit=0'
expect_problem 422 "limit" "limit=0"
api GET '/v1/jobs?limit=abc'
expect_problem 422 "limit" "limit=abc"
api GET '/v1/jobs?state=done'
expect_problem 422 "state" "unknown state"
api GET '/v1/jobs?after=-4'
expect_problem 422 "after" "bad cursor"

[ "$(count)" = "$base" ] && ok "no rejected request wrote a job" ||
	fail "rejected requests wrote $(( $(count) - base )) job(s)"

# The daemon still serves after all of that.
post_job '{"repo": "https://x/y.git", "ref": "main", "targets": ["linux/amd64"]}'
expect_status 201 "a good job after the bad ones"
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
finish
