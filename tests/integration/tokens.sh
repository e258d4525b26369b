#!/bin/bash
# Token scopes and project policy: a job of a project's repository obeys
# the project's refs and recipe whatever token submits it (a commit id and
# a request's own recipe need admin), a submit token cancels and
# reprioritises only its own jobs, priorities above max_priority need
# admin, and every job says which token submitted it.  GET /v1/info says
# who the caller is; GET /v1/projects lists the projects without their
# secrets; a retry passes the project's rules as the retrying token.
. "$(dirname "$0")/lib.sh"

for tool in git openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

ADMIN=admin-$(openssl rand -hex 16)
CI=ci-$(openssl rand -hex 16)
BOT=bot-$(openssl rand -hex 16)
READ=read-$(openssl rand -hex 16)
hash() { printf '%s\n' "$1" | "$KILND" --hash-token; }
HOOK_SECRET=hook-$(openssl rand -hex 16)
NOTIFY_TOKEN=nt-$(openssl rand -hex 16)
NOTIFY_SECRET=ns-$(openssl rand -hex 16)

REL=https://git.example.com/rel.git
APP=https://git.example.com/app.git
REL_RECIPE='{"command":"make release","kind":"command"}'
cat >"$T/tokens.conf" <<EOF
[kilnd]
paused = yes
max_priority = 10

[tokens]
ops = admin $(hash "$ADMIN")
ci = submit $(hash "$CI")
bot = submit $(hash "$BOT")
dash = read $(hash "$READ")

[project rel]
repo = $REL
refs = refs/tags/*
recipe = $REL_RECIPE
secret = $HOOK_SECRET
notify_url = https://ci.example.com/hook?token=$NOTIFY_TOKEN
notify_secret = $NOTIFY_SECRET

[project app]
repo = $APP
EOF
start_kilnd -c "$T/tokens.conf"
AS_ADMIN=(-H "Authorization: Bearer $ADMIN")
AS_CI=(-H "Authorization: Bearer $CI")
AS_BOT=(-H "Authorization: Bearer $BOT")
AS_READ=(-H "Authorization: Bearer $READ")

# req REPO REF [EXTRA-JQ]: a job request for linux/amd64.
req() {
	jq -cn --arg r "$1" --arg f "$2" "{repo: \$r, ref: \$f, targets: [\"linux/amd64\"]} ${3:-}"
}
OWN_RECIPE='| .recipe = {kind: "command", command: "echo mine"}'
SHA=0123456789abcdef0123456789abcdef01234567

# --- the project's refs bind every submitter ---------------------------------
post_job "$(req "$REL" refs/heads/main)" "${AS_CI[@]}"
expect_problem 403 "refs/tags/*" "a submit token's branch outside the project's refs"
post_job "$(req "$REL" refs/pull/1/head)" "${AS_CI[@]}"
expect_problem 403 "not within the refs of project rel" "another ref outside the refs"
post_job "$(req "$REL" refs/heads/main)" "${AS_ADMIN[@]}"
expect_problem 403 "refs/tags/*" "an admin's branch outside the project's refs too"
[ "$(db 'select count(*) from jobs')" = 0 ] && ok "refused requests stored nothing" ||
	fail "a refused request stored a job"
# A short name may be a tag or a branch: here it can only be the tag.
post_job "$(req "$REL" main)" "${AS_CI[@]}"
expect_status 201 "a short name the tag pattern admits"
expect_json .ref refs/tags/main "it names the tag, never the branch main"

post_job "$(req "$REL" v1.0)" "${AS_CI[@]}"
expect_status 201 "a submit token's tag within the refs"
CI_JOB=$(printf '%s' "$BODY" | jq -r .id)
expect_json .ref refs/tags/v1.0 "a short name only the tag pattern admits becomes the full tag"
expect_json .project rel "the job is the project's"
expect_json '.recipe | tojson' "$REL_RECIPE" "the job builds with the project's recipe"
expect_json .trust unprotected "a submit token's job is unprotected"
expect_json .submitted_by ci "the job records the submitting token's name"
[ "$(db "select ref || ' ' || submitted_by from jobs where id = $CI_JOB")" = "refs/tags/v1.0 ci" ] &&
	ok "ref and submitted_by are stored" || fail "stored: $(db "select ref, submitted_by from jobs where id = $CI_JOB")"

post_job "$(req "$REL" refs/tags/v1.1)" "${AS_CI[@]}"
expect_status 201 "a full tag ref within the refs"
expect_json .ref refs/tags/v1.1 "a full ref stays as it is"

# A commit id: no refs pattern can vouch for it.
post_job "$(req "$REL" $SHA)" "${AS_CI[@]}"
expect_problem 403 "commit id" "a submit token's commit id for a project"
post_job "$(req "$REL" $SHA)" "${AS_ADMIN[@]}"
expect_status 201 "an admin's commit id for a project"
expect_json .submitted_by ops "the admin's job records its token"
expect_json .trust null "an admin's job: trust decided at the fetch"

# A project with the default refs (branches and tags): a short name is
# either, and stays short.
post_job "$(req "$APP" main)" "${AS_CI[@]}"
expect_status 201 "a branch of a project with the default refs"
expect_json .ref main "the short name stays (both of its full names are within the refs)"
expect_json .recipe null "no project recipe: the repository's"

# --- the project's recipe ------------------------------------------------------
post_job "$(req "$REL" v2.0 "$OWN_RECIPE")" "${AS_CI[@]}"
expect_problem 403 "recipe" "a submit token's own recipe for a project"
post_job "$(req "$APP" main "$OWN_RECIPE")" "${AS_BOT[@]}"
expect_problem 403 "admin scope" "a submit token's own recipe for a project without one"
post_job "$(req "$REL" v2.0 "$OWN_RECIPE")" "${AS_ADMIN[@]}"
expect_status 201 "an admin's own recipe for a project"
expect_json .recipe.command "echo mine" "the admin's recipe is kept"
post_job "$(req "$REL" v2.0 '| .recipe = null')" "${AS_CI[@]}"
expect_status 201 "a null recipe is no recipe"
expect_json .recipe.command "make release" "and the project's recipe is used"

# --- priorities and max_priority ---------------------------------------------
post_job "$(req "$APP" main '| .priority = 11')" "${AS_CI[@]}"
expect_problem 403 "max_priority" "a submit token above max_priority"
post_job "$(req "$APP" main '| .priority = 10')" "${AS_CI[@]}"
expect_status 201 "a submit token at max_priority"
post_job "$(req "$APP" main '| .priority = -50')" "${AS_BOT[@]}"
expect_status 201 "a submit token may lower its priority"
BOT_JOB=$(printf '%s' "$BODY" | jq -r .id)
expect_json .submitted_by bot "the other token's job"
post_job "$(req "$APP" main '| .priority = 500')" "${AS_ADMIN[@]}"
expect_status 201 "an admin above max_priority"
expect_json .priority 500 "the admin's priority"

# --- PATCH /v1/jobs/{id} ----------------------------------------------------------
patch() {
	local id=$1 body=$2
	shift 2
	api PATCH "/v1/jobs/$id" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}
patch "$CI_JOB" '{"priority": 5}' "${AS_BOT[@]}"
expect_problem 403 "not submitted by this token" "a token cannot reprioritise another token's job"
patch "$CI_JOB" '{"priority": 5}' "${AS_READ[@]}"
expect_problem 403 "needs submit" "a read token cannot reprioritise"
patch "$CI_JOB" '{"priority": 5}'
expect_status 401 "PATCH without a token"
patch "$CI_JOB" '{"priority": 5}' "${AS_CI[@]}"
expect_status 200 "a token reprioritises its own job"
expect_json .priority 5 "the new priority"
[ "$(db "select group_concat(priority) from job_targets where job_id = $CI_JOB and state = 'queued'")" = 5 ] &&
	ok "its queued targets take the new priority" ||
	fail "target priorities: $(db "select priority, state from job_targets where job_id = $CI_JOB")"
patch "$CI_JOB" '{"priority": 11}' "${AS_CI[@]}"
expect_problem 403 "max_priority" "a token cannot raise its job above max_priority"
patch "$CI_JOB" '{"priority": 11}' "${AS_ADMIN[@]}"
expect_status 200 "an admin raises any job above max_priority"
expect_json .priority 11 "the admin's priority"
patch "$BOT_JOB" '{"priority": 1}' "${AS_ADMIN[@]}"
expect_status 200 "an admin reprioritises another token's job"
patch "$CI_JOB" '{"priority": "high"}' "${AS_CI[@]}"
expect_problem 422 "priority" "a priority that is no integer"
patch "$CI_JOB" '{"priority": 1001}' "${AS_ADMIN[@]}"
expect_problem 422 "priority" "a priority out of range"
patch "$CI_JOB" '{"priority": 1, "state": "succeeded"}' "${AS_CI[@]}"
expect_problem 422 "state" "only the priority can be changed"
patch "$CI_JOB" '{}' "${AS_CI[@]}"
expect_problem 422 "priority" "a PATCH without a priority"
patch "$CI_JOB" '{"priority": ' "${AS_CI[@]}"
expect_problem 400 "malformed JSON" "malformed JSON"
api PATCH "/v1/jobs/$CI_JOB" --data-binary '{"priority": 1}' -H 'Content-Type: text/plain' "${AS_CI[@]}"
expect_problem 415 "Content-Type" "a PATCH that is not JSON"
patch 999999 '{"priority": 1}' "${AS_ADMIN[@]}"
expect_problem 404 "no job" "PATCH of no job"

# --- cancel: own jobs only ----------------------------------------------------------
api POST "/v1/jobs/$CI_JOB/cancel" "${AS_BOT[@]}"
expect_problem 403 "not submitted by this token" "a token cannot cancel another token's job"
api GET "/v1/jobs/$CI_JOB" "${AS_READ[@]}"
expect_json .state queued "the other token's job is still queued"
api POST "/v1/jobs/$CI_JOB/cancel" "${AS_CI[@]}"
expect_status 200 "a token cancels its own job"
expect_json .state canceled "its job is canceled"
patch "$CI_JOB" '{"priority": 1}' "${AS_CI[@]}"
expect_problem 409 "canceled" "a canceled job cannot be reprioritised"
api POST "/v1/jobs/$BOT_JOB/cancel" "${AS_ADMIN[@]}"
expect_status 200 "an admin cancels another token's job"

# The job list shows who submitted what.
api GET "/v1/jobs?limit=1000" "${AS_READ[@]}"
expect_json '[.jobs[].submitted_by] | unique | join(",")' "bot,ci,ops" "the list shows submitted_by"

# --- retry: the project's rules hold for the retrying token -----------------------
api POST "/v1/jobs/$CI_JOB/retry" "${AS_BOT[@]}"
expect_problem 403 "max_priority" "a submit token cannot retry a job above max_priority"
V11=$(db "select id from jobs where ref = 'refs/tags/v1.1'")
api POST "/v1/jobs/$V11/cancel" "${AS_CI[@]}"
expect_status 200 "ci cancels its job of v1.1"
api POST "/v1/jobs/$V11/retry" "${AS_BOT[@]}"
expect_status 201 "another submit token retries ci's canceled job of a project"
expect_json .retry_of "$V11" "the retry names the job"
expect_json '[.project, .ref, .submitted_by, .recipe.command] | join(" ")' \
	"rel refs/tags/v1.1 bot make release" "the project's job, its ref and recipe, bot's"
expect_json .notify.url "https://ci.example.com/hook?token=$NOTIFY_TOKEN" \
	"the project's callback applies to the retry"
OWN_JOB=$(db "select id from jobs where recipe like '%echo mine%' and project = 'rel'")
api POST "/v1/jobs/$OWN_JOB/cancel" "${AS_ADMIN[@]}"
expect_status 200 "cancel the admin's job with its own recipe"
api POST "/v1/jobs/$OWN_JOB/retry" "${AS_CI[@]}"
expect_problem 403 "recipe" "a submit token cannot retry a job built with its own recipe"
api POST "/v1/jobs/$OWN_JOB/retry" "${AS_ADMIN[@]}"
expect_status 201 "an admin can"
expect_json .recipe.command "echo mine" "with the job's recipe"
api POST "/v1/jobs/$BOT_JOB/retry" "${AS_CI[@]}"
expect_status 201 "a submit token retries a job of a short name both full refs admit"
expect_json .ref main "the short name stays"

# --- who asks: GET /v1/info's caller --------------------------------------------
for who in "ops admin ADMIN" "ci submit CI" "dash read READ"; do
	read -r name scope var <<<"$who"
	api GET /v1/info -H "Authorization: Bearer ${!var}"
	expect_json '.caller | "\(.scope) \(.token)"' "$scope $name" "GET /v1/info names the $scope token"
done
api GET /v1/info
expect_status 401 "GET /v1/info without a token"

# --- GET /v1/projects: settings, no secrets ---------------------------------------
api GET /v1/projects
expect_status 401 "GET /v1/projects without a token"
api GET /v1/projects "${AS_READ[@]}"
expect_status 200 "GET /v1/projects with a read token"
expect_json '[.projects[].name] | join(" ")' "rel app" "every project, in the file's order"
expect_json '.projects[0] | [.repo, (.refs | join(",")), .recipe.command, .notify, .registry] | map(tostring) | join(" ")' \
	"$REL refs/tags/* make release true null" "rel's repo, refs, recipe, callback flag, registry"
expect_json '.projects[1] | [(.refs | length), .recipe, .notify, (.protected_refs | length), .network] | map(tostring) | join(" ")' \
	"2 null false 0 false" "app's defaults (branches and tags)"
for secret in "$HOOK_SECRET" "$NOTIFY_TOKEN" "$NOTIFY_SECRET" ci.example.com; do
	[[ "$BODY" != *"$secret"* ]] && ok "GET /v1/projects does not show ${secret:0:8}..." ||
		fail "GET /v1/projects shows a secret: $BODY"
done

# --- a rotated token keeps its jobs; the default cap ---------------------------
CI_JOB2=$(db "select max(id) from jobs where submitted_by = 'ci' and state = 'queued'")
stop_kilnd
CI_NEW=ci-rotated-$(openssl rand -hex 16)
sed -e "s|^ci = submit .*|ci = submit $(hash "$CI_NEW")|" -e '/^max_priority/d' \
	"$T/tokens.conf" >"$T/rotated.conf"
start_kilnd -c "$T/rotated.conf"
api GET "/v1/jobs/$CI_JOB2" "${AS_READ[@]}"
expect_json .submitted_by ci "submitted_by survives a restart"
api POST "/v1/jobs/$CI_JOB2/cancel" "${AS_CI[@]}"
expect_status 401 "the old secret of a rotated token is no token"
api POST "/v1/jobs/$CI_JOB2/cancel" -H "Authorization: Bearer $CI_NEW"
expect_status 200 "the rotated token (same name) cancels the jobs of its name"
post_job "$(req "$APP" main '| .priority = 1')" -H "Authorization: Bearer $CI_NEW"
expect_problem 403 "max_priority (0)" "by default a submit token cannot raise a priority above 0"
post_job "$(req "$APP" main '| .priority = 0')" -H "Authorization: Bearer $CI_NEW"
expect_status 201 "normal priority by default"
stop_kilnd

# --- configuration -------------------------------------------------------------------
cp "$T/tokens.conf" "$T/dup.conf"
printf '[tokens]\nci2 = submit %s\n' "$(hash "$CI")" >>"$T/dup.conf"
"$KILND" -c "$T/dup.conf" -d "$STATE" --check-config >"$T/dup.out" 2>&1 &&
	fail "two tokens with one hash were accepted" ||
	{ grep -q "same hash as ci" "$T/dup.out" && ok "two tokens with one hash: $(cat "$T/dup.out")" ||
		fail "duplicate hash refused without naming it: $(cat "$T/dup.out")"; }
sed 's/^max_priority = 10/max_priority = 1001/' "$T/tokens.conf" >"$T/cap.conf"
"$KILND" -c "$T/cap.conf" -d "$STATE" --check-config >"$T/cap.out" 2>&1 &&
	fail "max_priority 1001 was accepted" ||
	{ grep -q "max_priority" "$T/cap.out" && ok "max_priority out of range: $(cat "$T/cap.out")" ||
		fail "max_priority 1001 refused without naming it: $(cat "$T/cap.out")"; }

# --- a farm without tokens: no submitter to record ---------------------------------
start_kilnd -c "$PAUSED_CONF"
post_job "$(req "$APP" main '| .priority = 900')"
expect_status 201 "without tokens every caller is an admin"
expect_json .submitted_by null "no token, no submitter"
NT=$(printf '%s' "$BODY" | jq -r .id)
patch "$NT" '{"priority": -3}'
expect_status 200 "and may reprioritise any job"
expect_json .priority -3 "the new priority"
api GET /v1/info
expect_json '.caller | "\(.scope) \(.token)"' "admin null" "without tokens the caller is admin, no token"
stop_kilnd

# --- end to end: the ref a job builds is the one the refs admit ----------------
# A branch named like a tag the refs admit must not be built in its place.
mkdir -p "$T/src"; echo x >"$T/src/README"
REPO=$(make_repo tagged "$T/src")
git -C "$REPO" tag v3.0
TAGGED=$(git -C "$REPO" rev-parse HEAD)
echo y >>"$REPO/README"; commit_all "$REPO" "on a branch"
git -C "$REPO" branch v4.0
# A branch whose name is a full tag ref: refs/heads/refs/tags/v9.
git -C "$REPO" tag v9 "$TAGGED"
git -C "$REPO" branch refs/tags/v9 2>/dev/null
cat >"$T/build.conf" <<EOF
[kilnd]
allow_local_repos = yes
build_timeout = 120

[tokens]
ci = submit $(hash "$CI")
ops = admin $(hash "$ADMIN")

[project tagged]
repo = $REPO
refs = refs/tags/v*
recipe = {"kind": "command", "command": "echo built > \\"\$KILN_OUT/out.txt\\""}
EOF
start_kilnd -c "$T/build.conf"
# Every route needs a token here: lib.sh's wait_job asks as the admin.
api() {
	local method=$1 path=$2
	shift 2
	case "$*" in *Authorization:*) ;; *) set -- "$@" "${AS_ADMIN[@]}" ;; esac
	BODY=$(curl -sS -X "$method" -D "$T/headers" -o - -w '\n%{http_code}' \
		"$@" "$URL$path") || { STATUS=000; HEADERS=; return 0; }
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
	HEADERS=$(tr -d '\r' <"$T/headers")
}
post_job "$(req "$REPO" v4.0)" "${AS_CI[@]}"
expect_status 201 "a short name that is a branch there, but only a tag could be admitted"
expect_json .ref refs/tags/v4.0 "it is asked for as a tag"
B_JOB=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$B_JOB" 300 || true
expect_json .state failed "the branch v4.0 is not built in place of a tag"
expect_json .commit null "no commit of the branch was taken"
expect_json '.error | contains("refs/tags/v4.0")' true "the job failed for want of the tag"
post_job "$(req "$REPO" v3.0)" "${AS_CI[@]}"
expect_status 201 "the tag v3.0"
T_JOB=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$T_JOB" 300 || true
expect_json .state succeeded "the tag builds"
expect_json .commit "$TAGGED" "the tag's commit is fetched"
expect_json '.recipe.command' 'echo built > "$KILN_OUT/out.txt"' "with the project's recipe"
expect_json .submitted_by ci "by the submit token"
expect_json .trust unprotected "unprotected"
post_job "$(req "$REPO" refs/tags/v9)" "${AS_CI[@]}"
expect_status 201 "the full tag ref refs/tags/v9"
N_JOB=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$N_JOB" 300 || true
expect_json .state succeeded "refs/tags/v9 builds"
expect_json .commit "$TAGGED" "the tag's commit, not the branch refs/heads/refs/tags/v9's"
stop_kilnd

grep -q -e "$ADMIN" -e "$CI" -e "$BOT" -e "$READ" -e "$CI_NEW" "$T"/kilnd.*.log &&
	fail "a token appears in kilnd's log" || ok "no token in kilnd's log"
finish
