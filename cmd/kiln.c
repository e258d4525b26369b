/*
 * kiln(1): the command-line client of kilnd.  main() reads the global
 * flags (--url, --token, wherever they are on the line), the
 * configuration, and hands the rest to the subcommand (client/).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client/client.h"

static const struct {
	const char *name;
	int (*fn)(const struct kiln_conf *, int, char **);
} commands[] = {
	{ "submit", cmd_submit },
	{ "logs", cmd_logs },
	{ "jobs", cmd_jobs },
	{ "show", cmd_show },
	{ "cancel", cmd_cancel },
	{ "retry", cmd_retry },
	{ "targets", cmd_targets },
	{ "hosts", cmd_hosts },
	{ "download", cmd_download },
};

static void
usage(FILE *f)
{
	fputs("usage: kiln [--url URL] [--token TOKEN] COMMAND [ARGS]\n"
	    "commands:\n"
	    "  submit REPO [REF] [TARGET...] [--recipe FILE] [--wait|--follow]"
	    " [--priority N]\n"
	    "  logs [-f] JOB TARGET\n"
	    "  jobs [--state S] [--limit N]\n"
	    "  show [--json] JOB\n"
	    "  cancel JOB\n"
	    "  retry JOB\n"
	    "  targets\n"
	    "  hosts\n"
	    "  download JOB [DIR] [--verify] [--pubkey FILE]\n"
	    "KILN_URL, KILN_TOKEN or $XDG_CONFIG_HOME/kiln/config say which "
	    "kilnd (see kiln(1)).\n", f);
}

/*
 * Take --url and --token (and their =VALUE forms) out of argv, up to a
 * "--": 0, or -1 when one lacks its value.
 */
static int
global_flags(int *argc, char **argv, const char **url, const char **token)
{
	int i, o = 1;

	for (i = 1; i < *argc; i++) {
		const char **dst = NULL;
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			break;
		if (strcmp(a, "--url") == 0 || strncmp(a, "--url=", 6) == 0)
			dst = url;
		else if (strcmp(a, "--token") == 0 ||
		    strncmp(a, "--token=", 8) == 0)
			dst = token;
		if (dst == NULL) {
			argv[o++] = argv[i];
			continue;
		}
		if (strchr(a, '=') != NULL) {
			*dst = strchr(a, '=') + 1;
		} else if (i + 1 < *argc) {
			*dst = argv[++i];
		} else {
			fprintf(stderr, "kiln: %s needs a value\n", a);
			return -1;
		}
	}
	for (; i < *argc; i++)
		argv[o++] = argv[i];
	argv[o] = NULL;
	*argc = o;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *token = NULL;
	struct kiln_conf c;
	char err[1024];
	int rc;

	if (global_flags(&argc, argv, &url, &token) != 0)
		return KILN_EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return KILN_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return KILN_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kiln %s\n", PACKAGE_VERSION);
		return KILN_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (config_load(&c, url, token, err, sizeof err) != 0) {
			fprintf(stderr, "kiln: %s\n", err);
			return KILN_EXIT_USAGE;
		}
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = commands[i].fn(&c, argc - 1, argv + 1);
		curl_global_cleanup();
		config_free(&c);
		return rc;
	}
	fprintf(stderr, "kiln: unknown command '%.64s'\n", argv[1]);
	usage(stderr);
	return KILN_EXIT_USAGE;
}
