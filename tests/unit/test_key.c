/*
 * test_key.c - key decoding/validation and percent-encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skv_key.h"

static skv_status_t
decode(const char *enc, unsigned char *out, size_t *len)
{
    return skv_key_decode(enc, strlen(enc), out, len);
}

static void
test_plain_and_escapes(void **state)
{
    unsigned char out[SKV_KEY_MAX];
    size_t        len;

    (void) state;
    assert_int_equal(decode("exampleKey", out, &len), SKV_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(out, "exampleKey", 10);

    assert_int_equal(decode("a%2Fb%2fc+d", out, &len), SKV_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(out, "a/b/c+d", 7); /* '+' stays '+' */

    assert_int_equal(decode("%00%FF/x", out, &len), SKV_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "\x00\xff/x", 4);
}

static void
test_errors(void **state)
{
    unsigned char out[SKV_KEY_MAX];
    size_t        len;

    (void) state;
    assert_int_equal(decode("", out, &len), SKV_ERR_KEY_EMPTY);
    assert_int_equal(decode("%", out, &len), SKV_ERR_KEY_ENCODING);
    assert_int_equal(decode("ab%4", out, &len), SKV_ERR_KEY_ENCODING);
    assert_int_equal(decode("%zz", out, &len), SKV_ERR_KEY_ENCODING);
    assert_int_equal(decode("%g0", out, &len), SKV_ERR_KEY_ENCODING);
}

static void
test_length_limits(void **state)
{
    unsigned char out[SKV_KEY_MAX];
    char         *enc = malloc(3 * (SKV_KEY_MAX + 1) + 1);
    size_t        len;

    (void) state;
    assert_non_null(enc);

    memset(enc, 'k', SKV_KEY_MAX);
    assert_int_equal(skv_key_decode(enc, SKV_KEY_MAX, out, &len), SKV_OK);
    assert_int_equal(len, SKV_KEY_MAX);
    assert_int_equal(skv_key_decode(enc, SKV_KEY_MAX + 1, out, &len),
                     SKV_ERR_KEY_TOO_LONG);

    /* The limit applies to decoded bytes: 1024 escapes are 3072 chars. */
    for (int i = 0; i <= SKV_KEY_MAX; i++) {
        memcpy(enc + 3 * i, "%41", 3);
    }
    assert_int_equal(skv_key_decode(enc, 3 * SKV_KEY_MAX, out, &len), SKV_OK);
    assert_int_equal(len, SKV_KEY_MAX);
    assert_int_equal(out[SKV_KEY_MAX - 1], 'A');
    assert_int_equal(skv_key_decode(enc, 3 * (SKV_KEY_MAX + 1), out, &len),
                     SKV_ERR_KEY_TOO_LONG);

    /* A bad escape past the limit is still a bad escape. */
    memcpy(enc + 3 * SKV_KEY_MAX, "%x1", 3);
    assert_int_equal(skv_key_decode(enc, 3 * (SKV_KEY_MAX + 1), out, &len),
                     SKV_ERR_KEY_ENCODING);
    free(enc);
}

static void
test_encode_round_trip(void **state)
{
    unsigned char key[256], back[SKV_KEY_MAX];
    char          enc[3 * 256];
    size_t        n, len;

    (void) state;
    for (int i = 0; i < 256; i++) {
        key[i] = (unsigned char) i;
    }
    n = skv_key_encode(key, 256, enc, sizeof(enc));
    assert_true(n <= sizeof(enc));
    assert_int_equal(skv_key_decode(enc, n, back, &len), SKV_OK);
    assert_int_equal(len, 256);
    assert_memory_equal(back, key, 256);
}

static void
test_encode_forms(void **state)
{
    char   enc[64];
    size_t n;

    (void) state;
    n = skv_key_encode((const unsigned char *) "a b/c~-._Z9", 11, enc,
                       sizeof(enc));
    assert_int_equal(n, 15);
    assert_memory_equal(enc, "a%20b%2Fc~-._Z9", 15);

    /* Too small a buffer: the full length is still reported and nothing
     * is written past cap. */
    memset(enc, '#', sizeof(enc));
    n = skv_key_encode((const unsigned char *) "  ", 2, enc, 4);
    assert_int_equal(n, 6);
    assert_int_equal(enc[4], '#');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_escapes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_encode_forms),
    };

    return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
