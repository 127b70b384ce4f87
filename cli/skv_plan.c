/*
 * skv_plan.c - what each merged key needs, by mode (see skv_engine.h):
 *
 * N is the key's namespace's (eng->ns), and so is the quorum N/2+1.
 *
 * rebalance: the newest version among the old owners (top N over the
 *   previous weights; at least N/2+1 of their listings must be known, else
 *   the key fails) goes to every new owner (top N over the weights) whose
 *   listing does not show it or something newer (or is unknown).
 * repair: the same within one configuration: the newest version among
 *   the owners goes to every owner that lacks it; differences are counted
 *   (missing, stale, tombstone-vs-value, copies on non-owners).
 * cleanup: every copy on a node that is not among the key's owners is a
 *   candidate for removal; the task confirms with the owners first.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "skv_engine.h"

static int
is_in(size_t node, const size_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (set[i] == node) {
            return 1;
        }
    }
    return 0;
}

void
skv_plan_print(skv_engine_t *eng, const char *verb, const char *enc,
               const skv_version_t *v, int tombstone, const size_t *nodes,
               size_t n)
{
    char vt[SKV_VERSION_TEXT_LEN + 1];

    skv_version_format(v, vt);
    eng->c.planned += n;
    if (eng->opts->json) {
        json_t *to = json_array(), *line;
        char   *text;

        for (size_t i = 0; i < n; i++) {
            json_array_append_new(to,
                json_string(eng->topo->nodes[nodes[i]].name));
        }
        line = json_pack("{s:s,s:s,s:s,s:s,s:b,s:o}", "dry_run", verb,
                         "namespace", eng->ns->name, "key", enc, "version",
                         vt, "tombstone", tombstone,
                         strcmp(verb, "remove") == 0 ? "from" : "to", to);
        text = json_dumps(line, JSON_COMPACT);
        if (text != NULL) {
            fprintf(eng->out, "%s\n", text);
        }
        free(text);
        json_decref(line);
        return;
    }
    /* NAMESPACE/KEY: an encoded key has no "/" of its own */
    fprintf(eng->out, "%s %s/%s %s%s %s ", verb, eng->ns->name, enc, vt,
            tombstone ? " tombstone" : "",
            strcmp(verb, "remove") == 0 ? "from" : "->");
    for (size_t i = 0; i < n; i++) {
        fprintf(eng->out, "%s%s", i ? "," : "", eng->topo->nodes[nodes[i]].name);
    }
    fputc('\n', eng->out);
}

/* Newest present version among set; returns how many were known. */
static size_t
newest_of(const skv_view_t *view, const size_t *set, size_t n,
          skv_version_t *newest, int *tombstone)
{
    size_t known = 0;

    memset(newest, 0, sizeof(*newest));
    *tombstone = 0;
    for (size_t i = 0; i < n; i++) {
        const skv_view_t *v = &view[set[i]];

        if (v->state == SKV_COPY_UNKNOWN) {
            continue;
        }
        known++;
        if (v->state == SKV_COPY_PRESENT
            && skv_version_cmp(&v->version, newest) > 0) {
            *newest = v->version;
            *tombstone = v->tombstone;
        }
    }
    return known;
}

/* Nodes listing exactly the newest version: the given set first. */
static size_t
sources(const skv_engine_t *eng, const skv_view_t *view, const size_t *set,
        size_t n, const skv_version_t *newest, size_t *src)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (view[set[i]].state == SKV_COPY_PRESENT
            && skv_version_cmp(&view[set[i]].version, newest) == 0) {
            src[k++] = set[i];
        }
    }
    for (size_t i = 0; i < eng->topo->n; i++) {
        if (!is_in(i, set, n) && view[i].state == SKV_COPY_PRESENT
            && skv_version_cmp(&view[i].version, newest) == 0) {
            src[k++] = i;
        }
    }
    return k;
}

/* Repair's accounting of how the owners differ from the newest. */
static void
count_differences(skv_engine_t *eng, const skv_view_t *view,
                  const size_t *own, size_t n_own,
                  const skv_version_t *newest, int tombstone)
{
    int differ = 0;

    for (size_t i = 0; i < n_own; i++) {
        const skv_view_t *v = &view[own[i]];

        if (v->state == SKV_COPY_ABSENT) {
            eng->c.missing++;
            differ = 1;
        } else if (v->state == SKV_COPY_PRESENT
                   && skv_version_cmp(&v->version, newest) < 0) {
            if (v->tombstone != tombstone) {
                eng->c.kind++;
            } else {
                eng->c.stale++;
            }
            differ = 1;
        }
    }
    for (size_t i = 0; i < eng->topo->n; i++) {
        if (!is_in(i, own, n_own) && view[i].state == SKV_COPY_PRESENT) {
            eng->c.extra++;
        }
    }
    eng->c.differ_keys += (uint64_t) differ;
}

/* Rebalance and repair: copy the newest version to the owners lacking it. */
static int
plan_copy(skv_engine_t *eng, const unsigned char *key, size_t len,
          const char *enc, const skv_view_t *view)
{
    int           repair = eng->mode == SKV_MODE_REPAIR;
    size_t        from[SKV_PLACE_MAX], to[SKV_PLACE_MAX];
    size_t        src[SKV_TOPO_NODES_MAX], names[SKV_PLACE_MAX];
    size_t        n_from, n_to, known, need, n_tgt = 0;
    skv_target_t  tgt[SKV_PLACE_MAX];
    skv_version_t newest;
    int           tomb;
    skv_task_t   *t;

    n_from = skv_topo_owners(eng->topo, !repair, eng->ns->replicas, key,
                             len, from);
    n_to = skv_topo_owners(eng->topo, 0, eng->ns->replicas, key, len, to);
    known = newest_of(view, from, n_from, &newest, &tomb);
    need = n_from / 2 + 1;
    if (known < need) {
        skv_engine_fail(eng, ++eng->seq, eng->last_key, enc,
                        "only %zu of %zu %sowners could be listed (%zu "
                        "needed)", known, n_from, repair ? "" : "old ",
                        need);
        return 0;
    }
    if (skv_version_is_zero(&newest)) {
        return 0;
    }
    if (repair) {
        count_differences(eng, view, to, n_to, &newest, tomb);
    }
    for (size_t i = 0; i < n_to; i++) {
        const skv_view_t *v = &view[to[i]];

        if (v->state == SKV_COPY_PRESENT
            && skv_version_cmp(&v->version, &newest) >= 0) {
            continue;
        }
        tgt[n_tgt].node = to[i];
        tgt[n_tgt].was_owner = is_in(to[i], from, n_from);
        memset(&tgt[n_tgt].version, 0, sizeof(tgt[n_tgt].version));
        names[n_tgt++] = to[i];
    }
    if (n_tgt == 0) {
        return 0;
    }
    if (eng->dry_run) {
        skv_plan_print(eng, repair ? "repair" : "copy", enc, &newest, tomb,
                       names, n_tgt);
        return 0;
    }
    t = skv_task_slot(eng);
    return skv_task_begin(eng, t, enc, key, len, &newest, tomb, src,
                          sources(eng, view, from, n_from, &newest, src),
                          tgt, n_tgt, NULL, 0);
}

/* Cleanup: copies on nodes that do not own the key. */
static int
plan_cleanup(skv_engine_t *eng, const unsigned char *key, size_t len,
             const char *enc, const skv_view_t *view)
{
    size_t        own[SKV_PLACE_MAX], n_own, n_tgt = 0;
    skv_target_t  tgt[SKV_TOPO_NODES_MAX];
    skv_version_t zero;
    skv_task_t   *t;

    n_own = skv_topo_owners(eng->topo, 0, eng->ns->replicas, key, len,
                            own);
    for (size_t i = 0; i < eng->topo->n; i++) {
        if (view[i].state != SKV_COPY_PRESENT || is_in(i, own, n_own)) {
            continue;
        }
        eng->enodes[i].not_owned++;
        tgt[n_tgt].node = i;
        tgt[n_tgt].version = view[i].version;
        tgt[n_tgt++].was_owner = 0;
    }
    if (n_tgt == 0) {
        return 0;
    }
    memset(&zero, 0, sizeof(zero));
    t = skv_task_slot(eng);
    return skv_task_begin(eng, t, enc, key, len, &zero, 0, NULL, 0, tgt,
                          n_tgt, own, n_own);
}

int
skv_plan_key(skv_engine_t *eng, const unsigned char *key, size_t len,
             const char *enc, const skv_view_t *view)
{
    if (eng->mode == SKV_MODE_CLEANUP) {
        return plan_cleanup(eng, key, len, enc, view);
    }
    return plan_copy(eng, key, len, enc, view);
}
