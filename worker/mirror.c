/*
 * Bare mirror caches with libgit2 1.5: fetch, resolve, check out.
 * libgit2 1.5: no shallow clone; fetch by commit id works; a fresh bare
 * repository's HEAD names "master", so refs are always resolved explicitly;
 * the credentials callback is called again after every failure.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "creds.h"
#include "mirror.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

/* Credentials offered at most this many times in one fetch. */
#define MAX_AUTH_ATTEMPTS 3

struct fetch_ctx {
	const struct creds *creds;	/* the project's, or NULL */
	int attempts;
	bool agent_tried;
	bool login_tried;
	bool gave_up;
};

static const char *
git_msg(void)
{
	const git_error *e = git_error_last();

	return e != NULL && e->message != NULL ? e->message : "unknown error";
}

/*
 * A failed fetch's reason, from libgit2's last error.  "cannot reach"
 * only when the repository was not got to (a name that does not resolve,
 * a refused connection, TLS, ssh or http refusing, a path that holds no
 * repository); a repository that answered and then failed (an object
 * missing from it, a corrupt pack) is another matter for whoever looks
 * into it, and says "fetch from".
 */
static void
fetch_error(char *err, size_t errsize, const char *shown)
{
	const git_error *e = git_error_last();

	switch (e != NULL ? e->klass : GIT_ERROR_NET) {
	case GIT_ERROR_OS:
	case GIT_ERROR_NET:
	case GIT_ERROR_SSL:
	case GIT_ERROR_SSH:
	case GIT_ERROR_HTTP:
	case GIT_ERROR_REPOSITORY:
		snprintf(err, errsize, "cannot reach %s: %s", shown, git_msg());
		break;
	default:
		snprintf(err, errsize, "fetch from %s failed: %s", shown,
		    git_msg());
	}
}

int
mirror_init(void)
{
	static const int levels[] = {
		GIT_CONFIG_LEVEL_PROGRAMDATA, GIT_CONFIG_LEVEL_SYSTEM,
		GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL,
	};

	if (git_libgit2_init() < 0)
		return -1;
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		if (git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "") != 0) {
			git_libgit2_shutdown();
			return -1;
		}
	}
	return 0;
}

void
mirror_shutdown(void)
{
	git_libgit2_shutdown();
}

void
mirror_hide_path(char *msg, size_t size, const char *path, const char *name)
{
	size_t plen = strlen(path), nlen = strlen(name);
	char *p = msg;

	while (plen > 1 && path[plen - 1] == '/')
		plen--;
	/* "" or "/" is in every path: there is nothing to hide. */
	if (plen <= 1 || size == 0)
		return;
	while ((p = memmem(p, strlen(p), path, plen)) != NULL) {
		size_t off = (size_t)(p - msg), tail;
		unsigned char next = (unsigned char)p[plen];

		/* /x/a.1 is not in /x/a.12: whole names only. */
		if (isalnum(next) || next == '.' || next == '-' ||
		    next == '_') {
			p += plen;
			continue;
		}
		if (off + nlen >= size) {
			snprintf(p, size - off, "%s", name);
			return;
		}
		tail = strlen(p + plen);
		if (off + nlen + tail >= size)
			tail = size - 1 - off - nlen;
		memmove(p + nlen, p + plen, tail);
		memcpy(p, name, nlen);
		p[nlen + tail] = '\0';
		p += nlen;
	}
}

void
mirror_redact_url(char *buf, size_t size, const char *url)
{
	const char *host = strstr(url, "://");
	const char *end, *at = NULL, *colon = NULL;

	if (host == NULL) {
		snprintf(buf, size, "%s", url);
		return;
	}
	host += 3;
	end = host + strcspn(host, "/?#");
	for (const char *p = host; p < end; p++)
		if (*p == '@')
			at = p;
	if (at != NULL)
		colon = memchr(host, ':', (size_t)(at - host));
	if (colon == NULL) {
		snprintf(buf, size, "%s", url);
		return;
	}
	/* A token in https://user:token@host/ must not reach a build log. */
	snprintf(buf, size, "%.*s:***%s", (int)(colon - url), url, at);
}

/*
 * Credentials: kiln-worker holds no secrets of its own.  It answers the
 * username question for ssh, offers the ssh agent's keys once when an
 * agent is there (SSH_AUTH_SOCK: kilnd gives it to the fetches of
 * projects only), offers the project's login for the host that asks
 * once (creds.h: the host of the URL libgit2 is talking to, so a
 * redirect elsewhere gets nothing), and otherwise gives up.  libgit2
 * calls this again after each rejection, so without the count a rejected
 * key would be offered forever.
 */
static int
credentials_cb(git_credential **out, const char *url,
    const char *username_from_url, unsigned int allowed_types, void *data)
{
	struct fetch_ctx *ctx = data;
	const struct creds_login *login = NULL;
	const char *user;
	char host[256];

	if (url != NULL && creds_url_host(host, sizeof host, url) == 0)
		login = creds_login_for(ctx->creds, host);
	user = username_from_url != NULL && username_from_url[0] != '\0' ?
	    username_from_url : login != NULL ? login->login : "git";
	if (++ctx->attempts > MAX_AUTH_ATTEMPTS)
		goto give_up;
	if (allowed_types & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if ((allowed_types & GIT_CREDENTIAL_SSH_KEY) && !ctx->agent_tried &&
	    getenv("SSH_AUTH_SOCK") != NULL) {
		ctx->agent_tried = true;
		return git_credential_ssh_key_from_agent(out, user);
	}
	if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) &&
	    login != NULL && !ctx->login_tried) {
		ctx->login_tried = true;
		return git_credential_userpass_plaintext_new(out, login->login,
		    login->password);
	}
give_up:
	ctx->gave_up = true;
	git_error_set_str(GIT_ERROR_NET, "authentication failed");
	return GIT_EAUTH;
}

/* Absolute paths are local repositories: give libgit2 a file:// URL. */
static int
normalize_url(char **out, const char *url, char *err, size_t errsize)
{
	static const char *const schemes[] = {
		"file://", "git://", "http://", "https://", "ssh://",
	};

	if (url[0] == '/') {
		*out = xasprintf("file://%s", url);
		return 0;
	}
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		if (strncmp(url, schemes[i], strlen(schemes[i])) == 0 &&
		    url[strlen(schemes[i])] != '\0') {
			*out = xstrdup(url);
			return 0;
		}
	}
	snprintf(err, errsize, "unsupported URL '%s': use file://, git://, "
	    "http://, https://, ssh:// or an absolute path", url);
	return -1;
}

static bool
dir_is_missing_or_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (d == NULL)
		return errno == ENOENT;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

static int
open_or_init(git_repository **out, const char *dir, char *err, size_t errsize)
{
	int rc;

	rc = git_repository_open_bare(out, dir);
	if (rc == 0)
		return 0;
	if (rc != GIT_ENOTFOUND) {
		snprintf(err, errsize, "cannot open the mirror of this "
		    "repository: %s", git_msg());
		return -1;
	}
	/* Never turn somebody else's directory into a mirror. */
	if (!dir_is_missing_or_empty(dir)) {
		snprintf(err, errsize, "the mirror's directory holds something "
		    "that is not a bare git repository");
		return -1;
	}
	if (git_repository_init(out, dir, 1) != 0) {
		snprintf(err, errsize, "cannot create the mirror of this "
		    "repository: %s", git_msg());
		return -1;
	}
	return 0;
}

static int
fetch_refspecs(git_remote *remote, char **specs, size_t n, bool prune,
    const struct creds *creds, const char *shown, char *err, size_t errsize)
{
	git_fetch_options fo;
	git_strarray rs = { specs, n };
	struct fetch_ctx ctx = { .creds = creds };
	int rc;

	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.callbacks.credentials = credentials_cb;
	fo.callbacks.payload = &ctx;
	/* A mirror: branches that were deleted upstream go here too. */
	fo.prune = prune ? GIT_FETCH_PRUNE : GIT_FETCH_NO_PRUNE;
	fo.update_fetchhead = 0;
	/* Every tag comes through the refspec; no auto-following. */
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	/* As git does: follow a redirect of the first request only. */
	fo.follow_redirects = GIT_REMOTE_REDIRECT_INITIAL;
	/*
	 * The project's header lines go with every request (http and https
	 * only), and no redirect to another host is followed then: libgit2
	 * would send them to wherever it leads.  (It still follows one to
	 * the same host name, on any port: 1.5 has no way to refuse it.)
	 */
	if (creds != NULL && creds->nheaders > 0) {
		fo.custom_headers.strings = creds->headers;
		fo.custom_headers.count = creds->nheaders;
		fo.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	}
	rc = git_remote_fetch(remote, &rs, &fo, "kiln-worker fetch");
	if (rc == 0)
		return 0;
	if (ctx.gave_up || rc == GIT_EAUTH)
		snprintf(err, errsize, "authentication failed for %s", shown);
	else
		fetch_error(err, errsize, shown);
	return -1;
}

/* Whether the reference `name` exists and peels to `commit`. */
static bool
ref_peels_to(git_repository *repo, const char *name, const git_oid *commit)
{
	git_object *obj = NULL, *peeled = NULL;
	git_oid oid;
	bool yes = false;

	if (git_reference_name_to_id(&oid, repo, name) == 0 &&
	    git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY) == 0 &&
	    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0)
		yes = git_oid_equal(git_object_id(peeled), commit);
	git_object_free(peeled);
	git_object_free(obj);
	return yes;
}

/*
 * Whether the mirror alone answers a fetch of `want` for a job of
 * `job_ref`, so that no network is needed (a retry, or a job of a commit
 * built before, then survives the forge being down).  An object id names
 * the same object forever: when `want` is one that is here and peels to a
 * commit, the forge cannot change the answer.  Except for the tag the job
 * names, which gives the build its version: a tag pushed after its commit
 * was fetched is not here yet, so a job of a tag fetches until the mirror
 * has that tag on that commit.  Branches name no version.
 */
static bool
answered_locally(git_repository *repo, const char *want, const char *job_ref)
{
	git_object *obj = NULL, *peeled = NULL;
	const char *tag = NULL;
	char *name = NULL;
	git_oid oid, branch;
	bool yes = false;

	if (!worker_is_sha1_hex(want) || git_oid_fromstr(&oid, want) != 0)
		return false;
	if (git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY) != 0 ||
	    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) != 0)
		goto out;
	if (job_ref == NULL || worker_is_sha1_hex(job_ref))
		tag = NULL;
	else if (strncmp(job_ref, "refs/tags/", 10) == 0)
		tag = job_ref + 10;
	else if (strncmp(job_ref, "refs/", 5) != 0) {
		/* A short name the mirror has as a branch is one; any other
		 * may be a tag still to fetch. */
		name = xasprintf("refs/heads/%s", job_ref);
		if (git_reference_name_to_id(&branch, repo, name) != 0)
			tag = job_ref;
		free(name);
		name = NULL;
	}
	if (tag == NULL) {
		yes = true;
		goto out;
	}
	name = xasprintf("refs/tags/%s", tag);
	yes = ref_peels_to(repo, name, git_object_id(peeled));
out:
	free(name);
	git_object_free(peeled);
	git_object_free(obj);
	return yes;
}

/*
 * The remote's default branch, as its HEAD names it, kept in the mirror's
 * config: a fetch answered from the mirror alone still knows it, and the
 * mirror's own HEAD (set by git init) says nothing about the remote.
 */
static void
remember_default_branch(git_repository *repo, git_remote *remote)
{
	git_buf def = { 0 };
	git_config *cfg = NULL;

	if (git_remote_default_branch(&def, remote) != 0) {
		git_error_clear();
		return;
	}
	if (strncmp(def.ptr, "refs/heads/", 11) == 0 &&
	    git_repository_config(&cfg, repo) == 0)
		(void)git_config_set_string(cfg, MIRROR_DEFAULT_BRANCH_KEY,
		    def.ptr);
	git_config_free(cfg);
	git_buf_dispose(&def);
}

int
mirror_default_branch(git_repository *repo, char *out, size_t size)
{
	git_config *cfg = NULL;
	git_buf v = { 0 };
	int rc = -1;

	if (git_repository_config_snapshot(&cfg, repo) == 0 &&
	    git_config_get_string_buf(&v, cfg, MIRROR_DEFAULT_BRANCH_KEY) == 0 &&
	    strncmp(v.ptr, "refs/heads/", 11) == 0 && strlen(v.ptr) < size) {
		memcpy(out, v.ptr, strlen(v.ptr) + 1);
		rc = 0;
	}
	git_error_clear();
	git_buf_dispose(&v);
	git_config_free(cfg);
	return rc;
}

int
mirror_fetch(git_repository **out, const char *dir, const char *url,
    const char *want, const char *job_ref, const struct creds *creds,
    char *err, size_t errsize)
{
	static char heads[] = "+refs/heads/*:refs/heads/*";
	static char tags[] = "+refs/tags/*:refs/tags/*";
	char *specs[] = { heads, tags };
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_object *obj = NULL;
	char *norm = NULL, *byid = NULL;
	char shown[1024];
	git_oid oid;
	int ret = -1, rc;

	mirror_redact_url(shown, sizeof shown, url);
	if (normalize_url(&norm, url, err, errsize) != 0)
		goto out;
	if (open_or_init(&repo, dir, err, errsize) != 0)
		goto out;
	if (want != NULL && answered_locally(repo, want, job_ref))
		goto done;
	if (git_remote_create_anonymous(&remote, repo, norm) != 0) {
		fetch_error(err, errsize, shown);
		goto out;
	}
	if (fetch_refspecs(remote, specs, 2, true, creds, shown, err,
	    errsize) != 0)
		goto out;
	remember_default_branch(repo, remote);

	if (want != NULL && worker_is_sha1_hex(want)) {
		if (git_oid_fromstr(&oid, want) != 0) {
			snprintf(err, errsize, "bad commit id '%s'", want);
			goto out;
		}
		rc = git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY);
		if (rc == GIT_ENOTFOUND) {
			/*
			 * A commit that no branch or tag reaches (a pull request's
			 * head, say): ask for it by id and keep it under refs/kiln/
			 * so it stays in the mirror.  The server must allow it
			 * (uploadpack.allowReachableSHA1InWant or similar).
			 */
			char *one[1];
			char why[512];
			byid = xasprintf("+%s:refs/kiln/commits/%s", want, want);
			one[0] = byid;
			/*
			 * libgit2 1.5's local transport cannot fetch an object no
			 * ref advertises ("target OID for the reference doesn't
			 * exist"); the git, http and ssh transports can.
			 */
			if (fetch_refspecs(remote, one, 1, false, creds, shown,
			    why, sizeof why) != 0) {
				snprintf(err, errsize, "commit %s not found in %s: %s",
				    want, shown, git_msg());
				goto out;
			}
		} else if (rc != 0) {
			snprintf(err, errsize, "cannot read the mirror of this "
			    "repository: %s", git_msg());
			goto out;
		}
	}

done:
	*out = repo;
	repo = NULL;
	ret = 0;
out:
	/* libgit2 names files in its messages: not the mirror's. */
	if (ret != 0)
		mirror_hide_path(err, errsize, dir, "<mirror>");
	git_object_free(obj);
	git_remote_free(remote);
	git_repository_free(repo);
	free(byid);
	free(norm);
	return ret;
}

static int
peel_commit(git_commit **out, git_repository *repo, const git_oid *oid,
    const char *ref, const char *shown, char *err, size_t errsize)
{
	git_object *obj = NULL, *peeled = NULL;
	int ret = -1, rc;

	rc = git_object_lookup(&obj, repo, oid, GIT_OBJECT_ANY);
	if (rc == GIT_ENOTFOUND) {
		snprintf(err, errsize, "commit %s not found in %s", ref, shown);
		goto out;
	}
	if (rc != 0) {
		snprintf(err, errsize, "cannot read '%s': %s", ref, git_msg());
		goto out;
	}
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) != 0) {
		snprintf(err, errsize, "'%s' in %s is not a commit", ref, shown);
		goto out;
	}
	*out = (git_commit *)peeled;
	peeled = NULL;
	ret = 0;
out:
	git_object_free(peeled);
	git_object_free(obj);
	return ret;
}

int
mirror_resolve(git_commit **out, git_repository *repo, const char *ref,
    const char *url, char *err, size_t errsize)
{
	char shown[1024];
	char *names[3] = { NULL, NULL, NULL };
	git_oid oid;
	int ret = -1, rc;

	mirror_redact_url(shown, sizeof shown, url);
	if (worker_is_sha1_hex(ref)) {
		if (git_oid_fromstr(&oid, ref) != 0)
			snprintf(err, errsize, "bad commit id '%s'", ref);
		else
			ret = peel_commit(out, repo, &oid, ref, shown, err,
			    errsize);
		goto out;
	}

	/*
	 * Exact names only: no revparse syntax (main~3, @{...}) and no HEAD.
	 * A full name is that ref and nothing else: were refs/tags/v9 also
	 * looked up as refs/heads/refs/tags/v9, anyone who may push a branch
	 * could answer for a tag and slip past a project's refs filter.
	 */
	if (strncmp(ref, "refs/", 5) == 0)
		names[0] = xstrdup(ref);
	else {
		names[0] = xasprintf("refs/tags/%s", ref);
		names[1] = xasprintf("refs/heads/%s", ref);
	}
	for (size_t i = 0; i < 3 && names[i] != NULL; i++) {
		rc = git_reference_name_to_id(&oid, repo, names[i]);
		if (rc == 0) {
			ret = peel_commit(out, repo, &oid, ref, shown, err, errsize);
			goto out;
		}
		if (rc != GIT_ENOTFOUND && rc != GIT_EINVALIDSPEC) {
			snprintf(err, errsize, "cannot read ref '%s': %s", names[i],
			    git_msg());
			goto out;
		}
	}
	snprintf(err, errsize, "unknown ref '%s' in %s", ref, shown);
out:
	if (ret != 0)
		mirror_hide_path(err, errsize, git_repository_path(repo),
		    "<mirror>");
	for (size_t i = 0; i < 3; i++)
		free(names[i]);
	return ret;
}

int
mirror_lock(const char *dir, char *err, size_t errsize)
{
	char *path = xasprintf("%s.lock", dir);
	char *parent = xstrdup(dir);
	int fd = -1, rc;

	/* Paths in kilnd's state directory stay out of messages: they
	 * reach the job's error, which its submitter reads. */
	rc = util_mkdir_p(dirname(parent), 0755);
	if (rc != 0) {
		snprintf(err, errsize, "cannot create the directory of the "
		    "mirror: %s", strerror(-rc));
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errsize, "cannot open the mirror's lock file: %s",
		    strerror(errno));
		goto out;
	}
	/* One fetch per mirror at a time, across processes. */
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		snprintf(err, errsize, "cannot lock the mirror: %s",
		    strerror(errno));
		close(fd);
		fd = -1;
		goto out;
	}
out:
	free(parent);
	free(path);
	return fd;
}

int
mirror_checkout(const char *dir, const char *sha, const char *target,
    char *err, size_t errsize)
{
	git_checkout_options co;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	git_oid oid;
	int ret = -1, rc;

	if (git_repository_open_bare(&repo, dir) != 0) {
		snprintf(err, errsize, "cannot open the mirror of this "
		    "repository: %s", git_msg());
		goto out;
	}
	if (!worker_is_sha1_hex(sha) || git_oid_fromstr(&oid, sha) != 0) {
		snprintf(err, errsize, "bad commit id '%s'", sha);
		goto out;
	}
	rc = git_commit_lookup(&commit, repo, &oid);
	if (rc == GIT_ENOTFOUND) {
		snprintf(err, errsize, "commit %s is not in the mirror of this "
		    "repository", sha);
		goto out;
	}
	if (rc != 0 || git_commit_tree(&tree, commit) != 0) {
		snprintf(err, errsize, "cannot read commit %s: %s", sha, git_msg());
		goto out;
	}
	/*
	 * A bare mirror has no work tree: write into target_directory and
	 * leave the mirror's index alone (several builds share the mirror).
	 */
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = target;
	if (git_checkout_tree(repo, (const git_object *)tree, &co) != 0) {
		snprintf(err, errsize, "checkout of %s failed: %s", sha, git_msg());
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		mirror_hide_path(err, errsize, dir, "<mirror>");
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	return ret;
}
