#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

static const char *const job_states[] = {
	"queued", "running", "succeeded", "failed", "canceled",
};
static const char *const target_states[] = {
	"queued", "running", "succeeded", "failed", "timed_out", "canceled",
};

void
artifacts_free(struct artifact *arts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(arts[i].name);
		free(arts[i].sha256);
	}
	free(arts);
}

void
job_free(struct job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->ntargets; i++) {
		free(job->targets[i].error);
		free(job->targets[i].toolchain);
		free(job->targets[i].verified);
		free(job->targets[i].host);
		artifacts_free(job->targets[i].artifacts,
		    job->targets[i].nartifacts);
	}
	free(job->targets);
	free(job->repo);
	free(job->ref);
	free(job->commit);
	free(job->recipe);
	free(job->outputs);
	free(job->error);
	free(job->sums_sha256);
	free(job->sig_sha256);
	free(job->prov_sha256);
	free(job->project);
	free(job->notify_url);
	free(job->notify_state);
	free(job->notify_error);
	free(job->delivery_forge);
	free(job->delivery_id);
	free(job->submitted_by);
	free(job->signed_by);
	free(job);
}

void
job_free_array(struct job **jobs, size_t n)
{
	if (jobs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		job_free(jobs[i]);
	free(jobs);
}

const char *
job_state_name(enum job_state s)
{
	return (unsigned)s < ARRAY_SIZE(job_states) ? job_states[s] : "unknown";
}

int
job_state_parse(const char *s, enum job_state *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(job_states); i++) {
		if (strcmp(s, job_states[i]) == 0) {
			*out = (enum job_state)i;
			return 0;
		}
	}
	return -1;
}

const char *
target_state_name(enum target_state s)
{
	return (unsigned)s < ARRAY_SIZE(target_states) ? target_states[s] :
	    "unknown";
}

int
target_state_parse(const char *s, enum target_state *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(target_states); i++) {
		if (strcmp(s, target_states[i]) == 0) {
			*out = (enum target_state)i;
			return 0;
		}
	}
	return -1;
}

bool
target_state_terminal(enum target_state s)
{
	return s != TARGET_QUEUED && s != TARGET_RUNNING;
}

bool
job_state_terminal(enum job_state s)
{
	return s != JOB_QUEUED && s != JOB_RUNNING;
}

const char *
job_trust_name(enum job_trust t)
{
	switch (t) {
	case TRUST_PROTECTED: return "protected";
	case TRUST_UNPROTECTED: return "unprotected";
	case TRUST_UNKNOWN: break;
	}
	return NULL;
}

enum job_trust
job_trust_parse(const char *s)
{
	if (s != NULL && strcmp(s, "protected") == 0)
		return TRUST_PROTECTED;
	if (s != NULL && strcmp(s, "unprotected") == 0)
		return TRUST_UNPROTECTED;
	return TRUST_UNKNOWN;
}
