#!/bin/bash
# kilnd's command line, configuration, start-up refusals, sd_notify, and a
# graceful SIGTERM that finishes the request in progress.
. "$(dirname "$0")/lib.sh"

# --- command line --------------------------------------------------------
out=$("$KILND" --version)
[[ "$out" == "kilnd "* ]] && ok "--version: $out" || fail "--version: $out"
"$KILND" --help | grep -q -- "--state-dir" && ok "--help lists --state-dir" ||
	fail "--help"
rc=0; "$KILND" --bogus 2>"$T/err" || rc=$?
[ $rc = 2 ] && ok "unknown flag: exit 2" || fail "unknown flag: exit $rc"
rc=0; "$KILND" -w 0 -d "$T/x" 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "workers" "$T/err" && ok "-w 0 refused naming workers" ||
	fail "-w 0: exit $rc: $(cat "$T/err")"

# --- configuration ---------------------------------------------------------
conf_error() {	# conf_error NAME CONTENT EXPECTED-SUBSTRING
	printf '%b' "$2" > "$T/$1.conf"
	rc=0; "$KILND" -c "$T/$1.conf" -d "$T/x" -l 127.0.0.1:0 2>"$T/err" &
	local pid=$!
	# A config error must stop kilnd before it listens.
	for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
	if kill -0 $pid 2>/dev/null; then
		kill -9 $pid; fail "$1: kilnd started despite a bad config"; return
	fi
	wait $pid || rc=$?
	if [ $rc = 1 ] && grep -qF -- "$3" "$T/err"; then
		ok "$1: exit 1 with '$3'"
	else
		fail "$1: exit $rc, stderr: $(cat "$T/err")"
	fi
}
conf_error unknown-key "[kilnd]\nworkers = 2\nfrobnicate = yes\n" "$T/unknown-key.conf:3: unknown key 'frobnicate'"
conf_error unknown-section "[kilnd]\n[server]\nlisten = 127.0.0.1:1\n" "$T/unknown-section.conf:2: unknown section [server]"
conf_error bad-number "# comment\n[kilnd]\nworkers = many\n" "$T/bad-number.conf:3: workers"
conf_error out-of-range "[kilnd]\nhttp_timeout = 0\n" "$T/out-of-range.conf:2: http_timeout"
conf_error bad-level "[kilnd]\nlog_level = loud\n" "$T/bad-level.conf:2: log_level"
conf_error twice "[kilnd]\nworkers = 2\nworkers = 3\n" "$T/twice.conf:3: 'workers' is set twice"
conf_error syntax "[kilnd\n" "$T/syntax.conf:1:"
conf_error empty-section "[kilnd]\nworkers = 2\n[kilnd2]\n" "$T/empty-section.conf:3: unknown section [kilnd2]"
long=$(head -c 300 /dev/zero | tr '\0' x)
conf_error long-line "[kilnd]\nstate_dir = /$long\nworkers = 2\n" "$T/long-line.conf:2: line longer than"
conf_error bad-listen "[kilnd]\nlisten = example.com:80\n" "$T/bad-listen.conf:2: listen"
rc=0; "$KILND" -c "$T/missing.conf" -d "$T/x" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "missing.conf" "$T/err" && ok "-c of a missing file: exit 1" ||
	fail "-c missing: exit $rc"

# Flags override the file.
printf '[kilnd]\nallow_local_repos = yes\nworkers = 3\nlog_level = debug\n' > "$T/good.conf"
start_kilnd -c "$T/good.conf" -w 5
grep -q "configuration from $T/good.conf" "$KLOG" && ok "config file read" || fail "config not read"
grep -q " 5 workers" "$KLOG" && ok "-w 5 overrides workers = 3" || fail "override: $(cat "$KLOG")"

# --- one kilnd per state dir -------------------------------------------------
rc=0; "$KILND" -l 127.0.0.1:0 -d "$STATE" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "in use by another kilnd" "$T/err" &&
	ok "second kilnd on the same state dir refused" || fail "second kilnd: exit $rc $(cat "$T/err")"
stop_kilnd TERM

# --- loopback only without tokens -------------------------------------------
for addr in 0.0.0.0:0 '[::]:0'; do
	rc=0; "$KILND" -l "$addr" -d "$T/y" 2>"$T/err" || rc=$?
	[ $rc = 1 ] && grep -qF "refusing to listen on $addr" "$T/err" &&
		ok "no tokens: $addr refused" || fail "$addr: exit $rc: $(cat "$T/err")"
done
grep -qF "or add a [tokens] section" "$T/err" &&
	ok "the refusal names the [tokens] section" || fail "refusal: $(cat "$T/err")"
# --check-config refuses what kilnd refuses, with the same words.
printf '[kilnd]\nlisten = 0.0.0.0:18932\n' > "$T/open.conf"
rc=0; "$KILND" --check-config -c "$T/open.conf" >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -qF "refusing to listen on 0.0.0.0:18932" "$T/err" &&
	! grep -q ": ok" "$T/out" &&
	ok "--check-config refuses 0.0.0.0 without tokens" ||
	fail "--check-config of 0.0.0.0 without tokens: exit $rc: $(cat "$T/out" "$T/err")"
printf '[tokens]\nops = admin %s\n' "$(printf 'x%.0s' $(seq 32) | "$KILND" --hash-token)" >> "$T/open.conf"
"$KILND" --check-config -c "$T/open.conf" 2>"$T/err" | grep -q ": ok (0 project(s), 1 token(s))" &&
	ok "--check-config accepts 0.0.0.0 with a token" ||
	fail "--check-config of 0.0.0.0 with a token: $(cat "$T/err")"

# --- a database from a newer kilnd is refused, untouched ---------------------
mkdir -p "$T/newer"
sqlite3 "$T/newer/kiln.db" "create table keep(x); pragma user_version = 99;"
sum=$(md5sum < "$T/newer/kiln.db")
rc=0; "$KILND" -l 127.0.0.1:0 -d "$T/newer" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "schema version 99, newer" "$T/err" &&
	ok "newer schema refused" || fail "newer schema: exit $rc: $(cat "$T/err")"
[ "$(md5sum < "$T/newer/kiln.db")" = "$sum" ] && ok "newer database untouched" ||
	fail "newer database was modified"

# --- sd_notify -----------------------------------------------------------------
if command -v socat >/dev/null; then
	socat -u UNIX-RECV:"$T/notify" OPEN:"$T/notify.out",creat,append &
	SOCAT=$!
	for _ in $(seq 1 50); do [ -S "$T/notify" ] && break; sleep 0.05; done
	NOTIFY_SOCKET=$T/notify start_kilnd
	sleep 0.2
	grep -q "READY=1" "$T/notify.out" && ok "READY=1 sent when listening" ||
		fail "no READY=1: $(cat "$T/notify.out")"
	grep -q "STATUS=serving on" "$T/notify.out" && ok "STATUS sent" || fail "no STATUS"
	stop_kilnd TERM
	sleep 0.2
	grep -q "STOPPING=1" "$T/notify.out" && ok "STOPPING=1 sent on SIGTERM" ||
		fail "no STOPPING=1"
	kill $SOCAT 2>/dev/null || true
else
	fail "socat missing: cannot check sd_notify (scripts/bootstrap installs it)"
fi

# --- SIGTERM finishes the request in progress, then refuses new ones ---------
start_kilnd
# A valid job padded to ~64 KB, sent at 16 KB/s: about 4 s in flight.
pad=$(head -c 65000 /dev/zero | tr '\0' ' ')
printf '{"repo": "https://x/slow.git", "ref": "main", "targets": ["linux/amd64"]%s}' \
	"$pad" > "$T/slow.json"
curl -sS -o "$T/slow.out" -w '%{http_code}' --limit-rate 16k \
	-H 'Content-Type: application/json' --data-binary @"$T/slow.json" \
	"$URL/v1/jobs" > "$T/slow.code" &
CURL=$!
sleep 1
kill -TERM "$KPID"
sleep 0.3
rc=0; curl -sS -m 2 "$URL/healthz" >/dev/null 2>&1 || rc=$?
[ $rc != 0 ] && ok "no new connections while draining (curl exit $rc)" ||
	fail "a new connection was served while draining"
wait $CURL || true
[ "$(cat "$T/slow.code")" = 201 ] && ok "request in progress at SIGTERM finished: 201" ||
	fail "slow request got $(cat "$T/slow.code"): $(cat "$T/slow.out")"
KEXIT=0; wait "$KPID" || KEXIT=$?; KPID=
[ "$KEXIT" = 0 ] && ok "drained, exit 0" || fail "exit $KEXIT after drain"
id=$(jq -r .id "$T/slow.out")
[ "$(db "select count(*) from jobs where id = $id")" = 1 ] &&
	ok "the job acknowledged during the drain is stored" || fail "job $id missing"

# --- the signing key ---------------------------------------------------------
out=$("$KILND" --keygen -d "$T/keys" 2>"$T/err") || fail "--keygen: $(cat "$T/err")"
[ "$(stat -c %a "$T/keys/kiln.key")" = 600 ] && ok "--keygen: kiln.key is 0600" ||
	fail "kiln.key mode $(stat -c %a "$T/keys/kiln.key")"
head -1 "$T/keys/kiln.pub" | grep -q '^untrusted comment: minisign public key ' &&
	ok "kiln.pub is a minisign public key" || fail "kiln.pub: $(cat "$T/keys/kiln.pub")"
grep -q "key id" <<<"$out" && ok "--keygen prints the key id" || fail "--keygen said: $out"
rc=0; "$KILND" --keygen -d "$T/keys" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "refusing to overwrite" "$T/err" &&
	ok "--keygen never overwrites a key" || fail "second --keygen: exit $rc"
chmod 0644 "$T/keys/kiln.key"
rc=0; "$KILND" -l 127.0.0.1:0 -d "$T/keys" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "readable by group or others" "$T/err" &&
	ok "a key others can read: kilnd refuses to start" || fail "insecure key: exit $rc"
chmod 0600 "$T/keys/kiln.key"
STATE_SAVED=$STATE; STATE=$T/keys
start_kilnd -c "$PAUSED_CONF"
api GET /v1/pubkey
[ "$STATUS" = 200 ] && [ "$(printf "%s" "$BODY")" = "$(cat "$T/keys/kiln.pub")" ] &&
	ok "GET /v1/pubkey serves kiln.pub" || fail "pubkey: $STATUS $BODY"
stop_kilnd TERM
STATE=$STATE_SAVED
# A first start without a key creates one and says where.
grep -q "created the signing key" "$KLOG" && fail "key recreated" || true
mkdir -p "$T/fresh"
STATE=$T/fresh
start_kilnd -c "$PAUSED_CONF"
grep -q "created the signing key $T/fresh/kiln.key" "$KLOG" &&
	ok "first start creates the key and logs it" || fail "no key created: $(cat "$KLOG")"
stop_kilnd TERM
STATE=$STATE_SAVED
# The database records the farm's key: under another key (the state dir
# moved, or a host of another farm) kilnd refuses to start, naming both.
farm_id=$(head -1 "$T/fresh/kiln.pub" | awk '{print $NF}')
other_id=$(head -1 "$T/keys/kiln.pub" | awk '{print $NF}')
mv "$T/fresh/kiln.key" "$T/fresh/kiln.key.farm"
mv "$T/fresh/kiln.pub" "$T/fresh/kiln.pub.farm"
cp -p "$T/keys/kiln.key" "$T/keys/kiln.pub" "$T/fresh/"
rc=0; "$KILND" -l 127.0.0.1:0 -d "$T/fresh" -c "$PAUSED_CONF" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "signing key is $farm_id; this host's key is $other_id" "$T/err" &&
	ok "another key than the database's: kilnd refuses to start" ||
	fail "another key: exit $rc: $(cat "$T/err")"
mv "$T/fresh/kiln.key.farm" "$T/fresh/kiln.key"
mv "$T/fresh/kiln.pub.farm" "$T/fresh/kiln.pub"
STATE=$T/fresh
start_kilnd -c "$PAUSED_CONF"
stop_kilnd TERM
STATE=$STATE_SAVED
ok "the farm's own key starts again"

# --- a relative state dir (the quick start's -d ./var) builds fine ---------
mkdir -p "$T/cwd" "$T/plain"; echo x > "$T/plain/README"
REPO=$(make_repo plain "$T/plain")
(cd "$T/cwd" && exec "$KILND" -l 127.0.0.1:0 -d ./var -c "$LOCAL_CONF") \
	2>"$T/rel.log" &
KPID=$!
URL=
for _ in $(seq 1 100); do
	URL=$(grep -o 'listening on http://[0-9.:]*' "$T/rel.log" | head -1 |
		sed 's/listening on //') && [ -n "$URL" ] && break
	sleep 0.05
done
grep -q "state $T/cwd/var," "$T/rel.log" && ok "-d ./var is made absolute" ||
	fail "state dir not absolute: $(head -5 "$T/rel.log")"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"echo built > /out/ok\"}}"
wait_job "$(printf '%s' "$BODY" | jq -r .id)" 60
expect_json .state succeeded "a build under a relative state dir"
stop_kilnd TERM

# --- a stop does not wait for a process a dead worker left behind ---------
# On cgroup v1, a kiln-worker killed while it tears its build down leaves
# the build frozen, holding the worker's pipes to kilnd.  This worker
# does the same with a plain process: its build is gone at SIGTERM, what
# the build started keeps the pipes open.
REAL_WORKER=$(cd "$(dirname "$KILND")" && pwd)/kiln-worker
cat >"$T/holding-worker" <<EOF
#!/bin/sh
if [ "\$1" = build ]; then
	sleep 600 &
	echo \$! >"$T/holder.pid"
	exec sleep 600
fi
exec "$REAL_WORKER" "\$@"
EOF
chmod +x "$T/holding-worker"
printf '[kilnd]\nallow_local_repos = yes\nworker_path = %s\ndrain_timeout = 0\n' \
	"$T/holding-worker" >"$T/holding.conf"
STATE=$T/holding
start_kilnd -c "$T/holding.conf"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"true\"}}"
id=$(printf '%s' "$BODY" | jq -r .id)
for _ in $(seq 1 300); do [ -s "$T/holder.pid" ] && break; sleep 0.1; done
[ -s "$T/holder.pid" ] || fail "the build of job $id never started"
kill -TERM "$KPID"
for _ in $(seq 1 300); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$KPID" 2>/dev/null; then
	fail "kilnd still stopping 30 s after SIGTERM: it waits for pipes that a process its worker left holds"
	kill -KILL "$KPID"
fi
KEXIT=0; wait "$KPID" || KEXIT=$?; KPID=
kill "$(cat "$T/holder.pid")" 2>/dev/null || true
[ "$KEXIT" = 0 ] && grep -q "stopped cleanly" "$KLOG" &&
	ok "a process left holding a dead worker's pipes does not hold up the stop" ||
	fail "exit $KEXIT: $(tail -5 "$KLOG")"
[ "$(db "select state from job_targets where job_id = $id")" = queued ] &&
	ok "and its target goes back to the queue" ||
	fail "target of job $id: $(db "select state from job_targets where job_id = $id")"
STATE=$STATE_SAVED

# --- a forced stop while a webhook's lookups are pending ---------------------
# The delivery is looked up over a few loop iterations; a second SIGTERM
# during the drain drops its connection meanwhile.  Its last step submits
# the job: the submitter must still be there (freed by then, a use after
# free that ASan reports, until the HTTP server waited for such requests).
# kilnd is stopped while the request and the signal arrive, so that both
# are seen in one loop iteration, the request first.
if command -v python3 >/dev/null; then
cat >"$T/holding-build" <<EOF
#!/bin/sh
if [ "\$1" = build ]; then
	echo \$\$ >"$T/build.pid"
	exec sleep 600
fi
exec "$REAL_WORKER" "\$@"
EOF
chmod +x "$T/holding-build"
cat >"$T/hookstop.conf" <<EOF
[kilnd]
allow_local_repos = yes
open_submissions = yes
worker_path = $T/holding-build
drain_timeout = 60

[project gl]
repo = https://example.org/gl.git
secret = gitlab-token-0123456789abcdef
targets = linux/amd64
EOF
STATE=$T/hookstop
start_kilnd -c "$T/hookstop.conf"
post_job "{\"repo\": \"$REPO\", \"ref\": \"main\", \"targets\": [\"linux/amd64\"],
	\"recipe\": {\"kind\": \"command\", \"command\": \"true\"}}"
for _ in $(seq 1 300); do [ -s "$T/build.pid" ] && break; sleep 0.1; done
[ -s "$T/build.pid" ] || fail "the build of the webhook stop test never started"
kill -TERM "$KPID"	# draining: the API still answers
sleep 0.3
jq -c --arg u https://example.org/gl.git --arg c "$(printf '%040d' 7)" '
	.project.git_http_url = $u | .repository.git_http_url = $u
	| .after = $c | .checkout_sha = $c | .commits |= map(.id = $c)' \
	"$SRCDIR/tests/fixtures/hooks/gitlab-push.json" >"$T/gl.json"
python3 - "${URL#http://}" "$KPID" "$T/gl.json" <<'PY'
import os, signal, socket, sys, time
host, port = sys.argv[1].rsplit(':', 1)
pid = int(sys.argv[2])
body = open(sys.argv[3], 'rb').read()
s = socket.create_connection((host, int(port)))
time.sleep(0.3)
req = (b"POST /v1/hooks/gitlab HTTP/1.1\r\nHost: kiln\r\n"
    b"Content-Type: application/json\r\n"
    b"X-Gitlab-Token: gitlab-token-0123456789abcdef\r\n"
    b"X-Gitlab-Event-UUID: stop-1\r\n"
    b"Content-Length: %d\r\n\r\n" % len(body)) + body
os.kill(pid, signal.SIGSTOP)
time.sleep(0.1)
s.sendall(req)
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
time.sleep(0.1)
os.kill(pid, signal.SIGCONT)
s.settimeout(30)
try:
    s.recv(4096)
except OSError:
    pass
PY
for _ in $(seq 1 300); do kill -0 "$KPID" 2>/dev/null || break; sleep 0.1; done
KEXIT=0; wait "$KPID" || KEXIT=$?; KPID=
kill "$(cat "$T/build.pid")" 2>/dev/null || true
[ "$KEXIT" = 0 ] && grep -q "stopped cleanly" "$KLOG" &&
	ok "a forced stop while a webhook is being looked up: exit 0, stopped cleanly" ||
	fail "forced stop during a webhook's lookups: exit $KEXIT; $(grep -m1 -A6 'ERROR: AddressSanitizer' "$KLOG" || tail -3 "$KLOG")"
STATE=$STATE_SAVED
fi

# --- SIGTERM again and again until kilnd is gone: still a clean stop ------
start_kilnd -c "$PAUSED_CONF"
for _ in $(seq 1 3000); do
	grep -q '^State:.*Z' "/proc/$KPID/status" 2>/dev/null && break
	kill -TERM "$KPID" 2>/dev/null || break
	sleep 0.005
done
KEXIT=0; wait "$KPID" || KEXIT=$?; KPID=
[ "$KEXIT" = 0 ] && grep -q "stopped cleanly" "$KLOG" &&
	ok "SIGTERM repeated through the whole stop: exit 0, stopped cleanly" ||
	fail "SIGTERM repeated: exit $KEXIT; $(tail -3 "$KLOG")"
finish
