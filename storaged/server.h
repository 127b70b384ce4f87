/*
 * server.h - state shared by the files of storaged's HTTP layer (http.c,
 * reply.c, kv.c, endpoints.c, control.c, epochs.c, lease.c); nothing
 * outside them includes it.
 *
 * http_server_t is the daemon (one per process); request_t is one request,
 * allocated when libmicrohttpd has its request line and freed when the
 * request completes.
 */
#ifndef STORAGED_SERVER_H
#define STORAGED_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "headguard.h"
#include "http.h"
#include "lease.h"
#include "parse.h"
#include "skv_key.h"
#include "skv_version.h"
#include "store.h"

#define HDR_VERSION    "X-Simplekv-Version"
#define HDR_TOMBSTONE  "X-Simplekv-Tombstone"
#define HDR_HELD       "X-Simplekv-Held"
#define HDR_EPOCH      "X-Simplekv-Epoch"
#define HDR_EPOCHS     "X-Simplekv-Epochs"
#define HDR_NAMESPACE  "X-Simplekv-Namespace"
#define HDR_IF_VERSION "X-Simplekv-If-Version"
#define HDR_REPR_DIGEST    "Repr-Digest"
#define HDR_CONTENT_DIGEST "Content-Digest"
/* A body nobody wants (or past the limit) is dropped up to this much
 * before the connection is closed. */
#define DISCARD_MIN    ((size_t) 1 << 20)

struct http_server {
    struct MHD_Daemon       *mhd;
    const storaged_config_t *cfg;
    store_t                 *store;
    stats_t                 *stats;
    /* "Bearer <token>", one per --token-file; none: no authentication */
    char                    *auth_expected[STORAGED_MAX_TOKENS];
    size_t                   auth_len[STORAGED_MAX_TOKENS];
    unsigned                 n_auth;
    unsigned                 max_connections; /* after the fd limit */
    atomic_bool              stopping;
    atomic_int               inflight;
    lease_t                  lease;          /* /v1/lease (lease.c) */
    headguard_t             *guard;          /* headguard.h, or NULL */
};

/* The method, for ROUTE_KV and the control routes (control.c). */
typedef enum {
    KV_GET,       /* GET or HEAD */
    KV_PUT,
    KV_DELETE,
    KV_REMOVE     /* DELETE /v1/kv/<key>?remove&if-version=<version> */
} kv_op_t;

/* Per-request state, freed by request_completed() in http.c. */
typedef struct {
    bool           started;    /* the first handler call has run */
    bool           answered;   /* a response is queued; ignore the rest */
    route_t        route;
    bool           head;       /* a HEAD request */
    kv_op_t        op;         /* for ROUTE_KV and the control routes */
    unsigned       version_headers;  /* X-Simplekv-Version lines seen */
    unsigned       epoch_headers;    /* X-Simplekv-Epoch lines seen */
    char          *query;      /* raw query string, or NULL */
    bool           control_put;      /* a control PUT: its body is JSON */

    /* The namespace of a kv request or a listing (http.c sets it from the
     * path: "default" for /v1/kv/ and /v1/keys), and where the key's
     * percent-encoded text starts in the path of a kv request. */
    char           space[STORE_SPACE_NAME_MAX + 1];
    size_t         space_len;
    size_t         key_offset;

    /* A kv request, validated by kv_begin() on the first call. */
    unsigned char  key[SKV_KEY_MAX];
    size_t         key_len;
    skv_version_t  version;          /* PUT and DELETE; if-version of a
                                        remove */
    bool           has_epoch;        /* X-Simplekv-Epoch was sent */
    uint64_t       epoch;
    const char    *content_type;     /* MHD-owned, valid for the request */
    size_t         content_type_len;

    /* The body of a PUT, grown as it arrives (kv_body, control_body). */
    uint64_t       declared_len;     /* Content-Length, 0 if none */
    unsigned char *body;
    size_t         body_len;
    size_t         body_cap;
    bool           too_large;  /* body passed the limit: discard, then 413 */
    /* A kv PUT's value streams into an upload (store_upload_*): a value
     * over STORE_CHUNK_SIZE is stored chunk by chunk as it arrives. */
    store_upload_t *upload;
    store_rc_t     body_rc;    /* a failure storing the body (answered at
                                  its end), or STORE_OK */
    char           body_err[STORE_ERR_MAX];
    unsigned       n_digests;  /* sha-256 digests sent with a PUT */
    unsigned char  digests[2][STORE_SHA256_LEN];
    size_t         discarded;  /* bytes dropped since it did (or of a body
                                  no handler wants) */
} request_t;

#endif
