/* libFuzzer: job request JSON -> validation (api_parse_job_request), and
 * for accepted requests the rendering of the job as the API shows it. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "api/api.h"
#include "lib/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct job *job = NULL;
	char detail[512];
	unsigned status = 0;

	if (!init) {
		git_libgit2_init();
		init = 1;
	}
	if (api_parse_job_request((const char *)data, size, &job, &status,
	    detail, sizeof detail) == 0) {
		struct sbuf b = { 0 };
		json_t *j;

		/* Invariants of an accepted request. */
		if (job->ntargets == 0 || job->ntargets > JOB_MAX_TARGETS ||
		    job->repo == NULL || job->ref == NULL)
			abort();
		/* What the API renders of it is valid JSON holding the
		 * same repo and ref. */
		job_render_json(&b, job);
		j = json_loadb(b.p, b.len, 0, NULL);
		if (j == NULL ||
		    strcmp(json_string_value(json_object_get(j, "repo")),
		    job->repo) != 0 ||
		    strcmp(json_string_value(json_object_get(j, "ref")),
		    job->ref) != 0)
			abort();
		json_decref(j);
		sbuf_free(&b);
		/* No accepted URL carries a secret: userinfo only as an
		 * ssh user name, never with a password. */
		{
			const char *a = strstr(job->repo, "://");
			if (a != NULL) {
				size_t alen = strcspn(a + 3, "/?#");
				const char *at = memchr(a + 3, '@', alen);
				if (at != NULL && (strncmp(job->repo, "ssh://",
				    6) != 0 || memchr(a + 3, ':',
				    (size_t)(at - a - 3)) != NULL))
					abort();
			}
		}
		/* The local-repository policy decides without crashing, and
		 * never lets the state directory through. */
		{
			char state[] = "/var/lib/kiln", why[512];
			if (validate_local_repo(true, state, job->repo, why,
			    sizeof why) == 0 &&
			    (strcmp(job->repo, state) == 0 ||
			    strncmp(job->repo, "/var/lib/kiln/", 14) == 0 ||
			    strncmp(job->repo, "file:///var/lib/kiln/", 21) == 0))
				abort();
		}
		job_free(job);
	} else if ((status != 400 && status != 422) || detail[0] == '\0')
		abort();	/* every refusal says why */
	return 0;
}
