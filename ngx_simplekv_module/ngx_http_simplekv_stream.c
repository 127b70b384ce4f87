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
 * reads), else the client gets a JSON 503.
 *
 * Once the client's headers went out, a body cut short (the node died,
 * timed out, or found a damaged chunk and closed: docs/protocol.md) is
 * continued from another holder of the same version: a new stream
 * subrequest, started from the client's request after the broken one
 * ended (so the postpone filter puts its output after the broken one's,
 * and the client's last buffer after both), asks for `Range: bytes=
 * <next>-<last>` (next: the first byte the client has not been given -
 * replica.c's body filter counts what each subrequest passed on; last:
 * the last byte the client asked for) pinned to the version, and must
 * answer 206 with exactly that Content-Range; its body follows the bytes
 * already sent, with no header.  Each holder is asked once per read (the
 * same ctx->tried bits), then each replica the read did not hear from.
 * Only when none is left, or the client itself
 * left, is the client's connection closed, so that a keep-alive client
 * sees a short body and never takes a truncated value for a whole one.
 *
 * The subrequest is no round's: it is not in ctx->all, so no round
 * deadline ends it (nginx's storage read timeout and send_timeout bound
 * it), and while it runs before the answer (ctx->streaming) the
 * stragglers of the read round wake nothing.
 */

#include "ngx_http_simplekv_module.h"


static void ngx_http_simplekv_stream_next(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_stream_resume(ngx_http_simplekv_ctx_t *ctx);
static ngx_uint_t ngx_http_simplekv_stream_maybe_holder(
    ngx_http_simplekv_ctx_t *ctx);
static ngx_http_simplekv_replica_t *ngx_http_simplekv_stream_start(
    ngx_http_simplekv_ctx_t *ctx, ngx_uint_t slot, off_t offset);
static ngx_int_t ngx_http_simplekv_stream_range_ok(ngx_http_request_t *sr,
    ngx_http_simplekv_replica_t *rep);
static ngx_int_t ngx_http_simplekv_stream_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_simplekv_stream_wake(ngx_http_request_t *r);
static off_t ngx_http_simplekv_stream_length(ngx_http_simplekv_ctx_t *ctx);
static off_t ngx_http_simplekv_stream_first(ngx_http_simplekv_ctx_t *ctx);


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

    ctx->streamed = 0;

    rep = ngx_http_simplekv_stream_start(ctx, slot, 0);

    if (rep == NULL) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
    }
}


/*
 * The client's headers and ctx->streamed bytes of its body went out, and
 * the stream that sent them ended short: ask the next holder for the
 * rest, or close the client's connection.
 */
static void
ngx_http_simplekv_stream_resume(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                    slot;
    ngx_http_request_t           *r;
    ngx_http_simplekv_replica_t  *rep;

    r = ctx->request;
    ctx->streaming = 0;
    r->write_event_handler = ngx_http_request_empty_handler;

    slot = ngx_http_simplekv_next_holder(ctx);

    if (slot == NGX_HTTP_SIMPLEKV_ASKED_MAX) {
        slot = ngx_http_simplekv_stream_maybe_holder(ctx);
    }

    if (slot == NGX_HTTP_SIMPLEKV_ASKED_MAX) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "simplekv: no other replica could continue a value "
                      "of a key of %uz bytes after %O of %O bytes: closing "
                      "the client's connection", ctx->key_len,
                      ctx->streamed, ngx_http_simplekv_stream_length(ctx));
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rep = ngx_http_simplekv_stream_start(ctx, slot, ctx->streamed);

    if (rep == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rep->resume = 1;
    ngx_http_simplekv_stats_stream_resume(ctx->mcf);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "simplekv: continuing a value of a key of %uz bytes from "
                  "node \"%V\" at byte %O of %O", ctx->key_len,
                  &ngx_http_simplekv_replica_node(rep)->name, ctx->streamed,
                  ngx_http_simplekv_stream_length(ctx));
}


/*
 * When every known holder was tried: a replica the read did not hear from
 * before its decision (held back by the read fan-out, a straggler, or it
 * failed or timed out) may hold the version too; the pinned GET makes
 * asking it safe (412 if it does not).  Those that answered with another
 * version, and suspect nodes, are not asked.
 */
static ngx_uint_t
ngx_http_simplekv_stream_maybe_holder(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                     i;
    ngx_http_simplekv_node_t      *nodes;
    ngx_http_simplekv_replica_t   *rep;

    nodes = ctx->mcf->nodes.elts;

    for (i = 0; i < ctx->nreplicas; i++) {
        if (ctx->holds[i] || (ctx->tried & ((ngx_uint_t) 1 << i))) {
            continue;
        }

        ctx->tried |= (ngx_uint_t) 1 << i;
        rep = ctx->slot[i];

        if (rep != NULL && skv_reply_is_read_answer(rep->reply.kind)
            && skv_version_cmp(&rep->reply.version,
                               &ctx->newest->reply.version)
               != 0)
        {
            continue;
        }

        if (ngx_http_simplekv_breaker_check(&nodes[ctx->order[i]], 0)
            != NGX_HTTP_SIMPLEKV_ASK)
        {
            continue;
        }

        return i;
    }

    return NGX_HTTP_SIMPLEKV_ASKED_MAX;
}


/*
 * A stream subrequest to ctx->order[slot] for the client's bytes from
 * offset on (0: all of them), pinned to the newest version; the client's
 * request wakes when it ends.
 */
static ngx_http_simplekv_replica_t *
ngx_http_simplekv_stream_start(ngx_http_simplekv_ctx_t *ctx, ngx_uint_t slot,
    off_t offset)
{
    u_char                       *p;
    ngx_http_request_t           *r;
    ngx_http_simplekv_replica_t  *rep;

    r = ctx->request;

    rep = ngx_http_simplekv_replica_start(ctx, slot,
                                          NGX_HTTP_SIMPLEKV_OP_STREAM, 0,
                                          ctx->round,
                                          ngx_http_simplekv_stream_done);

    if (rep == NULL || ngx_http_simplekv_pin_version(ctx, rep) != NGX_OK) {
        return NULL;
    }

    rep->offset = offset;

    if (ctx->ranged || offset > 0) {
        p = ngx_pnalloc(r->pool, sizeof("bytes=-") - 1 + 2 * NGX_OFF_T_LEN);
        if (p == NULL) {
            return NULL;
        }

        rep->range.data = p;
        rep->range.len = ngx_sprintf(p, "bytes=%O-%O",
                                     ngx_http_simplekv_stream_first(ctx)
                                     + offset,
                                     ngx_http_simplekv_stream_first(ctx)
                                     + ngx_http_simplekv_stream_length(ctx)
                                     - 1)
                         - p;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv stream from replica %ui at %O for \"%V\"",
                   rep->node, offset, &r->uri);

    ctx->stream = rep;
    ctx->streaming = 1;

    /* the subrequest's end posts the client's request: see what came */
    r->write_event_handler = ngx_http_simplekv_stream_wake;

    return rep;
}


/* The bytes the stream must carry: the range, or the whole value. */
static off_t
ngx_http_simplekv_stream_length(ngx_http_simplekv_ctx_t *ctx)
{
    return ctx->ranged ? ctx->range_end - ctx->range_start + 1
                       : ctx->newest->length;
}


/* The value's first byte the client asked for. */
static off_t
ngx_http_simplekv_stream_first(ngx_http_simplekv_ctx_t *ctx)
{
    return ctx->ranged ? ctx->range_start : 0;
}


/*
 * The replica header filter (replica.c) hands the stream's header here,
 * before any of its body: either it becomes the client's header (or, for
 * a continuation, its body just follows what went out), or the answer is
 * dropped (header only: its body is not read).
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
    expect = (ctx->ranged || rep->offset > 0) ? NGX_HTTP_PARTIAL_CONTENT
                                              : NGX_HTTP_OK;

    rep->reply.status = sr->headers_out.status;

    if (sr->headers_out.status != expect
        || sr->headers_out.content_length_n
           != ngx_http_simplekv_stream_length(ctx) - rep->offset
        || (expect == NGX_HTTP_PARTIAL_CONTENT
            && ngx_http_simplekv_stream_range_ok(sr, rep) != NGX_OK))
    {
        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "simplekv: node \"%V\" answered %ui (length %O) to "
                      "the GET of the newest version of a key of %uz bytes "
                      "from byte %O; another holder is asked", &node->name,
                      sr->headers_out.status,
                      sr->headers_out.content_length_n, ctx->key_len,
                      rep->offset);
        sr->header_only = 1;
        return NGX_OK;
    }

    rep->relayed = 1;

    if (rep->resume) {
        /* the client's header went out with the first stream */
        return NGX_OK;
    }

    ngx_http_simplekv_answering(ctx);

    if (ngx_http_simplekv_value_headers(ctx, ctx->newest) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        /* no continuation can mend a client's answer without headers */
        rep->gone = 1;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* A 206's Content-Range names exactly the bytes asked for. */
static ngx_int_t
ngx_http_simplekv_stream_range_ok(ngx_http_request_t *sr,
    ngx_http_simplekv_replica_t *rep)
{
    u_char                   *p;
    off_t                     first;
    ngx_table_elt_t          *h;
    ngx_http_simplekv_ctx_t  *ctx;
    u_char                    buf[sizeof("bytes --/") - 1
                                  + 3 * NGX_OFF_T_LEN];

    ctx = rep->ctx;
    h = ngx_http_simplekv_find_header(sr, "Content-Range");

    if (h == NULL) {
        return NGX_DECLINED;
    }

    first = ngx_http_simplekv_stream_first(ctx);

    p = ngx_sprintf(buf, "bytes %O-%O/%O", first + rep->offset,
                    first + ngx_http_simplekv_stream_length(ctx) - 1,
                    ctx->newest->length);

    if (h->value.len != (size_t) (p - buf)
        || ngx_strncmp(h->value.data, buf, p - buf) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The stream's post_subrequest handler (possibly called twice: the
 * verdict is kept).  A subrequest whose body did not become the client's,
 * or that carried its part of the body whole, or was cut short while the
 * client is still there: NGX_OK, the client's request looks at what came
 * (stream_wake).  The client left: NGX_ERROR, nginx closes the
 * connection.  Never an HTTP error code: the client's request is not this
 * subrequest's to finalize.
 */
static ngx_int_t
ngx_http_simplekv_stream_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_simplekv_replica_t *rep = data;

    off_t                      want;
    ngx_http_simplekv_ctx_t   *ctx;
    ngx_http_simplekv_node_t  *node;

    ctx = rep->ctx;

    if (rep->done) {
        return rep->gone ? NGX_ERROR : NGX_OK;
    }

    rep->done = 1;
    node = ngx_http_simplekv_replica_node(rep);
    want = ngx_http_simplekv_stream_length(ctx) - rep->offset;

    if (!rep->relayed) {
        rep->reply.kind = SKV_REPLY_FAILED;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "simplekv stream from replica %ui dropped: rc %i",
                       rep->node, rc);

        return NGX_OK;
    }

    if (rep->gone || sr->connection->error || sr->connection->timedout
        || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        rep->reply.kind = SKV_REPLY_FAILED;
        rep->gone = 1;

        ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                      "simplekv: the client left after %O of %O bytes "
                      "of a value", ctx->streamed + rep->sent,
                      ngx_http_simplekv_stream_length(ctx));
        return NGX_ERROR;
    }

    if (rep->sent == want) {
        rep->reply.kind = SKV_REPLY_FOUND;
        return NGX_OK;
    }

    rep->reply.kind = SKV_REPLY_FAILED;

    ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                  "simplekv: node \"%V\" stopped after %O of %O bytes of a "
                  "value of a key of %uz bytes", &node->name,
                  ctx->streamed + rep->sent,
                  ngx_http_simplekv_stream_length(ctx), ctx->key_len);

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

    if (!rep->relayed && !rep->resume) {
        /* nothing went out yet: the next holder, from the start */
        ngx_http_simplekv_stream_next(ctx);
        return;
    }

    if (rep->relayed) {
        ctx->streamed += rep->sent;
    }

    if (rep->reply.kind != SKV_REPLY_FOUND) {
        ngx_http_simplekv_stream_resume(ctx);
        return;
    }

    /* the value went out whole: end the client's answer */
    rc = ngx_http_send_special(r, NGX_HTTP_LAST);
    ngx_http_finalize_request(r, rc);
}
