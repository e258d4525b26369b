/*
 * A job's plan from kiln-worker fetch's description of its commit
 * (daemon/jobplan.c): which recipe wins, targets named by the
 * repository, the Go toolchain, the deps step, and clear errors.
 */
#include "config.h"

#include "api/api.h"
#include "lib/validate.h"
#include "daemon/jobplan.h"
#include "unit.h"

static struct toolchain tcv[] = {
	{ "/usr/lib/go-1.19/bin/go", "/usr/lib/go-1.19/bin", "go1.19.8", "a" },
	{ "/usr/lib/go-1.21/bin/go", "/usr/lib/go-1.21/bin", "go1.21.13", "b" },
	{ "/usr/lib/go-1.22/bin/go", "/usr/lib/go-1.22/bin", "go1.22.12", "c" },
	{ "/usr/lib/go-1.23/bin/go", "/usr/lib/go-1.23/bin", "go1.23.5", "d" },
};
static const struct toolchains tcs = { tcv, 4 };

/* jobplan_make over a description written as JSON text. */
static int
make(struct jobplan *p, const char *recipe, const char *desc, bool needs,
    char *why, size_t whysize)
{
	struct job_target jt[2] = { { .target = "linux/amd64" },
	    { .target = "linux/arm64" } };
	struct job job = { .repo = "https://example.com/team/tool.git",
	    .ref = "main", .recipe = (char *)recipe,
	    .commit = "0123456789abcdef0123456789abcdef01234567",
	    .targets = jt, .ntargets = 2 };
	struct kiln_config conf;
	json_error_t jerr;
	json_t *d = json_loads(desc, 0, &jerr);
	int rc;

	if (d == NULL)
		fprintf(stderr, "  bad test JSON: %s\n", jerr.text);
	CHECK(d != NULL);
	memset(p, 0, sizeof *p);
	conf_defaults(&conf);
	rc = jobplan_make(p, &job, d, needs, &tcs, &conf, validate_recipe, why,
	    whysize);
	conf_free(&conf);
	json_decref(d);
	return rc;
}

static void
go_mod_picks_the_lowest_satisfying_go(void)
{
	struct jobplan p;
	char why[512];

	CHECK_INT(make(&p, NULL, "{\"commit_time\": 5, \"has_go_mod\": true, "
	    "\"go_mod\": {\"go\": \"1.22.0\", \"toolchain\": \"\", "
	    "\"requires\": true}, \"vendored\": false, \"tag\": \"v1.0.0\"}",
	    false, why, sizeof why), 0);
	CHECK_STR(p.recipe, "{\"kind\":\"go\"}");
	CHECK_STR(p.go_version, "go1.22.12");
	CHECK_STR(p.go_bindir, "/usr/lib/go-1.22/bin");
	CHECK(p.deps);			/* requirements, no vendor/ */
	CHECK_STR(p.tag, "v1.0.0");
	CHECK_INT(p.commit_time, 5);
	jobplan_free(&p);

	/* vendor/ is used as Go uses it: no deps step. */
	CHECK_INT(make(&p, NULL, "{\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"1.21\", \"toolchain\": \"\", \"requires\": true}, "
	    "\"vendored\": true}", false, why, sizeof why), 0);
	CHECK_STR(p.go_version, "go1.21.13");
	CHECK(!p.deps && p.vendored);
	jobplan_free(&p);

	/* A recipe's pin wins. */
	CHECK_INT(make(&p, "{\"go\":\"1.23\",\"kind\":\"go\"}", "{\"has_go_mod\": "
	    "true, \"go_mod\": {\"go\": \"1.21.0\", \"toolchain\": \"\", "
	    "\"requires\": false}}", false, why, sizeof why), 0);
	CHECK_STR(p.go_version, "go1.23.5");
	CHECK(!p.deps);
	jobplan_free(&p);

	/* None satisfies: named, with what is installed; this host's lack
	 * (another host may have it), not a bad go.mod. */
	CHECK_INT(make(&p, NULL, "{\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"1.99\", \"toolchain\": \"\", \"requires\": false}}", false, why,
	    sizeof why), JOBPLAN_ENOTOOL);
	CHECK(strstr(why, "1.99") != NULL && strstr(why, "go1.23.5") != NULL);
	/*
	 * A pin that contradicts go.mod is the recipe's error on every
	 * host, not this host's lack: an exact release below the go line,
	 * a series older than the go line's.
	 */
	CHECK_INT(make(&p, "{\"go\":\"1.22.5\",\"kind\":\"go\"}",
	    "{\"has_go_mod\": true, \"go_mod\": {\"go\": \"1.22.6\", "
	    "\"toolchain\": \"\", \"requires\": false}}", false, why,
	    sizeof why), -1);
	CHECK(strstr(why, "go.mod needs go >= 1.22.6") != NULL);
	CHECK_INT(make(&p, "{\"go\":\"1.21\",\"kind\":\"go\"}",
	    "{\"has_go_mod\": true, \"go_mod\": {\"go\": \"1.22.0\", "
	    "\"toolchain\": \"\", \"requires\": false}}", false, why,
	    sizeof why), -1);
	/* A series whose newer release another host may have. */
	CHECK_INT(make(&p, "{\"go\":\"1.21\",\"kind\":\"go\"}",
	    "{\"has_go_mod\": true, \"go_mod\": {\"go\": \"1.21.99\", "
	    "\"toolchain\": \"\", \"requires\": false}}", false, why,
	    sizeof why), JOBPLAN_ENOTOOL);
	CHECK_INT(make(&p, "{\"go\":\"1.22.99\",\"kind\":\"go\"}",
	    "{\"has_go_mod\": true, \"go_mod\": {\"go\": \"1.22.0\", "
	    "\"toolchain\": \"\", \"requires\": false}}", false, why,
	    sizeof why), JOBPLAN_ENOTOOL);
	/* go.mod that the worker could not read. */
	CHECK_INT(make(&p, NULL, "{\"has_go_mod\": true, \"go_mod_error\": "
	    "\"go.mod:3: invalid go version '1.x'\"}", false, why, sizeof why),
	    -1);
	CHECK_STR(why, "go.mod:3: invalid go version '1.x'");
}

static void
command_recipes_need_no_go(void)
{
	struct jobplan p;
	char why[512];

	CHECK_INT(make(&p, "{\"command\":\"make\",\"kind\":\"command\"}",
	    "{\"has_go_mod\": false}", false, why, sizeof why), 0);
	CHECK(p.go_version == NULL && !p.deps);
	jobplan_free(&p);
}

static void
goreleaser_recipe_and_targets(void)
{
	struct jobplan p;
	char why[512];
	const char *desc = "{\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"1.22.0\", \"toolchain\": \"\", \"requires\": false}, "
	    "\"goreleaser\": {\"file\": \".goreleaser.yaml\", \"recipe\": "
	    "{\"kind\": \"go\", \"builds\": [{\"package\": \"./cmd/t\", "
	    "\"targets\": [\"linux/amd64\", \"windows/amd64\"]}]}, "
	    "\"targets\": [\"linux/amd64\", \"linux/amd64\", \"windows/amd64\"], "
	    "\"ignored\": [\"archives: not used by kiln's build step, "
	    "ignored\"]}}";

	CHECK_INT(make(&p, NULL, desc, true, why, sizeof why), 0);
	CHECK(strstr(p.recipe, "\"builds\"") != NULL);
	CHECK_INT(p.ntargets, 2);		/* deduplicated */
	CHECK_STR(p.targets[0], "linux/amd64");
	CHECK_STR(p.targets[1], "windows/amd64");
	CHECK_INT(p.nnotes, 2);
	CHECK_STR(p.notes[0], "recipe from .goreleaser.yaml");
	CHECK(strstr(p.notes[1], "archives") != NULL &&
	    strstr(p.notes[1], "ignored") != NULL);
	jobplan_free(&p);

	/* The request's recipe wins over the file; targets still from it. */
	CHECK_INT(make(&p, "{\"kind\":\"go\"}", desc, true, why, sizeof why), 0);
	CHECK_STR(p.recipe, "{\"kind\":\"go\"}");
	CHECK_INT(p.ntargets, 2);
	jobplan_free(&p);

	/* The worker is not trusted: its recipe is validated again. */
	CHECK_INT(make(&p, NULL, "{\"goreleaser\": {\"file\": \".goreleaser.yml\","
	    " \"recipe\": {\"kind\": \"go\", \"rm\": \"-rf\"}, \"targets\": []}}",
	    false, why, sizeof why), -1);
	CHECK(strstr(why, ".goreleaser.yml: recipe: unknown field 'rm'") !=
	    NULL);
	CHECK_INT(make(&p, NULL, "{\"goreleaser_error\": \".goreleaser.yaml: "
	    "builds[0].builder: 'rust' is not supported\"}", false, why,
	    sizeof why), -1);
	CHECK(strstr(why, "rust") != NULL);
}

static void
kiln_json_targets_and_missing_targets(void)
{
	struct jobplan p;
	char why[512];

	CHECK_INT(make(&p, NULL, "{\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"\", \"toolchain\": \"\", \"requires\": false}, \"kiln_json\": "
	    "\"{\\\"targets\\\": [\\\"linux/arm\\\", \\\"linux/arm64\\\"]}\"}",
	    true, why, sizeof why), 0);
	CHECK_STR(p.recipe, "{\"kind\":\"go\"}");	/* from go.mod */
	CHECK_INT(p.ntargets, 2);
	CHECK_STR(p.targets[0], "linux/arm/v7");	/* normalized */
	CHECK_STR(p.go_version, "go1.19.8");	/* no go line: lowest */
	jobplan_free(&p);

	CHECK_INT(make(&p, NULL, "{\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"\", \"toolchain\": \"\", \"requires\": false}}", true, why,
	    sizeof why), -1);
	CHECK(strstr(why, "no targets") != NULL);
	CHECK_INT(make(&p, NULL, "{\"kiln_json\": \"{\\\"targets\\\": "
	    "[\\\"plan9/vax\\\"]}\", \"has_go_mod\": true}", true, why,
	    sizeof why), -1);
	CHECK(strstr(why, ".kiln.json: targets[0]") != NULL);
	CHECK_INT(make(&p, NULL, "{\"has_go_mod\": false}", false, why,
	    sizeof why), -1);
	CHECK(strstr(why, "no recipe") != NULL);
}

/* What no target can build fails the job at once, naming it. */
static void
unbuildable_targets_fail_the_job(void)
{
	struct jobplan p;
	char why[512];
	const char *gomod = "\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"1.22.0\", \"toolchain\": \"\", \"requires\": false}";
	char desc[256];

	snprintf(desc, sizeof desc, "{%s}", gomod);
	CHECK_INT(make(&p, "{\"kind\":\"go\",\"ldflags\":\"-X m.v="
	    "{{.Versoin}}\"}", desc, false, why, sizeof why), -1);
	CHECK(strstr(why, "linux/amd64: recipe.ldflags: unknown template "
	    "{{.Versoin}}") == why);
	CHECK_INT(make(&p, "{\"kind\":\"go\",\"builds\":[{\"targets\":"
	    "[\"linux/amd64\"]}]}", desc, false, why, sizeof why), -1);
	CHECK(strstr(why, "linux/arm64: no build of the recipe") == why);
}

/*
 * A cgo target whose C toolchain this host lacks does not fail the plan:
 * it is noted, with the reason, for the scheduler (one host fails the
 * job with it, a farm's host refuses the target); the others stand.
 */
static void
missing_c_toolchain_is_noted(void)
{
	struct job_target jt[2] = { { .target = "linux/amd64" },
	    { .target = "linux/arm64" } };
	struct job job = { .repo = "https://example.com/team/tool.git",
	    .ref = "main", .recipe = (char *)"{\"kind\":\"go\",\"cgo\":true}",
	    .commit = "0123456789abcdef0123456789abcdef01234567",
	    .targets = jt, .ntargets = 2 };
	struct kiln_config conf;
	struct jobplan p;
	char why[512] = "";
	json_t *d = json_loads("{\"has_go_mod\": true, \"go_mod\": {\"go\": "
	    "\"1.22.0\", \"toolchain\": \"\", \"requires\": false}}", 0, NULL);

	conf_defaults(&conf);
	for (size_t i = 0; i < conf.ntoolchains; i++)
		if (strcmp(conf.toolchains[i].target, "linux/arm64") == 0)
			snprintf(conf.toolchains[i].triple,
			    sizeof conf.toolchains[i].triple, "nope-linux-gnu");
	memset(&p, 0, sizeof p);
	CHECK_INT(jobplan_make(&p, &job, d, false, &tcs, &conf,
	    validate_recipe, why, sizeof why), 0);
	CHECK_INT(p.nmissing, 1);
	CHECK(jobplan_missing(&p, "linux/amd64") == NULL);
	CHECK(jobplan_missing(&p, "linux/arm64") != NULL &&
	    strstr(jobplan_missing(&p, "linux/arm64"), "cgo: the C toolchain "
	    "for linux/arm64 (nope-linux-gnu) is not installed") != NULL);
	jobplan_free(&p);
	CHECK_INT(p.nmissing, 0);
	conf_free(&conf);
	json_decref(d);
}

/*
 * A .goreleaser.yaml's name template that uses GoReleaser's own functions
 * gives way to kiln's default name, with a note, whether or not the
 * repository also has a .kiln.json that names only its targets: the
 * outputs came from the GoReleaser file either way.
 */
static void
goreleaser_templates_are_lenient_beside_kiln_json(void)
{
	static const char *const kj[] = { "", "\"kiln_json\": \"{\\\"targets"
	    "\\\": [\\\"linux/amd64\\\"]}\", " };
	struct jobplan p;
	char why[512], desc[1024];

	for (size_t i = 0; i < 2; i++) {
		snprintf(desc, sizeof desc, "{%s\"has_go_mod\": true, "
		    "\"go_mod\": {\"go\": \"\", \"toolchain\": \"\", "
		    "\"requires\": false}, \"goreleaser\": {\"file\": "
		    "\".goreleaser.yaml\", \"recipe\": {\"kind\": \"go\"}, "
		    "\"targets\": [\"linux/amd64\"], \"outputs\": {\"archives\": "
		    "{\"formats\": [\"tar.gz\"], \"name_template\": "
		    "\"{{ .ProjectName }}_{{ title .Os }}\"}}}}", kj[i]);
		why[0] = '\0';
		CHECK_INT(make(&p, NULL, desc, true, why, sizeof why), 0);
		if (why[0] != '\0')
			fprintf(stderr, "  %s\n", why);
		CHECK(p.outputs != NULL && strstr(p.outputs, "title") == NULL);
		bool noted = false;
		for (size_t k = 0; k < p.nnotes; k++)
			noted |= strstr(p.notes[k], ".goreleaser.yaml: "
			    "archives.name_template") != NULL;
		CHECK(noted);
		jobplan_free(&p);
	}
}

UNIT_MAIN(
	TEST(goreleaser_templates_are_lenient_beside_kiln_json),
	TEST(unbuildable_targets_fail_the_job),
	TEST(missing_c_toolchain_is_noted),
	TEST(go_mod_picks_the_lowest_satisfying_go),
	TEST(command_recipes_need_no_go),
	TEST(goreleaser_recipe_and_targets),
	TEST(kiln_json_targets_and_missing_targets),
)
