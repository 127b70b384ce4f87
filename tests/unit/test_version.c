/*
 * test_version.c - version ordering, text form and the hybrid logical clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "skv_version.h"

static void
test_format_parse(void **state)
{
    skv_version_t v = {0x0123456789abcdefULL, 0xfedcba9876543210ULL}, back;
    char          text[SKV_VERSION_TEXT_LEN + 1];

    (void) state;
    skv_version_format(&v, text);
    assert_string_equal(text, "0123456789abcdeffedcba9876543210");
    assert_int_equal(skv_version_parse(text, SKV_VERSION_TEXT_LEN, &back),
                     SKV_OK);
    assert_int_equal(skv_version_cmp(&v, &back), 0);
}

static void
test_parse_rejects(void **state)
{
    skv_version_t v;

    (void) state;
    assert_int_equal(skv_version_parse("", 0, &v), SKV_ERR_VERSION_SYNTAX);
    assert_int_equal(skv_version_parse("0123", 4, &v), SKV_ERR_VERSION_SYNTAX);
    assert_int_equal(
        skv_version_parse("0123456789ABCDEFfedcba9876543210", 32, &v),
        SKV_ERR_VERSION_SYNTAX);
    assert_int_equal(
        skv_version_parse("0123456789abcdeffedcba987654321g", 32, &v),
        SKV_ERR_VERSION_SYNTAX);
    assert_int_equal(
        skv_version_parse("00000000000000000000000000000000", 32, &v),
        SKV_ERR_VERSION_SYNTAX);
    assert_int_equal(
        skv_version_parse("0123456789abcdeffedcba98765432100", 33, &v),
        SKV_ERR_VERSION_SYNTAX);
}

static void
test_text_order_is_version_order(void **state)
{
    skv_version_t vs[] = {
        {1, 2}, {1, 3}, {2, 1}, {0x10000, 1}, {0xffff0000ULL, 0},
        {0xffff0000ULL, UINT64_MAX}, {UINT64_MAX, 1},
    };
    size_t        n = sizeof(vs) / sizeof(vs[0]);

    (void) state;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            char a[SKV_VERSION_TEXT_LEN + 1], b[SKV_VERSION_TEXT_LEN + 1];
            int  c = skv_version_cmp(&vs[i], &vs[j]);
            int  t;

            skv_version_format(&vs[i], a);
            skv_version_format(&vs[j], b);
            t = strcmp(a, b);
            assert_true((c < 0 && t < 0) || (c == 0 && t == 0)
                        || (c > 0 && t > 0));
            assert_true((i < j && c < 0) || (i == j && c == 0)
                        || (i > j && c > 0));
        }
    }
}

static void
test_clock_monotonic(void **state)
{
    skv_clock_t   clock;
    skv_version_t prev, v;

    (void) state;
    skv_clock_init(&clock, 7);
    prev = skv_clock_next(&clock, 1000);
    assert_int_equal(prev.hlc, 1000ULL << 16);
    assert_int_equal(prev.origin, 7);
    assert_int_equal(skv_version_ms(&prev), 1000);

    /* Same millisecond: logical counter. */
    v = skv_clock_next(&clock, 1000);
    assert_int_equal(v.hlc, (1000ULL << 16) + 1);
    /* Wall clock stepped back: still newer. */
    prev = v;
    v = skv_clock_next(&clock, 10);
    assert_true(skv_version_cmp(&v, &prev) > 0);
    /* Wall clock moves on: physical time wins again. */
    v = skv_clock_next(&clock, 2000);
    assert_int_equal(v.hlc, 2000ULL << 16);
}

static void
test_clock_counter_carries(void **state)
{
    skv_clock_t   clock;
    skv_version_t prev, v;

    (void) state;
    skv_clock_init(&clock, 1);
    prev = skv_clock_next(&clock, 5);
    for (int i = 0; i < 70000; i++) { /* more than 2^16 in one ms */
        v = skv_clock_next(&clock, 5);
        assert_true(skv_version_cmp(&v, &prev) > 0);
        prev = v;
    }
    assert_int_equal(skv_version_ms(&v), 6);
}

static void
test_clock_observe(void **state)
{
    skv_clock_t   clock;
    skv_version_t seen = {(5000ULL << 16) + 9, UINT64_MAX}, v;

    (void) state;
    skv_clock_init(&clock, 1);
    skv_clock_next(&clock, 1000);
    skv_clock_observe(&clock, &seen);
    /* Newer than what was seen even though its origin is smaller. */
    v = skv_clock_next(&clock, 1000);
    assert_true(skv_version_cmp(&v, &seen) > 0);
    /* Observing an older version changes nothing. */
    seen.hlc = 1;
    skv_clock_observe(&clock, &seen);
    assert_true(skv_clock_next(&clock, 1000).hlc > v.hlc);
}

static void
test_now_and_origin(void **state)
{
    uint64_t now = skv_clock_now_ms();

    (void) state;
    /* After 2026-01-01 (sanity of the epoch arithmetic). */
    assert_true(now > 189302400000ULL);
    assert_true(skv_origin_random() != 0);
    assert_true(skv_origin_random() != skv_origin_random());
}

static void
test_hlc_saturates(void **state)
{
    skv_clock_t   clock;
    skv_version_t seen = {UINT64_MAX, 3}, v;

    (void) state;
    /* The step itself: all ones stays all ones, never wraps to 0. */
    assert_true(skv_hlc_next(UINT64_MAX, 1000) == UINT64_MAX);
    assert_true(skv_hlc_next(UINT64_MAX - 1, 1000) == UINT64_MAX);
    assert_true(skv_hlc_next(UINT64_MAX, UINT64_MAX) == UINT64_MAX);
    /* A wall clock beyond 48 bits is capped, not shifted out. */
    assert_true(skv_hlc_next(0, UINT64_MAX)
                == SKV_HLC_MS_MAX << SKV_HLC_LOGICAL_BITS);
    assert_true(skv_hlc_next(0, (uint64_t) 1 << 50)
                == SKV_HLC_MS_MAX << SKV_HLC_LOGICAL_BITS);

    /* A clock that observed the highest version keeps issuing it. */
    skv_clock_init(&clock, 1);
    skv_clock_next(&clock, 1000);
    skv_clock_observe(&clock, &seen);
    v = skv_clock_next(&clock, 1000);
    assert_true(v.hlc == UINT64_MAX);
    v = skv_clock_next(&clock, 2000);
    assert_true(v.hlc == UINT64_MAX);
    assert_true(clock.last_hlc == UINT64_MAX);
    /* Observing something older does not move it back. */
    seen.hlc = 5;
    skv_clock_observe(&clock, &seen);
    assert_true(clock.last_hlc == UINT64_MAX);
}

static void
test_too_far_ahead(void **state)
{
    const uint64_t now = 200000000000ULL; /* ~2026 */
    skv_version_t  v = {0, 1};
    skv_version_t  zero = {0, 0};
    skv_version_t  top = {UINT64_MAX, UINT64_MAX};

    (void) state;
    v.hlc = now << SKV_HLC_LOGICAL_BITS;
    assert_false(skv_version_too_far_ahead(&v, now, 60000));
    assert_false(skv_version_too_far_ahead(&v, now, 0));
    /* Exactly the skew ahead is still accepted; one ms more is not. */
    v.hlc = ((now + 60000) << SKV_HLC_LOGICAL_BITS) | 0xffff;
    assert_false(skv_version_too_far_ahead(&v, now, 60000));
    v.hlc = (now + 60001) << SKV_HLC_LOGICAL_BITS;
    assert_true(skv_version_too_far_ahead(&v, now, 60000));
    /* 10 s ahead passes a 60 s skew, 2 min does not. */
    v.hlc = (now + 10000) << SKV_HLC_LOGICAL_BITS;
    assert_false(skv_version_too_far_ahead(&v, now, 60000));
    v.hlc = (now + 120000) << SKV_HLC_LOGICAL_BITS;
    assert_true(skv_version_too_far_ahead(&v, now, 60000));
    /* Versions in the past are never ahead. */
    v.hlc = 1;
    assert_false(skv_version_too_far_ahead(&v, now, 0));
    /* The planted all-ones version. */
    assert_true(skv_version_too_far_ahead(&top, now, 60000));
    /* A huge skew does not overflow into "ahead". */
    assert_false(skv_version_too_far_ahead(&top, now, UINT64_MAX));
    assert_false(skv_version_too_far_ahead(&top, UINT64_MAX, 1));
    /* The zero version ("none") is never ahead. */
    assert_false(skv_version_too_far_ahead(&zero, 0, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_parse),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_text_order_is_version_order),
        cmocka_unit_test(test_clock_monotonic),
        cmocka_unit_test(test_clock_counter_carries),
        cmocka_unit_test(test_clock_observe),
        cmocka_unit_test(test_now_and_origin),
        cmocka_unit_test(test_hlc_saturates),
        cmocka_unit_test(test_too_far_ahead),
    };

    return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
