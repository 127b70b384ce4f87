/*
 * ngx_http_simplekv_replica.c - one replica request: an in-memory,
 * background subrequest to the internal location of
 * conf/simplekv_proxy.conf, whose handler (upstream.c) writes the request
 * to storaged from this file's per-subrequest ctx; the header filter
 * that shapes the replica's answer before nginx keeps it in memory (or,
 * for stream.c's subrequest, before it goes to the client); and the body
 * filter that counts what a stream subrequest passed on to the client.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_replica_payload(
    ngx_http_simplekv_ctx_t *ctx, ngx_http_simplekv_replica_t *rep,
    ngx_http_request_body_t *rb, ngx_uint_t repair);
static void ngx_http_simplekv_replica_method(ngx_http_request_t *sr,
    ngx_uint_t op, off_t len);
static ngx_int_t ngx_http_simplekv_replica_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_replica_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_simplekv_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_simplekv_next_body_filter;

static ngx_str_t  ngx_http_simplekv_proxy_uri =
    ngx_string(NGX_HTTP_SIMPLEKV_PROXY_URI);
static ngx_str_t  ngx_http_simplekv_get = ngx_string("GET");
static ngx_str_t  ngx_http_simplekv_head = ngx_string("HEAD");
static ngx_str_t  ngx_http_simplekv_put = ngx_string("PUT");
static ngx_str_t  ngx_http_simplekv_delete = ngx_string("DELETE");


ngx_int_t
ngx_http_simplekv_init_replica_filter(void)
{
    ngx_http_simplekv_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_simplekv_replica_header_filter;

    ngx_http_simplekv_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_simplekv_replica_body_filter;

    return NGX_OK;
}


/*
 * Replica answers, before nginx keeps them in memory:
 *  - storaged's 204 (a tombstone stored) carries no Content-Length, as
 *    HTTP requires; without one nginx reserves the whole
 *    subrequest_output_buffer_size for the answer.  It has no body: say so.
 *  - a value larger than simplekv_stream_threshold (which `nginx -t`
 *    keeps within subrequest_output_buffer_size) is taken as metadata
 *    only: its headers (version, length, type, digest) decide the read,
 *    its body is not read; stream.c or spool.c fetch the value itself
 *    from one replica if it is the newest.
 *  - spool.c's answer is written to a file, not kept: nothing is to be
 *    reserved for it in memory.
 *  - stream.c's answer goes to the client: stream.c decides whether its
 *    headers are the client's or it is dropped.
 */
static ngx_int_t
ngx_http_simplekv_replica_header_filter(ngx_http_request_t *r)
{
    ngx_http_simplekv_replica_t  *rep;

    rep = ngx_http_simplekv_replica_ctx(r);
    if (rep == NULL) {
        return ngx_http_simplekv_next_header_filter(r);
    }

    if (r->headers_out.status == NGX_HTTP_NO_CONTENT
        && r->headers_out.content_length_n == -1)
    {
        r->headers_out.content_length_n = 0;
    }

    if (rep->stream) {
        if (ngx_http_simplekv_stream_header(r, rep) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_simplekv_next_header_filter(r);
    }

    rep->length = r->headers_out.content_length_n;

    if (rep->spool) {
        r->headers_out.content_length_n = 0;

        if (r->headers_out.status != NGX_HTTP_OK) {
            r->header_only = 1;
        }

    } else if (rep->op == NGX_HTTP_SIMPLEKV_OP_GET
               && r->headers_out.status == NGX_HTTP_OK
               && r->headers_out.content_length_n
                  > (off_t) rep->ctx->lcf->stream_threshold)
    {
        rep->large = 1;
        r->header_only = 1;
    }

    return ngx_http_simplekv_next_header_filter(r);
}


/*
 * A stream subrequest's body on its way to the client (the postpone
 * filter, after this one, hands it to the client's request): what it
 * passes on here is what the client gets, the offset a continuation from
 * another replica starts at (stream.c).  What the upstream read but never
 * passed on is not counted.
 */
static ngx_int_t
ngx_http_simplekv_replica_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t                  *cl;
    ngx_http_simplekv_replica_t  *rep;

    rep = ngx_http_simplekv_replica_ctx(r);

    if (rep != NULL && rep->stream) {
        for (cl = in; cl; cl = cl->next) {
            if (!ngx_buf_special(cl->buf)) {
                rep->sent += ngx_buf_size(cl->buf);
            }
        }
    }

    return ngx_http_simplekv_next_body_filter(r, in);
}


ngx_http_simplekv_replica_t *
ngx_http_simplekv_replica_ctx(ngx_http_request_t *r)
{
    if (r == r->main) {
        return NULL;
    }

    return ngx_http_get_module_ctx(r, ngx_http_simplekv_module);
}


/*
 * Start one replica subrequest for ctx->order[slot]; done is its
 * post_subrequest handler.  repair: send the
 * newest value read (ctx->newest) instead of the client's write.  round 0:
 * a write-back after the answer, outside any round's bookkeeping.
 * NGX_HTTP_SIMPLEKV_OP_STREAM: stream.c's GET, neither in memory nor in
 * the background (its body is the client's), and outside ctx->all: no
 * round's deadline ends it.
 */
ngx_http_simplekv_replica_t *
ngx_http_simplekv_replica_start(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t slot, ngx_uint_t op, ngx_uint_t repair, ngx_uint_t round,
    ngx_http_post_subrequest_pt done)
{
    ngx_uint_t                     flags, stream;
    ngx_http_request_t            *r, *sr;
    ngx_http_request_body_t       *rb;
    ngx_http_post_subrequest_t    *ps;
    ngx_http_simplekv_replica_t   *rep, **all;

    r = ctx->request;

    stream = (op == NGX_HTTP_SIMPLEKV_OP_STREAM);

    if (stream) {
        op = NGX_HTTP_SIMPLEKV_OP_GET;
        flags = 0;

    } else {
        flags = NGX_HTTP_SUBREQUEST_IN_MEMORY|NGX_HTTP_SUBREQUEST_BACKGROUND;
    }

    rep = ngx_pcalloc(r->pool, sizeof(ngx_http_simplekv_replica_t));
    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    all = stream ? NULL : ngx_array_push(&ctx->all);

    if (rep == NULL || rb == NULL || ps == NULL || (all == NULL && !stream)) {
        return NULL;
    }

    rep->ctx = ctx;
    rep->slot = slot;
    rep->node = ctx->order[slot];
    rep->round = round;
    rep->op = op;
    rep->stream = stream;
    rep->start = ngx_current_msec;
    rep->reply.kind = SKV_REPLY_PENDING;

    /* until the subrequest exists, the array slot holds a finished stub */
    rep->done = 1;

    if (all) {
        *all = rep;
    }

    if (ngx_http_simplekv_replica_payload(ctx, rep, rb, repair) != NGX_OK) {
        return NULL;
    }

    ps->handler = done;
    ps->data = rep;

    if (ngx_http_subrequest(r, &ngx_http_simplekv_proxy_uri, NULL, &sr, ps,
                            flags)
        != NGX_OK)
    {
        return NULL;
    }

    rep->request = sr;
    rep->done = 0;

    if (!stream) {
        ctx->running++;
    }

    ngx_http_set_ctx(sr, rep, ngx_http_simplekv_module);

    /* the subrequest inherited the client's body and headers: replace
     * what upstream.c takes the request line and body from */
    sr->request_body = rb;
    sr->headers_in.chunked = 0;
    sr->headers_in.transfer_encoding = NULL;

    ngx_http_simplekv_replica_method(sr, op,
                                     repair ? ctx->newest->length
                                            : ctx->body_len);

    /* a client HEAD still needs the replicas' bodies; a version query
     * needs none */
    sr->header_only = (op == NGX_HTTP_SIMPLEKV_OP_HEAD);

    return rep;
}


/* The version header and, for a PUT, the value and its type. */
static ngx_int_t
ngx_http_simplekv_replica_payload(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep, ngx_http_request_body_t *rb,
    ngx_uint_t repair)
{
    u_char       *p;
    ngx_buf_t    *b;
    ngx_pool_t   *pool;
    ngx_chain_t  *cl;

    pool = ctx->request->pool;

    if (rep->op == NGX_HTTP_SIMPLEKV_OP_GET
        || rep->op == NGX_HTTP_SIMPLEKV_OP_HEAD
        || rep->op == NGX_HTTP_SIMPLEKV_OP_LIST)
    {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, SKV_VERSION_TEXT_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    skv_version_format(repair ? &ctx->newest->reply.version : &ctx->version,
                       (char *) p);

    rep->version_text.data = p;
    rep->version_text.len = SKV_VERSION_TEXT_LEN;

    if (rep->op != NGX_HTTP_SIMPLEKV_OP_PUT) {
        return NGX_OK;
    }

    if (!repair) {
        rep->content_type = ctx->content_type;
        rb->bufs = ctx->body;
        return NGX_OK;
    }

    /* write back the newest value exactly as it was read, with its digest
     * for the node to check it against */
    rep->repair = 1;
    rep->content_type = ctx->newest->body_type;
    rep->digest = ctx->newest->digest;

    if (ctx->newest->length == 0) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(pool);
    cl = ngx_alloc_chain_link(pool);
    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    if (ctx->newest->large) {
        /* a large value: from spool.c's temp file */
        b->in_file = 1;
        b->file = &ctx->spool->file;
        b->file_pos = 0;
        b->file_last = ctx->newest->length;

    } else {
        b->pos = ctx->newest->body.data;
        b->last = b->pos + ctx->newest->body.len;
        b->memory = 1;
    }

    b->last_buf = 1;
    cl->buf = b;
    cl->next = NULL;
    rb->bufs = cl;

    return NGX_OK;
}


/*
 * A GET of the newest version only: X-Simplekv-If-Version makes storaged
 * answer 412 if it no longer holds exactly that version.
 */
ngx_int_t
ngx_http_simplekv_pin_version(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep)
{
    u_char  *p;

    p = ngx_pnalloc(ctx->request->pool, SKV_VERSION_TEXT_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    skv_version_format(&ctx->newest->reply.version, (char *) p);

    rep->if_version.data = p;
    rep->if_version.len = SKV_VERSION_TEXT_LEN;

    return NGX_OK;
}


static void
ngx_http_simplekv_replica_method(ngx_http_request_t *sr, ngx_uint_t op,
    off_t len)
{
    switch (op) {

    case NGX_HTTP_SIMPLEKV_OP_PUT:
        sr->method = NGX_HTTP_PUT;
        sr->method_name = ngx_http_simplekv_put;
        sr->headers_in.content_length_n = len;
        break;

    case NGX_HTTP_SIMPLEKV_OP_DELETE:
        sr->method = NGX_HTTP_DELETE;
        sr->method_name = ngx_http_simplekv_delete;
        sr->headers_in.content_length_n = -1;
        break;

    case NGX_HTTP_SIMPLEKV_OP_HEAD:
        sr->method = NGX_HTTP_HEAD;
        sr->method_name = ngx_http_simplekv_head;
        sr->headers_in.content_length_n = -1;
        break;

    default: /* GET, LIST */
        sr->method = NGX_HTTP_GET;
        sr->method_name = ngx_http_simplekv_get;
        sr->headers_in.content_length_n = -1;
        break;
    }
}
