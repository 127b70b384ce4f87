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
#include "skv_version.h"
#include "store.h"

#define DRAIN_MS 10000

/*
 * Whether this data may serve again (docs/membership.md, "Rejoining").
 * With a tombstone grace, the other nodes purge tombstones older than the
 * grace once a repair has covered them: a copy that was not served for
 * longer than that (a node down too long, a directory restored from an
 * old backup) may hold values whose deletes are gone everywhere else, and
 * would bring them back.  Refused unless --accept-stale-data; otherwise
 * the start is recorded at once.
 */
static bool
may_rejoin(store_t *st, const storaged_config_t *cfg)
{
    char     err[STORE_ERR_MAX];
    uint64_t last, now = skv_clock_now_ms();

    if (cfg->tombstone_grace_ms > 0 && store_alive_last(st, &last)
        && now > last && now - last > cfg->tombstone_grace_ms)
    {
        if (!cfg->accept_stale) {
            fprintf(stderr, "storaged: refusing to serve %s: its data was "
                            "last served %llu s ago, longer than "
                            "--tombstone-grace (%llu s), so deletes it "
                            "missed may have been purged everywhere else "
                            "and its copies would bring those keys back. "
                            "Wipe the directory and let skv repair refill "
                            "the node, or start with --accept-stale-data if "
                            "no node purged tombstones meanwhile (e.g. the "
                            "whole cluster was down)\n", cfg->data_dir,
                    (unsigned long long) ((now - last) / 1000),
                    (unsigned long long) (cfg->tombstone_grace_ms / 1000));
            return false;
        }
        fprintf(stderr, "storaged: warning: --accept-stale-data: serving "
                        "data last served %llu s ago, longer than the "
                        "tombstone grace\n",
                (unsigned long long) ((now - last) / 1000));
    }
    if (store_alive_mark(st, now, err) != STORE_OK) {
        fprintf(stderr, "storaged: %s\n", err);
        return false;
    }
    return true;
}

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
    if (!may_rejoin(st, &cfg)) {
        store_close(st);
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

    /* before the first request can be answered: whoever checks the log
     * once the node serves finds the warning there */
    if (cfg.n_tokens == 0 && !storaged_is_loopback(&cfg.listen_addr)) {
        fprintf(stderr, "storaged: warning: --insecure: serving %s without "
                        "a token; anyone who can reach it can write any "
                        "key\n", cfg.listen_text);
    }
    srv = http_start(&cfg, st, stats);
    if (srv == NULL) {
        background_stop(bg);
        free(stats);
        store_close(st);
        storaged_config_free(&cfg);
        return 1;
    }
    fprintf(stderr, "storaged: serving %s on %s (durability %s, %u threads)\n",
            cfg.data_dir, cfg.listen_text,
            cfg.durability == STORAGED_DURABILITY_FSYNC ? "fsync" : "process",
            cfg.threads);

    while (sigwait(&sigs, &sig) != 0) {
        /* EINTR cannot happen for sigwait on Linux; loop for safety */
    }
    fprintf(stderr, "storaged: %s received, shutting down\n",
            strsignal(sig));

    http_stop(srv, DRAIN_MS);
    background_stop(bg);
    failed = store_failed(st);
    if (!failed && store_alive_mark(st, skv_clock_now_ms(), err) != STORE_OK) {
        fprintf(stderr, "storaged: %s\n", err);
    }
    store_close(st);
    free(stats);
    storaged_config_free(&cfg);
    return failed ? 1 : 0;
}
