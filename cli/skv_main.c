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
#include <limits.h>
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
    OPT_TIMEOUT,
    OPT_ROUTER,
    OPT_TOKEN_FILE,
    OPT_RATE,
    OPT_BYTES_PER_SEC,
    OPT_CONCURRENCY,
    OPT_DRY_RUN,
    OPT_CHECKPOINT,
    OPT_WAIT,
    OPT_EXTRA_NODE,
    OPT_MAX_SKEW,
    OPT_ALLOW
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
    "  rebalance          copy keys to their new owners during a transition\n"
    "  cleanup            remove copies from nodes that no longer own them\n"
    "  repair             bring every key's owners to its newest version\n"
    "  epochs             show (or --allow) every node's epoch window\n"
    "\n"
    "Options:\n"
    "  -u, --url URL          router address (default $SIMPLEKV_URL, else\n"
    "                         " SKV_DEFAULT_URL "); a location's path\n"
    "                         (http://host/tenant-b/) picks its namespace\n"
    "  -x, --hex              keys are written (and listed) as hex bytes\n"
    "  -e, --encoded          keys are written (and listed) percent-encoded\n"
    "  -t, --content-type T   put: Content-Type stored with the value\n"
    "  -o, --output FILE      get: write the value to FILE (replaced only\n"
    "                         once the whole value has arrived)\n"
    "      --page-size N      ls: keys per request, 1..10000 (default "
    "1000)\n"
    "      --json             status: print the router's JSON as is;\n"
    "                         rebalance, cleanup, repair: JSON lines\n"
    "\n"
    "Membership options (rebalance, cleanup, repair, epochs; docs/cli.md):\n"
    "      --router URL       a router (repeat for every router; default\n"
    "                         the --url)\n"
    "      --token-file F     storaged's bearer token\n"
    "      --rate N           keys written per second (default 2000, 0 any)\n"
    "      --bytes-per-sec N  value bytes written per second (default\n"
    "                         64 MiB, 0 any)\n"
    "      --concurrency N    keys in flight (default 8)\n"
    "      --dry-run          say what would change, change nothing\n"
    "      --checkpoint F     resume from (and record progress in) F\n"
    "      --wait S           wait up to S seconds for the barrier\n"
    "      --extra-node N=A   a node outside the configuration (removed)\n"
    "      --max-clock-skew S repair: routers' clock skew (default 60)\n"
    "      --allow E          epochs: let every node accept epoch E too\n"
    "\n"
    "Other options:\n"
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
    "or local I/O error, 4 incomplete (some keys failed: run again).\n"
    "Errors are one line on stderr.\n";

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
    {"rebalance", skv_cmd_rebalance, 0},
    {"cleanup", skv_cmd_cleanup, 0},
    {"repair", skv_cmd_repair, 0},
    {"epochs", skv_cmd_epochs, 0},
};

/* The command line as parsed: the options for the command, and what
 * decides whether they fit it. */
typedef struct {
    skv_opts_t  opts;
    const char *url_arg;        /* --url, else NULL */
    int         page_size_set;
    int         keyfmt_set;
    int         maint_set;      /* a membership option was given */
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
    {"router", required_argument, NULL, OPT_ROUTER},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"bytes-per-sec", required_argument, NULL, OPT_BYTES_PER_SEC},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"extra-node", required_argument, NULL, OPT_EXTRA_NODE},
    {"max-clock-skew", required_argument, NULL, OPT_MAX_SKEW},
    {"allow", required_argument, NULL, OPT_ALLOW},
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

/* A membership option (rebalance, cleanup, repair, epochs). */
static int
maint_option(skv_maint_opts_t *m, int c)
{
    long n;
    int  rc;

    switch (c) {
    case OPT_ROUTER:
        m->routers[m->n_routers++] = optarg;
        return CONTINUE;
    case OPT_EXTRA_NODE:
        m->extra_nodes[m->n_extra++] = optarg;
        return CONTINUE;
    case OPT_TOKEN_FILE:
        m->token_file = optarg;
        return CONTINUE;
    case OPT_CHECKPOINT:
        m->checkpoint = optarg;
        return CONTINUE;
    case OPT_DRY_RUN:
        m->dry_run = 1;
        return CONTINUE;
    case OPT_RATE:
        rc = number_option(optarg, "--rate", 0, 100000000, &n);
        m->rate = (double) n;
        return rc;
    case OPT_BYTES_PER_SEC:
        rc = number_option(optarg, "--bytes-per-sec", 0, LONG_MAX, &n);
        m->bytes_per_sec = (double) n;
        return rc;
    case OPT_CONCURRENCY:
        return number_option(optarg, "--concurrency", 1, 256,
                             &m->concurrency);
    case OPT_WAIT:
        return number_option(optarg, "--wait", 0, 86400, &m->wait);
    case OPT_MAX_SKEW:
        return number_option(optarg, "--max-clock-skew", 0, 86400,
                             &m->max_skew);
    default: /* OPT_ALLOW */
        rc = number_option(optarg, "--allow", 0, LONG_MAX, &n);
        m->allow_epoch = n;
        return rc;
    }
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
    case OPT_ROUTER:
    case OPT_TOKEN_FILE:
    case OPT_RATE:
    case OPT_BYTES_PER_SEC:
    case OPT_CONCURRENCY:
    case OPT_DRY_RUN:
    case OPT_CHECKPOINT:
    case OPT_WAIT:
    case OPT_EXTRA_NODE:
    case OPT_MAX_SKEW:
    case OPT_ALLOW:
        cl->maint_set = 1;
        return maint_option(&opts->maint, c);
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
    cl->opts.maint.rate = 2000;
    cl->opts.maint.bytes_per_sec = 64.0 * 1024 * 1024;
    cl->opts.maint.concurrency = 8;
    cl->opts.maint.max_skew = 60;
    cl->opts.maint.allow_epoch = -1;
    /* Repeatable options: never more of them than arguments. */
    cl->opts.maint.routers = calloc((size_t) argc + 1, sizeof(char *));
    cl->opts.maint.extra_nodes = calloc((size_t) argc + 1, sizeof(char *));
    if (cl->opts.maint.routers == NULL
        || cl->opts.maint.extra_nodes == NULL) {
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }

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

static int
is_maint(const command_t *cmd)
{
    return cmd->run == skv_cmd_rebalance || cmd->run == skv_cmd_cleanup
           || cmd->run == skv_cmd_repair || cmd->run == skv_cmd_epochs;
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
    if (cl->opts.json && cmd->run != skv_cmd_status && !is_maint(cmd)) {
        return skv_usage_error("--json is for status, rebalance, cleanup "
                               "and repair");
    }
    if (cl->maint_set && !is_maint(cmd)) {
        return skv_usage_error("--router, --token-file, --rate, "
                               "--bytes-per-sec, --concurrency, --dry-run, "
                               "--checkpoint, --wait, --extra-node, "
                               "--max-clock-skew and --allow are for "
                               "rebalance, cleanup, repair and epochs");
    }
    if (cl->opts.maint.allow_epoch >= 0 && cmd->run != skv_cmd_epochs) {
        return skv_usage_error("--allow is for epochs only");
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
    if (rc == CONTINUE && optind >= argc) {
        fputs(usage_text, stderr);
        rc = SKV_EXIT_USAGE;
    } else if (rc == CONTINUE) {
        cmd = find_command(argv[optind]);
        rc = cmd == NULL ? skv_usage_error("unknown command \"%s\"",
                                           argv[optind])
                         : check_options_fit(&cl, cmd);
        if (rc == SKV_EXIT_OK) {
            rc = choose_url(&cl);
        }
        if (rc == SKV_EXIT_OK) {
            rc = skv_http_global_init();
        }
        if (rc == SKV_EXIT_OK) {
            rc = cmd->run(&cl.opts, argc - optind - 1, argv + optind + 1);
            curl_global_cleanup();
        }
    }
    free(cl.opts.url);
    free(cl.opts.maint.routers);
    free(cl.opts.maint.extra_nodes);
    return rc;
}
