/*
 * config.c - parse and validate storaged's command line (see config.h).
 *
 * getopt_long does the option syntax; this file gives each value its
 * meaning: sizes with k/m/g suffixes, a listen address resolved to a
 * sockaddr up front (so a typo fails at start, not at bind), and the token
 * read once from its file.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define DEFAULT_THREADS        4
#define DEFAULT_CACHE_SIZE     (64ULL << 20)
#define DEFAULT_MAX_VALUE_SIZE (1ULL << 20)
#define DEFAULT_GRACE_SECONDS  86400ULL
#define MAX_THREADS            256
#define TOKEN_FILE_MAX         4096

static const char usage_text[] =
    "Usage: storaged --listen HOST:PORT --data DIR [options]\n"
    "\n"
    "The simplekv storage daemon: keeps versioned values in a Berkeley DB\n"
    "environment in DIR and serves them over HTTP (see docs/protocol.md).\n"
    "\n"
    "  --listen HOST:PORT        address to serve on (IPv6: [::1]:PORT);\n"
    "                            a bare PORT means 127.0.0.1:PORT\n"
    "  --data DIR                database directory (created if missing)\n"
    "  --durability MODE         process (default): an acknowledged write\n"
    "                            survives a crash of storaged; fsync: it also\n"
    "                            survives power loss\n"
    "  --threads N               HTTP worker threads (default 4)\n"
    "  --cache-size SIZE         Berkeley DB cache (default 64m)\n"
    "  --token-file FILE         require 'Authorization: Bearer <token>',\n"
    "                            token = the file's first line\n"
    "  --max-value-size SIZE     largest value accepted (default 1m)\n"
    "  --tombstone-grace SECONDS purge tombstones older than this\n"
    "                            (default 86400)\n"
    "  --help                    print this help and exit\n"
    "  --version                 print the version and exit\n"
    "\n"
    "SIZE is a number of bytes with an optional k, m or g suffix.\n";

int
storaged_parse_size(const char *text, uint64_t *out)
{
    char              *end;
    unsigned long long n;
    unsigned           shift = 0;

    if (text == NULL || !isdigit((unsigned char) text[0])) {
        return -1;
    }
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno != 0) {
        return -1;
    }
    switch (tolower((unsigned char) *end)) {
    case '\0':
        break;
    case 'k':
        shift = 10;
        end++;
        break;
    case 'm':
        shift = 20;
        end++;
        break;
    case 'g':
        shift = 30;
        end++;
        break;
    default:
        return -1;
    }
    if (*end != '\0' || n > (UINT64_MAX >> shift)) {
        return -1;
    }
    *out = (uint64_t) n << shift;
    return 0;
}

static int
parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    char              *end;
    unsigned long long n;

    if (text == NULL || !isdigit((unsigned char) text[0])) {
        return -1;
    }
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}

/* HOST:PORT, [V6]:PORT or PORT; numeric hosts and names both resolve. */
static int
parse_listen(storaged_config_t *cfg, const char *text)
{
    char             host[128];
    const char      *port;
    struct addrinfo  hints, *res;
    int              rc;

    if (strlen(text) >= sizeof(host)) {
        fprintf(stderr, "storaged: --listen '%s' is too long\n", text);
        return -1;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (close == NULL || close[1] != ':') {
            fprintf(stderr, "storaged: --listen '%s': expected [ADDR]:PORT\n",
                    text);
            return -1;
        }
        memcpy(host, text + 1, (size_t) (close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');

        if (colon == NULL) {
            strcpy(host, "127.0.0.1");
            port = text;
        } else {
            memcpy(host, text, (size_t) (colon - text));
            host[colon - text] = '\0';
            port = colon + 1;
        }
    }

    if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port)
        || atoi(port) <= 0 || atoi(port) > 65535)
    {
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

/* The token is the file's first line without trailing white space; an
 * empty token would make authentication meaningless, so it is an error. */
static int
read_token(storaged_config_t *cfg, const char *path)
{
    FILE   *f;
    char   *buf;
    size_t  n;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "storaged: --token-file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    buf = malloc(TOKEN_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "storaged: out of memory\n");
        return -1;
    }
    n = fread(buf, 1, TOKEN_FILE_MAX, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    n = strlen(buf);
    while (n > 0 && isspace((unsigned char) buf[n - 1])) {
        buf[--n] = '\0';
    }
    if (n == 0) {
        fprintf(stderr, "storaged: --token-file %s: the token is empty\n",
                path);
        free(buf);
        return -1;
    }
    free(cfg->token);
    cfg->token = buf;
    cfg->token_len = n;
    return 0;
}

static int
bad_value(const char *option, const char *value)
{
    fprintf(stderr, "storaged: invalid value '%s' for --%s "
                    "(see storaged --help)\n", value, option);
    return -1;
}

storaged_config_result_t
storaged_config_parse(storaged_config_t *cfg, int argc, char **argv)
{
    enum {
        OPT_LISTEN = 256, OPT_DATA, OPT_DURABILITY, OPT_THREADS, OPT_CACHE,
        OPT_TOKEN_FILE, OPT_MAX_VALUE, OPT_GRACE, OPT_HELP, OPT_VERSION
    };
    static const struct option options[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"data", required_argument, NULL, OPT_DATA},
        {"durability", required_argument, NULL, OPT_DURABILITY},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"cache-size", required_argument, NULL, OPT_CACHE},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"max-value-size", required_argument, NULL, OPT_MAX_VALUE},
        {"tombstone-grace", required_argument, NULL, OPT_GRACE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}
    };
    bool     have_listen = false;
    uint64_t n;
    int      c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->durability = STORAGED_DURABILITY_PROCESS;
    cfg->threads = DEFAULT_THREADS;
    cfg->cache_size = DEFAULT_CACHE_SIZE;
    cfg->max_value_size = DEFAULT_MAX_VALUE_SIZE;
    cfg->tombstone_grace_ms = DEFAULT_GRACE_SECONDS * 1000;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = 0;

        switch (c) {
        case OPT_LISTEN:
            rc = parse_listen(cfg, optarg);
            have_listen = rc == 0;
            break;
        case OPT_DATA:
            cfg->data_dir = optarg;
            break;
        case OPT_DURABILITY:
            if (strcmp(optarg, "process") == 0) {
                cfg->durability = STORAGED_DURABILITY_PROCESS;
            } else if (strcmp(optarg, "fsync") == 0) {
                cfg->durability = STORAGED_DURABILITY_FSYNC;
            } else {
                rc = bad_value("durability", optarg);
            }
            break;
        case OPT_THREADS:
            if (parse_uint(optarg, MAX_THREADS, &n) != 0 || n == 0) {
                rc = bad_value("threads", optarg);
            } else {
                cfg->threads = (unsigned) n;
            }
            break;
        case OPT_CACHE:
            /* Berkeley DB wants at least a few pages; 4 GiB keeps the
             * (gbytes, bytes) split in store.c simple. */
            if (storaged_parse_size(optarg, &n) != 0 || n < (64 << 10)
                || n > (64ULL << 30))
            {
                rc = bad_value("cache-size", optarg);
            } else {
                cfg->cache_size = n;
            }
            break;
        case OPT_TOKEN_FILE:
            rc = read_token(cfg, optarg);
            break;
        case OPT_MAX_VALUE:
            if (storaged_parse_size(optarg, &n) != 0 || n == 0
                || n > (1ULL << 30))
            {
                rc = bad_value("max-value-size", optarg);
            } else {
                cfg->max_value_size = n;
            }
            break;
        case OPT_GRACE:
            if (parse_uint(optarg, UINT64_MAX / 1000, &n) != 0) {
                rc = bad_value("tombstone-grace", optarg);
            } else {
                cfg->tombstone_grace_ms = n * 1000;
            }
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            storaged_config_free(cfg);
            return STORAGED_CONFIG_EXIT;
        case OPT_VERSION:
            puts(STORAGED_VERSION_STRING);
            storaged_config_free(cfg);
            return STORAGED_CONFIG_EXIT;
        default:
            fprintf(stderr, "storaged: unknown or incomplete option '%s' "
                            "(see storaged --help)\n", argv[optind - 1]);
            rc = -1;
        }
        if (rc != 0) {
            storaged_config_free(cfg);
            return STORAGED_CONFIG_ERROR;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "storaged: unexpected argument '%s'\n", argv[optind]);
    } else if (!have_listen) {
        fprintf(stderr, "storaged: --listen HOST:PORT is required\n");
    } else if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        fprintf(stderr, "storaged: --data DIR is required\n");
    } else {
        return STORAGED_CONFIG_RUN;
    }
    storaged_config_free(cfg);
    return STORAGED_CONFIG_ERROR;
}

void
storaged_config_free(storaged_config_t *cfg)
{
    free(cfg->token);
    cfg->token = NULL;
    cfg->token_len = 0;
}
