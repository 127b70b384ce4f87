/*
 * stats.c - request counters and the /v1/stats JSON document (see stats.h).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The membership state: the epoch window, the repair watermark and the
 * lease (docs/protocol.md). */
static json_t *
membership(store_t *st, lease_t *lease)
{
    store_epochs_t w;
    skv_version_t  repair;
    lease_state_t  ls;
    char           text[SKV_VERSION_TEXT_LEN + 1];
    json_t        *epochs, *lease_doc, *repair_doc;

    store_epochs_get(st, &w);
    epochs = w.set ? json_pack("{s:I, s:I}", "min", (json_int_t) w.min,
                               "max", (json_int_t) w.max)
                   : json_pack("{s:n, s:n}", "min", "max");
    lease_get(lease, &ls);
    lease_doc = ls.held ? json_pack("{s:s, s:I}", "holder", ls.holder,
                                    "expires_in_ms",
                                    (json_int_t) ls.expires_in_ms)
                        : json_null();
    repair_doc = json_null();
    if (store_repair_get(st, &repair)) {
        skv_version_format(&repair, text);
        repair_doc = json_string(text);
    }
    return json_pack("{s:o, s:o, s:o}", "epochs", epochs,
                     "repair_watermark", repair_doc, "lease", lease_doc);
}

json_t *
stats_space_json(const store_space_stats_t *sp)
{
    return json_pack("{s:s, s:I, s:I, s:I}", "name", sp->name,
                     "keys", (json_int_t) sp->keys,
                     "tombstones", (json_int_t) sp->tombstones,
                     "bytes", (json_int_t) sp->bytes);
}

/* Every namespace's counters, and their sums into ss (one snapshot, so
 * that the totals are the sums of the parts). */
static json_t *
spaces_doc(store_t *st, store_stats_t *ss)
{
    store_space_stats_t *spaces;
    json_t              *list;
    size_t               n, i;

    spaces = store_spaces_list(st, &n);
    if (spaces == NULL) {
        return NULL;
    }
    ss->keys = ss->tombstones = ss->bytes = 0;
    list = json_array();
    for (i = 0; i < n; i++) {
        ss->keys += spaces[i].keys;
        ss->tombstones += spaces[i].tombstones;
        ss->bytes += spaces[i].bytes;
        json_array_append_new(list, stats_space_json(&spaces[i]));
    }
    free(spaces);
    return list;
}

char *
stats_render(stats_t *s, store_t *st, lease_t *lease)
{
    store_stats_t  ss;
    json_t        *doc, *requests, *by_status, *cache, *log, *spaces;
    uint64_t       total = 0, lookups;
    char           code[8], *text;

    store_get_stats(st, &ss);
    spaces = spaces_doc(st, &ss);
    if (spaces == NULL) {
        return NULL;
    }

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

    doc = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
                    "s:o, s:o}",
                    "version", STORAGED_VERSION_STRING,
                    "uptime_seconds", (json_int_t) (time(NULL) - s->started),
                    "keys", (json_int_t) ss.keys,
                    "tombstones", (json_int_t) ss.tombstones,
                    "bytes", (json_int_t) ss.bytes,
                    "tombstones_purged", (json_int_t) ss.tombstones_purged,
                    "copies_removed", (json_int_t) ss.copies_removed,
                    "corrupt_values", (json_int_t) ss.corrupt_values,
                    "deadlock_retries", (json_int_t) ss.deadlock_retries,
                    "requests", requests,
                    "cache", cache,
                    "log", log,
                    "namespaces", spaces);
    if (doc == NULL) {
        return NULL;
    }
    /* Large values (store_chunks.c): chunk records, uploads whose chunks
     * are pending (in progress or waiting for the collector), chunks
     * removed by the collector since start. */
    if (json_object_set_new(doc, "chunks", json_integer((json_int_t)
                                                        ss.chunks)) != 0
        || json_object_set_new(doc, "chunk_uploads_pending",
                               json_integer((json_int_t) ss.chunk_uploads))
           != 0
        || json_object_set_new(doc, "chunks_collected",
                               json_integer((json_int_t) ss.chunks_collected))
           != 0
        || json_object_update_new(doc, membership(st, lease)) != 0)
    {
        json_decref(doc);
        return NULL;
    }
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return text;
}
