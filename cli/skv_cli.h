/*
 * skv_cli.h - what the parts of the skv command-line client share: the
 * parsed options, the exit codes, and one entry point per command.
 *
 * skv_main.c parses the command line into an skv_opts_t and calls one
 * command; each command talks to the router through skv_http.h and returns
 * an exit code.  Every error is printed once, where it is detected, as one
 * line on stderr.
 */
#ifndef SKV_CLI_H
#define SKV_CLI_H

#define SKV_CLI_VERSION "0.1.0"
#define SKV_DEFAULT_URL "http://127.0.0.1:8080"

/* Exit codes: a script can tell "absent" from "broken" without parsing. */
enum {
    SKV_EXIT_OK = 0,
    SKV_EXIT_NOT_FOUND = 1, /* the key (or status page) does not exist */
    SKV_EXIT_USAGE = 2,     /* bad command line or bad key; nothing sent */
    SKV_EXIT_SERVER = 3,    /* HTTP error answer, network or local I/O */
    SKV_EXIT_INCOMPLETE = 4 /* rebalance/cleanup/repair: some keys failed */
};

/* How keys are written on the command line and printed by `ls`. */
typedef enum {
    SKV_KEYFMT_RAW,     /* the argument's bytes are the key */
    SKV_KEYFMT_HEX,     /* hex digits, two per byte: any bytes, even NUL */
    SKV_KEYFMT_ENCODED  /* percent-encoded, as in the router's URLs */
} skv_keyfmt_t;

/* Whether to draw a progress bar on stderr. */
typedef enum {
    SKV_PROGRESS_AUTO,  /* when stderr is a terminal and the value is big */
    SKV_PROGRESS_NEVER,
    SKV_PROGRESS_ALWAYS /* even when stderr is not a terminal (tests) */
} skv_progress_mode_t;

/* rebalance, cleanup, repair and epochs (docs/cli.md, "Membership"). */
typedef struct {
    const char   **routers;       /* --router, repeatable (else the url) */
    size_t         n_routers;
    const char   **extra_nodes;   /* --extra-node NAME=HOST:PORT */
    size_t         n_extra;
    const char    *token_file;    /* storaged's bearer token */
    double         rate;          /* keys written per second, 0 = any */
    double         bytes_per_sec; /* value bytes written per second */
    long           concurrency;   /* keys in flight */
    int            dry_run;
    const char    *checkpoint;
    long           wait;          /* seconds to wait for the barrier */
    long           max_skew;      /* repair: routers' clock skew, seconds */
    long long      allow_epoch;   /* epochs --allow, -1 when absent */
} skv_maint_opts_t;

typedef struct {
    char                *url;          /* router base URL, no trailing '/' */
    skv_keyfmt_t         keyfmt;
    const char          *content_type; /* put: -t */
    const char          *output;       /* get: -o, NULL or "-" = stdout */
    long                 page_size;    /* ls: keys per request */
    int                  json;         /* status: --json */
    int                  verbose;
    skv_progress_mode_t  progress;
    long                 connect_timeout; /* seconds */
    long                 timeout;         /* seconds, 0 = none */
    skv_maint_opts_t     maint;
} skv_opts_t;

/* argv holds the command's operands only (after the command name). */
int skv_cmd_put(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_get(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_rm(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_ls(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_status(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_rebalance(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_cleanup(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_repair(const skv_opts_t *opts, int argc, char **argv);
int skv_cmd_epochs(const skv_opts_t *opts, int argc, char **argv);

/* Print "skv: <message>" and a hint to stderr; returns SKV_EXIT_USAGE. */
int skv_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
