/*
 * test_placement.c - weighted rendezvous placement: pinned test vectors
 * (a compatibility promise: a change here moves keys in deployed clusters),
 * minimal movement when a node is added, and weight proportionality.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "skv_placement.h"

typedef struct {
    const char *key;
    size_t      three[3];    /* nodes a, b, c */
    size_t      four[3];     /* nodes a, b, c, d */
    size_t      weighted[3]; /* node-1 w1, node-2 w2, node-3 w4 */
} vector_t;

static const vector_t vectors[] = {
    {"exampleKey", {0, 2, 1}, {0, 2, 3}, {1, 2, 0}},
    {"hello", {0, 2, 1}, {0, 2, 3}, {1, 2, 0}},
    {"user/42", {2, 0, 1}, {3, 2, 0}, {2, 1, 0}},
    {"a", {2, 1, 0}, {3, 2, 1}, {1, 2, 0}},
    {"photos/2026/11/25.jpg", {2, 0, 1}, {2, 0, 1}, {1, 2, 0}},
    {"\xe2\x98\x83", {1, 0, 2}, {1, 0, 2}, {2, 0, 1}},
    {"x y z", {1, 2, 0}, {3, 1, 2}, {2, 1, 0}},
    {"0", {2, 1, 0}, {3, 2, 1}, {0, 2, 1}},
};

static skv_node_t abcd[4];
static skv_node_t weighted[3];

static int
setup(void **state)
{
    (void) state;
    skv_node_init(&abcd[0], "a", 1, 1);
    skv_node_init(&abcd[1], "b", 1, 1);
    skv_node_init(&abcd[2], "c", 1, 1);
    skv_node_init(&abcd[3], "d", 1, 1);
    skv_node_init(&weighted[0], "node-1", 6, 1);
    skv_node_init(&weighted[1], "node-2", 6, 2);
    skv_node_init(&weighted[2], "node-3", 6, 4);
    return 0;
}

static void
assert_order(const size_t *got, const size_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i], want[i]);
    }
}

static void
test_vectors(void **state)
{
    (void) state;
    for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        const vector_t *t = &vectors[v];
        size_t          order[3];
        size_t          len = strlen(t->key);

        assert_int_equal(skv_place(abcd, 3, t->key, len, order, 3), 3);
        assert_order(order, t->three, 3);
        assert_int_equal(skv_place(abcd, 4, t->key, len, order, 3), 3);
        assert_order(order, t->four, 3);
        assert_int_equal(skv_place(weighted, 3, t->key, len, order, 3), 3);
        assert_order(order, t->weighted, 3);
    }
}

static void
test_score_pinned(void **state)
{
    (void) state;
    /* Pins XXH3 and the score formula bit for bit (within a ulp or two of
     * libm's log). */
    assert_true(skv_node_score(&abcd[0], "exampleKey", 10) > 0.950023677083);
    assert_true(skv_node_score(&abcd[0], "exampleKey", 10) < 0.950023677084);
}

static void
test_want_clamped(void **state)
{
    size_t order[4];

    (void) state;
    assert_int_equal(skv_place(abcd, 2, "k", 1, order, 3), 2);
    assert_int_equal(skv_place(abcd, 4, "k", 1, order, 1), 1);
    assert_int_equal(skv_place(abcd, 0, "k", 1, order, 3), 0);
}

static void
test_preference_order_is_prefix(void **state)
{
    char   key[32];
    size_t one[1], three[3];

    (void) state;
    /* The primary is the first of the replica list, whatever N is. */
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);

        skv_place(abcd, 4, key, (size_t) n, one, 1);
        skv_place(abcd, 4, key, (size_t) n, three, 3);
        assert_int_equal(one[0], three[0]);
    }
}

static void
test_adding_node_moves_a_quarter(void **state)
{
    const int keys = 100000;
    int       moved = 0;
    char      key[32];

    (void) state;
    for (int i = 0; i < keys; i++) {
        int    n = snprintf(key, sizeof(key), "k%d", i);
        size_t before[3], after[3];

        skv_place(abcd, 3, key, (size_t) n, before, 1);
        skv_place(abcd, 4, key, (size_t) n, after, 1);
        if (before[0] != after[0]) {
            /* A key only ever moves to the new node, never between old
             * ones. */
            assert_int_equal(after[0], 3);
            moved++;
        }
    }
    /* Expect 1/4: 25,000 +- a few standard deviations (sd ~ 137). */
    assert_true(moved > 24000);
    assert_true(moved < 26000);
}

static void
test_adding_node_replica_sets(void **state)
{
    const int keys = 20000;
    char      key[32];
    int       changed = 0;

    (void) state;
    /* With N=2, a replica set changes only by taking in the new node and
     * dropping one old member: nothing else reshuffles. */
    for (int i = 0; i < keys; i++) {
        int    n = snprintf(key, sizeof(key), "r%d", i);
        size_t before[2], after[2];

        skv_place(abcd, 3, key, (size_t) n, before, 2);
        skv_place(abcd, 4, key, (size_t) n, after, 2);
        if (before[0] == after[0] && before[1] == after[1]) {
            continue;
        }
        changed++;
        assert_true(after[0] == 3 || after[1] == 3);
    }
    /* P(new node in the top 2 of 4) = 1/2. */
    assert_true(changed > keys * 45 / 100);
    assert_true(changed < keys * 55 / 100);
}

static void
test_weights_proportional(void **state)
{
    const int keys = 70000;
    int       primary[3] = {0, 0, 0};
    char      key[32];

    (void) state;
    for (int i = 0; i < keys; i++) {
        int    n = snprintf(key, sizeof(key), "w%d", i);
        size_t order[1];

        skv_place(weighted, 3, key, (size_t) n, order, 1);
        primary[order[0]]++;
    }
    /* Weights 1:2:4 -> shares 1/7, 2/7, 4/7 (10,000 / 20,000 / 40,000). */
    assert_true(primary[0] > 9400 && primary[0] < 10600);
    assert_true(primary[1] > 19200 && primary[1] < 20800);
    assert_true(primary[2] > 39000 && primary[2] < 41000);
}

static void
test_name_is_identity(void **state)
{
    skv_node_t renamed[3];
    size_t     x[3], y[3];

    (void) state;
    /* Same names in another order (as when addresses change in the
     * config): the same nodes are chosen. */
    skv_node_init(&renamed[0], "c", 1, 1);
    skv_node_init(&renamed[1], "a", 1, 1);
    skv_node_init(&renamed[2], "b", 1, 1);
    skv_place(abcd, 3, "exampleKey", 10, x, 3);
    skv_place(renamed, 3, "exampleKey", 10, y, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(abcd[x[i]].name[0], renamed[y[i]].name[0]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_score_pinned),
        cmocka_unit_test(test_want_clamped),
        cmocka_unit_test(test_preference_order_is_prefix),
        cmocka_unit_test(test_adding_node_moves_a_quarter),
        cmocka_unit_test(test_adding_node_replica_sets),
        cmocka_unit_test(test_weights_proportional),
        cmocka_unit_test(test_name_is_identity),
    };

    return cmocka_run_group_tests_name("placement", tests, setup, NULL);
}
