/*
 * GitLab's webhooks.
 *
 * - The delivery id: X-Gitlab-Event-UUID, which current GitLab sends with
 *   every hook.  A GitLab too old to send it is refused like any sender
 *   without one.
 * - GitLab signs nothing: X-Gitlab-Token carries the hook's secret token
 *   itself.  Tokens may be of any length, so their SHA-256 hashes are
 *   what is compared, in constant time.
 * - The event is the payload's object_kind: "push" and "tag_push" build,
 *   anything else is ignored.  There is no ping.
 * - The payload keeps the ref in "ref", the pushed commit in
 *   "checkout_sha" (null when the ref was deleted; "after" is then all
 *   zeros), and the repository's URLs under project (git_http_url,
 *   git_ssh_url, http_url, ssh_url, web_url) and under repository
 *   (git_http_url, git_ssh_url), tried in that order.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "hooks-int.h"
#include "../lib/util.h"

static enum hook_sig
claimed(struct api_req *req, unsigned char want[HOOK_DIGEST],
    const char **header)
{
	const char *h;

	*header = "X-Gitlab-Token";
	h = req->header(req, *header);
	if (h == NULL)
		return HOOK_SIG_MALFORMED;
	/* Tokens of any length: compare their hashes. */
	crypto_hash_sha256(want, (const unsigned char *)h, strlen(h));
	return HOOK_SIG_OK;
}

static void
expected(struct api_req *req, const char *secret,
    unsigned char got[HOOK_DIGEST])
{
	(void)req;
	crypto_hash_sha256(got, (const unsigned char *)secret,
	    strlen(secret));
}

static bool
is_push(struct api_req *req, json_t *doc,
    const struct conf_project *signed_by, bool *tag)
{
	const char *event;

	(void)signed_by;
	event = json_string_value(json_object_get(doc, "object_kind"));
	if (event == NULL || (strcmp(event, "push") != 0 &&
	    strcmp(event, "tag_push") != 0)) {
		hook_ignored(req, 202, "object_kind '%.64s' does not build "
		    "(push and tag_push do)", event ? event : "");
		return false;
	}
	*tag = strcmp(event, "tag_push") == 0;
	return true;
}

static const char *const repo_urls[][2] = {
	{ "project", "git_http_url" }, { "project", "git_ssh_url" },
	{ "project", "http_url" }, { "project", "ssh_url" },
	{ "project", "web_url" }, { "repository", "git_http_url" },
	{ "repository", "git_ssh_url" },
};

const struct hook_forge hook_gitlab = {
	.name = "gitlab",
	.delivery_header = "X-Gitlab-Event-UUID",
	.claimed = claimed,
	.expected = expected,
	.repo_urls = repo_urls,
	.nrepo_urls = ARRAY_SIZE(repo_urls),
	.commit_key = "checkout_sha",
	.is_push = is_push,
};
