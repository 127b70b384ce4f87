/*
 * background.h - storaged's housekeeping thread: checkpoints (which also
 * let Berkeley DB remove old log files) and the purge of old tombstones.
 * Deadlocks need no thread: the environment runs its detector whenever a
 * lock request blocks (store.c).
 */
#ifndef STORAGED_BACKGROUND_H
#define STORAGED_BACKGROUND_H

#include <stdint.h>

#include "store.h"

typedef struct background background_t;

/* tombstone_grace_ms 0: never purge tombstones (the default). */
background_t *background_start(store_t *st, uint64_t tombstone_grace_ms);
/* Wake the thread, wait for it to finish its current step, free it. */
void background_stop(background_t *bg);

#endif
