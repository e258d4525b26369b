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
		json_t *j;
		char *s;

		/* Invariants of an accepted request. */
		if (job->ntargets == 0 || job->ntargets > JOB_MAX_TARGETS ||
		    job->repo == NULL || job->ref == NULL)
			abort();
		j = api_job_json(job);
		s = json_dumps(j, JSON_COMPACT);
		if (s == NULL)
			abort();	/* the API could not render it */
		free(s);
		json_decref(j);
		job_free(job);
	} else if ((status != 400 && status != 422) || detail[0] == '\0')
		abort();	/* every refusal says why */
	return 0;
}
