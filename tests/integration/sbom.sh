#!/bin/bash
# SBOMs of real Go binaries (worker/sbom.c through tests/sbom-driver): a
# module requiring golang.org/x/text, served from a file:// module proxy
# this test makes from Debian's sources (goproxy.sh), built for
# linux/amd64 and linux/arm64.  Each SPDX 2.3 and CycloneDX 1.5 document
# validates against the official schema (tests/schemas, no network); its
# modules (path, version, h1: sum) are those `go version -m` prints for
# the binary; two runs under another TZ, umask and locale give the same
# bytes; a file that is not a Go binary is refused by name and gets a
# files-only document that validates too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/goproxy.sh"

DRIVER=${BUILDDIR:-$(dirname "$KILND")}/tests/sbom-driver
for tool in zip sha256sum /usr/bin/python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null ||
	{ echo "SKIP: python3-jsonschema missing"; exit 77; }
[ -x "$DRIVER" ] || { echo "FAIL: no $DRIVER (make check builds it)"; exit 1; }
GOV=$(go_lowest 1.21.0)
[ -n "$GOV" ] || { echo "SKIP: no Go toolchain >= 1.21 (the fixture's go line)"; exit 77; }
GO=$(go_bin "$GOV")
trap 'chmod -R u+w "$T" 2>/dev/null || true; cleanup' EXIT

make_goproxy "$T/proxy" || { echo "FAIL: could not make the module proxy"; exit 1; }
V=$GOPROXY_VERSION
hostgo() {
	env -u GOFLAGS -u GOPRIVATE -u GONOPROXY -u GONOSUMDB -u GOENV \
		GOPROXY="file://$T/proxy" GOSUMDB=off GOTOOLCHAIN=local \
		GOPATH="$T/gopath" GOMODCACHE="$T/gopath/mod" GOCACHE="$T/gocache" \
		"$GO" "$@"
}
cp -R "$SRCDIR/tests/fixtures/go-deps" "$T/src"
(cd "$T/src" && GOFLAGS=-mod=mod hostgo mod tidy) >"$T/tidy.out" 2>&1 ||
	{ cat "$T/tidy.out"; echo "FAIL: go mod tidy against the proxy"; exit 1; }
SUM=$(awk -v v="$V" '$1 == "golang.org/x/text" && $2 == v { print $3 }' "$T/src/go.sum")
[ -n "$SUM" ] && ok "go.sum has golang.org/x/text $V $SUM" || fail "go.sum: $(cat "$T/src/go.sum")"

# The validator: every schema from tests/schemas, CycloneDX's references
# resolved there by their $id.
cat >"$T/validate.py" <<'PY'
import json, sys, jsonschema
schemas, kind, doc = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
def load(n):
    return json.load(open(schemas + "/" + n))
if kind == "spdx":
    s = load("spdx-2.3.schema.json")
    store = {}
else:
    s = load("bom-1.5.schema.json")
    store = {x["$id"]: x for x in (load("spdx.schema.json"), load("jsf-0.82.schema.json"), s)}
res = jsonschema.RefResolver.from_schema(s, store=store)
errs = sorted(jsonschema.Draft7Validator(s, resolver=res).iter_errors(doc), key=str)
for e in errs[:5]:
    print(kind, list(e.absolute_path), e.message[:300], file=sys.stderr)
sys.exit(1 if errs else 0)
PY
# The modules of a document as "path version sum" lines, main first.
cat >"$T/modules.py" <<'PY'
import json, sys
kind, doc = sys.argv[1], json.load(open(sys.argv[2]))
if kind == "spdx":
    for p in doc["packages"]:
        if not p["SPDXID"].startswith("SPDXRef-Module-"):
            continue
        s = [r["referenceLocator"] for r in p.get("externalRefs", []) if r["referenceType"] == "go-module-sum"]
        print(p["name"], p.get("versionInfo", ""), s[0] if s else "")
else:
    for c in doc["components"]:
        s = [x["value"] for x in c.get("properties", []) if x["name"] == "kiln:go:sum"]
        print(c["name"], c.get("version", ""), s[0] if s else "")
PY
# go version -m's modules the same way: a replacement stands for the
# module it replaces.
gomods() {
	hostgo version -m "$1" | awk -F'\t' '
		$2 == "mod" || $2 == "dep" { if (n) print line; line = $3 " " $4 " " $5; n = 1 }
		$2 == "=>" { line = $3 " " $4 " " $5 }
		END { if (n) print line }'
}

CREATED=1767323045
for target in linux/amd64 linux/arm64; do
	arch=${target#linux/}
	bin=$T/out/$arch/textdep
	mkdir -p "$T/out/$arch"
	(cd "$T/src" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
		hostgo build -trimpath -buildvcs=false -o "$bin" .) >"$T/build.out" 2>&1 ||
		{ cat "$T/build.out"; fail "go build for $target"; continue; }
	sha=$(sha256sum "$bin" | cut -d' ' -f1)
	d=$T/doc/$arch
	mkdir -p "$d/1" "$d/2"
	(cd "$d" && TZ=UTC LC_ALL=C umask 022 && "$DRIVER" go "$bin" "$sha" "$target" \
		"$CREATED" 1/spdx.json 1/cdx.json) ||
		{ fail "$target: the driver failed"; continue; }
	(cd "$d" && umask 077 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 \
		"$DRIVER" go "$bin" "$sha" "$target" "$CREATED" 2/spdx.json 2/cdx.json) ||
		{ fail "$target: the second run failed"; continue; }
	for k in spdx cdx; do
		cmp -s "$d/1/$k.json" "$d/2/$k.json" &&
			ok "$target: $k document byte-identical across TZ, umask, locale" ||
			fail "$target: $k documents differ: $(diff "$d/1/$k.json" "$d/2/$k.json" | head -5)"
		/usr/bin/python3 "$T/validate.py" "$SRCDIR/tests/schemas" $k "$d/1/$k.json" &&
			ok "$target: $k document validates against the official schema" ||
			fail "$target: $k document does not validate"
	done
	gomods "$bin" >"$d/go.mods"
	grep -qx "golang.org/x/text $V $SUM" "$d/go.mods" &&
		ok "$target: go version -m lists golang.org/x/text $V $SUM" ||
		fail "$target: go version -m: $(cat "$d/go.mods")"
	/usr/bin/python3 "$T/modules.py" spdx "$d/1/spdx.json" >"$d/spdx.mods"
	/usr/bin/python3 "$T/modules.py" cdx "$d/1/cdx.json" >"$d/cdx.mods"
	for k in spdx cdx; do
		cmp -s "$d/go.mods" "$d/$k.mods" &&
			ok "$target: $k modules (path, version, h1) = go version -m's" ||
			fail "$target: $k modules: $(diff "$d/go.mods" "$d/$k.mods")"
	done
	jq -e --arg s "$sha" --arg p "pkg:golang/golang.org/x/text@$V" '
		.metadata.component.hashes[0].content == $s and
		([.components[].purl] | index($p)) != null and
		([.metadata.component.properties[] | select(.name == "kiln:go:build:GOARCH") | .value] == ["'"$arch"'"])' \
		"$d/1/cdx.json" >/dev/null &&
		ok "$target: CycloneDX names the binary's SHA-256, the purl and GOARCH" ||
		fail "$target: CycloneDX: $(jq -c '.metadata.component' "$d/1/cdx.json")"
	jq -e --arg s "$sha" '
		(.packages[] | select(.SPDXID == "SPDXRef-Binary") | .checksums[0].checksumValue) == $s and
		([.relationships[] | select(.relationshipType == "DEPENDS_ON")] | length) == 1 and
		.creationInfo.created == "2026-01-02T03:04:05Z"' "$d/1/spdx.json" >/dev/null &&
		ok "$target: SPDX names the binary's SHA-256, DEPENDS_ON, the commit time" ||
		fail "$target: SPDX: $(head -c 600 "$d/1/spdx.json")"
done
cmp -s "$T/doc/amd64/1/spdx.json" "$T/doc/arm64/1/spdx.json" &&
	fail "amd64 and arm64 gave the same SPDX document" ||
	ok "the two targets' documents differ (each names its own binary)"

# Not a Go binary: refused by name; a files-only document instead.
printf '#!/bin/sh\necho hi\n' >"$T/tool.sh"
sha=$(sha256sum "$T/tool.sh" | cut -d' ' -f1)
if "$DRIVER" go "$T/tool.sh" "$sha" linux/amd64 "$CREATED" "$T/x" "$T/y" 2>"$T/err"; then
	fail "a shell script gave a Go SBOM"
else
	grep -q "no Go build information" "$T/err" &&
		ok "a shell script: $(cat "$T/err")" || fail "a shell script: $(cat "$T/err")"
fi
"$DRIVER" files release "$CREATED" "$T/fs.json" "$T/fc.json" tool.sh "$sha" \
	textdep "$(sha256sum "$T/out/amd64/textdep" | cut -d' ' -f1)" ||
	fail "the files-only documents"
for k in spdx cdx; do
	f=$T/fs.json; [ $k = cdx ] && f=$T/fc.json
	/usr/bin/python3 "$T/validate.py" "$SRCDIR/tests/schemas" $k "$f" &&
		ok "files-only $k document validates" || fail "files-only $k document"
done
finish
