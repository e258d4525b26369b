#!/bin/bash
# Private repositories: a project's `credentials` file (netrc, or HTTP
# header lines) reaches libgit2 and nothing else.  A real `git
# http-backend` behind a python3 server on 127.0.0.1 that demands
# authentication (401 without) serves the repositories; the token must
# appear in no job, log, signed file, provenance, state file, nor in the
# command line or environment of the running kiln-worker fetch.  Also: a
# repo URL with credentials is refused (422) without echoing them, a
# credentials file others can read is a configuration error, a
# non-project repository on the same server gets no credentials, and only
# a project's ssh:// fetch gets kilnd's SSH_AUTH_SOCK.
. "$(dirname "$0")/lib.sh"

for tool in git python3 gcc openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
BACKEND=$(git --exec-path)/git-http-backend
[ -x "$BACKEND" ] || { echo "SKIP: no git-http-backend"; exit 77; }

TOKEN=tok-$(openssl rand -hex 16)
BEARER=bearer-$(openssl rand -hex 16)
SRC=$(make_repo c-hello "$SRCDIR/tests/fixtures/c-hello")
mkdir -p "$T/srv"
for r in c-hello c-bearer c-other; do
	git clone -q --bare "$SRC" "$T/srv/$r.git"
done

# --- the server: Basic ci:TOKEN or Bearer BEARER, else 401 -----------------
# While $T/stall exists, an authenticated request waits for $T/release
# (after creating $T/stalled): the fetch is caught running.
cat >"$T/githttp.py" <<'PY'
import base64, http.server, os, subprocess, sys, time

root, token, bearer, tdir, portfile = sys.argv[1:6]
good = {"Basic " + base64.b64encode(("ci:" + token).encode()).decode(),
        "Bearer " + bearer}

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def serve(self):
        if self.headers.get("Authorization") not in good:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="kiln-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if os.path.exists(tdir + "/stall"):
            open(tdir + "/stalled", "w").close()
            for _ in range(600):
                if os.path.exists(tdir + "/release"):
                    break
                time.sleep(0.1)
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        env = {"GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "REMOTE_USER": "ci",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "PATH": os.environ["PATH"]}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run([os.environ["BACKEND"]], input=body, env=env,
                             stdout=subprocess.PIPE).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, hdrs = 200, []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(": ")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                hdrs.append((k, v))
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    do_GET = do_POST = serve

s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
BACKEND=$BACKEND python3 "$T/githttp.py" "$T/srv" "$TOKEN" "$BEARER" "$T" \
	"$T/http.port" 2>"$T/http.log" &
HTTPD=$!
# A listener that accepts ssh connections and never speaks: an ssh://
# fetch waits there, to be looked at.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)' "$T/ssh.port" &
SSHD=$!
trap 'kill "$HTTPD" "$SSHD" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do
	[ -s "$T/http.port" ] && [ -s "$T/ssh.port" ] && break
	sleep 0.1
done
HPORT=$(cat "$T/http.port")
SPORT=$(cat "$T/ssh.port")
H=http://127.0.0.1:$HPORT

# The server really wants credentials: git itself gets 401 without.
GIT_TERMINAL_PROMPT=0 git ls-remote "$H/c-hello.git" >/dev/null 2>&1 &&
	fail "the test server served without credentials" ||
	ok "the server refuses git without credentials"
GIT_TERMINAL_PROMPT=0 git -c http.extraHeader="Authorization: Bearer $BEARER" \
	ls-remote "$H/c-hello.git" >/dev/null 2>&1 &&
	ok "the server serves git with the bearer token" ||
	fail "the test server refused the bearer token: $(cat "$T/http.log")"

# --- credentials files and the configuration -------------------------------
printf '# the test forge\nmachine 127.0.0.1\n  login ci\n  password %s\n' \
	"$TOKEN" >"$T/netrc"
printf 'Authorization: Bearer %s\n' "$BEARER" >"$T/bearer.cred"
chmod 600 "$T/netrc" "$T/bearer.cred"
cat >"$T/kilnd.conf" <<EOF
[kilnd]
open_submissions = yes
fetch_timeout = 600

[project netrc]
repo = $H/c-hello.git
credentials = $T/netrc
targets = linux/amd64

[project bearer]
repo = $H/c-bearer.git
credentials = $T/bearer.cred
targets = linux/amd64

[project sshproj]
repo = ssh://git@127.0.0.1:$SPORT/kiln.git
targets = linux/amd64
EOF

# Readable by others: refused at load, naming the key and the file.
chmod 644 "$T/netrc"
if out=$("$KILND" -c "$T/kilnd.conf" --check-config 2>&1); then
	fail "--check-config accepted a credentials file of mode 0644"
elif [[ "$out" == *"credentials: $T/netrc"*"0644"* ]] &&
    [[ "$out" != *"$TOKEN"* ]]; then
	ok "a credentials file of mode 0644 is a configuration error naming the key and file"
else
	fail "mode 0644: $out"
fi
chmod 600 "$T/netrc"
# Content errors name a line, never the content.
printf 'machine 127.0.0.1 login ci password %s login again\n' "$TOKEN" \
	>"$T/badnetrc"
chmod 600 "$T/badnetrc"
sed "s|credentials = $T/netrc|credentials = $T/badnetrc|" "$T/kilnd.conf" \
	>"$T/bad.conf"
if out=$("$KILND" -c "$T/bad.conf" --check-config 2>&1); then
	fail "--check-config accepted a netrc with login twice"
elif [[ "$out" == *"credentials: $T/badnetrc: line 1"* ]] &&
    [[ "$out" != *"$TOKEN"* ]]; then
	ok "a bad credentials file is refused by line, without its content"
else
	fail "bad netrc: $out"
fi

SSH_AUTH_SOCK=$T/agent.sock start_kilnd -c "$T/kilnd.conf" -w 2

# --- a URL with credentials: 422, nothing echoed ----------------------------
post_job "{\"repo\": \"http://ci:$TOKEN@127.0.0.1:$HPORT/c-hello.git\",
	\"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
expect_problem 422 "credentials" "a repo URL with user:token@"
[[ "$BODY" != *"$TOKEN"* ]] && ok "the 422 does not echo the token" ||
	fail "the 422 echoes the token: $BODY"
post_job "{\"repo\": \"https://$TOKEN@example.com/x.git\", \"ref\": \"main\"}"
expect_problem 422 "credentials" "a repo URL with token@"
[[ "$BODY" != *"$TOKEN"* ]] && ok "... without echoing it" || fail "echoed: $BODY"
post_job "{\"repo\": \"ci:$TOKEN@example.com:x.git\", \"ref\": \"main\"}"
expect_problem 422 "ssh://user@host/path" "an scp-like URL"
[[ "$BODY" != *"$TOKEN"* ]] && ok "... without echoing it" || fail "echoed: $BODY"

# --- netrc: the project's build succeeds; caught while fetching -------------
# descendants PID: every process under PID.
descendants() {
	local p
	for p in $(ps -o pid= --ppid "$1"); do
		echo "$p"
		descendants "$p"
	done
}
touch "$T/stall"
post_job "{\"repo\": \"$H/c-hello.git\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
expect_status 201 "submit the netrc project's job"
A=$(printf '%s' "$BODY" | jq -r .id)
for _ in $(seq 1 600); do [ -e "$T/stalled" ] && break; sleep 0.1; done
if [ -e "$T/stalled" ]; then
	ok "the fetch reached the server with credentials"
	n=0 leak=
	for p in $(descendants "$KPID"); do
		[ -r "/proc/$p/cmdline" ] || continue
		tr '\0' ' ' <"/proc/$p/cmdline" | grep -q '^kiln-worker fetch' || continue
		n=$((n + 1))
		for f in cmdline environ; do
			grep -qF -- "$TOKEN" "/proc/$p/$f" 2>/dev/null && leak+=" $p/$f"
		done
	done
	[ "$n" -gt 0 ] && ok "kiln-worker fetch is running ($n processes)" ||
		fail "no kiln-worker fetch under kilnd: $(ps -o pid=,args= --ppid "$KPID")"
	[ -z "$leak" ] && ok "the token is in no fetch's /proc/PID/cmdline or environ" ||
		fail "the token is in /proc:$leak"
else
	fail "the fetch never reached the server: $(tail -5 "$KLOG")"
fi
rm -f "$T/stall"
touch "$T/release"
wait_job "$A" 300
expect_json .state succeeded "the netrc project's job"
expect_json .project netrc "the job is the project's"

# --- headers: the bearer project's build succeeds ---------------------------
post_job "{\"repo\": \"$H/c-bearer.git\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
expect_status 201 "submit the header project's job"
B=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$B" 300
expect_json .state succeeded "the header-credentials project's job"

# --- not a project: no credentials, even on the same host --------------------
post_job "{\"repo\": \"$H/c-other.git\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"true\"}}"
expect_status 201 "submit a non-project job on the same server"
C=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$C" 300
expect_json .state failed "a non-project repository gets no credentials"
expect_json '.error | test("authentication failed")' true "... and fails authentication"

# --- the token is nowhere ---------------------------------------------------
for id in "$A" "$B"; do
	# The signed files come after the last target, off the loop.
	for _ in $(seq 1 100); do
		api GET "/v1/jobs/$id/artifacts"
		[ "$(printf '%s' "$BODY" | jq -r .signed)" = true ] && break
		sleep 0.1
	done
	api GET "/v1/jobs/$id"
	[[ "$BODY" != *"$TOKEN"* && "$BODY" != *"$BEARER"* ]] &&
		ok "job $id's JSON has no token" || fail "job $id's JSON: $BODY"
	curl -sSf -o "$T/log.$id" "$URL/v1/jobs/$id/targets/linux_amd64/log" ||
		fail "job $id: no log"
	for f in SHA256SUMS SHA256SUMS.minisig provenance.intoto.jsonl; do
		curl -sSf -o "$T/$f.$id" "$URL/v1/jobs/$id/$f" || fail "job $id: no $f"
	done
	base64 -d < <(jq -r .payload "$T/provenance.intoto.jsonl.$id") \
		>"$T/statement.$id" 2>/dev/null || fail "job $id: provenance payload"
	grep -qF "127.0.0.1:$HPORT/c-" "$T/statement.$id" ||
		fail "job $id: the provenance does not name the repository"
	for f in "$T/log.$id" "$T/SHA256SUMS.minisig.$id" "$T/SHA256SUMS.$id" \
	    "$T/provenance.intoto.jsonl.$id" "$T/statement.$id"; do
		grep -qF -e "$TOKEN" -e "$BEARER" "$f" &&
			fail "$(basename "$f") holds a token" ||
			ok "$(basename "$f") holds no token"
	done
done
api GET "/v1/jobs?limit=100"
[[ "$BODY" != *"$TOKEN"* && "$BODY" != *"$BEARER"* ]] &&
	ok "the job list has no token" || fail "the job list holds a token"
grep -qF -e "$TOKEN" -e "$BEARER" "$KLOG" && fail "kilnd's log holds a token" ||
	ok "kilnd's log holds no token"
if hits=$(grep -rlF -e "$TOKEN" -e "$BEARER" "$STATE" 2>/dev/null); then
	fail "files of the state directory hold a token: $hits"
else
	ok "no file of the state directory (database, logs, mirrors) holds a token"
fi

# --- rotation: the file is read by each fetch --------------------------------
printf 'machine 127.0.0.1 login ci password wrong-%s\n' "$$" >"$T/netrc"
post_job "{\"repo\": \"$H/c-hello.git\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"cache\": false}"
D=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$D" 300
expect_json .state failed "a changed credentials file applies to the next fetch, no restart"
chmod 644 "$T/netrc"
post_job "{\"repo\": \"$H/c-hello.git\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}"
E=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$E" 300
expect_json .state failed "a credentials file made readable by others"
expect_json '.error | test("credentials file cannot be used")' true "... fails naming the credentials"
expect_json '.error | test("0644|/tmp")' false "... without the operator's path or the file's mode"
grep -q "job $E: project .*credentials: .*0644" "$KLOG" &&
	ok "kilnd's log names the file's mode" ||
	fail "kilnd's log does not say why job $E's credentials were refused"
chmod 600 "$T/netrc"

# --- kilnd's ssh agent: a project's ssh:// fetch only -------------------------
# ssh_env ID: the SSH_AUTH_SOCK of the job's running fetch, or "none".
ssh_env() {
	local p found=
	for _ in $(seq 1 300); do
		for p in $(descendants "$KPID"); do
			tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null |
				grep -q "^kiln-worker fetch .*127.0.0.1:$SPORT/$1" || continue
			found=$p
			break
		done
		[ -n "$found" ] && break
		sleep 0.1
	done
	[ -n "$found" ] || { echo missing; return; }
	tr '\0' '\n' <"/proc/$found/environ" | sed -n 's/^SSH_AUTH_SOCK=//p' |
		grep . || echo none
}
post_job "{\"repo\": \"ssh://git@127.0.0.1:$SPORT/kiln.git\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\"]}"
S1=$(printf '%s' "$BODY" | jq -r .id)
post_job "{\"repo\": \"ssh://git@127.0.0.1:$SPORT/other.git\", \"ref\": \"main\",
	\"targets\": [\"linux/amd64\"], \"recipe\": {\"kind\": \"command\", \"command\": \"true\"}}"
S2=$(printf '%s' "$BODY" | jq -r .id)
got=$(ssh_env kiln.git)
[ "$got" = "$T/agent.sock" ] && ok "a project's ssh:// fetch gets kilnd's SSH_AUTH_SOCK" ||
	fail "the project's ssh fetch has SSH_AUTH_SOCK '$got'"
got=$(ssh_env other.git)
[ "$got" = none ] && ok "a submitted ssh:// URL's fetch gets no SSH_AUTH_SOCK" ||
	fail "the submitted ssh fetch has SSH_AUTH_SOCK '$got'"
kill "$SSHD" 2>/dev/null || true
wait_job "$S1" 120
wait_job "$S2" 120

stop_kilnd TERM

# --- another spelling of a private project's repository ----------------------
# Every spelling of one repository shares its mirror, which now holds what
# the project's credentials fetched.  A submit token naming the repository
# another way must get the project's policy (a commit id needs admin), not
# the mirror's private commits with a recipe of its own (reproduced: the
# build read the private tree).
ADMIN=admin-$(openssl rand -hex 16)
CI=ci-$(openssl rand -hex 16)
{
	cat "$T/kilnd.conf"
	printf '\n[tokens]\nops = admin %s\nci = submit %s\n' \
		"$(printf '%s\n' "$ADMIN" | "$KILND" --hash-token)" \
		"$(printf '%s\n' "$CI" | "$KILND" --hash-token)"
} >"$T/tokens.conf"
# The right password again (rotated to a wrong one above).
printf 'machine 127.0.0.1 login ci password %s\n' "$TOKEN" >"$T/netrc"
start_kilnd -c "$T/tokens.conf" -w 2
# Every route needs a token now: unless told otherwise, ask as the admin.
api() {
	local method=$1 path=$2
	shift 2
	case "$*" in *Authorization:*) ;; *) set -- "$@" -H "Authorization: Bearer $ADMIN" ;; esac
	BODY=$(curl -sS -X "$method" -D "$T/headers" -o - -w '\n%{http_code}' \
		"$@" "$URL$path") || { STATUS=000; HEADERS=; return 0; }
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
	HEADERS=$(tr -d '\r' <"$T/headers")
}
api GET "/v1/jobs/$A"
PRIVATE=$(printf '%s' "$BODY" | jq -r .commit)
for spelling in "$H/c-hello" "$H/c-hello.git/" "$H//c-hello.git"; do
	post_job "{\"repo\": \"$spelling\", \"ref\": \"$PRIVATE\", \"targets\": [\"linux/amd64\"],
		\"recipe\": {\"kind\": \"command\", \"command\": \"cat * > /out/leak\"}}" \
		-H "Authorization: Bearer $CI"
	expect_problem 403 "commit id" "a submit token's commit id of $spelling (the netrc project's repository)"
done
post_job "{\"repo\": \"$H/c-hello\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"]}" \
	-H "Authorization: Bearer $CI"
expect_status 201 "another spelling of the project's repository, by a submit token"
expect_json .project netrc "it is the project's job"
expect_json .repo "$H/c-hello.git" "it names the project's repo as kilnd.conf spells it"
F=$(printf '%s' "$BODY" | jq -r .id)
wait_job "$F" 300
expect_json .state succeeded "... and is fetched with the project's credentials"
stop_kilnd TERM
finish
