#!/bin/bash
# POST /v1/jobs/{id}/retry: the retry of a succeeded job builds the same
# commit again even after its branch moved on, with the same ref, targets
# and recipe, and says which job it retries (retry_of, in the answer, in
# GET and in the database); the new job is the retrying token's.  A job
# that has not ended (queued, running) answers 409 naming its state; one
# that was canceled may be retried; an unknown job is 404; a read token
# gets 403 and no token 401; a body other than nothing or {} is refused.
. "$(dirname "$0")/lib.sh"

for tool in git openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

ADMIN=admin-$(openssl rand -hex 16)
CI=ci-$(openssl rand -hex 16)
READ=read-$(openssl rand -hex 16)
hash() { printf '%s\n' "$1" | "$KILND" --hash-token; }
cat >"$T/retry.conf" <<EOF
[kilnd]
allow_local_repos = yes

[tokens]
ops = admin $(hash "$ADMIN")
ci = submit $(hash "$CI")
dash = read $(hash "$READ")
EOF
AS_ADMIN=(-H "Authorization: Bearer $ADMIN")
AS_CI=(-H "Authorization: Bearer $CI")
AS_READ=(-H "Authorization: Bearer $READ")

# The repository's VERSION file is what the build ships.
REPO=$(make_repo retry "$SRCDIR/tests/fixtures/c-hello")
echo one >"$REPO/VERSION"
commit_all "$REPO" "version one"
C1=$(git -C "$REPO" rev-parse HEAD)

start_kilnd -c "$T/retry.conf"

# retry ID [curl args...]: POST /v1/jobs/ID/retry.
retry() {
	local id=$1
	shift
	api POST "/v1/jobs/$id/retry" "$@"
}
# ended ID: wait until the job ended (BODY holds it), as wait_job does,
# with the read token.
ended() {
	local state
	for _ in $(seq 1 3000); do
		api GET "/v1/jobs/$1" "${AS_READ[@]}"
		state=$(jq -r .state <<<"$BODY" 2>/dev/null) || state=
		case $state in succeeded|failed|canceled) return 0 ;; esac
		sleep 0.2
	done
	fail "job $1 still '$state': $BODY"
	return 1
}
# running ID: wait until its target runs.
running() {
	local state
	for _ in $(seq 1 3000); do
		api GET "/v1/jobs/$1" "${AS_READ[@]}"
		state=$(jq -r '.targets[0].state' <<<"$BODY" 2>/dev/null) || state=
		[ "$state" = running ] && return 0
		sleep 0.2
	done
	fail "job $1's target is '$state', waited for running"
	return 1
}

JOB=$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main", targets: ["linux/amd64"],
	recipe: {kind: "command", command: "cp VERSION /out/version"}}')
post_job "$JOB" "${AS_ADMIN[@]}"
expect_status 201 "submit the first job"
A=$(jq -r .id <<<"$BODY")
expect_json .retry_of null "a submitted job retries nothing"
ended "$A"
expect_json .state succeeded "the first job succeeded"
expect_json .commit "$C1" "it built the branch's commit"

# The branch moves on: a retry still builds the commit the job built.
echo two >"$REPO/VERSION"
commit_all "$REPO" "version two"
[ "$(git -C "$REPO" rev-parse main)" != "$C1" ] && ok "main has moved on" ||
	fail "main did not move"

retry "$A" -H 'Authorization: Bearer '
expect_status 401 "retry without a token"
retry "$A" "${AS_READ[@]}"
expect_problem 403 "needs submit" "retry with a read token"
[ "$(db 'select count(*) from jobs')" = 1 ] && ok "refused retries stored nothing" ||
	fail "a refused retry stored a job"

retry "$A" "${AS_CI[@]}"
expect_status 201 "a submit token retries the admin's job"
B=$(jq -r .id <<<"$BODY")
[ "$(header Location)" = "/v1/jobs/$B" ] && ok "Location names the new job" ||
	fail "Location: '$(header Location)', expected /v1/jobs/$B"
[ "$B" != "$A" ] && ok "the retry is a new job ($B)" || fail "the retry is job $B"
expect_json .retry_of "$A" "the new job retries the first"
expect_json .commit "$C1" "the new job is pinned to the first job's commit"
expect_json .ref main "with the same ref"
expect_json '.targets | map(.target) | join(" ")' linux/amd64 "with the same targets"
expect_json .recipe.command "cp VERSION /out/version" "with the same recipe"
expect_json .submitted_by ci "the retry is the retrying token's job"
expect_json .trust unprotected "a submit token's retry builds unprotected"
ended "$B"
expect_json .state succeeded "the retry succeeded"
expect_json .commit "$C1" "it built the pinned commit, not main's new one"
expect_json .retry_of "$A" "GET shows retry_of"
v=$(curl -sSf "${AS_READ[@]}" "$URL/v1/jobs/$B/artifacts/linux_amd64/version" 2>&1) || v="(none: $v)"
[ "$v" = one ] && ok "the retry shipped the first commit's VERSION" ||
	fail "the retry's version file holds '$v', expected 'one'"
api GET "/v1/jobs?limit=1" "${AS_READ[@]}"
expect_json '.jobs[0].retry_of' "$A" "the list shows retry_of"
[ "$(db "select retry_of from jobs where id = $B")" = "$A" ] &&
	ok "retry_of is stored" || fail "stored retry_of: $(db "select retry_of from jobs where id = $B")"

# --- bodies, unknown jobs ----------------------------------------------------
retry "$A" "${AS_CI[@]}" -H 'Content-Type: application/json' --data-binary '{"ref":"x"}'
expect_problem 422 "takes no fields" "a body with a field"
retry "$A" "${AS_CI[@]}" -H 'Content-Type: application/json' --data-binary '{"ref"'
expect_problem 400 "malformed JSON" "a malformed body"
retry 99999 "${AS_CI[@]}"
expect_problem 404 "no job 99999" "retry of an unknown job"
retry abc "${AS_CI[@]}"
expect_problem 404 "positive integers" "retry of a job id that is no number"
api GET /v1/jobs/$A/retry "${AS_CI[@]}"
expect_status 405 "GET on the retry route"

# --- a job that has not ended ------------------------------------------------
SLOW=$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main", targets: ["linux/amd64"],
	recipe: {kind: "command", command: "sleep 600"}}')
post_job "$SLOW" "${AS_CI[@]}"
expect_status 201 "submit a long job"
S=$(jq -r .id <<<"$BODY")
running "$S"
retry "$S" "${AS_CI[@]}" -H 'Content-Type: application/json' --data-binary '{}'
expect_problem 409 "is running" "retry of a running job"
api POST "/v1/jobs/$S/cancel" "${AS_CI[@]}"
expect_status 200 "cancel the long job"
ended "$S"
expect_json .state canceled "the long job ended canceled"
retry "$S" "${AS_CI[@]}" -H 'Content-Type: application/json' --data-binary ' {} '
expect_status 201 "a canceled job may be retried (body {})"
R=$(jq -r .id <<<"$BODY")
expect_json .retry_of "$S" "its retry names it"
api POST "/v1/jobs/$R/cancel" "${AS_CI[@]}"
expect_status 200 "cancel the retry"
ended "$R"

# Paused: a queued job has not ended either.
api POST /v1/admin/pause "${AS_ADMIN[@]}"
post_job "$JOB" "${AS_CI[@]}"
Q=$(jq -r .id <<<"$BODY")
retry "$Q" "${AS_CI[@]}"
expect_problem 409 "is queued" "retry of a queued job"

finish
