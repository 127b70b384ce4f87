/*
 * skv_engine.h - the engine shared by `skv rebalance`, `skv cleanup` and
 * `skv repair`: every node's listing merged in key order (skv_scan.h),
 * a plan per key (skv_plan.c), and the keys that need work done by up to
 * --concurrency tasks at once (skv_task.c), throttled, with retries, a
 * checkpoint position and progress (skv_report.c).
 *
 * The engine goes through the namespaces one after the other, bytewise by
 * name: the routers' configured ones and those only the nodes hold (whose
 * keys cannot be placed: reported once, left alone, the run incomplete).
 * In each, the listings are /v1/keys or /v1/ns/<name>/keys, the copies
 * /v1/kv/ or /v1/ns/<name>/kv/, the owners the top N of that namespace
 * and its quorum N/2+1.  A namespace is finished (every task done) before
 * the next one starts, so a position is (namespace, key).
 *
 * Rules every mode keeps: a timeout or an error is never "absent" (it is
 * retried, then the key is a failure); writes carry the key's original
 * version, so they are idempotent and never replace anything newer; the
 * checkpoint position never passes a key that is not finished, nor one
 * that failed.
 */
#ifndef SKV_ENGINE_H
#define SKV_ENGINE_H

#include <stdint.h>
#include <stdio.h>

#include "skv_async.h"
#include "skv_cli.h"
#include "skv_scan.h"
#include "skv_topo.h"

typedef enum {
    SKV_MODE_REBALANCE,
    SKV_MODE_CLEANUP,
    SKV_MODE_REPAIR
} skv_mode_t;

#define SKV_ATTEMPTS 3        /* tries of one request before giving up */
#define SKV_FAILURES_KEPT 100 /* failed keys listed at the end */

typedef struct {
    int      down;       /* stopped answering: its requests fail at once */
    int      streak;     /* network failures in a row */
    uint64_t total;      /* keys + tombstones at the start (progress) */
    uint64_t scanned_before; /* from the checkpoint */
    uint64_t scanned_ns; /* this run, in the namespaces finished */
    uint64_t not_owned;  /* cleanup: copies it holds but does not own */
    uint64_t removed;    /* cleanup: of those, removed */
} skv_enode_t;

typedef struct {
    uint64_t keys;        /* distinct keys merged */
    uint64_t copied;      /* copies written (rebalance, repair) */
    uint64_t moved;       /* rebalance: to nodes that were not owners */
    uint64_t tombstones;  /* of the copies, tombstones */
    uint64_t bytes;       /* value bytes written */
    uint64_t removed;     /* cleanup */
    uint64_t planned;     /* dry run: copies or removals it would make */
    uint64_t retries;
    uint64_t failures;    /* keys */
    uint64_t differ_keys; /* repair: keys whose owners differed */
    uint64_t missing, stale, kind, extra; /* repair: copies */
} skv_counters_t;

typedef struct {
    char ns[SKV_NS_NAME_MAX + 1];
    char key[SKV_KEY_ENCODED_MAX + 1];
    char reason[200];
} skv_failure_t;

typedef struct skv_task skv_task_t;
typedef struct skv_engine skv_engine_t;

/* Called from the engine's loop about ten times a second. */
typedef void (*skv_tick_fn)(skv_engine_t *eng, double now);

struct skv_engine {
    skv_mode_t        mode;
    const char       *name;           /* "rebalance", ... */
    const skv_opts_t *opts;
    skv_topo_t       *topo;
    skv_loop_t        loop;
    char              epoch_hdr[64];  /* "X-Simplekv-Epoch: E" */
    /* the namespace being worked on: topo->ns[ns_i] */
    size_t            ns_i;
    const skv_tns_t  *ns;
    char              kv_prefix[SKV_NS_NAME_MAX + 16]; /* "/v1/kv/" */
    char              list_path[SKV_NS_NAME_MAX + 16]; /* "/v1/keys" */
    size_t            quorum;         /* the namespace's N/2+1 */
    char              start_ns[SKV_NS_NAME_MAX + 1]; /* resumed: "" = all */
    uint64_t          unplaced;       /* namespaces no router configures */
    skv_counters_t    ns_c[SKV_TOPO_NS_MAX]; /* per namespace */
    int               ns_ran[SKV_TOPO_NS_MAX];
    int               dry_run;
    FILE             *out;            /* dry-run lines, summary */

    skv_stream_t      streams[SKV_TOPO_NODES_MAX];
    skv_enode_t       enodes[SKV_TOPO_NODES_MAX];
    skv_task_t       *tasks;
    size_t            n_tasks, active;
    int               scan_done;

    uint64_t          seq;
    char              last_key[SKV_KEY_ENCODED_MAX + 1]; /* "" = start */
    int               frozen;         /* a key failed: position stops */
    uint64_t          frozen_seq;
    size_t            frozen_ns;
    char              frozen_key[SKV_KEY_ENCODED_MAX + 1];

    double            key_tokens, byte_tokens, refilled;
    skv_counters_t    c;
    skv_failure_t     failures[SKV_FAILURES_KEPT];
    size_t            n_failures;

    double            started, last_tick;
    skv_tick_fn       tick;           /* lease renewal, checkpoint, ... */
    void             *ctx;
    int               aborted;        /* a tick gave up (lease lost) */
};

/* Set up for topo (read) and opts; the run starts in the namespace
 * after_ns after the key `after` (both "" = the start; the namespaces
 * before after_ns are finished); token: storaged's, or NULL.  -1 (said
 * why) on failure. */
int skv_engine_init(skv_engine_t *eng, skv_mode_t mode,
                    const skv_opts_t *opts, skv_topo_t *topo,
                    const char *after_ns, const char *after,
                    const char *token);
void skv_engine_free(skv_engine_t *eng);

/* Run until every listing is merged and every task finished (or aborted).
 * Returns 0, or -1 on a local error (out of memory, libcurl). */
int skv_engine_run(skv_engine_t *eng);

/* Where a rerun may start: every key up to it, in the namespace *ns, is
 * finished, and so is every namespace before *ns ("" and "" = start). */
const char *skv_engine_position(const skv_engine_t *eng, const char **ns);

/* Listing lines of node i merged, the checkpoint's included. */
uint64_t skv_engine_scanned(const skv_engine_t *eng, size_t i);

/* Record a failed key (seq orders it for the position). */
void skv_engine_fail(skv_engine_t *eng, uint64_t seq, const char *prev,
                     const char *key_enc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A request to node i failed (network) or worked: node health. */
void skv_engine_node_result(skv_engine_t *eng, size_t node, int ok);

/* Throttle: may a write of bytes go now?  Takes the bytes if so. */
int skv_engine_take_bytes(skv_engine_t *eng, size_t bytes);

/* Plan one merged key (skv_plan.c): start a task, print the dry run,
 * count, or fail it. */
int skv_plan_key(skv_engine_t *eng, const unsigned char *key, size_t len,
                 const char *enc, const skv_view_t *view);

/* A dry run's line: "<verb> KEY VERSION [tombstone] -> a,b" (or JSON). */
void skv_plan_print(skv_engine_t *eng, const char *verb, const char *enc,
                    const skv_version_t *v, int tombstone,
                    const size_t *nodes, size_t n);

/* Tasks (skv_task.c). */
skv_task_t *skv_task_slot(skv_engine_t *eng);
size_t skv_task_size(void);
/* Advance a task; returns 1 when it has finished (and is free again). */
int skv_task_step(skv_engine_t *eng, skv_task_t *t, double now);
uint64_t skv_task_seq(const skv_task_t *t);
const char *skv_task_prev(const skv_task_t *t);
int skv_task_used(const skv_task_t *t);
void skv_task_release(skv_task_t *t);

/* What a task is given by the plan. */
typedef struct {
    size_t        node;
    skv_version_t version;     /* cleanup: the copy to remove */
    int           was_owner;   /* rebalance: an old owner already */
} skv_target_t;

int skv_task_begin(skv_engine_t *eng, skv_task_t *t, const char *enc,
                   const unsigned char *key, size_t key_len,
                   const skv_version_t *newest, int tombstone,
                   const size_t *src, size_t n_src,
                   const skv_target_t *tgt, size_t n_tgt,
                   const size_t *owners, size_t n_owners);

#endif
