/*
 * skv_scan.h - every node's key listing of one namespace (GET /v1/keys or
 * /v1/ns/<name>/keys, streamed, tombstones included), read side by side
 * and merged in key order.
 *
 * Each node's listing is one streaming request; its lines are buffered
 * and parsed as the merge needs them (the transfer pauses when the buffer
 * is full, so memory stays bounded whatever the number of keys).  A
 * listing that breaks or stalls is resumed after the last key received; a
 * node whose listing fails three times in a row is "unavailable": its
 * copies are unknown from there on, never taken for absent.
 */
#ifndef SKV_SCAN_H
#define SKV_SCAN_H

#include <stdint.h>

#include "skv_async.h"
#include "skv_key.h"
#include "skv_keyline.h"

typedef struct {
    const char    *base;          /* the node's "http://host:port" */
    const char    *path;          /* "/v1/keys", "/v1/ns/<name>/keys" */
    skv_loop_t    *loop;
    skv_call_t    *call;
    char          *buf;           /* received, not yet merged: [off, len) */
    size_t         off, len, cap;
    int            eof;           /* the listing ended cleanly */
    int            failed;        /* gave up: unknown from here on */
    int            attempts;      /* failures in a row */
    double         retry_at, last_data, stall_s;
    char           after[SKV_KEY_ENCODED_MAX + 1]; /* resume point */
    int            have_head;
    skv_keyline_t  head;
    uint64_t       scanned;       /* lines merged */
    uint64_t       retries;
    char           error[256];
} skv_stream_t;

/* What the merge knows of one node's copy of the current key. */
typedef enum {
    SKV_COPY_ABSENT,   /* the listing passed the key without it */
    SKV_COPY_PRESENT,  /* listed: version and tombstone in the view */
    SKV_COPY_UNKNOWN   /* the node's listing is unavailable */
} skv_copy_t;

typedef struct {
    skv_copy_t    state;
    skv_version_t version;
    int           tombstone;
} skv_view_t;

/* Start listing base + path after the encoded key `after` ("" = from
 * the start); base and path must outlive the stream. */
int skv_stream_start(skv_stream_t *s, skv_loop_t *loop, const char *base,
                     const char *path, const char *after, double stall_s);
void skv_stream_free(skv_stream_t *s);

/* Retries due and stalled listings; call often. */
void skv_stream_tick(skv_stream_t *s, double now);

/*
 * The next key of the merge over n streams into key/key_len and view[i]
 * for every stream: 1 found, 0 not yet (waiting for data), -1 every
 * listing is finished.
 */
int skv_merge_next(skv_stream_t *s, size_t n, unsigned char *key,
                   size_t *key_len, skv_view_t *view);

#endif
