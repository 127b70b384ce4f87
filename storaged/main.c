/*
 * main.c - storaged: the simplekv storage daemon.
 *
 * Lifecycle: parse the command line (config.c), open the database
 * (store.c, which runs recovery), start the housekeeping thread
 * (background.c) and the HTTP server (http.c), then wait for SIGTERM or
 * SIGINT.  Shutdown runs in the reverse order: stop accepting and drain
 * requests in flight, stop housekeeping, checkpoint and close the database.
 *
 * Signals are blocked in every thread and taken synchronously with
 * sigwait() here, so no handler ever runs inside a library call.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "background.h"
#include "config.h"
#include "http.h"
#include "stats.h"
#include "store.h"

#define DRAIN_MS 10000

int
main(int argc, char **argv)
{
    storaged_config_t  cfg;
    store_options_t    opt;
    store_t           *st;
    stats_t           *stats;
    background_t      *bg;
    http_server_t     *srv;
    sigset_t           sigs;
    char               err[STORE_ERR_MAX];
    int                sig = 0;
    bool               failed;

    switch (storaged_config_parse(&cfg, argc, argv)) {
    case STORAGED_CONFIG_EXIT:
        return 0;
    case STORAGED_CONFIG_ERROR:
        return 2;
    case STORAGED_CONFIG_RUN:
        break;
    }

    /* A peer closing early must not kill us (SIGPIPE), and a file size
     * limit must surface as EFBIG -> 507, not as a fatal SIGXFSZ. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);

    /* Block before any thread starts, so that all threads inherit it. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    memset(&opt, 0, sizeof(opt));
    opt.dir = cfg.data_dir;
    opt.fsync_commits = cfg.durability == STORAGED_DURABILITY_FSYNC;
    opt.cache_size = cfg.cache_size;
    opt.max_clock_skew_ms = cfg.max_clock_skew_ms;
    opt.tombstone_grace_ms = cfg.tombstone_grace_ms;
    if (store_open(&st, &opt, err) != STORE_OK) {
        fprintf(stderr, "storaged: cannot open the database in %s: %s\n",
                cfg.data_dir, err);
        storaged_config_free(&cfg);
        return 1;
    }

    stats = malloc(sizeof(*stats));
    if (stats == NULL) {
        fprintf(stderr, "storaged: out of memory\n");
        store_close(st);
        storaged_config_free(&cfg);
        return 1;
    }
    stats_init(stats);

    bg = background_start(st, cfg.tombstone_grace_ms);
    if (bg == NULL) {
        fprintf(stderr, "storaged: cannot start the background thread\n");
        free(stats);
        store_close(st);
        storaged_config_free(&cfg);
        return 1;
    }

    srv = http_start(&cfg, st, stats);
    if (srv == NULL) {
        background_stop(bg);
        free(stats);
        store_close(st);
        storaged_config_free(&cfg);
        return 1;
    }
    if (cfg.n_tokens == 0 && !storaged_is_loopback(&cfg.listen_addr)) {
        fprintf(stderr, "storaged: warning: --insecure: serving %s without "
                        "a token; anyone who can reach it can write any "
                        "key\n", cfg.listen_text);
    }
    fprintf(stderr, "storaged: serving %s on %s (durability %s)\n",
            cfg.data_dir, cfg.listen_text,
            cfg.durability == STORAGED_DURABILITY_FSYNC ? "fsync"
                                                        : "process");

    while (sigwait(&sigs, &sig) != 0) {
        /* EINTR cannot happen for sigwait on Linux; loop for safety */
    }
    fprintf(stderr, "storaged: %s received, shutting down\n",
            strsignal(sig));

    http_stop(srv, DRAIN_MS);
    background_stop(bg);
    failed = store_failed(st);
    store_close(st);
    free(stats);
    storaged_config_free(&cfg);
    return failed ? 1 : 0;
}
