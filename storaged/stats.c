/*
 * stats.c - request counters and the /v1/stats JSON document (see stats.h).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "stats.h"

void
stats_init(stats_t *s)
{
    memset(s, 0, sizeof(*s));
    s->started = time(NULL);
}

void
stats_count_status(stats_t *s, unsigned status)
{
    if (status < STATS_STATUS_MAX) {
        atomic_fetch_add_explicit(&s->by_status[status], 1,
                                  memory_order_relaxed);
    }
}

char *
stats_render(stats_t *s, store_t *st)
{
    store_stats_t  ss;
    json_t        *doc, *requests, *by_status, *cache, *log;
    uint64_t       total = 0, lookups;
    char           code[8], *text;

    store_get_stats(st, &ss);

    by_status = json_object();
    for (unsigned i = 0; i < STATS_STATUS_MAX; i++) {
        uint64_t n = atomic_load_explicit(&s->by_status[i],
                                          memory_order_relaxed);

        if (n > 0) {
            snprintf(code, sizeof(code), "%u", i);
            json_object_set_new(by_status, code, json_integer((json_int_t) n));
            total += n;
        }
    }
    requests = json_pack("{s:I, s:o}", "total", (json_int_t) total,
                         "by_status", by_status);

    lookups = ss.cache_hits + ss.cache_misses;
    cache = json_pack("{s:I, s:I, s:f}", "hits", (json_int_t) ss.cache_hits,
                      "misses", (json_int_t) ss.cache_misses,
                      "hit_rate", lookups > 0 ? (double) ss.cache_hits
                                                / (double) lookups : 1.0);

    /* Commits that reached the kernel, and those flushed to disk: in
     * --durability fsync every commit is a sync, in process mode only
     * checkpoints and log switches are. */
    log = json_pack("{s:I, s:I}", "writes", (json_int_t) ss.log_writes,
                    "syncs", (json_int_t) ss.log_syncs);

    doc = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
                    "version", STORAGED_VERSION_STRING,
                    "uptime_seconds", (json_int_t) (time(NULL) - s->started),
                    "keys", (json_int_t) ss.keys,
                    "tombstones", (json_int_t) ss.tombstones,
                    "bytes", (json_int_t) ss.bytes,
                    "tombstones_purged", (json_int_t) ss.tombstones_purged,
                    "deadlock_retries", (json_int_t) ss.deadlock_retries,
                    "requests", requests,
                    "cache", cache,
                    "log", log);
    if (doc == NULL) {
        return NULL;
    }
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return text;
}
