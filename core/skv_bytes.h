/*
 * skv_bytes.h - byte-level helpers shared by the core and the programs:
 * big-endian 64-bit fields (stored records, storaged's index entries), hex
 * digits (percent-escapes, hex keys on the command line) and the byte order
 * of keys and names.
 */
#ifndef SKV_BYTES_H
#define SKV_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Byte order, as in storaged's index and every listing: memcmp over the
 * common length, then the shorter first. */
static inline int
skv_bytes_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

    if (c != 0) {
        return c;
    }
    return a_len < b_len ? -1 : a_len > b_len;
}

static inline void
skv_put_be64(unsigned char *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char) (x & 0xff);
        x >>= 8;
    }
}

static inline uint64_t
skv_get_be64(const unsigned char *p)
{
    uint64_t x = 0;

    for (int i = 0; i < 8; i++) {
        x = x << 8 | p[i];
    }
    return x;
}

/* The value of a hex digit of either case, or -1. */
static inline int
skv_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

#endif
