#!/bin/bash
# The man pages are true to the code:
#  - every option that `kilnd --help` prints has an `.It Fl` entry in
#    kilnd(8), and kilnd(8) has no entry for an option kilnd lacks;
#  - the defaults that --help prints appear in kilnd(8);
#  - every key of the keys[] table in daemon/conf.c has an `.It Cm` entry
#    in kilnd.conf(5), no entry names a key that does not exist, and each
#    entry states the key's range and plain numeric default;
#  - the example file in kilnd.conf(5) is accepted by kilnd;
#  - both pages render with man(1) and have no mandoc -Tlint ERROR;
#  - every metric family of GET /metrics is listed, with its type, under
#    Metrics in kiln-api(7), and every one listed there exists;
#  - the OpenAPI document kilnd serves is api/openapi.json, and Redocly
#    CLI (tests/lint, pinned by its package-lock.json) lints it with no
#    error and no warning; without npm this fails unless KILN_SKIP_NPM=1
#    says to skip that one check;
#  - every file and function that ARCHITECTURE.md, doc/platform.md,
#    README.md and SECURITY.md name exists where they say, and the
#    include rule of ARCHITECTURE.md holds.
# Exit 1 naming what is wrong; 77 (skip) only when man, mandoc or python3 is
# missing (or npm, with KILN_SKIP_NPM=1) and everything that could be
# checked passed.
set -uo pipefail

: "${KILND:?KILND must name the kilnd binary}"
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

MAN8=$SRCDIR/man/kilnd.8
MAN5=$SRCDIR/man/kilnd.conf.5
CONF_C=$SRCDIR/daemon/conf.c

NFAIL=0
NCHECK=0
SKIPPED=
KPID=
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-docs.XXXXXX")
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	if [ -n "$KPID" ] && kill -0 "$KPID" 2>/dev/null; then
		kill -KILL "$KPID" 2>/dev/null
		wait "$KPID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	NFAIL=$((NFAIL + 1))
}
ok() {
	NCHECK=$((NCHECK + 1))
	echo "ok - $*"
}

for f in "$MAN8" "$MAN5" "$CONF_C"; do
	[ -s "$f" ] || { echo "FAIL: $f is missing or empty" >&2; exit 1; }
done

# --- options: kilnd --help <-> kilnd(8) ---------------------------------

if ! help=$("$KILND" --help); then
	echo "FAIL: $KILND --help did not exit 0" >&2
	exit 1
fi
# An option is a dash or two and a letter, not inside a word ("non-empty").
help_opts=$(printf '%s\n' "$help" |
	grep -oE -- '(^|[^[:alnum:]_-])--?[[:alpha:]][[:alnum:]-]*' |
	sed -E 's/^[^-]*//' | sort -u)
# Options in `.It` lines: ".It Fl c Ar file , Fl \-config Ar file".
man_opts=$(grep -E '^\.It .*Fl ' "$MAN8" | sed 's/\\-/-/g' |
	grep -oE 'Fl [^ ]+' | sed -E 's/^Fl /-/; s/[,.;:)]+$//' | sort -u)

echo "# kilnd --help prints: $(tr '\n' ' ' <<<"$help_opts")"
echo "# kilnd(8) has entries for: $(tr '\n' ' ' <<<"$man_opts")"
if ! grep -qE '^-[[:alpha:]]$' <<<"$help_opts" ||
	! grep -qE '^--[[:alpha:]]' <<<"$help_opts"; then
	fail "found no short or no long option in kilnd --help; is the" \
		"extraction in $0 still right?"
fi
for o in $help_opts; do
	if grep -qxF -- "$o" <<<"$man_opts"; then
		ok "option $o is documented in kilnd(8)"
	else
		fail "kilnd --help prints $o, but man/kilnd.8 has no" \
			"'.It Fl ...' entry for it"
	fi
done
for o in $man_opts; do
	grep -qxF -- "$o" <<<"$help_opts" ||
		fail "man/kilnd.8 documents $o, which kilnd --help does not" \
			"print: document only options kilnd has"
done

# "(default /var/lib/kiln)" and the like.
defaults=$(printf '%s\n' "$help" | grep -oE '\(default [^;)]+' |
	sed 's/^(default //')
[ -n "$defaults" ] || fail "found no '(default ...)' in kilnd --help"
while IFS= read -r d; do
	[ -n "$d" ] || continue
	if grep -qF -- "$d" "$MAN8"; then
		ok "default '$d' from --help is in kilnd(8)"
	else
		fail "kilnd --help gives the default '$d', man/kilnd.8 does not"
	fi
done <<<"$defaults"

# --- configuration keys: daemon/conf.c <-> kilnd.conf(5) ---------------

# { "listen", K_LISTEN, OFF(listen), 0, 0 },
table=$(sed -nE 's/^[[:space:]]*\{[[:space:]]*"([a-z0-9_]+)",[[:space:]]*(K_[A-Z_]+),[^,]*,[[:space:]]*([^,]+),[[:space:]]*([^}]+)\}.*/\1 \2 \3 \4/p' "$CONF_C")
code_keys=$(awk '{ print $1 }' <<<"$table" | sort -u)
# [kilnd] keys are documented before the project sections, project keys
# in them.
man_keys=$(sed -n '1,/^\.Ss Project sections/p' "$MAN5" |
	sed -nE 's/^\.It Cm ([a-z0-9_]+)( .*)?$/\1/p' | sort -u)
echo "# daemon/conf.c keys: $(tr '\n' ' ' <<<"$code_keys")"
echo "# kilnd.conf(5) has entries for: $(tr '\n' ' ' <<<"$man_keys")"
[ -n "$code_keys" ] ||
	fail "found no keys in the keys[] table of daemon/conf.c; is the" \
		"extraction in $0 still right?"

# The text of one key's entry, up to the next .It or .El.
entry() {
	awk -v k="$1" '
		$0 ~ "^\\.It Cm " k "( |$)" { on = 1; next }
		on && /^\.(It|El)( |$)/ { exit }
		on { printf "%s ", $0 }' "$MAN5"
}

while read -r key type min max; do
	[ -n "$key" ] || continue
	if ! grep -qxF -- "$key" <<<"$man_keys"; then
		fail "daemon/conf.c has the key '$key', but man/kilnd.conf.5" \
			"has no '.It Cm $key' entry for it"
		continue
	fi
	ok "key $key is documented in kilnd.conf(5)"
	text=$(entry "$key")
	if [ "$type" = K_UINT ] && [[ "$min" =~ ^[0-9]+$ ]] &&
		[[ "${max// /}" =~ ^[0-9]+$ ]]; then
		max=${max// /}
		if [[ "$text" == *"from $min to $max"* ]]; then
			ok "key $key: range $min to $max"
		else
			fail "man/kilnd.conf.5 does not give $key the range" \
				"'from $min to $max' of daemon/conf.c"
		fi
	fi
done <<<"$table"
for k in $man_keys; do
	grep -qxF -- "$k" <<<"$code_keys" ||
		fail "man/kilnd.conf.5 documents the key '$k', which is not in" \
			"the keys[] table of daemon/conf.c"
done

# Project keys: conf_set_project() in daemon/conf-project.c <-> "Project sections".
proj_code=$(sed -n '/^conf_set_project(/,/^}/p' "$SRCDIR/daemon/conf-project.c" |
	sed -nE 's/.*strcmp\(key, "([a-z_]+)"\) == 0.*/\1/p' | sort -u)
proj_man=$(sed -n '/^\.Ss Project sections/,/^\.Sh /p' "$MAN5" |
	sed -nE 's/^\.It Cm ([a-z0-9_]+)( .*)?$/\1/p' | sort -u)
[ -n "$proj_code" ] || fail "found no project keys in conf_set_project() of daemon/conf-project.c"
for k in $proj_code; do
	grep -qxF -- "$k" <<<"$proj_man" &&
		ok "project key $k is documented in kilnd.conf(5)" ||
		fail "conf_set_project() takes the key '$k', kilnd.conf(5) has no entry for it"
done
for k in $proj_man; do
	grep -qxF -- "$k" <<<"$proj_code" ||
		fail "kilnd.conf(5) documents the project key '$k', which conf_set_project() does not take"
done

# Plain numeric defaults from conf_defaults(): "c->http_timeout = 60;".
while read -r key val; do
	[ -n "$key" ] || continue
	grep -qxF -- "$key" <<<"$code_keys" || continue
	grep -qxF -- "$key" <<<"$man_keys" || continue	# failed above
	if [[ "$(entry "$key")" == *"The default is $val."* ]]; then
		ok "key $key: default $val"
	else
		fail "man/kilnd.conf.5 does not say 'The default is $val.' for" \
			"$key, as conf_defaults() in daemon/conf.c sets it"
	fi
done < <(sed -n '/^conf_defaults(/,/^}/p' "$CONF_C" |
	sed -nE 's/^[[:space:]]*c->([a-z0-9_]+) = ([0-9]+);$/\1 \2/p')

# --- the example file of kilnd.conf(5) is a valid configuration --------

sed -n '/^\.Sh EXAMPLES/,$p' "$MAN5" |
	awk '/^\.Bd -literal/ { on = 1; next } on && /^\.Ed/ { exit } on' |
	sed 's/\\e/\\/g; s/^\\&//' >"$T/example.conf"
if ! grep -q '^\[kilnd\]' "$T/example.conf"; then
	fail "man/kilnd.conf.5 has no example file (a .Bd -literal block" \
		"with [kilnd]) under EXAMPLES"
else
	# Flags override the example's state_dir and listen: a private kilnd.
	"$KILND" -c "$T/example.conf" -d "$T/state" -l 127.0.0.1:0 \
		2>"$T/kilnd.log" &
	KPID=$!
	for _ in $(seq 1 200); do
		grep -q 'listening on' "$T/kilnd.log" && break
		kill -0 "$KPID" 2>/dev/null || break
		sleep 0.05
	done
	if grep -q 'listening on' "$T/kilnd.log"; then
		# The Go toolchains scripts/bootstrap installs, as the API
		# and the log show them.
		url=$(grep -oE 'listening on http://[0-9.:]+' "$T/kilnd.log" |
			sed 's/^listening on //')
		if tc=$(curl -sf "$url/v1/toolchains") &&
			jq -e '[.go[] | select((.version | startswith("go1.22."))
				and .path == "/usr/lib/go-1.22/bin/go"
				and (.identity | startswith("/usr/lib/go-1.22/bin/go: go version go1.22.")))]
				| length == 1' <<<"$tc" >/dev/null &&
			jq -e '[.go[].version] | length >= 4' <<<"$tc" >/dev/null &&
			jq -e '[.c[] | select(.target == "linux/arm64" and
				.triple == "aarch64-linux-gnu" and
				(.available | type) == "boolean")] | length == 1' \
				<<<"$tc" >/dev/null; then
			ok "GET /v1/toolchains lists go1.22 at /usr/lib/go-1.22/bin/go and the C map"
		else
			fail "GET /v1/toolchains: ${tc:-no answer from $url}"
		fi
		if grep -qE 'info: go toolchain go1\.22\.[0-9]+: /usr/lib/go-1\.22/bin/go$' \
			"$T/kilnd.log"; then
			ok "the log names each Go toolchain found"
		else
			fail "no 'go toolchain go1.22.N: /usr/lib/go-1.22/bin/go' in the log"
		fi
		# Every family GET /metrics shows is in the Metrics list of
		# kiln-api(7) with its type, and every family listed there is
		# one the code renders (some show only after an event).
		doc_met=$(sed -n '/^\.Ss Metrics/,/^\.Sh /p' "$SRCDIR/man/kiln-api.7" |
			sed -nE 's/^\.It Li ([a-z_]+) Pq ([a-z]+)$/\1 \2/p')
		[ -n "$doc_met" ] || fail "kiln-api(7) has no '.Ss Metrics' list of '.It Li name Pq type'"
		if met=$(curl -sf "$url/metrics"); then
			got=$(sed -nE 's/^# TYPE ([a-z_]+) ([a-z]+)$/\1 \2/p' <<<"$met")
			[ -n "$got" ] || fail "GET /metrics has no '# TYPE' line"
			while read -r m t; do
				[ -n "$m" ] || continue
				grep -qxF "$m $t" <<<"$doc_met" &&
					ok "metric $m ($t) is documented in kiln-api(7)" ||
					fail "GET /metrics has $m ($t); kiln-api(7) lacks '.It Li $m Pq $t' under Metrics"
			done <<<"$got"
		else
			fail "GET /metrics did not answer"
		fi
		while read -r m t; do
			[ -n "$m" ] || continue
			grep -rqF "\"$m\"" "$SRCDIR/daemon" "$SRCDIR/api" ||
				fail "kiln-api(7) lists the metric $m, which no code renders"
		done <<<"$doc_met"
		# The document the API serves, for the lint below.
		if curl -sf "$url/v1/openapi.json" -o "$T/openapi.json" &&
			cmp -s "$T/openapi.json" "$SRCDIR/api/openapi.json"; then
			ok "GET /v1/openapi.json serves api/openapi.json"
		else
			fail "GET /v1/openapi.json does not serve api/openapi.json"
			rm -f "$T/openapi.json"
		fi
		kill -TERM "$KPID"
		rc=0
		wait "$KPID" || rc=$?
		KPID=
		if [ "$rc" -eq 0 ]; then
			ok "kilnd starts with the example file of kilnd.conf(5)"
		else
			fail "kilnd exited $rc on SIGTERM with the example file"
		fi
	else
		fail "kilnd does not start with the example file of" \
			"kilnd.conf(5): $(tail -n 3 "$T/kilnd.log")"
	fi
fi

# --- rendering and lint -------------------------------------------------

if command -v man >/dev/null 2>&1; then
	for page in "$MAN8" "$MAN5" "$SRCDIR/man/kiln-api.7" "$SRCDIR/man/kiln-worker.8"; do
		name=${page#"$SRCDIR"/}
		out=$(MANPAGER=cat PAGER=cat MANWIDTH=80 man -l "$page" \
			2>"$T/man.err")
		rc=$?
		if [[ "$out" == *"has been minimized"* ]]; then
			SKIPPED="$SKIPPED man"
			echo "# man is a stub on this system: rendering not checked"
			break
		fi
		lines=$(printf '%s\n' "$out" | wc -l)
		if [ "$rc" -ne 0 ] || [ "$lines" -lt 10 ]; then
			fail "man -l $name failed (exit $rc, $lines lines):" \
				"$(head -n 5 "$T/man.err")"
		else
			ok "man -l $name renders ($lines lines)"
		fi
	done
else
	SKIPPED="$SKIPPED man"
	echo "# man is missing: rendering not checked"
fi

if command -v mandoc >/dev/null 2>&1; then
	for page in "$MAN8" "$MAN5" "$SRCDIR/man/kiln-api.7" "$SRCDIR/man/kiln-worker.8"; do
		name=${page#"$SRCDIR"/}
		# Exit 0: nothing at level ERROR or above (3 error, 4
		# unsupported, 5/6 mandoc failed).
		if msgs=$(mandoc -Tlint -W error "$page" 2>&1); then
			ok "mandoc -Tlint: no errors in $name"
		else
			fail "mandoc -Tlint reports errors in $name:"$'\n'"$msgs"
		fi
		# Below ERROR: shown, not failed ("referenced manual not found"
		# depends on what this host has installed).
		mandoc -Tlint "$page" 2>&1 | sed 's/^/# note: /'
	done
else
	SKIPPED="$SKIPPED mandoc"
	echo "# mandoc is missing: lint not checked"
fi

# --- doc/kilnd.conf.example: valid, commented and not, every key -------

EX=$SRCDIR/doc/kilnd.conf.example
if out=$("$KILND" -c "$EX" --check-config 2>&1); then
	ok "kilnd --check-config accepts doc/kilnd.conf.example"
else
	fail "the example configuration is refused: $out"
fi
if grep -qE '^go toolchain go1\.22\.[0-9]+ /usr/lib/go-1\.22/bin/go$' <<<"$out" &&
	[ "$(grep -c '^go toolchain ' <<<"$out")" -ge 4 ]; then
	ok "kilnd --check-config lists the Go toolchains"
else
	fail "kilnd --check-config does not list go1.22 (and the other Go" \
		"toolchains of scripts/bootstrap): $out"
fi
printf '[toolchains]\ngo = /opt/go/bin/go\n' >"$T/badgo.conf"
out=$("$KILND" -c "$T/badgo.conf" --check-config 2>&1) &&
	fail "--check-config accepted go = /opt/go/bin/go" ||
	{ [[ "$out" == *"badgo.conf:2: toolchains: go: '/opt/go/bin/go' is not an absolute path under /usr"* ]] &&
	  ok "--check-config refuses a go toolchain outside /usr" ||
	  fail "--check-config said: $out"; }
sed 's/^;//' "$EX" >"$T/uncommented.conf"
if out=$("$KILND" -c "$T/uncommented.conf" --check-config 2>&1); then
	ok "and with every line uncommented: $out"
else
	fail "the uncommented example is refused: $out"
fi
for key in $code_keys; do
	grep -q "^;$key = " "$EX" || fail "doc/kilnd.conf.example lacks the key $key"
done
ok "doc/kilnd.conf.example shows every key of daemon/conf.c"
printf '[kilnd]\nworkers = many\n' >"$T/bad.conf"
out=$("$KILND" -c "$T/bad.conf" --check-config 2>&1) && fail "--check-config accepted workers = many" ||
	{ [[ "$out" == *"bad.conf:2: workers: 'many'"* ]] && ok "--check-config names file:line of an error" ||
	  fail "--check-config said: $out"; }

# --- kiln-api(7) lists every route of the OpenAPI document ---------------

API7=$SRCDIR/man/kiln-api.7
routes=$(jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | ascii_upcase + " " + $p' \
	"$SRCDIR/api/openapi.json")
[ -n "$routes" ] || fail "no routes read from api/openapi.json"
while read -r m p; do
	grep -qF ".It Li $m $p " "$API7" &&
		ok "kiln-api(7) documents $m $p" || fail "kiln-api(7) lacks '.It Li $m $p'"
done <<<"$routes"

# --- redocly lint: no error, no warning ------------------------------------

# Installed from the committed lock file into the build tree (never the
# source tree, which distcheck makes read-only; a build in the source tree
# installs beside the files themselves); npm keeps what it fetched
# in its cache, so a second run needs no network.
LINT_SRC=$SRCDIR/tests/lint
LINT_DIR=${BUILDDIR:-$T}/tests/lint
DOC=$T/openapi.json
[ -s "$DOC" ] || DOC=$SRCDIR/api/openapi.json
if ! command -v npm >/dev/null || ! command -v npx >/dev/null; then
	if [ "${KILN_SKIP_NPM:-}" = 1 ]; then
		echo "# KILN_SKIP_NPM=1: npm is missing; redocly lint NOT run"
		SKIPPED="$SKIPPED npm"
	else
		fail "npm is missing: redocly lint of the OpenAPI document cannot" \
			"run (install nodejs and npm, or set KILN_SKIP_NPM=1 to skip it)"
	fi
elif ! mkdir -p "$LINT_DIR" ||
	! { [ "$(cd "$LINT_SRC" && pwd -P)" = "$(cd "$LINT_DIR" && pwd -P)" ] ||
		{ cp "$LINT_SRC/package.json" "$LINT_SRC/package-lock.json" \
			"$LINT_SRC/redocly.yaml" "$LINT_DIR/" &&
		chmod u+w "$LINT_DIR"/*; }; } ||
	! (cd "$LINT_DIR" && npm ci --no-audit --no-fund >"$T/npm.log" 2>&1); then
	fail "npm ci in $LINT_DIR failed: $(tail -n 5 "$T/npm.log" 2>/dev/null)"
else
	ok "npm ci installed Redocly CLI $(cd "$LINT_DIR" && npx --no-install redocly --version)"
	# JSON output: the totals are counted here, since redocly exits 0
	# on warnings.
	(cd "$LINT_DIR" && npx --no-install redocly lint --config redocly.yaml \
		--format=json --max-problems 1000 "$DOC") >"$T/lint.json" 2>"$T/lint.err"
	if totals=$(jq -er '.totals | "\(.errors) \(.warnings)"' "$T/lint.json"); then
		read -r nerr nwarn <<<"$totals"
		if [ "$nerr" = 0 ] && [ "$nwarn" = 0 ]; then
			ok "redocly lint: 0 errors, 0 warnings in the OpenAPI document"
		else
			fail "redocly lint: $nerr errors, $nwarn warnings in" \
				"api/openapi.json:"
			jq -r '.problems[] | "  \(.severity) \(.ruleId): \(.message) at \(.location[0].pointer)"' \
				"$T/lint.json" >&2
		fi
	else
		fail "redocly lint gave no report: $(tail -n 5 "$T/lint.err")"
	fi
fi

# --- the prose docs name files and functions that exist; the layers hold --

# ARCHITECTURE.md, doc/platform.md, README.md and SECURITY.md name files
# (`daemon/db/writer.c`) and, in "(`FILE`: `fn`, `fn`; ...)", functions
# of a file: each file exists and each function is in the file it is
# said to be in.  Nothing points outside the repository.  The include
# rule of ARCHITECTURE.md holds with the compiler's search path
# (-I. -Ilib -Idaemon): lib/ includes nothing of daemon/ api/ http/ cmd/
# worker/; daemon/ nothing of api/ http/ cmd/; api/ nothing of http/ cmd/;
# worker/ only lib/.
if command -v python3 >/dev/null; then
	while IFS= read -r line; do
		case $line in
		ok\ *) ok "${line#ok }" ;;
		*) fail "$line" ;;
		esac
	done < <(python3 - "$SRCDIR" <<'PY'
import os, re, sys
root = sys.argv[1]
docs = ["ARCHITECTURE.md", "doc/platform.md", "README.md", "SECURITY.md"]
top = ("lib/", "daemon/", "api/", "http/", "cmd/", "worker/", "tests/",
       "bench/", "schema/", "scripts/", "systemd/", "doc/", "man/")
def read(p):
    with open(os.path.join(root, p), errors="replace") as f:
        return f.read()
for doc in docs:
    text = read(doc)
    bad = 0
    for m in re.finditer(r"`([^`\n]+)`", text):
        t = m.group(1).split(":")[0].rstrip(".,;")
        if t.startswith(top) and "*" not in t and " " not in t and \
           not os.path.exists(os.path.join(root, t)):
            bad += 1
            print(f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {t} does not exist")
    for m in re.finditer(r"\(([^()]*`[^`]+`:[^()]*)\)", text):
        line = text.count("\n", 0, m.start()) + 1
        for part in m.group(1).split(";"):
            cur = None
            for tok, colon in re.findall(r"`([^`]+)`(:?)", part):
                if colon:
                    cur = tok if os.path.isfile(os.path.join(root, tok)) else None
                elif cur and re.fullmatch(r"[A-Za-z_]\w*(\(\))?", tok):
                    fn = tok.rstrip("()")
                    if not re.search(r"\b" + fn + r"\b", read(cur)):
                        bad += 1
                        print(f"{doc}:{line}: {fn} is not in {cur}")
    if re.search(r"\.\./shared|DESIGN\.md|FACTS\.md|STYLE\.md", text):
        bad += 1
        print(f"{doc}: refers to a file outside the repository")
    if bad == 0:
        print(f"ok {doc}: every file and function it names exists")
rule = {"lib": ("daemon", "api", "http", "cmd", "worker"),
        "daemon": ("api", "http", "cmd", "worker"),
        "api": ("http", "cmd", "worker"),
        "worker": ("daemon", "api", "http", "cmd")}
bad = 0
for layer, banned in rule.items():
    for dp, _, fs in os.walk(os.path.join(root, layer)):
        for f in fs:
            if not f.endswith((".c", ".h")):
                continue
            rel = os.path.relpath(os.path.join(dp, f), root)
            for n, l in enumerate(read(rel).splitlines(), 1):
                m = re.match(r'\s*#\s*include\s*"([^"]+)"', l)
                if not m:
                    continue
                for d in (os.path.dirname(rel), "", "lib", "daemon"):
                    c = os.path.normpath(os.path.join(d, m.group(1)))
                    if os.path.isfile(os.path.join(root, c)):
                        if c.split("/")[0] in banned:
                            bad += 1
                            print(f"{rel}:{n}: includes {c}, a higher layer")
                        break
if bad == 0:
    print("ok lib/, daemon/, api/ and worker/ include only what lies below them")
PY
)
else
	SKIPPED="$SKIPPED python3"
fi

echo "# $NCHECK checks passed, $NFAIL failed"
[ "$NFAIL" -eq 0 ] || exit 1
if [ -n "$SKIPPED" ]; then
	echo "SKIP: missing tool(s):$SKIPPED; the other checks passed"
	exit 77
fi
exit 0
