/* libFuzzer: YAML (a repository's .goreleaser.yaml) to JSON, then to a
 * kiln recipe.  Either step may refuse, always with a message in valid
 * UTF-8 (YAML errors name a line); an accepted file gives a recipe that
 * is JSON, builds at least one target, and names only valid targets. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/goreleaser.h"
#include "lib/target.h"
#include "lib/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Messages reach users: they must be valid UTF-8 (jansson checks). */
static void
check_text(const char *s)
{
	json_t *j = json_string(s);

	if (j == NULL)
		abort();
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct goreleaser_result r;
	struct target t;
	json_t *doc = NULL, *rec;
	char err[512] = "", terr[160];

	if (yaml_to_json(&doc, (const char *)data, size, err,
	    sizeof err) != 0) {
		if (strncmp(err, "line ", 5) != 0 &&
		    strncmp(err, "out of memory", 13) != 0)
			abort();
		check_text(err);
		return 0;
	}
	if (doc == NULL)
		abort();
	err[0] = '\0';
	if (goreleaser_to_recipe(&r, doc, "fuzz", err, sizeof err) != 0) {
		if (err[0] == '\0' || r.recipe != NULL || r.targets != NULL)
			abort();
		check_text(err);
	} else {
		rec = json_loads(r.recipe, 0, NULL);
		if (rec == NULL || json_array_size(json_object_get(rec,
		    "builds")) == 0 || r.ntargets == 0 ||
		    r.targets[r.ntargets] != NULL ||
		    r.ignored[r.nignored] != NULL ||
		    r.nignored > GORELEASER_MAX_IGNORED)
			abort();
		for (size_t i = 0; i < r.ntargets; i++)
			if (target_parse(&t, r.targets[i], terr,
			    sizeof terr) != 0 || strcmp(t.name,
			    r.targets[i]) != 0 || (i > 0 &&
			    strcmp(r.targets[i - 1], r.targets[i]) >= 0))
				abort();
		for (size_t i = 0; i < r.nignored; i++)
			check_text(r.ignored[i]);
		json_decref(rec);
		goreleaser_result_free(&r);
	}
	json_decref(doc);
	return 0;
}
