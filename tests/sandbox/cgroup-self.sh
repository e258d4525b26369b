#!/bin/bash
# kilnd in a delegated cgroup v2 group (kilnd.service has Delegate=yes):
# at start it moves itself into GROUP/supervisor and enables the build
# controllers in GROUP, in that order, since v2 enables controllers for a
# group's children only while the group holds no process.  A group that
# is not delegated is left alone, and so is a v1 or hybrid hierarchy;
# each case is said once in the log.
#
# How, on any host, as root: in a private mount namespace (unshare -m) a
# cgroup2 hierarchy is mounted over /sys/fs/cgroup, so that kilnd and
# kiln-worker see a pure v2 host.  GROUP is made as systemd makes a
# service's group: with the trusted.delegate attribute (systemd >= 251)
# for a root kilnd, or owned by the service's user for a kilnd run as
# that user; the controllers GROUP offers are enabled in the root's
# cgroup.subtree_control.  Where memory and pids are bound to v1
# hierarchies (a hybrid host) the v2 mount cannot offer them: another
# controller it offers stands in (KILND_TEST_CGROUP_CONTROLLERS), and the
# builds' own memory and pids limits are checked only where v2 has both.
# The groups are made in the host's real v2 hierarchy and removed at exit.
set -uo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (mounts cgroup2 in a private mount namespace)"
	exit 77
fi
for tool in unshare setpriv python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
if [ -z "${KILN_CGROUP_SELF_NS:-}" ]; then
	KILN_CGROUP_SELF_NS=1 exec unshare -m --propagation private \
		bash "$0" "$@"
fi

. "$(dirname "$0")/../integration/lib.sh"

CG=/sys/fs/cgroup
GROUPS_MADE=()
ROOT_ADDED=
cleanup_groups() {
	local g p
	set +e
	for g in "${GROUPS_MADE[@]}"; do
		[ -d "$g" ] || continue
		for p in $(cat "$g"/*/cgroup.procs "$g/cgroup.procs" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		sleep 0.2
		for p in "$g"/*/; do [ -d "$p" ] && rmdir "$p"; done
		rmdir "$g" 2>/dev/null || echo "# could not remove $g" >&2
	done
	for c in $ROOT_ADDED; do
		echo "-$c" >"$CG/cgroup.subtree_control" 2>/dev/null
	done
}
trap 'cleanup; cleanup_groups' EXIT

# in_group DIR CMD...: run CMD as the only process of the cgroup DIR.
cat >"$T/in-group" <<'SH'
#!/bin/sh
g=$1; shift
echo $$ >"$g/cgroup.procs" || exit 111
exec "$@"
SH
chmod 755 "$T/in-group"

# kilnd's group, as /proc/PID/cgroup shows it in the v2 hierarchy.
group_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }

# --- the host as it is -------------------------------------------------------

if [ ! -e "$CG/cgroup.controllers" ]; then
	start_kilnd
	if grep -q "info: cgroups: $CG is not a cgroup v2 hierarchy (v1 or hybrid)" "$KLOG"; then
		ok "v1/hybrid host: kilnd says so and stays in $(group_of "$KPID")"
	else
		fail "v1/hybrid host: no such line in the log: $(grep cgroups "$KLOG")"
	fi
	stop_kilnd TERM
	HOST=hybrid
else
	echo "# the host is cgroup v2: the v1/hybrid case is not checked here"
	HOST=v2
fi

# --- a pure v2 view ----------------------------------------------------------

if [ "$HOST" = v2 ]; then
	echo "# $CG is the host's own cgroup2 mount"
elif ! mount -t cgroup2 cgroup2 "$CG" 2>"$T/mount.err"; then
	echo "SKIP: cannot mount cgroup2: $(cat "$T/mount.err")"
	exit 77
fi
avail=$(cat "$CG/cgroup.controllers")
if [[ " $avail " == *" memory "* && " $avail " == *" pids "* ]]; then
	WANT="memory pids"
	unset KILND_TEST_CGROUP_CONTROLLERS
else
	WANT=
	for c in hugetlb io cpu cpuset misc rdma; do
		[[ " $avail " == *" $c "* ]] && { WANT=$c; break; }
	done
	if [ -z "$WANT" ]; then
		echo "SKIP: the cgroup2 hierarchy offers no controller ($avail)"
		exit 77
	fi
	export KILND_TEST_CGROUP_CONTROLLERS=$WANT
	echo "# memory and pids are not in this v2 hierarchy ($avail): $WANT stands in"
fi
for c in $WANT; do
	if ! grep -qw "$c" "$CG/cgroup.subtree_control"; then
		echo "+$c" >"$CG/cgroup.subtree_control" || fail "cannot enable $c at the root"
		ROOT_ADDED="$ROOT_ADDED $c"
	fi
done

new_group() {
	local g=$CG/kiln-test-$$-$1
	mkdir "$g" || { fail "mkdir $g"; return 1; }
	GROUPS_MADE+=("$g")
	G=$g
}

# The conf of every kilnd here: small limits that the build check reads.
printf '[kilnd]\nallow_local_repos = yes\nbuild_memory = 256M\nbuild_pids = 128\n' >"$T/cg.conf"

# --- not delegated: left alone ----------------------------------------------

new_group plain
KILND_WRAPPER="$T/in-group $G ${KILND_WRAPPER:-}" start_kilnd -c "$T/cg.conf"
if [ "$(group_of "$KPID")" = "/${G#"$CG"/}" ] && [ ! -e "$G/supervisor" ] &&
	grep -q "info: cgroups: v2; /${G#"$CG"/} is not delegated to kilnd (Delegate=yes in kilnd.service)" "$KLOG"; then
	ok "a group without delegation is left alone, and the log says why"
else
	fail "not delegated: kilnd in $(group_of "$KPID"); $(grep cgroups "$KLOG")"
fi
stop_kilnd TERM

# --- delegated, root kilnd (trusted.delegate, as systemd >= 251 marks it) ---

check_moved() {
	local what=$1 own=/${G#"$CG"/} procs
	procs=$(cat "$G/cgroup.procs")
	if [ "$(group_of "$KPID")" = "$own/supervisor" ] && [ -z "$procs" ]; then
		ok "$what: kilnd moved into $own/supervisor; $own holds no process"
	else
		fail "$what: kilnd in $(group_of "$KPID"), $own holds '$procs'"
	fi
	for c in $WANT; do
		grep -qw "$c" "$G/cgroup.subtree_control" &&
			ok "$what: $c enabled for the groups below $own" ||
			fail "$what: $c not in $own/cgroup.subtree_control: $(cat "$G/cgroup.subtree_control")"
	done
	if grep -q "info: cgroups: v2, $own delegated: kilnd moved into $own/supervisor; enabled +${WANT// / +} for the build groups next to it" "$KLOG"; then
		ok "$what: the log says what was done"
	else
		fail "$what: log: $(grep cgroups "$KLOG")"
	fi
	# Why the order matters: the kernel refuses controllers for the
	# children of a group with a process in it.
	if echo "+${WANT%% *}" 2>"$T/ebusy" >"$G/supervisor/cgroup.subtree_control"; then
		fail "$what: the kernel let a group with a process enable ${WANT%% *}"
	elif grep -q 'busy' "$T/ebusy"; then
		ok "$what: the kernel refuses +${WANT%% *} in supervisor, which holds kilnd (EBUSY)"
	else
		fail "$what: unexpected error: $(cat "$T/ebusy")"
	fi
}

new_group root
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.delegate", b"1")' "$G" ||
	fail "cannot set trusted.delegate on $G"
KILND_WRAPPER="$T/in-group $G ${KILND_WRAPPER:-}" start_kilnd -c "$T/cg.conf" -w 1
check_moved "root, trusted.delegate"

# A build gets its own group next to the supervisor, with the limits.
if [ "$WANT" = "memory pids" ]; then
	mkdir -p "$T/src"; echo x >"$T/src/README"
	REPO=$(make_repo cg "$T/src")
	post_job "$(jq -cn --arg r "$REPO" '{repo: $r, ref: "main",
		targets: ["linux/amd64"], recipe: {kind: "command", command: "sleep 4"}}')"
	RID=$(jq -r .id <<<"$BODY")
	seen=
	for _ in $(seq 1 150); do
		for b in "$G"/kiln-*/; do
			[ -f "$b/memory.max" ] || continue
			seen="$(cat "$b/memory.max") $(cat "$b/pids.max") $(wc -w <"$b/cgroup.procs")"
		done
		[ -n "$seen" ] && break
		sleep 0.1
	done
	wait_job "$RID" 60
	if [ "$seen" = "$((256 << 20)) 128 1" ] || [[ "$seen" == "$((256 << 20)) 128 "[1-9]* ]]; then
		ok "a build ran in a group next to the supervisor: memory.max, pids.max, procs = $seen"
	else
		fail "no build group with memory.max 268435456 and pids.max 128 under $G: '$seen'"
	fi
	expect_json '.state' succeeded "the build under the v2 group"
else
	echo "# memory and pids are bound to v1 here: build limits under v2 not checked"
fi
stop_kilnd TERM

# --- delegated, kilnd as its own user (the group is chowned to it) ----------

new_group user
U=65534
chown "$U" "$G" "$G/cgroup.procs" "$G/cgroup.subtree_control" "$G/cgroup.threads"
chmod 711 "$T"
mkdir -p "$T/ustate"
chown "$U" "$T/ustate"
SAVED_STATE=$STATE
STATE=$T/ustate
# Not a service (no INVOCATION_ID): a group the user owns may be the
# scope of its terminal, and kilnd stays where it is.
KILND_WRAPPER="$T/in-group $G env -u INVOCATION_ID setpriv --reuid=$U --regid=$U --clear-groups ${KILND_WRAPPER:-}" \
	start_kilnd -c "$T/cg.conf"
if [ "$(group_of "$KPID")" = "/${G#"$CG"/}" ] && [ ! -e "$G/supervisor" ]; then
	ok "uid $U, owner of its group but not a service: left alone"
else
	fail "not a service: kilnd in $(group_of "$KPID"); $(grep cgroups "$KLOG")"
fi
stop_kilnd TERM
# As a systemd service (which sets INVOCATION_ID).
KILND_WRAPPER="$T/in-group $G env INVOCATION_ID=kiln-test-$$ setpriv --reuid=$U --regid=$U --clear-groups ${KILND_WRAPPER:-}" \
	start_kilnd -c "$T/cg.conf"
STATE=$SAVED_STATE
[ "$(awk '/^Uid:/ { print $2 }' "/proc/$KPID/status")" = "$U" ] ||
	fail "kilnd does not run as uid $U"
check_moved "uid $U, owner of its group"
stop_kilnd TERM

finish
