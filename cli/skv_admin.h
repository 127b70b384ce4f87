/*
 * skv_admin.h - storaged's administrative endpoints as skv uses them
 * (docs/membership.md): the lease (one rebalance, cleanup or repair at a
 * time), the epoch window (the fence), the repair watermark, and
 * /v1/stats for the number of keys a node holds.
 *
 * Each function talks to every node of the topology in turn and says on
 * stderr what went wrong.  A node that does not answer at all is marked
 * in `down` (the caller carries on without it: its keys then fail, they
 * are never taken for absent); a node that answers "no" stops the command.
 */
#ifndef SKV_ADMIN_H
#define SKV_ADMIN_H

#include <stdint.h>

#include "skv_async.h"
#include "skv_topo.h"

#define SKV_LEASE_TTL_MS 20000

/* Take (or renew) the lease as holder on every node, waiting up to a
 * lease's lifetime for one left by a killed run.  SKV_EXIT_OK or
 * SKV_EXIT_SERVER (after releasing what was taken). */
int skv_lease_take(skv_loop_t *loop, const skv_topo_t *topo,
                   const char *holder, int *down);

/* Renew without waiting (from the engine's loop); *lost is set when a
 * node answers that someone else holds it. */
void skv_lease_renew(skv_loop_t *loop, const skv_topo_t *topo,
                     const char *holder, const int *down, int *lost);

void skv_lease_release(skv_loop_t *loop, const skv_topo_t *topo,
                       const char *holder, const int *down);

/*
 * Raise every node's window so that it is [lo, max(hi, its max)]: the
 * window only moves forward, so a node already past lo stops the command.
 * lo == hi fences every other epoch out.  Nodes in down are skipped; one
 * that does not answer is added to them, or, when strict, makes the
 * result SKV_EXIT_INCOMPLETE (the others are still moved).
 */
int skv_epochs_raise(skv_loop_t *loop, const skv_topo_t *topo, uint64_t lo,
                     uint64_t hi, int *down, int strict);

/* `skv epochs`: print every node's window; allow >= 0 raises each max to
 * at least allow (a node without a window accepts every epoch already). */
int skv_epochs_show(skv_loop_t *loop, const skv_topo_t *topo,
                    long long allow, int json);

/* Record the repair watermark on every node (a node that already has a
 * later one keeps it). */
int skv_watermark_put(skv_loop_t *loop, const skv_topo_t *topo,
                      const char *version);

/* keys + tombstones of every namespace (/v1/namespaces, or /v1/stats
 * from a storaged without namespaces); -1 when it cannot be read. */
int skv_node_count(skv_loop_t *loop, const char *base, uint64_t *count);

/* One namespace a node holds: its name and keys + tombstones. */
typedef struct {
    char     name[SKV_NS_NAME_MAX + 1];
    uint64_t count;
} skv_nscount_t;

/*
 * GET /v1/namespaces of one node into out (at most max, *n of them):
 * 1 listed; 0 a storaged from before namespaces (404: it holds "default"
 * only, counted from /v1/stats into out[0] when it answers); -1 an error
 * (why says which); -2 no answer.
 */
int skv_node_namespaces(skv_loop_t *loop, const char *base,
                        skv_nscount_t *out, size_t max, size_t *n,
                        char *why, size_t cap);

#endif
