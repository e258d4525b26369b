#!/bin/bash
# Webhooks, projects, tokens and result callbacks, with real parts: the
# forges' payload shapes (tests/fixtures/hooks) signed with openssl,
# repositories served by git daemon, curl with bearer tokens, a callback
# receiver on 127.0.0.1 (socat), and HTTPS with a certificate openssl
# makes.  Every signature path, every token scope, redeliveries, and a
# GitHub push that ends in signed artifacts minisign verifies.
. "$(dirname "$0")/lib.sh"

for tool in git go openssl minisign socat sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
FIX=$SRCDIR/tests/fixtures/hooks

# --- GitHub's published test vector --------------------------------------------
got=$(printf 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody" | awk '{print $NF}')
[ "$got" = 757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 ] &&
	ok "openssl gives GitHub's HMAC test vector" || fail "HMAC vector: $got"

# --- three repositories on git daemon, one project per forge ---------------------
REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
GT_COMMIT=$(git -C "$(make_repo go-gitea "$SRCDIR/tests/fixtures/go-hello")" rev-parse HEAD)
GL_COMMIT=$(git -C "$(make_repo go-gitlab "$SRCDIR/tests/fixtures/go-hello")" rev-parse HEAD)
COMMIT=$(git -C "$REPO" rev-parse HEAD)
GPORT=$(pick_port)
git daemon --export-all --reuseaddr --base-path="$T/repos" \
	--listen=127.0.0.1 --port=$GPORT "$T/repos" 2>"$T/git-daemon.log" &
GITD=$!
trap 'kill $GITD $CBPID 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do
	git ls-remote "git://127.0.0.1:$GPORT/go-hello" >/dev/null 2>&1 && break
	sleep 0.1
done
GH_URL=git://127.0.0.1:$GPORT/go-hello
GT_URL=git://127.0.0.1:$GPORT/go-gitea
GL_URL=git://127.0.0.1:$GPORT/go-gitlab

# Tokens: only their hashes go into kilnd.conf.
ADMIN=admin-$(openssl rand -hex 16)
SUBMIT=submit-$(openssl rand -hex 16)
READ=read-$(openssl rand -hex 16)
h_admin=$(printf '%s\n' "$ADMIN" | "$KILND" --hash-token)
[ "$h_admin" = "$(printf '%s' "$ADMIN" | sha256sum | cut -c1-64)" ] &&
	ok "kilnd --hash-token prints the SHA-256 of the token on stdin" ||
	fail "--hash-token: $h_admin"
printf 'short\n' | "$KILND" --hash-token >/dev/null 2>"$T/ht.err" &&
	fail "--hash-token took a 5-character token" ||
	ok "--hash-token refuses a short token: $(cat "$T/ht.err")"

S1="first-secret-$(openssl rand -hex 8)"
S2="rotated-secret-$(openssl rand -hex 8)"
S_GT="gitea-secret-$(openssl rand -hex 8)"
S_GL="gitlab-token-$(openssl rand -hex 8)"
S_CB="app-callback-key-$(openssl rand -hex 8)"
CBPORT=$(pick_port)
cat >"$T/kilnd.conf" <<EOF
[kilnd]
allow_local_repos = yes
# The callback receiver listens on 127.0.0.1.
allow_private_callbacks = yes
max_body = 64K
notify_secret = farm-callback-secret-0123
notify_timeout = 4

[tokens]
ops = admin $h_admin
ci = submit $(printf '%s\n' "$SUBMIT" | "$KILND" --hash-token)
dash = read $(printf '%s\n' "$READ" | "$KILND" --hash-token)

[project app]
repo = $GH_URL
secret = $S1
secret = $S2
targets = linux/amd64, linux/arm64
refs = refs/heads/main refs/tags/v*
notify_url = http://127.0.0.1:$CBPORT/app
notify_secret = $S_CB

[project gt]
repo = $GT_URL
secret = $S_GT
targets = linux/amd64

[project gl]
repo = $GL_URL
secret = $S_GL
targets = linux/amd64

[project vector]
repo = https://example.org/vector.git
secret = It's a Secret to Everybody
EOF

# The callback receiver: every request's headers and body in $T/cb/.
mkdir -p "$T/cb"
cat >"$T/cb.sh" <<'EOF'
#!/bin/bash
n=$(date +%s%N); len=0
while IFS= read -r line; do
	line=${line%$'\r'}
	[ -z "$line" ] && break
	printf '%s\n' "$line" >>"$CBDIR/$n.headers"
	case ${line,,} in content-length:*) len=${line#*: } ;; esac
done
head -c "$len" >"$CBDIR/$n.body.tmp" && mv "$CBDIR/$n.body.tmp" "$CBDIR/$n.body"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'
EOF
CBDIR=$T/cb socat TCP-LISTEN:$CBPORT,bind=127.0.0.1,reuseaddr,fork \
	EXEC:"bash $T/cb.sh" 2>"$T/socat.log" &
CBPID=$!
export CBDIR=$T/cb

start_kilnd -c "$T/kilnd.conf" -w 2
AUTH=(-H "Authorization: Bearer $ADMIN")

# payload FIXTURE URL [COMMIT]: the fixture with its repo URLs and commit
# ids pointing here.
payload() {
	jq -c --arg u "$2" --arg c "${3:-$COMMIT}" '
		(if .repository.clone_url then .repository.clone_url = $u else . end)
		| (if .project.git_http_url then .project.git_http_url = $u | .repository.git_http_url = $u else . end)
		| (if has("after") then .after = $c else . end)
		| (if has("checkout_sha") then .checkout_sha = $c else . end)
		| (if .commits then .commits |= map(.id = $c) else . end)' "$FIX/$1"
}
sig() { printf '%s' "$2" | openssl dgst -sha256 -hmac "$1" | awk '{print $NF}'; }

# github BODY SECRET EVENT DELIVERY [curl args]: a GitHub delivery.
github() {
	local body=$1 secret=$2 event=$3 id=$4
	shift 4
	printf '%s' "$body" >"$T/body"
	api POST /v1/hooks/github -H "Content-Type: ${CT:-application/json}" \
		-H "X-GitHub-Event: $event" -H "X-GitHub-Delivery: $id" \
		-H "X-Hub-Signature-256: sha256=$(sig "$secret" "$body")" \
		--data-binary @"$T/body" "$@"
}
jobs_count() { db 'select count(*) from jobs'; }

# --- GitHub: every signature path ------------------------------------------------
PUSH=$(payload github-push.json "$GH_URL")
n0=$(jobs_count)
github "$PUSH" "wrong-secret-0123456789" push d-wrong
expect_problem 401 "does not match the secret of any project" "a delivery signed with a wrong secret"
printf '%s' "$PUSH" >"$T/body"
api POST /v1/hooks/github -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	--data-binary @"$T/body"
expect_problem 401 "X-Hub-Signature-256 header missing" "a delivery without a signature"
tampered=$(printf '%s' "$PUSH" | jq -c '.ref = "refs/heads/evil"')
api POST /v1/hooks/github -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	-H "X-Hub-Signature-256: sha256=$(sig "$S1" "$PUSH")" --data-binary "$tampered"
expect_problem 401 "does not match" "a tampered body (signature of the original)"
CT=text/plain github "$PUSH" "$S1" push d-ct
expect_problem 415 "Content-Type must be" "a signed delivery of the wrong content type"
big=$(head -c 70000 /dev/zero | tr '\0' a)
github "{\"x\":\"$big\"}" "$S1" push d-big
expect_problem 413 "max_body" "an oversize delivery"
[ "$(jobs_count)" = "$n0" ] && ok "no refused delivery created a job" ||
	fail "jobs went from $n0 to $(jobs_count)"
# kilnd checks GitHub's test vector: the signature is accepted (and the
# body, not JSON, refused as such), a changed digit is not.  The body
# names no repository, so it goes to the project's own path.
api POST /v1/hooks/github/vector -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	-H 'X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' \
	--data-binary 'Hello, World!'
expect_problem 400 "the payload is not JSON" "GitHub's test vector passes kilnd's signature check"
api POST /v1/hooks/github/vector -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	-H 'X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18' \
	--data-binary 'Hello, World!'
expect_status 401 "the vector with one digit changed"

github "$PUSH" "$S1" push delivery-1
expect_status 201 "a signed push to refs/heads/main"
GHJ=$(printf '%s' "$BODY" | jq -r .id)
expect_json .project app "the job is the project's"
expect_json .commit "$COMMIT" "the job builds the pushed commit"
expect_json .ref refs/heads/main "with the pushed ref"
expect_json '[.targets[].target] | join(",")' linux/amd64,linux/arm64 "the project's targets"
[ "$(header Location)" = "/v1/jobs/$GHJ" ] && ok "Location of the job" || fail "Location $(header Location)"
github "$PUSH" "$S1" push delivery-1
expect_status 200 "a redelivery"
expect_json .id "$GHJ" "a redelivery answers with the first job"
[ "$(db "select count(*) from jobs where project = 'app'")" = 1 ] &&
	ok "the redelivery made no second job" || fail "redelivery made a job"

# --- redelivery: one push is one job, whatever its delivery id ----------------------
# A replay of the signed body (the same bytes, so the same signature) with
# new delivery ids answers with the first job; without an id it is refused.
for id in replay-1 replay-2 0d6b9c2e-6f4a-11ef-8000-9a1b2c3d4e5f; do
	github "$PUSH" "$S1" push "$id"
	expect_status 200 "the signed push replayed with delivery id $id"
	expect_json .id "$GHJ" "the replay answers with the first job"
done
[ "$(header Location)" = "/v1/jobs/$GHJ" ] && ok "a replay's Location is the first job" ||
	fail "replay Location $(header Location)"
printf '%s' "$PUSH" >"$T/body"
api POST /v1/hooks/github -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	-H "X-Hub-Signature-256: sha256=$(sig "$S1" "$PUSH")" --data-binary @"$T/body"
expect_problem 400 "X-GitHub-Delivery header missing" "the signed push replayed without a delivery id"
github "$PUSH" "$S1" push ""
expect_problem 400 "X-GitHub-Delivery header missing" "the signed push with an empty delivery id"
github "$PUSH" "$S1" push "$(head -c 129 /dev/zero | tr '\0' d)"
expect_problem 400 "X-GitHub-Delivery must be 1 to 128 printable ASCII" "a 129-character delivery id"
github "$PUSH" "$S1" push "two words"
expect_problem 400 "X-GitHub-Delivery must be 1 to 128" "a delivery id with a space"
[ "$(db "select count(*) from jobs where project = 'app'")" = 1 ] &&
	ok "replays with new, missing and odd delivery ids made no second job" ||
	fail "replays made jobs: $(db 'select id, ref from jobs')"
# A delivery id names one push of one project: reused by another
# project's validly signed push it is refused, not answered with app's job.
github "$(payload github-push.json "$GT_URL" "$GT_COMMIT")" "$S_GT" push delivery-1
expect_problem 409 "X-GitHub-Delivery delivery-1 already made a job of another project" \
	"project app's delivery id on project gt's push"
[ "$(db "select count(*) from jobs where project = 'gt'")" = 0 ] &&
	ok "and it made no job" || fail "a job of gt was made"

# A different pushed commit ("after") is a new push: a new job.  It is
# signed with the rotated (second) secret.
printf 'second\n' >"$REPO/SECOND"
commit_all "$REPO" "second commit"
COMMIT2=$(git -C "$REPO" rev-parse HEAD)
PUSH2=$(payload github-push.json "$GH_URL" "$COMMIT2")
CT='application/json; charset=utf-8' github "$PUSH2" "$S2" push delivery-2
expect_status 201 "a push of another commit, signed with the rotated (second) secret"
GHJ2=$(printf '%s' "$BODY" | jq -r .id)
expect_json .commit "$COMMIT2" "the new job builds the new commit"
[ "$GHJ2" != "$GHJ" ] && ok "a different after made a new job ($GHJ2)" || fail "same job $GHJ2"

# Several deliveries of one push at once, each with its own id: one job;
# the others answer 200 with it, or 409 while it is being committed.
CPUSH=$(printf '%s' "$PUSH" | jq -c '.ref = "refs/tags/v2.3"')
printf '%s' "$CPUSH" >"$T/cbody"
csig=$(sig "$S1" "$CPUSH")
cpids=()
for i in 1 2 3 4 5 6; do
	curl -s -o "$T/conc$i.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: conc-$i" \
		-H "X-Hub-Signature-256: sha256=$csig" --data-binary @"$T/cbody" \
		"$URL/v1/hooks/github" >"$T/conc$i.code" &
	cpids+=($!)
done
wait "${cpids[@]}"
codes=$(cat "$T"/conc?.code | sort | tr '\n' ' ')
CONCJ=
n201=0
for f in "$T"/conc?.code; do
	[ "$(cat "$f")" = 201 ] || continue
	n201=$((n201 + 1))
	CONCJ=$(jq -r .id "${f%.code}.out")
done
odd=
for f in "$T"/conc?.code; do
	case $(cat "$f") in
	201) ;;
	200) [ "$(jq -r .id "${f%.code}.out")" = "$CONCJ" ] || odd="$odd 200:$(cat "${f%.code}.out")" ;;
	409) jq -r .detail "${f%.code}.out" | grep -q "is being committed" || odd="$odd 409:$(cat "${f%.code}.out")" ;;
	*) odd="$odd $(cat "$f"):$(cat "${f%.code}.out")" ;;
	esac
done
[ "$n201" = 1 ] && [ -z "$odd" ] &&
	ok "six concurrent deliveries of one push: one 201, the rest 200 with its job or 409 ($codes)" ||
	fail "concurrent deliveries: $codes;$odd"
[ "$(db "select count(*) from jobs where ref = 'refs/tags/v2.3'")" = 1 ] &&
	ok "six concurrent deliveries made one job" ||
	fail "concurrent deliveries made $(db "select count(*) from jobs where ref = 'refs/tags/v2.3'") jobs"
github "$CPUSH" "$S1" push conc-7
expect_status 200 "once committed, another delivery of that push"
expect_json .id "$CONCJ" "answers with the one job"

# --- per-project path: only that project's secrets ------------------------------------
PPUSH=$(printf '%s' "$PUSH" | jq -c '.ref = "refs/tags/v2.2"')
printf '%s' "$PPUSH" >"$T/body"
# pp PATH DELIVERY SECRET: $PPUSH delivered to PATH.
pp() {
	api POST "$1" -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
		-H "X-GitHub-Delivery: $2" -H "X-Hub-Signature-256: sha256=$(sig "$3" "$PPUSH")" \
		--data-binary @"$T/body"
}
pp /v1/hooks/github/app pp-1 "$S_GT"
expect_problem 401 "X-Hub-Signature-256 does not match a secret of project app" \
	"/v1/hooks/github/app refuses project gt's valid secret"
pp /v1/hooks/github/gt pp-2 "$S_GT"
expect_problem 401 "not made with a secret of project app" \
	"/v1/hooks/github/gt with gt's secret on a push of app's repository"
pp /v1/hooks/github/nosuch pp-3 "$S1"
expect_problem 404 "no project 'nosuch'" "a per-project path naming no project"
[ "$(db "select count(*) from jobs where ref = 'refs/tags/v2.2'")" = 0 ] &&
	ok "no refused per-project delivery made a job" || fail "a refused delivery made a job"
pp /v1/hooks/github/app pp-4 "$S2"
expect_status 201 "/v1/hooks/github/app accepts the project's (rotated) secret"
expect_json .project app "the per-project job is app's"
PPJ=$(printf '%s' "$BODY" | jq -r .id)
pp /v1/hooks/github pp-5 "$S1"
expect_status 200 "the same push on the unqualified path"
expect_json .id "$PPJ" "is a redelivery of the per-project one"

# Form deliveries sign the raw form body.
form="payload=$(printf '%s' "$PUSH" | jq -c '.ref = "refs/tags/v2.1"' | jq -sRr @uri)"
api POST /v1/hooks/github -H 'Content-Type: application/x-www-form-urlencoded' \
	-H 'X-GitHub-Event: push' -H 'X-GitHub-Delivery: delivery-form' \
	-H "X-Hub-Signature-256: sha256=$(sig "$S1" "$form")" --data-binary "$form"
expect_status 201 "an application/x-www-form-urlencoded delivery"
expect_json .commit "$COMMIT" "the form payload is read"
FORMJ=$(printf '%s' "$BODY" | jq -r .id)

github "$(payload github-ping.json "$GH_URL")" "$S1" ping d-ping
expect_status 200 "ping"
expect_json .project app "ping names the project"
# An event name that is not UTF-8 (found by fuzz_router: it crashed kilnd).
github "$PUSH" "$S1" "$(printf 'push\310\310')" d-binary
expect_status 202 "an event header with bytes that are not UTF-8"
expect_json '.ignored | test("event .push\\?\\?. does not build")' true "is ignored, the bytes shown as '?'"
github "$PUSH" "$S1" issues d-issues
expect_status 202 "an issues event"
expect_json '.ignored | test("event .issues. does not build")' true "it is ignored with a reason"
github "$(printf '%s' "$PUSH" | jq -c '.deleted = true | .after = "0000000000000000000000000000000000000000"')" "$S1" push d-del
expect_status 202 "a branch deletion"
expect_json '.ignored | test("deletion")' true "a deletion builds nothing"
github "$(printf '%s' "$PUSH" | jq -c '.ref = "refs/heads/feature"')" "$S1" push d-feat
expect_status 202 "a push to a ref the project does not build"
expect_json '.ignored | test("does not match the refs")' true "says why"
github "$(printf '%s' "$PUSH" | jq -c '.ref = "refs/tags/v2.0"')" "$S1" push d-tag
expect_status 201 "a tag matching refs/tags/v*"
TAGJ=$(printf '%s' "$BODY" | jq -r .id)

# An annotated tag, how releases are cut: GitHub's push event carries the
# tag object's id in "after", not the commit's.  The job must build (and
# record) the commit the tag peels to, and keep the tag as its ref.
# annotated_tag REPO-DIR TAG: make it with git; sets TAGOBJ and TAGCOMMIT.
annotated_tag() {
	git -C "$1" -c user.name=kiln-test -c user.email=t@kiln.invalid \
		tag -a "$2" -m "release $2"
	TAGOBJ=$(git -C "$1" rev-parse "$2")
	TAGCOMMIT=$(git -C "$1" rev-parse "$2^{commit}")
	[ "$(git -C "$1" cat-file -t "$TAGOBJ")" = tag ] && [ "$TAGOBJ" != "$TAGCOMMIT" ] &&
		ok "git tag -a $2: tag object $TAGOBJ on commit $TAGCOMMIT" ||
		fail "$2 is not an annotated tag: $TAGOBJ"
}
annotated_tag "$REPO" v1.0.0
GH_TAGCOMMIT=$TAGCOMMIT
github "$(payload github-push.json "$GH_URL" "$TAGOBJ" | jq -c --arg c "$TAGCOMMIT" \
	'.ref = "refs/tags/v1.0.0" | .base_ref = "refs/heads/main" | .commits = [] |
	 .head_commit = {id: $c, message: "fixture"}')" "$S1" push d-annotated
expect_status 201 "a GitHub push of an annotated tag (after = the tag object)"
ANNJ=$(printf '%s' "$BODY" | jq -r .id)
expect_json .ref refs/tags/v1.0.0 "the annotated tag is the job's ref"
github "$(payload github-push.json https://github.com/someone/else.git)" "$S1" push d-unknown
expect_problem 401 "does not match the secret of any project" \
	"a valid delivery for an unknown repository: no secret to try, the answer of a wrong one"
grep -q "the payload names no project's repository ('https://github.com/someone/else.git')" "$KLOG" &&
	ok "kilnd's log names the unknown repository" ||
	fail "kilnd's log does not name the unknown repository"
github "$(payload github-push.json "$GH_URL")" "$S_GT" push d-other
expect_problem 401 "does not match the secret of any project" "signed with another project's secret"

# --- Gitea and GitLab ---------------------------------------------------------------
GTP=$(payload gitea-push.json "$GT_URL" "$GT_COMMIT")
printf '%s' "$GTP" >"$T/body"
api POST /v1/hooks/gitea -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
	-H 'X-Gitea-Delivery: gt-1' -H "X-Gitea-Signature: $(sig "$S_GT" "$GTP")" --data-binary @"$T/body"
expect_status 201 "a Gitea push (X-Gitea-Signature)"
GTJ=$(printf '%s' "$BODY" | jq -r .id)
expect_json .project gt "Gitea job"
api POST /v1/hooks/gitea -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
	-H 'X-Gitea-Delivery: gt-replay' -H "X-Gitea-Signature: $(sig "$S_GT" "$GTP")" --data-binary @"$T/body"
expect_status 200 "a Gitea push replayed with a new X-Gitea-Delivery"
expect_json .id "$GTJ" "answers with the first job"
api POST /v1/hooks/gitea -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
	-H "X-Gitea-Signature: $(sig "$S_GT" "$GTP")" --data-binary @"$T/body"
expect_problem 400 "X-Gitea-Delivery header missing" "a Gitea push without X-Gitea-Delivery"
api POST /v1/hooks/gitea/gt -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
	-H 'X-Gitea-Delivery: gt-replay-2' -H "X-Gitea-Signature: $(sig "$S_GT" "$GTP")" --data-binary @"$T/body"
expect_status 200 "the Gitea push on /v1/hooks/gitea/gt"
expect_json .id "$GTJ" "is a redelivery too"
annotated_tag "$T/repos/go-gitea" v1.0.0
GT_TAGCOMMIT=$TAGCOMMIT
GTA=$(payload gitea-push.json "$GT_URL" "$TAGOBJ" | jq -c '.ref = "refs/tags/v1.0.0" | .commits = []')
printf '%s' "$GTA" >"$T/body"
api POST /v1/hooks/gitea -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
	-H 'X-Gitea-Delivery: gt-annotated' -H "X-Gitea-Signature: $(sig "$S_GT" "$GTA")" \
	--data-binary @"$T/body"
expect_status 201 "a Gitea push of an annotated tag (after = the tag object)"
GTANNJ=$(printf '%s' "$BODY" | jq -r .id)
api POST /v1/hooks/gitea -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' \
	-H "X-Gitea-Signature: $(sig "$S1" "$GTP")" --data-binary @"$T/body"
expect_problem 401 "X-Gitea-Signature" "a Gitea push with a wrong signature"

GLP=$(payload gitlab-push.json "$GL_URL" "$GL_COMMIT")
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	-H 'X-Gitlab-Event: Push Hook' -H 'X-Gitlab-Event-UUID: gl-1' --data-binary "$GLP"
expect_status 201 "a GitLab push (X-Gitlab-Token)"
GLJ=$(printf '%s' "$BODY" | jq -r .id)
expect_json .commit "$GL_COMMIT" "GitLab: checkout_sha is built"
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	-H 'X-Gitlab-Event-UUID: gl-1' --data-binary "$GLP"
expect_status 200 "a GitLab redelivery (X-Gitlab-Event-UUID)"
expect_json .id "$GLJ" "answers with the first job"
api POST /v1/hooks/gitlab/gl -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	-H 'X-Gitlab-Event-UUID: gl-replay' --data-binary "$GLP"
expect_status 200 "a GitLab push replayed with a new X-Gitlab-Event-UUID on /v1/hooks/gitlab/gl"
expect_json .id "$GLJ" "answers with the first job"
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	--data-binary "$GLP"
expect_problem 400 "X-Gitlab-Event-UUID header missing" "a GitLab push without X-Gitlab-Event-UUID"
api POST /v1/hooks/gitlab/app -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	-H 'X-Gitlab-Event-UUID: gl-3' --data-binary "$GLP"
expect_problem 401 "X-Gitlab-Token does not match a secret of project app" \
	"/v1/hooks/gitlab/app refuses project gl's token"
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	-H 'X-Gitlab-Event-UUID: gl-2' --data-binary "$(payload gitlab-tag-push.json "$GL_URL" "$GL_COMMIT")"
expect_status 201 "a GitLab tag_push"
expect_json .ref refs/tags/v1.0.0 "the tag is the job's ref"
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: wrong-token-0123456789" \
	--data-binary "$GLP"
expect_problem 401 "X-Gitlab-Token does not match" "a GitLab delivery with a wrong token"
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: $S_GL" \
	--data-binary "$(printf '%s' "$GLP" | jq -c '.object_kind = "merge_request"')"
expect_status 202 "a GitLab merge_request event is ignored"

# --- tokens ---------------------------------------------------------------------------
api GET /v1/jobs
expect_problem 401 "needs a bearer token" "no token"
[ "$(header WWW-Authenticate)" = 'Bearer realm="kiln"' ] && ok "401 says WWW-Authenticate: Bearer" ||
	fail "WWW-Authenticate: $(header WWW-Authenticate)"
api GET /v1/jobs -H "Authorization: Bearer not-$READ"
expect_status 401 "a wrong token"
api GET /v1/jobs -H "Authorization: Bearer $READ"
expect_status 200 "a read token lists jobs"
REQ="{\"repo\": \"$GH_URL\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
post_job "$REQ" -H "Authorization: Bearer $READ"
expect_problem 403 "scope is too small" "a read token cannot submit"
api POST /v1/admin/pause -H "Authorization: Bearer $SUBMIT"
expect_problem 403 "needs admin" "a submit token cannot pause builds"
post_job "{\"repo\": \"https://example.org/not-a-project.git\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}" \
	-H "Authorization: Bearer $SUBMIT"
expect_problem 403 "is not the repo of a project" "POST of a repository that is no project's"
post_job "$(printf '%s' "$REQ" | jq -c '.notify = {url: "http://127.0.0.1:1/nothing-listens"}')" \
	-H "Authorization: Bearer $SUBMIT"
expect_status 201 "a submit token submits a project's repository"
NJ=$(printf '%s' "$BODY" | jq -r .id)
expect_json .project app "a POSTed job of a project's repo is the project's"
api GET "/v1/jobs/$GHJ/artifacts"
expect_status 401 "downloads need a token unless public_read"
api GET /v1/pubkey -H "Authorization: Bearer $READ"
expect_status 200 "a read token downloads the public key"
api POST /v1/admin/pause "${AUTH[@]}"
expect_status 200 "an admin token pauses"
api POST /v1/admin/resume "${AUTH[@]}"
expect_status 200 "and resumes"
grep -q -e "$ADMIN" -e "$SUBMIT" -e "$READ" -e "$S1" -e "$S2" -e "$S_GL" "$KLOG" &&
	fail "a token or secret appears in kilnd's log" || ok "no token or secret in kilnd's log"
api GET "/v1/jobs/$GHJ" "${AUTH[@]}"
grep -q -e "$S1" -e "$S2" <<<"$BODY" && fail "a secret in the job" || ok "no secret in the job JSON"

# --- the GitHub push ends in signed artifacts ---------------------------------------------
for id in $GHJ $GHJ2 $CONCJ $PPJ $FORMJ $TAGJ $ANNJ $GTJ $GTANNJ $GLJ $NJ; do
	for _ in $(seq 1 1500); do
		s=$(curl -s "${AUTH[@]}" "$URL/v1/jobs/$id" | jq -r .state)
		case $s in succeeded|failed|canceled) break ;; esac
		sleep 0.2
	done
	[ "$s" = succeeded ] && ok "job $id succeeded" || fail "job $id: $s"
done
for j in "$ANNJ GitHub $GH_TAGCOMMIT" "$GTANNJ Gitea $GT_TAGCOMMIT"; do
	read -r id forge want <<<"$j"
	api GET "/v1/jobs/$id" "${AUTH[@]}"
	expect_json .commit "$want" "$forge annotated tag: the job records the peeled commit"
	expect_json .ref refs/tags/v1.0.0 "$forge annotated tag: and keeps the tag as its ref"
done
for _ in $(seq 1 100); do
	[ "$(curl -s "${AUTH[@]}" "$URL/v1/jobs/$GHJ" | jq -r .signed)" = true ] && break
	sleep 0.1
done
D=$T/dl; mkdir -p "$D/linux_amd64" "$D/linux_arm64"
for f in linux_amd64/go-hello linux_arm64/go-hello; do
	curl -sf -H "Authorization: Bearer $READ" -o "$D/$f" "$URL/v1/jobs/$GHJ/artifacts/$f" || fail "download $f"
done
for f in SHA256SUMS SHA256SUMS.minisig; do
	curl -sf -H "Authorization: Bearer $READ" -o "$D/$f" "$URL/v1/jobs/$GHJ/$f" || fail "download $f"
done
curl -sf -H "Authorization: Bearer $READ" -o "$D/kiln.pub" "$URL/v1/pubkey"
(cd "$D" && sha256sum -c --quiet SHA256SUMS) && minisign -Vqm "$D/SHA256SUMS" -p "$D/kiln.pub" &&
	ok "the GitHub push ended in artifacts that sha256sum -c and minisign -V accept" ||
	fail "verification of the webhook job's artifacts"

# --- result callbacks -------------------------------------------------------------------------
for _ in $(seq 1 100); do
	[ "$(ls "$T/cb"/*.body 2>/dev/null | wc -l)" -ge 4 ] && break
	sleep 0.1
done
found=0
for b in "$T"/cb/*.body; do
	[ "$(jq -r .job.id "$b")" = "$GHJ" ] || continue
	found=1
	h=${b%.body}.headers
	want="sha256=$(openssl dgst -sha256 -hmac "$S_CB" <"$b" | awk '{print $NF}')"
	[ "$(sed -n 's/^X-Kiln-Signature-256: //p' "$h")" = "$want" ] &&
		ok "the callback is signed with the project's notify_secret (openssl HMAC of the body)" ||
		fail "callback signature: $(cat "$h")"
	# A receiver must never learn a key that signs webhooks.
	for k in "$S1" "$S2"; do
		[ "$(sed -n 's/^X-Kiln-Signature-256: //p' "$h")" != \
			"sha256=$(openssl dgst -sha256 -hmac "$k" <"$b" | awk '{print $NF}')" ] ||
			fail "the callback is signed with a webhook secret"
	done
	[ "$(jq -r .event "$b")" = job.succeeded ] && [ "$(jq -r .job.signed "$b")" = true ] &&
		ok "the callback carries the signed, succeeded job" || fail "callback body $(head -c 300 "$b")"
	grep -q '^POST /app HTTP/1.1' "$h" && ok "POSTed to the project's notify_url" || fail "request line: $(head -1 "$h")"
done
[ $found = 1 ] || fail "no callback for job $GHJ arrived: $(ls "$T/cb")"
api GET "/v1/jobs/$GHJ" "${AUTH[@]}"
expect_json .notify.state delivered "the job shows its callback delivered"
# A receiver that never answers: retried, shown, then failed.
for _ in $(seq 1 150); do
	api GET "/v1/jobs/$NJ" "${AUTH[@]}"
	[ "$(printf '%s' "$BODY" | jq -r .notify.state)" = failed ] && break
	sleep 0.1
done
expect_json .notify.state failed "a callback nobody takes fails after notify_timeout"
expect_json '.notify.error | test("curl: \\(7\\)")' true "the job shows curl's error"
expect_json '.notify.attempts >= 1' true "after its attempts"
api GET /healthz "${AUTH[@]}"
expect_status 200 "kilnd serves"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd exits 0" || fail "kilnd exit $KEXIT"

# --- redelivery survives a restart ------------------------------------------------------
# The pushes are in the database, not only in kilnd's memory.
start_kilnd -c "$T/kilnd.conf" -w 2
njobs=$(jobs_count)
github "$PUSH" "$S1" push after-restart-1
expect_status 200 "after a restart, the first push with a new delivery id"
expect_json .id "$GHJ" "answers with the first job"
github "$PUSH2" "$S2" push after-restart-2
expect_status 200 "after a restart, the second commit's push with a new delivery id"
expect_json .id "$GHJ2" "answers with its job"
github "$PUSH" "$S1" push ""
expect_problem 400 "X-GitHub-Delivery header missing" "after a restart, a push without a delivery id"
[ "$(jobs_count)" = "$njobs" ] && ok "no replay after the restart made a job" ||
	fail "jobs went from $njobs to $(jobs_count) after the restart"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd exits 0 after the restart" || fail "kilnd exit $KEXIT"

# --- the unqualified path tries one project's secrets -------------------------------------
# It tries only the secrets of the project whose repository the payload
# names: three projects fit under max_hook_secrets = 2, a project with
# three secrets does not, and is reached through its own path.
STATE_MAIN=$STATE
STATE=$T/state-secrets
SA="one-secret-$(openssl rand -hex 8)"
SB="two-secret-$(openssl rand -hex 8)"
SC="three-secret-$(openssl rand -hex 8)"
secrets_conf() {
	printf '[kilnd]\npaused = yes\nmax_hook_secrets = %s\n' "$1"
	printf '[project one]\nrepo = https://example.org/one.git\nsecret = %s\n' "$SA"
	printf '[project two]\nrepo = https://example.org/two.git\nsecret = %s\n' "$SB"
	printf '[project three]\nrepo = https://example.org/three.git\n'
	printf 'secret = %s-a\nsecret = %s-b\nsecret = %s\n' "$SC" "$SC" "$SC"
}
secrets_conf 2 >"$T/secrets.conf"
start_kilnd -c "$T/secrets.conf"
TWO=$(payload github-push.json https://example.org/two.git)
github "$TWO" "$SB" push two-1
expect_status 201 "4 secrets in the farm, max_hook_secrets = 2: project two's push is taken"
expect_json .project two "as project two's job"
TWOJ=$(printf '%s' "$BODY" | jq -r .id)
THREE=$(payload github-push.json https://example.org/three.git)
github "$THREE" "$SC" push three-1
expect_problem 403 "max_hook_secrets = 2" "project three has 3 secrets: the unqualified path refuses"
expect_json '.detail | contains("deliver to /v1/hooks/github/{project}")' true \
	"the refusal tells the sender to use /v1/hooks/github/{project}"
api POST /v1/hooks/gitlab -H 'Content-Type: application/json' -H "X-Gitlab-Token: $SC" \
	-H 'X-Gitlab-Event-UUID: three-gl' --data-binary "$(payload gitlab-push.json https://example.org/three.git)"
expect_problem 403 "/v1/hooks/gitlab/{project}" "so does GitLab's"
printf '%s' "$THREE" >"$T/body3"
api POST /v1/hooks/github/three -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	-H 'X-GitHub-Delivery: three-2' -H "X-Hub-Signature-256: sha256=$(sig "$SC" "$THREE")" \
	--data-binary @"$T/body3"
expect_status 201 "/v1/hooks/github/three takes it"
OTHER=$(payload github-push.json https://example.org/nobody.git)
github "$OTHER" "$SB" push other-1
expect_problem 401 "does not match the secret of any project" \
	"a payload naming no project's repository: the answer of a wrong signature"
grep -q "hook github: the payload names no project's repository ('https://example.org/nobody.git')" "$KLOG" &&
	ok "kilnd's log names the repository" || fail "kilnd's log does not name the unknown repository"
printf '%s' "$TWO" >"$T/body"
api POST /v1/hooks/github -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
	-H 'X-GitHub-Delivery: two-0' --data-binary @"$T/body"
expect_problem 401 "X-Hub-Signature-256 header missing" "an unsigned delivery is still a 401 there"
# two PATH DELIVERY SECRET: $TWO delivered to PATH.
two() {
	api POST "$1" -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
		-H "X-GitHub-Delivery: $2" -H "X-Hub-Signature-256: sha256=$(sig "$3" "$TWO")" \
		--data-binary @"$T/body"
}
two /v1/hooks/github/two two-2 "$SB"
expect_status 200 "/v1/hooks/github/two: the same push is a redelivery"
expect_json .id "$TWOJ" "of the job the unqualified path made"
two /v1/hooks/github/two two-3 "$SA"
expect_problem 401 "does not match a secret of project two" "/v1/hooks/github/two refuses project one's secret"
two /v1/hooks/github two-4 "$SA"
expect_problem 401 "does not match the secret of any project" "so does the unqualified path"
stop_kilnd
# max_hook_secrets = 0: only the per-project paths; across the restart
# the push is still a redelivery there.
secrets_conf 0 >"$T/secrets.conf"
start_kilnd -c "$T/secrets.conf"
github "$TWO" "$SB" push two-5
expect_problem 403 "max_hook_secrets = 0" "max_hook_secrets = 0: the unqualified path tries nothing"
two /v1/hooks/github/two two-6 "$SB"
expect_status 200 "the per-project path takes the same push after the restart"
expect_json .id "$TWOJ" "as a redelivery of the first job"
stop_kilnd
STATE=$STATE_MAIN

# --- backpressure and per-address connections -----------------------------------------
# With tokens kilnd may listen on every address; public_read opens the
# downloads and /healthz, nothing else.
cat >"$T/small.conf" <<EOF
[kilnd]
allow_local_repos = yes
paused = yes
max_queued = 3
max_connections_per_ip = 2
public_read = yes

[tokens]
ops = admin $h_admin
EOF
start_kilnd -c "$T/small.conf" -l 0.0.0.0:0
ok "with tokens kilnd listens on 0.0.0.0 ($URL)"
api GET /healthz
expect_status 200 "public_read: /healthz without a token"
api GET /v1/pubkey
expect_status 200 "public_read: the public key without a token"
api GET /v1/jobs
expect_status 401 "public_read does not open the job list"
post_job '{"repo": "https://example.org/a.git", "ref": "main", "targets": ["linux/amd64", "linux/arm64"]}' "${AUTH[@]}"
expect_status 201 "two targets of max_queued = 3"
post_job '{"repo": "https://example.org/a.git", "ref": "main", "targets": ["linux/amd64", "linux/arm64"]}' "${AUTH[@]}"
expect_problem 503 "max_queued = 3 queued targets" "two more targets would pass max_queued"
[ -n "$(header Retry-After)" ] && ok "503 with Retry-After" || fail "no Retry-After"
PORT=${URL##*:}
URL=http://127.0.0.1:$PORT
exec 7<>"/dev/tcp/127.0.0.1/$PORT" 8<>"/dev/tcp/127.0.0.1/$PORT"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz" || true)
[ "$code" != 200 ] && ok "a third connection from one address is refused (got '$code')" ||
	fail "a third connection was served"
exec 7>&- 8>&-
sleep 0.2
api GET /healthz
expect_status 200 "served again once the two idle connections closed"
stop_kilnd

# --- HTTPS ---------------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/tls.key" -out "$T/tls.crt" 2>/dev/null
chmod 600 "$T/tls.key"
printf '[kilnd]\npaused = yes\nallow_local_repos = yes\ntls_cert = %s\ntls_key = %s\n' "$T/tls.crt" "$T/tls.key" >"$T/tls.conf"
KLOG=$T/kilnd.tls.log
"$KILND" -l 127.0.0.1:0 -d "$STATE" -c "$T/tls.conf" 2>"$KLOG" &
KPID=$!
HURL=
for _ in $(seq 1 100); do
	HURL=$(grep -o 'listening on https://[0-9.:]*' "$KLOG" | head -1 | sed 's/listening on //') || true
	[ -n "$HURL" ] && break
	sleep 0.05
done
[ -n "$HURL" ] && ok "kilnd says it serves $HURL" || fail "no https listening line: $(cat "$KLOG")"
code=$(curl -s -o "$T/h.out" -w '%{http_code}' --cacert "$T/tls.crt" "$HURL/healthz")
[ "$code" = 200 ] && ok "curl --cacert verifies kilnd's certificate and gets /healthz" ||
	fail "https: $code $(cat "$T/h.out")"
curl -s -o /dev/null --max-time 5 "${HURL/https/http}/healthz" &&
	fail "plain http was served on the TLS port" || ok "plain http is not served on the TLS port"
curl -s -o /dev/null "$HURL/healthz" && fail "curl accepted an unknown certificate" ||
	ok "without --cacert curl refuses the self-made certificate"
stop_kilnd
printf '[kilnd]\ntls_cert = %s\n' "$T/tls.crt" >"$T/half.conf"
"$KILND" -l 127.0.0.1:0 -d "$STATE" -c "$T/half.conf" 2>"$T/half.log" &&
	fail "kilnd started with tls_cert but no tls_key" ||
	{ grep -q "tls_cert and tls_key go together" "$T/half.log" &&
	  ok "tls_cert without tls_key is refused with a reason" || fail "half TLS: $(cat "$T/half.log")"; }

finish
