/*
 * kv.c - GET/HEAD, PUT and DELETE of /v1/kv/<key> (and of
 * /v1/ns/<name>/kv/<key>: the same in namespace <name>), and DELETE
 * ?remove (see kv.h).
 *
 * The namespace is resolved when the request runs: a GET, HEAD or
 * DELETE ?remove in a namespace this node never held finds nothing
 * (404) and creates nothing; a PUT or DELETE creates it (store_space).
 *
 * Validation happens once, in kv_begin, on the first handler call: a
 * request refused there is answered before its body is read.  A version
 * must be well formed, sent once, and not more than --max-clock-skew ahead
 * of this node's clock: a version far in the future would outrank every
 * later write of its key forever.
 *
 * The epoch fence (epochs.c, store_meta.c): X-Simplekv-Epoch is checked
 * against the window on the first call (so a refused PUT's body is never
 * read) and again when the request runs, holding the fence until its
 * answer is queued.
 *
 * A PUT's value streams into an upload (store_upload_*, store_chunks.c):
 * up to STORE_CHUNK_SIZE (256 KiB) it is buffered, growing geometrically
 * up to the declared Content-Length, and stored as one record; past that
 * it is stored chunk by chunk as it arrives (the namespace is resolved,
 * and created, when the first chunk is due), with one chunk in memory.
 * Its SHA-256 is computed on the way and checked at the end against a
 * Content-Digest or Repr-Digest the PUT carries (RFC 9530).  Failures
 * while the body arrives are answered at its end (MHD 0.9.75 cannot
 * answer mid-body).
 *
 * A GET of a large value streams it chunk by chunk (MHD's content
 * reader), from the version current when it began: the chunks stay
 * registered as in use until the response is destroyed, so the collector
 * keeps them even if the key is overwritten meanwhile.  Every 200/206
 * carries Repr-Digest; Range (one byte range), If-Range (the version,
 * quoted) and X-Simplekv-If-Version are answered here.  A damaged value
 * (a record or a chunk failing its checksum) is quarantined: this node's
 * copy is dropped (store_quarantine), so that it is then a node lacking
 * the key, which read repair fixes.  Found before the headers (a small
 * value, the first chunk of the range), the GET then answers as that
 * node (404, or 412 to X-Simplekv-If-Version); found mid-stream, the
 * connection is closed short of the length.  Only a copy that could not
 * be dropped is a 500 "corrupt value".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "epochs.h"
#include "kv.h"
#include "query.h"
#include "reply.h"
#include "skv_record.h"

#define ALLOW_KV       "GET, HEAD, PUT, DELETE"
#define DEFAULT_CT     "application/octet-stream"
#define BODY_MIN_CAP   ((size_t) 16 * 1024)

/* ---- validation (first call) -------------------------------------------- */

static enum MHD_Result
key_error(http_server_t *srv, struct MHD_Connection *c, request_t *req,
          skv_status_t s)
{
    if (s == SKV_ERR_KEY_TOO_LONG) {
        return reply_error(srv, c, req, MHD_HTTP_URI_TOO_LONG,
                           "key too long",
                           "keys are at most 1024 bytes after "
                           "percent-decoding");
    }
    return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad key",
                       skv_strerror(s));
}

enum MHD_Result
kv_check_future(http_server_t *srv, struct MHD_Connection *c,
                request_t *req, const skv_version_t *v)
{
    uint64_t now, ahead;
    char     detail[192];

    now = skv_clock_now_ms();
    if (srv->cfg->max_clock_skew_ms == 0
        || !skv_version_too_far_ahead(v, now, srv->cfg->max_clock_skew_ms))
    {
        return MHD_YES;
    }
    ahead = skv_version_ms(v) - now;
    snprintf(detail, sizeof(detail),
             "the version's time is %" PRIu64 ".%03u s ahead of this "
             "node's clock; at most %" PRIu64 ".%03u s is accepted "
             "(--max-clock-skew)", ahead / 1000, (unsigned) (ahead % 1000),
             srv->cfg->max_clock_skew_ms / 1000,
             (unsigned) (srv->cfg->max_clock_skew_ms % 1000));
    return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                       "version from the future", detail);
}

static enum MHD_Result
check_version(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    const char *v;

    if (req->version_headers > 1) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad version",
                           "more than one X-Simplekv-Version header");
    }
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, HDR_VERSION);
    if (v == NULL || skv_version_parse(v, strlen(v), &req->version)
                     != SKV_OK)
    {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad version",
                           "X-Simplekv-Version must be 32 lowercase hex "
                           "digits, not all zero");
    }
    return kv_check_future(srv, c, req, &req->version);
}

/*
 * The query of a kv request: only a DELETE may carry `remove` (no value)
 * with one `if-version` (the version to remove); it then becomes a
 * KV_REMOVE.  Other arguments are ignored, as they always were.
 */
static enum MHD_Result
check_remove(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    const char *v;
    size_t      len;
    unsigned    removes = query_count(req->query, "remove");
    unsigned    ifs = query_count(req->query, "if-version");

    if (removes == 0 && ifs == 0) {
        return MHD_YES;
    }
    if (req->op != KV_DELETE || removes != 1 || ifs != 1
        || !query_get(req->query, "remove", &v, &len) || len != 0)
    {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad request",
                           "'remove' (without a value) and one 'if-version' "
                           "go together, on DELETE only");
    }
    query_get(req->query, "if-version", &v, &len);
    if (skv_version_parse(v, len, &req->version) != SKV_OK) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                           "bad if-version",
                           "if-version must be 32 lowercase hex digits, "
                           "not all zero");
    }
    req->op = KV_REMOVE;
    return MHD_YES;
}

/* Refuse a PUT outside the window before its body is read (kv_finish
 * checks again, holding the fence).  Other requests are refused only
 * there: an answer on the first call makes libmicrohttpd close the
 * connection, and a router's keepalive connection is worth keeping. */
static enum MHD_Result
check_fence(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_epochs_t window;

    if (req->op != KV_PUT) {
        return MHD_YES;
    }
    if (!store_fence_enter(srv->store, req->has_epoch, req->epoch,
                           &window))
    {
        return epoch_refused(srv, c, req, &window);
    }
    store_fence_exit(srv->store);
    return MHD_YES;
}

/* The sha-256 digests a PUT carries (Content-Digest, Repr-Digest). */
static enum MHD_Result
check_digests(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    static const char *const names[] = {HDR_CONTENT_DIGEST,
                                        HDR_REPR_DIGEST};
    const char *v;
    unsigned    i;
    int         r;

    for (i = 0; i < 2; i++) {
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, names[i]);
        if (v == NULL) {
            continue;
        }
        r = parse_digest(v, req->digests[req->n_digests]);
        if (r < 0) {
            return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                               "bad digest",
                               "a sha-256 digest is 'sha-256=:<base64 of "
                               "32 bytes>:' (RFC 9530)");
        }
        req->n_digests += (unsigned) r;
    }
    return MHD_YES;
}

/* A PUT's headers: content type, the declared length, digests. */
static enum MHD_Result
check_put_headers(http_server_t *srv, struct MHD_Connection *c,
                  request_t *req)
{
    const char *cl, *ct;
    char        detail[160];

    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct != NULL) {
        req->content_type = ct;
        req->content_type_len = strlen(ct);
        if (req->content_type_len > SKV_CONTENT_TYPE_MAX) {
            return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                               "bad content type",
                               "Content-Type is longer than 255 bytes");
        }
    }
    /* libmicrohttpd has already refused a malformed Content-Length. */
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        req->declared_len = strtoull(cl, NULL, 10);
    }
    if (req->declared_len > srv->cfg->max_value_size) {
        snprintf(detail, sizeof(detail),
                 "the value is %" PRIu64 " bytes; the limit is %" PRIu64
                 " bytes (--max-value-size)",
                 req->declared_len, srv->cfg->max_value_size);
        return reply_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                           "value too large", detail);
    }
    return check_digests(srv, c, req);
}

enum MHD_Result
kv_begin(http_server_t *srv, struct MHD_Connection *c, request_t *req,
         const char *url, const char *method)
{
    skv_status_t    s;
    enum MHD_Result ret;

    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0
        || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
    {
        req->op = KV_GET;
    } else if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0) {
        req->op = KV_PUT;
    } else if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0) {
        req->op = KV_DELETE;
    } else {
        return reply_not_allowed(srv, c, req, method, ALLOW_KV);
    }
    s = skv_key_decode(url + req->key_offset, strlen(url + req->key_offset),
                       req->key, &req->key_len);
    if (s != SKV_OK) {
        return key_error(srv, c, req, s);
    }
    ret = epoch_header(srv, c, req);
    if (ret == MHD_YES && !req->answered) {
        ret = check_remove(srv, c, req);
    }
    if (ret == MHD_YES && !req->answered) {
        ret = check_fence(srv, c, req);
    }
    if (ret != MHD_YES || req->answered || req->op == KV_GET
        || req->op == KV_REMOVE)
    {
        return ret;
    }
    ret = check_version(srv, c, req);
    if (ret != MHD_YES || req->answered) {
        return ret;
    }
    return req->op == KV_PUT ? check_put_headers(srv, c, req) : MHD_YES;
}

/* ---- the body of a PUT -------------------------------------------------- */

static store_rc_t find_space(http_server_t *srv, request_t *req, bool create,
                             store_space_t **sp, char *err);

/* A failure storing the body: kept for the answer at its end (MHD 0.9.75
 * cannot answer mid-body), the upload dropped, the rest discarded. */
static void
body_failed(http_server_t *srv, request_t *req, store_rc_t rc)
{
    req->body_rc = rc;
    store_upload_end(srv->store, req->upload);
    req->upload = NULL;
}

enum MHD_Result
kv_body(http_server_t *srv, request_t *req, const char *data, size_t size)
{
    store_space_t *sp;
    uint64_t       have;
    store_rc_t     rc;

    if (req->too_large || req->body_rc != STORE_OK) {
        /* MHD 0.9.75 refuses a response queued while a body is still
         * arriving, so an oversized chunked body is read and dropped and
         * the 413 goes out at its end.  Dropping is bounded: past as much
         * again as the limit (at least 1 MiB), the connection is closed. */
        req->discarded += size;
        if (req->discarded > srv->cfg->max_value_size
            && req->discarded > DISCARD_MIN)
        {
            http_log_error(srv, "closing a connection whose chunked value "
                                "passed the limit by %zu bytes",
                           req->discarded);
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (req->upload == NULL) {
        req->upload = store_upload_begin(srv->store, req->declared_len);
        if (req->upload == NULL) {
            http_log_error(srv, "out of memory for an upload");
            return MHD_NO;
        }
    }
    have = store_upload_length(req->upload);
    if (size > srv->cfg->max_value_size - have) {
        req->too_large = true;
        req->discarded = size;
        store_upload_end(srv->store, req->upload);
        req->upload = NULL;
        return MHD_YES;
    }
    if (have + size > STORE_CHUNK_SIZE
        && !store_upload_has_space(req->upload))
    {
        /* A large value: its chunks go to its namespace's chunk database
         * from now on (created with its first write, as by any write). */
        rc = find_space(srv, req, true, &sp, req->body_err);
        if (rc != STORE_OK) {
            body_failed(srv, req, rc);
            return MHD_YES;
        }
        store_upload_space(req->upload, sp);
    }
    rc = store_upload_write(srv->store, req->upload, data, size,
                            req->body_err);
    if (rc != STORE_OK) {
        body_failed(srv, req, rc);
    }
    return MHD_YES;
}

/* ---- execution (last call) ---------------------------------------------- */

static void
free_item_buffer(void *buf)
{
    free(buf);
}

/*
 * The request's namespace: STORE_OK with *sp, which is NULL for a read
 * (create false) of a namespace this node never held; or a failure to
 * answer (creating it, or the name: http.c has checked it already).
 */
static store_rc_t
find_space(http_server_t *srv, request_t *req, bool create,
           store_space_t **sp, char *err)
{
    store_rc_t rc = store_space(srv->store, req->space, req->space_len,
                                create, sp, err);

    return rc == STORE_NOT_FOUND && !create ? STORE_OK : rc;
}

/* ---- GET and HEAD ------------------------------------------------------- */

/* A chunked value streaming out (MHD's content reader). */
typedef struct {
    http_server_t  *srv;
    store_reader_t *rd;          /* NULL for a HEAD */
    uint64_t        start;       /* offset in the value of the body's 0 */
    uint32_t        chunk_size;
    bool            have;        /* chunk cur is in data/len */
    uint64_t        cur;
    const unsigned char *data;
    size_t          len;
    char            what[64];    /* for the log */
    store_space_t  *sp;          /* for a quarantine: the key, version */
    skv_version_t   version;
    size_t          key_len;
    unsigned char   key[];
} stream_t;

/*
 * A copy found damaged on reading is quarantined (store_quarantine): this
 * node drops it, so that it answers as a node lacking the key and the
 * router's read repair (or `skv repair`) writes a good copy back.  damaged
 * is the chunked value's version, NULL for a damaged record.  True when
 * it was dropped, or replaced meanwhile by a write: read the key again.
 */
static bool
quarantine(http_server_t *srv, store_space_t *sp, const unsigned char *key,
           size_t key_len, const skv_version_t *damaged, const char *why)
{
    store_rc_t rc;
    char       err[STORE_ERR_MAX];
    char       vtext[SKV_VERSION_TEXT_LEN + 1];

    if (damaged != NULL) {
        skv_version_format(damaged, vtext);
    } else {
        strcpy(vtext, "(unreadable)");
    }
    rc = store_quarantine(srv->store, sp, key, key_len, damaged, err);
    if (rc == STORE_APPLIED) {
        http_log_error(srv, "corrupt value of a %zu-byte key, version %s: "
                       "%s: quarantined (this node's copy dropped, to be "
                       "repaired)", key_len, vtext, why);
        return true;
    }
    http_log_error(srv, "corrupt value of a %zu-byte key, version %s: %s: "
                   "not quarantined: %s", key_len, vtext, why, err);
    /* Gone or replaced meanwhile: the next read finds what is there now.
     * Kept (STORE_ERR_CORRUPT), or a database error: a 500. */
    return rc == STORE_NOT_FOUND || rc == STORE_CONFLICT;
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t   *s = cls;
    uint64_t    at = s->start + pos;
    uint64_t    n = at / s->chunk_size;
    size_t      off, k;
    store_rc_t  rc;
    char        err[STORE_ERR_MAX];

    if (s->rd == NULL) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (!s->have || s->cur != n) {
        rc = store_reader_chunk(s->srv->store, s->rd, n, &s->data, &s->len,
                                err);
        if (rc != STORE_OK) {
            /* Headers are out: closing the connection is the only way to
             * tell the client (it sees a short body). */
            s->have = false;
            http_log_error(s->srv, "GET of %s: %s: closing the connection",
                           s->what, err);
            if (rc == STORE_ERR_CORRUPT && s->sp != NULL) {
                (void) quarantine(s->srv, s->sp, s->key, s->key_len,
                                  &s->version, err);
                s->sp = NULL;       /* once */
            }
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        s->have = true;
        s->cur = n;
    }
    off = (size_t) (at - n * s->chunk_size);
    if (off >= s->len) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    k = s->len - off < max ? s->len - off : max;
    memcpy(buf, s->data + off, k);
    return (ssize_t) k;
}

static void
stream_free(void *cls)
{
    stream_t *s = cls;

    store_reader_close(s->srv->store, s->rd);
    free(s);
}

static enum MHD_Result
corrupt_value(http_server_t *srv, struct MHD_Connection *c, request_t *req,
              const char *err)
{
    http_log_error(srv, "GET of a %zu-byte key: %s", req->key_len, err);
    return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                       "corrupt value", err);
}

/* X-Simplekv-If-Version: 0 when absent, 1 with *v, -1 when malformed. */
static int
if_version(struct MHD_Connection *c, skv_version_t *v)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                HDR_IF_VERSION);

    if (h == NULL) {
        return 0;
    }
    return skv_version_parse(h, strlen(h), v) == SKV_OK ? 1 : -1;
}

static enum MHD_Result
precondition_failed(http_server_t *srv, struct MHD_Connection *c,
                    request_t *req, const store_item_t *item, bool found)
{
    struct MHD_Response *resp;
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];

    resp = reply_json(json_pack("{s:s, s:s}", "error", "precondition failed",
                                "detail", found
                                ? "the key holds another version than "
                                  "X-Simplekv-If-Version"
                                : "the key holds no version here"));
    if (resp != NULL && found) {
        skv_version_format(&item->version, vtext);
        MHD_add_response_header(resp, HDR_VERSION, vtext);
        if (item->tombstone) {
            MHD_add_response_header(resp, HDR_TOMBSTONE, "1");
        }
    }
    return reply_send(srv, c, req, MHD_HTTP_PRECONDITION_FAILED, resp);
}

/* The body of a 200/206: a slice of a small value, or a chunked value
 * streamed (whose first chunk is read here, so that a damaged one is a
 * 500 before any header).  NULL with *rc set on failure. */
static struct MHD_Response *
value_response(http_server_t *srv, request_t *req, store_space_t *sp,
               store_item_t *item, uint64_t start, uint64_t len,
               store_rc_t *rc, char *err)
{
    struct MHD_Response *resp;
    stream_t            *s;
    const unsigned char *data;
    size_t               dlen;

    *rc = STORE_OK;
    if (!item->chunked) {
        /* The response body points into the buffer read from the
         * database; MHD frees that buffer when the response is
         * destroyed. */
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            (size_t) len, (char *) item->value + start, free_item_buffer,
            item->buf);
        if (resp != NULL) {
            item->buf = NULL;
        }
        return resp;
    }
    s = calloc(1, sizeof(*s) + req->key_len);
    if (s == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        *rc = STORE_ERR_DB;
        return NULL;
    }
    s->srv = srv;
    s->start = start;
    s->chunk_size = item->chunk_size;
    s->sp = sp;
    s->version = item->version;
    s->key_len = req->key_len;
    memcpy(s->key, req->key, req->key_len);
    snprintf(s->what, sizeof(s->what), "a %zu-byte key", req->key_len);
    if (!req->head && len > 0) {
        *rc = store_reader_open(srv->store, sp, req->key, req->key_len, item,
                                &s->rd, err);
        if (*rc == STORE_OK) {
            *rc = store_reader_chunk(srv->store, s->rd,
                                     start / item->chunk_size, &data, &dlen,
                                     err);
            s->have = *rc == STORE_OK;
            s->cur = start / item->chunk_size;
            s->data = data;
            s->len = dlen;
        }
        if (*rc != STORE_OK) {
            stream_free(s);
            return NULL;
        }
    }
    resp = MHD_create_response_from_callback(len, 64 * 1024, stream_read, s,
                                             stream_free);
    if (resp == NULL) {
        stream_free(s);
        snprintf(err, STORE_ERR_MAX, "out of memory");
        *rc = STORE_ERR_DB;
    }
    return resp;
}

static enum MHD_Result
do_get(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_space_t       *sp;
    struct MHD_Response *resp;
    store_item_t         item;
    store_rc_t           rc;
    skv_version_t        want;
    const char          *range, *ifr;
    uint64_t             start = 0, len = 0, total = 0;
    unsigned             attempt, status = MHD_HTTP_OK;
    unsigned char        sha[STORE_SHA256_LEN];
    unsigned char        b64[48];
    int                  has_want, r = 0;
    char                 err[STORE_ERR_MAX];
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];
    char                 etag[SKV_VERSION_TEXT_LEN + 3];
    char                 ct[SKV_CONTENT_TYPE_MAX + 1];
    char                 hdr[160];

    has_want = if_version(c, &want);
    if (has_want < 0) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                           "bad if-version",
                           "X-Simplekv-If-Version must be 32 lowercase hex "
                           "digits, not all zero");
    }
    rc = find_space(srv, req, false, &sp, err);
    for (attempt = 0;; attempt++) {
        if (rc == STORE_OK) {
            rc = store_get(srv->store, sp, req->key, req->key_len, &item,
                           err);
        }
        if (rc == STORE_NOT_FOUND && has_want) {
            return precondition_failed(srv, c, req, &item, false);
        }
        if (rc == STORE_ERR_CORRUPT) {
            /* Dropped: read again, to answer as a node without it. */
            if (attempt < 5
                && quarantine(srv, sp, req->key, req->key_len, NULL, err))
            {
                rc = STORE_OK;
                continue;
            }
            return corrupt_value(srv, c, req, err);
        }
        if (rc != STORE_OK) {
            return reply_store_result(srv, c, req, "GET", rc, false, NULL,
                                      NULL, err);
        }
        if (has_want && skv_version_cmp(&item.version, &want) != 0) {
            enum MHD_Result ret = precondition_failed(srv, c, req, &item,
                                                      true);

            store_item_free(&item);
            return ret;
        }
        skv_version_format(&item.version, vtext);
        if (item.tombstone) {
            store_item_free(&item);
            resp = reply_json(json_pack("{s:s, s:s}", "error", "not found",
                                        "detail", "the key was deleted"));
            if (resp != NULL) {
                MHD_add_response_header(resp, HDR_VERSION, vtext);
                MHD_add_response_header(resp, HDR_TOMBSTONE, "1");
            }
            return reply_send(srv, c, req, MHD_HTTP_NOT_FOUND, resp);
        }

        /* Range, unless If-Range names another version. */
        total = item.value_len;
        len = item.value_len;
        start = 0;
        status = MHD_HTTP_OK;
        range = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_RANGE);
        ifr = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                          MHD_HTTP_HEADER_IF_RANGE);
        snprintf(etag, sizeof(etag), "\"%s\"", vtext);
        r = 0;
        if (range != NULL && (ifr == NULL || strcmp(ifr, etag) == 0)) {
            r = parse_range(range, item.value_len, &start, &len);
        }
        if (r < 0) {
            resp = reply_json(json_pack("{s:s, s:s}", "error",
                                        "range not satisfiable", "detail",
                                        "the range is outside the value"));
            if (resp != NULL) {
                snprintf(hdr, sizeof(hdr), "bytes */%zu", item.value_len);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE,
                                        hdr);
                MHD_add_response_header(resp, HDR_VERSION, vtext);
            }
            store_item_free(&item);
            return reply_send(srv, c, req, MHD_HTTP_RANGE_NOT_SATISFIABLE,
                              resp);
        }
        if (r > 0) {
            status = MHD_HTTP_PARTIAL_CONTENT;
        }
        if (item.content_type_len > 0) {
            memcpy(ct, item.content_type, item.content_type_len);
            ct[item.content_type_len] = '\0';
        } else {
            strcpy(ct, DEFAULT_CT);
        }
        if (item.has_sha256) {
            memcpy(sha, item.sha256, sizeof(sha));
        } else {
            store_sha256(item.value, item.value_len, sha);  /* format 1 */
        }
        resp = value_response(srv, req, sp, &item, start, len, &rc, err);
        store_item_free(&item);
        if (rc == STORE_CONFLICT && attempt < 5) {
            rc = STORE_OK;      /* overwritten meanwhile: read it again */
            continue;
        }
        if (rc == STORE_ERR_CORRUPT && attempt < 5
            && quarantine(srv, sp, req->key, req->key_len, &item.version,
                          err))
        {
            rc = STORE_OK;      /* dropped: answer as a node without it */
            continue;
        }
        break;
    }
    if (rc == STORE_CONFLICT) {
        rc = STORE_ERR_DB;      /* overwritten under every read: give up */
    }
    if (resp == NULL && rc == STORE_ERR_CORRUPT) {
        return corrupt_value(srv, c, req, err);
    }
    if (resp == NULL && rc != STORE_OK) {
        return reply_store_result(srv, c, req, "GET", rc, false, NULL, NULL,
                                  err);
    }
    if (resp == NULL) {
        return reply_send(srv, c, req, 500, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
    MHD_add_response_header(resp, HDR_VERSION, vtext);
    EVP_EncodeBlock(b64, sha, (int) sizeof(sha));
    snprintf(hdr, sizeof(hdr), "sha-256=:%s:", (const char *) b64);
    MHD_add_response_header(resp, HDR_REPR_DIGEST, hdr);
    if (status == MHD_HTTP_PARTIAL_CONTENT) {
        snprintf(hdr, sizeof(hdr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 start, start + len - 1, total);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, hdr);
    }
    return reply_send(srv, c, req, status, resp);
}

/* ---- PUT ---------------------------------------------------------------- */

static enum MHD_Result
do_put(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_space_t *sp;
    skv_version_t current;
    store_held_t  held = STORE_HELD_UNKNOWN;
    store_rc_t    rc;
    unsigned char sha[STORE_SHA256_LEN];
    unsigned      i;
    char          err[STORE_ERR_MAX];
    char          detail[160];

    if (req->too_large) {
        snprintf(detail, sizeof(detail),
                 "the value is over the limit of %" PRIu64 " bytes "
                 "(--max-value-size)", srv->cfg->max_value_size);
        return reply_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                           "value too large", detail);
    }
    if (req->body_rc != STORE_OK) {
        return reply_store_result(srv, c, req, "PUT", req->body_rc, false,
                                  NULL, NULL, req->body_err);
    }
    if (req->upload == NULL) {
        req->upload = store_upload_begin(srv->store, 0);    /* empty */
        if (req->upload == NULL) {
            return reply_send(srv, c, req, 500, NULL);
        }
    }
    store_upload_sha256(req->upload, sha);
    for (i = 0; i < req->n_digests; i++) {
        if (memcmp(sha, req->digests[i], sizeof(sha)) != 0) {
            return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                               "digest mismatch",
                               "the value's SHA-256 is not the one its "
                               "Content-Digest or Repr-Digest names; "
                               "nothing was stored");
        }
    }
    rc = find_space(srv, req, true, &sp, err);
    if (rc == STORE_OK) {
        rc = store_upload_commit(srv->store, sp, req->upload, req->key,
                                 req->key_len, &req->version,
                                 req->content_type, req->content_type_len,
                                 &current, &held, err);
    }
    return reply_store_result(srv, c, req, "PUT", rc, false, &current, &held,
                              err);
}

static enum MHD_Result
do_delete(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_space_t *sp;
    skv_version_t current;
    store_held_t  held = STORE_HELD_UNKNOWN;
    store_rc_t    rc;
    char          err[STORE_ERR_MAX];

    rc = find_space(srv, req, true, &sp, err);
    if (rc == STORE_OK) {
        rc = store_delete_if_newer(srv->store, sp, req->key, req->key_len,
                                   &req->version, &current, &held, err);
    }
    return reply_store_result(srv, c, req, "DELETE", rc, true, &current,
                              &held, err);
}

/* DELETE ?remove&if-version: drop this node's copy, no tombstone. */
static enum MHD_Result
do_remove(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_space_t       *sp;
    struct MHD_Response *resp;
    skv_version_t        current;
    store_rc_t           rc;
    char                 err[STORE_ERR_MAX];
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];

    rc = find_space(srv, req, false, &sp, err);
    if (rc == STORE_OK) {
        rc = store_remove_if_version(srv->store, sp, req->key, req->key_len,
                                     &req->version, &current, err);
    }
    if (rc == STORE_APPLIED) {
        return reply_send(srv, c, req, MHD_HTTP_NO_CONTENT, reply_empty());
    }
    if (rc != STORE_CONFLICT) {
        return reply_store_result(srv, c, req, "DELETE ?remove", rc, true,
                                  NULL, NULL, err);
    }
    resp = reply_json(json_pack("{s:s, s:s}", "error", "conflict",
                                "detail", err));
    if (resp != NULL) {
        skv_version_format(&current, vtext);
        MHD_add_response_header(resp, HDR_VERSION, vtext);
    }
    return reply_send(srv, c, req, MHD_HTTP_CONFLICT, resp);
}

enum MHD_Result
kv_finish(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_epochs_t  window;
    enum MHD_Result ret;

    /* Held until the answer is queued: a new window takes effect only
     * once this request is done (store_epochs_set). */
    if (!store_fence_enter(srv->store, req->has_epoch, req->epoch,
                           &window))
    {
        return epoch_refused(srv, c, req, &window);
    }
    switch (req->op) {
    case KV_PUT:
        ret = do_put(srv, c, req);
        break;
    case KV_DELETE:
        ret = do_delete(srv, c, req);
        break;
    case KV_REMOVE:
        ret = do_remove(srv, c, req);
        break;
    case KV_GET:
    default:
        ret = do_get(srv, c, req);
        break;
    }
    store_fence_exit(srv->store);
    return ret;
}
