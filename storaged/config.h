/*
 * config.h - storaged's command line.
 *
 * Everything the daemon is told at start-up lives in one storaged_config_t,
 * filled and validated by storaged_config_parse() before any other subsystem
 * starts, so that a bad flag is reported once, clearly, and nothing is
 * half-opened.
 */
#ifndef STORAGED_CONFIG_H
#define STORAGED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STORAGED_VERSION_STRING "simplekv storaged 0.1.0"

/* --token-file may be given this many times at most. */
#define STORAGED_MAX_TOKENS 4

typedef enum {
    STORAGED_DURABILITY_PROCESS, /* log written to the OS at commit */
    STORAGED_DURABILITY_FSYNC    /* log flushed to disk at commit */
} storaged_durability_t;

typedef struct {
    struct sockaddr_storage listen_addr;
    socklen_t               listen_addr_len;
    char                    listen_text[128];
    bool                    insecure;        /* --insecure given */
    bool                    accept_stale;    /* --accept-stale-data */

    const char             *data_dir;
    storaged_durability_t   durability;
    unsigned                threads;
    uint64_t                cache_size;      /* bytes */
    uint64_t                max_value_size;  /* bytes */
    uint64_t                tombstone_grace_ms;  /* 0: never purge */
    uint64_t                max_clock_skew_ms;   /* 0: no check */

    unsigned                max_connections;
    unsigned                idle_timeout_s;          /* between requests */
    unsigned                first_request_timeout_s; /* before the first */

    /* --token-file, repeatable: a request carrying any of these tokens is
     * authorized (two during a token rotation, docs/deploying.md).
     * n_tokens == 0: no authentication. */
    char                   *tokens[STORAGED_MAX_TOKENS];
    size_t                  token_lens[STORAGED_MAX_TOKENS];
    unsigned                n_tokens;
} storaged_config_t;

typedef enum {
    STORAGED_CONFIG_RUN,  /* start the daemon */
    STORAGED_CONFIG_EXIT, /* --help or --version was printed: exit 0 */
    STORAGED_CONFIG_ERROR /* message printed to stderr: exit 2 */
} storaged_config_result_t;

storaged_config_result_t storaged_config_parse(storaged_config_t *cfg,
                                               int argc, char **argv);

void storaged_config_free(storaged_config_t *cfg);

/* "64m" -> 67108864; k/m/g suffixes are powers of 1024.  -1 on bad text. */
int storaged_parse_size(const char *text, uint64_t *out);

/* A duration in milliseconds: a number with an optional unit ms, s, m, h
 * or d ("500ms", "60s", "2m"); a bare number is seconds.  -1 on bad text. */
int storaged_parse_duration(const char *text, uint64_t *out_ms);

/* True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8. */
bool storaged_is_loopback(const struct sockaddr_storage *addr);

#endif
