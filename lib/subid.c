/*
 * Reading /etc/subuid and /etc/subgid.  newuidmap(1) and newgidmap(1)
 * read them again and decide; this reading only chooses which ids to ask
 * for, and lets kilnd say at start whether builds can get any.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "subid.h"
#include "util.h"
#include "xmalloc.h"

/* The largest id: (uid_t)-1 means "no change" to the kernel. */
#define ID_MAX 4294967294LL

/* "OWNER:START:COUNT" without its newline; false when not that shape. */
static bool
parse_line(char *line, char **owner, int64_t *start, int64_t *count)
{
	char *c1 = strchr(line, ':'), *c2;

	if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL ||
	    strchr(c2 + 1, ':') != NULL)
		return false;
	*c1 = *c2 = '\0';
	*owner = line;
	return util_parse_int64(c1 + 1, 0, ID_MAX, start) == 0 &&
	    util_parse_int64(c2 + 1, 1, ID_MAX, count) == 0 &&
	    *start + *count - 1 <= ID_MAX;
}

int
subid_first(unsigned long *out, const char *file, const char *user,
    uid_t uid, unsigned long self, char *err, size_t errsize)
{
	char uidstr[16], *line = NULL, *owner;
	size_t cap = 0;
	ssize_t len;
	int64_t start, count;
	FILE *f;
	int ret = 0;

	snprintf(uidstr, sizeof uidstr, "%lu", (unsigned long)uid);
	f = fopen(file, "re");
	if (f == NULL) {
		if (errno == ENOENT) {
			snprintf(err, errsize, "%s does not exist", file);
			return 0;
		}
		snprintf(err, errsize, "cannot read %s: %s", file,
		    strerror(errno));
		return -1;
	}
	snprintf(err, errsize, "%s has no range for user %s (uid %s)", file,
	    user != NULL ? user : "?", uidstr);
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (!parse_line(line, &owner, &start, &count))
			continue;
		if (strcmp(owner, uidstr) != 0 &&
		    (user == NULL || strcmp(owner, user) != 0))
			continue;
		/* Keep looking: a later line may hold a usable range. */
		if (start == 0 || ((int64_t)self >= start &&
		    (int64_t)self < start + count)) {
			snprintf(err, errsize, "%s: the range %lld-%lld of user "
			    "%s holds %s, not usable for builds", file,
			    (long long)start, (long long)(start + count - 1),
			    user != NULL ? user : uidstr,
			    start == 0 ? "root" : "the user's own id");
			continue;
		}
		*out = (unsigned long)start;
		err[0] = '\0';
		ret = 1;
		break;
	}
	if (ret == 0 && ferror(f)) {
		snprintf(err, errsize, "cannot read %s: %s", file,
		    strerror(errno));
		ret = -1;
	}
	free(line);
	fclose(f);
	return ret;
}

int
subid_find(struct subid *out, char *err, size_t errsize)
{
	struct passwd *pw;
	unsigned long u, g;
	uid_t uid = getuid();
	int rc;

	/* newuidmap finds the user by uid and refuses one without a name. */
	pw = getpwuid(uid);
	if (pw == NULL) {
		snprintf(err, errsize, "uid %lu has no name in the user "
		    "database: newuidmap(1) would refuse it", (unsigned long)uid);
		return 0;
	}
	rc = subid_first(&u, SUBID_UID_FILE, pw->pw_name, uid,
	    (unsigned long)uid, err, errsize);
	if (rc != 1)
		return rc;
	rc = subid_first(&g, SUBID_GID_FILE, pw->pw_name, uid,
	    (unsigned long)getgid(), err, errsize);
	if (rc != 1)
		return rc;
	out->uid = (uid_t)u;
	out->gid = (gid_t)g;
	return 1;
}

/*
 * WORKER reclaim -- PATH, waited for; 0 when it exited 0.  With out, what
 * it printed (its reason) lands there, as one line; else on our stderr.
 */
static int
reclaim(const char *worker, const char *path, char *out, size_t outsize)
{
	char *argv[] = { (char *)worker, "reclaim", "--", (char *)path, NULL };
	char *envp[] = { "PATH=" SUBID_HELPER_PATH, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	int pfd[2] = { -1, -1 }, rc, st;
	size_t len = 0;
	pid_t pid;

	if (out != NULL) {
		out[0] = '\0';
		if (pipe2(pfd, O_CLOEXEC) != 0) {
			snprintf(out, outsize, "pipe: %s", strerror(errno));
			return -1;
		}
	}
	posix_spawn_file_actions_init(&fa);
	if (out != NULL) {
		posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
		posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	}
	/*
	 * The thread pool's threads block every signal and kilnd ignores
	 * SIGPIPE; both would pass into the worker.
	 */
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, worker, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (rc != 0) {
		if (out != NULL)
			snprintf(out, outsize, "cannot run %s: %s", worker,
			    strerror(rc));
		if (pfd[0] >= 0)
			close(pfd[0]);
		return -1;
	}
	if (out != NULL) {
		char buf[256];

		/* Keep the start, drain the rest: it must not block. */
		for (;;) {
			ssize_t n = read(pfd[0], buf, sizeof buf);
			size_t take;

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			take = outsize - 1 - len;
			if ((size_t)n < take)
				take = (size_t)n;
			memcpy(out + len, buf, take);
			len += take;
		}
		close(pfd[0]);
		while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
			len--;
		out[len] = '\0';
		for (char *p = out; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
	}
	/* Ours to reap: libuv waits only for the children it started. */
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int
subid_rmtree(const char *worker, const char *path)
{
	int rc = util_rmtree(path);

	if ((rc == -EACCES || rc == -EPERM) && geteuid() != 0 &&
	    reclaim(worker, path, NULL, 0) == 0)
		rc = util_rmtree(path);
	return rc;
}

/*
 * Whether newuidmap and newgidmap work for this process, tried for real:
 * a reclaim of an empty directory maps a user namespace as a build's
 * does.  They can be missing, or be refused by systemd's settings
 * (no_new_privs; a bounding set without what a setuid-root program
 * needs), which nothing short of trying tells for sure.
 */
static int
probe(const char *worker, const char *state_dir, char *why, size_t size)
{
	char *dir = xasprintf("%s/idmap-probe", state_dir);
	int rc;

	rmdir(dir);
	if (mkdir(dir, 0700) != 0) {
		snprintf(why, size, "cannot create %s: %s", dir,
		    strerror(errno));
		free(dir);
		return -1;
	}
	rc = reclaim(worker, dir, why, size);
	rmdir(dir);
	free(dir);
	return rc;
}

void
subid_log_builds(bool allow_same_uid, const char *worker,
    const char *state_dir)
{
	struct passwd *pw;
	struct subid ids;
	char why[512], user[64];
	int rc;

	if (geteuid() == 0)
		return;
	pw = getpwuid(getuid());
	snprintf(user, sizeof user, "%s", pw ? pw->pw_name : "?");
	rc = subid_find(&ids, why, sizeof why);
	if (rc < 0) {
		log_error("builds cannot run: %s", why);
	} else if (rc == 0 && allow_same_uid) {
		log_warn("builds run as kilnd's own uid %lu "
		    "(allow_same_uid_builds = yes): a build that escapes its "
		    "sandbox owns everything kilnd owns; %s",
		    (unsigned long)getuid(), why);
	} else if (rc == 0) {
		log_error("builds refused: %s, so builds would run as kilnd's "
		    "own uid %lu; give user %s a range of its own in %s and %s "
		    "(usermod --add-subuids FIRST-LAST --add-subgids "
		    "FIRST-LAST %s), or set allow_same_uid_builds = yes in "
		    "[kilnd] of kilnd.conf (unsafe)", why,
		    (unsigned long)getuid(), user, SUBID_UID_FILE,
		    SUBID_GID_FILE, user);
	} else if (worker != NULL &&
	    probe(worker, state_dir, why, sizeof why) != 0) {
		log_error("builds cannot run: the subordinate ids of user %s "
		    "(uid %lu, gid %lu) cannot be mapped: %s; newuidmap and "
		    "newgidmap (Debian package uidmap) are setuid root, and "
		    "under systemd need NoNewPrivileges=no and CAP_SETUID "
		    "CAP_SETGID CAP_DAC_OVERRIDE CAP_SYS_ADMIN in "
		    "CapabilityBoundingSet= (kilnd.service)", user,
		    (unsigned long)ids.uid, (unsigned long)ids.gid, why);
	} else {
		log_info("builds run as subordinate uid %lu, gid %lu of user "
		    "%s (%s, %s)", (unsigned long)ids.uid,
		    (unsigned long)ids.gid, user, SUBID_UID_FILE,
		    SUBID_GID_FILE);
	}
}
