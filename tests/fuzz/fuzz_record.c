/*
 * fuzz_record.c - the stored record format (skv_record_decode,
 * skv_record_encode_header, skv_record_header_size).
 *
 * The input is a stored record, as Berkeley DB hands it to storaged (a
 * heap copy of exactly its size, so any over-read is caught).  Checked:
 *  - decode accepts exactly what skv_record.h describes (format 1, flags
 *    only the tombstone bit, the content type inside the record, no value
 *    on a tombstone, a non-zero version), and its fields point inside the
 *    input and cover it: header + value == the whole record;
 *  - encode_header of the decoded record writes the input's header bytes
 *    again, into a buffer of exactly the header size; one byte less is
 *    SKV_ERR_NOSPACE and nothing is written past it;
 *  - header + value re-encoded decode to the same record.
 */
#include <string.h>

#include "fuzz.h"
#include "skv_bytes.h"
#include "skv_record.h"

static bool
valid_record(const uint8_t *p, size_t len)
{
    size_t value_len;

    if (len < SKV_RECORD_FIXED_HEADER || p[0] != SKV_RECORD_FORMAT
        || (p[1] & ~SKV_RECORD_TOMBSTONE) != 0
        || len - SKV_RECORD_FIXED_HEADER < p[18]) {
        return false;
    }
    value_len = len - SKV_RECORD_FIXED_HEADER - p[18];
    if ((p[1] & SKV_RECORD_TOMBSTONE) && value_len != 0) {
        return false;
    }
    return skv_get_be64(p + 2) != 0 || skv_get_be64(p + 10) != 0;
}

static void
check_reencode(const uint8_t *buf, size_t len, const skv_record_t *rec)
{
    size_t          hsize, written = 0;
    unsigned char  *hdr, *whole;
    skv_record_t    again;

    hsize = skv_record_header_size(rec);
    FUZZ_CHECK(hsize == SKV_RECORD_FIXED_HEADER + rec->content_type_len);
    FUZZ_CHECK(hsize <= SKV_RECORD_HEADER_MAX);
    FUZZ_CHECK(hsize + rec->value_len == len);

    hdr = malloc(hsize);
    FUZZ_CHECK(hdr != NULL);
    FUZZ_CHECK(skv_record_encode_header(rec, hdr, hsize, &written)
               == SKV_OK);
    FUZZ_CHECK(written == hsize);
    FUZZ_CHECK(memcmp(hdr, buf, hsize) == 0);

    /* one byte short: refused, the (smaller) buffer untouched beyond */
    written = 12345;
    FUZZ_CHECK(skv_record_encode_header(rec, hdr, hsize - 1, &written)
               == SKV_ERR_NOSPACE);
    FUZZ_CHECK(written == 12345);

    /* header + value, decoded again: the same record */
    whole = malloc(len);
    FUZZ_CHECK(whole != NULL);
    memcpy(whole, hdr, hsize);
    if (rec->value_len > 0) {
        memcpy(whole + hsize, rec->value, rec->value_len);
    }
    FUZZ_CHECK(skv_record_decode(whole, len, &again) == SKV_OK);
    FUZZ_CHECK(skv_version_cmp(&again.version, &rec->version) == 0);
    FUZZ_CHECK(again.flags == rec->flags);
    FUZZ_CHECK(again.content_type_len == rec->content_type_len);
    FUZZ_CHECK(memcmp(again.content_type, rec->content_type,
                      rec->content_type_len) == 0);
    FUZZ_CHECK(again.value_len == rec->value_len);
    FUZZ_CHECK((const unsigned char *) again.value == whole + hsize);

    free(whole);
    free(hdr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char  *buf;
    skv_record_t    rec;
    skv_status_t    rc;

    buf = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(buf != NULL);
    if (size > 0) {
        memcpy(buf, data, size);
    }

    memset(&rec, 0, sizeof(rec));
    rc = skv_record_decode(buf, size, &rec);
    FUZZ_CHECK((rc == SKV_OK) == valid_record(data, size));
    FUZZ_CHECK(rc == SKV_OK || rc == SKV_ERR_RECORD_TRUNCATED
               || rc == SKV_ERR_RECORD_CORRUPT);
    if (size < SKV_RECORD_FIXED_HEADER) {
        FUZZ_CHECK(rc == SKV_ERR_RECORD_TRUNCATED);
    }

    if (rc == SKV_OK) {
        const unsigned char *ct = (const unsigned char *) rec.content_type;
        const unsigned char *val = rec.value;

        FUZZ_CHECK(ct == buf + SKV_RECORD_FIXED_HEADER);
        FUZZ_CHECK(rec.content_type_len == data[18]);
        FUZZ_CHECK(val == ct + rec.content_type_len);
        FUZZ_CHECK(val + rec.value_len == buf + size);
        FUZZ_CHECK(rec.flags == data[1]);
        FUZZ_CHECK(skv_record_is_tombstone(&rec) == (data[1] == 1));
        FUZZ_CHECK(!skv_record_is_tombstone(&rec) || rec.value_len == 0);
        FUZZ_CHECK(rec.version.hlc == skv_get_be64(data + 2));
        FUZZ_CHECK(rec.version.origin == skv_get_be64(data + 10));
        FUZZ_CHECK(!skv_version_is_zero(&rec.version));
        check_reencode(buf, size, &rec);
    }

    /* any content type over the limit is refused before anything is
     * written */
    rec.content_type_len = SKV_CONTENT_TYPE_MAX + 1 + (size & 0xff);
    rec.content_type = (const char *) buf;
    FUZZ_CHECK(skv_record_encode_header(&rec, NULL, 0, NULL)
               == SKV_ERR_CONTENT_TYPE);

    free(buf);
    return 0;
}
