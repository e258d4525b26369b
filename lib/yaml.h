/*
 * YAML (a repository's .goreleaser.yaml) to a JSON value, with libyaml's
 * event parser.  The input is hostile: nesting, the number of values and
 * the text that aliases expand to are all capped, so an alias bomb fails
 * with an error instead of eating the daemon's memory.
 */
#ifndef KILN_YAML_H
#define KILN_YAML_H

#include <stddef.h>

#include <jansson.h>

/* Containers nested deeper than this are refused. */
#define YAML_MAX_DEPTH 64
/* Keys and values produced, aliases counted as often as they are used. */
#define YAML_MAX_NODES 100000
/* Bytes of keys and scalars produced, aliases counted likewise. */
#define YAML_MAX_TEXT (16 * 1024 * 1024)

/*
 * Parse one YAML document into *out.  Mappings become objects (keys must
 * be scalars; a duplicate key is an error; "<<" merge keys are applied as
 * go-yaml applies them), sequences arrays, scalars strings, except plain
 * (unquoted, untagged) scalars that are, as in YAML 1.2's core schema:
 * true/True/TRUE/false/False/FALSE -> booleans (yes/no/on/off stay
 * strings), null/Null/NULL/~/empty -> null, canonical decimal integers
 * ("0", "-12", no leading zero or '+', within 64 bits) -> integers, so
 * that an integer written back as text is what the file said.  Anything
 * else (floats, octal, hex) stays a string.
 *
 * An empty stream or document gives JSON null; a second document is an
 * error.  Errors read "line L, column C: <problem>" (1-based).
 * Returns 0, or -1 with err.
 */
int yaml_to_json(json_t **out, const char *text, size_t len, char *err,
    size_t errsize);

#endif

/*
 * libyaml's header is yaml.h too, and -I daemon puts this file first in
 * the search.  yaml.c defines KILN_YAML_LIBYAML and includes <yaml.h>,
 * which finds this file through the include path; #include_next then
 * continues past this directory to libyaml's.
 */
#if defined(KILN_YAML_LIBYAML) && !defined(YAML_H)
#include_next <yaml.h>
#endif
