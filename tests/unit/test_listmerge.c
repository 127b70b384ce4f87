/*
 * test_listmerge.c - one page of a merged listing (core/skv_listmerge.h):
 * newest version wins, tombstones hidden but covered, the limit, the
 * bound of a full node, and the two cases tests/fuzz/fuzz_listmerge.c
 * led to (a tie of versions, lines at or before the cursor).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "skv_listmerge.h"

static skv_listentry_t
line(const char *key, uint64_t hlc, bool tombstone)
{
    skv_listentry_t e;

    memset(&e, 0, sizeof(e));
    e.key = (const unsigned char *) key;
    e.key_len = strlen(key);
    e.version.hlc = hlc;
    e.tombstone = tombstone;
    return e;
}

static void
expect_keys(const skv_listentry_t *e, const skv_listpage_t *page,
            const char *const *want, size_t n)
{
    assert_int_equal(page->shown, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].key_len, strlen(want[i]));
        assert_memory_equal(e[i].key, want[i], e[i].key_len);
    }
}

static void
expect_cursor(const skv_listpage_t *page, const char *want)
{
    if (want == NULL) {
        assert_false(page->more);
        return;
    }
    assert_true(page->more);
    assert_int_equal(page->cursor_len, strlen(want));
    assert_memory_equal(page->cursor, want, page->cursor_len);
}

static void
test_newest_wins_and_tombstones_hide(void **state)
{
    /* node 1 and node 2, neither full (limit 10) */
    skv_listentry_t e[] = {
        line("a", 1, false), line("b", 5, true), line("c", 2, false),
        line("a", 3, true), line("b", 4, false), line("d", 1, false),
    };
    skv_listmerge_t m;
    skv_listpage_t  page;
    static const char *const want[] = {"c", "d"};

    (void) state;
    skv_listmerge_init(&m, (const unsigned char *) "", 0, 10);
    skv_listmerge_node(&m, e, 3, false);
    skv_listmerge_node(&m, e + 3, 3, false);
    skv_listmerge_page(&m, e, 6, &page);
    expect_keys(e, &page, want, 2);
    expect_cursor(&page, NULL);
}

static void
test_limit_and_cursor(void **state)
{
    skv_listentry_t e[] = {
        line("a", 1, false), line("b", 1, true), line("c", 1, false),
        line("d", 1, false),
    };
    skv_listmerge_t m;
    skv_listpage_t  page;
    static const char *const want[] = {"a", "c"};

    (void) state;
    skv_listmerge_init(&m, (const unsigned char *) "", 0, 2);
    skv_listmerge_node(&m, e, 4, false);
    skv_listmerge_page(&m, e, 4, &page);
    /* the tombstone is covered, not counted */
    expect_keys(e, &page, want, 2);
    expect_cursor(&page, "c");
}

static void
test_a_full_node_bounds_the_page(void **state)
{
    /* node 1 sent its full 2 lines (a, b): it may hold more past b;
     * node 2 sent c and d and had no more */
    skv_listentry_t e[] = {
        line("a", 1, false), line("b", 1, false),
        line("c", 1, false), line("d", 1, false),
    };
    skv_listmerge_t m;
    skv_listpage_t  page;
    static const char *const want[] = {"a", "b"};

    (void) state;
    skv_listmerge_init(&m, (const unsigned char *) "", 0, 2);
    skv_listmerge_node(&m, e, 2, true);
    skv_listmerge_node(&m, e + 2, 2, false);
    skv_listmerge_page(&m, e, 4, &page);
    expect_keys(e, &page, want, 2);
    expect_cursor(&page, "b");
}

static void
test_a_version_tie_goes_to_the_tombstone(void **state)
{
    /* two copies of one version that disagree (cannot come from storaged)
     * decide the same way whatever order they arrive in */
    skv_listentry_t e1[] = {line("k", 7, false), line("k", 7, true)};
    skv_listentry_t e2[] = {line("k", 7, true), line("k", 7, false)};
    skv_listmerge_t m;
    skv_listpage_t  page;

    (void) state;
    skv_listmerge_init(&m, (const unsigned char *) "", 0, 5);
    skv_listmerge_page(&m, e1, 2, &page);
    assert_int_equal(page.shown, 0);
    skv_listmerge_page(&m, e2, 2, &page);
    assert_int_equal(page.shown, 0);
}

static void
test_lines_at_or_before_the_cursor_are_ignored(void **state)
{
    /* a node that ignores `after` sends a full page of old keys: it
     * must neither appear nor bound the page below its cursor */
    skv_listentry_t e[] = {
        line("a", 1, false), line("m", 1, false),
        line("n", 1, false), line("p", 1, false),
    };
    skv_listmerge_t m;
    skv_listpage_t  page;
    static const char *const want[] = {"n", "p"};

    (void) state;
    skv_listmerge_init(&m, (const unsigned char *) "m", 1, 2);
    skv_listmerge_node(&m, e, 2, true);
    skv_listmerge_node(&m, e + 2, 2, false);
    assert_false(m.bounded);
    skv_listmerge_page(&m, e, 4, &page);
    expect_keys(e, &page, want, 2);
    expect_cursor(&page, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_wins_and_tombstones_hide),
        cmocka_unit_test(test_limit_and_cursor),
        cmocka_unit_test(test_a_full_node_bounds_the_page),
        cmocka_unit_test(test_a_version_tie_goes_to_the_tombstone),
        cmocka_unit_test(test_lines_at_or_before_the_cursor_are_ignored),
    };

    return cmocka_run_group_tests_name("listmerge", tests, NULL, NULL);
}
