/*
 * skv_task.c - one key's work (see skv_engine.h), as a small state machine
 * driven by the engine's loop:
 *
 *   rebalance, repair:  FETCH the newest value from a node that listed it
 *                       (not for a tombstone), then WRITE it with its own
 *                       version to every target: PUT (201/200) or DELETE
 *                       (204/200); a 409 with a newer version is success.
 *   cleanup:            CONFIRM with HEAD on every owner that at least
 *                       N/2+1 of them hold the copy's version or newer,
 *                       then WRITE: DELETE ?remove&if-version=V.
 *
 * Every request is tried SKV_ATTEMPTS times (with a short backoff) before
 * the key counts as failed; nothing is ever concluded from a request that
 * got no answer.
 */
#include <stdlib.h>
#include <string.h>

#include "skv_engine.h"

#define VALUE_MAX (512u * 1024 * 1024)

enum { PH_FREE, PH_FETCH, PH_CONFIRM, PH_WRITE };
enum { ST_PENDING, ST_INFLIGHT, ST_DONE, ST_FAILED };
enum { K_FETCH, K_HEAD, K_WRITE };

typedef struct {
    int           state, attempts, has;
    double        retry_at;
    skv_call_t   *call;
    skv_version_t version;   /* HEAD: the owner's version */
} slot_t;

struct skv_task {
    skv_engine_t *eng;
    int           phase;
    uint64_t      seq;
    char          prev[SKV_KEY_ENCODED_MAX + 1];
    char          enc[SKV_KEY_ENCODED_MAX + 1];
    skv_version_t newest;
    int           tombstone;
    size_t        src[SKV_TOPO_NODES_MAX], n_src, src_i;
    slot_t        fetch;
    skv_target_t  tgt[SKV_TOPO_NODES_MAX];
    slot_t        ts[SKV_TOPO_NODES_MAX];
    size_t        n_tgt;
    size_t        own[SKV_PLACE_MAX], n_own;
    slot_t        os[SKV_PLACE_MAX];
    char         *value;
    size_t        value_len;
    char          ctype[256];
    char          reason[200];
};

size_t
skv_task_size(void)
{
    return sizeof(skv_task_t);
}

uint64_t
skv_task_seq(const skv_task_t *t)
{
    return t->seq;
}

const char *
skv_task_prev(const skv_task_t *t)
{
    return t->prev;
}

int
skv_task_used(const skv_task_t *t)
{
    return t->phase != PH_FREE;
}

static void
slot_reset(slot_t *s)
{
    skv_call_free(s->call);
    memset(s, 0, sizeof(*s));
}

void
skv_task_release(skv_task_t *t)
{
    slot_reset(&t->fetch);
    for (size_t i = 0; i < SKV_TOPO_NODES_MAX; i++) {
        slot_reset(&t->ts[i]);
    }
    for (size_t i = 0; i < SKV_PLACE_MAX; i++) {
        slot_reset(&t->os[i]);
    }
    free(t->value);
    t->value = NULL;
    t->phase = PH_FREE;
}

static void
set_reason(skv_task_t *t, const char *node, const char *what)
{
    if (t->reason[0] == '\0') {
        snprintf(t->reason, sizeof(t->reason), "node %s: %s", node, what);
    }
}

/* A failed attempt of slot s on node: retry later, or give up. */
static void
attempt_failed(skv_task_t *t, slot_t *s, size_t node, skv_call_t *c)
{
    char why[160];
    int  network = c->rc != CURLE_OK || c->status == 0;

    skv_engine_node_result(t->eng, node, !network);
    s->attempts++;
    if (s->attempts >= SKV_ATTEMPTS) {
        skv_call_describe(c, why, sizeof(why));
        set_reason(t, t->eng->topo->nodes[node].name, why);
        s->state = ST_FAILED;
        return;
    }
    t->eng->c.retries++;
    s->state = ST_PENDING;
    s->retry_at = skv_now() + 0.2 * (double) (1 << (s->attempts - 1));
}

static int
answer_version(const skv_call_t *c, skv_version_t *v)
{
    return c->version[0] != '\0'
           && skv_version_parse(c->version, strlen(c->version), v) == SKV_OK;
}

static void
fetch_done(skv_task_t *t, skv_call_t *c)
{
    size_t        node = t->src[t->src_i];
    skv_version_t v;
    int           got = answer_version(c, &v)
                        && skv_version_cmp(&v, &t->newest) >= 0;

    if (c->rc == CURLE_OK && c->status == 200 && got) {
        skv_engine_node_result(t->eng, node, 1);
        t->newest = v;
        t->tombstone = 0;
        t->value = c->body;
        t->value_len = c->body_len;
        c->body = NULL;
        snprintf(t->ctype, sizeof(t->ctype), "%s",
                 c->ctype[0] ? c->ctype : "application/octet-stream");
        t->phase = PH_WRITE;
    } else if (c->rc == CURLE_OK && c->status == 404 && c->tombstone && got) {
        t->newest = v; /* deleted since it was listed */
        t->tombstone = 1;
        t->phase = PH_WRITE;
    } else if (c->rc == CURLE_OK && (c->status == 200 || c->status == 404)) {
        /* it no longer holds that version: try the next holder */
        set_reason(t, t->eng->topo->nodes[node].name,
                   "no longer holds the listed version");
        t->src_i++;
        t->fetch.attempts = 0;
        t->fetch.state = ST_PENDING;
    } else {
        attempt_failed(t, &t->fetch, node, c);
        if (t->fetch.state == ST_FAILED) {
            t->src_i++;
            t->fetch.attempts = 0;
            t->fetch.state = ST_PENDING;
        }
    }
}

static void
head_done(skv_task_t *t, size_t i, skv_call_t *c)
{
    slot_t *s = &t->os[i];

    if (c->rc == CURLE_OK && (c->status == 200 || c->status == 404)) {
        skv_engine_node_result(t->eng, t->own[i], 1);
        s->has = answer_version(c, &s->version);
        s->state = ST_DONE;
    } else {
        attempt_failed(t, s, t->own[i], c);
    }
}

static void
count_write(skv_task_t *t, size_t i)
{
    skv_counters_t *k = &t->eng->c;

    if (t->eng->mode == SKV_MODE_CLEANUP) {
        k->removed++;
        t->eng->enodes[t->tgt[i].node].removed++;
        return;
    }
    k->copied++;
    k->moved += (uint64_t) !t->tgt[i].was_owner;
    k->tombstones += (uint64_t) t->tombstone;
    k->bytes += t->tombstone ? 0 : t->value_len;
}

static void
write_done(skv_task_t *t, size_t i, skv_call_t *c)
{
    size_t        node = t->tgt[i].node;
    const char   *name = t->eng->topo->nodes[node].name;
    skv_version_t v;
    int           cleanup = t->eng->mode == SKV_MODE_CLEANUP;
    int           newer = c->status == 409 && answer_version(c, &v)
                          && skv_version_cmp(&v, &t->newest) > 0;

    if (c->rc == CURLE_OK
        && (c->status == 200 || c->status == 201 || c->status == 204
            || (cleanup && c->status == 404) || (!cleanup && newer))) {
        skv_engine_node_result(t->eng, node, 1);
        t->ts[i].state = ST_DONE;
        count_write(t, i);
    } else if (c->rc == CURLE_OK && c->status == 409) {
        skv_engine_node_result(t->eng, node, 1);
        set_reason(t, name, cleanup ? "its copy changed since it was "
                                      "listed; left in place"
                                    : "409 without a newer version");
        t->ts[i].state = ST_FAILED;
    } else {
        attempt_failed(t, &t->ts[i], node, c);
    }
}

static void
on_done(skv_call_t *c)
{
    skv_task_t *t = c->ctx;
    int         kind = c->tag >> 16;
    size_t      i = (size_t) (c->tag & 0xffff);

    if (kind == K_FETCH) {
        t->fetch.call = NULL;
        fetch_done(t, c);
    } else if (kind == K_HEAD) {
        t->os[i].call = NULL;
        head_done(t, i, c);
    } else {
        t->ts[i].call = NULL;
        write_done(t, i, c);
    }
    skv_call_free(c);
}

/* Start method on node's <kv prefix><key>[query] (the namespace's
 * /v1/kv/ or /v1/ns/<name>/kv/); a request that cannot be
 * made (out of memory) fails its slot. */
static void
issue(skv_task_t *t, slot_t *s, int kind, size_t i, size_t node,
      const char *method, const char *query)
{
    char        path[SKV_KEY_ENCODED_MAX + 192], vh[64], ct[300];
    skv_call_t *c;
    int         bad;

    snprintf(path, sizeof(path), "%s%s%s", t->eng->kv_prefix, t->enc,
             query);
    c = skv_call_new(&t->eng->loop, method, t->eng->topo->nodes[node].base,
                     path);
    bad = c == NULL || skv_call_header(c, t->eng->epoch_hdr) != 0;
    if (!bad && kind == K_FETCH) {
        c->body_max = VALUE_MAX;
    } else if (!bad && kind == K_WRITE && t->eng->mode != SKV_MODE_CLEANUP) {
        memcpy(vh, "X-Simplekv-Version: ", 20);
        skv_version_format(&t->newest, vh + 20);
        snprintf(ct, sizeof(ct), "Content-Type: %s", t->ctype);
        bad = skv_call_header(c, vh) != 0
              || (!t->tombstone && skv_call_header(c, ct) != 0);
        if (!t->tombstone) {
            skv_call_body(c, t->value, t->value_len);
        }
    }
    if (!bad) {
        c->ctx = t;
        c->tag = kind << 16 | (int) i;
        c->on_done = on_done;
        bad = skv_call_start(c) != 0;
    }
    if (bad) {
        skv_call_free(c);
        set_reason(t, t->eng->topo->nodes[node].name,
                   "cannot make the request (out of memory)");
        s->state = ST_FAILED;
        return;
    }
    s->call = c;
    s->state = ST_INFLIGHT;
}

/* 1 when every slot is done or failed. */
static int
settled(const slot_t *s, size_t n, int *failed)
{
    int all = 1;

    for (size_t i = 0; i < n; i++) {
        all &= s[i].state == ST_DONE || s[i].state == ST_FAILED;
        *failed |= s[i].state == ST_FAILED;
    }
    return all;
}

/* Start the slots that are due; a node that is down fails at once. */
static void
issue_due(skv_task_t *t, slot_t *s, size_t n, int kind, double now)
{
    skv_engine_t *eng = t->eng;
    char          q[64] = "";
    const char   *method = "HEAD";

    for (size_t i = 0; i < n; i++) {
        size_t node = kind == K_HEAD ? t->own[i] : t->tgt[i].node;

        if (s[i].state != ST_PENDING || now < s[i].retry_at) {
            continue;
        }
        if (eng->enodes[node].down) {
            set_reason(t, eng->topo->nodes[node].name, "not answering");
            s[i].state = ST_FAILED;
            continue;
        }
        if (kind == K_WRITE && eng->mode == SKV_MODE_CLEANUP) {
            method = "DELETE";
            memcpy(q, "?remove&if-version=", 19);
            skv_version_format(&t->tgt[i].version, q + 19);
        } else if (kind == K_WRITE) {
            method = t->tombstone ? "DELETE" : "PUT";
            if (!t->tombstone && !skv_engine_take_bytes(eng, t->value_len)) {
                return; /* throttled: try again on the next turn */
            }
        }
        issue(t, &s[i], kind, i, node, method, q);
    }
}

/* Cleanup: which copies enough owners cover; the rest fail. */
static void
confirm(skv_task_t *t)
{
    size_t names[1];

    for (size_t i = 0; i < t->n_tgt; i++) {
        size_t have = 0;

        for (size_t j = 0; j < t->n_own; j++) {
            have += t->os[j].state == ST_DONE && t->os[j].has
                    && skv_version_cmp(&t->os[j].version,
                                       &t->tgt[i].version) >= 0;
        }
        if (have < t->eng->quorum) {
            char why[120];

            snprintf(why, sizeof(why), "only %zu of the owners hold its "
                     "version or newer (%zu needed); left in place", have,
                     t->eng->quorum);
            set_reason(t, t->eng->topo->nodes[t->tgt[i].node].name, why);
            t->ts[i].state = ST_FAILED;
        } else if (t->eng->dry_run) {
            names[0] = t->tgt[i].node;
            skv_plan_print(t->eng, "remove", t->enc, &t->tgt[i].version, 0,
                           names, 1);
            t->ts[i].state = ST_DONE;
        }
    }
    t->phase = PH_WRITE;
}

static int
step_fetch(skv_task_t *t, double now)
{
    if (t->fetch.state == ST_INFLIGHT) {
        return 0;
    }
    if (t->fetch.state == ST_FAILED) {
        return 1;
    }
    while (t->src_i < t->n_src && t->eng->enodes[t->src[t->src_i]].down) {
        t->src_i++;
    }
    if (t->src_i >= t->n_src) {
        set_reason(t, "-", "no node holding the newest version answered");
        return 1;
    }
    if (now < t->fetch.retry_at) {
        return 0;
    }
    issue(t, &t->fetch, K_FETCH, 0, t->src[t->src_i], "GET", "");
    return 0;
}

int
skv_task_step(skv_engine_t *eng, skv_task_t *t, double now)
{
    int failed = 0, owners_failed = 0;

    if (t->phase == PH_FETCH && step_fetch(t, now) == 1) {
        failed = 1;
        goto finish;
    }
    if (t->phase == PH_CONFIRM) {
        issue_due(t, t->os, t->n_own, K_HEAD, now);
        if (!settled(t->os, t->n_own, &owners_failed)) {
            return 0;
        }
        confirm(t); /* an owner that did not answer just does not count */
    }
    if (t->phase != PH_WRITE) {
        return 0;
    }
    issue_due(t, t->ts, t->n_tgt, K_WRITE, now);
    if (!settled(t->ts, t->n_tgt, &failed)) {
        return 0;
    }
finish:
    if (failed) {
        skv_engine_fail(eng, t->seq, t->prev, t->enc, "%s", t->reason);
    }
    skv_task_release(t);
    return 1;
}

int
skv_task_begin(skv_engine_t *eng, skv_task_t *t, const char *enc,
               const unsigned char *key, size_t key_len,
               const skv_version_t *newest, int tombstone,
               const size_t *src, size_t n_src, const skv_target_t *tgt,
               size_t n_tgt, const size_t *owners, size_t n_owners)
{
    (void) key;
    (void) key_len;
    if (t == NULL) {
        return -1;
    }
    memset(t, 0, sizeof(*t));
    t->eng = eng;
    t->seq = ++eng->seq;
    snprintf(t->prev, sizeof(t->prev), "%s", eng->last_key);
    snprintf(t->enc, sizeof(t->enc), "%s", enc);
    t->newest = *newest;
    t->tombstone = tombstone;
    for (size_t i = 0; i < n_src; i++) {
        t->src[t->n_src++] = src[i];
    }
    for (size_t i = 0; i < n_tgt; i++) {
        t->tgt[t->n_tgt++] = tgt[i];
    }
    for (size_t i = 0; i < n_owners; i++) {
        t->own[t->n_own++] = owners[i];
    }
    if (eng->mode == SKV_MODE_CLEANUP) {
        t->phase = PH_CONFIRM;
    } else {
        t->phase = tombstone ? PH_WRITE : PH_FETCH;
    }
    if (eng->opts->maint.rate > 0 && !eng->dry_run) {
        eng->key_tokens -= 1.0;
    }
    eng->active++;
    return 0;
}
