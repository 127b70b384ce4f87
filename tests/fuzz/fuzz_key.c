/*
 * fuzz_key.c - key decoding (skv_key_decode) and the canonical encoding
 * (skv_key_encode).
 *
 * The input is a percent-encoded key.  Checked on every input:
 *  - the decoder agrees with a plain reference decoder (status and bytes)
 *    and never writes past its SKV_KEY_MAX output (a heap buffer of
 *    exactly that size, so ASan sees an overflow);
 *  - a decoded key encodes to at most 3 bytes per byte, unreserved bytes
 *    only as themselves, the length returned equals what a large enough
 *    buffer receives, and a short buffer gets the same length back with
 *    nothing written past its end;
 *  - decode(encode(key)) == key, and the encoding is canonical:
 *    encode(decode(encode(key))) == encode(key).
 */
#include <string.h>

#include "fuzz.h"
#include "skv_key.h"

static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (unsigned char) (c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The rules of skv_key.h written out again: a bad escape anywhere first,
 * then empty, then too long. */
static skv_status_t
reference_decode(const uint8_t *enc, size_t len, unsigned char *out,
                 size_t cap, size_t *out_len)
{
    size_t i = 0, n = 0;

    while (i < len) {
        int c = enc[i];

        if (c == '%') {
            if (i + 2 >= len || hex_value(enc[i + 1]) < 0
                || hex_value(enc[i + 2]) < 0) {
                return SKV_ERR_KEY_ENCODING;
            }
            c = hex_value(enc[i + 1]) * 16 + hex_value(enc[i + 2]);
            i += 3;
        } else {
            i++;
        }
        if (n < cap) {
            out[n] = (unsigned char) c;
        }
        n++;
    }
    *out_len = n;
    if (n == 0) {
        return SKV_ERR_KEY_EMPTY;
    }
    return n > SKV_KEY_MAX ? SKV_ERR_KEY_TOO_LONG : SKV_OK;
}

static bool
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}

static void
check_encoding(const unsigned char *key, size_t len)
{
    char          *enc, *enc2, *small;
    unsigned char *back;
    size_t         enc_len, back_len, cut;

    /* Exactly the documented worst case: ASan catches a write past it. */
    enc = malloc(3 * len);
    FUZZ_CHECK(enc != NULL);
    enc_len = skv_key_encode(key, len, enc, 3 * len);
    FUZZ_CHECK(enc_len >= len && enc_len <= 3 * len);
    FUZZ_CHECK(enc_len <= SKV_KEY_ENCODED_MAX);

    /* Byte by byte: unreserved bytes stay, the rest are %XX uppercase. */
    for (size_t i = 0, j = 0; i < len; i++) {
        if (unreserved(key[i])) {
            FUZZ_CHECK(j < enc_len && enc[j] == (char) key[i]);
            j++;
        } else {
            static const char hex[] = "0123456789ABCDEF";

            FUZZ_CHECK(j + 3 <= enc_len && enc[j] == '%'
                       && enc[j + 1] == hex[key[i] >> 4]
                       && enc[j + 2] == hex[key[i] & 0x0f]);
            j += 3;
        }
        if (i + 1 == len) {
            FUZZ_CHECK(j == enc_len);
        }
    }

    /* decode(encode(key)) == key */
    back = malloc(SKV_KEY_MAX);
    FUZZ_CHECK(back != NULL);
    FUZZ_CHECK(skv_key_decode(enc, enc_len, back, &back_len) == SKV_OK);
    FUZZ_CHECK(back_len == len && memcmp(back, key, len) == 0);

    /* canonical: encoding the decoded encoding changes nothing */
    enc2 = malloc(enc_len);
    FUZZ_CHECK(enc2 != NULL);
    FUZZ_CHECK(skv_key_encode(back, back_len, enc2, enc_len) == enc_len);
    FUZZ_CHECK(memcmp(enc, enc2, enc_len) == 0);

    /* a short buffer: same length reported, nothing past cap written */
    cut = enc_len / 2;
    small = malloc(cut > 0 ? cut : 1);
    FUZZ_CHECK(small != NULL);
    FUZZ_CHECK(skv_key_encode(key, len, small, cut) == enc_len);
    FUZZ_CHECK(skv_key_encode(key, len, NULL, 0) == enc_len);

    free(small);
    free(enc2);
    free(back);
    free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out, *ref;
    size_t         out_len = 0, ref_len = 0;
    skv_status_t   rc, want;
    char          *text;

    /* A heap copy of the input of exactly its size: an over-read past the
     * end of the encoded key is caught even for the empty input. */
    text = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(text != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }

    out = malloc(SKV_KEY_MAX);
    ref = malloc(SKV_KEY_MAX);
    FUZZ_CHECK(out != NULL && ref != NULL);

    rc = skv_key_decode(text, size, out, &out_len);
    want = reference_decode(data, size, ref, SKV_KEY_MAX, &ref_len);
    FUZZ_CHECK(rc == want);
    FUZZ_CHECK(skv_strerror(rc) != NULL);

    if (rc == SKV_OK) {
        FUZZ_CHECK(out_len == ref_len);
        FUZZ_CHECK(out_len >= 1 && out_len <= SKV_KEY_MAX);
        FUZZ_CHECK(memcmp(out, ref, out_len) == 0);
        /* decoding never grows the key */
        FUZZ_CHECK(out_len <= size);
        check_encoding(out, out_len);
    }

    /* Any input's first SKV_KEY_MAX bytes, taken as a raw key, encode and
     * decode back (binary keys from the CLI's --hex, listing cursors). */
    if (size > 0) {
        check_encoding(data, size < SKV_KEY_MAX ? size : SKV_KEY_MAX);
    }

    free(ref);
    free(out);
    free(text);
    return 0;
}
