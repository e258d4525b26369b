/*
 * Where kiln talks to: --url/--token over KILN_URL/KILN_TOKEN over the
 * file $XDG_CONFIG_HOME/kiln/config ("url = ..." and "token = ..."
 * lines, '#' comments) over http://127.0.0.1:8080.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "util.h"
#include "xmalloc.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define CONFIG_MAX 65536

char *
config_dir(void)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (x != NULL && x[0] == '/')
		return xasprintf("%s/kiln", x);
	if (home != NULL && home[0] == '/')
		return xasprintf("%s/.config/kiln", home);
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	s += strspn(s, " \t");
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Read the config file into url/token where not set yet. */
static int
read_file(char **url, char **token, char *err, size_t errsize)
{
	char *dir = config_dir(), *path, buf[CONFIG_MAX + 1], *line, *save;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, lineno = 0;

	if (dir == NULL)
		return 0;
	path = xasprintf("%s/config", dir);
	free(dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			free(path);
			return 0;
		}
		util_errorf(err, errsize, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		util_errorf(err, errsize, "%s: not a regular file", path);
		goto bad;
	}
	while ((n = read(fd, buf + got, sizeof buf - got)) > 0)
		got += (size_t)n;
	if (n < 0 || got > CONFIG_MAX) {
		util_errorf(err, errsize, "%s: %s", path, n < 0 ?
		    strerror(errno) : "larger than 64 KiB");
		goto bad;
	}
	close(fd);
	buf[got] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *eq, *k, *v;

		lineno++;
		line = trim(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			util_errorf(err, errsize, "%s line %d: expected "
			    "'key = value'", path, lineno);
			free(path);
			return -1;
		}
		*eq = '\0';
		k = trim(line);
		v = trim(eq + 1);
		if (strcmp(k, "url") == 0) {
			if (*url == NULL)
				*url = xstrdup(v);
		} else if (strcmp(k, "token") == 0) {
			if (*token == NULL)
				*token = xstrdup(v);
		} else {
			util_errorf(err, errsize, "%s line %d: unknown key "
			    "'%.64s' (url, token)", path, lineno, k);
			free(path);
			return -1;
		}
	}
	free(path);
	return 0;
bad:
	close(fd);
	free(path);
	return -1;
}

int
config_load(struct kiln_conf *c, const char *url_flag,
    const char *token_flag, char *err, size_t errsize)
{
	const char *e;
	size_t n;

	c->url = url_flag != NULL ? xstrdup(url_flag) : NULL;
	c->token = token_flag != NULL ? xstrdup(token_flag) : NULL;
	if (c->url == NULL && (e = getenv("KILN_URL")) != NULL && *e)
		c->url = xstrdup(e);
	if (c->token == NULL && (e = getenv("KILN_TOKEN")) != NULL && *e)
		c->token = xstrdup(e);
	if ((c->url == NULL || c->token == NULL) &&
	    read_file(&c->url, &c->token, err, errsize) != 0) {
		config_free(c);
		return -1;
	}
	if (c->url == NULL)
		c->url = xstrdup(DEFAULT_URL);
	if (strncmp(c->url, "http://", 7) != 0 &&
	    strncmp(c->url, "https://", 8) != 0) {
		util_errorf(err, errsize, "url '%.200s': not http:// or "
		    "https://", c->url);
		config_free(c);
		return -1;
	}
	n = strlen(c->url);
	while (n > 0 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	if (c->token != NULL && strpbrk(c->token, "\r\n") != NULL) {
		util_errorf(err, errsize, "token: holds a line break");
		config_free(c);
		return -1;
	}
	return 0;
}

void
config_free(struct kiln_conf *c)
{
	free(c->url);
	free(c->token);
	c->url = c->token = NULL;
}
