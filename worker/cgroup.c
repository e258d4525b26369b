/*
 * Control groups: detection, the public entry points of cgroup.h, and
 * helpers shared by cgroup-v1.c and cgroup-v2.c.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgroup-int.h"
#include "xmalloc.h"

#define STALE_PREFIX "kiln-"

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
cgroup_write(const char *dir, const char *file, const char *fmt, ...)
{
	char path[4096], buf[256];
	va_list ap;
	int fd, n, ret = 0;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf)
		return -EINVAL;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* cgroup files take one value per write(2). */
	if (write(fd, buf, (size_t)n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

int
cgroup_read(const char *dir, const char *file, char *buf, size_t size)
{
	char path[4096];
	size_t len = 0;
	ssize_t n;
	int fd = -1, ret = 0;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		len += (size_t)n;
	}
out:
	buf[len] = '\0';
	if (fd >= 0)
		close(fd);
	return ret;
}

bool
cgroup_file_exists(const char *dir, const char *file)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

char *
cgroup_own_path(const char *controller)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	char *found = NULL;

	if (f == NULL)
		return NULL;
	/* "hierarchy-id:controller,list:/path"; v2 is "0::/path". */
	while (found == NULL && fgets(line, sizeof line, f) != NULL) {
		char *ctrls = strchr(line, ':'), *path;
		line[strcspn(line, "\n")] = '\0';
		if (ctrls == NULL || (path = strchr(++ctrls, ':')) == NULL)
			continue;
		*path++ = '\0';
		if (path[0] != '/')
			continue;
		if (controller == NULL) {
			if (strncmp(line, "0:", 2) == 0 && ctrls[0] == '\0')
				found = xstrdup(path);
			continue;
		}
		for (char *save = NULL, *c = strtok_r(ctrls, ",", &save); c != NULL;
		    c = strtok_r(NULL, ",", &save)) {
			if (strcmp(c, controller) == 0) {
				found = xstrdup(path);
				break;
			}
		}
	}
	fclose(f);
	/* "/" as the own path: strip it so that ROOT + own + "/" + name works. */
	if (found != NULL && strcmp(found, "/") == 0)
		found[0] = '\0';
	return found;
}

int
cgroup_kill_listed(const char *dir)
{
	char path[4096];
	FILE *f;
	long pid;
	int n = 0;

	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fscanf(f, "%ld", &pid) == 1) {
		if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
			n++;
	}
	fclose(f);
	return n;
}

void
cgroup_kill_until_empty(const char *dir)
{
	/* Without a freezer a fork can race the kill: repeat until empty. */
	for (int i = 0; i < 200; i++) {
		if (cgroup_kill_listed(dir) <= 0)
			return;
		sleep_ms(10);
	}
}

/* Remove groups named kiln-*-PID whose worker PID is gone (SIGKILLed
 * workers cannot clean up); rmdir fails harmlessly on a group in use.
 * A dead worker's build empties its group by itself: its pid 1 died with
 * the worker, and the kernel kills the rest of its namespace.  Except
 * frozen (cgroup v1): a worker killed between freezing its build and
 * thawing it left the SIGKILLs pending.  Such a group is killed and
 * thawed, so that it dies and a later worker removes it.  Only a frozen
 * one: a group in use and not frozen may be a live worker's whose PID
 * is not ours to see (a kilnd in another pid namespace under the same
 * parent group), and its build is not ours to kill. */
static void
remove_stale(const char *parent)
{
	DIR *d = opendir(parent);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *dash = strrchr(e->d_name, '-');
		char path[4096], state[64];
		long pid;
		char *end;

		if (e->d_type != DT_DIR ||
		    strncmp(e->d_name, STALE_PREFIX, strlen(STALE_PREFIX)) != 0 ||
		    dash == NULL || !isdigit((unsigned char)dash[1]))
			continue;
		pid = strtol(dash + 1, &end, 10);
		if (*end != '\0' || pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
		if (rmdir(path) != 0 && errno == EBUSY &&
		    cgroup_read(path, "freezer.state", state,
		    sizeof state) == 0 && strncmp(state, "THAWED", 6) != 0) {
			cgroup_kill_listed(path);
			(void)cgroup_write(path, "freezer.state", "THAWED");
		}
	}
	closedir(d);
}

int
cgroup_mkdir(char **out, const char *parent, const char *name, char *err,
    size_t errsize)
{
	char *dir = xasprintf("%s/%s", parent, name);

	remove_stale(parent);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errsize, "mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	*out = dir;
	return 0;
}

static bool
is_v2(void)
{
	return access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
}

int
cgroup_create(struct cgroup **out, const char *name, uint64_t memory,
    uint64_t pids, char *err, size_t errsize)
{
	struct cgroup *cg = xcalloc(1, sizeof *cg);

	cg->ops = is_v2() ? &cgroup_v2_ops : &cgroup_v1_ops;
	cg->freezer = -1;
	if (cg->ops->create(cg, name, memory, pids, err, errsize) != 0) {
		cgroup_destroy(cg);
		return -1;
	}
	*out = cg;
	return 0;
}

int
cgroup_attach(struct cgroup *cg, pid_t pid, char *err, size_t errsize)
{
	for (int i = 0; i < CGROUP_MAX_DIRS; i++) {
		int rc;
		if (cg->dirs[i] == NULL)
			continue;
		rc = cgroup_write(cg->dirs[i], "cgroup.procs", "%ld", (long)pid);
		if (rc != 0) {
			snprintf(err, errsize, "cannot move pid %ld into %s: %s",
			    (long)pid, cg->dirs[i], strerror(-rc));
			return -1;
		}
	}
	return 0;
}

void
cgroup_kill(struct cgroup *cg)
{
	if (cg != NULL)
		cg->ops->kill(cg);
}

void
cgroup_destroy(struct cgroup *cg)
{
	if (cg == NULL)
		return;
	for (int i = 0; i < CGROUP_MAX_DIRS; i++) {
		if (cg->dirs[i] == NULL)
			continue;
		/* Killed processes leave the group a moment after SIGKILL. */
		for (int t = 0; t < 300 && rmdir(cg->dirs[i]) != 0 &&
		    errno == EBUSY; t++) {
			if (t % 50 == 0)
				cgroup_kill_listed(cg->dirs[i]);
			sleep_ms(10);
		}
		free(cg->dirs[i]);
	}
	free(cg);
}

const char *
cgroup_version(const struct cgroup *cg)
{
	return cg->ops->version;
}
