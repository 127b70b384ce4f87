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
 * A PUT's value is buffered as it arrives, growing geometrically up to the
 * declared Content-Length (or the limit): declaring a large length costs
 * nothing until the bytes come.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A PUT's headers: content type and the declared length. */
static enum MHD_Result
check_put_headers(http_server_t *srv, struct MHD_Connection *c,
                  request_t *req)
{
    const char *cl, *ct;
    char        detail[128];

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
                 "the value is %" PRIu64 " bytes; the limit is %" PRIu64,
                 req->declared_len, srv->cfg->max_value_size);
        return reply_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                           "value too large", detail);
    }
    return MHD_YES;
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

/* Make room for need bytes: double, at least BODY_MIN_CAP, never past the
 * declared length or the limit. */
static bool
grow_body(http_server_t *srv, request_t *req, size_t need)
{
    uint64_t       bound = srv->cfg->max_value_size;
    size_t         cap;
    unsigned char *grown;

    if (req->declared_len > 0 && req->declared_len < bound) {
        bound = req->declared_len;
    }
    cap = req->body_cap > BODY_MIN_CAP / 2 ? req->body_cap * 2
                                           : BODY_MIN_CAP;
    if (cap > bound) {
        cap = (size_t) bound;
    }
    if (cap < need) {
        cap = need;
    }
    grown = realloc(req->body, cap);
    if (grown == NULL) {
        http_log_error(srv, "out of memory buffering a %zu-byte value", cap);
        return false;
    }
    req->body = grown;
    req->body_cap = cap;
    return true;
}

enum MHD_Result
kv_body(http_server_t *srv, request_t *req, const char *data, size_t size)
{
    if (req->too_large) {
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
    if (size > srv->cfg->max_value_size - req->body_len) {
        req->too_large = true;
        req->discarded = size;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return MHD_YES;
    }
    if (req->body_len + size > req->body_cap
        && !grow_body(srv, req, req->body_len + size))
    {
        return MHD_NO;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
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

static enum MHD_Result
do_get(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_space_t       *sp;
    struct MHD_Response *resp;
    store_item_t         item;
    store_rc_t           rc;
    char                 err[STORE_ERR_MAX];
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];
    char                 ct[SKV_CONTENT_TYPE_MAX + 1];

    rc = find_space(srv, req, false, &sp, err);
    if (rc == STORE_OK) {
        rc = store_get(srv->store, sp, req->key, req->key_len, &item, err);
    }
    if (rc != STORE_OK) {
        return reply_store_result(srv, c, req, "GET", rc, false, NULL, NULL,
                                  err);
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
    if (item.content_type_len > 0) {
        memcpy(ct, item.content_type, item.content_type_len);
        ct[item.content_type_len] = '\0';
    } else {
        strcpy(ct, DEFAULT_CT);
    }
    /* The response body points into the buffer read from the database;
     * MHD frees that buffer when the response is destroyed. */
    resp = MHD_create_response_from_buffer_with_free_callback_cls(
        item.value_len, (void *) item.value, free_item_buffer, item.buf);
    if (resp == NULL) {
        store_item_free(&item);
        return reply_send(srv, c, req, 500, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
    MHD_add_response_header(resp, HDR_VERSION, vtext);
    return reply_send(srv, c, req, MHD_HTTP_OK, resp);
}

static enum MHD_Result
do_put(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_space_t *sp;
    skv_version_t current;
    store_held_t  held = STORE_HELD_UNKNOWN;
    store_rc_t    rc;
    char          err[STORE_ERR_MAX];
    char          detail[128];

    if (req->too_large) {
        snprintf(detail, sizeof(detail),
                 "the value is over the limit of %" PRIu64 " bytes",
                 srv->cfg->max_value_size);
        return reply_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                           "value too large", detail);
    }
    rc = find_space(srv, req, true, &sp, err);
    if (rc == STORE_OK) {
        rc = store_put_if_newer(srv->store, sp, req->key, req->key_len,
                                &req->version, req->content_type,
                                req->content_type_len, req->body,
                                req->body_len, &current, &held, err);
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
