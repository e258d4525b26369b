#!/bin/bash
# A retry by a token below admin passes what that token's own submission
# of the job would have to pass today: the project's refs (a commit id is
# never within them) and recipe, max_priority, and the project's network.
# A job of a project that a reload removed retries offline, as a new
# submission of its repository would build, not with the network the
# project once gave it; one of a local repository after a reload that
# turned allow_local_repos off is refused.  The jobs are never built
# (kilnd is paused): a canceled job may be retried like any that ended.
. "$(dirname "$0")/lib.sh"

for tool in git openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

ADMIN=admin-$(openssl rand -hex 16)
CI=ci-$(openssl rand -hex 16)
hash() { printf '%s\n' "$1" | "$KILND" --hash-token; }
AS_ADMIN=(-H "Authorization: Bearer $ADMIN")
AS_CI=(-H "Authorization: Bearer $CI")

REPO=$(make_repo rpol "$SRCDIR/tests/fixtures/c-hello")
C1=$(git -C "$REPO" rev-parse HEAD)

# conf LOCAL PROJECT: kilnd.conf with allow_local_repos LOCAL (yes/no),
# with or without (PROJECT yes/no) the project of REPO.
conf() {
	{
		printf '[kilnd]\npaused = yes\nallow_local_repos = %s\n' "$1"
		printf 'max_priority = 10\n\n'
		printf '[tokens]\nops = admin %s\nci = submit %s\n\n' \
			"$(hash "$ADMIN")" "$(hash "$CI")"
		if [ "$2" = yes ]; then
			printf '[project rpol]\nrepo = %s\nsecret = %s\n' "$REPO" \
				"$(openssl rand -hex 16)"
			printf 'refs = refs/heads/main\nnetwork = yes\npriority = 50\n'
		fi
	} >"$T/rpol.conf"
}
reload() {
	local n
	n=$(grep -c 'reloaded' "$KLOG" || true)
	kill -HUP "$KPID"
	for _ in $(seq 1 100); do
		[ "$(grep -c 'reloaded' "$KLOG" || true)" -gt "$n" ] && return 0
		sleep 0.05
	done
	fail "no reload: $(tail -3 "$KLOG")"
}
# ended_job JSON [curl args]: submit, cancel (kilnd is paused); JOBID.
ended_job() {
	local body=$1
	shift
	post_job "$body" "$@"
	expect_status 201 "submit $body"
	JOBID=$(jq -r .id <<<"$BODY")
	api POST "/v1/jobs/$JOBID/cancel" "${AS_ADMIN[@]}"
	expect_status 200 "cancel job $JOBID"
}
retry() {
	api POST "/v1/jobs/$1/retry" "${AS_CI[@]}"
}

conf yes yes
start_kilnd -c "$T/rpol.conf"

ended_job "$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64"], recipe: {kind: "command", command: "true"}}')" \
	"${AS_ADMIN[@]}"
retry "$JOBID"
expect_problem 403 "recipe" "an admin's own recipe is not the submitter's to retry"

ended_job "$(jq -cn --arg r "$REPO" --arg c "$C1" '{repo: $r, ref: $c,
	targets: ["linux/amd64"]}')" "${AS_ADMIN[@]}"
retry "$JOBID"
expect_problem 403 "not within the refs" "a commit id is not within the project's refs"

ended_job "$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64"], priority: 99}')" "${AS_ADMIN[@]}"
retry "$JOBID"
expect_problem 403 "max_priority" "a priority above max_priority needs the admin scope"

ended_job "$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64"]}')" "${AS_CI[@]}"
N=$JOBID
expect_json .network true "the project's job keeps the network"
retry "$N"
expect_status 201 "the submitter retries its project job"
expect_json .network true "the retry, still of the project, keeps the network"
expect_json .project rpol "and is the project's"

# The project is removed: its repository is anyone's, and offline.
conf yes no
reload
retry "$N"
expect_status 201 "the job of a removed project is retried"
expect_json .network false "the retry of a removed project's job is offline"
expect_json .project null "and is no project's"
post_job "$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64"]}')" "${AS_CI[@]}"
expect_json .network false "as a new submission of its repository is"

conf no no
reload
retry "$N"
expect_problem 422 "" "a local repository is refused once allow_local_repos is off"

finish
