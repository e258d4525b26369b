#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmalloc.h"
/*
 * Ours and libyaml's header are both yaml.h.  Through the include path
 * (-I daemon comes first) this finds ours, which then brings libyaml's
 * with #include_next: see its end.
 */
#define KILN_YAML_LIBYAML
#include <yaml.h>

/*
 * libyaml's document API would resolve aliases for us, but into a graph
 * that may be cyclic (an alias inside its own anchor) and that it builds
 * whole before we could count anything.  With the event API each value
 * is counted as it arrives, so every cap holds while parsing.
 */

/* A completed anchored value; aliases get deep copies of it. */
struct anchor {
	json_t *v;
	size_t nodes, bytes;
	int height;		/* containers on the longest path; scalar 0 */
};

/* One open mapping or sequence. */
struct frame {
	json_t *v;
	char *key;		/* pending key, NULL when a key is next */
	size_t keylen;
	yaml_mark_t key_mark;
	bool merge;		/* the pending key is "<<" */
	json_t *merges;		/* mappings to merge in at the end, in order */
	char *anchor;
	size_t nodes, bytes;
	int height;
};

struct ctx {
	struct frame stack[YAML_MAX_DEPTH];
	int depth;
	json_t *root;
	json_t *names;		/* anchor name -> index into anchors */
	struct anchor *anchors;
	size_t nanchors, anchors_cap;
	size_t nodes, bytes;
	char *err;
	size_t errsize;
};

static int
fail(struct ctx *c, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct ctx *c, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, c->errsize, "line %zu, column %zu: ",
	    m->line + 1, m->column + 1);
	if (n < 0 || (size_t)n >= c->errsize)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errsize - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Count what is about to be produced against the caps. */
static int
count(struct ctx *c, const yaml_mark_t *m, size_t nodes, size_t bytes)
{
	if (nodes > YAML_MAX_NODES - c->nodes)
		return fail(c, m, "more than %d values (an alias counts as "
		    "often as it is used)", YAML_MAX_NODES);
	if (bytes > YAML_MAX_TEXT - c->bytes)
		return fail(c, m, "more than %d bytes of text (an alias "
		    "counts as often as it is used)", YAML_MAX_TEXT);
	c->nodes += nodes;
	c->bytes += bytes;
	return 0;
}

static void
anchor_set(struct ctx *c, const char *name, json_t *v, size_t nodes,
    size_t bytes, int height)
{
	json_t *idx = json_object_get(c->names, name);
	struct anchor *a;

	/* A redefined anchor replaces the old one for later aliases. */
	if (idx != NULL) {
		a = &c->anchors[json_integer_value(idx)];
		json_decref(a->v);
	} else {
		if (c->nanchors == c->anchors_cap) {
			c->anchors_cap = c->anchors_cap ?
			    c->anchors_cap * 2 : 16;
			c->anchors = xreallocarray(c->anchors, c->anchors_cap,
			    sizeof *c->anchors);
		}
		json_object_set_new(c->names, name,
		    json_integer((json_int_t)c->nanchors));
		a = &c->anchors[c->nanchors++];
	}
	a->v = json_incref(v);
	a->nodes = nodes;
	a->bytes = bytes;
	a->height = height;
}

/* The value of a scalar that is not a key (see yaml.h for the rules). */
static json_t *
scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *d;
	long long ll;
	char *end;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    ev->data.scalar.tag != NULL)
		return json_stringn(s, n);
	if (n == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
	    strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
	    strcmp(s, "FALSE") == 0)
		return json_false();
	/* Canonical decimal only: the integer prints back as written. */
	d = s[0] == '-' ? s + 1 : s;
	if (strcmp(s, "0") == 0 || (*d >= '1' && *d <= '9' &&
	    strspn(d, "0123456789") == strlen(d) && strlen(s) == n)) {
		errno = 0;
		ll = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer((json_int_t)ll);
	}
	return json_stringn(s, n);
}

/* Hand a finished value to the open container (or make it the root). */
static int
attach(struct ctx *c, json_t *v, size_t nodes, size_t bytes, int height,
    const yaml_mark_t *m)
{
	struct frame *f;
	char kq[72];
	size_t i;
	json_t *e;

	if (c->depth == 0) {
		c->root = v;
		return 0;
	}
	f = &c->stack[c->depth - 1];
	if (json_is_array(f->v))
		json_array_append_new(f->v, v);
	else if (f->merge) {
		/* go-yaml's merge: a mapping or a list of mappings. */
		bool ok = json_is_object(v) || json_is_array(v);

		json_array_foreach(v, i, e)
			if (!json_is_object(e))
				ok = false;
		if (!ok) {
			json_decref(v);
			return fail(c, m, "a merge key ('<<') takes a mapping "
			    "or a list of mappings");
		}
		if (f->merges == NULL)
			f->merges = json_array();
		if (json_is_object(v))
			json_array_append(f->merges, v);
		else
			json_array_extend(f->merges, v);
		json_decref(v);
	} else {
		if (json_object_getn(f->v, f->key, f->keylen) != NULL) {
			json_decref(v);
			util_snippet(kq, sizeof kq, f->key, f->keylen);
			return fail(c, &f->key_mark, "duplicate key '%s'", kq);
		}
		if (json_object_setn_new(f->v, f->key, f->keylen, v) != 0) {
			util_snippet(kq, sizeof kq, f->key, f->keylen);
			return fail(c, &f->key_mark, "key '%s' is not valid "
			    "UTF-8", kq);
		}
	}
	free(f->key);
	f->key = NULL;
	f->merge = false;
	f->nodes += nodes;
	f->bytes += bytes;
	if (height + 1 > f->height)
		f->height = height + 1;
	return 0;
}

/* Is the open container a mapping waiting for its next key? */
static struct frame *
want_key(struct ctx *c)
{
	struct frame *f = c->depth ? &c->stack[c->depth - 1] : NULL;

	return f != NULL && json_is_object(f->v) && f->key == NULL ? f : NULL;
}

static int
set_key(struct ctx *c, struct frame *f, const char *s, size_t n,
    bool plain, const yaml_mark_t *m)
{
	if (memchr(s, '\0', n) != NULL)
		return fail(c, m, "a key contains a NUL byte");
	f->key = xstrndup(s, n);
	f->keylen = n;
	f->key_mark = *m;
	f->merge = plain && n == 2 && memcmp(s, "<<", 2) == 0;
	f->nodes++;
	f->bytes += n;
	return 0;
}

static int
on_scalar(struct ctx *c, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *anchor = (const char *)ev->data.scalar.anchor;
	size_t n = ev->data.scalar.length;
	const yaml_mark_t *m = &ev->start_mark;
	struct frame *f;
	json_t *v;

	if (count(c, m, 1, n) != 0)
		return -1;
	if ((f = want_key(c)) != NULL) {
		if (set_key(c, f, s, n, ev->data.scalar.style ==
		    YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.tag == NULL,
		    m) != 0)
			return -1;
		if (anchor != NULL) {
			if ((v = json_stringn(s, n)) == NULL)
				return fail(c, m, "a key is not valid UTF-8");
			anchor_set(c, anchor, v, 1, n, 0);
			json_decref(v);
		}
		return 0;
	}
	if ((v = scalar_value(ev)) == NULL)
		return fail(c, m, "a value is not valid UTF-8");
	if (anchor != NULL)
		anchor_set(c, anchor, v, 1, n, 0);
	return attach(c, v, 1, n, 0, m);
}

static int
on_alias(struct ctx *c, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const yaml_mark_t *m = &ev->start_mark;
	json_t *idx = json_object_get(c->names, name);
	struct anchor *a;
	struct frame *f;

	/* Anchors are registered when complete: an alias inside its own
	 * anchor (a cycle) is unknown here too. */
	if (idx == NULL)
		return fail(c, m, "unknown alias '*%.64s'", name);
	a = &c->anchors[json_integer_value(idx)];
	if (count(c, m, a->nodes, a->bytes) != 0)
		return -1;
	if ((f = want_key(c)) != NULL) {
		if (!json_is_string(a->v))
			return fail(c, m, "a mapping key must be a string");
		return set_key(c, f, json_string_value(a->v),
		    json_string_length(a->v), false, m);
	}
	if (c->depth + a->height > YAML_MAX_DEPTH)
		return fail(c, m, "nesting deeper than %d levels",
		    YAML_MAX_DEPTH);
	/* A copy: a shared node would change under the other's owner. */
	return attach(c, json_deep_copy(a->v), a->nodes, a->bytes, a->height,
	    m);
}

static int
on_start(struct ctx *c, const yaml_event_t *ev, bool mapping)
{
	const yaml_char_t *anchor = mapping ? ev->data.mapping_start.anchor :
	    ev->data.sequence_start.anchor;
	const yaml_mark_t *m = &ev->start_mark;
	struct frame *f;

	if (want_key(c) != NULL)
		return fail(c, m, "a mapping key must be a scalar");
	if (c->depth == YAML_MAX_DEPTH)
		return fail(c, m, "nesting deeper than %d levels",
		    YAML_MAX_DEPTH);
	if (count(c, m, 1, 0) != 0)
		return -1;
	f = &c->stack[c->depth++];
	memset(f, 0, sizeof *f);
	f->v = mapping ? json_object() : json_array();
	f->anchor = anchor ? xstrdup((const char *)anchor) : NULL;
	f->nodes = 1;
	f->height = 1;
	return 0;
}

static void
frame_free(struct frame *f)
{
	json_decref(f->v);
	json_decref(f->merges);
	free(f->key);
	free(f->anchor);
}

static int
on_end(struct ctx *c, const yaml_event_t *ev)
{
	struct frame f = c->stack[--c->depth];
	const char *k;
	size_t klen, i;
	json_t *src, *v;
	int rc;

	/* Keys written in the mapping win over merged ones; among merged
	 * mappings the first wins. */
	json_array_foreach(f.merges, i, src) {
		json_object_keylen_foreach(src, k, klen, v)
			if (json_object_getn(f.v, k, klen) == NULL)
				json_object_setn(f.v, k, klen, v);
	}
	if (f.anchor != NULL)
		anchor_set(c, f.anchor, f.v, f.nodes, f.bytes, f.height);
	rc = attach(c, f.v, f.nodes, f.bytes, f.height, &ev->start_mark);
	f.v = NULL;
	frame_free(&f);
	return rc;
}

/* libyaml's own message, with where it happened. */
static void
parser_error(const yaml_parser_t *p, const char *text, size_t len,
    char *err, size_t errsize)
{
	const char *problem = p->problem ? p->problem : "cannot parse YAML";
	size_t line = 1, col = 1;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		snprintf(err, errsize, "out of memory parsing YAML");
		break;
	case YAML_READER_ERROR:
		/* Only a byte offset: count lines and characters to it. */
		for (size_t i = 0; i < p->problem_offset && i < len; i++) {
			if (text[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)text[i] & 0xc0) != 0x80)
				col++;
		}
		if (p->problem_value != -1)
			snprintf(err, errsize, "line %zu, column %zu: %s "
			    "(byte 0x%02x)", line, col, problem,
			    (unsigned)p->problem_value & 0xff);
		else
			snprintf(err, errsize, "line %zu, column %zu: %s",
			    line, col, problem);
		break;
	default:
		if (p->context != NULL)
			snprintf(err, errsize, "line %zu, column %zu: %s (%s "
			    "at line %zu, column %zu)",
			    p->problem_mark.line + 1,
			    p->problem_mark.column + 1,
			    problem, p->context, p->context_mark.line + 1,
			    p->context_mark.column + 1);
		else
			snprintf(err, errsize, "line %zu, column %zu: %s",
			    p->problem_mark.line + 1,
			    p->problem_mark.column + 1,
			    problem);
		break;
	}
}

int
yaml_to_json(json_t **out, const char *text, size_t len, char *err,
    size_t errsize)
{
	struct ctx c;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int docs = 0, rc = -1;

	/* libyaml asserts on a NULL input, even an empty one. */
	if (text == NULL) {
		text = "";
		len = 0;
	}
	memset(&c, 0, sizeof c);
	c.err = err;
	c.errsize = errsize;
	c.names = json_object();
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errsize, "out of memory parsing YAML");
		json_decref(c.names);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
	    len);
	while (!done) {
		int r = 0;

		if (!yaml_parser_parse(&parser, &ev)) {
			parser_error(&parser, text, len, err, errsize);
			goto out;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ > 0)
				r = fail(&c, &ev.start_mark, "more than one "
				    "YAML document (a second '---')");
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_SCALAR_EVENT:
			r = on_scalar(&c, &ev);
			break;
		case YAML_ALIAS_EVENT:
			r = on_alias(&c, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			r = on_start(&c, &ev, ev.type ==
			    YAML_MAPPING_START_EVENT);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			r = on_end(&c, &ev);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (r != 0)
			goto out;
	}
	*out = c.root ? c.root : json_null();
	c.root = NULL;
	rc = 0;
out:
	while (c.depth > 0)
		frame_free(&c.stack[--c.depth]);
	for (size_t i = 0; i < c.nanchors; i++)
		json_decref(c.anchors[i].v);
	free(c.anchors);
	json_decref(c.names);
	json_decref(c.root);
	yaml_parser_delete(&parser);
	return rc;
}
