#!/bin/bash
# Release outputs through kilnd, end to end: a Go program for linux
# (amd64, arm64), windows and darwin/universal with "archives", "sbom"
# and "image" asked for in the request.  The job's release row packages
# them once the builds succeeded; every output is downloadable, listed
# in SHA256SUMS (checked with sha256sum -c and minisign -V) and a subject
# of the provenance; each is checked with the real tool: tar and unzip
# (the binaries, LICENSE and README, no symlink out of the repository),
# file and llvm-lipo (the universal binary and its slices), the vendored
# schemas (the SBOMs), skopeo and umoci (the image, run under qemu for
# arm64).  A second job of the same commit gives byte-identical outputs.
# Bad requests are refused naming the field, and a release a job cannot
# make fails its release row with the reason.
. "$(dirname "$0")/lib.sh"

LIPO=$(command -v llvm-lipo-14 || command -v llvm-lipo || true)
for tool in git go file tar unzip skopeo umoci minisign sha256sum \
    qemu-aarch64-static; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
[ -n "$LIPO" ] || { echo "SKIP: llvm-lipo missing (llvm)"; exit 77; }
PY=/usr/bin/python3
$PY -c 'import jsonschema' 2>/dev/null ||
	{ echo "SKIP: python3-jsonschema missing"; exit 77; }

mkdir -p "$T/fx"
cp -R "$SRCDIR/tests/fixtures/go-hello/." "$T/fx/"
printf 'MIT License\n\nCopyright kiln tests\n' >"$T/fx/LICENSE"
printf '# go-hello\n' >"$T/fx/README.md"
# A symlink to a host file is no repository file: never archived.
ln -s /etc/passwd "$T/fx/CHANGELOG.md"
REPO=$(make_repo go-hello "$T/fx")
COMMIT=$(git -C "$REPO" rev-parse HEAD)
start_kilnd -w 2

# --- bad requests ------------------------------------------------------------
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"archives\": {\"formats\": [\"rar\"]}}"
expect_problem 422 "archives.formats[0]: 'rar' is not a format" \
	"an unknown archive format is refused, named"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"image\": {\"entrypoint\": [\"/go-hello\"]}}"
expect_problem 422 "image.name: required" "an image without a name is refused"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"image\": {\"name\": \"app\", \"base\": \"debian\"}}"
expect_problem 422 "image.base: only \"scratch\"" "a base image is refused"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"verify\": \"twice\"}"
expect_problem 422 "verify: must be \"rebuild\" or \"none\"" "verify is checked"

# A name template kiln cannot expand fails the job at its plan, before
# any build: not at its release, an hour later.
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"archives\": {\"name_template\": \"{{.Nope}}\"}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 120
expect_json .state failed "an unknown template fails the job"
expect_json '.error | contains("archives.name_template: unknown template {{.Nope}}")' true \
	"the job's error names the template"
expect_json '[.targets[].started_at] | map(select(. != null)) | length' 0 \
	"no build ran"

# --- a release -----------------------------------------------------------------
release_job() {
	post_job "{\"repo\": \"$REPO\", \"ref\": \"main\",
	    \"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\",
	    \"darwin/universal\"], \"archives\": true, \"sbom\": true,
	    \"image\": {\"name\": \"hello\", \"entrypoint\": [\"/go-hello\"],
	    \"ca_certs\": true}}"
	expect_status 201 "a release job is accepted"
	ID=$(printf '%s' "$BODY" | jq -r .id)
}
release_job
R1=$ID
expect_json '[.targets[].target] | join(",")' \
	"linux/amd64,linux/arm64,windows/amd64,darwin/amd64,darwin/arm64" \
	"darwin/universal builds darwin/amd64 and darwin/arm64"
expect_json '.outputs.universal' true "the job's outputs ask for the universal binary"
wait_job "$R1" 900
expect_json .state succeeded "the release job succeeds"
expect_json '.targets[-1].target' release "a release row follows the builds"
expect_json '.targets[-1].state' succeeded "the release row succeeded"
V=0.0.0-SNAPSHOT-${COMMIT:0:7}
want="go-hello_darwin_all hello_${V}.oci.tar hello_${V}.oci-index.json go-hello_${V}_darwin_all.tar.gz"
for t in darwin_amd64 darwin_arm64 linux_amd64 linux_arm64 windows_amd64; do
	want="$want go-hello_${V}_$t.cdx.json go-hello_${V}_$t.spdx.json"
	case $t in
	windows*) want="$want go-hello_${V}_$t.zip" ;;
	*) want="$want go-hello_${V}_$t.tar.gz" ;;
	esac
done
want=$(tr ' ' '\n' <<<"$want" | LC_ALL=C sort | tr '\n' ' ')
want=${want% }
expect_json '[.targets[-1].artifacts[].name] | join(" ")' "$want" \
	"the release row holds every output"
api GET "/v1/jobs/$R1/targets/release/log"
grep -q "archive go-hello_${V}_linux_amd64.tar.gz: 3 files" <<<"$BODY" &&
	ok "the release log says what each archive holds" ||
	fail "release log: $BODY"

D=$T/dl1
mkdir -p "$D"
fetch_all() {	# ID DIR
	local n
	api GET "/v1/jobs/$1"
	for n in $(printf '%s' "$BODY" | jq -r '.targets[-1].artifacts[].name'); do
		curl -sSf -o "$2/$n" "$URL/v1/jobs/$1/artifacts/release/$n" ||
			fail "download release/$n"
	done
	curl -sSf -o "$2/SHA256SUMS" "$URL/v1/jobs/$1/SHA256SUMS" &&
	curl -sSf -o "$2/SHA256SUMS.minisig" "$URL/v1/jobs/$1/SHA256SUMS.minisig" ||
		fail "download SHA256SUMS"
}
# Signing follows the job's end.
for _ in $(seq 1 100); do
	api GET "/v1/jobs/$R1/SHA256SUMS"
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
fetch_all "$R1" "$D"

# Archives: the binary, LICENSE and README; never the symlink.
tar -tzvf "$D/go-hello_${V}_linux_amd64.tar.gz" >"$T/tar.txt"
[ "$(awk '{ print $6 }' "$T/tar.txt" | tr '\n' ' ')" = "LICENSE README.md go-hello " ] &&
	ok "linux/amd64 archive: LICENSE, README.md, go-hello (no CHANGELOG symlink)" ||
	fail "linux/amd64 archive holds: $(cat "$T/tar.txt")"
grep -q '^-rwxr-xr-x root/root .* go-hello$' "$T/tar.txt" &&
	ok "the binary is 0755 root/root" || fail "modes: $(cat "$T/tar.txt")"
tar -xzOf "$D/go-hello_${V}_linux_amd64.tar.gz" go-hello >"$T/bin-amd64"
chmod +x "$T/bin-amd64"
cmp -s "$T/bin-amd64" "$(out_file "$R1" linux_amd64 go-hello)" &&
	ok "the archived binary is the build's" || fail "archived binary differs"
unzip -Z1 "$D/go-hello_${V}_windows_amd64.zip" | tr '\n' ' ' >"$T/zip.txt"
[ "$(cat "$T/zip.txt")" = "LICENSE README.md go-hello.exe " ] &&
	ok "windows archive is a zip with go-hello.exe" ||
	fail "zip holds: $(cat "$T/zip.txt")"

# The universal binary.
U=$D/go-hello_darwin_all
[[ "$(file -b "$U")" == *"Mach-O universal binary with 2 architectures"* ]] &&
	ok "file: Mach-O universal binary with 2 architectures" ||
	fail "file says: $(file -b "$U")"
"$LIPO" -thin arm64 "$U" -output "$T/thin-arm64"
cmp -s "$T/thin-arm64" "$(out_file "$R1" darwin_arm64 go-hello)" &&
	ok "llvm-lipo -thin arm64 gives back the darwin/arm64 build" ||
	fail "the arm64 slice differs from the darwin/arm64 build"
tar -tzf "$D/go-hello_${V}_darwin_all.tar.gz" | grep -qx go-hello &&
	ok "the universal binary has its archive (darwin_all)" ||
	fail "darwin_all archive: $(tar -tzf "$D/go-hello_${V}_darwin_all.tar.gz")"

# SBOMs: valid against the official schemas, the binary's digest named.
# validate FILE...: each .spdx.json against SPDX 2.3, each .cdx.json
# against CycloneDX 1.5 (its references resolved from the vendored
# files, no network); prints "valid FILE" per document.
validate() {
	$PY - "$SRCDIR/tests/schemas" "$@" <<'EOF'
import json, sys, os, jsonschema
from jsonschema import RefResolver
sd = sys.argv[1]
spdx = json.load(open(os.path.join(sd, "spdx-2.3.schema.json")))
cdx = json.load(open(os.path.join(sd, "bom-1.5.schema.json")))
store = {}
for f in ("spdx.schema.json", "jsf-0.82.schema.json", "bom-1.5.schema.json"):
    s = json.load(open(os.path.join(sd, f)))
    store[s.get("$id", f)] = s
    store[f] = s
for f in sys.argv[2:]:
    doc = json.load(open(f))
    if f.endswith(".spdx.json"):
        jsonschema.validate(doc, spdx)
    else:
        jsonschema.Draft7Validator(cdx, resolver=RefResolver.from_schema(cdx, store=store)).validate(doc)
    print("valid", os.path.basename(f))
EOF
}
validate "$D"/*.spdx.json "$D"/*.cdx.json >"$T/sbom.txt" 2>&1
[ "$(grep -c '^valid' "$T/sbom.txt")" = 10 ] &&
	ok "10 SBOMs valid against SPDX 2.3 and CycloneDX 1.5" ||
	fail "SBOM validation: $(cat "$T/sbom.txt")"
h=$(sha256sum "$T/bin-amd64" | cut -c1-64)
grep -q "$h" "$D/go-hello_${V}_linux_amd64.spdx.json" &&
	grep -q "$h" "$D/go-hello_${V}_linux_amd64.cdx.json" &&
	ok "the SBOMs name the binary's sha256" || fail "no $h in the SBOMs"

# The image.
I=$D/hello_${V}.oci.tar
skopeo inspect --raw "oci-archive:$I:hello" >"$T/index.json" 2>"$T/skopeo.err"
[ "$(jq -r '[.manifests[].platform.architecture] | sort | join(",")' "$T/index.json")" = amd64,arm64 ] &&
	ok "skopeo: an image index over amd64 and arm64" ||
	fail "skopeo inspect: $(cat "$T/index.json" "$T/skopeo.err")"
[ "sha256:$(sha256sum <"$T/index.json" | cut -c1-64)" = \
    "sha256:$(sha256sum <"$D/hello_${V}.oci-index.json" | cut -c1-64)" ] &&
	ok "hello_${V}.oci-index.json is the image index: its sha256 is the index digest" ||
	fail "the index file is not the index: $(cat "$D/hello_${V}.oci-index.json")"
skopeo copy -q --all "oci-archive:$I:hello" "oci:$T/oci:hello" 2>"$T/skopeo.err" &&
	ok "skopeo copy --all re-checks every digest" ||
	fail "skopeo copy: $(cat "$T/skopeo.err")"
for a in amd64 arm64; do
	skopeo copy -q --override-os linux --override-arch "$a" \
	    "oci-archive:$I:hello" "oci:$T/oci-$a:hello" 2>"$T/skopeo.err" &&
	umoci unpack --rootless --image "$T/oci-$a:hello" "$T/b-$a" \
	    >/dev/null 2>"$T/umoci.err" ||
		fail "umoci unpack $a: $(cat "$T/skopeo.err" "$T/umoci.err")"
done
out=$("$T/b-amd64/rootfs/go-hello" 2>&1)
[ -n "$out" ] && ok "the image's amd64 binary runs: $out" || fail "amd64 run: $out"
out=$(qemu-aarch64-static "$T/b-arm64/rootfs/go-hello" 2>&1)
[ -n "$out" ] && ok "the image's arm64 binary runs under qemu: $out" ||
	fail "arm64 run: $out"
cmp -s "$T/b-amd64/rootfs/etc/ssl/certs/ca-certificates.crt" \
    /etc/ssl/certs/ca-certificates.crt &&
	ok "ca_certs: the host's CA bundle is in the image" ||
	fail "no CA bundle in the image"

# Signed: every output in SHA256SUMS, checked; a subject of the provenance.
(cd "$D" && sed -n 's|  release/|  |p' SHA256SUMS >"$T/sums" &&
    sha256sum -c "$T/sums" >"$T/sumc.txt" 2>&1) &&
	[ "$(wc -l <"$T/sums")" = 19 ] &&
	ok "SHA256SUMS lists the 19 outputs and sha256sum -c checks them" ||
	fail "sha256sum -c: $(cat "$T/sums" "$T/sumc.txt")"
curl -sSf -o "$T/kiln.pub" "$URL/v1/pubkey"
minisign -V -q -p "$T/kiln.pub" -m "$D/SHA256SUMS" &&
	ok "minisign -V checks SHA256SUMS" || fail "minisign -V"
api GET "/v1/jobs/$R1/provenance.intoto.jsonl"
printf '%s' "$BODY" | jq -r .payload | base64 -d |
	jq -r '.subject[].name' >"$T/subjects.txt" 2>/dev/null
grep -qx "release/hello_${V}.oci.tar" "$T/subjects.txt" &&
	grep -qx "release/hello_${V}.oci-index.json" "$T/subjects.txt" &&
	grep -qx "release/go-hello_darwin_all" "$T/subjects.txt" &&
	ok "the image, its index digest and the universal binary are provenance subjects" ||
	fail "subjects: $(cat "$T/subjects.txt")"

# The same commit again, without the cache: the same bytes.
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"cache\": false,
    \"targets\": [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\",
    \"darwin/universal\"], \"archives\": true, \"sbom\": true,
    \"image\": {\"name\": \"hello\", \"entrypoint\": [\"/go-hello\"],
    \"ca_certs\": true}}"
R2=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$R2" 900
expect_json .state succeeded "the second release job succeeds"
api GET "/v1/jobs/$R1"
a=$(printf '%s' "$BODY" | jq -r '[.targets[-1].artifacts[] | .name + " " + .sha256] | join(";")')
api GET "/v1/jobs/$R2"
b=$(printf '%s' "$BODY" | jq -r '[.targets[-1].artifacts[] | .name + " " + .sha256] | join(";")')
[ -n "$a" ] && [ "$a" = "$b" ] &&
	ok "a second build of the commit gives byte-identical outputs" ||
	fail "outputs differ: $a vs $b"

# --- a command recipe's declared inputs in its SBOMs --------------------------------
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
    \"sbom\": true, \"recipe\": {\"kind\": \"command\",
    \"command\": \"printf data > /out/data.bin\",
    \"inputs\": [{\"name\": \"zlib\", \"version\": \"1.2.13\",
    \"purl\": \"pkg:deb/debian/zlib1g@1.2.13\", \"license\": \"Zlib\"}]}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json .state succeeded "a command recipe's job with an SBOM succeeds"
mkdir -p "$T/cmd"
for n in $(printf '%s' "$BODY" | jq -r '.targets[-1].artifacts[].name'); do
	curl -sSf -o "$T/cmd/$n" "$URL/v1/jobs/$ID/artifacts/release/$n"
done
validate "$T"/cmd/*.json >"$T/cmdsbom.txt" 2>&1
[ "$(grep -c '^valid' "$T/cmdsbom.txt")" = 2 ] &&
	ok "its two SBOMs are valid" || fail "validation: $(cat "$T/cmdsbom.txt")"
[ "$(cat "$T"/cmd/*.spdx.json | jq -r '.packages[] | select(.name == "zlib") | .externalRefs[0].referenceLocator')" = pkg:deb/debian/zlib1g@1.2.13 ] &&
	[ "$(cat "$T"/cmd/*.cdx.json | jq -r '.components[] | select(.name == "zlib") | .version')" = 1.2.13 ] &&
	[ "$(cat "$T"/cmd/*.spdx.json | jq -r '[.relationships[] | select(.relationshipType == "DEPENDS_ON")] | length')" = 1 ] &&
	ok "the recipe's declared input is in both, the file depending on it" ||
	fail "declared inputs: $(cat "$T"/cmd/*.json | head -60)"

# --- the repository's own configuration ------------------------------------------
# .kiln.json asks for archives and SBOMs; the request asks for nothing.
mkdir -p "$T/kj"
cp -R "$SRCDIR/tests/fixtures/go-hello/." "$T/kj/"
printf '%s\n' '{"targets": ["linux/amd64"], "sbom": true,' \
    '"archives": {"formats": ["tar.xz"], "name_template": "{{.ProjectName}}-{{.Os}}-{{.Arch}}"}}' \
    >"$T/kj/.kiln.json"
KJ=$(make_repo kj "$T/kj")
KJC=$(git -C "$KJ" rev-parse HEAD)
post_job "{\"repo\": \"$KJ\", \"ref\": \"main\"}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json '[.targets[] | select(.target == "release") | .artifacts[].name] | join(",")' \
	"kj-linux-amd64.tar.xz,kj_0.0.0-SNAPSHOT-${KJC:0:7}_linux_amd64.cdx.json,kj_0.0.0-SNAPSHOT-${KJC:0:7}_linux_amd64.spdx.json" \
	".kiln.json's archives and sbom make the release row"
expect_json '.outputs.archives.formats[0]' tar.xz "the job's outputs are the repository's"
# A .goreleaser.yaml whose name_template uses GoReleaser's functions:
# kiln cannot expand them, says so, and names the archive its own way.
mkdir -p "$T/gr"
cp -R "$SRCDIR/tests/fixtures/go-hello/." "$T/gr/"
cat >"$T/gr/.goreleaser.yaml" <<'EOF'
version: 2
builds: [{goos: [linux], goarch: [arm64], env: [CGO_ENABLED=0]}]
archives:
  - formats: [zip]
    name_template: "{{ .ProjectName }}_{{ title .Os }}"
EOF
GR=$(make_repo gr "$T/gr")
GRC=$(git -C "$GR" rev-parse HEAD)
post_job "{\"repo\": \"$GR\", \"ref\": \"main\"}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json '[.targets[] | select(.target == "release") | .artifacts[].name] | join(",")' \
	"gr_0.0.0-SNAPSHOT-${GRC:0:7}_linux_arm64.zip" \
	"a name_template kiln cannot expand gives way to the default name"
api GET "/v1/jobs/$ID/targets/linux_arm64/log"
grep -q "archives.name_template: .*title.*kiln uses its default" <<<"$BODY" &&
	ok "the log says why" || fail "no note in the log: $(head -20 <<<"$BODY")"

# --- a release that cannot be made fails its row, with the reason ------------
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"windows/amd64\"],
    \"image\": {\"name\": \"app\"}}"
ID=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$ID" 300
expect_json .state failed "an image of no linux target fails the job"
expect_json '.targets[-1].error' "image: the job builds no linux target" \
	"the release row names the reason"
finish
