/*
 * YAML to JSON (lib/yaml.c, libyaml's event parser): scalar types
 * as YAML 1.2's core schema has them, quoted versus plain, structure,
 * anchors, aliases and merge keys, and the refusals a hostile file gets:
 * duplicate keys, alias bombs, deep nesting, syntax errors with their
 * line and column, a second document.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include "lib/yaml.h"
#include "unit.h"

/* Parse `text` and expect its compact JSON (sorted keys) to be `want`. */
static void
expect_json(const char *text, const char *want)
{
	json_t *v = NULL;
	char err[256] = "", *got;

	if (yaml_to_json(&v, text, strlen(text), err, sizeof err) != 0) {
		fprintf(stderr, "  yaml_to_json(\"%s\"): %s\n", text, err);
		CHECK(0);
		return;
	}
	got = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	CHECK_STR(got, want);
	free(got);
	json_decref(v);
}

/* Expect a refusal with exactly `want` as the message, or containing
 * it when `exact` is false. */
static void
expect_err(const char *text, size_t len, const char *want, bool exact)
{
	json_t *v = (json_t *)0x1;
	char err[256] = "";

	CHECK_INT(yaml_to_json(&v, text, len, err, sizeof err), -1);
	CHECK(v == (json_t *)0x1);
	if (exact ? strcmp(err, want) != 0 : strstr(err, want) == NULL) {
		fprintf(stderr, "  error \"%s\", expected %s\"%s\"\n", err,
		    exact ? "" : "to contain ", want);
		CHECK(0);
	}
}

static void
plain_scalars_follow_the_core_schema(void)
{
	expect_json("[true, True, TRUE, false, False, FALSE]",
	    "[true,true,true,false,false,false]");
	/* YAML 1.1's booleans are strings in 1.2. */
	expect_json("[yes, no, on, off, y, n, tRUE]",
	    "[\"yes\",\"no\",\"on\",\"off\",\"y\",\"n\",\"tRUE\"]");
	expect_json("[null, Null, NULL, ~, ]", "[null,null,null,null]");
	expect_json("a:\nb: ~\n", "{\"a\":null,\"b\":null}");
	expect_json("[0, 7, 386, -12, 9223372036854775807]",
	    "[0,7,386,-12,9223372036854775807]");
	/* Only canonical decimal becomes a number: text stays as written. */
	expect_json("[007, +1, -0, 1.5, 0x1F, 0o17, 1e3, 9223372036854775808, "
	    "12abc, .inf]",
	    "[\"007\",\"+1\",\"-0\",\"1.5\",\"0x1F\",\"0o17\",\"1e3\","
	    "\"9223372036854775808\",\"12abc\",\".inf\"]");
	expect_json("v: 1.20", "{\"v\":\"1.20\"}");
}

static void
quoted_and_tagged_scalars_are_strings(void)
{
	expect_json("[\"true\", 'false', \"12\", '~', \"null\", '']",
	    "[\"true\",\"false\",\"12\",\"~\",\"null\",\"\"]");
	expect_json("[!!str 12, !!str true, ! 5]", "[\"12\",\"true\",\"5\"]");
	expect_json("a: |\n  line 1\n  line 2\nb: >\n  folded\n  text\n",
	    "{\"a\":\"line 1\\nline 2\\n\",\"b\":\"folded text\\n\"}");
	expect_json("\"t\\u00e9\\tx\"", "\"té\\tx\"");
}

static void
structure_and_documents(void)
{
	expect_json("", "null");
	expect_json("# only a comment\n", "null");
	expect_json("---\n", "null");
	expect_json("--- hello\n...\n", "\"hello\"");
	{
		json_t *v = NULL;
		char err[64];

		CHECK_INT(yaml_to_json(&v, NULL, 0, err, sizeof err), 0);
		CHECK(json_is_null(v));
		json_decref(v);
	}
	expect_json("version: 2\nbuilds:\n  - id: x\n    goos: [linux, "
	    "darwin]\n    env:\n      - CGO_ENABLED=0\n",
	    "{\"builds\":[{\"env\":[\"CGO_ENABLED=0\"],\"goos\":[\"linux\","
	    "\"darwin\"],\"id\":\"x\"}],\"version\":2}");
	expect_json("{a: [1, {b: []}], c: {}}",
	    "{\"a\":[1,{\"b\":[]}],\"c\":{}}");
	/* Keys are text, whatever they look like. */
	expect_json("{1: a, true: b, ~: c, \"q\": d}",
	    "{\"1\":\"a\",\"q\":\"d\",\"true\":\"b\",\"~\":\"c\"}");
	/* File order is kept (messages about keys follow it). */
	{
		json_t *v = NULL;
		char err[128];
		const char *first = NULL, *k;
		json_t *x;

		CHECK_INT(yaml_to_json(&v, "zz: 1\naa: 2\n", 12, err,
		    sizeof err), 0);
		json_object_foreach(v, k, x) {
			(void)x;
			if (first == NULL)
				first = k;
		}
		CHECK_STR(first, "zz");
		json_decref(v);
	}
}

static void
anchors_aliases_and_merge_keys(void)
{
	json_t *v = NULL;
	char err[256];

	expect_json("base: &b {x: 1}\nuse: *b\nname: &n hi\nagain: *n\n",
	    "{\"again\":\"hi\",\"base\":{\"x\":1},\"name\":\"hi\","
	    "\"use\":{\"x\":1}}");
	/* An alias is a copy: changing one leaves the other. */
	CHECK_INT(yaml_to_json(&v, "a: &a [1]\nb: *a\n", 16, err, sizeof err),
	    0);
	CHECK(json_object_get(v, "a") != json_object_get(v, "b"));
	json_decref(v);
	/* Merge keys as go-yaml applies them: explicit keys win, then the
	 * first merged mapping. */
	expect_json("d: &d {x: 1, y: 2}\ne: &e {y: 9, z: 3}\n"
	    "m:\n  <<: [*d, *e]\n  y: 5\n",
	    "{\"d\":{\"x\":1,\"y\":2},\"e\":{\"y\":9,\"z\":3},"
	    "\"m\":{\"x\":1,\"y\":5,\"z\":3}}");
	expect_json("d: &d {x: 1}\nm: {y: 2, <<: *d}\n",
	    "{\"d\":{\"x\":1},\"m\":{\"x\":1,\"y\":2}}");
	/* Quoted, "<<" is an ordinary key. */
	expect_json("m: {\"<<\": 1}", "{\"m\":{\"<<\":1}}");
	expect_err("m:\n  <<: 5\n", 11, "line 2, column 7: a merge key ('<<') "
	    "takes a mapping or a list of mappings", true);
	expect_err("a: *nope\n", 9, "line 1, column 4: unknown alias '*nope'",
	    true);
	/* An alias inside its own anchor: a cycle, refused. */
	expect_err("a: &a [1, *a]\n", 14, "unknown alias '*a'", false);
}

static void
duplicate_and_complex_keys_fail(void)
{
	expect_err("a: 1\nb: 2\na: 3\n", 15, "line 3, column 1: duplicate "
	    "key 'a'", true);
	expect_err("x:\n  k: 1\n  \"k\": 2\n", 19, "line 3, column 3: "
	    "duplicate key 'k'", true);
	expect_err("? [a, b]\n: c\n", 13, "line 1, column 3: a mapping key "
	    "must be a scalar", true);
	expect_err("\"a\\0b\": 1\n", 10, "a key contains a NUL byte", false);
}

/* Billion laughs: each level ten aliases of the one below. */
static void
alias_bomb_is_capped(void)
{
	const char *bomb =
	    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
	    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	char *text;
	size_t n;

	expect_err(bomb, strlen(bomb), "more than 100000 values (an alias "
	    "counts as often as it is used)", false);
	/* Up to d: about 12,000 values, allowed. */
	n = strstr(bomb, "e:") - bomb;
	text = strndup(bomb, n);
	{
		json_t *v = NULL;
		char err[256];

		CHECK_INT(yaml_to_json(&v, text, n, err, sizeof err), 0);
		CHECK_INT(json_array_size(json_object_get(v, "d")), 10);
		json_decref(v);
	}
	free(text);

	/* Few values but much text: 1 MiB aliased 20 times. */
	n = 1024 * 1024;
	text = malloc(n + 200);
	strcpy(text, "s: &s \"");
	memset(text + 7, 'x', n);
	strcpy(text + 7 + n, "\"\nt: [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s, "
	    "*s, *s, *s, *s, *s, *s, *s, *s, *s, *s]\n");
	expect_err(text, strlen(text), "more than 16777216 bytes of text",
	    false);
	free(text);
}

static void
nesting_is_capped(void)
{
	char text[400];
	json_t *v = NULL;
	char err[256];

	/* 64 levels parse, 65 do not. */
	memset(text, '[', 64);
	memset(text + 64, ']', 64);
	CHECK_INT(yaml_to_json(&v, text, 128, err, sizeof err), 0);
	json_decref(v);
	memset(text, '[', 65);
	memset(text + 65, ']', 65);
	expect_err(text, 130, "line 1, column 65: nesting deeper than 64 "
	    "levels", true);
	/* An alias counts its own depth where it lands. */
	memset(text, 0, sizeof text);
	strcpy(text, "a: &a ");
	memset(text + 6, '[', 40);
	memset(text + 46, ']', 40);
	strcat(text, "\nb: ");
	memset(text + strlen(text), '[', 30);
	strcat(text, "*a");
	memset(text + strlen(text), ']', 30);
	expect_err(text, strlen(text), "nesting deeper than 64 levels", false);
}

static void
syntax_errors_name_line_and_column(void)
{
	expect_err("a: 1\n  b: 2\n", 12, "line 2, column 4: mapping values "
	    "are not allowed in this context", true);
	expect_err("a: [1, 2\nb: 3\n", 14, "line 2, column 2: did not find "
	    "expected ',' or ']' (while parsing a flow sequence at line 1, "
	    "column 4)", true);
	expect_err("a: \"open\n", 9, "found unexpected end of stream "
	    "(while scanning a quoted scalar at line 1, column 4)", false);
	expect_err("a: 1\n\tb: 2\n", 11, "line 2, column 1: found a tab "
	    "character that violates indentation", false);
	/* Not UTF-8: the reader's error, with where the byte is. */
	expect_err("a: 1\nb: \xff\n", 10, "line 2, column 4: invalid leading "
	    "UTF-8 octet (byte 0xff)", true);
	expect_err("a: x\0y\n", 7, "line 1, column 5: control characters "
	    "are not allowed", false);
}

static void
a_second_document_fails(void)
{
	expect_err("a: 1\n---\nb: 2\n", 14, "line 2, column 1: more than one "
	    "YAML document (a second '---')", true);
	expect_err("--- 1\n--- 2\n", 12, "more than one YAML document", false);
	/* One document with both markers is fine. */
	expect_json("---\na: 1\n...\n", "{\"a\":1}");
}

UNIT_MAIN(
	TEST(plain_scalars_follow_the_core_schema),
	TEST(quoted_and_tagged_scalars_are_strings),
	TEST(structure_and_documents),
	TEST(anchors_aliases_and_merge_keys),
	TEST(duplicate_and_complex_keys_fail),
	TEST(alias_bomb_is_capped),
	TEST(nesting_is_capped),
	TEST(syntax_errors_name_line_and_column),
	TEST(a_second_document_fails),
)
