/*
 * Build targets, written os/arch[/variant] as in Go and OCI platforms.
 * The valid os/arch pairs are Go 1.19's `go tool dist list` without
 * the android and ios ports, which need cgo.  Variants: arm v5, v6, v7
 * (`linux/arm` alone means v7), amd64 v1..v4 (v1 is the default and is
 * written without a variant).  In URLs a target is written with '_'.
 */
#ifndef KILN_TARGET_H
#define KILN_TARGET_H

#include <stddef.h>

#define TARGET_NAME_MAX 32
/* Targets one job (or one build of a recipe) may ask for. */
#define TARGETS_MAX 64

struct target {
	char name[TARGET_NAME_MAX];	/* normalized "linux/arm/v7" */
	char os[12];
	char arch[12];
	char variant[4];		/* "" when none */
};

/*
 * Parse and normalize `s`.  Returns 0, or -1 with a one-line reason in
 * `err` ("unknown os/arch pair 'linux/foo'").
 */
int target_parse(struct target *out, const char *s, char *err, size_t errsize);
/* Same for the URL form "linux_arm_v7". */
int target_parse_url(struct target *out, const char *s, char *err, size_t errsize);
/*
 * The name of a job's release row (lib/outputs.h): no build target, but
 * a row of the job with a log and artifacts like one.  The _row parsers
 * accept it too (os and arch empty) and are for names read back from
 * the queue or a URL, never for targets a user asks to build.
 */
#define TARGET_RELEASE "release"
int target_parse_row(struct target *out, const char *s, char *err,
    size_t errsize);
int target_parse_url_row(struct target *out, const char *s, char *err,
    size_t errsize);
/* "linux/arm/v7" -> "linux_arm_v7" into buf (TARGET_NAME_MAX bytes). */
void target_url_name(char *buf, const struct target *t);

/* Go's GOARM / GOAMD64 for the target, "" when not applicable. */
const char *target_goarm(const struct target *t);
const char *target_goamd64(const struct target *t);

/* The table of buildable os/arch pairs, for listing. */
size_t target_pair_count(void);
const char *target_pair(size_t i);

#endif
