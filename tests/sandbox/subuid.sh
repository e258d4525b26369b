#!/bin/bash
# Identity of builds: a kilnd that is not root runs its builds as the
# first subordinate uid and gid of its user (/etc/subuid, /etc/subgid,
# newuidmap/newgidmap), never as its own uid.  Two real system users made
# here (removed by the trap, with their ranges):
#  - one with a range: the build process's real uid on the host is the
#    subordinate uid, it holds none of kilnd's groups, what it writes to
#    /cache stays the subordinate uid's (and a second build reads it),
#    the artifacts are published and the work tree is removed, also
#    after a timeout, after the worker was SIGKILLed and for a tree a
#    crash left at start (kiln-worker reclaim); the deps step's module
#    cache is handed over and recorded;
#  - one without a range: kilnd says so at start naming /etc/subuid and
#    allow_same_uid_builds, a job fails with an error naming both; with
#    allow_same_uid_builds = yes it builds, as kilnd's uid.
# kilnd runs under setpriv with the bounding set and NoNewPrivileges= of
# systemd/kilnd.service, read from it.  Needs root (useradd).
. "$(dirname "$0")/../integration/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (useradd, /etc/subuid)"
	exit 77
fi
for tool in git useradd usermod userdel setpriv newuidmap newgidmap pgrep; do
	command -v "$tool" >/dev/null ||
		{ echo "FAIL: $tool is missing (scripts/bootstrap installs it)"; exit 1; }
done
: "${KILN_WORKER:=$(dirname "$KILND")/kiln-worker}"

# Ranges far from the ones useradd hands out (100000 and up, 65536 each).
SUB=$((500000000 + ($$ % 100000) * 100))
USUB=kiln-sub-$$
UNONE=kiln-nosub-$$
USERS=()

# shellcheck disable=SC2317  # called by the trap
cleanup_users() {
	local u rc=$? left=0
	if [ -n "$KPID" ] && kill -0 "$KPID" 2>/dev/null; then
		kill -KILL "$KPID" 2>/dev/null || true
		wait "$KPID" 2>/dev/null || true
		KPID=
	fi
	for u in "${USERS[@]}"; do
		retry usermod --del-subuids "$SUB-$((SUB + 99))" \
			--del-subgids "$SUB-$((SUB + 99))" "$u" 2>/dev/null || true
		# Its workers die with kilnd (parent-death signal): retry a moment.
		for _ in $(seq 1 50); do
			userdel "$u" 2>/dev/null && break
			id "$u" >/dev/null 2>&1 || break
			sleep 0.1
		done
		getent group "$u" >/dev/null && retry groupdel "$u" 2>/dev/null
		grep -q "^$u:" /etc/subuid /etc/subgid 2>/dev/null &&
			{ echo "FAIL: $u is still in /etc/subuid or /etc/subgid" >&2; left=1; }
		id "$u" >/dev/null 2>&1 &&
			{ echo "FAIL: user $u was not removed" >&2; left=1; }
	done
	cleanup
	[ "$left" = 0 ] || exit 1
	exit "$rc"
}
trap cleanup_users EXIT

# The users' kilnd must reach T and the binaries: copies in T, as the
# build directory may lie under a private home.
chmod 755 "$T"
mkdir -p "$T/bin"
cp "$KILND" "$T/bin/kilnd"
cp "$KILN_WORKER" "$T/bin/kiln-worker"
KILND=$T/bin/kilnd

# retry CMD...: the user database is locked while another suite (make
# -j check) changes it.
retry() {
	for _ in $(seq 1 40); do
		"$@" 2>"$T/retry.err" && return 0
		grep -q 'lock' "$T/retry.err" || break
		sleep 0.25
	done
	cat "$T/retry.err" >&2
	return 1
}
add_user() {
	retry useradd --system --user-group --no-create-home --home-dir "$T/home-$1" \
		--shell /usr/sbin/nologin "$1" || { echo "FAIL: useradd $1"; exit 1; }
	USERS+=("$1")
	mkdir -p "$T/home-$1"
	chown "$1:" "$T/home-$1"
}
add_user "$USUB"
retry usermod --add-subuids "$SUB-$((SUB + 99))" --add-subgids "$SUB-$((SUB + 99))" "$USUB" ||
	{ echo "FAIL: usermod --add-subuids $USUB"; exit 1; }
add_user "$UNONE"
UID_SUB=$(id -u "$USUB")
UID_NONE=$(id -u "$UNONE")
echo "# $USUB uid $UID_SUB, range $SUB-$((SUB + 99)); $UNONE uid $UID_NONE, no range"

# What kilnd.service lets kilnd keep: its bounding set, as setpriv says it.
UNIT=$SRCDIR/systemd/kilnd.service.in
BSET=-all
for c in $(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT"); do
	c=${c#CAP_}
	BSET+=",+${c,,}"
done
NNP=
grep -qx 'NoNewPrivileges=yes' "$UNIT" && NNP=--no-new-privs
echo "# as kilnd.service: setpriv --bounding-set=$BSET $NNP"

# as_user USER: the wrapper kilnd runs under (lib.sh's KILND_WRAPPER).
as_user() {
	KILND_WRAPPER="setpriv --reuid=$1 --regid=$1 --init-groups
		--bounding-set=$BSET $NNP env HOME=$T/home-$1"
}

# A repository and a state directory of the user's own.
mkdir -p "$T/src"; echo 'x' > "$T/src/README"
REPO=$(make_repo ident "$T/src")
SHA=$(git -C "$REPO" rev-parse HEAD)
NETREPO=$(make_repo net "$T/src")
chown -R "$USUB:" "$REPO" "$NETREPO"

cat > "$T/k.conf" <<CONF
[project net]
repo = $NETREPO
network = yes

[kilnd]
allow_local_repos = yes
build_timeout = 120
open_submissions = yes
CONF

# job COMMAND [TIMEOUT]: submit COMMAND for linux/amd64; sets JID.
job() {
	local t=${2:+, \"timeout\": $2}
	post_job "$(jq -cn --arg r "$REPO" --arg c "$1" \
		'{repo: $r, ref: "main", targets: ["linux/amd64"],
		  recipe: {kind: "command", command: $c}}' | sed "s/}\$/$t}/")"
	JID=
	[ "$STATUS" = 201 ] || { fail "submit: $STATUS $BODY"; return 1; }
	JID=$(printf '%s' "$BODY" | jq -r .id)
}
# host_status MARK: the /proc status lines Uid, Gid, Groups of the build
# process named MARK (exec -a), waiting for it to appear.
host_status() {
	local pid=
	for _ in $(seq 1 300); do
		pid=$(pgrep -f "^$1" | head -1) && [ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || return 1
	grep -E '^(Uid|Gid|Groups):' "/proc/$pid/status"
}
# no_work_left: the work trees are removed (asynchronously) after a job.
no_work_left() {
	for _ in $(seq 1 100); do
		[ -z "$(find "$STATE/work" -mindepth 2 2>/dev/null | head -1)" ] &&
			return 0
		sleep 0.1
	done
	return 1
}

# --- a user with a range ---------------------------------------------------------

STATE=$T/state-sub
mkdir -p "$STATE"
# A tree a crash left behind, still the build's, with a directory kilnd
# may not enter: kilnd's start must remove it (kiln-worker reclaim).
mkdir -p "$STATE/work/77/linux_amd64.1.1/out/deep/er"
echo x > "$STATE/work/77/linux_amd64.1.1/out/deep/er/f"
chown -R "$USUB:" "$STATE"
chmod 750 "$STATE"
chown -R "$SUB:$SUB" "$STATE/work/77/linux_amd64.1.1"
chmod 500 "$STATE/work/77/linux_amd64.1.1/out/deep"
as_user "$USUB"
start_kilnd -c "$T/k.conf" -w 2

if grep -q "builds run as subordinate uid $SUB, gid $SUB of user $USUB" "$KLOG"; then
	ok "kilnd says at start that builds run as subordinate uid $SUB"
else
	fail "no start line about subordinate ids: $(grep -i 'build' "$KLOG" | head -5)"
fi
for _ in $(seq 1 100); do
	ls -d "$STATE"/work.old.* >/dev/null 2>&1 || break
	sleep 0.1
done
if ! ls -d "$STATE"/work.old.* >/dev/null 2>&1; then
	ok "a subordinate-owned tree left by a crash is reclaimed and removed at start"
else
	fail "left at start: $(find "$STATE"/work.old.* | head -5); $(grep -i remove "$KLOG")"
fi

MARK=kiln-ident-$$
job "id -u; cat /proc/self/uid_map; echo cached > /cache/mark-$$;
	mkdir -p /cache/dir && echo x > /cache/dir/f; echo artifact > /out/hello.txt;
	mkdir -p /tmp/keep/locked && echo t > /tmp/keep/locked/f && chmod 0 /tmp/keep/locked;
	exec bash -c 'exec -a $MARK sleep 3'"
HOST=$(host_status "$MARK" | tr '\t' ' ' | tr -s ' ')
if [[ "$HOST" == *"Uid: $SUB $SUB $SUB $SUB"* ]] && [[ "$HOST" == *"Gid: $SUB $SUB $SUB $SUB"* ]] &&
	[[ "$HOST" != *"Uid: $UID_SUB "* ]]; then
	ok "the build's real uid on the host is the subordinate uid $SUB, not kilnd's $UID_SUB"
else
	fail "the build's ids on the host: '$HOST' (kilnd is $UID_SUB)"
fi
GROUPS_LINE=$(grep -o 'Groups:[ 0-9]*' <<<"$HOST" | sed 's/Groups: *//; s/ *$//')
[ -z "$GROUPS_LINE" ] && ok "the build holds none of kilnd's groups" ||
	fail "the build's supplementary groups on the host: '$GROUPS_LINE'"
wait_job "$JID" 120
expect_json '.targets[0].state' succeeded "a build under subordinate ids"
LOG=$(curl -s "$URL/v1/jobs/$JID/targets/linux_amd64/log")
if grep -qx 1000 <<<"$LOG" &&
	grep -qE "^ +1000 +$SUB +1\$" <<<"$LOG" && grep -qE "^ +0 +$UID_SUB +1\$" <<<"$LOG" &&
	[ "$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+$' <<<"$LOG")" = 2 ]; then
	ok "inside, the build is uid 1000 = $SUB; only 0 (= kilnd, for slirp4netns) is mapped besides"
else
	fail "inside: $LOG"
fi
F=$(out_file "$JID" linux_amd64 hello.txt)
[ -n "$F" ] && [ "$(cat "$F")" = artifact ] &&
	ok "its artifact was published and downloads" || fail "artifact: $BODY"
MARKF=$(find "$STATE/cache" -name "mark-$$" | head -1)
if [ -n "$MARKF" ] && [ "$(stat -c %u:%g "$MARKF")" = "$SUB:$SUB" ] &&
	[ "$(stat -c %u "$(dirname "$MARKF")/dir/f")" = "$SUB" ] &&
	[ "$(stat -c %u "$(dirname "$MARKF")")" = "$SUB" ]; then
	ok "what the build wrote to /cache, and the cache, stay the subordinate uid's"
else
	fail "cache: $(find "$STATE/cache" -exec stat -c '%u:%g %n' {} + | head -8)"
fi
no_work_left && ok "the work tree was removed after publication" ||
	fail "work tree left: $(find "$STATE/work" | head -5)"

# A second build of the repository reads the first one's cache (handed
# over again, as the subordinate uid already owns it).
job "cat /cache/mark-$$ && ls -ln /cache"
wait_job "$JID" 120
LOG=$(curl -s "$URL/v1/jobs/$JID/targets/linux_amd64/log")
expect_json '.targets[0].state' succeeded "a second build with the same cache"
grep -qx cached <<<"$LOG" && ok "the second build read the first one's cache" ||
	fail "second build: $LOG"

# Timeout: pid 1 is SIGKILLed, then the tree goes back and is removed.
job "mkdir -p /out/a/b /tmp/c && chmod 0 /out/a /tmp/c && echo started && sleep 600" 3
wait_job "$JID" 60
expect_json '.targets[0].state' timed_out "a build that sleeps past its timeout"
no_work_left && ok "the work tree of a timed-out build was removed" ||
	fail "after a timeout: $(find "$STATE/work" | head -5)"

# A network build: slirp4netns's own sandbox becomes uid 0 in the build's
# namespace, which maps it to kilnd.  Only where /dev/net/tun is open to
# other users, as on a stock Debian host.
if setpriv --reuid="$USUB" --regid="$USUB" --init-groups \
	sh -c 'exec 3<>/dev/net/tun' 2>/dev/null; then
	post_job "$(jq -cn --arg r "$NETREPO" '{repo: $r, ref: "main",
		targets: ["linux/amd64"], recipe: {kind: "command",
		command: "grep -q tap0: /proc/net/dev && echo NET-UP"}}')"
	JID=$(printf '%s' "$BODY" | jq -r .id)
	wait_job "$JID" 120
	LOG=$(curl -s "$URL/v1/jobs/$JID/targets/linux_amd64/log")
	[ "$(jq -r '.targets[0].state' <<<"$BODY")" = succeeded ] &&
		grep -qx NET-UP <<<"$LOG" &&
		ok "a network = yes build under subordinate ids has its slirp4netns tap0" ||
		fail "network build: $(jq -c '.targets[0]' <<<"$BODY"); $LOG"
else
	echo "# not run here: a network build as $USUB (/dev/net/tun is" \
		"$(stat -c %a /dev/net/tun 2>/dev/null || echo missing), closed to other users)"
fi

# Cancel: the worker is told with SIGTERM, kills the build, then gives
# the tree back.
MARK4=kiln-cancel-$$
job "mkdir -p /tmp/d/e && chmod 0 /tmp/d; exec bash -c 'exec -a $MARK4 sleep 600'"
host_status "$MARK4" >/dev/null || fail "the build to be canceled never ran"
api POST "/v1/jobs/$JID/cancel"
wait_job "$JID" 60
expect_json '.targets[0].state' canceled "a canceled build"
no_work_left && ok "the work tree of a canceled build was removed" ||
	fail "after a cancel: $(find "$STATE/work" | head -5)"

# The worker SIGKILLed by hand: nothing gives the tree back but kilnd's
# removal, through kiln-worker reclaim.
MARK2=kiln-killed-$$
job "mkdir -p /out/x/y && echo f > /out/x/y/f && chmod 500 /out/x; exec bash -c 'exec -a $MARK2 sleep 600'"
host_status "$MARK2" >/dev/null || fail "the build to be orphaned never ran"
WPID=$(pgrep -P "$KPID" -f kiln-worker | head -1)
if [ -n "$WPID" ]; then
	kill -KILL "$WPID"
	wait_job "$JID" 60
	echo "# after the worker was killed: $(jq -c '[.state, .targets[0].state, .targets[0].error]' <<<"$BODY")"
	for _ in $(seq 1 50); do
		pgrep -f "^$MARK2" >/dev/null || break
		sleep 0.1
	done
	pgrep -f "^$MARK2" >/dev/null && fail "the build outlived its killed worker"
	no_work_left && ok "the tree of a SIGKILLed worker was reclaimed and removed" ||
		fail "after killing the worker: $(find "$STATE/work" -exec stat -c '%u %a %n' {} + | head -5)"
else
	fail "no kiln-worker child of kilnd ($KPID) found"
fi
stop_kilnd TERM

# Where systemd would keep setuid newuidmap from working (a bounding set
# without CAP_SYS_ADMIN and CAP_DAC_OVERRIDE, or no_new_privs), kilnd's
# start line says so, and a job fails naming newuidmap.
for how in "--bounding-set=-all,+setuid,+setgid" --no-new-privs; do
	KILND_WRAPPER="setpriv --reuid=$USUB --regid=$USUB --init-groups $how
		env HOME=$T/home-$USUB"
	start_kilnd -c "$T/k.conf"
	LINE=$(grep "builds cannot run: the subordinate ids of user $USUB" "$KLOG")
	job "echo should-not-run"
	wait_job "$JID" 60
	ERR=$(jq -r '.targets[0].error' <<<"$BODY")
	echo "# $LINE"
	if [ -n "$LINE" ] && [[ "$LINE" == *CapabilityBoundingSet* ]] &&
		[[ "$ERR" == *newuidmap* || "$ERR" == *no_new_privs* ]] &&
		[ "$(jq -r '.targets[0].state' <<<"$BODY")" = failed ]; then
		ok "setpriv $how: kilnd says builds cannot run, the job fails: $ERR"
	else
		fail "setpriv $how: start line '$LINE', job $(jq -c '.targets[0]' <<<"$BODY")"
	fi
	stop_kilnd TERM
done

# The deps step's module cache (a worker run by hand, as kilnd would):
# handed to the subordinate ids and recorded beside the cache.
# The mirror that has the commit: the state holds one per repository, and
# the order find lists them in is the file system's.
MIRROR=
for m in "$STATE"/mirrors/*.git; do
	git -c safe.directory="*" --git-dir="$m" cat-file -e "$SHA^{commit}" 2>/dev/null &&
		{ MIRROR=$m; break; }
done
mkdir -p "$STATE/gomod-test/old"
chown -R "$USUB:" "$STATE/gomod-test"
setpriv --reuid="$USUB" --regid="$USUB" --init-groups env HOME="$T/home-$USUB" \
	"$T/bin/kiln-worker" build --mirror "$MIRROR" --commit "$SHA" \
	--root "$STATE/work/deps" --target linux/amd64 --timeout 30 \
	--modcache "$STATE/gomod-test" --modcache-rw --status-fd 3 \
	--env PATH=/usr/bin:/bin -- /bin/sh -c 'mkdir /gomod/new && echo m > /gomod/new/m' \
	3>"$T/deps.status" >"$T/deps.log" 2>&1
if [ "$(cat "$T/deps.status")" = '{"status":"exited","code":0}' ] &&
	[ "$(stat -c %u "$STATE/gomod-test/old")" = "$SUB" ] &&
	[ "$(stat -c %u "$STATE/gomod-test/new/m")" = "$SUB" ] &&
	[ "$(cat "$STATE/gomod-test.owner")" = "$SUB:$SUB" ] &&
	[ "$(stat -c %u "$STATE/work/deps/out")" = "$UID_SUB" ]; then
	ok "the module cache goes to the subordinate ids (recorded), the work tree back"
else
	fail "deps step: $(cat "$T/deps.status" "$T/deps.log"; stat -c '%u %n' "$STATE/gomod-test"/* "$STATE/work/deps/out")"
fi

# --- a user without a range ------------------------------------------------------

STATE=$T/state-none
mkdir -p "$STATE"
chown -R "$UNONE:" "$REPO" "$STATE"
chmod 750 "$STATE"
as_user "$UNONE"
start_kilnd -c "$T/k.conf"
N=$(grep -c "builds refused: /etc/subuid has no range for user $UNONE" "$KLOG")
if [ "$N" = 1 ] && grep "builds refused" "$KLOG" | grep -q allow_same_uid_builds; then
	ok "kilnd without a range says so at start, once, naming /etc/subuid and allow_same_uid_builds"
else
	fail "start log ($N lines): $(grep -i build "$KLOG" | head -5)"
fi
job "echo should-not-run"
wait_job "$JID" 60
ERR=$(jq -r '.targets[0].error' <<<"$BODY")
LOG=$(curl -s "$URL/v1/jobs/$JID/targets/linux_amd64/log")
if [ "$(jq -r '.targets[0].state' <<<"$BODY")" = failed ] &&
	[[ "$ERR" == *"/etc/subuid"* ]] && [[ "$ERR" == *allow_same_uid_builds* ]] &&
	! grep -qx should-not-run <<<"$LOG"; then
	ok "its job fails without running: $ERR"
else
	fail "job without a range: $(jq -c '.targets[0]' <<<"$BODY"); log: $LOG"
fi
stop_kilnd TERM

printf '[kilnd]\nallow_local_repos = yes\nbuild_timeout = 120\nallow_same_uid_builds = yes\n' > "$T/same.conf"
start_kilnd -c "$T/same.conf"
grep -q "builds run as kilnd's own uid $UID_NONE (allow_same_uid_builds = yes)" "$KLOG" &&
	ok "with allow_same_uid_builds = yes kilnd warns at start" ||
	fail "start log: $(grep -i build "$KLOG" | head -5)"
MARK3=kiln-same-$$
job "echo same > /out/same.txt; exec bash -c 'exec -a $MARK3 sleep 2'"
HOST=$(host_status "$MARK3" | tr '\t' ' ' | tr -s ' ')
wait_job "$JID" 120
expect_json '.targets[0].state' succeeded "allow_same_uid_builds = yes: the build runs"
[[ "$HOST" == *"Uid: $UID_NONE $UID_NONE $UID_NONE $UID_NONE"* ]] &&
	ok "... as kilnd's own uid $UID_NONE, as the key says" ||
	fail "allowed same-uid build ran as: '$HOST'"
F=$(out_file "$JID" linux_amd64 same.txt)
[ -n "$F" ] && [ "$(cat "$F")" = same ] && ok "and its artifact is published" ||
	fail "same-uid artifact: $BODY"
stop_kilnd TERM

finish
