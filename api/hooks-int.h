/*
 * Between api/hooks.c, which does what every webhook does (the routes,
 * the payload, the project, the delivery id, redelivery, submission,
 * counting), and api/hooks-{github,gitea,gitlab}.c, each of which knows
 * one forge: which headers it sends, how it signs, and where its payload
 * keeps the repository, the pushed commit and the kind of event.
 */
#ifndef KILN_API_HOOKS_INT_H
#define KILN_API_HOOKS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api.h"

enum hook_sig { HOOK_SIG_OK, HOOK_SIG_MALFORMED, HOOK_SIG_NO_MATCH };

/* Every digest compared is a SHA-256: an HMAC, or a token's hash. */
#define HOOK_DIGEST 32

struct hook_forge {
	/* In the path, the delivery records and the metrics: "github". */
	const char *name;
	/* The header that carries the forge's id of a delivery. */
	const char *delivery_header;
	/*
	 * The digest the delivery claims, into want: HOOK_SIG_OK, or
	 * HOOK_SIG_MALFORMED when the header is missing or unreadable.
	 * *header names the header read (or wanted), for the answer.
	 */
	enum hook_sig (*claimed)(struct api_req *req,
	    unsigned char want[HOOK_DIGEST], const char **header);
	/* What a delivery made with `secret` would claim. */
	void (*expected)(struct api_req *req, const char *secret,
	    unsigned char got[HOOK_DIGEST]);
	/* {object, key} of the repository's URLs, in the order tried. */
	const char *const (*repo_urls)[2];
	size_t nrepo_urls;
	/* The payload's key of the pushed commit. */
	const char *commit_key;
	/*
	 * Whether the signed delivery is a push that may build (*tag set
	 * for a tag's): false once it has answered (a ping, an ignored
	 * event, a missing event header).  signed_by is the project whose
	 * secret matched.
	 */
	bool (*is_push)(struct api_req *req, json_t *doc,
	    const struct conf_project *signed_by, bool *tag);
};

extern const struct hook_forge hook_github;
extern const struct hook_forge hook_gitea;
extern const struct hook_forge hook_gitlab;

/* Answer 2xx {"ignored": reason}, the reason cut to printable ASCII. */
enum api_result hook_ignored(struct api_req *req, unsigned status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * GitHub's conventions, which Gitea follows too (api/hooks-github.c).
 * hook_github_hex: 64 hex digits into want.  hook_github_signature:
 * X-Hub-Signature-256's "sha256=<hex>".  hook_github_hmac: the HMAC the
 * secret makes of the raw body.  hook_github_event: the event named by
 * the header `name`, a ping answered.
 */
enum hook_sig hook_github_hex(const char *hex,
    unsigned char want[HOOK_DIGEST]);
enum hook_sig hook_github_signature(struct api_req *req,
    unsigned char want[HOOK_DIGEST]);
void hook_github_hmac(struct api_req *req, const char *secret,
    unsigned char got[HOOK_DIGEST]);
/* Where GitHub's payload (and Gitea's copy of it) names the repository. */
#define HOOK_GITHUB_NURLS 4
extern const char *const hook_github_repo_urls[HOOK_GITHUB_NURLS][2];
bool hook_github_event(struct api_req *req, const char *name,
    const struct conf_project *signed_by);

#endif
