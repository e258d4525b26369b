/*
 * kiln-worker: dispatch to fetch or build mode.  See kiln-worker(8).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push.h"
#include "worker.h"

#if defined(__SANITIZE_ADDRESS__)
/*
 * --enable-debug builds run under LeakSanitizer, whose report turns a
 * successful run into exit 1.  libgit2 1.5.1's git_regexp_match() does not
 * free its pcre2 match data when a pattern does not match (fixed upstream
 * later); that leak is not ours, and the stack ends inside libpcre2, so it
 * is suppressed by module.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_options(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libpcre2-8.so\n";
}

/* The last line on stderr is kilnd's error message: keep it ours. */
const char *
__lsan_default_options(void)
{
	return "print_suppressions=0";
}
#endif

static void
usage(FILE *f)
{
	fprintf(f,
"usage: kiln-worker fetch --mirror DIR --url URL --ref REF [--job-ref REF]\n"
"                   [--keep-out DIR] [--credentials-fd FD]\n"
"       kiln-worker package --mirror DIR --commit SHA --root DIR --spec JSON\n"
"                   [--timeout SECONDS] [--status-fd FD]\n"
"       kiln-worker fetch|build|package --config-fd FD\n"
"       kiln-worker build --mirror DIR --commit SHA --root DIR\n"
"                   --target OS/ARCH[/VARIANT] --timeout SECONDS\n"
"                   [--cache DIR] [--modcache DIR [--modcache-rw]]\n"
"                   [--network | --host-network] [--memory BYTES] [--pids N]\n"
"                   [--file-size BYTES] [--nofile N] [--build-uid UID]\n"
"                   [--status-fd FD] [--env NAME=VALUE]...\n"
"                   [--allow-same-uid] [--times] -- PROGRAM [ARG...]\n"
"       kiln-worker reclaim [--] PATH...\n"
"       kiln-worker push --layout FILE.tar --to HOST[:PORT]/NAME[:TAG]\n"
"                   [--insecure-http] [--credentials-fd FD]\n"
"       kiln-worker --version | --help\n"
"\n"
"fetch: update the bare mirror DIR of URL, resolve REF to a commit and print\n"
"  {\"commit\", \"commit_time\", \"kiln_json\", \"has_go_mod\", \"vendored\",\n"
"  \"go_mod\", \"goreleaser\", \"tag\", \"branch\", ...} as one JSON line.\n"
"  --mirror DIR        bare mirror cache of URL (created on first use)\n"
"  --url URL           file://, git://, http(s)://, ssh:// or an absolute path\n"
"  --ref REF           commit id, tag, branch or full refs/... name\n"
"  --job-ref REF       the job's ref: names the tag or branch of the version\n"
"  --keep-out DIR      a local URL in or above DIR (kilnd's state directory)\n"
"                      is refused, as one in or above the mirrors' directory\n"
"  --credentials-fd FD read the project's credentials (netrc or header lines,\n"
"                      kilnd.conf(5)) from FD, above 2\n"
"\n"
"build: check SHA out of the mirror into ROOT/src and run PROGRAM in a sandbox\n"
"  with ROOT/src at /src (the working directory), ROOT/out at /out and\n"
"  ROOT/tmp at /tmp, and exactly the --env variables.\n"
"  --mirror DIR        bare mirror holding SHA\n"
"  --commit SHA        40-hex commit id to build\n"
"  --root DIR          work directory; must not exist or be empty\n"
"  --target T          os/arch[/variant] being built\n"
"  --timeout SECONDS   wall-clock limit (exit 124, status timed_out)\n"
"  --cache DIR         writable cache, mounted at /cache\n"
"  --modcache DIR      Go module cache, mounted read-only at /gomod\n"
"  --modcache-rw       ... and writable (the deps step only)\n"
"  --network           own network namespace with slirp4netns: the outside,\n"
"                      none of the host's addresses (default: loopback only)\n"
"  --host-network      keep the host's network namespace (kilnd's deps step)\n"
"  --memory BYTES      memory limit, K/M/G/T suffixes (default 4G)\n"
"  --pids N            process and thread limit (default 1024)\n"
"  --file-size BYTES   largest file the build may write (default 2G)\n"
"  --nofile N          open files per process (default 4096)\n"
"  --build-uid UID     host uid of the build when run as root (default 65534)\n"
"  --status-fd FD      write one JSON status line to FD at the end\n"
"  --env NAME=VALUE    environment variable of the build (repeatable)\n"
"  --allow-same-uid    not root and no range in /etc/subuid: build as the\n"
"                      worker's own uid (unsafe; refused without it)\n"
"  --times             add where the time went (ms) to the status line\n"
"\n"
"reclaim: give trees that builds under subordinate ids left (a killed\n"
"  worker) back to the caller's own uid and gid, so that they can be removed.\n"
"\n"
"package: a job's release outputs (archives, SBOMs, universal macOS binaries,\n"
"  an OCI image) from its builds' files, as the JSON spec kilnd made says,\n"
"  into ROOT/out, in a sandbox without network.\n"
"\n"
"push: upload an OCI image layout tarball to a registry (OCI distribution\n"
"  API): missing blobs, each image manifest by digest, then the index (or\n"
"  the one manifest) by TAG (default latest); print {\"pushed\", \"digest\"}\n"
"  as one JSON line.  The whole layout is checked first.\n"
"  --layout FILE.tar   the layout (oci-layout, index.json, blobs/sha256/)\n"
"  --to REF            HOST[:PORT]/NAME[:TAG] of the registry and repository\n"
"  --insecure-http     talk http, not https, to the registry\n"
"  --credentials-fd FD read netrc lines (machine HOST login USER password\n"
"                      SECRET) from FD, above 2: Basic, or a Bearer token\n"
"\n"
"--config-fd FD: read the options that follow fetch or build from FD instead,\n"
"  each argument ended by a NUL byte (the format of /proc/PID/cmdline).\n"
"\n"
"Exit: fetch and push 0, 1 on failure; build the build's code, 128+signal, 124 on\n"
"timeout, 125 when the sandbox or checkout failed; 2 on usage errors.\n"
"See kiln-worker(8).\n");
}

/*
 * MODE --config-fd FD (or --config-fd=FD), alone: the options are read
 * from FD and parsed as if they followed MODE on the command line.
 * kilnd starts every build so, keeping them out of /proc/PID/cmdline.
 */
static int
run_mode(int (*mode_main)(int, char **), int argc, char **argv)
{
	const char *fd;
	char err[256], **args = NULL;
	int n, rc, want;

	if (argc >= 3 && strcmp(argv[2], "--config-fd") == 0) {
		fd = argc >= 4 ? argv[3] : "";
		want = 4;
	} else if (argc >= 3 && strncmp(argv[2], "--config-fd=", 12) == 0) {
		fd = argv[2] + 12;
		want = 3;
	} else
		return mode_main(argc - 1, argv + 1);
	if (argc > want) {
		worker_msg("%s: --config-fd FD comes alone: every option is "
		    "read from FD", argv[1]);
		return WORKER_EXIT_USAGE;
	}
	if (worker_config_args(&args, &n, argv[1], fd, err, sizeof err) != 0) {
		worker_msg("%s: %s", argv[1], err);
		return WORKER_EXIT_USAGE;
	}
	rc = mode_main(n, args);
	free(args);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "fetch") == 0)
		return run_mode(fetch_main, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "build") == 0)
		return run_mode(build_main, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "package") == 0)
		return run_mode(package_main, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "push") == 0)
		return push_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "reclaim") == 0)
		return reclaim_main(argc - 1, argv + 1);
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("kiln-worker %s\n", PACKAGE_VERSION);
		return 0;
	}
	usage(stderr);
	return WORKER_EXIT_USAGE;
}
