#!/bin/bash
# The job API end to end against a real kilnd: submit, get, list with
# pagination and state filter, cancel, and every accepted job surviving a
# restart (and a SIGKILL).
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

stop_kilnd TERM
finish
