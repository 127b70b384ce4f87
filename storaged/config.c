/*
 * config.c - parse and validate storaged's command line (see config.h).
 *
 * getopt_long does the option syntax; this file gives each value its
 * meaning: sizes with k/m/g suffixes, durations with ms/s/m/h/d units, a
 * listen address resolved to a sockaddr up front (so a typo fails at start,
 * not at bind), the tokens read once from their files (core/skv_token.h, the
 * same reading as the router's), and the checks that need several options
 * at once (a non-loopback address needs a token or --insecure).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "skv_token.h"

/* --threads by default: one per CPU this process may run on, at least
 * MIN_THREADS, so that a thread waiting for a page read does not stop the
 * node; with --durability fsync at least MIN_THREADS_FSYNC, since each
 * commit holds its thread through an fsync and concurrent commits share
 * one (group commit).  More threads than CPUs only add wake-ups: every
 * thread sleeps in its own epoll_wait, so each request more likely wakes
 * one, and on loopback those wake-ups are most of a request's cost
 * (docs/benchmarks.md, "storaged threads"). */
#define MIN_THREADS              2
#define MIN_THREADS_FSYNC        4
#define DEFAULT_CACHE_SIZE       (64ULL << 20)
#define DEFAULT_MAX_VALUE_SIZE   (1ULL << 30)
#define MAX_MAX_VALUE_SIZE       (1ULL << 40)
#define DEFAULT_CLOCK_SKEW_MS    60000ULL
#define DEFAULT_MAX_CONNECTIONS  8192
#define DEFAULT_IDLE_TIMEOUT_S   90
#define DEFAULT_FIRST_TIMEOUT_S  10
#define MAX_THREADS              256
#define MAX_CONNECTIONS          1000000
#define MAX_TIMEOUT_MS           (86400ULL * 1000)
#define TOKEN_FILE_MAX           4096

static const char usage_text[] =
    "Usage: storaged --listen HOST:PORT --data DIR [options]\n"
    "\n"
    "The simplekv storage daemon: keeps versioned values in a Berkeley DB\n"
    "environment in DIR and serves them over HTTP (see docs/protocol.md):\n"
    "  /v1/kv/<key>              GET, HEAD, PUT, DELETE a key of the\n"
    "                            namespace 'default'\n"
    "  /v1/keys                  list the namespace 'default'\n"
    "  /v1/ns/<name>/kv/<key>    the same for a key of namespace <name>\n"
    "                            (1-64 bytes of A-Z a-z 0-9 _ -), created\n"
    "                            by its first PUT or DELETE\n"
    "  /v1/ns/<name>/keys        list namespace <name>\n"
    "  /v1/namespaces            the namespaces held, with their counts\n"
    "  /v1/health, /v1/stats, /v1/epochs, /v1/repair-watermark, /v1/lease\n"
    "\n"
    "  --listen HOST:PORT        address to serve on (IPv6: [::1]:PORT);\n"
    "                            a bare PORT means 127.0.0.1:PORT.  An\n"
    "                            address other than loopback needs\n"
    "                            --token-file (or --insecure)\n"
    "  --data DIR                database directory (created if missing)\n"
    "  --token-file FILE         require 'Authorization: Bearer <token>',\n"
    "                            token = the file's first line, white space\n"
    "                            around it removed.  Repeatable (up to 4):\n"
    "                            any of the tokens is accepted, so that a\n"
    "                            token can be rotated without downtime\n"
    "  --insecure                allow a non-loopback --listen without\n"
    "                            --token-file: anyone who reaches the port\n"
    "                            can then write any key with any version\n"
    "  --durability MODE         process (default): an acknowledged write\n"
    "                            survives a crash of storaged; fsync: it also\n"
    "                            survives power loss\n"
    "  --threads N               HTTP worker threads (default: one per CPU\n"
    "                            storaged may run on, at least 2; at least\n"
    "                            4 with --durability fsync)\n"
    "  --cache-size SIZE         Berkeley DB cache (default 64m)\n"
    "  --max-value-size SIZE     largest value accepted (default 1g, at\n"
    "                            most 1024g); values over 256k are stored\n"
    "                            and served in 256 KiB chunks, streamed\n"
    "  --max-clock-skew DURATION refuse (400) a write whose version's time\n"
    "                            is more than this ahead of this node's\n"
    "                            clock, and let a write replace a stored\n"
    "                            version that far ahead (default 60s; 0:\n"
    "                            neither)\n"
    "  --max-connections N       open HTTP connections at most (default\n"
    "                            8192; the open-files limit is raised to\n"
    "                            match, up to its hard limit)\n"
    "  --idle-timeout DURATION   close a connection idle this long between\n"
    "                            requests (default 90s; keep it above the\n"
    "                            routers' keepalive_timeout, 60s by default)\n"
    "  --first-request-timeout DURATION\n"
    "                            close a connection that has not completed\n"
    "                            its first request after this long without\n"
    "                            traffic, or whose first request's line and\n"
    "                            headers have not all arrived this long\n"
    "                            after it opened (default 10s)\n"
    "  --tombstone-grace DURATION\n"
    "                            purge tombstones older than this (default:\n"
    "                            never) whose version is also below the\n"
    "                            repair watermark (/v1/repair-watermark;\n"
    "                            none set: no purge), and never during an\n"
    "                            epoch transition\n"
    "  --accept-stale-data       start even though, with --tombstone-grace,\n"
    "                            this node's data was last served longer\n"
    "                            ago than the grace (refused otherwise: see\n"
    "                            docs/membership.md, \"Rejoining\")\n"
    "  --help                    print this help and exit\n"
    "  --version                 print the version and exit\n"
    "\n"
    "SIZE is a number of bytes with an optional k, m or g suffix.\n"
    "DURATION is a number with an optional unit ms, s, m, h or d (a bare\n"
    "number is seconds): 500ms, 60s, 2m.\n";

enum {
    OPT_LISTEN = 256, OPT_DATA, OPT_DURABILITY, OPT_THREADS, OPT_CACHE,
    OPT_TOKEN_FILE, OPT_INSECURE, OPT_MAX_VALUE, OPT_GRACE, OPT_SKEW,
    OPT_MAX_CONN, OPT_IDLE, OPT_FIRST, OPT_STALE, OPT_HELP, OPT_VERSION
};

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"data", required_argument, NULL, OPT_DATA},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"cache-size", required_argument, NULL, OPT_CACHE},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"max-value-size", required_argument, NULL, OPT_MAX_VALUE},
    {"tombstone-grace", required_argument, NULL, OPT_GRACE},
    {"max-clock-skew", required_argument, NULL, OPT_SKEW},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"first-request-timeout", required_argument, NULL, OPT_FIRST},
    {"accept-stale-data", no_argument, NULL, OPT_STALE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

/* ---- value syntax ------------------------------------------------------- */

/* The leading decimal number of text; -1 unless it starts with a digit
 * and fits in 64 bits.  *end is set after the digits. */
static int
leading_number(const char *text, uint64_t *n, const char **end)
{
    char *e;

    if (text == NULL || !isdigit((unsigned char) text[0])) {
        return -1;
    }
    errno = 0;
    *n = strtoull(text, &e, 10);
    *end = e;
    return errno != 0 ? -1 : 0;
}

int
storaged_parse_size(const char *text, uint64_t *out)
{
    const char *end;
    uint64_t    n;
    unsigned    shift;

    if (leading_number(text, &n, &end) != 0) {
        return -1;
    }
    switch (tolower((unsigned char) *end)) {
    case '\0':
        shift = 0;
        break;
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    default:
        return -1;
    }
    if (shift > 0) {
        end++;
    }
    if (*end != '\0' || n > (UINT64_MAX >> shift)) {
        return -1;
    }
    *out = n << shift;
    return 0;
}

int
storaged_parse_duration(const char *text, uint64_t *out_ms)
{
    static const struct {
        const char *unit;
        uint64_t    ms;
    } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
        {"d", 86400000},
    };
    const char *end;
    uint64_t    n;
    size_t      i;

    if (leading_number(text, &n, &end) != 0) {
        return -1;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].ms) {
                return -1;
            }
            *out_ms = n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

static int
parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    const char *end;
    uint64_t    n;

    if (leading_number(text, &n, &end) != 0 || *end != '\0' || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}

/* ---- --listen ----------------------------------------------------------- */

/* Split HOST:PORT, [V6]:PORT or PORT; host is "" for a bare port. */
static int
split_listen(const char *text, char *host, size_t host_size,
             const char **port)
{
    const char *sep;

    if (strlen(text) >= host_size) {
        fprintf(stderr, "storaged: --listen '%s' is too long\n", text);
        return -1;
    }
    if (text[0] == '[') {
        sep = strchr(text, ']');
        if (sep == NULL || sep[1] != ':') {
            fprintf(stderr, "storaged: --listen '%s': expected [ADDR]:PORT\n",
                    text);
            return -1;
        }
        memcpy(host, text + 1, (size_t) (sep - text - 1));
        host[sep - text - 1] = '\0';
        *port = sep + 2;
        return 0;
    }
    sep = strrchr(text, ':');
    if (sep == NULL) {
        host[0] = '\0';
        *port = text;
    } else {
        memcpy(host, text, (size_t) (sep - text));
        host[sep - text] = '\0';
        *port = sep + 1;
    }
    return 0;
}

/* HOST:PORT, [V6]:PORT or PORT; numeric hosts and names both resolve. */
static int
parse_listen(storaged_config_t *cfg, const char *text)
{
    char             host[128];
    const char      *port;
    struct addrinfo  hints, *res;
    uint64_t         pn;
    int              rc;

    if (split_listen(text, host, sizeof(host), &port) != 0) {
        return -1;
    }
    if (parse_uint(port, 65535, &pn) != 0 || pn == 0) {
        fprintf(stderr, "storaged: --listen '%s': bad port\n", text);
        return -1;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host[0] != '\0' ? host : "127.0.0.1", port, &hints,
                     &res);
    if (rc != 0) {
        fprintf(stderr, "storaged: --listen '%s': %s\n", text,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&cfg->listen_addr, res->ai_addr, res->ai_addrlen);
    cfg->listen_addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(cfg->listen_text, sizeof(cfg->listen_text), "%s", text);
    return 0;
}

bool
storaged_is_loopback(const struct sockaddr_storage *addr)
{
    const struct sockaddr_in  *in4 = (const struct sockaddr_in *) addr;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
    const unsigned char       *b;

    if (addr->ss_family == AF_INET) {
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss_family == AF_INET6) {
        b = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
            return true;
        }
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127;
    }
    return false;
}

/* ---- --token-file ------------------------------------------------------- */

/* Read one more accepted token (--token-file is repeatable). */
static int
read_token(storaged_config_t *cfg, const char *path)
{
    FILE         *f;
    char          buf[TOKEN_FILE_MAX];
    char         *token;
    size_t        n, start, len;
    skv_status_t  s;

    if (cfg->n_tokens == STORAGED_MAX_TOKENS) {
        fprintf(stderr, "storaged: --token-file %s: at most %d token files\n",
                path, STORAGED_MAX_TOKENS);
        return -1;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "storaged: --token-file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    s = skv_token_parse(buf, n, &start, &len);
    if (s != SKV_OK) {
        fprintf(stderr, "storaged: --token-file %s: %s\n", path,
                skv_strerror(s));
        return -1;
    }
    token = malloc(len + 1);
    if (token == NULL) {
        fprintf(stderr, "storaged: out of memory\n");
        return -1;
    }
    memcpy(token, buf + start, len);
    token[len] = '\0';
    cfg->tokens[cfg->n_tokens] = token;
    cfg->token_lens[cfg->n_tokens] = len;
    cfg->n_tokens++;
    return 0;
}

/* ---- options ------------------------------------------------------------ */

static int
bad_value(const char *option, const char *value)
{
    fprintf(stderr, "storaged: invalid value '%s' for --%s "
                    "(see storaged --help)\n", value, option);
    return -1;
}

/* A size option within [min, max]. */
static int
set_size(uint64_t *field, const char *name, const char *text, uint64_t min,
         uint64_t max)
{
    uint64_t n;

    if (storaged_parse_size(text, &n) != 0 || n < min || n > max) {
        return bad_value(name, text);
    }
    *field = n;
    return 0;
}

/* A duration option in ms, at most MAX_TIMEOUT_MS unless unbounded. */
static int
set_duration_ms(uint64_t *field, const char *name, const char *text,
                bool bounded)
{
    uint64_t ms;

    if (storaged_parse_duration(text, &ms) != 0
        || (bounded && ms > MAX_TIMEOUT_MS))
    {
        return bad_value(name, text);
    }
    *field = ms;
    return 0;
}

/* A timeout in whole seconds (what libmicrohttpd takes), at least 1 s;
 * a fraction of a second is rounded up. */
static int
set_timeout_s(unsigned *field, const char *name, const char *text)
{
    uint64_t ms;

    if (set_duration_ms(&ms, name, text, true) != 0) {
        return -1;
    }
    if (ms == 0) {
        return bad_value(name, text);
    }
    *field = (unsigned) ((ms + 999) / 1000);
    return 0;
}

static int
set_unsigned(unsigned *field, const char *name, const char *text,
             uint64_t max)
{
    uint64_t n;

    if (parse_uint(text, max, &n) != 0 || n == 0) {
        return bad_value(name, text);
    }
    *field = (unsigned) n;
    return 0;
}

static int
set_durability(storaged_config_t *cfg, const char *text)
{
    if (strcmp(text, "process") == 0) {
        cfg->durability = STORAGED_DURABILITY_PROCESS;
    } else if (strcmp(text, "fsync") == 0) {
        cfg->durability = STORAGED_DURABILITY_FSYNC;
    } else {
        return bad_value("durability", text);
    }
    return 0;
}

/* Apply one option with a value; 0 or -1 (message printed). */
static int
apply_option(storaged_config_t *cfg, int opt, const char *arg)
{
    switch (opt) {
    case OPT_LISTEN:
        return parse_listen(cfg, arg);
    case OPT_DATA:
        cfg->data_dir = arg;
        return 0;
    case OPT_DURABILITY:
        return set_durability(cfg, arg);
    case OPT_THREADS:
        return set_unsigned(&cfg->threads, "threads", arg, MAX_THREADS);
    case OPT_CACHE:
        /* Berkeley DB wants at least a few pages. */
        return set_size(&cfg->cache_size, "cache-size", arg, 64 << 10,
                        64ULL << 30);
    case OPT_TOKEN_FILE:
        return read_token(cfg, arg);
    case OPT_INSECURE:
        cfg->insecure = true;
        return 0;
    case OPT_STALE:
        cfg->accept_stale = true;
        return 0;
    case OPT_MAX_VALUE:
        return set_size(&cfg->max_value_size, "max-value-size", arg, 1,
                        MAX_MAX_VALUE_SIZE);
    case OPT_GRACE:
        return set_duration_ms(&cfg->tombstone_grace_ms, "tombstone-grace",
                               arg, false);
    case OPT_SKEW:
        return set_duration_ms(&cfg->max_clock_skew_ms, "max-clock-skew",
                               arg, false);
    case OPT_MAX_CONN:
        return set_unsigned(&cfg->max_connections, "max-connections", arg,
                            MAX_CONNECTIONS);
    case OPT_IDLE:
        return set_timeout_s(&cfg->idle_timeout_s, "idle-timeout", arg);
    case OPT_FIRST:
        return set_timeout_s(&cfg->first_request_timeout_s,
                             "first-request-timeout", arg);
    default:
        fprintf(stderr, "storaged: unknown or incomplete option '%s' "
                        "(see storaged --help)\n", arg);
        return -1;
    }
}

/* Checks across options, once all are known. */
static int
check_config(const storaged_config_t *cfg, bool have_listen)
{
    if (!have_listen) {
        fprintf(stderr, "storaged: --listen HOST:PORT is required\n");
        return -1;
    }
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        fprintf(stderr, "storaged: --data DIR is required\n");
        return -1;
    }
    if (cfg->n_tokens == 0 && !cfg->insecure
        && !storaged_is_loopback(&cfg->listen_addr))
    {
        fprintf(stderr, "storaged: refusing to listen on %s without "
                        "--token-file: it is not a loopback address, and "
                        "anyone who can reach it could write any key with "
                        "any version.  Give --token-file FILE (the routers' "
                        "simplekv_token_file), or --insecure to serve "
                        "without a token anyway\n", cfg->listen_text);
        return -1;
    }
    return 0;
}

static unsigned
default_threads(const storaged_config_t *cfg)
{
    cpu_set_t set;
    unsigned  n, least;

    n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = (unsigned) CPU_COUNT(&set);
    }
    least = cfg->durability == STORAGED_DURABILITY_FSYNC ? MIN_THREADS_FSYNC
                                                         : MIN_THREADS;
    if (n < least) {
        n = least;
    }
    return n < MAX_THREADS ? n : MAX_THREADS;
}

static void
set_defaults(storaged_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->durability = STORAGED_DURABILITY_PROCESS;
    cfg->threads = 0;           /* default_threads() once all is parsed */
    cfg->cache_size = DEFAULT_CACHE_SIZE;
    cfg->max_value_size = DEFAULT_MAX_VALUE_SIZE;
    cfg->tombstone_grace_ms = 0;
    cfg->max_clock_skew_ms = DEFAULT_CLOCK_SKEW_MS;
    cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
    cfg->idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S;
    cfg->first_request_timeout_s = DEFAULT_FIRST_TIMEOUT_S;
}

storaged_config_result_t
storaged_config_parse(storaged_config_t *cfg, int argc, char **argv)
{
    bool have_listen = false;
    int  c;

    set_defaults(cfg);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == OPT_HELP || c == OPT_VERSION) {
            fputs(c == OPT_HELP ? usage_text
                                : STORAGED_VERSION_STRING "\n", stdout);
            storaged_config_free(cfg);
            return STORAGED_CONFIG_EXIT;
        }
        if (apply_option(cfg, c, c < OPT_LISTEN ? argv[optind - 1]
                                                : optarg) != 0)
        {
            storaged_config_free(cfg);
            return STORAGED_CONFIG_ERROR;
        }
        have_listen = have_listen || c == OPT_LISTEN;
    }
    if (cfg->threads == 0) {
        cfg->threads = default_threads(cfg);
    }
    if (optind < argc) {
        fprintf(stderr, "storaged: unexpected argument '%s'\n", argv[optind]);
    } else if (check_config(cfg, have_listen) == 0) {
        return STORAGED_CONFIG_RUN;
    }
    storaged_config_free(cfg);
    return STORAGED_CONFIG_ERROR;
}

void
storaged_config_free(storaged_config_t *cfg)
{
    unsigned i;

    for (i = 0; i < cfg->n_tokens; i++) {
        free(cfg->tokens[i]);
        cfg->tokens[i] = NULL;
        cfg->token_lens[i] = 0;
    }
    cfg->n_tokens = 0;
}
