/*
 * control.c - dispatch of the membership tools' endpoints, their small
 * JSON bodies, and PUT/DELETE /v1/lease (see control.h; the lease itself
 * is lease.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "epochs.h"
#include "query.h"
#include "reply.h"

#define ALLOW_SETTING  "GET, HEAD, PUT"
#define ALLOW_LEASE    "PUT, DELETE"

/* ---- first call, body ---------------------------------------------------- */

static bool
method_is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

enum MHD_Result
control_begin(http_server_t *srv, struct MHD_Connection *c, request_t *req,
              const char *method)
{
    const char *cl, *allow;
    bool        ok;

    if (req->route == ROUTE_LEASE) {
        allow = ALLOW_LEASE;
        req->op = method_is(method, MHD_HTTP_METHOD_PUT) ? KV_PUT : KV_DELETE;
        ok = method_is(method, MHD_HTTP_METHOD_PUT)
             || method_is(method, MHD_HTTP_METHOD_DELETE);
    } else {
        allow = ALLOW_SETTING;
        req->op = method_is(method, MHD_HTTP_METHOD_PUT) ? KV_PUT : KV_GET;
        ok = method_is(method, MHD_HTTP_METHOD_PUT)
             || method_is(method, MHD_HTTP_METHOD_GET)
             || method_is(method, MHD_HTTP_METHOD_HEAD);
    }
    if (!ok) {
        return reply_not_allowed(srv, c, req, method, allow);
    }
    req->control_put = req->op == KV_PUT;
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (req->control_put && cl != NULL
        && strtoull(cl, NULL, 10) > CONTROL_BODY_MAX)
    {
        return reply_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                           "body too large",
                           "the body is at most 4096 bytes of JSON");
    }
    return MHD_YES;
}

enum MHD_Result
control_body(http_server_t *srv, request_t *req, const char *data,
             size_t size)
{
    (void) srv;
    if (req->too_large || size > CONTROL_BODY_MAX - req->body_len) {
        /* Dropped, boundedly; answered 413 at the end. */
        req->too_large = true;
        req->discarded += size;
        return req->discarded > DISCARD_MIN ? MHD_NO : MHD_YES;
    }
    if (req->body == NULL) {
        req->body = malloc(CONTROL_BODY_MAX);
        if (req->body == NULL) {
            return MHD_NO;
        }
        req->body_cap = CONTROL_BODY_MAX;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
    return MHD_YES;
}

/* ---- /v1/lease ----------------------------------------------------------- */

/* 409: another holder has the lease. */
static enum MHD_Result
lease_conflict(http_server_t *srv, struct MHD_Connection *c, request_t *req,
               const lease_state_t *now)
{
    return reply_send(srv, c, req, MHD_HTTP_CONFLICT, reply_json(json_pack(
        "{s:s, s:s, s:s, s:I}", "error", "lease held",
        "detail", "another holder has the lease until it expires or is "
                  "released", "holder", now->holder,
        "expires_in_ms", (json_int_t) now->expires_in_ms)));
}

static enum MHD_Result
lease_put(http_server_t *srv, struct MHD_Connection *c, request_t *req,
          json_t *doc)
{
    const char    *holder;
    size_t         len;
    json_int_t     ttl;
    lease_state_t  now;

    if (json_unpack(doc, "{s:s%, s:I !}", "holder", &holder, &len,
                    "ttl_ms", &ttl) != 0
        || !lease_holder_valid(holder, len)
        || ttl <= 0 || (uint64_t) ttl > LEASE_TTL_MAX_MS)
    {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad lease",
                           "the body must be {\"holder\": H, \"ttl_ms\": N}: "
                           "H 1 to 256 printable ASCII characters, N 1 to "
                           "86400000");
    }
    if (!lease_acquire(&srv->lease, holder, len, (uint64_t) ttl, &now)) {
        return lease_conflict(srv, c, req, &now);
    }
    return reply_send(srv, c, req, MHD_HTTP_OK, reply_json(json_pack(
        "{s:s, s:I}", "holder", now.holder,
        "expires_in_ms", (json_int_t) now.expires_in_ms)));
}

static enum MHD_Result
lease_delete(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    const char    *v;
    size_t         len;
    unsigned char  holder[SKV_KEY_MAX];
    size_t         holder_len = 0;
    lease_state_t  now;

    if (query_count(req->query, "holder") != 1
        || !query_get(req->query, "holder", &v, &len)
        || skv_key_decode(v, len, holder, &holder_len) != SKV_OK
        || !lease_holder_valid((const char *) holder, holder_len))
    {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad holder",
                           "DELETE /v1/lease needs one holder=<id> "
                           "(percent-encoded, 1 to 256 printable ASCII "
                           "characters)");
    }
    if (!lease_release(&srv->lease, (const char *) holder, holder_len,
                       &now))
    {
        return lease_conflict(srv, c, req, &now);
    }
    return reply_send(srv, c, req, MHD_HTTP_NO_CONTENT, reply_empty());
}

/* ---- last call ----------------------------------------------------------- */

/* The JSON body of a PUT; NULL when it is not an object (answered). */
static json_t *
parse_body(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    json_error_t jerr;
    json_t      *doc;
    char         detail[200];

    doc = json_loadb(req->body != NULL ? (const char *) req->body : "",
                     req->body_len, 0, &jerr);
    if (doc != NULL && json_is_object(doc)) {
        return doc;
    }
    json_decref(doc);
    snprintf(detail, sizeof(detail), "the body must be a JSON object%s%.150s",
             doc == NULL ? ": " : "", doc == NULL ? jerr.text : "");
    reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad json", detail);
    return NULL;
}

static enum MHD_Result
control_put(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    enum MHD_Result ret;
    json_t         *doc;

    if (req->too_large) {
        return reply_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                           "body too large",
                           "the body is at most 4096 bytes of JSON");
    }
    doc = parse_body(srv, c, req);
    if (doc == NULL) {
        return req->answered ? MHD_YES : MHD_NO;
    }
    switch (req->route) {
    case ROUTE_EPOCHS:
        ret = epochs_put(srv, c, req, doc);
        break;
    case ROUTE_REPAIR:
        ret = repair_put(srv, c, req, doc);
        break;
    case ROUTE_LEASE:
    default:
        ret = lease_put(srv, c, req, doc);
        break;
    }
    json_decref(doc);
    return ret;
}

enum MHD_Result
control_finish(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    if (req->op == KV_PUT) {
        return control_put(srv, c, req);
    }
    switch (req->route) {
    case ROUTE_EPOCHS:
        return epochs_get(srv, c, req);
    case ROUTE_REPAIR:
        return repair_get(srv, c, req);
    case ROUTE_LEASE:
    default:
        return lease_delete(srv, c, req);
    }
}
