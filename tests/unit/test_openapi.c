/*
 * The OpenAPI document (api/openapi.json, served at /v1/openapi.json)
 * against the router's tables: every route is in the document with its
 * method, and the document names no route the router does not have;
 * every operation has its own operationId, documents its 401 when it
 * needs a token, and answers its errors with the shared Problem.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "unit.h"

static void
lower(char *out, const char *in, size_t size)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

static void
every_route_is_documented(void)
{
	json_error_t err;
	json_t *doc = json_loads(api_openapi_json, 0, &err), *paths;
	const struct api_route *r;
	char m[16];
	size_t n = 0;

	if (doc == NULL) {
		fprintf(stderr, "  openapi.json: line %d: %s\n", err.line,
		    err.text);
		unit_failed_checks++;
		return;
	}
	CHECK_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
	paths = json_object_get(doc, "paths");
	for (size_t i = 0; (r = api_route_at(i)) != NULL; i++) {
		json_t *op;

		lower(m, r->method, sizeof m);
		op = json_object_get(json_object_get(paths, r->pattern), m);
		if (op == NULL) {
			fprintf(stderr, "  %s %s is a route, not in "
			    "openapi.json\n", r->method, r->pattern);
			unit_failed_checks++;
		} else if (json_object_get(op, "responses") == NULL) {
			fprintf(stderr, "  %s %s has no responses\n", r->method,
			    r->pattern);
			unit_failed_checks++;
		}
		n++;
	}
	CHECK(n > 20);
	/* And the other way round. */
	const char *path;
	json_t *item;
	json_object_foreach(paths, path, item) {
		const char *method;
		json_t *op;
		json_object_foreach(item, method, op) {
			bool found = false;
			(void)op;
			for (size_t i = 0; (r = api_route_at(i)) != NULL; i++) {
				lower(m, r->method, sizeof m);
				found |= strcmp(m, method) == 0 &&
				    strcmp(r->pattern, path) == 0;
			}
			if (!found) {
				fprintf(stderr, "  openapi.json has %s %s, the "
				    "router does not\n", method, path);
				unit_failed_checks++;
			}
		}
	}
	json_decref(doc);
}

static void
operations_are_named_and_fail_alike(void)
{
	json_t *doc = json_loads(api_openapi_json, 0, NULL), *paths, *seen;
	const struct api_route *r;
	char m[16];

	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	paths = json_object_get(doc, "paths");
	seen = json_object();
	for (size_t i = 0; (r = api_route_at(i)) != NULL; i++) {
		json_t *op, *resp, *v;
		const char *id, *code;

		lower(m, r->method, sizeof m);
		op = json_object_get(json_object_get(paths, r->pattern), m);
		if (op == NULL)
			continue;	/* every_route_is_documented says so */
		id = json_string_value(json_object_get(op, "operationId"));
		if (id == NULL || !islower((unsigned char)id[0])) {
			fprintf(stderr, "  %s %s: no camelCase operationId\n",
			    r->method, r->pattern);
			unit_failed_checks++;
		} else if (json_object_get(seen, id) != NULL) {
			fprintf(stderr, "  %s %s: operationId %s is taken\n",
			    r->method, r->pattern, id);
			unit_failed_checks++;
		} else
			json_object_set_new(seen, id, json_true());
		resp = json_object_get(op, "responses");
		if (r->scope != API_SCOPE_PUBLIC &&
		    json_object_get(resp, "401") == NULL) {
			fprintf(stderr, "  %s %s needs a token and does not "
			    "document 401\n", r->method, r->pattern);
			unit_failed_checks++;
		}
		json_object_foreach(resp, code, v) {
			const char *ref = json_string_value(json_object_get(v,
			    "$ref"));

			if (code[0] < '4')
				continue;
			if (ref == NULL ||
			    strcmp(ref, "#/components/responses/Problem") != 0) {
				fprintf(stderr, "  %s %s: %s is not the shared "
				    "Problem response\n", r->method, r->pattern,
				    code);
				unit_failed_checks++;
			}
		}
	}
	/* ...which is problem+json of the Problem schema. */
	CHECK(json_object_get(json_object_get(json_object_get(json_object_get(
	    json_object_get(json_object_get(json_object_get(doc,
	    "components"), "responses"), "Problem"), "content"),
	    "application/problem+json"), "schema"), "$ref") != NULL);
	json_decref(seen);
	json_decref(doc);
}

UNIT_MAIN(
	TEST(every_route_is_documented),
	TEST(operations_are_named_and_fail_alike),
)
