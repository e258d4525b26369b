#!/bin/bash
# Trust classes: a build of an unprotected ref, or a submission without
# the admin scope, cannot plant anything a protected (tag, default
# branch) build of the same repository reads, and a protected job never
# reuses an unprotected job's result.  Positive controls show that the
# test would see a planted file or a reuse where the class allows it.
. "$(dirname "$0")/../integration/lib.sh"

for tool in git openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

mkdir -p "$T/src"; echo 'x' > "$T/src/README"
REPO=$(make_repo trusted "$T/src")
git -C "$REPO" tag v1.0
git -C "$REPO" branch feature
SHA=$(git -C "$REPO" rev-parse HEAD)
REPO2=$(make_repo released "$T/src")
git -C "$REPO2" branch release-1
git -C "$REPO2" tag v2.0

ADMIN=admin-$(openssl rand -hex 12)
SUBMIT=submit-$(openssl rand -hex 12)
cat > "$T/trust.conf" <<CONF
[kilnd]
allow_local_repos = yes
build_timeout = 120
open_submissions = yes

[tokens]
ops = admin $(printf '%s\n' "$ADMIN" | "$KILND" --hash-token)
ci = submit $(printf '%s\n' "$SUBMIT" | "$KILND" --hash-token)

[project rel]
repo = $REPO2
protected_refs = refs/heads/release-*
CONF
start_kilnd -c "$T/trust.conf"
AS_ADMIN=(-H "Authorization: Bearer $ADMIN")
AS_SUBMIT=(-H "Authorization: Bearer $SUBMIT")

# job REPO REF COMMAND [curl args...]: runs COMMAND for linux/amd64 and
# waits; sets JID, BODY (the job) and LOG (the target's log).
job() {
	local repo=$1 ref=$2 cmd=$3
	shift 3
	post_job "$(jq -cn --arg r "$repo" --arg f "$ref" --arg c "$cmd" \
		'{repo: $r, ref: $f, targets: ["linux/amd64"],
		  recipe: {kind: "command", command: $c}}')" "$@"
	if [ "$STATUS" != 201 ]; then
		fail "submit $ref: $STATUS $BODY"; JID=; LOG=; return
	fi
	JID=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$JID" 180 || true
	local body=$BODY
	LOG=$(curl -s "${AS_ADMIN[@]}" "$URL/v1/jobs/$JID/targets/linux_amd64/log")
	BODY=$body
}
# Every request needs a token on this farm: the admin's unless the
# caller names one (curl would send both, and the first one counts).
api() {
	local method=$1 path=$2 auth=("${AS_ADMIN[@]}")
	shift 2
	case "$*" in *Authorization:*) auth=() ;; esac
	BODY=$(curl -sS -X "$method" -D "$T/headers" -o - -w '\n%{http_code}' \
		"${auth[@]}" "$@" "$URL$path") || { STATUS=000; return 0; }
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
trust_is() {
	local want=$1 what=$2 got
	got=$(printf '%s' "$BODY" | jq -r .trust)
	[ "$got" = "$want" ] && ok "$what: trust $want" ||
		fail "$what: trust '$got', expected $want: $BODY"
}

# --- which refs are protected ------------------------------------------------
NOOP='echo built > "$KILN_OUT/out.txt"'
job "$REPO" v1.0 "$NOOP" "${AS_ADMIN[@]}"; trust_is protected "admin, tag v1.0"
job "$REPO" main "$NOOP" "${AS_ADMIN[@]}"; trust_is protected "admin, default branch main"
job "$REPO" refs/heads/main "$NOOP" "${AS_ADMIN[@]}"; trust_is protected "admin, refs/heads/main"
job "$REPO" feature "$NOOP" "${AS_ADMIN[@]}"; trust_is unprotected "admin, branch feature"
job "$REPO" "$SHA" "$NOOP" "${AS_ADMIN[@]}"; trust_is unprotected "admin, a commit id"
job "$REPO" v1.0 "$NOOP" "${AS_SUBMIT[@]}"; trust_is unprotected "submit token, tag v1.0"
job "$REPO2" release-1 "$NOOP" "${AS_ADMIN[@]}"; trust_is protected "project protected_refs, release-1"
job "$REPO2" v2.0 "$NOOP" "${AS_ADMIN[@]}"; trust_is unprotected "project protected_refs replace the default: tag v2.0"
job "$REPO2" main "$NOOP" "${AS_ADMIN[@]}"; trust_is unprotected "project protected_refs replace the default: main"
# The provenance says whose caches the build used.
job "$REPO" v1.0 'echo prov > "$KILN_OUT/p.txt"' "${AS_ADMIN[@]}"
curl -s "${AS_ADMIN[@]}" "$URL/v1/jobs/$JID/provenance.intoto.jsonl" |
	jq -r .payload | base64 -d > "$T/prov.json"
[ "$(jq -r .predicate.buildDefinition.internalParameters.trust "$T/prov.json")" = protected ] &&
	ok "provenance internalParameters.trust is protected" ||
	fail "provenance: $(cat "$T/prov.json")"

# --- a branch plants into every cache directory it can see --------------------
PLANT='mkdir -p /cache/go-build/aa /cache/go/pkg/mod; find /cache /gomod -type d 2>/dev/null | while read d; do echo planted > "$d/kiln-planted" 2>/dev/null; done; echo planted=$(find /cache -name kiln-planted | wc -l); echo x > "$KILN_OUT/o"'
SCAN='echo seen=$(find /cache /gomod /tmp -name kiln-planted 2>/dev/null | wc -l); echo x > "$KILN_OUT/o"'
job "$REPO" feature "$PLANT" "${AS_ADMIN[@]}"
n=$(grep -o '^planted=[0-9]*' <<<"$LOG" | cut -d= -f2)
[ "${n:-0}" -ge 4 ] && ok "the branch build planted $n markers in its caches" ||
	fail "nothing planted: $LOG"
job "$REPO" v1.0 "$SCAN" "${AS_ADMIN[@]}"
grep -qx 'seen=0' <<<"$LOG" && ok "the tag build sees none of them" ||
	fail "the tag build saw planted files: $LOG"
job "$REPO" main "$SCAN" "${AS_ADMIN[@]}"
grep -qx 'seen=0' <<<"$LOG" && ok "the default-branch build sees none of them" ||
	fail "the main build saw planted files: $LOG"
job "$REPO" v1.0 "$SCAN" "${AS_SUBMIT[@]}"
grep -qx "seen=$n" <<<"$LOG" && ok "control: an unprotected build sees all $n" ||
	fail "control: the unprotected build did not see the markers: $LOG"
ls -d "$STATE"/cache/*.protected "$STATE"/cache/*.unprotected >/dev/null 2>&1 &&
	ok "the state dir holds a protected and an unprotected cache" ||
	fail "cache dirs: $(ls "$STATE/cache")"

# --- build reuse never crosses the classes ---------------------------------------
POISON='if [ -f /cache/kiln-poison ]; then cat /cache/kiln-poison; else echo clean; fi > "$KILN_OUT/app.txt"; echo poisoned > /cache/kiln-poison'
job "$REPO" v1.0 "$POISON" "${AS_SUBMIT[@]}"
U1=$JID; trust_is unprotected "submit token's build"
job "$REPO" v1.0 "$POISON" "${AS_SUBMIT[@]}"
[ "$(printf '%s' "$BODY" | jq -r '.targets[0].cached_from')" = "$U1" ] &&
	ok "control: an equal unprotected job reuses job $U1" ||
	fail "control: no reuse within the class: $BODY"
job "$REPO" v1.0 "$POISON" "${AS_ADMIN[@]}"
P1=$JID
if [ "$(printf '%s' "$BODY" | jq -r '.targets[0].cached')" = false ] &&
   [ "$(printf '%s' "$BODY" | jq -r '.targets[0].cached_from')" = null ]; then
	ok "the protected job did not reuse the unprotected result"
else
	fail "protected job reused: $BODY"
fi
got=$(curl -s "${AS_ADMIN[@]}" "$URL/v1/jobs/$P1/artifacts/linux_amd64/app.txt")
[ "$got" = clean ] && ok "the protected artifact is clean" ||
	fail "protected artifact says '$got'"
job "$REPO" v1.0 "$POISON" "${AS_ADMIN[@]}"
[ "$(printf '%s' "$BODY" | jq -r '.targets[0].cached_from')" = "$P1" ] &&
	ok "an equal protected job reuses job $P1" ||
	fail "no reuse of the protected result: $BODY"

stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "kilnd exits 0" || fail "kilnd exit $KEXIT"
finish
