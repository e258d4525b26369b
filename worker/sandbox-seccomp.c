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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

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

/*
 * The socket families a build may open: local sockets, IPv4 and IPv6,
 * and netlink, which the C library and Go use to list interfaces and
 * routes.  Every other family is refused.  Namespaces do not separate
 * them all: AF_VSOCK reaches the services of a virtual machine's host
 * whatever the network namespace, and AF_PACKET, AF_BLUETOOTH, AF_CAN,
 * AF_RDS, AF_TIPC and their like are kernel code a build has no use for.
 */
static const int socket_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
/* Above every family the kernel knows (AF_MAX is 46 in Linux 6.x). */
#define SOCKET_FAMILY_LIMIT 64

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
	 * socket(2) and socketpair(2) of any other family: EAFNOSUPPORT, what
	 * a kernel built without that family answers, so a program that
	 * probes for one takes the path it takes on such a kernel; EPERM
	 * would read as a broken sandbox and make some fail instead.  One
	 * rule per refused value (rules for one call are OR'ed, comparisons
	 * within one rule AND'ed); the last catches every larger value, and
	 * with it any value with bits above the 32 that the kernel reads.
	 */
	for (int nr = 0; nr < 2; nr++) {
		int call = nr == 0 ? SCMP_SYS(socket) : SCMP_SYS(socketpair);

		what = nr == 0 ? "socket" : "socketpair";
		for (int fam = 0; fam < SOCKET_FAMILY_LIMIT; fam++) {
			bool allowed = false;
			for (size_t i = 0; i < sizeof socket_families /
			    sizeof socket_families[0]; i++)
				if (socket_families[i] == fam)
					allowed = true;
			if (allowed)
				continue;
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
			    call, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fam));
			if (rc != 0)
				goto out;
		}
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), call, 1,
		    SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)SOCKET_FAMILY_LIMIT));
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
