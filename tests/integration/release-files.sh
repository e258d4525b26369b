#!/bin/bash
# The repository's files a release archive holds (LICENSE*, README*,
# CHANGELOG* by default), when some of their names are not printable
# ASCII (a translated README, a name with a backslash): an archive cannot
# hold such a name, so each is left out with a line in the release row's
# log naming it, and the release still succeeds with every other file.
. "$(dirname "$0")/lib.sh"

for tool in git tar; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

mkdir -p "$T/fx"
printf 'MIT\n' >"$T/fx/LICENSE"
printf 'readme\n' >"$T/fx/README.md"
printf 'lisez-moi\n' >"$T/fx/"$'README.fran\xc3\xa7ais.md'
printf 'back\n' >"$T/fx/"'CHANGELOG\x.md'
REPO=$(make_repo files "$T/fx")
COMMIT=$(git -C "$REPO" rev-parse HEAD)
start_kilnd -w 1

post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"recipe\": {\"kind\": \"command\", \"command\": \"printf x > /out/app\"},
    \"archives\": true}"
expect_status 201 "a job with archives is accepted"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json .state succeeded "the release succeeds despite names an archive cannot hold"
expect_json '.targets[-1].target' release "the release row follows the build"
A=files_0.0.0-SNAPSHOT-${COMMIT:0:7}_linux_amd64.tar.gz
curl -sSf -o "$T/a.tar.gz" "$URL/v1/jobs/$ID/artifacts/release/$A" ||
	fail "download release/$A"
[ "$(tar -tzf "$T/a.tar.gz" | tr '\n' ' ')" = "LICENSE README.md app " ] &&
	ok "the archive holds LICENSE, README.md and app" ||
	fail "the archive holds: $(tar -tzf "$T/a.tar.gz" | tr '\n' ' ')"
api GET "/v1/jobs/$ID/targets/release/log"
grep -qF 'repository file README.fran\xc3\xa7ais.md: left out' <<<"$BODY" &&
	grep -qF 'repository file CHANGELOG\x5cx.md: left out' <<<"$BODY" &&
	ok "the log names each file left out" || fail "release log: $BODY"
finish
