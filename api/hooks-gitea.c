/*
 * Gitea's webhooks.  Gitea copies GitHub's (api/hooks-github.c) and
 * sends some of GitHub's headers besides its own.
 *
 * - The delivery id: Gitea sends X-Gitea-Delivery, X-GitHub-Delivery and
 *   X-Gogs-Delivery; its own is read.
 * - The signature: X-Gitea-Signature, the bare hex HMAC-SHA256 of the raw
 *   body, read first; without it, X-Hub-Signature-256 as GitHub sends it
 *   ("sha256=<hex>").  Missing both, the answer names X-Gitea-Signature.
 * - The event is the X-Gitea-Event header, with GitHub's meanings: "ping"
 *   answered 200, "push" builds, anything else ignored.
 * - The payload is GitHub's: "ref", the pushed commit in "after", the
 *   repository's URLs under repository (clone_url, html_url, ssh_url;
 *   git_url is tried as for GitHub).
 */
#include "config.h"

#include "hooks-int.h"

static enum hook_sig
claimed(struct api_req *req, unsigned char want[HOOK_DIGEST],
    const char **header)
{
	const char *h;

	if ((h = req->header(req, "X-Gitea-Signature")) != NULL) {
		*header = "X-Gitea-Signature";
		return hook_github_hex(h, want);
	}
	if (req->header(req, "X-Hub-Signature-256") != NULL) {
		*header = "X-Hub-Signature-256";
		return hook_github_signature(req, want);
	}
	*header = "X-Gitea-Signature";
	return HOOK_SIG_MALFORMED;
}

static bool
is_push(struct api_req *req, json_t *doc,
    const struct conf_project *signed_by, bool *tag)
{
	(void)doc;
	(void)tag;
	return hook_github_event(req, "X-Gitea-Event", signed_by);
}

const struct hook_forge hook_gitea = {
	.name = "gitea",
	.delivery_header = "X-Gitea-Delivery",
	.claimed = claimed,
	.expected = hook_github_hmac,
	.repo_urls = hook_github_repo_urls,	/* GitHub's payload */
	.nrepo_urls = HOOK_GITHUB_NURLS,
	.commit_key = "after",
	.is_push = is_push,
};
