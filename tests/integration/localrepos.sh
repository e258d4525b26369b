#!/bin/bash
# Local repositories (file:// URLs and absolute paths) are opt-in:
# without `allow_local_repos = yes` a submission naming one is a 422 that
# names the key, and a project naming one is a configuration error; with
# it, a repository in, equal to or above the state directory is still a
# 422, however it is spelled; a job queued while it was allowed fails at
# its fetch once it is not.
. "$(dirname "$0")/lib.sh"

command -v git >/dev/null || { echo "SKIP: git missing"; exit 77; }

mkdir -p "$T/plain"
echo x >"$T/plain/README"
REPO=$(make_repo plain "$T/plain")
CMD='"recipe": {"kind": "command", "command": "echo built > /out/ok"}'

# --- off (the default) -------------------------------------------------------
printf '[kilnd]\npaused = yes\n' >"$T/off.conf"
start_kilnd -c "$T/off.conf"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
expect_problem 422 allow_local_repos "a path without allow_local_repos"
post_job "{\"repo\": \"file://$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
expect_problem 422 allow_local_repos "a file:// URL without allow_local_repos"
post_job '{"repo": "https://git.example.invalid/x.git", "ref": "main",
	"targets": ["linux/amd64"]}'
expect_status 201 "a remote URL is accepted without the key"
[ "$(db 'select count(*) from jobs')" = 1 ] &&
	ok "nothing was stored for the refused submissions" ||
	fail "jobs stored: $(db 'select count(*) from jobs')"
stop_kilnd TERM
rm -rf "$STATE"

# A project's local repo needs the key too.
printf '[kilnd]\npaused = yes\n\n[project p]\nrepo = %s\n' "$REPO" >"$T/proj.conf"
if out=$("$KILND" -c "$T/proj.conf" --check-config 2>&1); then
	fail "a project with a local repo was accepted without allow_local_repos"
elif [[ "$out" == *"proj.conf:4: [project p] repo:"*allow_local_repos* ]]; then
	ok "a project's local repo without the key is a configuration error naming it"
else
	fail "project with a local repo: $out"
fi
printf '[kilnd]\nallow_local_repos = yes\n\n[project p]\nrepo = %s\n' "$REPO" \
	>"$T/proj.conf"
"$KILND" -c "$T/proj.conf" --check-config >/dev/null 2>&1 &&
	ok "... and accepted with it" ||
	fail "with the key: $("$KILND" -c "$T/proj.conf" --check-config 2>&1)"

# --- on: built, but never the state directory --------------------------------
printf '[kilnd]\nallow_local_repos = yes\n' >"$T/on.conf"
start_kilnd -c "$T/on.conf"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"], $CMD}"
expect_status 201 "a path with allow_local_repos = yes"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 120
expect_json .state succeeded "the local repository is built"

# A git repository inside the state directory: a 422 however it is named.
git init -q --bare "$STATE/cache/evil.git"
git -C "$REPO" push -q "$STATE/cache/evil.git" main
S=$STATE
for r in "$S/cache/evil.git" "file://$S/cache/evil.git" "$S" "$S/" \
    "$(dirname "$S")" "file://$S/./cache//evil.git" \
    "file://$(dirname "$S")/%73tate/cache/evil.git" "/"; do
	post_job "{\"repo\": \"$r\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"], $CMD}"
	expect_problem 422 "state directory" "repo $r (in, at or above the state directory)"
done
# A neighbour that only shares a prefix is fine.
mkdir -p "$T/state-neighbour"
git clone -q --bare "$REPO" "$T/state-neighbour/r.git"
post_job "{\"repo\": \"$T/state-neighbour/r.git\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\"], $CMD}"
expect_status 201 "a path that only shares the state directory's prefix"
wait_job "$(printf '%s' "$BODY" | jq -r .id)" 120
expect_json .state succeeded "... is built"
stop_kilnd TERM

# --- queued while allowed, fetched once it is not ------------------------------
printf '[kilnd]\nallow_local_repos = yes\npaused = yes\n' >"$T/paused-on.conf"
start_kilnd -c "$T/paused-on.conf"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	$CMD, \"cache\": false}"
expect_status 201 "queued while local repositories are allowed"
Q=$(printf '%s' "$BODY" | jq -r .id)
stop_kilnd TERM
printf '[kilnd]\n' >"$T/plain.conf"
start_kilnd -c "$T/plain.conf"
wait_job "$Q" 60
expect_json .state failed "a queued local job after allow_local_repos was turned off"
expect_json '.error | test("allow_local_repos")' true "... fails naming the key"
stop_kilnd TERM
finish
