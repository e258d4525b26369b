/*
 * The build's system-call filter (libseccomp 2.5).  The namespaces already
 * take away what a build could reach; the filter takes away the kernel
 * interfaces that are the usual way out of a namespace sandbox, or that a
 * build never needs and that have a history of privilege-escalation bugs.
 * Default allow: compilers, go, make and shells use a large and changing
 * set of calls, and an allowlist would break builds in ways that are hard
 * to diagnose.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <seccomp.h>

#include "sandbox.h"

/* Denied with EPERM, as if the build lacked the privilege. */
static const char *const denied[] = {
	/* The mount tree is fixed: no mounting over /src, no escaping it. */
	"mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount",
	"fspick", "move_mount", "open_tree", "mount_setattr",
	/* No reaching into other processes of the build or the worker. */
	"ptrace", "process_vm_readv", "process_vm_writev",
	/* No new namespaces (nested user namespaces give back capabilities
	 * over new objects), no joining others. */
	"setns", "unshare",
	/* Kernel attack surface a build has no use for. */
	"bpf", "perf_event_open", "userfaultfd",
	"keyctl", "add_key", "request_key",
	"kexec_load", "kexec_file_load", "reboot",
	"init_module", "finit_module", "delete_module",
	"swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
	/* File handles bypass the mount tree (they open by inode). */
	"open_by_handle_at", "name_to_handle_at",
	/* io_uring: a second system-call interface that this filter cannot
	 * see into, and a frequent source of kernel bugs; builds use none. */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
};

/* clone(2) flags that create namespaces. */
static const unsigned long clone_ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

int
sandbox_seccomp_apply(char *err, size_t errsize)
{
	scmp_filter_ctx ctx;
	int rc, ret = -1;
	const char *what = "seccomp_init";

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL) {
		snprintf(err, errsize, "seccomp_init failed");
		return -1;
	}
	/*
	 * Only the native ABI: a build could otherwise reach the kernel through
	 * the i386 or x32 entry points, where the numbers and this filter's
	 * rules do not match.  A call from a foreign ABI kills the process.
	 */
	what = "SCMP_FLTATR_ACT_BADARCH";
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc != 0)
		goto out;

	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		what = denied[i];
		if (nr == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (rc != 0)
			goto out;
	}

	/*
	 * clone(2) with any CLONE_NEW* flag: the flags are the first argument
	 * on the architectures we build on (not on s390).  One rule per flag,
	 * as rules for one call are OR'ed.
	 */
	what = "clone";
	for (size_t i = 0; i < sizeof clone_ns_flags / sizeof clone_ns_flags[0];
	    i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i],
		    clone_ns_flags[i]));
		if (rc != 0)
			goto out;
	}
	/*
	 * clone3(2) passes its flags in memory, which seccomp cannot read:
	 * answer ENOSYS so that glibc falls back to clone(2), filtered above.
	 */
	what = "clone3";
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc != 0)
		goto out;
	/*
	 * TIOCSTI pushes bytes into a terminal's input: a build started from an
	 * operator's terminal could type commands into the operator's shell.
	 */
	what = "ioctl(TIOCSTI)";
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
	if (rc != 0)
		goto out;

	/* Also sets no_new_privs (SCMP_FLTATR_CTL_NNP defaults to on). */
	what = "seccomp_load";
	rc = seccomp_load(ctx);
	if (rc != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0)
		snprintf(err, errsize, "seccomp: %s: %s", what, strerror(-rc));
	seccomp_release(ctx);
	return ret;
}
