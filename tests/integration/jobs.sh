#!/bin/bash
# The job API end to end against a real kilnd: submit, get, list with
# pagination and state filter, cancel, every accepted job surviving a
# restart (and a SIGKILL), and the filters by project and repository
# (with the state, the cursor, the client, and 422s for bad values).
. "$(dirname "$0")/lib.sh"

start_kilnd -c "$PAUSED_CONF"

api GET /healthz
expect_status 200 "healthz"
expect_json .status ok "healthz"

JOB='{"repo": "https://git.example.com/app.git", "ref": "main",
      "targets": ["linux/amd64", "linux/arm", "linux/arm/v7", "windows/amd64"],
      "priority": 5}'
post_job "$JOB"
expect_status 201 "submit"
ID=$(printf '%s' "$BODY" | jq -r .id)
[ "$(header Location)" = "/v1/jobs/$ID" ] && ok "Location is /v1/jobs/$ID" ||
	fail "Location header '$(header Location)'"
expect_json .state queued "submit"
expect_json '.targets | length' 3 "linux/arm and linux/arm/v7 fold into one"
expect_json '[.targets[].target] | join(",")' "linux/amd64,linux/arm/v7,windows/amd64" \
	"targets normalized, in request order"
expect_json .priority 5 "submit"
expect_json .commit null "commit unknown until fetched"
SUBMITTED=$BODY

# The 201 body is the job as GET returns it.
api GET "/v1/jobs/$ID"
expect_status 200 "get"
[ "$(printf '%s' "$BODY" | jq -S .)" = "$(printf '%s' "$SUBMITTED" | jq -S .)" ] &&
	ok "201 body equals GET body" || fail "201 body differs from GET: $BODY"
# And it really is in the database file.
[ "$(db "select repo || ' ' || ref || ' ' || priority from jobs where id = $ID")" = \
  "https://git.example.com/app.git main 5" ] && ok "row in SQLite" ||
	fail "job $ID not in the database"

# A recipe is stored and returned.
post_job '{"repo": "/srv/git/tool", "ref": "v1.2.0", "targets": ["linux/riscv64"],
	"recipe": {"kind": "command", "command": "make CC=$CC", "env": {"V": "1"}}}'
expect_status 201 "submit with recipe"
expect_json .recipe.command 'make CC=$CC' "recipe stored"

# Pagination: 7 jobs in all now; pages of 3, newest first, each job once.
for i in 1 2 3 4 5; do
	post_job "{\"repo\": \"git://git.example.com/r$i\", \"ref\": \"refs/tags/v$i\",
		\"targets\": [\"linux/arm64\"]}"
	[ "$STATUS" = 201 ] || fail "submit $i: $STATUS $BODY"
done
seen=
after=
pages=0
while :; do
	api GET "/v1/jobs?limit=3${after:+&after=$after}"
	[ "$STATUS" = 200 ] || { fail "list page: $STATUS $BODY"; break; }
	seen="$seen $(printf '%s' "$BODY" | jq -r '[.jobs[].id] | map(tostring) | join(" ")')"
	pages=$((pages + 1))
	after=$(printf '%s' "$BODY" | jq -r '.next // empty')
	[ -n "$after" ] || break
	[ $pages -lt 10 ] || { fail "pagination does not end"; break; }
done
all=$(db "select group_concat(id, ' ') from (select id from jobs order by id desc)")
[ "$(echo $seen)" = "$all" ] && ok "3 pages list every job once, newest first ($all)" ||
	fail "pagination saw '$(echo $seen)', expected '$all'"
[ $pages -eq 3 ] && ok "7 jobs in pages of 3 = 3 pages" || fail "$pages pages"

# Cancel: queued targets become canceled, the job canceled.  A follower
# of a queued target's log waits for it, and hears why it never started.
curl -sS -o "$T/follow.out" -w '%{http_code}' --max-time 60 \
	"$URL/v1/jobs/$ID/targets/linux_amd64/log?follow=1" >"$T/follow.code" &
FOLLOWER=$!
sleep 0.5
api POST "/v1/jobs/$ID/cancel"
expect_status 200 "cancel"
expect_json .state canceled "cancel"
expect_json '[.targets[].state] | unique | join(",")' canceled "all targets canceled"
expect_json '.finished_at != null' true "canceled job has finished_at"
api POST "/v1/jobs/$ID/cancel"
expect_status 200 "cancel twice is not an error"
api POST "/v1/jobs/999999/cancel"
expect_problem 404 "999999" "cancel unknown job"
wait $FOLLOWER || fail "the follower of a canceled target: curl failed"
[ "$(cat "$T/follow.code")" = 200 ] &&
	grep -qxF "[kiln] job $ID linux/amd64 was canceled before it started" "$T/follow.out" &&
	ok "a follower that waited is told the target was canceled before it started" ||
	fail "follower of a canceled target: $(cat "$T/follow.code") '$(cat "$T/follow.out")'"
api GET "/v1/jobs/$ID/targets/linux_amd64/log?follow=1"
expect_problem 404 "job $ID linux/amd64 was canceled before it started" \
	"following the log of a target canceled while queued"

# State filter.
api GET "/v1/jobs?state=canceled"
expect_json '[.jobs[].id] | map(tostring) | join(",")' "$ID" "state=canceled lists only job $ID"
api GET "/v1/jobs?state=queued&limit=1000"
expect_json '.jobs | length' 6 "state=queued lists the other 6"

# A job that already ended cannot be canceled: mark one succeeded in the
# database the way a finished build would, then try.
db "update job_targets set state='succeeded' where job_id = 2;
    update jobs set state='succeeded' where id = 2;"
api POST /v1/jobs/2/cancel
expect_problem 409 "succeeded" "cancel of a succeeded job"

# Every accepted job survives a clean restart...
before=$(db "select count(*) from jobs")
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $KEXIT"
grep -q "stopped cleanly" "$KLOG" && ok "clean stop logged" || fail "no clean stop in log"
start_kilnd -c "$PAUSED_CONF"
for id in $(seq 1 "$before"); do
	api GET "/v1/jobs/$id"
	[ "$STATUS" = 200 ] || fail "job $id lost after restart: $STATUS"
done
ok "all $before jobs there after restart"

# ...and a SIGKILL right after the 201s (the commit happened before them).
ids=
for i in $(seq 1 20); do
	post_job '{"repo": "https://git.example.com/k.git", "ref": "main", "targets": ["linux/amd64"]}'
	[ "$STATUS" = 201 ] || fail "submit before kill: $STATUS"
	ids="$ids $(printf '%s' "$BODY" | jq -r .id)"
done
stop_kilnd KILL
start_kilnd -c "$PAUSED_CONF"
lost=0
for id in $ids; do
	api GET "/v1/jobs/$id"
	[ "$STATUS" = 200 ] || lost=$((lost + 1))
done
[ $lost -eq 0 ] && ok "20 jobs acknowledged before SIGKILL all survive" ||
	fail "$lost acknowledged jobs lost after SIGKILL"
[ "$(db 'pragma integrity_check')" = ok ] && ok "integrity_check ok" ||
	fail "database integrity"

# --- filters: project and repo (exact), with state and the cursor ---------
# Two projects, and jobs of a repository of neither (open_submissions).
stop_kilnd TERM
cat >"$T/projects.conf" <<'EOF'
[kilnd]
paused = yes
open_submissions = yes

[project alpha]
repo = https://git.example.com/alpha.git
refs = refs/heads/*

[project beta]
repo = https://git.example.com/beta.git
refs = refs/heads/*
EOF
start_kilnd -c "$T/projects.conf"
submit_repo() {
	post_job "{\"repo\": \"$1\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
	[ "$STATUS" = 201 ] || fail "submit of $1: $STATUS $BODY"
	printf '%s' "$BODY" | jq -r .id
}
ALPHA=https://git.example.com/alpha.git
BETA=https://git.example.com/beta.git
OTHER=https://git.example.com/alpha-tools.git
A1=$(submit_repo $ALPHA); B1=$(submit_repo $BETA); O1=$(submit_repo $OTHER)
A2=$(submit_repo $ALPHA); A3=$(submit_repo $ALPHA); B2=$(submit_repo $BETA)
api GET "/v1/jobs/$A1"
expect_json .project alpha "a job of alpha's repository is alpha's"
api POST "/v1/jobs/$A2/cancel"
expect_status 200 "cancel one of alpha's jobs"

# ids PATH: the ids of every page of PATH (which has a limit), walking
# the cursor; the number of pages in $T/pages.
ids() {
	local after= all= pages=0
	while :; do
		api GET "$1${after:+&after=$after}"
		[ "$STATUS" = 200 ] || { fail "$1: $STATUS $BODY"; break; }
		all="$all $(printf '%s' "$BODY" | jq -r '[.jobs[].id] | map(tostring) | join(" ")')"
		pages=$((pages + 1))
		after=$(printf '%s' "$BODY" | jq -r '.next // empty')
		[ -n "$after" ] || break
		[ $pages -lt 20 ] || { fail "$1: pagination does not end"; break; }
	done
	echo "$pages" >"$T/pages"
	echo $all
}
expect_ids() {	# expect_ids PATH "IDS" WHAT
	local got
	got=$(ids "$1")
	[ "$got" = "$2" ] && ok "$3 ($1: '$2')" || fail "$3: $1 lists '$got', expected '$2'"
}
enc() { jq -rn --arg v "$1" '$v | @uri'; }
expect_ids "/v1/jobs?project=alpha&limit=100" "$A3 $A2 $A1" "project=alpha: alpha's jobs only, newest first"
expect_ids "/v1/jobs?project=alpha&limit=1" "$A3 $A2 $A1" "project=alpha in pages of 1: the cursor walks alpha's jobs only"
[ "$(cat "$T/pages")" = 3 ] && ok "3 of alpha's jobs in pages of 1 = 3 pages" ||
	fail "$(cat "$T/pages") pages"
expect_ids "/v1/jobs?project=beta&limit=1" "$B2 $B1" "project=beta in pages of 1"
expect_ids "/v1/jobs?repo=$(enc $ALPHA)&limit=2" "$A3 $A2 $A1" "repo= alpha's URL"
expect_ids "/v1/jobs?repo=$(enc $OTHER)&limit=2" "$O1" "repo= a repository of no project"
expect_ids "/v1/jobs?repo=$(enc https://git.example.com/alpha)&limit=10" "" \
	"repo= matches exactly, not a prefix"
expect_ids "/v1/jobs?project=alph&limit=10" "" "project= matches exactly, not a prefix"
expect_ids "/v1/jobs?project=gamma&limit=10" "" "project= of no job lists nothing"
expect_ids "/v1/jobs?project=alpha&state=queued&limit=1" "$A3 $A1" "project and state together"
expect_ids "/v1/jobs?project=alpha&state=canceled&limit=1" "$A2" "project and state=canceled"
expect_ids "/v1/jobs?project=beta&repo=$(enc $BETA)&limit=1" "$B2 $B1" "project and repo together"
expect_ids "/v1/jobs?project=alpha&repo=$(enc $BETA)&limit=1" "" "project and repo of different projects"
expect_ids "/v1/jobs?state=queued&project=beta&repo=$(enc $BETA)&limit=1" "$B2 $B1" \
	"state, project and repo together"
expect_ids "/v1/jobs?project=&repo=&limit=100" \
	"$(db "select group_concat(id, ' ') from (select id from jobs order by id desc limit 100)")" \
	"empty project and repo filter nothing (as an empty state)"
api GET "/v1/jobs?project=alpha&after=$A2"
expect_json '[.jobs[].id] | map(tostring) | join(" ")' "$A1" \
	"project=alpha after a cursor: alpha's jobs older than it"

# Values no job could have: 422 naming the parameter.
api GET "/v1/jobs?project=$(enc 'al pha')"
expect_problem 422 "project: 'al pha'" "project with a space"
api GET "/v1/jobs?project=%C3%A9t%FF%00x"
expect_problem 422 "project:" "project with non-ASCII, invalid UTF-8 and NUL bytes"
printf '%s' "$BODY" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1 &&
	ok "that 422 is valid UTF-8" || fail "the 422 is not valid UTF-8: $(printf '%q' "$BODY")"
api GET "/v1/jobs?project=$(printf 'p%.0s' $(seq 65))"
expect_problem 422 "project:" "project of 65 characters"
api GET "/v1/jobs?project=$(printf 'p%.0s' $(seq 64))"
expect_status 200 "project of 64 characters is a name"
api GET "/v1/jobs?repo=$(enc 'not a url')"
expect_problem 422 "repo:" "repo that is no URL"
api GET "/v1/jobs?repo=$(enc "https://x.example/$(printf 'r%.0s' $(seq 2100))")"
expect_problem 422 "repo: longer than" "repo longer than a repository may be"
api GET "/v1/jobs?repo=$(enc 'https://user:pw@git.example.com/x.git')"
expect_problem 422 "repo:" "repo with credentials"

# The client: kiln jobs --project / --repo.
kiln_jobs() {
	KILN_RC=0
	KILN_OUT=$(KILN_URL=$URL HOME=$T XDG_CONFIG_HOME=$T "$BUILDDIR/kiln" jobs "$@" 2>"$T/kiln.err") ||
		KILN_RC=$?
	KILN_IDS=$(printf '%s\n' "$KILN_OUT" | awk 'NF { print $1 }' | xargs)
}
kiln_jobs --project alpha
[ "$KILN_RC" = 0 ] && [ "$KILN_IDS" = "$A3 $A2 $A1" ] &&
	ok "kiln jobs --project alpha lists alpha's jobs" ||
	fail "kiln jobs --project alpha: rc $KILN_RC, '$KILN_OUT' $(cat "$T/kiln.err")"
kiln_jobs --repo "$BETA" --state queued --limit 1
[ "$KILN_RC" = 0 ] && [ "$KILN_IDS" = "$B2" ] &&
	ok "kiln jobs --repo URL --state --limit together" ||
	fail "kiln jobs --repo $BETA: rc $KILN_RC, '$KILN_OUT' $(cat "$T/kiln.err")"
kiln_jobs --project 'al pha'
[ "$KILN_RC" = 3 ] && grep -q "kiln: jobs: 422 .*project" "$T/kiln.err" &&
	ok "kiln jobs --project with a space: the server's 422, exit 3" ||
	fail "kiln jobs --project 'al pha': rc $KILN_RC, $(cat "$T/kiln.err")"
kiln_jobs --repo "https://x.example/$(printf 'r%.0s' $(seq 2100))"
[ "$KILN_RC" = 2 ] && grep -q "kiln: jobs: the request's URL would be longer than 2047 bytes" "$T/kiln.err" &&
	ok "kiln jobs --repo too long for a URL: said, exit 2, never cut short" ||
	fail "kiln jobs --repo of 2100 bytes: rc $KILN_RC, $(cat "$T/kiln.err")"

stop_kilnd TERM
finish
