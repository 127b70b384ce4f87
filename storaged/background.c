/*
 * background.c - the housekeeping thread (see background.h).
 *
 * Wakes every second for a checkpoint (a no-op unless 16 MiB of log or a
 * minute passed since the last one) and to remove the chunks of large
 * values nobody uses any more (superseded, refused, aborted or cut off by
 * a crash: store_collect_chunks), in slices with a pause between them.  Only when a tombstone grace was set
 * (--tombstone-grace; purging is off by default, see docs/protocol.md):
 * every min(grace / 2, 10) seconds, but at most every second, it sweeps
 * the index for tombstones to purge (those the store allows: below the
 * repair watermark, outside an epoch transition; store_purge_tombstones),
 * in slices of PURGE_SLICE entries with a pause between slices, so that it
 * never competes long with request threads.  Every min(grace / 4, 60)
 * seconds, but at most every second, it records that the data is being
 * served (store_alive_mark: the evidence main checks before a node
 * rejoins, docs/membership.md "Rejoining").  Stops promptly:
 * background_stop signals the condition variable it sleeps on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "background.h"
#include "skv_version.h"

#define PURGE_INTERVAL_MAX_S 10
#define ALIVE_INTERVAL_MAX_S 60
#define PURGE_SLICE          500
#define COLLECT_SLICE        256    /* chunks (64 MiB) between pauses */

struct background {
    store_t         *st;
    uint64_t         grace_ms;
    pthread_t        thread;
    pthread_mutex_t  lock;
    pthread_cond_t   wake;
    bool             stopping;
};

/* Sleep up to ms; returns false when asked to stop. */
static bool
nap(background_t *bg, long ms)
{
    struct timespec until;
    bool            go_on;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&bg->lock);
    while (!bg->stopping
           && pthread_cond_timedwait(&bg->wake, &bg->lock, &until)
              != ETIMEDOUT)
    {
        /* spurious wake-up or a signal: re-check stopping */
    }
    go_on = !bg->stopping;
    pthread_mutex_unlock(&bg->lock);
    return go_on;
}

static void
purge_sweep(background_t *bg)
{
    char     err[STORE_ERR_MAX];
    uint64_t now = skv_clock_now_ms();
    uint64_t cutoff = now > bg->grace_ms ? now - bg->grace_ms : 0;
    size_t   purged;
    bool     wrapped = false;

    if (cutoff == 0) {
        return;
    }
    while (!wrapped) {
        if (store_purge_tombstones(bg->st, cutoff, PURGE_SLICE, &purged,
                                   &wrapped, err) != STORE_OK)
        {
            fprintf(stderr, "storaged: tombstone purge: %s\n", err);
            return;
        }
        if (!wrapped && !nap(bg, 1)) {
            return;
        }
    }
}

/* Remove the chunks no value uses (store_collect_chunks), in slices. */
static void
collect_sweep(background_t *bg)
{
    char   err[STORE_ERR_MAX];
    size_t removed = COLLECT_SLICE;

    while (removed == COLLECT_SLICE) {
        if (store_collect_chunks(bg->st, COLLECT_SLICE, &removed, err)
            != STORE_OK)
        {
            fprintf(stderr, "storaged: chunk collector: %s\n", err);
            return;
        }
        if (removed == COLLECT_SLICE && !nap(bg, 1)) {
            return;
        }
    }
}

/* grace_ms / divisor in whole seconds, within [1, max_s]. */
static unsigned
every_s(uint64_t grace_ms, unsigned divisor, unsigned max_s)
{
    uint64_t s = grace_ms / (1000u * divisor);

    if (grace_ms == 0 || s > max_s) {
        return max_s;
    }
    return s < 1 ? 1 : (unsigned) s;
}

static void *
background_main(void *arg)
{
    background_t *bg = arg;
    char          err[STORE_ERR_MAX];
    unsigned      tick = 0, purge_every, alive_every;

    purge_every = every_s(bg->grace_ms, 2, PURGE_INTERVAL_MAX_S);
    alive_every = every_s(bg->grace_ms, 4, ALIVE_INTERVAL_MAX_S);

    while (nap(bg, 1000)) {
        tick++;
        if (store_checkpoint(bg->st, err) != STORE_OK) {
            fprintf(stderr, "storaged: %s\n", err);
        }
        collect_sweep(bg);
        if (tick % alive_every == 0
            && store_alive_mark(bg->st, skv_clock_now_ms(), err) != STORE_OK)
        {
            fprintf(stderr, "storaged: %s\n", err);
        }
        if (bg->grace_ms > 0 && tick % purge_every == 0) {
            purge_sweep(bg);
        }
    }
    return NULL;
}

background_t *
background_start(store_t *st, uint64_t tombstone_grace_ms)
{
    background_t       *bg;
    pthread_condattr_t  ca;

    bg = calloc(1, sizeof(*bg));
    if (bg == NULL) {
        return NULL;
    }
    bg->st = st;
    bg->grace_ms = tombstone_grace_ms;
    pthread_mutex_init(&bg->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&bg->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&bg->thread, NULL, background_main, bg) != 0) {
        pthread_cond_destroy(&bg->wake);
        pthread_mutex_destroy(&bg->lock);
        free(bg);
        return NULL;
    }
    return bg;
}

void
background_stop(background_t *bg)
{
    if (bg == NULL) {
        return;
    }
    pthread_mutex_lock(&bg->lock);
    bg->stopping = true;
    pthread_cond_signal(&bg->wake);
    pthread_mutex_unlock(&bg->lock);
    pthread_join(bg->thread, NULL);
    pthread_cond_destroy(&bg->wake);
    pthread_mutex_destroy(&bg->lock);
    free(bg);
}
