/*
 * test_record.c - the stored record format and key-listing lines: round
 * trips, and every truncation or corruption reported as an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skv_keyline.h"
#include "skv_record.h"

static size_t
encode(const skv_record_t *rec, unsigned char *buf, size_t cap)
{
    size_t n;

    assert_int_equal(skv_record_encode_header(rec, buf, cap, &n), SKV_OK);
    memcpy(buf + n, rec->value, rec->value_len);
    return n + rec->value_len;
}

static void
test_round_trip(void **state)
{
    skv_record_t  rec = {
        .version = {0x1122334455667788ULL, 0x99aabbccddeeff00ULL},
        .flags = 0,
        .content_type = "text/plain",
        .content_type_len = 10,
        .value = "hello world",
        .value_len = 11,
    };
    skv_record_t  out;
    unsigned char buf[128];
    size_t        n = encode(&rec, buf, sizeof(buf));

    (void) state;
    assert_int_equal(n, SKV_RECORD_FIXED_HEADER + 10 + 11);
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_OK);
    assert_int_equal(skv_version_cmp(&out.version, &rec.version), 0);
    assert_false(skv_record_is_tombstone(&out));
    assert_int_equal(out.content_type_len, 10);
    assert_memory_equal(out.content_type, "text/plain", 10);
    assert_int_equal(out.value_len, 11);
    assert_memory_equal(out.value, "hello world", 11);
}

static void
test_tombstone_and_empty(void **state)
{
    skv_record_t  rec = {.version = {5, 6}, .flags = SKV_RECORD_TOMBSTONE};
    skv_record_t  out;
    unsigned char buf[64];
    size_t        n;

    (void) state;
    rec.value = "";
    n = encode(&rec, buf, sizeof(buf));
    assert_int_equal(n, SKV_RECORD_FIXED_HEADER);
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_OK);
    assert_true(skv_record_is_tombstone(&out));
    assert_int_equal(out.value_len, 0);
    assert_int_equal(out.content_type_len, 0);

    /* An empty value that is not a tombstone is a value. */
    rec.flags = 0;
    n = encode(&rec, buf, sizeof(buf));
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_OK);
    assert_false(skv_record_is_tombstone(&out));
}

static void
test_every_truncation_fails(void **state)
{
    skv_record_t  rec = {.version = {1, 2}, .content_type = "a/b",
                         .content_type_len = 3, .value = "", .value_len = 0};
    skv_record_t  out;
    unsigned char buf[64];
    size_t        n = encode(&rec, buf, sizeof(buf));

    (void) state;
    for (size_t len = 0; len < n; len++) {
        /* A fresh heap copy of exactly len bytes lets ASan catch any
         * over-read. */
        unsigned char *copy = malloc(len ? len : 1);

        memcpy(copy, buf, len);
        assert_int_equal(skv_record_decode(copy, len, &out),
                         SKV_ERR_RECORD_TRUNCATED);
        free(copy);
    }
}

static void
test_corruption_detected(void **state)
{
    skv_record_t  rec = {.version = {1, 2}, .value = "v", .value_len = 1};
    skv_record_t  out;
    unsigned char buf[64];
    size_t        n = encode(&rec, buf, sizeof(buf));

    (void) state;
    buf[0] = 2; /* unknown format */
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_ERR_RECORD_CORRUPT);
    buf[0] = SKV_RECORD_FORMAT;
    buf[1] = 0x80; /* unknown flag */
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_ERR_RECORD_CORRUPT);
    buf[1] = SKV_RECORD_TOMBSTONE; /* tombstone with a value */
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_ERR_RECORD_CORRUPT);
    buf[1] = 0;
    memset(buf + 2, 0, 16); /* zero version */
    assert_int_equal(skv_record_decode(buf, n, &out), SKV_ERR_RECORD_CORRUPT);
    buf[18] = 200; /* content type longer than the record */
    assert_int_equal(skv_record_decode(buf, n, &out),
                     SKV_ERR_RECORD_TRUNCATED);
}

static void
test_encode_limits(void **state)
{
    char          ctype[SKV_CONTENT_TYPE_MAX + 1];
    skv_record_t  rec = {.version = {1, 2}, .content_type = ctype};
    unsigned char buf[SKV_RECORD_HEADER_MAX];
    size_t        n;

    (void) state;
    memset(ctype, 'x', sizeof(ctype));
    rec.content_type_len = SKV_CONTENT_TYPE_MAX;
    assert_int_equal(skv_record_encode_header(&rec, buf, sizeof(buf), &n),
                     SKV_OK);
    assert_int_equal(n, SKV_RECORD_HEADER_MAX);
    rec.content_type_len = SKV_CONTENT_TYPE_MAX + 1;
    assert_int_equal(skv_record_encode_header(&rec, buf, sizeof(buf), &n),
                     SKV_ERR_CONTENT_TYPE);
    rec.content_type_len = 10;
    assert_int_equal(skv_record_encode_header(&rec, buf, 20, &n),
                     SKV_ERR_NOSPACE);
}

static void
test_keyline_round_trip(void **state)
{
    skv_keyline_t line = {.version = {0xabc, 0xdef}, .tombstone = true,
                          .key = "a b\t\n/\x00z", .key_len = 8};
    skv_keyline_t back;
    char          text[SKV_KEYLINE_MAX];
    size_t        n = skv_keyline_format(&line, text, sizeof(text));

    (void) state;
    assert_int_equal(n, 32 + 3 + 18 + 1);
    assert_memory_equal(text,
                        "0000000000000abc0000000000000def\t1\ta%20b%09%0A%2F%00z"
                        "\n",
                        n);
    assert_int_equal(skv_keyline_parse(text, n, &back), SKV_OK);
    assert_true(back.tombstone);
    assert_int_equal(back.key_len, 8);
    assert_memory_equal(back.key, line.key, 8);
    assert_int_equal(skv_version_cmp(&back.version, &line.version), 0);

    /* Newline is optional when parsing. */
    assert_int_equal(skv_keyline_parse(text, n - 1, &back), SKV_OK);
    assert_int_equal(skv_keyline_format(&line, text, 100), 0);
}

static void
test_keyline_rejects(void **state)
{
    skv_keyline_t back;
    const char   *bad[] = {
        "",
        "0000000000000abc0000000000000def\t1\t",
        "0000000000000abc0000000000000def 1\tk",
        "0000000000000abc0000000000000def\t2\tk",
        "0000000000000ABC0000000000000def\t0\tk",
        "0000000000000abc0000000000000def\t0 k",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(skv_keyline_parse(bad[i], strlen(bad[i]), &back),
                             SKV_OK);
    }
    assert_int_equal(
        skv_keyline_parse("0000000000000abc0000000000000def\t0\t%zz", 39,
                          &back),
        SKV_ERR_KEY_ENCODING);
}

static void
test_strerror(void **state)
{
    (void) state;
    assert_string_equal(skv_strerror(SKV_ERR_KEY_TOO_LONG), "key too long");
    assert_string_equal(skv_strerror((skv_status_t) 999), "unknown error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tombstone_and_empty),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_corruption_detected),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_keyline_round_trip),
        cmocka_unit_test(test_keyline_rejects),
        cmocka_unit_test(test_strerror),
    };

    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
