/*
 * Webhook deliveries in flight: from the start of a delivery's
 * redelivery lookups (api/hooks.c) until its job's commit returned
 * (api/jobs.c), its delivery id and its push (project, ref, pushed
 * commit) are listed here.  A second delivery of the same push that
 * arrives meanwhile answers 409 (retry) instead of finding nothing in
 * the queue and building the push twice: the lookups and the commit both
 * complete later, on other loop iterations, so without the list the two
 * would interleave.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../lib/xmalloc.h"

struct api_pending {
	char *key;		/* forge "\n" delivery id */
	char *push;		/* NULL: a job without project or commit */
	struct api_pending *prev, *next;
};
static struct api_pending *pending;

/* Neither a forge's name, a project name nor a commit id holds a
 * newline; a delivery id holds only printable ASCII. */
static char *
delivery_key(const char *forge, const char *id)
{
	return xasprintf("%s\n%s", forge, id);
}

static char *
push_key(const char *project, const char *ref, const char *commit)
{
	return xasprintf("%s\n%s\n%s", project, ref, commit);
}

bool
api_delivery_pending(const char *forge, const char *id)
{
	char *k = delivery_key(forge, id);
	bool found = false;

	for (struct api_pending *p = pending; p && !found; p = p->next)
		found = strcmp(p->key, k) == 0;
	free(k);
	return found;
}

bool
api_push_pending(const char *project, const char *ref, const char *commit)
{
	char *k = push_key(project, ref, commit);
	bool found = false;

	for (struct api_pending *p = pending; p && !found; p = p->next)
		found = p->push != NULL && strcmp(p->push, k) == 0;
	free(k);
	return found;
}

struct api_pending *
api_pending_hold(const struct job *job)
{
	struct api_pending *p;

	if (job->delivery_id == NULL)
		return NULL;
	p = xcalloc(1, sizeof *p);
	p->key = delivery_key(job->delivery_forge, job->delivery_id);
	if (job->project != NULL && job->commit != NULL)
		p->push = push_key(job->project, job->ref, job->commit);
	p->next = pending;
	if (p->next != NULL)
		p->next->prev = p;
	pending = p;
	return p;
}

void
api_pending_release(struct api_pending *p)
{
	if (p == NULL)
		return;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	free(p->key);
	free(p->push);
	free(p);
}
