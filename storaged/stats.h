/*
 * stats.h - request counters and the GET /v1/stats document.
 *
 * Counters are lock-free atomics bumped by the HTTP worker threads; the
 * stats document joins them with the store's own figures (key counts,
 * cache hit rate) and is encoded with jansson.
 */
#ifndef STORAGED_STATS_H
#define STORAGED_STATS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lease.h"
#include "store.h"

#define STATS_STATUS_MAX 600

typedef struct {
    _Atomic uint64_t by_status[STATS_STATUS_MAX];
    _Atomic uint64_t errors_logged;
    time_t           started;
} stats_t;

void stats_init(stats_t *s);
void stats_count_status(stats_t *s, unsigned status);

/* {"name", "keys", "tombstones", "bytes"}: one namespace in
 * /v1/namespaces and /v1/stats; NULL when out of memory. */
json_t *stats_space_json(const store_space_stats_t *sp);

/* The JSON document as a malloc'd, NUL-terminated string; NULL when out of
 * memory. */
char *stats_render(stats_t *s, store_t *st, lease_t *lease);

#endif
