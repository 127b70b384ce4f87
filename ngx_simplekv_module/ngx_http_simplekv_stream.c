/*
 * ngx_http_simplekv_stream.c - a large value sent to the client from one
 * replica that holds the decided version.
 *
 * A read decides on the replicas' metadata (replica.c takes an answer
 * over simplekv_stream_threshold as headers only).  When the newest
 * version is large and needs no repair, it is streamed: one subrequest,
 * neither in memory nor in the background, to a replica that reported
 * it, a GET with X-Simplekv-If-Version (storaged answers 412 if it no
 * longer holds exactly that version) and the client's range, if any.
 * Its body goes through the postpone filter straight to the client, with
 * nginx's own back-pressure: the upstream is unbuffered, so at most one
 * upstream buffer of it is in memory.
 *
 * The client's headers are sent (from the decided metadata, reply.c) only
 * when that replica's own header says 200 (206 for a range) with the
 * expected length.  Anything else before that - 412, 404, 5xx, no
 * connection - drops its answer, and another holder is asked; when none
 * is left the key is read again (up to NGX_HTTP_SIMPLEKV_READ_TRIES
 * reads), else the client gets a JSON 503.  Once body bytes went out
 * nothing else can be said: a failure mid-body closes the client's
 * connection, so that a keep-alive client sees a short body and never
 * takes a truncated value for a whole one.
 *
 * The subrequest is no round's: it is not in ctx->all, so no round
 * deadline ends it (nginx's storage read timeout and send_timeout bound
 * it), and while it runs before the answer (ctx->streaming) the
 * stragglers of the read round wake nothing.
 */

#include "ngx_http_simplekv_module.h"


static void ngx_http_simplekv_stream_next(ngx_http_simplekv_ctx_t *ctx);
static ngx_int_t ngx_http_simplekv_stream_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_simplekv_stream_wake(ngx_http_request_t *r);
static off_t ngx_http_simplekv_stream_length(ngx_http_simplekv_ctx_t *ctx);


/* decide.c: the newest version is large and held by enough replicas. */
void
ngx_http_simplekv_stream(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    rc = ngx_http_simplekv_preconditions(ctx, ctx->newest);

    if (rc == NGX_DECLINED && r->method == NGX_HTTP_HEAD) {
        /* metadata only */
        rc = (ngx_http_simplekv_value_headers(ctx, ctx->newest) == NGX_OK)
             ? ngx_http_send_header(r) : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_DECLINED) {
        ngx_http_simplekv_answering(ctx);
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_simplekv_stream_next(ctx);
}


/* Ask the next holder of the newest version, or read again, or fail. */
static void
ngx_http_simplekv_stream_next(ngx_http_simplekv_ctx_t *ctx)
{
    u_char                       *p;
    ngx_str_t                     detail;
    ngx_uint_t                    slot;
    ngx_http_request_t           *r;
    ngx_http_simplekv_replica_t  *rep;

    r = ctx->request;
    ctx->streaming = 0;
    r->write_event_handler = ngx_http_request_empty_handler;

    slot = ngx_http_simplekv_next_holder(ctx);

    if (slot == NGX_HTTP_SIMPLEKV_ASKED_MAX) {
        if (ctx->read_tries < NGX_HTTP_SIMPLEKV_READ_TRIES) {
            if (ngx_http_simplekv_start_read(ctx) != NGX_OK) {
                ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "internal error", NULL);
            }

            return;
        }

        ngx_str_set(&detail, "no replica holding the newest version of "
                             "the value could send it");
        ngx_http_simplekv_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "quorum not reached", &detail);
        return;
    }

    rep = ngx_http_simplekv_replica_start(ctx, slot,
                                          NGX_HTTP_SIMPLEKV_OP_STREAM, 0,
                                          ctx->round,
                                          ngx_http_simplekv_stream_done);

    if (rep == NULL || ngx_http_simplekv_pin_version(ctx, rep) != NGX_OK) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
        return;
    }

    if (ctx->ranged) {
        p = ngx_pnalloc(r->pool, sizeof("bytes=-") - 1 + 2 * NGX_OFF_T_LEN);
        if (p == NULL) {
            ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "internal error", NULL);
            return;
        }

        rep->range.data = p;
        rep->range.len = ngx_sprintf(p, "bytes=%O-%O", ctx->range_start,
                                     ctx->range_end)
                         - p;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv stream from replica %ui for \"%V\"",
                   rep->node, &r->uri);

    ctx->stream = rep;
    ctx->streaming = 1;

    /* the subrequest's end posts the client's request: see what came */
    r->write_event_handler = ngx_http_simplekv_stream_wake;
}


/* The bytes the stream must carry: the range, or the whole value. */
static off_t
ngx_http_simplekv_stream_length(ngx_http_simplekv_ctx_t *ctx)
{
    return ctx->ranged ? ctx->range_end - ctx->range_start + 1
                       : ctx->newest->length;
}


/*
 * The replica header filter (replica.c) hands the stream's header here,
 * before any of its body: either it becomes the client's header, or the
 * answer is dropped (header only: its body is not read).
 */
ngx_int_t
ngx_http_simplekv_stream_header(ngx_http_request_t *sr,
    ngx_http_simplekv_replica_t *rep)
{
    ngx_int_t                  rc;
    ngx_uint_t                 expect;
    ngx_http_request_t        *r;
    ngx_http_simplekv_ctx_t   *ctx;
    ngx_http_simplekv_node_t  *node;

    ctx = rep->ctx;
    r = ctx->request;
    node = ngx_http_simplekv_replica_node(rep);
    expect = ctx->ranged ? NGX_HTTP_PARTIAL_CONTENT : NGX_HTTP_OK;

    rep->reply.status = sr->headers_out.status;

    if (sr->headers_out.status != expect
        || sr->headers_out.content_length_n
           != ngx_http_simplekv_stream_length(ctx))
    {
        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "simplekv: node \"%V\" answered %ui (length %O) to "
                      "the GET of the newest version of a key of %uz bytes; "
                      "another holder is asked", &node->name,
                      sr->headers_out.status,
                      sr->headers_out.content_length_n, ctx->key_len);
        sr->header_only = 1;
        return NGX_OK;
    }

    ngx_http_simplekv_answering(ctx);

    if (ngx_http_simplekv_value_headers(ctx, ctx->newest) != NGX_OK) {
        return NGX_ERROR;
    }

    rep->relayed = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The stream's post_subrequest handler (possibly called twice: the
 * verdict is kept).  Before the client's header: NGX_OK, the parent looks
 * for another holder.  After it: a body cut short is NGX_ERROR, which
 * makes nginx close the client's connection.
 */
static ngx_int_t
ngx_http_simplekv_stream_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_simplekv_replica_t *rep = data;

    ngx_http_simplekv_ctx_t   *ctx;
    ngx_http_simplekv_node_t  *node;

    ctx = rep->ctx;

    if (rep->done) {
        return (rep->relayed && rep->reply.kind != SKV_REPLY_FOUND)
               ? NGX_ERROR : rc;
    }

    rep->done = 1;
    node = ngx_http_simplekv_replica_node(rep);

    if (rep->relayed) {
        if (rc != NGX_ERROR
            && rep->received == ngx_http_simplekv_stream_length(ctx))
        {
            rep->reply.kind = SKV_REPLY_FOUND;
            return rc;
        }

        rep->reply.kind = SKV_REPLY_FAILED;

        if (sr->connection->error) {
            ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                          "simplekv: the client left after %O of %O bytes "
                          "of a value", rep->received,
                          ngx_http_simplekv_stream_length(ctx));
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" stopped after %O of %O bytes "
                      "of a value of a key of %uz bytes: closing the "
                      "client's connection", &node->name, rep->received,
                      ngx_http_simplekv_stream_length(ctx), ctx->key_len);

        return NGX_ERROR;
    }

    rep->reply.kind = SKV_REPLY_FAILED;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "simplekv stream from replica %ui dropped: rc %i",
                   rep->node, rc);

    return NGX_OK;
}


/* The client's request, posted when the stream's subrequest ended. */
static void
ngx_http_simplekv_stream_wake(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_simplekv_ctx_t      *ctx;
    ngx_http_simplekv_replica_t  *rep;

    ctx = ngx_http_get_module_ctx(r, ngx_http_simplekv_module);

    if (ctx == NULL || ctx->stream == NULL || !ctx->stream->done) {
        return;
    }

    rep = ctx->stream;
    ctx->streaming = 0;
    r->write_event_handler = ngx_http_request_empty_handler;

    if (!rep->relayed) {
        ngx_http_simplekv_stream_next(ctx);
        return;
    }

    /* the value went out whole: end the client's answer */
    rc = ngx_http_send_special(r, NGX_HTTP_LAST);
    ngx_http_finalize_request(r, rc);
}
