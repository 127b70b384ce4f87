/*
 * fuzz_keyline.c - lines of storaged's key listing (skv_keyline_parse,
 * skv_keyline_format), as the router's listing merge and the CLI read them.
 *
 * The input is one line (a heap copy of exactly its size).  Checked:
 *  - parse accepts exactly "<32 lowercase hex, not zero>\t<0|1>\t<key>"
 *    with an optional newline, the key decoding as skv_key_decode says;
 *  - a parsed line formats (into a buffer of exactly SKV_KEYLINE_MAX) to
 *    the canonical line, which parses to the same fields and formats to
 *    itself; a buffer one byte short is refused without a write.
 */
#include <string.h>

#include "fuzz.h"
#include "skv_keyline.h"

static void
check_same(const skv_keyline_t *a, const skv_keyline_t *b)
{
    FUZZ_CHECK(skv_version_cmp(&a->version, &b->version) == 0);
    FUZZ_CHECK(a->tombstone == b->tombstone);
    FUZZ_CHECK(a->key_len == b->key_len);
    FUZZ_CHECK(memcmp(a->key, b->key, a->key_len) == 0);
}

static void
check_format(const skv_keyline_t *line)
{
    char           *out, *out2, *small;
    size_t          len, len2;
    skv_keyline_t  *back;
    skv_version_t   v;

    out = malloc(SKV_KEYLINE_MAX);
    out2 = malloc(SKV_KEYLINE_MAX);
    small = malloc(SKV_KEYLINE_MAX - 1);
    back = malloc(sizeof(*back));
    FUZZ_CHECK(out != NULL && out2 != NULL && small != NULL && back != NULL);

    len = skv_keyline_format(line, out, SKV_KEYLINE_MAX);
    FUZZ_CHECK(len > SKV_VERSION_TEXT_LEN + 4 && len <= SKV_KEYLINE_MAX);
    FUZZ_CHECK(out[len - 1] == '\n');
    FUZZ_CHECK(memchr(out, '\n', len - 1) == NULL);
    FUZZ_CHECK(skv_version_parse(out, SKV_VERSION_TEXT_LEN, &v) == SKV_OK);
    FUZZ_CHECK(skv_version_cmp(&v, &line->version) == 0);
    FUZZ_CHECK(out[SKV_VERSION_TEXT_LEN] == '\t'
               && out[SKV_VERSION_TEXT_LEN + 1] == (line->tombstone ? '1'
                                                                    : '0')
               && out[SKV_VERSION_TEXT_LEN + 2] == '\t');
    FUZZ_CHECK(len - SKV_VERSION_TEXT_LEN - 4
               == skv_key_encode(line->key, line->key_len, NULL, 0));

    FUZZ_CHECK(skv_keyline_parse(out, len, back) == SKV_OK);
    check_same(line, back);
    /* without its newline too */
    FUZZ_CHECK(skv_keyline_parse(out, len - 1, back) == SKV_OK);
    check_same(line, back);

    len2 = skv_keyline_format(back, out2, SKV_KEYLINE_MAX);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);

    FUZZ_CHECK(skv_keyline_format(line, small, SKV_KEYLINE_MAX - 1) == 0);

    free(back);
    free(small);
    free(out2);
    free(out);
}

static bool
lower_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *text;
    size_t          len = size, key_len;
    skv_keyline_t  *line;
    skv_status_t    rc, key_rc;
    bool            head_ok, nonzero = false;
    unsigned char  *key;

    text = malloc(size > 0 ? size : 1);
    line = malloc(sizeof(*line));
    key = malloc(SKV_KEY_MAX);
    FUZZ_CHECK(text != NULL && line != NULL && key != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }

    rc = skv_keyline_parse(text, size, line);

    /* the expected verdict, from the format's definition */
    if (len > 0 && data[len - 1] == '\n') {
        len--;
    }
    head_ok = len >= SKV_VERSION_TEXT_LEN + 4;
    for (size_t i = 0; head_ok && i < SKV_VERSION_TEXT_LEN; i++) {
        head_ok = lower_hex(data[i]);
        nonzero |= data[i] != '0';
    }
    head_ok = head_ok && nonzero && data[SKV_VERSION_TEXT_LEN] == '\t'
              && (data[SKV_VERSION_TEXT_LEN + 1] == '0'
                  || data[SKV_VERSION_TEXT_LEN + 1] == '1')
              && data[SKV_VERSION_TEXT_LEN + 2] == '\t';
    if (!head_ok) {
        FUZZ_CHECK(rc == SKV_ERR_LINE_SYNTAX);
    } else {
        key_rc = skv_key_decode(text + SKV_VERSION_TEXT_LEN + 3,
                                len - SKV_VERSION_TEXT_LEN - 3, key,
                                &key_len);
        FUZZ_CHECK(rc == key_rc);
        if (rc == SKV_OK) {
            FUZZ_CHECK(line->tombstone
                       == (data[SKV_VERSION_TEXT_LEN + 1] == '1'));
            FUZZ_CHECK(line->key_len == key_len
                       && memcmp(line->key, key, key_len) == 0);
            check_format(line);
        }
    }

    free(key);
    free(line);
    free(text);
    return 0;
}
