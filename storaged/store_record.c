/*
 * store_record.c - the records of records.db (and ns-N.records.db):
 * format 2, written by every write since large values came (store_int.h
 * has the layout), and format 1 (core/skv_record.h), still read.
 *
 * Format 2 adds what large values need: the value's whole length, its
 * SHA-256 (every GET answers it as Repr-Digest), whether it is chunked
 * and where its chunks are (the upload id and the chunk size), and an
 * XXH3-64 checksum of the record itself, so that a damaged small value
 * (or a damaged descriptor of a large one) is refused, never served.
 * The two formats are told apart by their first byte.
 */
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "skv_bytes.h"
#include "skv_record.h"
#include "store_int.h"

static uint64_t
record_sum(const unsigned char *p, size_t len)
{
    XXH3_state_t st;

    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, p, REC_SUM_OFF);
    XXH3_64bits_update(&st, p + REC_PREFIX, len - REC_PREFIX);
    return XXH3_64bits_digest(&st);
}

size_t
store_record_size(const store_rec_t *rec)
{
    return REC_FIXED + rec->content_type_len
           + (rec->chunked ? 0 : rec->inline_len);
}

void
store_record_encode(const store_rec_t *rec, unsigned char *out)
{
    size_t len = store_record_size(rec);

    out[0] = REC_FORMAT;
    out[1] = (unsigned char) ((rec->tombstone ? REC_TOMBSTONE : 0)
                              | (rec->chunked ? REC_CHUNKED : 0));
    skv_put_be64(out + 2, rec->version.hlc);
    skv_put_be64(out + 10, rec->version.origin);
    skv_put_be64(out + 18, rec->value_len);
    if (rec->tombstone) {
        memset(out + 26, 0, STORE_SHA256_LEN);
    } else {
        memcpy(out + 26, rec->sha256, STORE_SHA256_LEN);
    }
    skv_put_be64(out + 58, rec->chunked ? rec->upload_id : 0);
    out[66] = (unsigned char) (rec->chunk_size >> 24);
    out[67] = (unsigned char) (rec->chunk_size >> 16);
    out[68] = (unsigned char) (rec->chunk_size >> 8);
    out[69] = (unsigned char) rec->chunk_size;
    out[REC_PREFIX] = (unsigned char) rec->content_type_len;
    if (rec->content_type_len > 0) {
        memcpy(out + REC_FIXED, rec->content_type, rec->content_type_len);
    }
    if (!rec->chunked && rec->inline_len > 0) {
        memcpy(out + REC_FIXED + rec->content_type_len, rec->value,
               rec->inline_len);
    }
    skv_put_be64(out + REC_SUM_OFF, record_sum(out, len));
}

static int
decode_v1(const void *buf, size_t len, store_rec_t *out, char *err)
{
    skv_record_t rec;
    skv_status_t s = skv_record_decode(buf, len, &rec);

    if (s != SKV_OK) {
        snprintf(err, STORE_ERR_MAX, "%s", skv_strerror(s));
        return -1;
    }
    out->version = rec.version;
    out->tombstone = skv_record_is_tombstone(&rec);
    out->content_type = rec.content_type;
    out->content_type_len = rec.content_type_len;
    out->value = rec.value;
    out->inline_len = rec.value_len;
    out->value_len = rec.value_len;
    return 0;
}

int
store_record_decode(const void *buf, size_t len, store_rec_t *out,
                    char *err)
{
    const unsigned char *p = buf;
    size_t               ct;

    memset(out, 0, sizeof(*out));
    if (len > 0 && p[0] == SKV_RECORD_FORMAT) {
        return decode_v1(buf, len, out, err);
    }
    if (len < REC_FIXED || p[0] != REC_FORMAT
        || (p[1] & ~(REC_TOMBSTONE | REC_CHUNKED)) != 0)
    {
        snprintf(err, STORE_ERR_MAX, "not a record of a known format");
        return -1;
    }
    if (skv_get_be64(p + REC_SUM_OFF) != record_sum(p, len)) {
        snprintf(err, STORE_ERR_MAX, "corrupt value: the record's checksum "
                 "does not match");
        return -1;
    }
    ct = p[REC_PREFIX];
    if (len - REC_FIXED < ct) {
        snprintf(err, STORE_ERR_MAX, "truncated record");
        return -1;
    }
    out->tombstone = (p[1] & REC_TOMBSTONE) != 0;
    out->chunked = (p[1] & REC_CHUNKED) != 0;
    out->has_sha256 = !out->tombstone;
    out->version.hlc = skv_get_be64(p + 2);
    out->version.origin = skv_get_be64(p + 10);
    out->value_len = skv_get_be64(p + 18);
    memcpy(out->sha256, p + 26, STORE_SHA256_LEN);
    out->upload_id = skv_get_be64(p + 58);
    out->chunk_size = (uint32_t) p[66] << 24 | (uint32_t) p[67] << 16
                      | (uint32_t) p[68] << 8 | p[69];
    out->content_type = (const char *) p + REC_FIXED;
    out->content_type_len = ct;
    out->value = p + REC_FIXED + ct;
    out->inline_len = len - REC_FIXED - ct;
    if (skv_version_is_zero(&out->version)
        || (out->tombstone && (out->chunked || out->value_len != 0
                               || out->inline_len != 0))
        || (out->chunked && (out->upload_id == 0 || out->chunk_size == 0
                             || out->inline_len != 0))
        || (!out->chunked && (out->inline_len != out->value_len
                              || out->upload_id != 0)))
    {
        snprintf(err, STORE_ERR_MAX, "corrupt record");
        return -1;
    }
    return 0;
}

void
store_record_peek(const void *buf, size_t len, skv_version_t *version,
                  uint64_t *upload_id)
{
    const unsigned char *p = buf;

    memset(version, 0, sizeof(*version));
    *upload_id = 0;
    if (len >= SKV_RECORD_FIXED_HEADER && p[0] == SKV_RECORD_FORMAT) {
        version->hlc = skv_get_be64(p + 2);
        version->origin = skv_get_be64(p + 10);
        return;
    }
    if (len < REC_PREFIX || p[0] != REC_FORMAT) {
        return;
    }
    version->hlc = skv_get_be64(p + 2);
    version->origin = skv_get_be64(p + 10);
    if (p[1] & REC_CHUNKED) {
        *upload_id = skv_get_be64(p + 58);
    }
}
