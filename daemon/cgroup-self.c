#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup-self.h"
#include "sbuf.h"
#include "xmalloc.h"

/*
 * What builds need below the group.  KILND_TEST_CGROUP_CONTROLLERS
 * replaces the list for tests/sandbox/cgroup-self.sh: on a host whose
 * memory and pids controllers are bound to v1 hierarchies, a private
 * cgroup2 mount offers only others, and the test needs one to check that
 * enabling happens after the move (the kernel refuses it before).
 */
#define CONTROLLERS "memory pids"
#define CONTROLLERS_MAX 8

static int
read_text(const char *dir, const char *file, char *buf, size_t size)
{
	char *path = xasprintf("%s/%s", dir, file);
	size_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0) {
		buf[0] = '\0';
		return -errno;
	}
	while (len + 1 < size) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	return rc;
}

/* One write(2): cgroup files take one value per write. */
static int
write_text(const char *dir, const char *file, const char *text)
{
	char *path = xasprintf("%s/%s", dir, file);
	size_t n = strlen(text);
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t)n)
		rc = -errno;
	close(fd);
	return rc;
}

static bool
has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

/* kilnd's group in the v2 hierarchy ("/system.slice/kilnd.service"),
 * from the "0::" line of /proc/self/cgroup; malloc'd, or NULL. */
static char *
own_group(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096], *found = NULL;

	if (f == NULL)
		return NULL;
	while (found == NULL && fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "0::/", 4) == 0)
			found = xstrdup(line + 3);
	}
	fclose(f);
	return found;
}

static bool
xattr_is_one(const char *dir, const char *name)
{
	char v[8];
	ssize_t n = getxattr(dir, name, v, sizeof v - 1);

	if (n <= 0)
		return false;
	v[n] = '\0';
	return strcmp(v, "1") == 0;
}

/*
 * Whether systemd delegated the group to us.  systemd 251 and later mark
 * a delegated group with the trusted.delegate (root only) and
 * user.delegate extended attributes.  Earlier ones only show it for a
 * service with User=: the group, its cgroup.procs and its
 * cgroup.subtree_control belong to that user, and only when kilnd runs
 * as a service (systemd sets INVOCATION_ID for each): a user's own
 * session scopes under user@UID.service belong to the user too, and a
 * kilnd started from a terminal must not move out of its shell's group.
 * A group without either belongs to systemd (or whoever made it), even
 * if root could write it.
 */
static bool
delegated(const char *dir)
{
	char *procs, *ctl;
	struct stat sb;
	bool ok;

	if (xattr_is_one(dir, "trusted.delegate") ||
	    xattr_is_one(dir, "user.delegate"))
		return true;
	if (geteuid() == 0 || getenv("INVOCATION_ID") == NULL ||
	    stat(dir, &sb) != 0 || sb.st_uid != geteuid())
		return false;
	procs = xasprintf("%s/cgroup.procs", dir);
	ctl = xasprintf("%s/cgroup.subtree_control", dir);
	ok = access(procs, W_OK) == 0 && access(ctl, W_OK) == 0;
	free(procs);
	free(ctl);
	return ok;
}

/* The controllers to enable, checked: words of lowercase letters. */
static const char *
wanted_controllers(void)
{
	const char *v = getenv("KILND_TEST_CGROUP_CONTROLLERS");

	if (v == NULL || *v == '\0' || strlen(v) > 200 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz_ ") != strlen(v))
		return CONTROLLERS;
	return v;
}

int
cgroup_self_setup(const char *root, char *msg, size_t msgsize)
{
	char *own = NULL, *dir = NULL, *sup = NULL, *list = NULL;
	char avail[512], procs[512], pid[32];
	struct sbuf on = { 0 }, missing = { 0 };
	const char *w, *sep;
	struct stat sb;
	int rc = -1, e;

	snprintf(avail, sizeof avail, "%s/cgroup.controllers", root);
	if (access(avail, F_OK) != 0) {
		snprintf(msg, msgsize, "cgroups: %s is not a cgroup v2 "
		    "hierarchy (v1 or hybrid): builds get their groups in the "
		    "v1 hierarchies; kilnd stays where it is", root);
		rc = 0;
		goto out;
	}
	own = own_group();
	if (own == NULL || strcmp(own, "/") == 0) {
		snprintf(msg, msgsize, "cgroups: v2; kilnd runs in the root "
		    "group: builds get their groups below it");
		rc = 0;
		goto out;
	}
	dir = xasprintf("%s%s", root, own);
	if (!delegated(dir)) {
		snprintf(msg, msgsize, "cgroups: v2; %s is not delegated to "
		    "kilnd (Delegate=yes in kilnd.service): kilnd stays in it, "
		    "and builds get memory and pids limits only if kiln-worker "
		    "can enable them there", own);
		rc = 0;
		goto out;
	}

	/* Which wanted controllers systemd handed down. */
	if ((e = read_text(dir, "cgroup.controllers", avail,
	    sizeof avail)) != 0) {
		snprintf(msg, msgsize, "cgroups: cannot read %s/"
		    "cgroup.controllers: %s", own, strerror(-e));
		goto out;
	}
	list = xstrdup(wanted_controllers());
	for (char *save = NULL, *c = strtok_r(list, " ", &save); c != NULL;
	    c = strtok_r(NULL, " ", &save)) {
		if (has_word(avail, c)) {
			sbuf_adds(&on, on.len ? " +" : "+");
			sbuf_adds(&on, c);
		} else {
			if (missing.len)
				sbuf_addc(&missing, ' ');
			sbuf_adds(&missing, c);
		}
	}

	/* First out of the group: v2 enables controllers for a group's
	 * children only while the group itself holds no process. */
	sup = xasprintf("%s/" CGROUP_SELF_SUPERVISOR, dir);
	if (mkdir(sup, 0755) != 0 && (errno != EEXIST ||
	    stat(sup, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
		snprintf(msg, msgsize, "cgroups: cannot create %s/"
		    CGROUP_SELF_SUPERVISOR ": %s", own, strerror(errno));
		goto out;
	}
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	if ((e = write_text(sup, "cgroup.procs", pid)) != 0) {
		snprintf(msg, msgsize, "cgroups: cannot move kilnd into %s/"
		    CGROUP_SELF_SUPERVISOR ": %s", own, strerror(-e));
		goto out;
	}
	if (on.len > 0 &&
	    (e = write_text(dir, "cgroup.subtree_control", on.p)) != 0) {
		if (e == -EBUSY && read_text(dir, "cgroup.procs", procs,
		    sizeof procs) == 0 && procs[0] != '\0') {
			for (char *p = procs; *p; p++)
				if (*p == '\n')
					*p = ' ';
			snprintf(msg, msgsize, "cgroups: moved into %s/"
			    CGROUP_SELF_SUPERVISOR ", but cannot enable %s "
			    "in %s: other processes are still in it (pids "
			    "%.200s); start kilnd directly from its unit",
			    own, on.p, own, procs);
		} else
			snprintf(msg, msgsize, "cgroups: moved into %s/"
			    CGROUP_SELF_SUPERVISOR ", but cannot enable %s in "
			    "%s: %s", own, on.p, own, strerror(-e));
		goto out;
	}
	if (missing.len > 0) {
		snprintf(msg, msgsize, "cgroups: moved into %s/"
		    CGROUP_SELF_SUPERVISOR "; %s %s not delegated to %s "
		    "(its cgroup.controllers: %s): builds run without %s "
		    "limits", own, missing.p, strchr(missing.p, ' ') ? "are" :
		    "is", own, avail[0] ? avail : "none", missing.p);
		goto out;
	}
	sep = on.len ? "; enabled " : "";
	w = on.len ? on.p : "";
	snprintf(msg, msgsize, "cgroups: v2, %s delegated: kilnd moved "
	    "into %s/" CGROUP_SELF_SUPERVISOR "%s%s for the build groups "
	    "next to it", own, own, sep, w);
	rc = 0;
out:
	sbuf_free(&on);
	sbuf_free(&missing);
	free(list);
	free(sup);
	free(dir);
	free(own);
	return rc;
}
