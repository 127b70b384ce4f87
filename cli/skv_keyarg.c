/*
 * skv_keyarg.c - parse key arguments (raw, hex, percent-encoded) and print
 * keys in the same three forms.  Validation is the core's (skv_key.h), so
 * skv refuses exactly the keys the router would refuse, before sending.
 */
#include "skv_keyarg.h"

#include <string.h>

#include "skv_bytes.h"

static int
parse_hex(const char *arg, skv_keyarg_t *key)
{
    size_t n = strlen(arg);

    if (n % 2 != 0) {
        return skv_usage_error("hex key has an odd number of digits (%zu)",
                               n);
    }
    if (n / 2 > SKV_KEY_MAX) {
        return skv_usage_error("key too long: %zu bytes (at most %d)", n / 2,
                               SKV_KEY_MAX);
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = skv_hex_digit((unsigned char) arg[i]);
        int lo = skv_hex_digit((unsigned char) arg[i + 1]);

        if (hi < 0 || lo < 0) {
            return skv_usage_error("hex key: \"%.2s\" at offset %zu is not "
                                   "a hex byte",
                                   arg + i, i);
        }
        key->bytes[i / 2] = (unsigned char) (hi << 4 | lo);
    }
    key->len = n / 2;
    return SKV_EXIT_OK;
}

int
skv_keyarg_parse(const char *arg, skv_keyfmt_t fmt, int allow_empty,
                 skv_keyarg_t *key)
{
    size_t       n = strlen(arg);
    skv_status_t st;
    int          rc;

    key->len = 0;

    switch (fmt) {
    case SKV_KEYFMT_RAW:
        if (n > SKV_KEY_MAX) {
            return skv_usage_error("key too long: %zu bytes (at most %d)", n,
                                   SKV_KEY_MAX);
        }
        memcpy(key->bytes, arg, n);
        key->len = n;
        break;

    case SKV_KEYFMT_HEX:
        rc = parse_hex(arg, key);
        if (rc != SKV_EXIT_OK) {
            return rc;
        }
        break;

    case SKV_KEYFMT_ENCODED:
        if (n == 0) {
            break;
        }
        st = skv_key_decode(arg, n, key->bytes, &key->len);
        if (st == SKV_ERR_KEY_TOO_LONG) {
            return skv_usage_error("key too long: more than %d bytes",
                                   SKV_KEY_MAX);
        }
        if (st != SKV_OK) {
            return skv_usage_error("bad key \"%s\": %s", arg,
                                   skv_strerror(st));
        }
        break;
    }

    if (key->len == 0 && !allow_empty) {
        return skv_usage_error("empty key: a key is 1 to %d bytes",
                               SKV_KEY_MAX);
    }

    /* 3 bytes per key byte always fit: enc has SKV_KEY_ENCODED_MAX + 1. */
    n = skv_key_encode(key->bytes, key->len, key->enc, SKV_KEY_ENCODED_MAX);
    key->enc[n] = '\0';
    return SKV_EXIT_OK;
}

int
skv_keyarg_path_safe(const skv_keyarg_t *key)
{
    static const char reserved[] = "_simplekv/";
    size_t            seg = 0;

    if (memchr(key->bytes, '\0', key->len) != NULL) {
        return 0;
    }
    if (key->len >= sizeof(reserved) - 1
        && memcmp(key->bytes, reserved, sizeof(reserved) - 1) == 0) {
        return 0;
    }

    /* Look at each '/'-separated segment, including the last. */
    for (size_t i = 0; i <= key->len; i++) {
        if (i == key->len || key->bytes[i] == '/') {
            size_t n = i - seg;

            if ((n == 1 && key->bytes[seg] == '.')
                || (n == 2 && key->bytes[seg] == '.'
                    && key->bytes[seg + 1] == '.')) {
                return 0;
            }
            seg = i + 1;
        }
    }
    return 1;
}

void
skv_keyarg_target(const skv_keyarg_t *key, char *buf, size_t cap)
{
    snprintf(buf, cap, "/%s%s", skv_keyarg_path_safe(key) ? "" : "?key=",
             key->enc);
}

int
skv_keyarg_print(FILE *f, const unsigned char *key, size_t len,
                 skv_keyfmt_t fmt)
{
    char   enc[SKV_KEY_ENCODED_MAX];
    size_t n;

    switch (fmt) {
    case SKV_KEYFMT_RAW:
        if (len > 0 && fwrite(key, 1, len, f) != len) {
            return -1;
        }
        break;

    case SKV_KEYFMT_HEX:
        for (size_t i = 0; i < len; i++) {
            if (fprintf(f, "%02x", key[i]) < 0) {
                return -1;
            }
        }
        break;

    case SKV_KEYFMT_ENCODED:
        n = skv_key_encode(key, len, enc, sizeof(enc));
        if (n > 0 && fwrite(enc, 1, n, f) != n) {
            return -1;
        }
        break;
    }

    return putc('\n', f) == EOF ? -1 : 0;
}
