/*
 * skv_record.h - the stored record format (one Berkeley DB data item).
 *
 *   offset  size  field
 *   0       1     format, SKV_RECORD_FORMAT (1)
 *   1       1     flags: bit 0 = tombstone; other bits must be zero
 *   2       8     version hlc, big-endian
 *   10      8     version origin, big-endian
 *   18      1     content type length L (0..255)
 *   19      L     content type bytes
 *   19+L    ...   the value (empty for a tombstone)
 *
 * Decoding checks every bound: a truncated or corrupt record is an error,
 * never a crash or an over-read.
 */
#ifndef SKV_RECORD_H
#define SKV_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "skv_status.h"
#include "skv_version.h"

#define SKV_RECORD_FORMAT 1
#define SKV_RECORD_FIXED_HEADER 19
#define SKV_CONTENT_TYPE_MAX 255
#define SKV_RECORD_HEADER_MAX (SKV_RECORD_FIXED_HEADER + SKV_CONTENT_TYPE_MAX)
#define SKV_RECORD_TOMBSTONE 0x01u

typedef struct {
    skv_version_t version;
    unsigned      flags;
    const char   *content_type; /* not NUL-terminated */
    size_t        content_type_len;
    const void   *value;
    size_t        value_len;
} skv_record_t;

static inline bool
skv_record_is_tombstone(const skv_record_t *rec)
{
    return (rec->flags & SKV_RECORD_TOMBSTONE) != 0;
}

/* Size of the header (everything before the value) for this record. */
size_t skv_record_header_size(const skv_record_t *rec);

/*
 * Write the header (not the value) into out; *written = header size.
 * SKV_ERR_CONTENT_TYPE if the content type is too long, SKV_ERR_NOSPACE if
 * cap is too small.  The caller appends the value right after.
 */
skv_status_t skv_record_encode_header(const skv_record_t *rec,
                                      unsigned char *out, size_t cap,
                                      size_t *written);

/* Parse a stored record; pointers in *out point into buf. */
skv_status_t skv_record_decode(const void *buf, size_t len,
                               skv_record_t *out);

#endif
