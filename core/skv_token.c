/*
 * skv_token.c - find the token in a token file's contents (skv_token.h).
 */
#include <stdbool.h>
#include <string.h>

#include "skv_token.h"

static bool
is_trimmed(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

skv_status_t
skv_token_parse(const char *data, size_t len, size_t *start,
                size_t *token_len)
{
    const unsigned char *p = (const unsigned char *) data;
    const unsigned char *nl;
    size_t               b = 0, e, i;

    nl = len > 0 ? memchr(p, '\n', len) : NULL;
    e = nl != NULL ? (size_t) (nl - p) : len;
    while (b < e && is_trimmed(p[b])) {
        b++;
    }
    while (e > b && is_trimmed(p[e - 1])) {
        e--;
    }
    if (b == e) {
        return SKV_ERR_TOKEN_EMPTY;
    }
    for (i = b; i < e; i++) {
        if (p[i] <= ' ' || p[i] == 0x7f) {
            return SKV_ERR_TOKEN_SYNTAX;
        }
    }
    *start = b;
    *token_len = e - b;
    return SKV_OK;
}
