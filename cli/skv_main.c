/*
 * skv_main.c - the skv command line: parse options, pick the router URL,
 * run one command, exit with its code.
 *
 * Options may come before or after the command and its operands (GNU
 * getopt permutes them); "--" ends the options, for keys that start with
 * '-'.  An option that means nothing to the chosen command is a usage
 * error rather than silently ignored.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skv_cli.h"
#include "skv_http.h"

enum {
    OPT_JSON = 256,
    OPT_PAGE_SIZE,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_CONNECT_TIMEOUT,
    OPT_TIMEOUT
};

static const char usage_text[] =
    "usage: skv [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  put KEY [FILE]     store FILE (or stdin, or '-') as the value of KEY\n"
    "  get KEY            write the value of KEY to stdout (or -o FILE)\n"
    "  rm KEY             delete KEY\n"
    "  ls [PREFIX]        list keys starting with PREFIX, one per line\n"
    "  status             the router's view of its storage nodes\n"
    "\n"
    "Options:\n"
    "  -u, --url URL          router address (default $SIMPLEKV_URL, else\n"
    "                         " SKV_DEFAULT_URL ")\n"
    "  -x, --hex              keys are written (and listed) as hex bytes\n"
    "  -e, --encoded          keys are written (and listed) percent-encoded\n"
    "  -t, --content-type T   put: Content-Type stored with the value\n"
    "  -o, --output FILE      get: write the value to FILE (replaced only\n"
    "                         once the whole value has arrived)\n"
    "      --page-size N      ls: keys per request, 1..10000 (default "
    "1000)\n"
    "      --json             status: print the router's JSON as is\n"
    "      --progress         always draw the progress bar on stderr\n"
    "      --no-progress      never draw it (default: when stderr is a\n"
    "                         terminal and the value is 4 MiB or more)\n"
    "      --connect-timeout S  give up connecting after S seconds (10)\n"
    "      --timeout S        give up on a request after S seconds (none)\n"
    "  -v, --verbose          say what was done; twice: trace HTTP\n"
    "  -h, --help             this help\n"
    "  -V, --version          print the version\n"
    "\n"
    "Exit status: 0 success, 1 not found, 2 usage error, 3 server, network\n"
    "or local I/O error.  Errors are one line on stderr.\n";

int
skv_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("skv: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (skv --help for usage)\n", stderr);
    return SKV_EXIT_USAGE;
}

static int
parse_long(const char *arg, const char *opt, long min, long max, long *out)
{
    char *end;
    long  v;

    v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < min || v > max) {
        return skv_usage_error("%s wants a number from %ld to %ld, not "
                               "\"%s\"",
                               opt, min, max, arg);
    }
    *out = v;
    return SKV_EXIT_OK;
}

/* Copy the URL without trailing slashes: paths are appended to it. */
static int
set_url(skv_opts_t *opts, const char *url, const char *origin)
{
    size_t n = strlen(url);

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        return skv_usage_error("%s \"%s\" is not an http:// or https:// URL",
                               origin, url);
    }
    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    free(opts->url);
    opts->url = strndup(url, n);
    if (opts->url == NULL) {
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }
    return SKV_EXIT_OK;
}

typedef struct {
    const char *name;
    int (*run)(const skv_opts_t *, int, char **);
    int         keys;   /* takes --hex / --encoded */
} command_t;

static const command_t commands[] = {
    {"put", skv_cmd_put, 1},
    {"get", skv_cmd_get, 1},
    {"rm", skv_cmd_rm, 1},
    {"ls", skv_cmd_ls, 1},
    {"status", skv_cmd_status, 0},
};

/* The command line as parsed: the options for the command, and what
 * decides whether they fit it. */
typedef struct {
    skv_opts_t  opts;
    const char *url_arg;        /* --url, else NULL */
    int         page_size_set;
    int         keyfmt_set;
} cmdline_t;

/* getopt_long's return value for "carry on parsing" from apply_option;
 * anything else is the exit code to stop with (--help and --version stop
 * with success). */
#define CONTINUE (-1)

static const struct option longopts[] = {
    {"url", required_argument, NULL, 'u'},
    {"hex", no_argument, NULL, 'x'},
    {"encoded", no_argument, NULL, 'e'},
    {"content-type", required_argument, NULL, 't'},
    {"output", required_argument, NULL, 'o'},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"json", no_argument, NULL, OPT_JSON},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

static int
set_keyfmt(cmdline_t *cl, skv_keyfmt_t fmt)
{
    if (cl->keyfmt_set && cl->opts.keyfmt != fmt) {
        return skv_usage_error("--hex and --encoded exclude each other");
    }
    cl->opts.keyfmt = fmt;
    cl->keyfmt_set = 1;
    return CONTINUE;
}

/* A number option: CONTINUE, or the usage error. */
static int
number_option(const char *arg, const char *opt, long min, long max,
              long *out)
{
    int rc = parse_long(arg, opt, min, max, out);

    return rc == SKV_EXIT_OK ? CONTINUE : rc;
}

/* Apply option c (getopt_long's answer) with its argument optarg. */
static int
apply_option(cmdline_t *cl, int c, char **argv)
{
    skv_opts_t *opts = &cl->opts;

    switch (c) {
    case 'u':
        cl->url_arg = optarg;
        return CONTINUE;
    case 'x':
        return set_keyfmt(cl, SKV_KEYFMT_HEX);
    case 'e':
        return set_keyfmt(cl, SKV_KEYFMT_ENCODED);
    case 't':
        opts->content_type = optarg;
        return CONTINUE;
    case 'o':
        opts->output = optarg;
        return CONTINUE;
    case OPT_PAGE_SIZE:
        cl->page_size_set = 1;
        return number_option(optarg, "--page-size", 1, 10000,
                             &opts->page_size);
    case OPT_JSON:
        opts->json = 1;
        return CONTINUE;
    case OPT_PROGRESS:
        opts->progress = SKV_PROGRESS_ALWAYS;
        return CONTINUE;
    case OPT_NO_PROGRESS:
        opts->progress = SKV_PROGRESS_NEVER;
        return CONTINUE;
    case OPT_CONNECT_TIMEOUT:
        return number_option(optarg, "--connect-timeout", 1, 3600,
                             &opts->connect_timeout);
    case OPT_TIMEOUT:
        return number_option(optarg, "--timeout", 0, 86400 * 7,
                             &opts->timeout);
    case 'v':
        opts->verbose++;
        return CONTINUE;
    case 'h':
        fputs(usage_text, stdout);
        return fflush(stdout) == 0 ? SKV_EXIT_OK : SKV_EXIT_SERVER;
    case 'V':
        printf("skv (simplekv) %s\n", SKV_CLI_VERSION);
        return fflush(stdout) == 0 ? SKV_EXIT_OK : SKV_EXIT_SERVER;
    case ':':
        return skv_usage_error("option %s needs a value", argv[optind - 1]);
    default:
        return skv_usage_error("unknown option %s", argv[optind - 1]);
    }
}

/* All options, wherever they stand: CONTINUE, or the exit code. */
static int
parse_options(cmdline_t *cl, int argc, char **argv)
{
    int c, rc;

    memset(cl, 0, sizeof(*cl));
    cl->opts.keyfmt = SKV_KEYFMT_RAW;
    cl->opts.page_size = 1000;
    cl->opts.progress = SKV_PROGRESS_AUTO;
    cl->opts.connect_timeout = 10;

    /* Leading '+' would stop at the first operand; without it options may
     * follow the command ("skv get KEY -o FILE"), as users expect. */
    while ((c = getopt_long(argc, argv, ":u:xet:o:vhV", longopts, NULL))
           != -1) {
        rc = apply_option(cl, c, argv);
        if (rc != CONTINUE) {
            return rc;
        }
    }
    return CONTINUE;
}

static const command_t *
find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(name, commands[i].name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

/* An option that means nothing to the command is a usage error. */
static int
check_options_fit(const cmdline_t *cl, const command_t *cmd)
{
    if (cl->opts.content_type != NULL && cmd->run != skv_cmd_put) {
        return skv_usage_error("--content-type is for put only");
    }
    if (cl->opts.output != NULL && cmd->run != skv_cmd_get) {
        return skv_usage_error("--output is for get only");
    }
    if (cl->page_size_set && cmd->run != skv_cmd_ls) {
        return skv_usage_error("--page-size is for ls only");
    }
    if (cl->opts.json && cmd->run != skv_cmd_status) {
        return skv_usage_error("--json is for status only");
    }
    if (cl->keyfmt_set && !cmd->keys) {
        return skv_usage_error("--hex and --encoded are for commands that "
                               "take keys");
    }
    return SKV_EXIT_OK;
}

/* The router: --url, else $SIMPLEKV_URL, else the default. */
static int
choose_url(cmdline_t *cl)
{
    const char *env = getenv("SIMPLEKV_URL");

    if (cl->url_arg != NULL) {
        return set_url(&cl->opts, cl->url_arg, "--url");
    }
    if (env != NULL && *env != '\0') {
        return set_url(&cl->opts, env, "SIMPLEKV_URL");
    }
    return set_url(&cl->opts, SKV_DEFAULT_URL, "default URL");
}

int
main(int argc, char **argv)
{
    cmdline_t        cl;
    const command_t *cmd;
    int              rc;

    rc = parse_options(&cl, argc, argv);
    if (rc != CONTINUE) {
        return rc;
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return SKV_EXIT_USAGE;
    }
    cmd = find_command(argv[optind]);
    if (cmd == NULL) {
        return skv_usage_error("unknown command \"%s\"", argv[optind]);
    }
    rc = check_options_fit(&cl, cmd);
    if (rc == SKV_EXIT_OK) {
        rc = choose_url(&cl);
    }
    if (rc != SKV_EXIT_OK) {
        return rc;
    }

    rc = skv_http_global_init();
    if (rc == SKV_EXIT_OK) {
        rc = cmd->run(&cl.opts, argc - optind - 1, argv + optind + 1);
        curl_global_cleanup();
    }
    free(cl.opts.url);
    return rc;
}
