/*
 * kiln(1), the command-line client of kilnd's REST API: what the files
 * of client/ share.  client/ uses lib/ and nothing of daemon/, api/ or
 * http/: it is a program of its own that talks to kilnd over HTTP only.
 */
#ifndef KILN_CLIENT_H
#define KILN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Exit statuses (kiln(1)). */
#define KILN_EXIT_OK		0
#define KILN_EXIT_FAILED	1	/* the job failed, was canceled; a check failed */
#define KILN_EXIT_USAGE		2
#define KILN_EXIT_SERVER	3	/* the server said no, or could not be reached */

/* Where and as whom to talk (config.c). */
struct kiln_conf {
	char *url;		/* "http://127.0.0.1:8080", no trailing '/' */
	char *token;		/* NULL: no Authorization header */
};

/*
 * Fill c: the flags (NULL when absent) over KILN_URL / KILN_TOKEN over
 * the config file's "url = ..." and "token = ..." lines over the
 * default URL.  0, or -1 with the reason in err.
 */
int config_load(struct kiln_conf *c, const char *url_flag,
    const char *token_flag, char *err, size_t errsize);
void config_free(struct kiln_conf *c);
/* $XDG_CONFIG_HOME/kiln, else ~/.config/kiln (malloc'd), or NULL. */
char *config_dir(void);

/* One answer of the server (http.c). */
struct http_resp {
	long status;
	char *body;		/* NUL-terminated, malloc'd */
	size_t len;
	char *ctype;		/* Content-Type, or NULL */
};

/*
 * method path (relative to the URL, "/v1/jobs") with an optional JSON
 * body.  0 when an answer came (any status), -1 on a network error with
 * the reason, naming the URL, in err.  Bodies above HTTP_BODY_MAX are
 * an error, not truncated.
 */
#define HTTP_BODY_MAX (64u << 20)
int http_call(const struct kiln_conf *c, const char *method,
    const char *path, const char *body, struct http_resp *r, char *err,
    size_t errsize);
void http_resp_free(struct http_resp *r);
/* "409 Conflict: <the problem's detail>" for an error answer. */
void http_problem(const struct http_resp *r, char *buf, size_t size);
/*
 * GET path and hand each piece of the body to sink (which returns 0, or
 * -1 to stop).  The status is in *status; an error answer's body is
 * kept (bounded) in *errbody for http_problem() instead of being sunk.
 * progress (may be NULL) is called with the bytes so far and the total
 * (0 when unknown).
 */
typedef int (*http_sink_fn)(void *arg, const char *p, size_t n);
typedef void (*http_progress_fn)(void *arg, uint64_t now, uint64_t total);
int http_get_stream(const struct kiln_conf *c, const char *path,
    http_sink_fn sink, void *arg, http_progress_fn progress, void *parg,
    struct http_resp *errresp, char *err, size_t errsize);

/* s percent-encoded for a URL's path or query (malloc'd). */
/* The longest URL a request may have, with its NUL. */
#define HTTP_URL_MAX 2048
char *http_escape(const char *s);

/* GET path as JSON into *out; the exit status (KILN_EXIT_*) and err. */
int http_get_json(const struct kiln_conf *c, const char *path, json_t **out,
    char *err, size_t errsize);

/* The live table of a job's targets (table.c). */
struct table;
struct table *table_new(bool tty, int fd);
/* Draw (tty: redraw in place) or print the state changes of job. */
void table_update(struct table *t, json_t *job);
void table_free(struct table *t);
/* Whether a job state is final. */
bool job_state_ended(const char *state);

/* Subcommands: argc/argv from the subcommand's name on; exit status. */
int cmd_submit(const struct kiln_conf *c, int argc, char **argv);
int cmd_logs(const struct kiln_conf *c, int argc, char **argv);
int cmd_jobs(const struct kiln_conf *c, int argc, char **argv);
int cmd_show(const struct kiln_conf *c, int argc, char **argv);
int cmd_cancel(const struct kiln_conf *c, int argc, char **argv);
int cmd_retry(const struct kiln_conf *c, int argc, char **argv);
int cmd_targets(const struct kiln_conf *c, int argc, char **argv);
int cmd_hosts(const struct kiln_conf *c, int argc, char **argv);
int cmd_download(const struct kiln_conf *c, int argc, char **argv);

/* Follow one target's log to fd until it ends (logs.c); exit status. */
int logs_follow(const struct kiln_conf *c, int64_t job, const char *target,
    bool follow, const char *prefix, char *err, size_t errsize);
/* A job id argument: 0 and *id, or -1 (a usage message printed). */
int parse_job_id(const char *s, int64_t *id);

/* Errors: "kiln: " and the message on stderr. */
void kiln_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
