/*
 * skv_keyline.c - format and parse lines of storaged's key listing.
 */
#include <string.h>

#include "skv_keyline.h"

size_t
skv_keyline_format(const skv_keyline_t *line, char *out, size_t cap)
{
    char   *p = out;
    size_t  enc_len;

    if (cap < SKV_KEYLINE_MAX) {
        return 0;
    }
    skv_version_format(&line->version, p); /* writes a NUL we overwrite */
    p += SKV_VERSION_TEXT_LEN;
    *p++ = '\t';
    *p++ = line->tombstone ? '1' : '0';
    *p++ = '\t';
    enc_len = skv_key_encode(line->key, line->key_len, p,
                             cap - (size_t) (p - out) - 1);
    p += enc_len;
    *p++ = '\n';
    return (size_t) (p - out);
}

skv_status_t
skv_keyline_parse(const char *text, size_t len, skv_keyline_t *out)
{
    skv_status_t rc;

    if (len > 0 && text[len - 1] == '\n') {
        len--;
    }
    if (len < SKV_VERSION_TEXT_LEN + 4 || text[SKV_VERSION_TEXT_LEN] != '\t'
        || text[SKV_VERSION_TEXT_LEN + 2] != '\t') {
        return SKV_ERR_LINE_SYNTAX;
    }
    if (skv_version_parse(text, SKV_VERSION_TEXT_LEN, &out->version)
        != SKV_OK) {
        return SKV_ERR_LINE_SYNTAX;
    }
    switch (text[SKV_VERSION_TEXT_LEN + 1]) {
    case '0':
        out->tombstone = false;
        break;
    case '1':
        out->tombstone = true;
        break;
    default:
        return SKV_ERR_LINE_SYNTAX;
    }
    rc = skv_key_decode(text + SKV_VERSION_TEXT_LEN + 3,
                        len - SKV_VERSION_TEXT_LEN - 3, out->key,
                        &out->key_len);
    return rc;
}
