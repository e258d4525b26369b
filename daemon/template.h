/*
 * GoReleaser-style templates in recipes: "-X main.version={{.Version}}".
 * Only plain field references are understood ({{ .Name }} and
 * {{ .Env.NAME }}, with Go's {{- / -}} trim markers); pipelines,
 * functions, conditionals and unknown names are refused with an error
 * that names the action, so a build never runs with half-expanded flags.
 */
#ifndef KILN_TEMPLATE_H
#define KILN_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Output larger than this is refused. */
#define TEMPLATE_MAX_OUTPUT (64 * 1024)

/* What the names expand to; a NULL string expands to "". */
struct template_vars {
	const char *project_name;
	const char *version;	/* tag without leading 'v'; untagged:
				 * "0.0.0-SNAPSHOT-<short commit>" */
	const char *raw_version;	/* MAJOR.MINOR.PATCH of version */
	const char *tag;	/* "v1.2.3"; untagged: "v0.0.0" */
	const char *commit;	/* 40 hex */
	const char *branch;	/* "" when unknown */
	/*
	 * Unix seconds of the commit: .CommitDate and .Date (RFC 3339 UTC),
	 * .CommitTimestamp and .Timestamp.  GoReleaser's .Date is the build
	 * time; kiln gives the commit time so that two builds of one commit
	 * stamp the same bytes (reproducible builds).
	 */
	int64_t commit_time;
	const char *os, *arch;	/* GOOS, GOARCH */
	const char *arm;	/* GOARM, "" if none */
	const char *amd64;	/* GOAMD64, "" if none */
	bool is_snapshot;
	/* Object NAME -> string: the recipe's env, or NULL.  {{.Env.NAME}}
	 * reads only this, never kilnd's environment. */
	const json_t *env;
};

/*
 * Expand every {{ ... }} action of `in`.  Returns malloc'd text, or NULL
 * with err naming the first action that failed ("unknown template
 * {{.Foo}}", "unsupported template {{ .Version | upper }}").  Text
 * without "{{" comes back unchanged.
 */
char *template_expand(const char *in, const struct template_vars *v,
    char *err, size_t errsize);

/*
 * The version fields from a tag (NULL or "" when the commit is untagged;
 * a leading "refs/tags/" is dropped) and the commit id, into the
 * caller's buffers (truncated to their sizes).  MAJOR.MINOR.PATCH is
 * read leniently as GoReleaser's semver library does ("v1.2" is 1.2.0);
 * a tag that does not start with a number gives "0.0.0".
 */
void template_version(const char *tag, const char *commit, char *version,
    size_t vsize, char *raw, size_t rsize, char *tagout, size_t tsize,
    bool *is_snapshot);

#endif
