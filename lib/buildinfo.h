/*
 * Go's build information, read from a Go binary itself (the bytes are
 * hostile: whatever a build produced).  The Go linker leaves a 32-byte
 * header, "\xff Go buildinf:" then the pointer size and a flags byte, at a
 * 16-byte aligned offset; since Go 1.18 (flag bit 2) the toolchain version
 * and the module information follow it inline, each a uvarint length and
 * its bytes.  The module information is the text `go version -m` prints:
 *
 *	path	example.com/app
 *	mod	example.com/app	(devel)
 *	dep	golang.org/x/text	v0.7.0	h1:...
 *	=>	/local/text	(devel)
 *	build	GOOS=linux
 *
 * Older binaries (pointers into the data segment instead of inline
 * strings) are refused with a message that says so.
 */
#ifndef KILN_BUILDINFO_H
#define KILN_BUILDINFO_H

#include <stddef.h>

struct buildinfo_module {
	char *path, *version, *sum;	/* sum "" when there is none */
	struct buildinfo_module *replace;	/* NULL or the => target */
};

struct buildinfo {
	char *go_version;		/* "go1.23.5"; NULL from buildinfo_parse
					   unless the text has a "go" line */
	char *path;			/* main package path ("path" line), or NULL */
	struct buildinfo_module main;	/* "mod" line (version may be "(devel)");
					   main.path NULL when there is none */
	struct buildinfo_module *deps;	/* "dep" lines in order */
	size_t ndeps;
	char **settings_key, **settings_value;	/* "build" lines, in order */
	size_t nsettings;
};

/* The most module-information text kiln reads (a real one is a few KiB). */
#define BUILDINFO_TEXT_MAX	(4u << 20)

/*
 * Scan a whole binary image (buf, len) for the build information: ELF,
 * PE, Mach-O alike, since the header is found by its magic.  0, or -1 with
 * a message in err ("no Go build information", "truncated", ...).  Never
 * reads outside buf.  A binary built outside module mode gives 0 with only
 * go_version set.
 */
int buildinfo_from_binary(struct buildinfo *out, const unsigned char *buf,
    size_t len, char *err, size_t errsize);

/*
 * Parse the module-information text as Go's debug.ParseBuildInfo reads it
 * (tab-separated fields; quoted build keys and values in Go's syntax).
 * Also takes `go version -m` output after its first line (each line
 * indented by one tab) and a "go<TAB>VERSION" line.  Unknown lines are
 * skipped, as Go skips them.  A dep path given twice, or equal to the main
 * module's, is an error: it would make two SBOM components one.
 */
int buildinfo_parse(struct buildinfo *out, const char *text, size_t len,
    char *err, size_t errsize);

void buildinfo_free(struct buildinfo *b);

#endif
