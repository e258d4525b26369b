# A Go module proxy for the tests, made from real module sources and served
# over HTTP on loopback with an access log, and helpers the Go suites
# share (the host's Go toolchains, await).  Sourced by the integration
# suites and bench scripts; it defines functions only, and only await needs
# lib.sh.
#
# The module is Debian's golang.org/x/text (golang-golang-x-text-dev, its
# sources under /usr/share/gocode/src) at the version of the package,
# laid out as GOPROXY wants it:
#	golang.org/x/text/@v/list	one version a line
#	golang.org/x/text/@v/vX.info	{"Version": "vX", "Time": "..."}
#	golang.org/x/text/@v/vX.mod	the module's go.mod
#	golang.org/x/text/@v/vX.zip	golang.org/x/text@vX/... , made with zip
# No go.sum line of the public module matches (Debian's sources are not
# byte for byte the tag), so clients run with GOSUMDB=off and a go.sum made
# against this proxy with `go mod tidy`.

GOPROXY_MODSRC=${GOPROXY_MODSRC:-/usr/share/gocode/src/golang.org/x/text}
GOPROXY_MODULE=golang.org/x/text
# Fixed, so that two trees made from the same sources are the same bytes.
GOPROXY_TIME=2023-01-04T17:50:37Z

# goproxy_version: the module version of Debian's package, v + its upstream
# part (0.7.0-1 -> v0.7.0).
goproxy_version() {
	local v
	v=$(dpkg-query -W -f='${Version}' golang-golang-x-text-dev 2>/dev/null) ||
		return 1
	v=${v#*:}
	printf 'v%s' "${v%-*}"
}

# goproxy_files SRC: the files a module zip holds, as Go's module zip
# (golang.org/x/mod/zip) chooses them, relative to SRC and sorted: no VCS
# directories, no nested modules (a directory with its own go.mod), no
# vendored packages (only files directly in the top vendor/ stay; with a
# nested vendor/ nothing stays, Go's golang.org/issue/31562), regular
# files only.
goproxy_files() {
	(cd "$1" && find . \
		\( -type d \( -name .git -o -name .hg -o -name .svn -o -name .bzr \) -prune \) -o \
		\( -type d ! -name . -exec test -f '{}/go.mod' ';' -prune \) -o \
		-type f -print) |
		sed 's|^\./||' | grep -Ev '^vendor/.*/|/vendor/' | LC_ALL=C sort
}

# goproxy_add_version DIR MODULE VERSION SRC: one version of MODULE from
# the module tree SRC into the proxy tree DIR; the files zipped stay in
# DIR.stage (outside what is served) for tamper_goproxy.
goproxy_add_version() {
	local dir=$1 mod=$2 ver=$3 src=$4 at stage
	at=$dir/$mod/@v
	stage=$dir.stage/$ver
	mkdir -p "$at" "$stage/$mod@$ver"
	goproxy_files "$src" >"$stage/files" || return 1
	[ -s "$stage/files" ] || { echo "goproxy: no files in $src" >&2; return 1; }
	tar -C "$src" --no-recursion -cf - -T "$stage/files" |
		tar -C "$stage/$mod@$ver" -xf - || return 1
	# Same bytes every time: fixed times and modes, no extra fields (-X),
	# entries sorted.  (Go's h1: hash covers only names and contents.)
	find "$stage/$mod@$ver" -type d -exec chmod 755 {} + -o -type f -exec chmod 644 {} +
	find "$stage/$mod@$ver" -exec touch -h -d "$GOPROXY_TIME" {} +
	rm -f "$at/$ver.zip"
	(cd "$stage" && sed "s|^|$mod@$ver/|" files |
		TZ=UTC zip -X -q -@ "$at/$ver.zip") || return 1
	cp "$src/go.mod" "$at/$ver.mod"
	printf '{"Version":"%s","Time":"%s"}\n' "$ver" "$GOPROXY_TIME" >"$at/$ver.info"
	grep -qx "$ver" "$at/list" 2>/dev/null || echo "$ver" >>"$at/list"
}

# make_goproxy DIR: the proxy tree of golang.org/x/text in DIR; sets
# GOPROXY_VERSION (v0.7.0 with Debian 12).
make_goproxy() {
	GOPROXY_VERSION=$(goproxy_version) || {
		echo "goproxy: golang-golang-x-text-dev is not installed" >&2
		return 1
	}
	[ -f "$GOPROXY_MODSRC/go.mod" ] || {
		echo "goproxy: no module at $GOPROXY_MODSRC" >&2
		return 1
	}
	goproxy_add_version "$1" "$GOPROXY_MODULE" "$GOPROXY_VERSION" "$GOPROXY_MODSRC"
}

# tamper_goproxy DIR: change one byte of one file inside the version's zip
# (the first byte of doc.go: '/' becomes '#') and zip it again as before,
# so the zip is well formed and only its hash is wrong.
tamper_goproxy() {
	local dir=$1 ver=$GOPROXY_VERSION stage f
	stage=$dir.stage/$ver
	f=$stage/$GOPROXY_MODULE@$ver/doc.go
	[ -f "$f" ] || { echo "goproxy: $f missing" >&2; return 1; }
	printf '#' | dd of="$f" bs=1 seek=0 count=1 conv=notrunc status=none
	touch -h -d "$GOPROXY_TIME" "$f"
	rm -f "$dir/$GOPROXY_MODULE/@v/$ver.zip"
	(cd "$stage" && sed "s|^|$GOPROXY_MODULE@$ver/|" files |
		TZ=UTC zip -X -q -@ "$dir/$GOPROXY_MODULE/@v/$ver.zip")
}

# serve_goproxy DIR: serve DIR over HTTP on 127.0.0.1, an ephemeral port;
# sets GOPROXY_URL, GOPROXY_LOG (one line per request, with its path) and
# GOPROXY_PID.  The caller stops it (stop_goproxy) in its trap.
serve_goproxy() {
	local dir=$1 py port
	py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	GOPROXY_LOG=$dir.access.log
	: >"$GOPROXY_LOG"
	"$py" -u -m http.server --bind 127.0.0.1 --directory "$dir" 0 \
		>"$dir.serve.out" 2>"$GOPROXY_LOG" &
	GOPROXY_PID=$!
	for _ in $(seq 1 100); do
		port=$(sed -n 's/^Serving HTTP on [0-9.]* port \([0-9]*\).*/\1/p' \
			"$dir.serve.out" 2>/dev/null)
		if [ -n "$port" ]; then
			GOPROXY_URL=http://127.0.0.1:$port
			return 0
		fi
		kill -0 "$GOPROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "goproxy: the HTTP server did not start: $(cat "$GOPROXY_LOG")" >&2
	stop_goproxy
	return 1
}

stop_goproxy() {
	if [ -n "${GOPROXY_PID:-}" ]; then
		kill "$GOPROXY_PID" 2>/dev/null || true
		wait "$GOPROXY_PID" 2>/dev/null || true
		GOPROXY_PID=
	fi
}

# goproxy_gets PATH-SUFFIX: how many GETs of a path ending in PATH-SUFFIX
# the server answered (e.g. goproxy_gets "@v/$GOPROXY_VERSION.zip").
goproxy_gets() {
	grep -ac "\"GET [^ ]*$1 HTTP" "$GOPROXY_LOG" || true
}

# await ID [SECONDS] (with lib.sh): wait_job for an id a submission returned;
# when the submission failed (no id) the test goes on with an empty job,
# so that the checks after it fail one by one instead of waiting.
await() {
	case ${1:-} in
	''|null)
		fail "no job to wait for (its submission failed)"
		BODY='{}'
		return 0
		;;
	esac
	wait_job "$@" || true
}

# The Go toolchains of this host, as kilnd finds them by default
# (/usr/lib/go-*/bin/go): go_versions prints their versions (go1.21.13),
# lowest first; go_lowest VERSION the lowest that is at least VERSION
# (1.21.0, 1.22, go1.22.0), or nothing; go_bin GOVERSION the path of that
# toolchain's go.
go_versions() {
	local g
	for g in /usr/lib/go-*/bin/go; do
		[ -x "$g" ] && "$g" env GOVERSION 2>/dev/null
	done | sort -uV
}

go_lowest() {
	local want=${1#go} v
	for v in $(go_versions); do
		if [ "$(printf '%s\n%s\n' "$want" "${v#go}" | sort -V | head -1)" = "$want" ]; then
			printf '%s' "$v"
			return 0
		fi
	done
}

go_bin() {
	local g
	for g in /usr/lib/go-*/bin/go; do
		if [ -x "$g" ] && [ "$("$g" env GOVERSION 2>/dev/null)" = "$1" ]; then
			printf '%s' "$g"
			return 0
		fi
	done
	return 1
}
