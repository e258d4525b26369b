/* libFuzzer: job request JSON -> validation (api_parse_job_request), and
 * for accepted requests the rendering of the job as the API shows it. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "api/api.h"

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
		api_job_render(&b, job);
		j = json_loadb(b.p, b.len, 0, NULL);
		if (j == NULL ||
		    strcmp(json_string_value(json_object_get(j, "repo")),
		    job->repo) != 0 ||
		    strcmp(json_string_value(json_object_get(j, "ref")),
		    job->ref) != 0)
			abort();
		json_decref(j);
		sbuf_free(&b);
		job_free(job);
	} else if ((status != 400 && status != 422) || detail[0] == '\0')
		abort();	/* every refusal says why */
	return 0;
}
