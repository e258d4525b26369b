#!/bin/bash
# Signed artifacts end to end, checked with the standard tools only:
# a Go program built for three targets is downloaded with curl and
# verified with `sha256sum -c` and `minisign -V`; the DSSE provenance is
# verified with openssl over the PAE bytes; flipped bytes are caught.
# Then: HEAD, Range, ETag and If-None-Match; URLs that try to leave the
# store; the build cache (a cache hit spawns no kiln-worker); failed jobs
# get no signed sums; hostile outputs publish nothing; kill -9 during a
# publication leaves no partial blob; retention expires old jobs and
# sweeps only unreferenced blobs.
. "$(dirname "$0")/lib.sh"

for tool in git go minisign sha256sum openssl base64 xxd; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

GO_REPO=$(make_repo go-hello "$SRCDIR/tests/fixtures/go-hello")
GO_COMMIT=$(git -C "$GO_REPO" rev-parse HEAD)
SH_REPO=$(make_repo sh "$SRCDIR/tests/fixtures/c-hello")

# kiln-worker through a wrapper that counts its runs: a cache hit must
# not start one.
WORKER_REAL=${KILN_WORKER:-$(dirname "$KILND")/kiln-worker}
COUNT=$T/worker-runs
: >"$COUNT"
cat >"$T/worker-wrap" <<EOF
#!/bin/sh
echo "\$1" >>"$COUNT"
exec "$WORKER_REAL" "\$@"
EOF
chmod +x "$T/worker-wrap"
builds() { grep -cx build "$COUNT" || true; }

cat >"$T/kilnd.conf" <<EOF
[kilnd]
allow_local_repos = yes
worker_path = $T/worker-wrap
base_url = https://farm.example.test
max_artifacts = 100
EOF
start_kilnd -c "$T/kilnd.conf" -w 2

# wait_signed ID: until the job's sums are signed (signing follows the
# last target, off the loop).
wait_signed() {
	for _ in $(seq 1 100); do
		api GET "/v1/jobs/$1/artifacts"
		[ "$(printf '%s' "$BODY" | jq -r .signed)" = true ] && return 0
		sleep 0.1
	done
	fail "job $1 was never signed: $BODY"
	return 1
}

# download ID DIR: every artifact as TARGET/NAME, the signed files and the
# public key, with curl.
download() {
	local id=$1 dir=$2 url rel
	mkdir -p "$dir"
	api GET "/v1/jobs/$id/artifacts"
	for url in $(printf '%s' "$BODY" | jq -r '.artifacts[].url'); do
		rel=${url#/v1/jobs/$id/artifacts/}
		mkdir -p "$dir/$(dirname "$rel")"
		curl -sSf -o "$dir/$rel" "$URL$url" || fail "download $url"
	done
	for f in SHA256SUMS SHA256SUMS.minisig provenance.intoto.jsonl; do
		curl -sSf -o "$dir/$f" "$URL/v1/jobs/$id/$f" || fail "download $f"
	done
	curl -sSf -o "$dir/kiln.pub" "$URL/v1/pubkey" || fail "download pubkey"
}

# --- a Go job for three targets, verified with sha256sum and minisign -------
post_job "{\"repo\": \"file://$GO_REPO\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\"]}"
expect_status 201 "submit the Go job"
A=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$A" 900
expect_json .state succeeded "Go job"
expect_json '[.targets[].cached] | unique | join(",")' false "a first build is not cached"
expect_json '[.targets[].artifacts[].sha256 | test("^[0-9a-f]{64}$")] | all' true \
	"every artifact has its digest in the job"
wait_signed "$A"
expect_json '[.artifacts[] | .target + " " + .name] | join(",")' \
	"linux/amd64 go-hello,linux/arm64 go-hello,windows/amd64 go-hello.exe" \
	"the artifact list"
expect_json .provenance "/v1/jobs/$A/provenance.intoto.jsonl" "the list links the provenance"
[ "$(builds)" = 3 ] && ok "three builds ran" || fail "builds run: $(builds)"

D=$T/dl-a
download "$A" "$D"
cat "$D/SHA256SUMS"
[ "$(wc -l <"$D/SHA256SUMS")" = 3 ] && ok "SHA256SUMS has one line per artifact" ||
	fail "SHA256SUMS: $(cat "$D/SHA256SUMS")"
[ "$(cut -c67- "$D/SHA256SUMS")" = "$(printf '%s\n' linux_amd64/go-hello linux_arm64/go-hello windows_amd64/go-hello.exe)" ] &&
	ok "SHA256SUMS names are os_arch/file, sorted" || fail "names: $(cat "$D/SHA256SUMS")"
(cd "$D" && sha256sum -c SHA256SUMS) >"$T/sumc.out" 2>&1 &&
	ok "sha256sum -c SHA256SUMS passes on the downloads" ||
	fail "sha256sum -c: $(cat "$T/sumc.out")"
minisign -Vm "$D/SHA256SUMS" -p "$D/kiln.pub" >"$T/mv.out" 2>&1 &&
	ok "minisign -Vm SHA256SUMS -p kiln.pub passes" ||
	fail "minisign: $(cat "$T/mv.out")"
grep -q "Trusted comment: timestamp:[0-9]*	file:SHA256SUMS	hashed	kiln-job:$A	repo:file://$GO_REPO	commit:$GO_COMMIT" "$T/mv.out" &&
	ok "the trusted comment names the job, repo and commit" ||
	fail "trusted comment: $(cat "$T/mv.out")"
# file(1) on the downloads: the right binaries came out.
file "$D/linux_arm64/go-hello" | grep -q 'ARM aarch64' && ok "linux_arm64 is an aarch64 ELF" ||
	fail "$(file "$D/linux_arm64/go-hello")"
file "$D/windows_amd64/go-hello.exe" | grep -q 'PE32+' && ok "windows_amd64 is a PE32+" ||
	fail "$(file "$D/windows_amd64/go-hello.exe")"

# flip BYTE-OFFSET FILE
flip() {
	local b
	b=$(xxd -s "$1" -l 1 -p "$2")
	printf '%02x' $((0x$b ^ 1)) | xxd -r -p | dd of="$2" bs=1 seek="$1" conv=notrunc status=none
}
cp -R "$D" "$T/bad"
flip 1000 "$T/bad/linux_arm64/go-hello"
(cd "$T/bad" && sha256sum -c SHA256SUMS) >"$T/sumc.out" 2>&1 &&
	fail "sha256sum -c passed with a flipped byte" ||
	{ grep -q 'linux_arm64/go-hello: FAILED' "$T/sumc.out" &&
	  ok "a flipped byte in an artifact makes sha256sum -c fail on that file" ||
	  fail "sha256sum output: $(cat "$T/sumc.out")"; }
flip 10 "$T/bad/SHA256SUMS"
minisign -Vm "$T/bad/SHA256SUMS" -p "$D/kiln.pub" >"$T/mv.out" 2>&1 &&
	fail "minisign accepted a modified SHA256SUMS" ||
	ok "a flipped byte in SHA256SUMS makes minisign -V fail"

# --- the DSSE envelope, verified by openssl over the PAE bytes -------------
ENV=$D/provenance.intoto.jsonl
[ "$(wc -l <"$ENV")" = 1 ] && ok "provenance.intoto.jsonl is one line" || fail "envelope lines"
PT=$(jq -r .payloadType "$ENV")
[ "$PT" = application/vnd.in-toto+json ] && ok "payloadType $PT" || fail "payloadType $PT"
jq -r .payload "$ENV" | base64 -d >"$T/payload.json"
jq -r '.signatures[0].sig' "$ENV" | base64 -d >"$T/sig.bin"
{ printf 'DSSEv1 %d %s %d ' ${#PT} "$PT" "$(stat -c %s "$T/payload.json")"
  cat "$T/payload.json"; } >"$T/pae.bin"
# The public key: minisign's "Ed" || keyid[8] || pk[32] -> a DER SPKI.
sed -n 2p "$D/kiln.pub" | base64 -d >"$T/pub.bin"
{ printf '302a300506032b6570032100' | xxd -r -p; tail -c 32 "$T/pub.bin"; } >"$T/pub.der"
openssl pkey -pubin -inform DER -in "$T/pub.der" -out "$T/pub.pem" 2>/dev/null
openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -rawin -in "$T/pae.bin" \
	-sigfile "$T/sig.bin" >"$T/ossl.out" 2>&1 &&
	ok "openssl verifies the DSSE signature over the PAE" ||
	fail "openssl: $(cat "$T/ossl.out")"
flip 20 "$T/pae.bin"
openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -rawin -in "$T/pae.bin" \
	-sigfile "$T/sig.bin" >/dev/null 2>&1 &&
	fail "openssl accepted a modified payload" ||
	ok "a modified payload does not verify"
KEYID=$(head -1 "$D/kiln.pub" | awk '{print $NF}')
[ "$(jq -r '.signatures[0].keyid' "$ENV")" = "$KEYID" ] &&
	ok "keyid is the minisign key id $KEYID" || fail "keyid $(jq -r '.signatures[0].keyid' "$ENV")"
P=$T/payload.json
[ "$(jq -r '.subject[] | .digest.sha256 + "  " + .name' "$P")" = "$(cat "$D/SHA256SUMS")" ] &&
	ok "the statement's subjects are exactly SHA256SUMS" ||
	fail "subjects: $(jq -c .subject "$P")"
BODY=$(cat "$P")
expect_json ._type https://in-toto.io/Statement/v1 "statement"
expect_json .predicateType https://slsa.dev/provenance/v1 "statement"
expect_json .predicate.buildDefinition.buildType urn:kiln:buildtype:cross-compile:v1 "provenance"
expect_json .predicate.buildDefinition.externalParameters.repo "file://$GO_REPO" "provenance"
expect_json .predicate.buildDefinition.externalParameters.ref main "provenance"
expect_json '.predicate.buildDefinition.externalParameters.targets | join(",")' \
	linux/amd64,linux/arm64,windows/amd64 "provenance"
expect_json '.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit' "$GO_COMMIT" "provenance"
expect_json '.predicate.buildDefinition.resolvedDependencies[0].uri' "git+file://$GO_REPO@main" "provenance"
expect_json .predicate.runDetails.builder.id https://farm.example.test "provenance (base_url)"
expect_json .predicate.runDetails.metadata.invocationId "$A" "provenance"
expect_json '.predicate.runDetails.metadata.finishedOn | test("^20[0-9-]+T[0-9:.]+Z$")' true "provenance"

# --- HEAD, Range, ETag, If-None-Match, Content-Disposition -------------------
F=/v1/jobs/$A/artifacts/linux_amd64/go-hello
SIZE=$(stat -c %s "$D/linux_amd64/go-hello")
SHA=$(sha256sum "$D/linux_amd64/go-hello" | cut -c1-64)
api HEAD "$F" -I
expect_status 200 "HEAD of an artifact"
[ "$(header Content-Length)" = "$SIZE" ] && ok "HEAD: Content-Length $SIZE" ||
	fail "HEAD: Content-Length '$(header Content-Length)'"
n=$(curl -sS -I -o /dev/null -w '%{size_download}' "$URL$F")
[ "$n" = 0 ] && ok "HEAD: no body" || fail "HEAD sent $n bytes of body"
[ "$(header ETag)" = "\"$SHA\"" ] && ok "ETag is the sha256" || fail "ETag '$(header ETag)'"
[ "$(header Content-Disposition)" = 'attachment; filename="go-hello"' ] &&
	ok "Content-Disposition names the file" || fail "Content-Disposition '$(header Content-Disposition)'"
curl -sS -D "$T/h" -o "$T/part" -H 'Range: bytes=100-199' "$URL$F"
grep -q '^HTTP/1.1 206' "$T/h" && ok "Range: 206" || fail "Range: $(head -1 "$T/h")"
grep -qi "^Content-Range: bytes 100-199/$SIZE" "$T/h" && ok "Content-Range bytes 100-199/$SIZE" ||
	fail "Content-Range: $(grep -i content-range "$T/h")"
cmp -s "$T/part" <(dd if="$D/linux_amd64/go-hello" bs=1 skip=100 count=100 status=none) &&
	ok "the range holds bytes 100..199" || fail "range bytes differ"
curl -sS -o "$T/part" -H 'Range: bytes=-16' "$URL$F"
cmp -s "$T/part" <(tail -c 16 "$D/linux_amd64/go-hello") && ok "suffix range bytes=-16" ||
	fail "suffix range"
api GET "$F" -H "Range: bytes=$SIZE-"
expect_status 416 "a range past the end"
[ "$(header Content-Range)" = "bytes */$SIZE" ] && ok "416 says the size" || fail "416: $(header Content-Range)"
curl -sS -D "$T/h" -o "$T/part" -H 'Range: bytes=0-9' -H 'If-Range: "other"' "$URL$F"
grep -q '^HTTP/1.1 200' "$T/h" && [ "$(stat -c %s "$T/part")" = "$SIZE" ] &&
	ok "If-Range with another ETag sends the whole file" || fail "If-Range: $(head -1 "$T/h")"
api GET "$F" -H "If-None-Match: \"$SHA\""
expect_status 304 "If-None-Match with the digest"
api GET "$F" -H 'If-None-Match: "0000"'
expect_status 200 "If-None-Match with another tag"
api GET "/v1/jobs/$A/artifacts/linux_amd64/nope"
expect_problem 404 "no artifact 'nope'" "an unknown artifact"
api GET "/v1/jobs/$A/artifacts/linux_riscv64/go-hello"
expect_problem 404 "no target linux/riscv64" "a target the job does not have"

# --- URLs that try to leave the store ------------------------------------------
for p in "/v1/jobs/$A/artifacts/linux_amd64/..%2f..%2f..%2fkiln.key" \
	 "/v1/jobs/$A/artifacts/linux_amd64/%2e%2e" \
	 "/v1/jobs/$A/artifacts/linux_amd64/.." \
	 "/v1/jobs/$A/artifacts/linux_amd64/../../../../kiln.key" \
	 "/v1/jobs/$A/artifacts/linux_amd64/%2fetc%2fpasswd" \
	 "/v1/jobs/$A/artifacts/linux_amd64/go-hello%00.txt" \
	 "/v1/jobs/$A/artifacts/..%2f..%2fkiln.key/go-hello" \
	 "/v1/jobs/$A/artifacts/linux_amd64/go-hello/../../../../../kiln.key" \
	 "/v1/jobs/..%2f$A/SHA256SUMS"; do
	code=$(curl -s --path-as-is -o "$T/trav" -w '%{http_code}' "$URL$p")
	if { [ "$code" = 400 ] || [ "$code" = 404 ]; } &&
	    ! grep -q 'secret key\|root:' "$T/trav"; then
		ok "$p: $code, nothing outside the store"
	else
		fail "$p: $code $(head -c 200 "$T/trav")"
	fi
done

# --- the build cache ---------------------------------------------------------------
before=$(builds)
post_job "{\"repo\": \"file://$GO_REPO\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\"]}"
B=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$B" 120
expect_json .state succeeded "the same request again"
expect_json '[.targets[].cached] | unique | join(",")' true "every target is a cache hit"
[ "$(builds)" = "$before" ] && ok "a cache hit starts no kiln-worker build" ||
	fail "builds went from $before to $(builds)"
api GET "/v1/jobs/$A"; da=$(printf '%s' "$BODY" | jq -c '[.targets[].artifacts[].sha256]')
api GET "/v1/jobs/$B"; db_=$(printf '%s' "$BODY" | jq -c '[.targets[].artifacts[].sha256]')
[ "$da" = "$db_" ] && ok "the cached job has the same digests" || fail "$da vs $db_"
wait_signed "$B"
download "$B" "$T/dl-b"
(cd "$T/dl-b" && sha256sum -c --quiet SHA256SUMS) && minisign -Vqm "$T/dl-b/SHA256SUMS" -p "$T/dl-b/kiln.pub" &&
	ok "a cached job is signed and verifies too" || fail "cached job verification"
grep -q "cached (job $A built it" "$KLOG" && ok "kilnd logs the cache hit and its source" ||
	fail "no cache log line"
api GET "/v1/jobs/$B"
expect_json "[.targets[].cached_from] | unique | join(\",\")" "$A" \
	"each reused target names the job that built it"
api GET "/v1/jobs/$B/targets/linux_arm64/log"
grep -q "cached: not built again: job $A built it" <<<"$BODY" &&
	ok "a reused target's log says where its files came from" || fail "log: $BODY"
jq -r .payload "$T/dl-b/provenance.intoto.jsonl" | base64 -d >"$T/prov-b.json"
[ "$(jq -r '.predicate.buildDefinition.internalParameters.cachedFrom["linux/arm64"]' "$T/prov-b.json")" = "$A" ] &&
	ok "the provenance names the job a reused target came from (cachedFrom)" ||
	fail "provenance: $(jq -c .predicate.buildDefinition.internalParameters "$T/prov-b.json")"

# Reuse follows the repository, not its spelling: the same repository
# written as a path with a trailing slash is a hit; a fork holding the
# very same commit is another repository (its builds had other caches)
# and builds for itself.
post_job "{\"repo\": \"$GO_REPO/\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
SP=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$SP" 120
expect_json '.targets[0].cached' true "another spelling of the same repository reuses its build"
git clone -q "$GO_REPO" "$T/fork"
post_job "{\"repo\": \"file://$T/fork\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
FK=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$FK" 300
expect_json .state succeeded "a fork holding the same commit builds"
expect_json '.targets[0].cached' false "a fork never reuses the original's build"

before=$(builds)
post_job "{\"repo\": \"file://$GO_REPO\", \"ref\": \"main\", \"cache\": false,
	\"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\"]}"
C=$(printf '%s' "$BODY" | jq -r .id)
expect_json .cache false "the job shows cache false"
wait_job "$C" 600
expect_json '[.targets[].cached] | unique | join(",")' false '"cache": false rebuilds'
[ "$(builds)" = $((before + 3)) ] && ok '"cache": false ran three builds' ||
	fail "builds: $before -> $(builds)"
dc=$(printf '%s' "$BODY" | jq -c '[.targets[].artifacts[].sha256]')
[ "$dc" = "$da" ] && ok "a rebuild with -trimpath gives the same digests (reproducible)" ||
	fail "rebuild digests differ: $da vs $dc"
post_job "{\"repo\": \"file://$GO_REPO\", \"ref\": \"main\", \"cache\": \"no\",
	\"targets\": [\"linux/amd64\"]}"
expect_problem 422 "cache: must be true or false" "a cache that is not a boolean"

# --- failed jobs: per-target results, no signed sums --------------------------------
post_job "$(jq -cn --arg r "file://$SH_REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64", "linux/arm64"],
	recipe: {kind: "command", command: "echo \"$KILN_TARGET\" > $KILN_OUT/which.txt; test $KILN_ARCH = amd64"}}')"
FJ=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$FJ" 120
expect_json .state failed "a job with one failing target"
api GET "/v1/jobs/$FJ/artifacts"
expect_json '[.artifacts[] | .target + "/" + .name] | join(",")' "linux/amd64/which.txt" \
	"the succeeded target's artifact is listed"
expect_json .signed false "a failed job is not signed"
api GET "/v1/jobs/$FJ/artifacts/linux_amd64/which.txt"
[ "$STATUS" = 200 ] && [ "$(head -1 <<<"$BODY")" = linux/amd64 ] && ok "its artifact downloads (unsigned)" ||
	fail "partial download: $STATUS $BODY"
api GET "/v1/jobs/$FJ/SHA256SUMS"
expect_problem 404 "only a job whose every target succeeded" "no SHA256SUMS for a failed job"
api GET "/v1/jobs/$FJ/SHA256SUMS.minisig"
expect_status 404 "no signature for a failed job"

# --- hostile outputs: each fails its target and stores nothing ----------------------
blobs() { find "$STATE/store/sha256" -type f | wc -l; }
hostile() {
	local name=$1 cmd=$2 want=$3 n0 id
	n0=$(blobs)
	post_job "$(jq -cn --arg r "file://$SH_REPO" --arg c "$cmd" '{repo: $r,
		ref: "main", targets: ["linux/amd64"], recipe: {kind: "command", command: $c}}')"
	id=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$id" 180
	local st err
	st=$(printf '%s' "$BODY" | jq -r '.targets[0].state')
	err=$(printf '%s' "$BODY" | jq -r '.targets[0].error')
	if [ "$st" = failed ] && [[ "$err" == *"$want"* ]] &&
	    [ "$(printf '%s' "$BODY" | jq '.targets[0].artifacts | length')" = 0 ] &&
	    [ "$(blobs)" = "$n0" ]; then
		ok "$name: failed with \"$err\"; nothing stored"
	else
		fail "$name: state $st, error '$err', store $n0 -> $(blobs)"
	fi
}
hostile "symlink to /etc/passwd" 'echo ok > $KILN_OUT/a; ln -s /etc/passwd $KILN_OUT/passwd' \
	"out/passwd: a symlink"
hostile "a fifo" 'echo ok > $KILN_OUT/a; mkfifo $KILN_OUT/pipe' "out/pipe: a fifo"
hostile "a hard link" 'echo x > $KILN_OUT/x; ln $KILN_OUT/x $KILN_OUT/y' "out/x: a hard link"
hostile "a directory" 'mkdir $KILN_OUT/sub; echo x > $KILN_OUT/sub/y' "out/sub: a directory"
hostile "a name with a newline" 'touch "$KILN_OUT/$(printf "a\nb")"' 'out/a\x0ab: not a safe file name'
hostile "a name with a space" 'touch "$KILN_OUT/a b"' "out/a b: not a safe file name"
hostile "a dot file" 'touch $KILN_OUT/..x' "out/..x: not a safe file name"
hostile "10,000 files" 'i=0; while [ $i -lt 10000 ]; do : > $KILN_OUT/f$i; i=$((i+1)); done' \
	"more than 100 files (max_artifacts)"
# A file written to $KILN_OUT/../x lands outside out/ and is not published.
post_job "$(jq -cn --arg r "file://$SH_REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64"], recipe: {kind: "command",
	command: "echo escape > $KILN_OUT/../x; echo fine > $KILN_OUT/fine"}}')"
id=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$id" 120
expect_json '[.targets[0].artifacts[].name] | join(",")' fine \
	"a file written to \$KILN_OUT/../x is not among the artifacts"

# --- nothing of an ended job stays in work/ -----------------------------------------
# Each build's work tree goes when the build ends (on the pool, so wait a
# little), and work/JOB with the job's last one.
[ -d "$STATE/work" ] || fail "no $STATE/work: the check below would prove nothing"
for _ in $(seq 1 100); do
	[ -z "$(ls -A "$STATE/work")" ] && break
	sleep 0.1
done
left=$(ls -A "$STATE/work" | tr '\n' ' ')
[ -z "$left" ] && ok "no work directory of an ended job is left in the state dir" ||
	fail "left in $STATE/work: $left"

# --- kill -9 during a publication ---------------------------------------------------
post_job "$(jq -cn --arg r "file://$SH_REPO" '{repo: $r, ref: "main",
	targets: ["linux/amd64"], recipe: {kind: "command",
	command: "head -c 400000000 /dev/zero | tr \"\\0\" k > $KILN_OUT/big; echo small > $KILN_OUT/small"}}')"
K=$(printf '%s' "$BODY" | jq -r .id)
caught=0
for _ in $(seq 1 3000); do
	if ls "$STATE/store/tmp/" 2>/dev/null | grep -q '^blob\.'; then
		kill -KILL "$KPID"; caught=1; break
	fi
	sleep 0.01
done
wait "$KPID" 2>/dev/null || true
KPID=
[ $caught = 1 ] && ok "kilnd killed with -9 while it copied an artifact into the store" ||
	fail "never saw a publication in progress"
bad=0
for f in $(find "$STATE/store/sha256" -type f); do
	[ "$(sha256sum "$f" | cut -c1-64)" = "$(basename "$f")" ] || { bad=1; fail "blob $f does not match its name"; }
done
[ $bad = 0 ] && ok "after the kill every blob matches its digest name"
start_kilnd -c "$T/kilnd.conf" -w 2
[ -z "$(ls -A "$STATE/store/tmp")" ] && ok "the restart removed the partial temp file" ||
	fail "store/tmp: $(ls "$STATE/store/tmp")"
wait_job "$K" 300
expect_json .state succeeded "the interrupted job ran again and succeeded"
expect_json .targets[0].attempt 2 "as its second attempt"
wait_signed "$K"
download "$K" "$T/dl-k"
(cd "$T/dl-k" && sha256sum -c --quiet SHA256SUMS) && [ "$(stat -c %s "$T/dl-k/linux_amd64/big")" = 400000000 ] &&
	ok "its 400 MB artifact downloads whole and matches SHA256SUMS" || fail "big artifact"
rm -rf "$T/dl-k"

# --- retention: keep one job per repo, sweep only what nothing references -----------
for v in one two; do
	post_job "$(jq -cn --arg r "file://$SH_REPO" --arg c "echo $v-$$ > \$KILN_OUT/v" '{repo: $r,
		ref: "main", targets: ["linux/amd64"], recipe: {kind: "command", command: $c}}')"
	id=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$id" 120
	eval "R_$v=$id"
	eval "SHA_$v=$(printf '%s' "$BODY" | jq -r '.targets[0].artifacts[0].sha256')"
done
blob() { printf '%s/store/sha256/%s/%s' "$STATE" "${1:0:2}" "$1"; }
[ -f "$(blob "$SHA_one")" ] && [ -f "$(blob "$SHA_two")" ] && ok "both jobs' blobs are stored"
stop_kilnd
# The store's gauges are right from the start, long before the first
# sweep (30 s after it): what the store holds, counted at start.
start_kilnd -c "$T/kilnd.conf" -w 2
want="$(find "$STATE/store/sha256" -type f | wc -l) $(find "$STATE/store/sha256" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')"
got=
for _ in $(seq 1 50); do
	got=$(curl -sS "$URL/metrics" | awk '$1 == "kiln_store_blobs" { b = $2 }
		$1 == "kiln_store_bytes" { n = $2 } END { if (b != "") print b, n }')
	[ -n "$got" ] && break
	sleep 0.1
done
[ "$got" = "$want" ] &&
	ok "at start, before any sweep, /metrics counts the store: $got (blobs bytes)" ||
	fail "store gauges at start: '$got', the store holds $want"
stop_kilnd
cat >>"$T/kilnd.conf" <<EOF
keep_jobs = 1
sweep_interval = 1
EOF
start_kilnd -c "$T/kilnd.conf" -w 2
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$R_one"
	[ "$(printf '%s' "$BODY" | jq -r .expired_at)" != null ] && break
	sleep 0.1
done
expect_json '.expired_at | test("Z$")' true "the older job of the repo expired"
api GET "/v1/jobs/$R_one/artifacts/linux_amd64/v"
expect_problem 410 "removed by the retention policy" "an expired job's artifact"
api GET "/v1/jobs/$R_two/artifacts/linux_amd64/v"
[ "$STATUS" = 200 ] && [ "$(head -1 <<<"$BODY")" = "two-$$" ] && ok "the newest job keeps its artifact" ||
	fail "newest: $STATUS $BODY"
api GET "/v1/jobs/$A/artifacts"
expect_status 410 "an older job of the Go repo expired too"
api GET "/v1/jobs/$C/SHA256SUMS"
expect_status 200 "the newest Go job keeps its signed sums"
[ -f "$(blob "$SHA_one")" ] && ok "an unreferenced blob younger than the grace stays" ||
	fail "a fresh blob was swept"
# Age every blob past the grace: only unreferenced ones may go.
find "$STATE/store/sha256" -type f -exec touch -d '2 hours ago' {} +
for _ in $(seq 1 50); do [ -f "$(blob "$SHA_one")" ] || break; sleep 0.1; done
[ ! -f "$(blob "$SHA_one")" ] && ok "the expired job's blob was swept" || fail "blob $SHA_one still there"
[ -f "$(blob "$SHA_two")" ] && ok "a blob a live job references is never swept" ||
	fail "a referenced blob was swept"
(cd "$T/dl-b" && rm -f linux_*/* windows_*/*) 
download "$C" "$T/dl-c"
(cd "$T/dl-c" && sha256sum -c --quiet SHA256SUMS) &&
	ok "the live Go job still downloads and verifies after the sweep" || fail "live job after sweep"
[ ! -d "$STATE/logs/$R_one" ] && ok "the expired job's logs were removed" || fail "logs of $R_one remain"
[ -d "$STATE/logs/$R_two" ] && ok "the live job's logs stay" || fail "logs of $R_two gone"

api GET /healthz
expect_status 200 "kilnd serves after all of it"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd exits 0" || fail "kilnd exit $KEXIT"
finish
