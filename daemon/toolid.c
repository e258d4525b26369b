#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "toolid.h"
#include "xmalloc.h"

/* The PATH builds see (recipe.c) and the probes use. */
static const char *const search[] = { "/usr/local/bin", "/usr/bin", "/bin" };

struct known {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	char *id;
	struct known *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct known *known;

/* argv[0] found on the builds' PATH, resolved (malloc'd), or NULL. */
static char *
which(const char *prog)
{
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof search / sizeof *search; i++) {
		snprintf(p, sizeof p, "%s/%s", search[i], prog);
		if (access(p, X_OK) == 0)
			return realpath(p, NULL);
	}
	return NULL;
}

/* The first line `path arg` prints on stdout (malloc'd), or NULL. */
static char *
first_line(const char *path, const char *arg, char *err, size_t errsize)
{
	char *const argv[] = { (char *)path, (char *)arg, NULL };
	/*
	 * GOTOOLCHAIN=local: go 1.21 and later otherwise obey a go.mod in
	 * kilnd's working directory and try to download the toolchain it
	 * names, and would report that one's version, not their own.
	 */
	char *const envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin",
	    "HOME=/nonexistent", "LC_ALL=C", "GOTOOLCHAIN=local", NULL };
	posix_spawn_file_actions_t fa;
	char buf[512];
	size_t len = 0;
	int p[2], status;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return NULL;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	errno = posix_spawn(&pid, path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (errno != 0) {
		snprintf(err, errsize, "cannot run %s: %s", path,
		    strerror(errno));
		close(p[0]);
		return NULL;
	}
	while (len < sizeof buf - 1 &&
	    (n = read(p[0], buf + len, sizeof buf - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || buf[0] == '\0') {
		snprintf(err, errsize, "%s %s failed", path, arg);
		return NULL;
	}
	return xstrdup(buf);
}

/* The identity of the program at path (resolved), cached by stat. */
static char *
identity(const char *path, const char *arg, char *err, size_t errsize)
{
	struct known *k;
	struct stat sb;
	char *line, *id = NULL;

	if (stat(path, &sb) != 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return NULL;
	}
	pthread_mutex_lock(&lock);
	for (k = known; k != NULL; k = k->next)
		if (strcmp(k->path, path) == 0 && k->dev == sb.st_dev &&
		    k->ino == sb.st_ino && k->size == sb.st_size &&
		    k->mtime.tv_sec == sb.st_mtim.tv_sec &&
		    k->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
			id = xstrdup(k->id);
			break;
		}
	pthread_mutex_unlock(&lock);
	if (id != NULL)
		return id;
	if ((line = first_line(path, arg, err, errsize)) == NULL)
		return NULL;
	id = xasprintf("%s: %s", path, line);
	free(line);
	k = xcalloc(1, sizeof *k);
	k->path = xstrdup(path);
	k->dev = sb.st_dev;
	k->ino = sb.st_ino;
	k->size = sb.st_size;
	k->mtime = sb.st_mtim;
	k->id = xstrdup(id);
	pthread_mutex_lock(&lock);
	k->next = known;
	known = k;
	pthread_mutex_unlock(&lock);
	return id;
}

char *
toolid_go(const char *go_path, char *err, size_t errsize)
{
	char *path, *id;

	if (go_path == NULL)
		path = which("go");
	else if ((path = realpath(go_path, NULL)) == NULL) {
		snprintf(err, errsize, "%s: %s", go_path, strerror(errno));
		return NULL;
	}
	if (path == NULL) {
		snprintf(err, errsize, "go is not installed");
		return NULL;
	}
	id = identity(path, "version", err, errsize);
	free(path);
	return id;
}

char *
toolid_for(const char *recipe_json, const char *triple, const char *go_path,
    char *err, size_t errsize)
{
	json_t *r = json_loads(recipe_json, 0, NULL);
	const char *kind = json_string_value(json_object_get(r, "kind"));
	char *path = NULL, *go, *ccid = NULL, *id = NULL, *cc;
	bool is_go = kind != NULL && strcmp(kind, "go") == 0;

	go = toolid_go(go_path, err, errsize);
	if (is_go) {
		id = go;
		json_decref(r);
		return id;
	}
	/* A command recipe: the C compiler [toolchains] gives it, and go
	 * (many command recipes run it); a tool kiln does not know of is
	 * the recipe's own affair, and "cache": false rebuilds. */
	if (triple != NULL) {
		cc = strcmp(triple, CONF_HOST_TRIPLE) == 0 ? xstrdup("gcc") :
		    xasprintf("%s-gcc", triple);
		if ((path = which(cc)) == NULL)
			snprintf(err, errsize, "%s is not installed", cc);
		else
			ccid = identity(path, "--version", err, errsize);
		free(cc);
		free(path);
		if (ccid == NULL) {
			free(go);
			json_decref(r);
			return NULL;
		}
	}
	id = xasprintf("cc: %s (%s); go: %s", ccid ? ccid : "none",
	    triple ? triple : "none", go ? go : "none");
	free(ccid);
	free(go);
	json_decref(r);
	return id;
}
