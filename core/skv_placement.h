/*
 * skv_placement.h - weighted rendezvous (highest random weight) hashing.
 *
 * Every program that needs to know where a key lives calls skv_place(); the
 * result is a compatibility promise pinned by test vectors in
 * tests/unit/test_placement.c.  A node's identity is its name, never its
 * address, so moving a node to a new address moves no keys.
 *
 * Score of node n for key k (Schindelhauer & Schomaker's weighted HRW):
 *     h     = XXH3_64bits_withSeed(k, XXH3_64bits(name_n))
 *     u     = ((h >> 11) + 0.5) / 2^53            (uniform in (0, 1))
 *     score = weight_n / -ln(u)
 * Replicas are the nodes with the highest scores, best first; equal scores
 * (practically never) are ordered by name bytes.
 */
#ifndef SKV_PLACEMENT_H
#define SKV_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#define SKV_NODE_WEIGHT_MAX 1000000
/* Most replicas skv_place returns for one key. */
#define SKV_PLACE_MAX 64

typedef struct {
    const char *name; /* not copied: must outlive the node */
    size_t      name_len;
    uint32_t    weight; /* 1..SKV_NODE_WEIGHT_MAX */
    uint64_t    seed;   /* XXH3_64bits(name), set by skv_node_init */
} skv_node_t;

void skv_node_init(skv_node_t *node, const char *name, size_t name_len,
                   uint32_t weight);

/* The node's score for a key (exposed for tests and diagnostics). */
double skv_node_score(const skv_node_t *node, const void *key,
                      size_t key_len);

/*
 * Fill order[0..] with the indexes (into nodes) of the
 * min(want, n_nodes, SKV_PLACE_MAX)
 * highest-scoring nodes for key, best first.  Returns how many were written.
 * O(n_nodes * want); no allocation.
 */
size_t skv_place(const skv_node_t *nodes, size_t n_nodes, const void *key,
                 size_t key_len, size_t *order, size_t want);

#endif
