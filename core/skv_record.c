/*
 * skv_record.c - encode and decode the stored record (see skv_record.h).
 */
#include <string.h>

#include "skv_bytes.h"
#include "skv_record.h"

size_t
skv_record_header_size(const skv_record_t *rec)
{
    return SKV_RECORD_FIXED_HEADER + rec->content_type_len;
}

skv_status_t
skv_record_encode_header(const skv_record_t *rec, unsigned char *out,
                         size_t cap, size_t *written)
{
    size_t size;

    if (rec->content_type_len > SKV_CONTENT_TYPE_MAX) {
        return SKV_ERR_CONTENT_TYPE;
    }
    size = skv_record_header_size(rec);
    if (cap < size) {
        return SKV_ERR_NOSPACE;
    }

    out[0] = SKV_RECORD_FORMAT;
    out[1] = (unsigned char) (rec->flags & SKV_RECORD_TOMBSTONE);
    skv_put_be64(out + 2, rec->version.hlc);
    skv_put_be64(out + 10, rec->version.origin);
    out[18] = (unsigned char) rec->content_type_len;
    if (rec->content_type_len > 0) {
        memcpy(out + SKV_RECORD_FIXED_HEADER, rec->content_type,
               rec->content_type_len);
    }
    *written = size;
    return SKV_OK;
}

skv_status_t
skv_record_decode(const void *buf, size_t len, skv_record_t *out)
{
    const unsigned char *p = buf;
    size_t               ctype_len;

    if (len < SKV_RECORD_FIXED_HEADER) {
        return SKV_ERR_RECORD_TRUNCATED;
    }
    if (p[0] != SKV_RECORD_FORMAT || (p[1] & ~SKV_RECORD_TOMBSTONE) != 0) {
        return SKV_ERR_RECORD_CORRUPT;
    }
    ctype_len = p[18];
    if (len - SKV_RECORD_FIXED_HEADER < ctype_len) {
        return SKV_ERR_RECORD_TRUNCATED;
    }

    out->flags = p[1];
    out->version.hlc = skv_get_be64(p + 2);
    out->version.origin = skv_get_be64(p + 10);
    out->content_type = (const char *) p + SKV_RECORD_FIXED_HEADER;
    out->content_type_len = ctype_len;
    out->value = p + SKV_RECORD_FIXED_HEADER + ctype_len;
    out->value_len = len - SKV_RECORD_FIXED_HEADER - ctype_len;

    /* A tombstone with a value, or a zero version, was never written by
     * this code: the record is damaged. */
    if ((out->flags & SKV_RECORD_TOMBSTONE) && out->value_len != 0) {
        return SKV_ERR_RECORD_CORRUPT;
    }
    if (skv_version_is_zero(&out->version)) {
        return SKV_ERR_RECORD_CORRUPT;
    }
    return SKV_OK;
}
