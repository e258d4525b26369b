#!/bin/bash
# The dashboard's files as kilnd serves them: GET / and GET /ui/{file}
# give every file of ui/ byte for byte, gzip only to a client that
# accepts it (q=0 refuses, HTTP/1.0 never gets it) and then gunzip gives
# the same bytes, an ETag per form that If-None-Match turns into 304,
# the Content-Security-Policy and the other headers that keep the page
# to itself, a problem+json 404 for a file that is not there, HEAD, and
# no token needed for them on a farm whose API needs one.
. "$(dirname "$0")/lib.sh"

for tool in gzip openssl cmp; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

READ=read-$(openssl rand -hex 16)
printf '[kilnd]\npaused = yes\n\n[tokens]\ndash = read %s\n' \
	"$(printf '%s\n' "$READ" | "$KILND" --hash-token)" >"$T/tokens.conf"
start_kilnd -c "$T/tokens.conf"

CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

# get PATH OUT [curl args...]: the body, as sent, into OUT; sets STATUS
# and HEADERS.  curl decodes nothing without --compressed.
get() {
	local path=$1 out=$2
	shift 2
	rm -f "$out"
	STATUS=$(curl -sS -o "$out" -D "$T/h" -w '%{http_code}' "$@" \
		"$URL$path") || STATUS=000
	HEADERS=$(tr -d '\r' <"$T/h")
}

# The path each file is served at.
path_of() {
	if [ "$1" = index.html ]; then echo /; else echo "/ui/$1"; fi
}

n=0
for f in "$SRCDIR"/ui/*; do
	name=$(basename "$f")
	p=$(path_of "$name")
	n=$((n + 1))

	get "$p" "$T/id" -H 'Accept-Encoding: identity'
	if [ "$STATUS" = 200 ] && cmp -s "$f" "$T/id"; then
		ok "$p: 200, the bytes of ui/$name"
	else
		fail "$p: HTTP $STATUS, or not the bytes of ui/$name"
	fi
	[ -z "$(header Content-Encoding)" ] &&
		ok "$p: identity when gzip is not accepted" ||
		fail "$p: Content-Encoding '$(header Content-Encoding)' without gzip accepted"
	case $name in
	*.html) want='text/html; charset=utf-8' ;;
	*.css) want='text/css; charset=utf-8' ;;
	*.js) want='text/javascript; charset=utf-8' ;;
	*) want=? ;;
	esac
	[ "$(header Content-Type)" = "$want" ] && ok "$p: Content-Type $want" ||
		fail "$p: Content-Type '$(header Content-Type)', expected $want"
	[ "$(header Content-Security-Policy)" = "$CSP" ] &&
		ok "$p: the strict Content-Security-Policy" ||
		fail "$p: Content-Security-Policy '$(header Content-Security-Policy)'"
	[ "$(header X-Content-Type-Options)" = nosniff ] &&
	[ "$(header Referrer-Policy)" = no-referrer ] &&
	[ "$(header Cache-Control)" = no-cache ] &&
	[ "$(header Vary)" = Accept-Encoding ] &&
		ok "$p: nosniff, no-referrer, no-cache, Vary: Accept-Encoding" ||
		fail "$p: headers: $HEADERS"
	ETAG=$(header ETag)
	[[ "$ETAG" =~ ^\"[0-9a-f]{32}\"$ ]] && ok "$p: a strong ETag $ETAG" ||
		fail "$p: ETag '$ETAG'"

	get "$p" "$T/gz" -H 'Accept-Encoding: gzip, deflate'
	GZTAG=$(header ETag)
	if [ "$STATUS" = 200 ] && [ "$(header Content-Encoding)" = gzip ] &&
	    gzip -dc <"$T/gz" >"$T/gunz" && cmp -s "$f" "$T/gunz"; then
		ok "$p: gzip when accepted, and gunzip gives the file's bytes"
	else
		fail "$p: gzip answer: HTTP $STATUS, Content-Encoding '$(header Content-Encoding)', or not the file once gunzipped"
	fi
	[ -n "$GZTAG" ] && [ "$GZTAG" != "$ETAG" ] &&
		ok "$p: the gzip form has its own ETag" ||
		fail "$p: gzip ETag '$GZTAG' (identity $ETAG)"

	get "$p" "$T/nm" -H "If-None-Match: $ETAG"
	[ "$STATUS" = 304 ] && [ ! -s "$T/nm" ] &&
	[ "$(header ETag)" = "$ETAG" ] &&
		ok "$p: If-None-Match with its ETag: 304, no body" ||
		fail "$p: If-None-Match: HTTP $STATUS, ETag '$(header ETag)'"
	get "$p" "$T/nm" -H "If-None-Match: $GZTAG" -H 'Accept-Encoding: gzip'
	[ "$STATUS" = 304 ] && ok "$p: the gzip ETag revalidates the gzip form" ||
		fail "$p: If-None-Match with the gzip ETag: HTTP $STATUS"
	get "$p" "$T/nm" -H "If-None-Match: \"00000000000000000000000000000000\""
	[ "$STATUS" = 200 ] && cmp -s "$f" "$T/nm" &&
		ok "$p: another ETag: 200 with the file" ||
		fail "$p: If-None-Match with another tag: HTTP $STATUS"
done
[ "$n" -ge 5 ] && ok "$n files in ui/ checked" || fail "only $n files in ui/"

# Accept-Encoding as clients write it: q=0 refuses, * counts when gzip
# is not named, and q values are read, not guessed at.
accept() {
	local ae=$1 want=$2 got
	get /ui/app.js "$T/x" -H "Accept-Encoding: $ae"
	got=$(header Content-Encoding)
	[ "${got:-identity}" = "$want" ] && ok "Accept-Encoding '$ae': $want" ||
		fail "Accept-Encoding '$ae': '${got:-identity}', expected $want"
}
accept 'gzip;q=0' identity
accept 'gzip; q=0.000, br' identity
accept 'deflate, gzip;Q=0' identity
accept 'GZIP;q=0.5' gzip
accept 'x-gzip' gzip
accept '*' gzip
accept '*;q=0' identity
accept 'gzip;q=0, *' identity
accept 'br, deflate' identity
accept 'gzip;q=2' identity
accept 'gzip ; q = 0' identity
accept 'gzip;q' identity
accept 'gzipx' identity
accept '' identity
get /ui/app.js "$T/x"
[ -z "$(header Content-Encoding)" ] && ok "no Accept-Encoding: identity" ||
	fail "no Accept-Encoding: '$(header Content-Encoding)'"
get /ui/app.js "$T/x" --http1.0 -H 'Accept-Encoding: gzip'
[ "$STATUS" = 200 ] && [ -z "$(header Content-Encoding)" ] &&
cmp -s "$SRCDIR/ui/app.js" "$T/x" &&
	ok "HTTP/1.0 gets identity even when it accepts gzip" ||
	fail "HTTP/1.0: HTTP $STATUS, Content-Encoding '$(header Content-Encoding)'"

# HEAD: the headers of GET (curl -I reads no body).
get / "$T/head" -I
[ "$(header Content-Length)" = "$(wc -c <"$SRCDIR/ui/index.html" | tr -d ' ')" ] &&
[ "$(header Content-Security-Policy)" = "$CSP" ] &&
	ok "HEAD /: 200, GET's Content-Length and headers" ||
	fail "HEAD /: HTTP $STATUS, Content-Length '$(header Content-Length)'"

# Files that are not there, and names that try to be elsewhere.
api GET /ui/nothere.js
expect_problem 404 "nothere.js" "GET /ui/nothere.js"
api GET /ui/..%2Fapi%2Fapi.c
expect_status 404 "a name with ../ in it"
api GET /ui/
expect_status 404 "/ui/ with no name"
api POST /
expect_status 405 "POST /"

# The dashboard needs no token; the data it shows does.
api GET /
expect_status 200 "GET / without a token on a farm with tokens"
api GET /v1/jobs
expect_status 401 "GET /v1/jobs without a token on the same farm"
api GET /v1/jobs -H "Authorization: Bearer $READ"
expect_status 200 "GET /v1/jobs with the read token"

# The page loads only its own files: every script and style it names is
# served.
for ref in $(grep -o '/ui/[A-Za-z0-9._-]*' "$SRCDIR/ui/index.html"); do
	get "$ref" "$T/x"
	[ "$STATUS" = 200 ] && ok "index.html's $ref is served" ||
		fail "index.html names $ref: HTTP $STATUS"
done
if grep -nE '<script>|<script [^>]*>[^<]|style=|[[:space:]]on[a-z]+=' "$SRCDIR/ui/index.html"; then
	fail "index.html has inline script, style or handlers the CSP forbids"
else
	ok "index.html has no inline script, style or handler"
fi
# Every module a script imports is served.
for f in "$SRCDIR"/ui/*.js; do
	for m in $(sed -n "s/.* from '\.\/\([A-Za-z0-9._-]*\)';.*/\1/p" "$f"); do
		[ -f "$SRCDIR/ui/$m" ] || fail "$(basename "$f") imports $m, not in ui/"
	done
done
ok "every module imported is a file of ui/"

finish
