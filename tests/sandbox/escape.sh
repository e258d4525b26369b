#!/bin/bash
# The sandbox escape suite: hostile recipes through kilnd, each with the
# specific assertion that it was contained, and a table of attack,
# expected and observed at the end.  Also: cancel of a running build
# kills its grandchildren, and a timeout kills a double-forked, setsid'd
# one.
. "$(dirname "$0")/../integration/lib.sh"

for tool in git; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
mkdir -p "$T/src"; echo 'x' > "$T/src/README"
REPO=$(make_repo hostile "$T/src")

# A listener in the host's network namespace that records any connection.
LPORT=$((20000 + RANDOM % 20000))
: > "$T/listener.hits"
( socat -u TCP-LISTEN:$LPORT,bind=127.0.0.1,reuseaddr,fork \
	OPEN:"$T/listener.hits",creat,append 2>/dev/null ) &
LISTENER=$!
sleep 0.3

cat > "$T/sandbox.conf" <<CONF
[kilnd]
build_timeout = 60
build_memory = 256M
build_pids = 128
build_file_size = 64M
CONF
# A secret in kilnd's environment must not reach any build.
KILN_TEST_SECRET=s3cr3t-$$ start_kilnd -c "$T/sandbox.conf" -w 2

# run_recipe NAME COMMAND [TIMEOUT]: runs COMMAND as a job; sets RID, LOG
# (the build log) and RSTATE (the target's state).  The log echoes the
# command on its "[kiln] $" line, so markers are matched as whole lines.
run_recipe() {
	local name=$1 cmd=$2 extra=
	[ -n "${3-}" ] && extra=", \"timeout\": $3"
	post_job "$(jq -cn --arg r "$REPO" --arg c "$cmd" \
		'{repo: $r, ref: "main", targets: ["linux/amd64"],
		  recipe: {kind: "command", command: $c}}' |
		sed "s/}\$/$extra}/")"
	if [ "$STATUS" != 201 ]; then
		fail "$name: submit: $STATUS $BODY"; RID=; RSTATE=; LOG=; return
	fi
	RID=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$RID" 180
	RSTATE=$(printf '%s' "$BODY" | jq -r '.targets[0].state')
	LOG=$(curl -s "$URL/v1/jobs/$RID/targets/linux_amd64/log")
}

# expect NAME CONDITION-DESCRIPTION OBSERVED ...: record a table row.
ROWS=()
row() { ROWS+=("$(printf '%-28s | %-34s | %s' "$1" "$2" "$3")"); }

# bash for /dev/tcp (recipes run /bin/sh, which is dash on Debian).
run_recipe "tcp to host loopback" "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$LPORT && echo CONNECTED' 2>&1; echo done"
if ! grep -qx CONNECTED <<<"$LOG" && [ ! -s "$T/listener.hits" ] &&
    grep -q '^done' <<<"$LOG"; then
	ok "no route to the host's 127.0.0.1:$LPORT"; row "connect host 127.0.0.1" "refused, nothing received" "refused"
else fail "network: $LOG"; row "connect host 127.0.0.1" "refused" "CONNECTED"; fi

run_recipe "outside address" "timeout 5 bash -c 'exec 3<>/dev/tcp/192.0.2.1/80 && echo CONNECTED' 2>&1; echo done"
grep -q '^done' <<<"$LOG" || fail "outside address: the recipe did not run: $LOG"
grep -qx CONNECTED <<<"$LOG" && { fail "reached 192.0.2.1"; row "connect 192.0.2.1" "unreachable" "CONNECTED"; } ||
	{ ok "no outside network"; row "connect 192.0.2.1" "unreachable" "unreachable"; }

run_recipe "dns" "getent hosts example.com && echo RESOLVED; echo done"
grep -qx RESOLVED <<<"$LOG" && { fail "DNS worked"; row "DNS lookup" "fails" "RESOLVED"; } ||
	{ ok "no DNS"; row "DNS lookup" "fails" "fails"; }

run_recipe "shadow" "cat /etc/shadow && echo READ; ls /etc"
grep -qx READ <<<"$LOG" && { fail "/etc/shadow readable"; row "read /etc/shadow" "absent" "READ"; } ||
	{ ok "/etc/shadow not there"; row "read /etc/shadow" "absent" "absent"; }

run_recipe "state dir" "ls -la '$STATE' && echo LISTED; cat '$STATE/kiln.db' >/dev/null && echo READDB; cat '$STATE/kiln.key' && echo READKEY; echo done"
[ -f "$STATE/kiln.key" ] || fail "kilnd made no signing key to try"
if grep -qxE 'LISTED|READDB|READKEY' <<<"$LOG"; then fail "state dir visible: $LOG"; row "read state dir, signing key" "absent" "visible"
else ok "kilnd's state dir and signing key are not in the sandbox"; row "read state dir, signing key" "absent" "absent"; fi

run_recipe "environment" "env | sort"
if grep -q "s3cr3t" <<<"$LOG"; then fail "kilnd's environment leaked"; row "kilnd's env vars" "none" "LEAKED"
elif grep -q '^KILN_TARGET=linux/amd64$' <<<"$LOG" && grep -q '^GOOS=linux$' <<<"$LOG"; then
	ok "build env has KILN_TARGET and GOOS, not kilnd's variables"; row "kilnd's env vars" "none" "none"
else fail "env: $LOG"; fi
extra=$(grep -E '^[A-Z_][A-Z0-9_]*=' <<<"$LOG" | cut -d= -f1 |
	grep -vxE 'KILN_(TARGET|OS|ARCH|VARIANT|OUT|HOST_TRIPLE)|GOOS|GOARCH|GOARM|GOAMD64|CC|CXX|AR|STRIP|SOURCE_DATE_EPOCH|PATH|HOME|TMPDIR|GOCACHE|GOPATH|PWD|SHLVL|_|OLDPWD' || true)
[ -z "$extra" ] && ok "no variable outside kilnd(8)'s list" || fail "unexpected variables: $extra"

run_recipe "write /usr" "touch /usr/pwned && echo WROTE; echo done"
grep -qx WROTE <<<"$LOG" && { fail "/usr writable"; row "write /usr" "read-only" "WROTE"; } ||
	{ ok "/usr is read-only"; row "write /usr" "read-only" "read-only"; }
[ ! -e /usr/pwned ] || fail "/usr/pwned exists on the host"

run_recipe "write outside" "touch /pwned /etc/pwned /src/../pwned2 2>&1; ls /; echo done"
[ ! -e /pwned ] && [ ! -e /pwned2 ] && ok "nothing written outside" || fail "wrote outside"
row "write outside /out" "fails" "$([ -e /pwned ] && echo WROTE || echo fails)"

BOMB=kiln-bomb-$$
run_recipe "fork bomb" ": $BOMB; bomb() { bomb | bomb & }; bomb; sleep 2; echo survived" 8
sleep 1
if pgrep -f "$BOMB" >/dev/null; then
	fail "fork bomb processes survived the job"
else
	ok "fork bomb contained and gone ($RSTATE)"
fi
api GET /healthz
expect_status 200 "kilnd serves after the fork bomb"
row "fork bomb" "pids cgroup, all gone" "$RSTATE, $(pgrep -fc "$BOMB" || true) left"

# A C program that touches 8 GiB: the 256M memory cgroup kills it.
run_recipe "memory hog" "printf '#include <stdlib.h>\n#include <string.h>\nint main(void){size_t n=(size_t)8<<30;char*p=malloc(n);if(!p)return 2;memset(p,1,n);return 0;}\n' > /tmp/m.c && gcc -O0 -o /tmp/m /tmp/m.c && /tmp/m; echo rc=\$?"
if grep -q '^rc=0$' <<<"$LOG"; then
	fail "8 GiB were allocated and touched"; row "allocate 8 GiB" "killed (256M)" "ALLOCATED"
elif grep -qE '^rc=(137|2)$' <<<"$LOG"; then
	ok "8 GiB allocation killed or refused ($(grep -E '^rc=' <<<"$LOG"))"
	row "allocate 8 GiB" "killed (256M)" "$(grep -E '^rc=' <<<"$LOG")"
else
	fail "memory hog: $LOG"
fi

# bash for exec -a (dash has none): the marker names the processes.
MARK=kiln-orphan-$$
post_job "$(jq -cn --arg r "$REPO" --arg c "setsid bash -c 'exec -a $MARK sleep 600' & (setsid bash -c 'exec -a $MARK sleep 600' &); sleep 600" \
	'{repo: $r, ref: "main", targets: ["linux/amd64"], timeout: 4,
	  recipe: {kind: "command", command: $c}}')"
RID=$(printf '%s' "$BODY" | jq -r .id)
seen=0
for _ in $(seq 1 60); do
	[ "$(pgrep -fc "^$MARK" || true)" -ge 2 ] && { seen=1; break; }
	sleep 0.1
done
[ $seen = 1 ] && ok "a setsid'd child and a double-forked grandchild run" ||
	fail "the timeout test's processes never ran"
wait_job "$RID" 60
RSTATE=$(printf '%s' "$BODY" | jq -r '.targets[0].state')
[ "$RSTATE" = timed_out ] && ok "timeout: timed_out" || fail "timeout: $RSTATE"
sleep 1
pgrep -f "^$MARK" >/dev/null && fail "a double-forked grandchild survived the timeout" ||
	ok "no process of the build survived the timeout"
row "sleep past timeout, setsid" "timed_out, no survivor" "$RSTATE, $(pgrep -fc "^$MARK" || true) left"

run_recipe "uid" "id -u; hostname"
grep -qx 1000 <<<"$LOG" && ok "builds run as uid 1000 inside" || fail "uid: $LOG"
grep -qx kiln-build <<<"$LOG" && ok "hostname kiln-build" || fail "hostname"
[ "$(hostname)" != kiln-build ] && ok "host's hostname unchanged" || fail "hostname leaked"

run_recipe "unshare/mount" "unshare -U true && echo UNSHARED; mount -t tmpfs x /tmp && echo MOUNTED; echo done"
grep -qxE 'UNSHARED|MOUNTED' <<<"$LOG" && { fail "unshare or mount worked"; row "unshare -U, mount" "EPERM" "worked"; } ||
	{ ok "unshare and mount refused"; row "unshare -U, mount" "EPERM" "EPERM"; }

# --- the host's processes, other jobs, the store, devices --------------------
run_recipe "host pid 1" "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo PROCS=\$(ls /proc | grep -c '^[0-9]'); cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c s3cr3t; echo done"
host1=$(tr '\0' ' ' </proc/1/cmdline)
procs=$(sed -n 's/^PROCS=//p' <<<"$LOG")
if grep -qF -- "$host1" <<<"$LOG" && [ -n "$host1" ]; then
	fail "the host's pid 1 is visible: $LOG"; row "read /proc/1 of the host" "own pid ns" "HOST PID 1"
elif [ -n "$procs" ] && [ "$procs" -lt 20 ]; then
	ok "/proc/1 is the sandbox's own init, $procs processes visible"
	row "read /proc/1 of the host" "own pid ns" "$procs pids, not the host's"
else fail "pid namespace: $LOG"; fi

run_recipe "kilnd's /proc" "test -e /proc/$KPID/environ && cat /proc/$KPID/environ | tr '\\0' '\\n' | grep s3cr3t && echo FOUND; echo done"
grep -qx FOUND <<<"$LOG" && { fail "kilnd's environment read via /proc"; row "kilnd's /proc/PID/environ" "not visible" "READ"; } ||
	{ ok "kilnd's /proc entry (pid $KPID) is not reachable"; row "kilnd's /proc/PID/environ" "not visible" "not visible"; }

# Another job's work tree and the store are outside every sandbox.
run_recipe "other jobs, store" "for d in '$STATE/work' '$STATE/store/sha256' /src/.. /out/..; do echo pwn > \$d/pwned 2>/dev/null && echo WROTE \$d; done; ls '$STATE' 2>&1; echo done"
if find "$STATE" -name pwned | grep -q .; then
	fail "a file landed in kilnd's state: $(find "$STATE" -name pwned)"
	row "write other work trees, store" "impossible" "WROTE"
else
	ok "no write reached another work tree or the store"
	row "write other work trees, store" "impossible" "nothing written"
fi

run_recipe "disk filler" "head -c 200M /dev/zero > /tmp/fill; echo rc=\$?; ls -l /tmp/fill | awk '{print \"size=\" \$5}'"
size=$(sed -n 's/^size=//p' <<<"$LOG")
if grep -q '^rc=0$' <<<"$LOG" || [ -z "$size" ] || [ "$size" -gt $((64 * 1024 * 1024)) ]; then
	fail "file size limit: $LOG"; row "disk filler (200M)" "stops at 64M (FSIZE)" "${size:-?} bytes"
else
	ok "a 200 MB write stopped at $size bytes (build_file_size = 64M)"
	row "disk filler (200M)" "stops at 64M (FSIZE)" "$size bytes"
fi

run_recipe "ptrace" "printf '#include <stdio.h>\\n#include <errno.h>\\n#include <string.h>\\n#include <unistd.h>\\n#include <sys/ptrace.h>\\n#include <sys/wait.h>\\nint main(void){pid_t p=fork();if(p==0){sleep(5);return 0;}long r=ptrace(PTRACE_ATTACH,p,0,0);printf(\"PTRACE=%%s\\\\n\",r==0?\"ATTACHED\":strerror(errno));return 0;}\\n' > /tmp/p.c && gcc -o /tmp/p /tmp/p.c && /tmp/p; echo done"
pt=$(sed -n 's/^PTRACE=//p' <<<"$LOG")
if [ "$pt" = ATTACHED ] || [ -z "$pt" ]; then
	fail "ptrace of a sibling: '$pt' $LOG"; row "ptrace a sibling" "denied (seccomp)" "${pt:-?}"
else
	ok "ptrace of a sibling refused: $pt"; row "ptrace a sibling" "denied (seccomp)" "$pt"
fi

run_recipe "setuid" "grep NoNewPrivs /proc/self/status; ls -l /usr/bin/su; su -c 'echo ROOT' root </dev/null 2>&1 | tail -1; echo euid=\$(id -u); echo done"
if grep -qx ROOT <<<"$LOG" || ! grep -q 'NoNewPrivs:[[:space:]]*1' <<<"$LOG"; then
	fail "setuid: $LOG"; row "setuid binary (su)" "no privilege (no_new_privs)" "ROOT"
else
	ok "no_new_privs set; su gained nothing"; row "setuid binary (su)" "no privilege (no_new_privs)" "NoNewPrivs 1, su fails"
fi

sleep 600 & HOSTSLEEP=$!
run_recipe "kill -1" "sleep 30 & kill -KILL -1; echo survived-self; echo done"
if kill -0 "$HOSTSLEEP" 2>/dev/null && kill -0 "$KPID" 2>/dev/null && kill -0 "$LISTENER" 2>/dev/null; then
	ok "kill(-1, SIGKILL) inside reached no host process"
	row "kill(-1, SIGKILL)" "only the sandbox" "host processes alive"
else
	fail "kill -1 killed a host process"; row "kill(-1, SIGKILL)" "only the sandbox" "HOST HIT"
fi
kill "$HOSTSLEEP" 2>/dev/null || true

run_recipe "write /dev" "echo x > /dev/pwned && echo WROTE; echo x > /dev/sda && echo DISK; ls /dev | tr '\\n' ' '; echo; echo done"
if grep -qxE 'WROTE|DISK' <<<"$LOG" || [ -e /dev/pwned ]; then
	fail "/dev writable: $LOG"; row "write /dev, open disks" "read-only, no disks" "WROTE"
else
	ok "/dev is read-only and has no disks: $(grep -v '^\[kiln\]' <<<"$LOG" | grep -v '^done' | tail -1)"
	row "write /dev, open disks" "read-only, no disks" "read-only"
fi

run_recipe "symlink artifact" "ln -s /etc/passwd \$KILN_OUT/passwd; echo x > \$KILN_OUT/a; ln \$KILN_OUT/a \$KILN_OUT/b"
err=$(printf '%s' "$BODY" | jq -r '.targets[0].error')
if [ "$RSTATE" = failed ] && [[ "$err" == *"a symlink"* || "$err" == *"a hard link"* ]] &&
    [ "$(printf '%s' "$BODY" | jq '.targets[0].artifacts | length')" = 0 ]; then
	ok "symlink and hard link artifacts refused: $err"
	row "symlink/hard link artifacts" "target failed, nothing published" "failed: ${err%%;*}"
else
	fail "link artifacts: $RSTATE $err"; row "symlink/hard link artifacts" "failed" "$RSTATE"
fi

run_recipe "hostname" "hostname evil-host 2>&1; hostname; echo done"
[ "$(hostname)" != evil-host ] && ok "the host's hostname is unchanged ($(hostname))" || fail "hostname changed on the host"
row "change the hostname" "own uts ns" "host: $(hostname)"

# --- more attacks above this line ---

# --- cancel of a running build kills its grandchildren ---------------------
MARK2=kiln-cancel-$$
post_job "$(jq -cn --arg r "$REPO" --arg c "(setsid bash -c 'exec -a $MARK2 sleep 600' &); exec bash -c 'exec -a $MARK2 sleep 600'" \
	'{repo: $r, ref: "main", targets: ["linux/amd64"], recipe: {kind: "command", command: $c}}')"
CID=$(printf '%s' "$BODY" | jq -r .id)
wait_target_state "$CID" linux/amd64 running 60
for _ in $(seq 1 100); do [ "$(pgrep -fc "^$MARK2" || true)" -ge 2 ] && break; sleep 0.1; done
[ "$(pgrep -fc "^$MARK2" || true)" -ge 2 ] && ok "the build and its grandchild run" ||
	fail "cancel test did not start"
t0=$(date +%s%N)
api POST "/v1/jobs/$CID/cancel"
expect_status 200 "cancel a running build"
wait_job "$CID" 30
t1=$(date +%s%N)
expect_json .state canceled "canceled job"
expect_json '.targets[0].state' canceled "canceled target"
pgrep -f "^$MARK2" >/dev/null && fail "a process survived the cancel" ||
	ok "cancel killed the whole tree in $(( (t1 - t0) / 1000000 )) ms"
row "cancel with grandchild" "canceled, no survivor" "canceled in $(( (t1 - t0) / 1000000 )) ms"

kill $LISTENER 2>/dev/null || true
stop_kilnd TERM
[ "$KEXIT" = 0 ] && ok "exit 0" || fail "exit $KEXIT"
echo
printf '%-28s | %-34s | %s\n' attack expected observed
printf '%s\n' "${ROWS[@]}"
finish
