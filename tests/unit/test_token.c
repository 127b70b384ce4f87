/*
 * test_token.c - the token file's first line (core/skv_token.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "skv_token.h"

/* Parse a NUL-free text and compare the token found with want. */
static void
expect_token(const char *text, const char *want)
{
    size_t start = 99, len = 99;

    assert_int_equal(skv_token_parse(text, strlen(text), &start, &len),
                     SKV_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(text + start, want, len);
}

static void
expect_error(const char *text, size_t len, skv_status_t want)
{
    size_t start = 99, tlen = 99;

    assert_int_equal(skv_token_parse(text, len, &start, &tlen), want);
    /* Outputs untouched on failure. */
    assert_int_equal(start, 99);
    assert_int_equal(tlen, 99);
}

static void
test_plain(void **state)
{
    (void) state;
    expect_token("s3cret", "s3cret");
    expect_token("s3cret\n", "s3cret");
    expect_token("s3cret\r\n", "s3cret");
    expect_token("s3cret\nsecond line ignored\n", "s3cret");
    expect_token("a", "a");
}

static void
test_trims_both_ends(void **state)
{
    (void) state;
    /* Leading white space: the router and storaged once differed here. */
    expect_token("  s3cret", "s3cret");
    expect_token("\t s3cret \t\r\n", "s3cret");
    expect_token("\r\rs3cret\r\r\n", "s3cret");
    /* Printable punctuation and bytes above 0x7f are kept. */
    expect_token(" a-b.c_d~e+f/g== \n", "a-b.c_d~e+f/g==");
    expect_token("\xc3\xa9t\xc3\xa9\n", "\xc3\xa9t\xc3\xa9");
}

static void
test_empty(void **state)
{
    (void) state;
    expect_error("", 0, SKV_ERR_TOKEN_EMPTY);
    expect_error("\n", 1, SKV_ERR_TOKEN_EMPTY);
    expect_error(" \t\r\n", 4, SKV_ERR_TOKEN_EMPTY);
    /* Only the first line counts, even if a later one has text. */
    expect_error("\ns3cret\n", 8, SKV_ERR_TOKEN_EMPTY);
    expect_error("   ", 3, SKV_ERR_TOKEN_EMPTY);
}

static void
test_bad_bytes(void **state)
{
    (void) state;
    expect_error("two words\n", 10, SKV_ERR_TOKEN_SYNTAX);
    expect_error("tab\tinside", 10, SKV_ERR_TOKEN_SYNTAX);
    expect_error("cr\rinside", 9, SKV_ERR_TOKEN_SYNTAX);
    expect_error("nul\0inside", 10, SKV_ERR_TOKEN_SYNTAX);
    expect_error("esc\x1b", 4, SKV_ERR_TOKEN_SYNTAX);
    expect_error("del\x7f", 4, SKV_ERR_TOKEN_SYNTAX);
    expect_error("\x01", 1, SKV_ERR_TOKEN_SYNTAX);
}

static void
test_length_is_respected(void **state)
{
    size_t start, len;

    (void) state;
    /* Only len bytes are looked at: no NUL terminator is needed. */
    assert_int_equal(skv_token_parse("abcdef", 3, &start, &len), SKV_OK);
    assert_int_equal(start, 0);
    assert_int_equal(len, 3);
    assert_int_equal(skv_token_parse("  ab  \n", 4, &start, &len), SKV_OK);
    assert_int_equal(start, 2);
    assert_int_equal(len, 2);
}

static void
test_strerror(void **state)
{
    (void) state;
    assert_non_null(strstr(skv_strerror(SKV_ERR_TOKEN_EMPTY), "empty"));
    assert_non_null(strstr(skv_strerror(SKV_ERR_TOKEN_SYNTAX), "space"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_trims_both_ends),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_strerror),
    };

    return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
