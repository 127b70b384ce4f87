/*
 * parse.h - the parts of a request storaged validates before it touches
 * the store, as plain functions of text (no libmicrohttpd, no store):
 * the route and namespace of a path, the X-Simplekv-Epoch header, the
 * sha-256 member of Content-Digest / Repr-Digest, a Range header, and a
 * listing's prefix, after and limit arguments.  http.c, kv.c, epochs.c and
 * endpoints.c answer with them; tests/fuzz/fuzz_storaged.c fuzzes them.
 */
#ifndef STORAGED_PARSE_H
#define STORAGED_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skv_key.h"
#include "store.h"

typedef enum {
    ROUTE_KV,
    ROUTE_KEYS,
    ROUTE_HEALTH,
    ROUTE_STATS,
    ROUTE_EPOCHS,   /* /v1/epochs (epochs.c) */
    ROUTE_REPAIR,   /* /v1/repair-watermark (epochs.c) */
    ROUTE_LEASE,    /* /v1/lease (lease.c) */
    ROUTE_NAMESPACES, /* /v1/namespaces (endpoints.c) */
    ROUTE_BAD_NAMESPACE, /* /v1/ns/<not a name>/kv/... or .../keys */
    ROUTE_UNKNOWN
} route_t;

#define KV_PREFIX      "/v1/kv/"
#define KV_PREFIX_LEN  (sizeof(KV_PREFIX) - 1)
#define NS_PREFIX      "/v1/ns/"    /* /v1/ns/<name>/kv/<key>, .../keys */
#define NS_PREFIX_LEN  (sizeof(NS_PREFIX) - 1)

/*
 * The route of a path (without its query).  For ROUTE_KV and ROUTE_KEYS
 * space (STORE_SPACE_NAME_MAX + 1 bytes) holds the namespace, NUL-ended
 * ("default" for /v1/kv/ and /v1/keys), and for ROUTE_KV *key_offset is
 * where the key's percent-encoded text starts in url.  Otherwise space is
 * "default" and *key_offset untouched.
 */
route_t parse_route(const char *url, char *space, size_t *space_len,
                    size_t *key_offset);

/* X-Simplekv-Epoch: decimal digits only, 0 .. 2^64-1; 0 or -1. */
int parse_epoch(const char *text, uint64_t *out);

/*
 * The sha-256 member of a Content-Digest or Repr-Digest field (RFC 9530:
 * a structured dictionary, e.g. "sha-256=:<base64>:, sha-512=:...:"):
 * 1 with out filled, 0 when it has none (other algorithms are ignored),
 * -1 when malformed.
 */
int parse_digest(const char *field, unsigned char out[STORE_SHA256_LEN]);

/*
 * A Range header (RFC 9110, 14.1.2) against a value of total bytes:
 * 1 with [*start, *start + *len) for one satisfiable byte range (within
 * the value, *len >= 1); -1 when unsatisfiable (416); 0 to ignore it and
 * answer the whole value (another unit, a malformed header, or several
 * ranges: see docs/protocol.md).
 */
int parse_range(const char *h, uint64_t total, uint64_t *start,
                uint64_t *len);

/* A listing's prefix or after argument of the raw query (NULL: none):
 * the key encoding, where absent or empty is the empty key. */
skv_status_t parse_key_arg(const char *query, const char *name,
                           unsigned char out[SKV_KEY_MAX], size_t *out_len);

/* A listing's limit: absent (0) or a positive integer; -1 when
 * malformed. */
int parse_limit(const char *query, uint64_t *limit);

#endif
