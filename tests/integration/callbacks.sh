#!/bin/bash
# Result callbacks against hostile URLs and receivers, with the real curl
# kilnd runs and real python3 receivers on 127.0.0.1: a URL full of curl
# glob characters is one POST to the literal path, a redirect is not
# followed, a receiver that never answers is killed at notify_deadline
# and retried, slow receivers hold at most notify_slots curls while a
# fast receiver still gets its callback, callbacks are signed with the
# project's notify_secret when they go to its notify_url (else the
# farm's, else not at all) and never
# with a webhook secret, and without allow_private_callbacks loopback,
# link-local and the host's own addresses are refused: literal ones with
# 422, names when they resolve to one.
#
# Jobs never build here (paused = yes): a canceled job's callback is due
# at once, which is all these checks need.
. "$(dirname "$0")/lib.sh"

for tool in python3 openssl pgrep; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# --- the receiver -------------------------------------------------------------------------
# Each request: N.json ({path, sig, delivery}) and N.body in $RX.
#   /fast/...      200
#   /redirect/...  302 to /target (which must never be asked for)
#   /slow/...      reads the request and never answers, until the
#                  connection closes
RX=$T/rx
mkdir -p "$RX"
cat >"$T/receiver.py" <<'EOF'
import http.server, json, os, sys, threading
outdir, portfile = sys.argv[1], sys.argv[2]
lock = threading.Lock()
seq = [0]

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with lock:
            seq[0] += 1
            k = seq[0]
        with open(os.path.join(outdir, "%d.body" % k), "wb") as f:
            f.write(body)
        rec = {"path": self.path, "method": self.command,
               "sig": self.headers.get("X-Kiln-Signature-256"),
               "delivery": self.headers.get("X-Kiln-Delivery")}
        with open(os.path.join(outdir, "%d.tmp" % k), "w") as f:
            json.dump(rec, f)
        os.rename(os.path.join(outdir, "%d.tmp" % k),
                  os.path.join(outdir, "%d.json" % k))
        if self.path.startswith("/slow/"):
            # Never answer; return when the client goes away.
            self.connection.settimeout(300)
            try:
                self.rfile.read(1)
            except OSError:
                pass
            self.close_connection = True
            return
        if self.path.startswith("/redirect/"):
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:%d/target" % port)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
EOF
python3 "$T/receiver.py" "$RX" "$T/rx.port" 2>"$T/receiver.log" &
RXPID=$!
trap 'kill $RXPID 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$T/rx.port" ] && break; sleep 0.05; done
RPORT=$(cat "$T/rx.port")
R=http://127.0.0.1:$RPORT

# received PATH: how many requests the receiver got for PATH.
received() {
	local n=0 f
	for f in "$RX"/*.json; do
		[ -e "$f" ] || continue
		[ "$(jq -r .path "$f")" = "$1" ] && n=$((n + 1))
	done
	echo $n
}
# record PATH FIELD: FIELD of the first request for PATH ("" if none).
record() {
	local f
	for f in "$RX"/*.json; do
		[ -e "$f" ] || continue
		if [ "$(jq -r .path "$f")" = "$1" ]; then
			case $2 in
			body) cat "${f%.json}.body" ;;
			*) jq -r ".$2 // empty" "$f" ;;
			esac
			return
		fi
	done
}
# notify_job URL [REPO]: a queued job whose callback goes to URL, then
# canceled: its callback is due now.  Sets JOB.
notify_job() {
	local repo=${2:-https://example.org/other.git}
	post_job "$(jq -cn --arg r "$repo" --arg u "$1" \
		'{repo: $r, ref: "main", targets: ["linux/amd64"], notify: {url: $u}}')"
	[ "$STATUS" = 201 ] || { fail "job for $1: HTTP $STATUS $BODY"; JOB=; return; }
	JOB=$(printf '%s' "$BODY" | jq -r .id)
	api POST "/v1/jobs/$JOB/cancel"
	[ "$STATUS" = 200 ] || fail "cancel job $JOB: HTTP $STATUS $BODY"
}
# wait_notify JOB JQ-CONDITION [TRIES]: poll the job until its .notify
# satisfies the condition; leaves the job in BODY.
wait_notify() {
	local tries=${3:-600}
	for _ in $(seq 1 "$tries"); do
		api GET "/v1/jobs/$1"
		[ "$(printf '%s' "$BODY" | jq -r ".notify | $2")" = true ] && return 0
		sleep 0.1
	done
	return 1
}
hmac() { openssl dgst -sha256 -hmac "$1" | awk '{print "sha256=" $NF}'; }

# --- without allow_private_callbacks -------------------------------------------------------
cat >"$T/strict.conf" <<EOF
[kilnd]
paused = yes
notify_deadline = 5
EOF
start_kilnd -c "$T/strict.conf"
base='{"repo": "https://example.org/a.git", "ref": "main", "targets": ["linux/amd64"]}'
for u in "$R/x" "http://[::1]:$RPORT/x" "http://169.254.169.254/latest/meta-data" \
	"http://0.0.0.0:$RPORT/x" "http://[fe80::1]/x" "http://[::ffff:127.0.0.1]:$RPORT/x"; do
	post_job "$(printf '%s' "$base" | jq -c --arg u "$u" '.notify = {url: $u}')"
	expect_problem 422 "notify.url" "a private notify URL ($u) is refused"
	expect_problem 422 "allow_private_callbacks" "and the detail names the key that allows it"
done
own=$(ip -o addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1 |
	grep -v -e '^127\.' -e '^::1$' -e '^fe80:' | head -1 || true)
if [ -n "$own" ]; then
	case $own in *:*) own="[$own]" ;; esac
	post_job "$(printf '%s' "$base" | jq -c --arg u "http://$own:$RPORT/x" '.notify = {url: $u}')"
	expect_problem 422 "an address of this host" "a notify URL to one of the host's own addresses ($own)"
else
	ok "no non-loopback address on this host: the own-address check is left to the unit test"
fi
post_job "$(printf '%s' "$base" | jq -c '.notify = {url: "http://bob:hunter2secret@example.org/cb"}')"
expect_problem 422 "user name or password" "a notify URL with credentials is refused"
[[ "$BODY" != *hunter2* ]] && ok "the detail does not echo the password" || fail "password echoed: $BODY"
for u in "http://127.1:$RPORT/x" "http://2130706433/x" "http://example.org./x" \
	"gopher://example.org/" "http://exa mple.org/"; do
	post_job "$(printf '%s' "$base" | jq -c --arg u "$u" '.notify = {url: $u}')"
	expect_problem 422 "notify.url" "a notify URL curl could read differently ($u) is refused"
done
# A name is resolved when the callback is sent, and refused then.
notify_job "http://localhost:$RPORT/fast/by-name"
wait_notify "$JOB" '.state == "failed"' 200 ||
	fail "the callback to localhost did not fail: $BODY"
expect_json '.notify.error | test("localhost resolves to (127\\.0\\.0\\.1|::1), a loopback address")' true \
	"a name that resolves to loopback is refused at send time"
expect_json .notify.attempts 1 "once, without retries"
[ "$(received /fast/by-name)" = 0 ] && ok "the receiver behind the refused name got nothing" ||
	fail "the refused callback reached the receiver"
grep -q "callback refused: localhost resolves to" "$KLOG" &&
	ok "kilnd's log says why the callback was refused" || fail "no refusal in the log"
grep -q hunter2 "$KLOG" && fail "the log holds a refused URL's password" ||
	ok "the log holds no password of a refused URL"
stop_kilnd

# --- allow_private_callbacks, small slots, short deadline -----------------------------------
FARM_KEY=farm-callback-key-$(openssl rand -hex 8)
SIGNED_KEY=project-callback-key-$(openssl rand -hex 8)
WH_SIGNED=webhook-secret-signed-$(openssl rand -hex 8)
WH_PLAIN=webhook-secret-plain-$(openssl rand -hex 8)
cat >"$T/kilnd.conf" <<EOF
[kilnd]
paused = yes
open_submissions = yes
allow_private_callbacks = yes
notify_deadline = 2
notify_slots = 2
notify_timeout = 120
notify_secret = $FARM_KEY

[project signed]
repo = https://example.org/signed.git
secret = $WH_SIGNED
notify_secret = $SIGNED_KEY
notify_url = $R/fast/signed-job

[project plain]
repo = https://example.org/plain.git
secret = $WH_PLAIN
EOF
STATE=$T/state-private
start_kilnd -c "$T/kilnd.conf"

# Four receivers that never answer, more than the two slots.
SLOW=()
for i in 1 2 3 4; do
	notify_job "$R/slow/$i"
	SLOW+=("$JOB")
done
max=0
for _ in $(seq 1 100); do
	n=$({ pgrep -P "$KPID" -x curl || true; } | wc -l)
	[ "$n" -gt "$max" ] && max=$n
	[ "$max" -ge 2 ] && break
	sleep 0.05
done
[ "$max" = 2 ] && ok "four slow receivers hold both notify_slots" ||
	fail "curl children with four slow receivers: $max"

# Meanwhile: a fast receiver, a glob URL, a redirect, a name, and signing.
notify_job "$R/fast/plain-job" https://example.org/plain.git
PLAINJ=$JOB
notify_job "$R/fast/signed-job" https://example.org/signed.git
SIGNEDJ=$JOB
notify_job "$R/fast/signed-own" https://example.org/signed.git
OWNJ=$JOB
notify_job "$R/fast/x[1-40]{a,b,c}"
GLOBJ=$JOB
notify_job "$R/redirect/r1"
REDIRJ=$JOB
notify_job "http://localhost:$RPORT/fast/by-name"
NAMEJ=$JOB
notify_job "$R/fast/unsigned-farm"
FARMJ=$JOB

# Sample kilnd's curl children while all that is under way: never more
# than notify_slots.
# Their command lines too: what any local user can read in /proc.
max=0
for _ in $(seq 1 200); do
	pgrep -a -P "$KPID" -x curl >"$T/argv.now" || true
	cat "$T/argv.now" >>"$T/argv"
	n=$(wc -l <"$T/argv.now")
	[ "$n" -gt "$max" ] && max=$n
	sleep 0.02
done
[ "$max" -le 2 ] && ok "never more than notify_slots = 2 curls at once (saw $max)" ||
	fail "$max curls at once with notify_slots = 2"
grep -q -- "--globoff --proto =http,https --max-redirs 0" "$T/argv" &&
	ok "curl runs with --globoff --proto =http,https --max-redirs 0" ||
	fail "curl's argv: $(head -3 "$T/argv")"
grep -q -e "Signature" -e " -L" -e "--location" "$T/argv" &&
	fail "a signature or -L in curl's argv: $(grep -e Signature -e ' -L' "$T/argv" | head -1)" ||
	ok "no signature header and no -L in curl's argv"

wait_notify "$PLAINJ" '.state == "delivered"' ||
	fail "the fast receiver's callback was not delivered behind four slow ones: $BODY"
[ "$(received /fast/plain-job)" = 1 ] &&
	ok "behind four receivers that never answer, a fast receiver still gets its callback" ||
	fail "fast receiver got $(received /fast/plain-job) requests"

# The glob URL: one POST, to the literal path.
wait_notify "$GLOBJ" '.state == "delivered"' || fail "glob URL callback: $BODY"
expect_json .notify.attempts 1 "the glob URL's callback took one attempt"
[ "$(received '/fast/x[1-40]{a,b,c}')" = 1 ] &&
	ok "a notify URL with [1-40]{a,b,c} is one POST to the literal path" ||
	fail "glob URL: $(received '/fast/x[1-40]{a,b,c}') requests to the literal path; all: $(cat "$RX"/*.json | jq -r .path | sort | uniq -c)"
[ "$(cat "$RX"/*.json | jq -r .path | grep -c '^/fast/x[0-9]')" = 0 ] &&
	ok "and curl expanded nothing" || fail "curl globbed the URL"

# The redirect is not followed.
wait_notify "$REDIRJ" '.attempts >= 1' || fail "redirect callback: $BODY"
expect_json .notify.error "HTTP 302 (redirects are not followed)" "a 302 fails the attempt"
expect_json .notify.state pending "and is retried"
[ "$(received /redirect/r1)" -ge 1 ] && [ "$(received /target)" = 0 ] &&
	ok "the redirect's target never got a request" || fail "redirect followed: $(received /target)"

# A name is resolved, checked and pinned; allowed here.
wait_notify "$NAMEJ" '.state == "delivered"' || fail "callback by name: $BODY"
[ "$(received /fast/by-name)" = 1 ] && ok "a callback by host name arrives (allow_private_callbacks)" ||
	fail "by-name requests: $(received /fast/by-name)"

# Signatures: the project's notify_secret, else the farm's; never a
# webhook secret.
wait_notify "$SIGNEDJ" '.state == "delivered"' || fail "signed project callback: $BODY"
wait_notify "$FARMJ" '.state == "delivered"' || fail "farm-signed callback: $BODY"
b=$(record /fast/signed-job body)
sig=$(record /fast/signed-job sig)
[ -n "$sig" ] && [ "$sig" = "$(printf '%s' "$b" | hmac "$SIGNED_KEY")" ] &&
	ok "a project's callback is signed with its notify_secret (openssl HMAC of the body)" ||
	fail "signed project: signature '$sig'"
[ "$sig" != "$(printf '%s' "$b" | hmac "$WH_SIGNED")" ] &&
	ok "and not with its webhook secret" || fail "signed with the webhook secret"
printf '%s' "$b" | python3 -c 'import json,sys; json.loads(sys.stdin.buffer.read().decode("utf-8", "strict"))' &&
	ok "the callback body is valid UTF-8 JSON" || fail "callback body: $b"
[ "$(printf '%s' "$b" | jq -r .event)" = job.canceled ] && [ "$(printf '%s' "$b" | jq -r .job.id)" = "$SIGNEDJ" ] &&
	ok "the body names the event and the job" || fail "body: $b"
# A URL the submitter chose for the project's job: the farm's key, so
# nobody but the project's receiver collects bodies signed with its key.
wait_notify "$OWNJ" '.state == "delivered"' || fail "own-URL callback: $BODY"
b=$(record /fast/signed-own body)
sig=$(record /fast/signed-own sig)
[ -n "$sig" ] && [ "$sig" = "$(printf '%s' "$b" | hmac "$FARM_KEY")" ] &&
	[ "$sig" != "$(printf '%s' "$b" | hmac "$SIGNED_KEY")" ] &&
	ok "a project's job with the submitter's own URL: signed with the farm's key, not the project's" ||
	fail "own URL of a project job: signature '$sig'"
b=$(record /fast/plain-job body)
sig=$(record /fast/plain-job sig)
[ -n "$sig" ] && [ "$sig" = "$(printf '%s' "$b" | hmac "$FARM_KEY")" ] &&
	[ "$sig" != "$(printf '%s' "$b" | hmac "$WH_PLAIN")" ] &&
	ok "a project without notify_secret: signed with the farm's, not its webhook secret" ||
	fail "plain project: signature '$sig'"
b=$(record /fast/unsigned-farm body)
[ "$(record /fast/unsigned-farm sig)" = "$(printf '%s' "$b" | hmac "$FARM_KEY")" ] &&
	ok "a job without a project: signed with the farm's notify_secret" || fail "farm signature"

# A receiver that never answers: killed at the deadline, retried.
wait_notify "${SLOW[0]}" '.attempts >= 2' 900 || fail "slow receiver not retried: $BODY"
expect_json '.notify.error | test("no answer within notify_deadline \\(2 s\\); curl was killed")' true \
	"a receiver that never answers is cut off at notify_deadline"
expect_json .notify.state pending "and its callback is tried again"
[ "$(received /slow/1)" -ge 2 ] && ok "the slow receiver saw the retry ($(received /slow/1) requests)" ||
	fail "slow receiver requests: $(received /slow/1)"
# The receiver keeps the last request's header: a third attempt may have
# come since the second was recorded, so any retry's number will do.
d=$(record /slow/1 delivery)
[[ "$d" =~ ^${SLOW[0]}\.[1-9][0-9]*$ ]] && ok "X-Kiln-Delivery numbers the attempt ($d)" ||
	fail "delivery id '$d'"
grep -q -e "$FARM_KEY" -e "$SIGNED_KEY" "$KLOG" && fail "a notify_secret is in kilnd's log" ||
	ok "no notify_secret in kilnd's log"
stop_kilnd
[ "$KEXIT" = 0 ] && ok "kilnd stops with callbacks in flight" || fail "kilnd exit $KEXIT"
[ -z "$(ls "$STATE/tmp" 2>/dev/null | grep callback || true)" ] &&
	ok "no callback files are left behind" || fail "left: $(ls "$STATE/tmp")"

# --- no notify_secret anywhere: unsigned ----------------------------------------------------
cat >"$T/unsigned.conf" <<EOF
[kilnd]
paused = yes
allow_private_callbacks = yes

[project plain]
repo = https://example.org/plain.git
secret = $WH_PLAIN
EOF
STATE=$T/state-unsigned
start_kilnd -c "$T/unsigned.conf"
notify_job "$R/fast/unsigned" https://example.org/plain.git
wait_notify "$JOB" '.state == "delivered"' || fail "unsigned callback: $BODY"
[ "$(received /fast/unsigned)" = 1 ] && [ -z "$(record /fast/unsigned sig)" ] &&
	ok "a project with only webhook secrets and no farm notify_secret: sent unsigned" ||
	fail "unsigned: signature '$(record /fast/unsigned sig)'"
stop_kilnd

# --- kilnd killed mid-attempt: its curl does not outlive the deadline by long ----------------
# kilnd's own kill cannot come when kilnd is gone; curl's --max-time
# (notify_deadline + 5 s) ends the orphan.
cat >"$T/orphan.conf" <<EOF
[kilnd]
paused = yes
allow_private_callbacks = yes
notify_deadline = 1
EOF
STATE=$T/state-orphan
start_kilnd -c "$T/orphan.conf"
notify_job "$R/slow/orphan"
CPID=
for _ in $(seq 1 100); do
	CPID=$(pgrep -P "$KPID" -x curl || true)
	[ -n "$CPID" ] && break
	sleep 0.05
done
if [ -z "$CPID" ]; then
	fail "no curl for the orphan check"
else
	stop_kilnd KILL
	for _ in $(seq 1 200); do
		kill -0 "$CPID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$CPID" 2>/dev/null; then
		fail "curl $CPID still runs 10 s after kilnd was killed (notify_deadline = 1)"
		kill "$CPID" 2>/dev/null || true
	else
		ok "a curl orphaned by a killed kilnd ends soon after notify_deadline"
	fi
fi

finish
