/*
 * skv_placement.c - weighted rendezvous hashing over named nodes.
 *
 * See skv_placement.h for the scoring formula.  Changing anything here
 * moves keys between nodes in every deployed cluster: the test vectors in
 * tests/unit/test_placement.c must keep passing.
 */
#include <math.h>
#include <string.h>

#include <xxhash.h>

#include "skv_placement.h"

void
skv_node_init(skv_node_t *node, const char *name, size_t name_len,
              uint32_t weight)
{
    node->name = name;
    node->name_len = name_len;
    node->weight = weight;
    node->seed = XXH3_64bits(name, name_len);
}

double
skv_node_score(const skv_node_t *node, const void *key, size_t key_len)
{
    uint64_t h = XXH3_64bits_withSeed(key, key_len, node->seed);
    /* 53 high bits give a double in (0, 1) exactly; +0.5 keeps it off 0. */
    double   u = ((double) (h >> 11) + 0.5) * (1.0 / 9007199254740992.0);

    return (double) node->weight / -log(u);
}

/* Does node a (score sa) rank above node b (score sb)? */
static int
ranks_above(const skv_node_t *a, double sa, const skv_node_t *b, double sb)
{
    size_t n;
    int    c;

    if (sa != sb) {
        return sa > sb;
    }
    n = a->name_len < b->name_len ? a->name_len : b->name_len;
    c = memcmp(a->name, b->name, n);
    if (c != 0) {
        return c < 0;
    }
    return a->name_len < b->name_len;
}

size_t
skv_place(const skv_node_t *nodes, size_t n_nodes, const void *key,
          size_t key_len, size_t *order, size_t want)
{
    /* Insertion into a short sorted list of the best `want` nodes: N is
     * small (replicas), so this beats sorting all scores. */
    double best[SKV_PLACE_MAX];
    size_t count = 0;

    if (want > n_nodes) {
        want = n_nodes;
    }
    if (want > SKV_PLACE_MAX) {
        want = SKV_PLACE_MAX;
    }

    for (size_t i = 0; i < n_nodes; i++) {
        double s = skv_node_score(&nodes[i], key, key_len);
        size_t pos = count;

        while (pos > 0
               && ranks_above(&nodes[i], s, &nodes[order[pos - 1]],
                              best[pos - 1])) {
            pos--;
        }
        if (pos >= want) {
            continue;
        }
        if (count < want) {
            count++;
        }
        for (size_t j = count - 1; j > pos; j--) {
            order[j] = order[j - 1];
            best[j] = best[j - 1];
        }
        order[pos] = i;
        best[pos] = s;
    }
    return count;
}
