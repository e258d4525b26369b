#!/bin/bash
# make clean's clean-ui removes what the UI and docs tests installed
# (node_modules, screenshots) and, out of tree only, the build tree's
# copies of tests/ui and tests/lint, never the committed sources:
#  - a source tree reached through a symlink and configured with the
#    real path of configure (two spellings of one directory) keeps
#    tests/ui and tests/lint, losing only their node_modules and out;
#  - a real out-of-tree build loses its copies, the sources stay.
# The recipe is the build tree's own Makefile, run in a scratch tree with
# srcdir and the abs_ directories set as configure would set them there.
# Exit 1 naming what is wrong.
set -uo pipefail

: "${BUILDDIR:?BUILDDIR must name the build tree (its Makefile)}"
MK=$BUILDDIR/Makefile
NFAIL=0
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cleanui.XXXXXX")
trap 'rm -rf "$T"' EXIT

ok() { echo "ok - $*"; }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }

[ -f "$MK" ] || { echo "FAIL: no $MK"; exit 1; }

# A committed file and an install of each directory under root.
populate() {
	mkdir -p "$1/tests/ui/node_modules/x" "$1/tests/ui/out" \
		"$1/tests/lint/node_modules/y" || exit 1
	echo run >"$1/tests/ui/run.sh" && echo '{}' >"$1/tests/lint/package.json" ||
		exit 1
}

# clean_ui DIR SRCDIR ABS_BUILDDIR: make clean-ui as in a build at DIR.
clean_ui() {
	(cd "$1" && make -s -f "$MK" clean-ui srcdir="$2" top_srcdir="$2" \
		abs_top_srcdir="$2" abs_srcdir="$2" abs_top_builddir="$3" \
		abs_builddir="$3") >"$T/make.log" 2>&1
}

# --- in tree, reached through a symlink --------------------------------
populate "$T/src"
ln -s "$T/src" "$T/link"
clean_ui "$T/link" "$T/src" "$T/link"
if [ -f "$T/src/tests/ui/run.sh" ] && [ -f "$T/src/tests/lint/package.json" ]
then
	ok "in tree through a symlink: tests/ui and tests/lint stay"
else
	fail "in tree through a symlink: make clean-ui removed the sources" \
		"tests/ui or tests/lint ($(tail -n 3 "$T/make.log"))"
fi
if [ ! -e "$T/src/tests/ui/node_modules" ] && [ ! -e "$T/src/tests/ui/out" ] &&
	[ ! -e "$T/src/tests/lint/node_modules" ]; then
	ok "in tree: node_modules and out are removed"
else
	fail "in tree: node_modules or out is left"
fi

# --- out of tree --------------------------------------------------------
rm -rf "$T/src" "$T/link"
populate "$T/src"
populate "$T/build"
clean_ui "$T/build" "$T/src" "$T/build"
if [ ! -e "$T/build/tests/ui" ] && [ ! -e "$T/build/tests/lint" ]; then
	ok "out of tree: the build tree's tests/ui and tests/lint are removed"
else
	fail "out of tree: the build tree keeps tests/ui or tests/lint"
fi
if [ -f "$T/src/tests/ui/run.sh" ] && [ -f "$T/src/tests/lint/package.json" ] &&
	[ -e "$T/src/tests/ui/node_modules" ]; then
	ok "out of tree: the source tree is untouched"
else
	fail "out of tree: make clean-ui changed the source tree"
fi

[ "$NFAIL" -eq 0 ] || exit 1
