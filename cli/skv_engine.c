/*
 * skv_engine.c - the merge-and-dispatch loop shared by rebalance, cleanup
 * and repair (see skv_engine.h).
 */
#include "skv_engine.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* How long a request may take, and a listing go without data, unless
 * --timeout says otherwise. */
#define REQUEST_TIMEOUT_MS 5000
/* Keys merged per turn of the loop, so that answers are not kept waiting. */
#define MERGE_BATCH 2000

int
skv_engine_init(skv_engine_t *eng, skv_mode_t mode, const skv_opts_t *opts,
                skv_topo_t *topo, const char *after_ns, const char *after,
                const char *token)
{
    static const char *names[] = {"rebalance", "cleanup", "repair"};
    long timeout_ms = opts->timeout > 0 ? opts->timeout * 1000
                                        : REQUEST_TIMEOUT_MS;

    memset(eng, 0, sizeof(*eng));
    eng->mode = mode;
    eng->name = names[mode];
    eng->opts = opts;
    eng->topo = topo;
    eng->dry_run = opts->maint.dry_run;
    eng->out = stdout;
    snprintf(eng->start_ns, sizeof(eng->start_ns), "%s",
             after_ns ? after_ns : "");
    snprintf(eng->epoch_hdr, sizeof(eng->epoch_hdr), "X-Simplekv-Epoch: %llu",
             (unsigned long long) topo->epoch);
    snprintf(eng->last_key, sizeof(eng->last_key), "%s", after ? after : "");
    eng->n_tasks = (size_t) opts->maint.concurrency;
    eng->tasks = calloc(eng->n_tasks, skv_task_size());
    eng->started = eng->refilled = skv_now();
    eng->key_tokens = opts->maint.rate;
    eng->byte_tokens = opts->maint.bytes_per_sec;
    if (eng->tasks == NULL
        || skv_loop_init(&eng->loop, token, timeout_ms,
                         opts->connect_timeout * 1000) != 0) {
        fprintf(stderr, "skv: out of memory\n");
        return -1;
    }
    return 0;
}

void
skv_engine_free(skv_engine_t *eng)
{
    for (size_t i = 0; i < eng->topo->n; i++) {
        skv_stream_free(&eng->streams[i]);
    }
    for (size_t i = 0; eng->tasks != NULL && i < eng->n_tasks; i++) {
        skv_task_release((skv_task_t *) ((char *) eng->tasks
                                         + i * skv_task_size()));
    }
    free(eng->tasks);
    eng->tasks = NULL;
    /* What is left in flight (lease renewals) ends within its timeout:
     * let it, so that nothing is freed under libcurl. */
    for (double end = skv_now() + 30; eng->loop.active > 0
                                      && skv_now() < end;) {
        skv_loop_wait(&eng->loop, 100);
    }
    skv_loop_free(&eng->loop);
}

static skv_task_t *
task_at(const skv_engine_t *eng, size_t i)
{
    return (skv_task_t *) ((char *) eng->tasks + i * skv_task_size());
}

skv_task_t *
skv_task_slot(skv_engine_t *eng)
{
    for (size_t i = 0; i < eng->n_tasks; i++) {
        if (!skv_task_used(task_at(eng, i))) {
            return task_at(eng, i);
        }
    }
    return NULL;
}

void
skv_engine_fail(skv_engine_t *eng, uint64_t seq, const char *prev,
                const char *key_enc, const char *fmt, ...)
{
    va_list ap;

    eng->c.failures++;
    if (!eng->frozen || seq < eng->frozen_seq) {
        eng->frozen = 1;
        eng->frozen_seq = seq;
        eng->frozen_ns = eng->ns_i;
        snprintf(eng->frozen_key, sizeof(eng->frozen_key), "%s", prev);
    }
    if (eng->n_failures < SKV_FAILURES_KEPT) {
        skv_failure_t *f = &eng->failures[eng->n_failures++];

        snprintf(f->ns, sizeof(f->ns), "%s",
                 eng->ns != NULL ? eng->ns->name : "");
        snprintf(f->key, sizeof(f->key), "%s", key_enc);
        va_start(ap, fmt);
        vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
        va_end(ap);
    }
}

void
skv_engine_node_result(skv_engine_t *eng, size_t node, int ok)
{
    skv_enode_t *en = &eng->enodes[node];

    if (ok) {
        en->streak = 0;
        return;
    }
    if (++en->streak >= SKV_ATTEMPTS && !en->down) {
        en->down = 1;
        fprintf(stderr, "skv: node %s is not answering; its keys fail from "
                        "now on (run %s again once it is back)\n",
                eng->topo->nodes[node].name, eng->name);
    }
}

static void
refill(skv_engine_t *eng, double now)
{
    const skv_maint_opts_t *m = &eng->opts->maint;
    double                  dt = now - eng->refilled;

    eng->refilled = now;
    if (m->rate > 0) {
        eng->key_tokens += dt * m->rate;
        if (eng->key_tokens > m->rate) {
            eng->key_tokens = m->rate; /* a burst of one second at most */
        }
    }
    if (m->bytes_per_sec > 0) {
        eng->byte_tokens += dt * m->bytes_per_sec;
        if (eng->byte_tokens > m->bytes_per_sec) {
            eng->byte_tokens = m->bytes_per_sec;
        }
    }
}

int
skv_engine_take_bytes(skv_engine_t *eng, size_t bytes)
{
    if (eng->opts->maint.bytes_per_sec <= 0) {
        return 1;
    }
    if (eng->byte_tokens <= 0) {
        return 0;
    }
    /* May go below zero: a value larger than a second's worth still goes,
     * and the next ones wait until the average is right again. */
    eng->byte_tokens -= (double) bytes;
    return 1;
}

uint64_t
skv_engine_scanned(const skv_engine_t *eng, size_t i)
{
    return eng->enodes[i].scanned_before + eng->enodes[i].scanned_ns
           + eng->streams[i].scanned;
}

const char *
skv_engine_position(const skv_engine_t *eng, const char **ns)
{
    const char *pos = eng->last_key;
    uint64_t    best = UINT64_MAX;
    size_t      ns_i = eng->ns_i;

    for (size_t i = 0; i < eng->n_tasks; i++) {
        const skv_task_t *t = task_at(eng, i);

        if (skv_task_used(t) && skv_task_seq(t) < best) {
            best = skv_task_seq(t);
            pos = skv_task_prev(t);
        }
    }
    if (eng->frozen && eng->frozen_seq < best) {
        pos = eng->frozen_key;
        ns_i = eng->frozen_ns;
    }
    if (ns_i >= eng->topo->n_ns) {
        *ns = ""; /* every namespace went through: from the start */
        return "";
    }
    *ns = eng->topo->ns[ns_i].name;
    return pos;
}

static int
can_dispatch(const skv_engine_t *eng)
{
    if (eng->active >= eng->n_tasks) {
        return 0;
    }
    return eng->dry_run || eng->opts->maint.rate <= 0
           || eng->key_tokens >= 1.0;
}

/* Merge keys while tasks may start; returns how many were merged. */
static int
merge_some(skv_engine_t *eng)
{
    unsigned char key[SKV_KEY_MAX];
    char          enc[SKV_KEY_ENCODED_MAX + 1];
    skv_view_t    view[SKV_TOPO_NODES_MAX];
    size_t        len, elen;
    int           n = 0, r;

    while (!eng->scan_done && n < MERGE_BATCH && can_dispatch(eng)) {
        r = skv_merge_next(eng->streams, eng->topo->n, key, &len, view);
        if (r == 0) {
            break;
        }
        if (r < 0) {
            eng->scan_done = 1;
            break;
        }
        n++;
        eng->c.keys++;
        elen = skv_key_encode(key, len, enc, SKV_KEY_ENCODED_MAX);
        enc[elen] = '\0';
        if (skv_plan_key(eng, key, len, enc, view) != 0) {
            return -1;
        }
        memcpy(eng->last_key, enc, elen + 1);
    }
    return n;
}

static void
tick_streams(skv_engine_t *eng, double now)
{
    for (size_t i = 0; i < eng->topo->n; i++) {
        skv_stream_t *s = &eng->streams[i];

        skv_stream_tick(s, now);
        if (s->failed && !eng->enodes[i].down) {
            eng->enodes[i].down = 1;
            fprintf(stderr, "skv: node %s: its key listing failed (%s); "
                            "its copies are unknown from here on\n",
                    eng->topo->nodes[i].name, s->error);
        }
    }
}

static int
step_tasks(skv_engine_t *eng, double now)
{
    int progressed = 0;

    for (size_t i = 0; i < eng->n_tasks; i++) {
        skv_task_t *t = task_at(eng, i);

        if (skv_task_used(t) && skv_task_step(eng, t, now)) {
            eng->active--;
            progressed = 1;
        }
    }
    return progressed;
}

static int
start_streams(skv_engine_t *eng)
{
    for (size_t i = 0; i < eng->topo->n; i++) {
        skv_stream_free(&eng->streams[i]);
        if (skv_stream_start(&eng->streams[i], &eng->loop,
                             eng->topo->nodes[i].base, eng->list_path,
                             eng->last_key,
                             (double) eng->loop.timeout_ms / 1000.0) != 0) {
            fprintf(stderr, "skv: out of memory\n");
            return -1;
        }
    }
    return 0;
}

/* Namespaces the nodes hold and no router configures: said once. */
static void
report_unplaced(skv_engine_t *eng)
{
    for (size_t i = 0; i < eng->topo->n_ns; i++) {
        const skv_tns_t *ns = &eng->topo->ns[i];

        if (ns->configured) {
            continue;
        }
        eng->unplaced++;
        fprintf(stderr, "skv: %s: namespace %s: %llu keys and tombstones "
                        "on the nodes, but no router's configuration has "
                        "this namespace: its keys cannot be placed and are "
                        "left where they are (configure it on the routers, "
                        "or wipe it)\n", eng->name, ns->name,
                (unsigned long long) ns->held);
    }
}

/* One namespace, from eng->last_key: until its listings are merged and
 * its tasks finished (or the run is aborted).  0, or -1 local error. */
static int
run_ns(skv_engine_t *eng)
{
    int    merged;
    double now;

    eng->scan_done = 0;
    if (start_streams(eng) != 0) {
        return -1;
    }
    while (!eng->aborted) {
        now = skv_now();
        refill(eng, now);
        tick_streams(eng, now);
        step_tasks(eng, now);
        merged = merge_some(eng);
        if (merged < 0) {
            return -1;
        }
        if (eng->scan_done && eng->active == 0) {
            break;
        }
        if (eng->tick != NULL && now - eng->last_tick >= 0.1) {
            eng->last_tick = now;
            eng->tick(eng, now);
        }
        if (skv_loop_wait(&eng->loop, merged > 0 ? 0 : 20) != 0) {
            fprintf(stderr, "skv: libcurl failed\n");
            return -1;
        }
    }
    return 0;
}

static void
counters_sub(skv_counters_t *out, const skv_counters_t *a,
             const skv_counters_t *b)
{
    const uint64_t *pa = (const uint64_t *) a, *pb = (const uint64_t *) b;
    uint64_t       *po = (uint64_t *) out;

    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
        po[i] = pa[i] - pb[i];
    }
}

int
skv_engine_run(skv_engine_t *eng)
{
    int rc = 0;

    report_unplaced(eng);
    for (eng->ns_i = 0; eng->ns_i < eng->topo->n_ns; eng->ns_i++) {
        skv_tns_t      *ns = &eng->topo->ns[eng->ns_i];
        skv_counters_t  before = eng->c;
        int             cmp = strcmp(ns->name, eng->start_ns);

        if (!ns->configured || cmp < 0) {
            continue; /* unplaceable, or finished by an earlier run */
        }
        if (cmp > 0) {
            eng->last_key[0] = '\0';
        }
        eng->ns = ns;
        eng->quorum = ns->replicas / 2 + 1;
        skv_ns_paths(ns->name, eng->kv_prefix, sizeof(eng->kv_prefix),
                     eng->list_path, sizeof(eng->list_path));
        rc = run_ns(eng);
        counters_sub(&eng->ns_c[eng->ns_i], &eng->c, &before);
        eng->ns_ran[eng->ns_i] = 1;
        if (rc != 0 || eng->aborted) {
            break;
        }
        for (size_t i = 0; i < eng->topo->n; i++) {
            eng->enodes[i].scanned_ns += eng->streams[i].scanned;
            skv_stream_free(&eng->streams[i]);
        }
    }
    eng->scan_done = rc == 0 && !eng->aborted;
    if (eng->tick != NULL) {
        eng->tick(eng, skv_now());
    }
    return rc;
}
