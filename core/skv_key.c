/*
 * skv_key.c - percent-decoding with validation, and percent-encoding.
 */
#include "skv_bytes.h"
#include "skv_key.h"

skv_status_t
skv_key_decode(const char *enc, size_t enc_len, unsigned char *out,
               size_t *out_len)
{
    size_t i = 0, n = 0;

    while (i < enc_len) {
        unsigned char c = (unsigned char) enc[i];

        if (c == '%') {
            int hi, lo;

            if (enc_len - i < 3) {
                return SKV_ERR_KEY_ENCODING;
            }
            hi = skv_hex_digit((unsigned char) enc[i + 1]);
            lo = skv_hex_digit((unsigned char) enc[i + 2]);
            if (hi < 0 || lo < 0) {
                return SKV_ERR_KEY_ENCODING;
            }
            c = (unsigned char) (hi << 4 | lo);
            i += 3;
        } else {
            i++;
        }

        /* Keep scanning past the limit so that a bad escape later in an
         * overlong key is still reported as what it is. */
        if (n < SKV_KEY_MAX) {
            out[n] = c;
        }
        n++;
    }

    *out_len = n;
    if (n == 0) {
        return SKV_ERR_KEY_EMPTY;
    }
    if (n > SKV_KEY_MAX) {
        return SKV_ERR_KEY_TOO_LONG;
    }
    return SKV_OK;
}

static int
is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}

size_t
skv_key_encode(const unsigned char *key, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = key[i];

        if (is_unreserved(c)) {
            if (n < cap) {
                out[n] = (char) c;
            }
            n++;
        } else {
            if (n + 3 <= cap) {
                out[n] = '%';
                out[n + 1] = hex[c >> 4];
                out[n + 2] = hex[c & 0x0f];
            }
            n += 3;
        }
    }
    return n;
}
