/*
 * skv_quorum_sets.h - quorum decisions over one or two sets of replicas.
 *
 * Outside a membership transition a key has one set of N replicas.  During
 * a transition (docs/membership.md) it has two: its owners under the
 * previous weights and under the new weights; the router asks their union,
 * and every quorum must be met in each set (a node in both counts for
 * both).  These functions apply the single-set rules of skv_quorum.h to
 * each set and combine the answers.
 */
#ifndef SKV_QUORUM_SETS_H
#define SKV_QUORUM_SETS_H

#include "skv_quorum.h"

#define SKV_SET_NEW   0x01u   /* owners under the weights */
#define SKV_SET_OLD   0x02u   /* owners under the previous weights */

typedef struct {
    const unsigned char *member;  /* per reply: SKV_SET_* bits */
    bool                 transition; /* two sets; else one set of all */
} skv_sets_t;

/* Each set's action combined: any failure fails, any wait waits, and the
 * rest must agree (a write complete in one set and not applied in the
 * other is neither). */
skv_action_t skv_combine(const skv_action_t *each, size_t nsets);

skv_action_t skv_decide_write_sets(const skv_reply_t *replies, size_t n,
                                   const skv_sets_t *sets,
                                   const skv_quorum_t *q,
                                   uint64_t own_origin, skv_tally_t *all);

skv_action_t skv_decide_query_sets(const skv_reply_t *replies, size_t n,
                                   const skv_sets_t *sets,
                                   const skv_quorum_t *q, skv_tally_t *all);

/* A read: R answers in each set, the newest over all of them (*newest,
 * an index into replies, -1 if none); answered when W replicas of each
 * set hold it and every answer agrees, else repaired. */
skv_action_t skv_decide_read_sets(const skv_reply_t *replies, size_t n,
                                  const skv_sets_t *sets,
                                  const skv_quorum_t *q, skv_tally_t *all,
                                  long *newest);

/* A repair: prior[s] replicas of set s were known to hold the value. */
skv_action_t skv_decide_repair_sets(const skv_reply_t *replies, size_t n,
                                    const skv_sets_t *sets,
                                    const size_t *prior,
                                    const skv_quorum_t *q,
                                    skv_tally_t *all);

#endif
