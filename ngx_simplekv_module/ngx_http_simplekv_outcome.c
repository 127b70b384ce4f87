/*
 * ngx_http_simplekv_outcome.c - what one replica's answer means.
 *
 * A finished replica subrequest becomes an skv_reply_t: its kind, the
 * node's status and the version it reported.  The distinction that
 * matters most is for writes: "refused" (the node said no with a 4xx or
 * 507, or the request never left this router) means certainly not
 * applied; "failed" and "timed out" (an error after the request was sent)
 * mean the write may have been applied.  docs/protocol.md lists what
 * storaged answers.  A read answered 500 "corrupt value" (storaged found
 * its copy damaged) holds nothing: the read's repair writes the value
 * back there.
 */

#include "ngx_http_simplekv_module.h"


static void ngx_http_simplekv_outcome_write(ngx_http_simplekv_replica_t *rep,
    ngx_uint_t status, ngx_table_elt_t *version);
static void ngx_http_simplekv_outcome_read(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_uint_t status, ngx_table_elt_t *version);
static ngx_int_t ngx_http_simplekv_version_header(
    ngx_http_simplekv_replica_t *rep, ngx_http_request_t *sr,
    ngx_table_elt_t **h);
static void ngx_http_simplekv_keep_body(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr);
static ngx_uint_t ngx_http_simplekv_corrupt(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr);
static skv_held_t ngx_http_simplekv_held_header(ngx_http_request_t *sr);


void
ngx_http_simplekv_outcome(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_int_t rc)
{
    ngx_uint_t                 status;
    ngx_table_elt_t           *h;
    ngx_http_simplekv_node_t  *node;

    node = ngx_http_simplekv_replica_node(rep);

    if (rep->aborted || rc == NGX_HTTP_GATEWAY_TIME_OUT) {
        rep->reply.kind = SKV_REPLY_TIMEDOUT;
        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "simplekv: node \"%V\" timed out for a key of %uz "
                      "bytes", &node->name, rep->ctx->key_len);
        return;
    }

    /* refused before its body was sent whole (upstream.c): not applied */
    if (rep->early_status) {
        rep->reply.kind = SKV_REPLY_REFUSED;
        rep->reply.status = rep->early_status;
        return;
    }

    status = sr->headers_out.status;
    rep->reply.status = (rc == NGX_OK) ? status : 0;

    if (rc != NGX_OK || status == 0) {
        /* a request that never reached the node certainly was not
         * applied: refused, not unknown */
        rep->reply.kind = (sr->upstream == NULL
                           || !sr->upstream->request_sent)
                          ? SKV_REPLY_REFUSED : SKV_REPLY_FAILED;
        rep->reply.status = 0;

        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "simplekv: node \"%V\" failed (%i) for a key of %uz "
                      "bytes", &node->name, rc, rep->ctx->key_len);
        return;
    }

    switch (ngx_http_simplekv_version_header(rep, sr, &h)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        /*
         * A version too far ahead is no version at all: storaged lets the
         * next sane write replace it.  A read or version query takes the
         * replica as holding nothing (a read's repair then heals it); a
         * write refused in its favour was not applied.
         */
        if (rep->op == NGX_HTTP_SIMPLEKV_OP_GET
            || rep->op == NGX_HTTP_SIMPLEKV_OP_HEAD)
        {
            rep->reply.kind = SKV_REPLY_MISSING;
            return;
        }

        rep->reply.kind = (status == NGX_HTTP_CONFLICT)
                          ? SKV_REPLY_REFUSED : SKV_REPLY_FAILED;
        return;

    default:
        rep->reply.kind = SKV_REPLY_FAILED;
        return;
    }

    if (rep->op == NGX_HTTP_SIMPLEKV_OP_LIST) {
        if (status != NGX_HTTP_OK) {
            rep->reply.kind = SKV_REPLY_FAILED;
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "simplekv: node \"%V\" answered %ui to a key "
                          "listing", &node->name, status);
            return;
        }

        ngx_http_simplekv_keep_body(rep, sr);
        rep->reply.kind = SKV_REPLY_LISTED;
        return;
    }

    if (rep->op != NGX_HTTP_SIMPLEKV_OP_GET
        && rep->op != NGX_HTTP_SIMPLEKV_OP_HEAD)
    {
        ngx_http_simplekv_outcome_write(rep, status, h);

        if (rep->reply.kind == SKV_REPLY_CONFLICT) {
            rep->reply.held = ngx_http_simplekv_held_header(sr);
        }

        return;
    }

    ngx_http_simplekv_outcome_read(rep, sr, status, h);
}


static void
ngx_http_simplekv_outcome_write(ngx_http_simplekv_replica_t *rep,
    ngx_uint_t status, ngx_table_elt_t *version)
{
    ngx_http_simplekv_node_t  *node;

    node = ngx_http_simplekv_replica_node(rep);

    if (status == NGX_HTTP_OK || status == NGX_HTTP_CREATED
        || status == NGX_HTTP_NO_CONTENT)
    {
        rep->reply.kind = SKV_REPLY_ACK;
        return;
    }

    if (status == NGX_HTTP_CONFLICT && version) {
        rep->reply.kind = SKV_REPLY_CONFLICT;
        return;
    }

    rep->reply.kind = skv_status_is_refusal(status) ? SKV_REPLY_REFUSED
                                                    : SKV_REPLY_FAILED;

    ngx_log_error(NGX_LOG_ERR, rep->request->connection->log, 0,
                  "simplekv: node \"%V\" answered %ui to a write of a key "
                  "of %uz bytes", &node->name, status, rep->ctx->key_len);
}


static void
ngx_http_simplekv_outcome_read(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_uint_t status, ngx_table_elt_t *version)
{
    ngx_table_elt_t           *h;
    ngx_http_simplekv_node_t  *node;

    node = ngx_http_simplekv_replica_node(rep);

    if (status == NGX_HTTP_NOT_FOUND) {
        rep->reply.kind = version ? SKV_REPLY_TOMBSTONE : SKV_REPLY_MISSING;
        return;
    }

    if (status == NGX_HTTP_INTERNAL_SERVER_ERROR
        && rep->op == NGX_HTTP_SIMPLEKV_OP_GET && !rep->spool
        && ngx_http_simplekv_corrupt(rep, sr))
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" holds a corrupt value of a key "
                      "of %uz bytes: taken as missing, to be repaired",
                      &node->name, rep->ctx->key_len);
        ngx_memzero(&rep->reply.version, sizeof(skv_version_t));
        rep->reply.kind = SKV_REPLY_MISSING;
        return;
    }

    if (status != NGX_HTTP_OK || version == NULL) {
        rep->reply.kind = skv_status_is_refusal(status) ? SKV_REPLY_REFUSED
                                                        : SKV_REPLY_FAILED;
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" answered %ui to a read of a "
                      "key of %uz bytes", &node->name, status,
                      rep->ctx->key_len);
        return;
    }

    /* a version query: the version is the answer */
    if (rep->op == NGX_HTTP_SIMPLEKV_OP_HEAD) {
        rep->reply.kind = SKV_REPLY_FOUND;
        return;
    }

    h = ngx_http_simplekv_find_header(sr, "Repr-Digest");
    if (h) {
        rep->digest = h->value;
    }

    if (sr->headers_out.content_type.len) {
        rep->body_type = sr->headers_out.content_type;
    }

    /* metadata only (the replica header filter took the value as large):
     * stream.c or spool.c reads it if it is the newest */
    if (rep->large) {
        rep->reply.kind = SKV_REPLY_FOUND;
        return;
    }

    /* spool.c's copy went to its temp file: all of it, or nothing */
    if (rep->spool) {
        if (rep->received != rep->length) {
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "simplekv: node \"%V\" sent %O of %O bytes of a "
                          "value of a key of %uz bytes", &node->name,
                          rep->received, rep->length, rep->ctx->key_len);
            rep->reply.kind = SKV_REPLY_FAILED;
            return;
        }

        rep->reply.kind = SKV_REPLY_FOUND;
        return;
    }

    ngx_http_simplekv_keep_body(rep, sr);
    rep->length = rep->body.len;

    /* a connection cut short can end "successfully" with less data */
    if (sr->headers_out.content_length_n >= 0
        && (off_t) rep->body.len != sr->headers_out.content_length_n)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" sent a truncated value for a "
                      "key of %uz bytes", &node->name, rep->ctx->key_len);
        rep->reply.kind = SKV_REPLY_FAILED;
        return;
    }

    rep->reply.kind = SKV_REPLY_FOUND;
}


/* Does a read's 500 say "corrupt value" (storaged's JSON error)? */
static ngx_uint_t
ngx_http_simplekv_corrupt(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr)
{
    static u_char  word[] = "\"corrupt value\"";

    ngx_http_simplekv_keep_body(rep, sr);

    return rep->body.len
           && ngx_strlcasestrn(rep->body.data,
                               rep->body.data + rep->body.len,
                               word, sizeof(word) - 2)
              != NULL;
}


/*
 * The X-Simplekv-Version the node sent, if any: parsed, checked against
 * the clock skew limit and observed by the version clock.  NGX_DECLINED: a
 * version too far ahead, which cannot have come from a sane clock (taking
 * it as the newest would outrank every later write); NGX_ERROR: malformed.
 */
static ngx_int_t
ngx_http_simplekv_version_header(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_table_elt_t **h)
{
    ngx_http_simplekv_ctx_t   *ctx;
    ngx_http_simplekv_node_t  *node;

    ctx = rep->ctx;
    node = ngx_http_simplekv_replica_node(rep);
    *h = ngx_http_simplekv_find_header(sr, "X-Simplekv-Version");

    if (*h == NULL) {
        return NGX_OK;
    }

    if (skv_version_parse((const char *) (*h)->value.data, (*h)->value.len,
                          &rep->reply.version)
        != SKV_OK)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" sent a malformed version",
                      &node->name);
        return NGX_ERROR;
    }

    /* the clock refuses (and counts) a version too far ahead */
    if (ngx_http_simplekv_observe_version(&rep->reply.version, ctx->mcf,
                                          sr->connection->log, &node->name)
        != NGX_OK)
    {
        ngx_memzero(&rep->reply.version, sizeof(skv_version_t));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* The last header of this name the node sent, or NULL. */
ngx_table_elt_t *
ngx_http_simplekv_find_header(ngx_http_request_t *sr, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *e, *found;

    len = ngx_strlen(name);
    found = NULL;

    for (part = &sr->headers_out.headers.part; part; part = part->next) {
        e = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (e[i].hash != 0 && e[i].key.len == len
                && ngx_strncasecmp(e[i].key.data, (u_char *) name, len) == 0)
            {
                found = &e[i];
            }
        }
    }

    return found;
}


/*
 * A 409's X-Simplekv-Held: did the node ever hold this write's version?
 * Only "no" is certain; anything else (an older storaged sends nothing)
 * is unknown.
 */
static skv_held_t
ngx_http_simplekv_held_header(ngx_http_request_t *sr)
{
    ngx_table_elt_t  *h;

    h = ngx_http_simplekv_find_header(sr, "X-Simplekv-Held");

    if (h == NULL) {
        return SKV_HELD_UNKNOWN;
    }

    if (h->value.len == 3 && ngx_strncasecmp(h->value.data, (u_char *) "yes",
                                             3) == 0)
    {
        return SKV_HELD_YES;
    }

    if (h->value.len == 2 && ngx_strncasecmp(h->value.data, (u_char *) "no",
                                             2) == 0)
    {
        return SKV_HELD_NO;
    }

    return SKV_HELD_UNKNOWN;
}


static void
ngx_http_simplekv_keep_body(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr)
{
    ngx_buf_t  *b;

    if (sr->out && sr->out->buf) {
        b = sr->out->buf;
        rep->body.data = b->pos;
        rep->body.len = b->last - b->pos;
    }
}


/* Did the node itself answer (as opposed to no connection, a reset or a
 * timeout)? */
ngx_uint_t
ngx_http_simplekv_node_answered(const skv_reply_t *reply)
{
    switch (reply->kind) {
    case SKV_REPLY_FAILED:
    case SKV_REPLY_TIMEDOUT:
    case SKV_REPLY_PENDING:
    case SKV_REPLY_NONE:
        return 0;
    case SKV_REPLY_REFUSED:
        return reply->status != 0;
    default:
        return 1;
    }
}
