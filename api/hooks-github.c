/*
 * GitHub's webhooks, and the conventions of GitHub's that Gitea follows
 * as well (hooks-int.h).
 *
 * - The delivery id is X-GitHub-Delivery, a UUID.
 * - The signature is X-Hub-Signature-256: "sha256=" and the hex
 *   HMAC-SHA256 of the raw body under the hook's secret.  A form
 *   delivery (payload=...) is signed as sent, before decoding.
 * - The event is the X-GitHub-Event header.  "ping" comes when a hook is
 *   made and is answered 200 with the project it reached; "push" builds
 *   (a tag's too: its ref is refs/tags/...); anything else is ignored.
 * - The payload keeps the ref in "ref", the pushed commit in "after" (all
 *   zeros, with "deleted": true, when the ref was deleted) and the
 *   repository's URLs in repository.clone_url, html_url, ssh_url and
 *   git_url.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "hooks-int.h"
#include "../daemon/sign.h"
#include "../lib/util.h"

enum hook_sig
hook_github_hex(const char *hex, unsigned char want[HOOK_DIGEST])
{
	if (strlen(hex) != 64 || sodium_hex2bin(want, HOOK_DIGEST, hex,
	    64, NULL, NULL, NULL) != 0)
		return HOOK_SIG_MALFORMED;
	return HOOK_SIG_OK;
}

enum hook_sig
hook_github_signature(struct api_req *req, unsigned char want[HOOK_DIGEST])
{
	const char *h = req->header(req, "X-Hub-Signature-256");

	if (h == NULL || strncmp(h, "sha256=", 7) != 0)
		return HOOK_SIG_MALFORMED;
	return hook_github_hex(h + 7, want);
}

void
hook_github_hmac(struct api_req *req, const char *secret,
    unsigned char got[HOOK_DIGEST])
{
	sign_hmac_sha256(got, secret, req->body ? req->body : "",
	    req->body_len);
}

bool
hook_github_event(struct api_req *req, const char *name,
    const struct conf_project *signed_by)
{
	const char *event = req->header(req, name);

	if (event == NULL) {
		api_reply_problem(req, 400, "%s header missing", name);
		return false;
	}
	if (strcmp(event, "ping") == 0) {
		api_reply_json(req, 200, json_pack("{s:b, s:s}", "ok", 1,
		    "project", signed_by->name));
		return false;
	}
	if (strcmp(event, "push") != 0) {
		hook_ignored(req, 202, "event '%.64s' does not build "
		    "(push does)", event);
		return false;
	}
	return true;
}

static enum hook_sig
claimed(struct api_req *req, unsigned char want[HOOK_DIGEST],
    const char **header)
{
	*header = "X-Hub-Signature-256";
	return hook_github_signature(req, want);
}

static bool
is_push(struct api_req *req, json_t *doc,
    const struct conf_project *signed_by, bool *tag)
{
	(void)doc;
	(void)tag;
	return hook_github_event(req, "X-GitHub-Event", signed_by);
}

const char *const hook_github_repo_urls[HOOK_GITHUB_NURLS][2] = {
	{ "repository", "clone_url" }, { "repository", "html_url" },
	{ "repository", "ssh_url" }, { "repository", "git_url" },
};

const struct hook_forge hook_github = {
	.name = "github",
	.delivery_header = "X-GitHub-Delivery",
	.claimed = claimed,
	.expected = hook_github_hmac,
	.repo_urls = hook_github_repo_urls,
	.nrepo_urls = HOOK_GITHUB_NURLS,
	.commit_key = "after",
	.is_push = is_push,
};
