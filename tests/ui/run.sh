#!/bin/bash
# The dashboard in a real browser: playwright-core (npm, pinned in
# package-lock.json) drives Debian's chromium against a real kilnd that
# builds real jobs.  Two farms: one without tokens (flows.mjs: a job
# appears and succeeds live, a live log, an artifact download, ANSI
# colours; biglog.mjs: a 16 MiB log's figures and completeness), and one
# with tokens and public_read (cancel.mjs: what each token may do, cancel,
# retry), and a paused one with two projects and tokens (filters.mjs: the
# filters are the server's and the hash carries them, the phone layout,
# pause and resume).  Screenshots land in $BUILDDIR/tests/ui/out.
#
# Skips only when chromium is absent and KILN_UI_REQUIRED is unset;
# scripts/test sets it, so CI fails rather than skips without a browser.
set -euo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILDDIR:=$PWD}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM

missing=
[ -f "$CHROMIUM" ] && [ -x "$CHROMIUM" ] || missing="$CHROMIUM"
for tool in node npm git openssl; do
	command -v "$tool" >/dev/null || missing="$missing${missing:+, }$tool"
done
if [ -n "$missing" ]; then
	if [ -z "${KILN_UI_REQUIRED:-}" ]; then
		echo "SKIP: $missing missing (Debian packages chromium, nodejs, npm)"
		exit 77
	fi
	echo "FAIL: $missing missing and KILN_UI_REQUIRED is set"
	exit 1
fi

. "$SRCDIR/tests/integration/lib.sh"

# The source tree is read-only under distcheck: the package files and the
# scripts are copied next to node_modules in the build tree (node resolves
# playwright-core from the importing file's directory).
UI=$BUILDDIR/tests/ui
mkdir -p "$UI"
if [ "$(cd "$SRCDIR/tests/ui" && pwd -P)" != "$(cd "$UI" && pwd -P)" ]; then
	for f in package.json package-lock.json lib.mjs flows.mjs biglog.mjs cancel.mjs \
	    filters.mjs; do
		cp "$SRCDIR/tests/ui/$f" "$UI/$f"
		chmod u+w "$UI/$f"
	done
fi
rm -rf "$UI/out"
# The npm package only: never a browser of playwright's own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if (cd "$UI" && npm ci --no-audit --no-fund) >"$T/npm.log" 2>&1; then
	ok "npm ci installed playwright-core $(cd "$UI" && node -p 'require("playwright-core/package.json").version')"
else
	cat "$T/npm.log" >&2
	fail "npm ci in $UI"
	finish
	exit 1
fi

REPO=$(make_repo ui "$SRCDIR/tests/fixtures/c-hello")
export KILN_REPO=$REPO KILN_UI_OUT=$UI/out

# run_node SCRIPT: its ok/FAIL lines are this test's.
run_node() {
	if KILN_URL=$URL node "$UI/$1"; then
		ok "$1 passed"
	else
		fail "$1 failed (its FAIL lines above)"
	fi
}

# --- a farm without tokens -----------------------------------------------------
STATE=$T/open
start_kilnd -w 2
run_node flows.mjs
run_node biglog.mjs
stop_kilnd

# --- tokens and public_read ----------------------------------------------------
ADMIN=admin-$(openssl rand -hex 16)
SUBMIT=ci-$(openssl rand -hex 16)
READ=read-$(openssl rand -hex 16)
hash() { printf '%s\n' "$1" | "$KILND" --hash-token; }
cat >"$T/tokens.conf" <<EOF
[kilnd]
allow_local_repos = yes
public_read = yes

[tokens]
ops = admin $(hash "$ADMIN")
ci = submit $(hash "$SUBMIT")
dash = read $(hash "$READ")
EOF
STATE=$T/tokens
start_kilnd -w 2 -c "$T/tokens.conf"
KILN_READ_TOKEN=$READ KILN_SUBMIT_TOKEN=$SUBMIT run_node cancel.mjs
stop_kilnd

# --- projects, paused, tokens --------------------------------------------------
ALPHA=$(make_repo ui-alpha "$SRCDIR/tests/fixtures/c-hello")
BETA=$(make_repo ui-beta "$SRCDIR/tests/fixtures/c-hello")
cat >"$T/projects.conf" <<EOF
[kilnd]
allow_local_repos = yes
paused = yes

[tokens]
ops = admin $(hash "$ADMIN")
ci = submit $(hash "$SUBMIT")

[project alpha]
repo = $ALPHA
refs = refs/heads/*

[project beta]
repo = $BETA
refs = refs/heads/*
EOF
STATE=$T/projects
start_kilnd -w 1 -c "$T/projects.conf"
KILN_ADMIN_TOKEN=$ADMIN KILN_SUBMIT_TOKEN=$SUBMIT KILN_ALPHA_REPO=$ALPHA \
	KILN_BETA_REPO=$BETA run_node filters.mjs
stop_kilnd

echo "# screenshots: $(cd "$UI/out" 2>/dev/null && ls | tr '\n' ' ')"
finish
