/* SHA256SUMS parsing and the check of names from the server (sums.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sums.h"
#include "util.h"
#include "xmalloc.h"

int
sums_check_name(const char *name, char *err, size_t errsize)
{
	const char *p = name;
	size_t len = strlen(name);

	if (len == 0 || len > SUMS_NAME_MAX)
		return util_errorf(err, errsize, "a file name of %zu bytes",
		    len);
	if (name[0] == '/')
		return util_errorf(err, errsize, "'%.200s' is an absolute "
		    "path", name);
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
			return util_errorf(err, errsize, "'%.200s' holds a "
			    "control character or a backslash", name);
	while (*p != '\0') {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return util_errorf(err, errsize, "'%.200s' has an "
			    "empty, '.' or '..' component", name);
		p += n;
		if (*p == '/')
			p++;
		else
			break;
	}
	if (name[len - 1] == '/')
		return util_errorf(err, errsize, "'%.200s' ends with '/'",
		    name);
	return 0;
}

void
sums_free(struct sums_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int
sums_parse(const char *text, size_t len, struct sums_entry **out, size_t *n,
    char *err, size_t errsize)
{
	struct sums_entry *v = NULL;
	size_t nv = 0, cap = 0, i = 0, lineno = 0;
	char why[256];

	while (i < len) {
		const char *l = text + i, *nl = memchr(l, '\n', len - i);
		size_t ll = nl != NULL ? (size_t)(nl - l) : len - i;
		char *name;

		i += ll + 1;
		lineno++;
		if (ll == 0 && nl == NULL)
			break;
		if (nv == SUMS_MAX_ENTRIES) {
			util_errorf(err, errsize, "SHA256SUMS: more than %d "
			    "lines", SUMS_MAX_ENTRIES);
			goto bad;
		}
		if (ll < 67 || l[64] != ' ' || (l[65] != ' ' && l[65] != '*')) {
			util_errorf(err, errsize, "SHA256SUMS line %zu: not "
			    "\"<sha256>  <name>\"", lineno);
			goto bad;
		}
		for (size_t k = 0; k < 64; k++)
			if (util_hexval(l[k]) < 0) {
				util_errorf(err, errsize, "SHA256SUMS line "
				    "%zu: the hash is not 64 hex digits",
				    lineno);
				goto bad;
			}
		if (memchr(l + 66, '\0', ll - 66) != NULL) {
			util_errorf(err, errsize, "SHA256SUMS line %zu: a "
			    "NUL byte in the name", lineno);
			goto bad;
		}
		name = xstrndup(l + 66, ll - 66);
		if (sums_check_name(name, why, sizeof why) != 0) {
			util_errorf(err, errsize, "SHA256SUMS line %zu: %s",
			    lineno, why);
			free(name);
			goto bad;
		}
		if (nv == cap) {
			cap = cap ? 2 * cap : 16;
			v = xreallocarray(v, cap, sizeof *v);
		}
		for (size_t k = 0; k < 64; k++)
			v[nv].sha256[k] = (char)(l[k] >= 'A' && l[k] <= 'F' ?
			    l[k] - 'A' + 'a' : l[k]);
		v[nv].sha256[64] = '\0';
		v[nv++].name = name;
	}
	*out = v;
	*n = nv;
	return 0;
bad:
	sums_free(v, nv);
	return -1;
}
