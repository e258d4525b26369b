/*
 * The network of a `network = yes` build: a network namespace of its own,
 * connected to the outside by slirp4netns, with none of the host's own
 * addresses reachable from inside.
 *
 * slirp4netns is user-mode networking: tap0 inside the build's namespace,
 * and outside an ordinary process that makes plain connect(2)s in the
 * host's namespace for what the build sends.  Hence:
 *
 * - --disable-host-loopback: the gateway 10.0.2.2 (and 255.255.255.255)
 *   are refused instead of being mapped to the host's 127.0.0.1.  The
 *   build's own 127.0.0.1 is its own loopback.
 * - Every other destination is connected to from the host's namespace, so
 *   the host's other addresses (eth0's, docker0's, a veth's) would reach
 *   the services that listen on 0.0.0.0, kilnd among them.  pid 1 gives
 *   each of them a prohibit route in the build's namespace, before the
 *   build starts and before capabilities are dropped: the build can never
 *   take them away.  The addresses are collected here by the worker, in
 *   the host's namespace (pid 1 sees only its own).
 * - 10.0.2.3 forwards port 53, and nothing else, to the host's resolver.
 * - IPv6 stays off (no --enable-ipv6): the build has no IPv6 route out.
 *
 * slirp4netns confines itself (--enable-sandbox: its own mount namespace
 * with /etc and /run only, capabilities dropped; --enable-seccomp), in a
 * mount namespace of ours that hides the host's /etc and /run from it
 * (hide_host_files).  It never outlives the build: it dies with the worker
 * (parent-death signal), exits when the worker closes its exit fd, is in
 * the build's cgroups, and is killed otherwise, with its process group.
 *
 * As another user than root, slirp4netns's sandbox needs uid 0 mapped in
 * the build's user namespace, which it is not: network builds then fail
 * (they never run without the sandbox, nor with the host's network).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "sandbox.h"
#include "worker.h"
#include "xmalloc.h"

/* How long slirp4netns may take to configure tap0 (it takes milliseconds). */
#define SLIRP_READY_MS 15000
/* How long it may take to leave once its exit fd is closed. */
#define SLIRP_EXIT_MS 1000
/* The first bytes of its stderr are kept, to say why it failed. */
#define SLIRP_LOG_MAX 16384

#define SLIRP_NEEDS "network = yes needs slirp4netns (Debian package " \
	"slirp4netns)"
#define SLIRP_NO_FALLBACK "; the build does not fall back to the host's " \
	"network"

struct hostaddr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned prefix;	/* bits */
	unsigned char addr[16];
};

struct sandbox_hostaddrs {
	size_t n;
	struct hostaddr v[];
};

struct sandbox_slirp {
	pid_t pid;
	int exit_wr;		/* closing it makes slirp4netns exit */
	bool reaped;
};

/*
 * Blocked for every network build besides the host's addresses: cloud
 * metadata services (169.254.169.254) hand the host's credentials to any
 * process of the host that asks, and slirp4netns asks from the host.
 */
static const struct hostaddr always_blocked[] = {
	{ AF_INET, 16, { 169, 254 } },
};

/* --- the host's addresses ---------------------------------------------------- */

static bool
is_loopback(int family, const unsigned char *a)
{
	/* The build's own loopback answers these inside; nothing to block. */
	if (family == AF_INET)
		return a[0] == 127;
	return memcmp(a, &in6addr_loopback, 16) == 0;
}

static void
add_addr(struct sandbox_hostaddrs **h, size_t *cap, const struct hostaddr *a)
{
	if (is_loopback(a->family, a->addr))
		return;
	for (size_t j = 0; j < (*h)->n; j++)
		if (memcmp(&(*h)->v[j], a, sizeof *a) == 0)
			return;
	if ((*h)->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*h = xrealloc(*h, sizeof **h + *cap * sizeof (*h)->v[0]);
	}
	(*h)->v[(*h)->n++] = *a;
}

/*
 * The host's local destinations from its routing tables: a `local` route
 * (AnyIP: `ip route add local 198.51.100.0/24 dev lo`) makes a whole
 * prefix the host's own without any interface holding it, and broadcast
 * and anycast routes of the host answer too.  getifaddrs(3) shows none
 * of that; the kernel's own table does.
 */
static int
add_local_routes(struct sandbox_hostaddrs **h, size_t *cap, char *err,
    size_t errsize)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
	} req;
	char buf[16384];
	int fd, ret = -1;
	bool done = false;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		snprintf(err, errsize, "cannot read the host's routes: %s",
		    strerror(errno));
		return -1;
	}
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.rt);
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = 1;
	req.rt.rtm_family = AF_UNSPEC;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		snprintf(err, errsize, "cannot read the host's routes: %s",
		    strerror(errno));
		goto out;
	}
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		struct nlmsghdr *nh = (struct nlmsghdr *)(void *)buf;
		size_t len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errsize, "cannot read the host's routes: "
			    "%s", n < 0 ? strerror(errno) : "end of data");
			goto out;
		}
		len = (size_t)n;
		for (; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
			struct rtmsg *rt = NLMSG_DATA(nh);
			struct rtattr *ra;
			size_t alen;
			struct hostaddr a;

			if (nh->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (nh->nlmsg_type == NLMSG_ERROR) {
				snprintf(err, errsize, "cannot read the host's "
				    "routes: the kernel refused the dump");
				goto out;
			}
			if (nh->nlmsg_type != RTM_NEWROUTE ||
			    (rt->rtm_type != RTN_LOCAL &&
			    rt->rtm_type != RTN_BROADCAST &&
			    rt->rtm_type != RTN_ANYCAST) ||
			    (rt->rtm_family != AF_INET &&
			    rt->rtm_family != AF_INET6))
				continue;
			memset(&a, 0, sizeof a);
			a.family = rt->rtm_family;
			a.prefix = rt->rtm_dst_len;
			alen = a.family == AF_INET ? 4 : 16;
			ra = RTM_RTA(rt);
			for (size_t l = RTM_PAYLOAD(nh); RTA_OK(ra, l);
			    ra = RTA_NEXT(ra, l))
				if (ra->rta_type == RTA_DST &&
				    RTA_PAYLOAD(ra) == alen)
					memcpy(a.addr, RTA_DATA(ra), alen);
			/* A dst-less route is the whole family: not a
			 * local destination kind that has one. */
			if (a.prefix > alen * 8 || a.prefix == 0)
				continue;
			add_addr(h, cap, &a);
		}
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

int
sandbox_hostaddrs_collect(struct sandbox_hostaddrs **out, char *err,
    size_t errsize)
{
	struct ifaddrs *list = NULL, *i;
	struct sandbox_hostaddrs *h;
	size_t cap = 0;

	if (getifaddrs(&list) != 0) {
		snprintf(err, errsize, "cannot list the host's addresses "
		    "(getifaddrs): %s", strerror(errno));
		return -1;
	}
	h = xcalloc(1, sizeof *h);
	for (i = list; i != NULL; i = i->ifa_next) {
		struct hostaddr a;

		if (i->ifa_addr == NULL)
			continue;
		memset(&a, 0, sizeof a);
		a.family = i->ifa_addr->sa_family;
		if (a.family == AF_INET) {
			memcpy(a.addr, &((struct sockaddr_in *)(void *)
			    i->ifa_addr)->sin_addr, 4);
			a.prefix = 32;
		} else if (a.family == AF_INET6) {
			memcpy(a.addr, &((struct sockaddr_in6 *)(void *)
			    i->ifa_addr)->sin6_addr, 16);
			a.prefix = 128;
		} else
			continue;
		add_addr(&h, &cap, &a);
	}
	freeifaddrs(list);
	if (add_local_routes(&h, &cap, err, errsize) != 0) {
		free(h);
		return -1;
	}
	*out = h;
	return 0;
}

void
sandbox_hostaddrs_free(struct sandbox_hostaddrs *h)
{
	free(h);
}

/* --- prohibit routes, in pid 1 ---------------------------------------------- */

/*
 * RTM_NEWROUTE of type RTN_PROHIBIT for a->addr/a->prefix in the main
 * table: connect(2) to it fails with EACCES and nothing leaves tap0.
 * Messages name the family, never the address: the build's log is no
 * place for the host's addresses.
 */
static int
add_prohibit(int fd, uint32_t seq, const struct hostaddr *a, char *err,
    size_t errsize)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
		unsigned char attrs[RTA_SPACE(16)];
	} req;
	union {
		struct nlmsghdr nh;
		unsigned char buf[1024];
	} ack;
	size_t alen = a->family == AF_INET ? 4 : 16;
	const char *fam = a->family == AF_INET ? "IPv4" : "IPv6";
	struct rtattr *rta;
	struct nlmsgerr *e;
	ssize_t n;

	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.rt) + RTA_SPACE(alen);
	req.nh.nlmsg_type = RTM_NEWROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE |
	    NLM_F_EXCL;
	req.nh.nlmsg_seq = seq;
	req.rt.rtm_family = (unsigned char)a->family;
	req.rt.rtm_dst_len = (unsigned char)a->prefix;
	req.rt.rtm_table = RT_TABLE_MAIN;
	req.rt.rtm_protocol = RTPROT_STATIC;
	req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
	req.rt.rtm_type = RTN_PROHIBIT;
	rta = (struct rtattr *)(void *)((unsigned char *)&req +
	    NLMSG_ALIGN(NLMSG_LENGTH(sizeof req.rt)));
	rta->rta_type = RTA_DST;
	rta->rta_len = RTA_LENGTH(alen);
	memcpy(RTA_DATA(rta), a->addr, alen);

	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		snprintf(err, errsize, "cannot make the host's %s addresses "
		    "unreachable: netlink: %s", fam, strerror(errno));
		return -1;
	}
	for (;;) {
		do
			n = recv(fd, &ack, sizeof ack, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0 || !NLMSG_OK(&ack.nh, (size_t)n)) {
			snprintf(err, errsize, "cannot make the host's %s "
			    "addresses unreachable: netlink: %s", fam,
			    n < 0 ? strerror(errno) : "short answer");
			return -1;
		}
		if (ack.nh.nlmsg_seq == seq && ack.nh.nlmsg_type == NLMSG_ERROR)
			break;
	}
	e = NLMSG_DATA(&ack.nh);
	if (ack.nh.nlmsg_len < NLMSG_LENGTH(sizeof *e)) {
		snprintf(err, errsize, "cannot make the host's %s addresses "
		    "unreachable: netlink: short answer", fam);
		return -1;
	}
	/* Twice the same route: one is enough.  A kernel without IPv6
	 * has no IPv6 to reach the host with. */
	if (e->error == 0 || e->error == -EEXIST ||
	    (a->family == AF_INET6 && e->error == -EAFNOSUPPORT))
		return 0;
	snprintf(err, errsize, "cannot make the host's %s addresses "
	    "unreachable: %s", fam, strerror(-e->error));
	return -1;
}

int
sandbox_net_block_host(const struct sandbox_hostaddrs *h, char *err,
    size_t errsize)
{
	struct sockaddr_nl kernel;
	uint32_t seq = 1;
	int fd, ret = -1;

	if (h == NULL) {
		snprintf(err, errsize, "the host's addresses were not collected");
		return -1;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		snprintf(err, errsize, "netlink socket: %s", strerror(errno));
		return -1;
	}
	memset(&kernel, 0, sizeof kernel);
	kernel.nl_family = AF_NETLINK;
	if (connect(fd, (struct sockaddr *)&kernel, sizeof kernel) != 0) {
		snprintf(err, errsize, "netlink connect: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < h->n; i++)
		if (add_prohibit(fd, seq++, &h->v[i], err, errsize) != 0)
			goto out;
	for (size_t i = 0; i < sizeof always_blocked / sizeof always_blocked[0];
	    i++)
		if (add_prohibit(fd, seq++, &always_blocked[i], err,
		    errsize) != 0)
			goto out;
	ret = 0;
out:
	close(fd);
	return ret;
}

/* --- slirp4netns, in the worker ---------------------------------------------- */

/*
 * /usr/bin or /bin, never kilnd's PATH: what runs as root beside every
 * network build is the distribution's binary.  `program` (the worker's
 * KILN_SLIRP4NETNS, for tests) replaces it.  Messages do not repeat that
 * path: it is the host's.
 */
static int
find_slirp(char *path, size_t size, const char *program, char *err,
    size_t errsize)
{
	static const char *const dirs[] = { "/usr/bin", "/bin" };

	if (program != NULL) {
		if (program[0] == '/' && strlen(program) < size &&
		    access(program, X_OK) == 0) {
			snprintf(path, size, "%s", program);
			return 0;
		}
		snprintf(err, errsize, "%s, and KILN_SLIRP4NETNS names no "
		    "executable file%s", SLIRP_NEEDS, SLIRP_NO_FALLBACK);
		return -1;
	}
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, size, "%s/slirp4netns", dirs[i]);
		if (access(path, X_OK) == 0)
			return 0;
	}
	snprintf(err, errsize, "%s, which is not installed (not in /usr/bin "
	    "or /bin)%s", SLIRP_NEEDS, SLIRP_NO_FALLBACK);
	return -1;
}

static void __attribute__((noreturn))
child_die(const char *what)
{
	dprintf(2, "%s: %s\n", what, strerror(errno));
	_exit(127);
}

/*
 * As root, slirp4netns is started in a mount namespace of ours, private
 * all through, for two reasons:
 *
 * - Its sandbox (1.2.0) unshares a mount namespace and lazily unmounts
 *   the old root with part of the tree still shared: started from the
 *   host's namespace, that unmount propagated back and took the host's
 *   `ip netns` mounts under /run away (tried here).  Nothing propagates
 *   out of a private namespace.
 * - Its sandbox runs it as uid 0 with no capability but
 *   CAP_NET_BIND_SERVICE, with the host's /etc and /run read-only: uid 0
 *   still reads root's files there (kilnd.conf and its secrets) and
 *   connects to root's sockets under /run (a container engine's), which
 *   a flaw in its packet parsing would hand to a build.  Here /etc holds
 *   only a copy of resolv.conf (its DNS forwarder reads it) and the
 *   dynamic linker's cache, and /run is empty.
 *
 * In the child, before exec; errors go to its stderr (the log).
 */
static void
hide_host_files(void)
{
	char resolv[8192];
	ssize_t n = 0;
	int fd, cache;

	/* Through any symlink (into /run, for systemd-resolved). */
	if ((fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, resolv, sizeof resolv);
		close(fd);
	}
	if (n < 0)
		n = 0;
	if (unshare(CLONE_NEWNS) != 0)
		child_die("slirp4netns's mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		child_die("slirp4netns's mount namespace: make / private");
	/* O_PATH in this namespace (binds across namespaces are refused)
	 * and before the tmpfs hides it. */
	cache = open("/etc/ld.so.cache", O_PATH | O_CLOEXEC);
	if (mount("tmpfs", "/etc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "mode=0755,size=64k,nr_inodes=16") != 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "mode=0755,size=4k,nr_inodes=4") != 0)
		child_die("slirp4netns's /etc and /run");
	fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644);
	if (fd < 0 || worker_write_all(fd, resolv, (size_t)n) != 0)
		child_die("slirp4netns's /etc/resolv.conf");
	close(fd);
	if (cache >= 0) {
		char src[64];

		fd = open("/etc/ld.so.cache", O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0644);
		if (fd < 0)
			child_die("slirp4netns's /etc/ld.so.cache");
		close(fd);
		snprintf(src, sizeof src, "/proc/self/fd/%d", cache);
		if (mount(src, "/etc/ld.so.cache", NULL, MS_BIND, NULL) != 0 ||
		    mount(NULL, "/etc/ld.so.cache", NULL, MS_REMOUNT | MS_BIND |
		    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			child_die("slirp4netns's /etc/ld.so.cache");
		close(cache);
	}
	if (mount(NULL, "/etc", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID |
	    MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=16") != 0)
		child_die("slirp4netns's /etc read-only");
}

/*
 * The child: fds 0 and 1 /dev/null, 2 the log, 3 the ready pipe, 4 the
 * exit pipe, nothing else; default signals; dies with the worker.
 */
static void __attribute__((noreturn))
exec_slirp(const char *path, char *const argv[], pid_t worker,
    const int fds[5])
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		NULL };
	sigset_t none;
	int high[5];

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != worker)
		_exit(127);
	/* Its own process group: what it forks is killed with it. */
	(void)setpgid(0, 0);
	/* The worker ignores SIGPIPE and blocks SIGTERM, SIGINT, SIGCHLD;
	 * exec would keep both. */
	for (int sig = 1; sig < NSIG; sig++)
		(void)signal(sig, SIG_DFL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* Up and out of the way first: a source may sit on 0..4. */
	for (int i = 0; i < 5; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 16)) < 0)
			_exit(127);
	for (int i = 0; i < 5; i++)
		if (dup2(high[i], i) != i)
			_exit(127);
	(void)close_range(5, ~0U, 0);
	if (geteuid() == 0)
		hide_host_files();
	execve(path, argv, envp);
	dprintf(2, "cannot execute slirp4netns: %s\n", strerror(errno));
	_exit(127);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the "1" slirp4netns writes once tap0 is up: 0, or -1 when it
 * closed the pipe (it exited) or did not write in time. */
static int
wait_ready(int fd, bool *timed_out)
{
	int64_t deadline = mono_ms() + SLIRP_READY_MS;
	char c;

	*timed_out = false;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - mono_ms();
		ssize_t n;
		int rc;

		if (left <= 0) {
			*timed_out = true;
			return -1;
		}
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		return n == 1 && c == '1' ? 0 : -1;
	}
}

/* The end of what slirp4netns wrote to stderr, its lines joined by "; ". */
static void
log_tail(int fd, char *out, size_t outsize)
{
	char buf[SLIRP_LOG_MAX];
	off_t end = lseek(fd, 0, SEEK_CUR);
	size_t len, start, o = 0;
	ssize_t n;

	out[0] = '\0';
	if (end <= 0 || outsize < 2)
		return;
	if (end > SLIRP_LOG_MAX)
		end = SLIRP_LOG_MAX;
	n = pread(fd, buf, (size_t)end, 0);
	if (n <= 0)
		return;
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\0'))
		len--;
	/* Room for "; " in place of each newline: half the output, at worst. */
	start = len > (outsize - 1) / 2 ? len - (outsize - 1) / 2 : 0;
	for (size_t i = start; i < len && o + 3 < outsize; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n') {
			out[o++] = ';';
			out[o++] = ' ';
		} else
			out[o++] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
	}
	out[o] = '\0';
}

int
sandbox_slirp_start(struct sandbox_slirp **out, pid_t pid1,
    const char *program, char *err, size_t errsize)
{
	char path[PATH_MAX], pidarg[24], why[240], *argv[12];
	int ready[2] = { -1, -1 }, exitp[2] = { -1, -1 }, logfd = -1;
	int nullfd = -1, ret = -1, st;
	struct sandbox_slirp *s = NULL;
	pid_t worker = getpid(), pid;
	bool timed_out;
	size_t n = 0;

	if (find_slirp(path, sizeof path, program, err, errsize) != 0)
		return -1;
	if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(exitp, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		goto out;
	}
	/*
	 * Its stderr: a memfd sealed at SLIRP_LOG_MAX bytes, so that a chatty
	 * slirp4netns costs a bounded amount and can never block on a full
	 * pipe while the build runs.
	 */
	logfd = memfd_create("slirp4netns", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (logfd < 0 || ftruncate(logfd, SLIRP_LOG_MAX) != 0 ||
	    fcntl(logfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK |
	    F_SEAL_SEAL) != 0) {
		snprintf(err, errsize, "memfd for slirp4netns: %s",
		    strerror(errno));
		goto out;
	}
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0) {
		snprintf(err, errsize, "open /dev/null: %s", strerror(errno));
		goto out;
	}
	snprintf(pidarg, sizeof pidarg, "%ld", (long)pid1);
	argv[n++] = "slirp4netns";
	argv[n++] = "--configure";
	/* The largest MTU slirp4netns allows is what makes it fast. */
	argv[n++] = "--mtu=65520";
	argv[n++] = "--disable-host-loopback";
	argv[n++] = "--enable-sandbox";
	argv[n++] = "--enable-seccomp";
	argv[n++] = "--ready-fd=3";
	argv[n++] = "--exit-fd=4";
	argv[n++] = pidarg;
	argv[n++] = "tap0";
	argv[n] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errsize, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int fds[5] = { nullfd, nullfd, logfd, ready[1], exitp[0] };
		exec_slirp(path, argv, worker, fds);
	}
	(void)setpgid(pid, pid);	/* either of us may come first */
	s = xcalloc(1, sizeof *s);
	s->pid = pid;
	s->exit_wr = exitp[1];
	exitp[1] = -1;
	close(ready[1]);
	ready[1] = -1;

	if (wait_ready(ready[0], &timed_out) == 0) {
		*out = s;
		s = NULL;
		ret = 0;
		goto out;
	}
	(void)kill(-s->pid, SIGKILL);
	while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
		;
	s->reaped = true;
	log_tail(logfd, why, sizeof why);
	if (timed_out)
		snprintf(err, errsize, "%s, which did not set up the build's "
		    "network within %d s (%s)%s", SLIRP_NEEDS,
		    SLIRP_READY_MS / 1000, why[0] ? why : "no message",
		    SLIRP_NO_FALLBACK);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && why[0] == '\0')
		snprintf(err, errsize, "%s, which could not be started%s",
		    SLIRP_NEEDS, SLIRP_NO_FALLBACK);
	else
		snprintf(err, errsize, "%s, which could not set up the build's "
		    "network (%s %d: %s)%s", SLIRP_NEEDS,
		    WIFEXITED(st) ? "exit" : "signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
		    why[0] ? why : "no message", SLIRP_NO_FALLBACK);
out:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (exitp[i] >= 0)
			close(exitp[i]);
	}
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	sandbox_slirp_stop(s);
	return ret;
}

pid_t
sandbox_slirp_pid(const struct sandbox_slirp *s)
{
	return s->pid;
}

void
sandbox_slirp_stop(struct sandbox_slirp *s)
{
	int64_t deadline;
	siginfo_t si;
	int st;

	if (s == NULL)
		return;
	/* The hangup on its exit fd makes it leave by itself. */
	if (s->exit_wr >= 0)
		close(s->exit_wr);
	deadline = mono_ms() + SLIRP_EXIT_MS;
	while (!s->reaped) {
		/* Not reaped yet (WNOWAIT): its pid keeps naming its group
		 * until the kill below. */
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) != 0 && errno == EINTR)
			continue;
		if (si.si_pid == s->pid || mono_ms() >= deadline) {
			(void)kill(-s->pid, SIGKILL);
			while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
				;
			s->reaped = true;
			break;
		}
		(void)usleep(10000);
	}
	free(s);
}
