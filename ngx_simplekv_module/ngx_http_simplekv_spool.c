/*
 * ngx_http_simplekv_spool.c - a large value read from one replica into a
 * temporary file, for its read repair and the client's answer.
 *
 * A read whose newest version is large (metadata only: replica.c) and
 * held by fewer than W replicas must write it back before answering, as
 * a small one is, but without holding it in memory: one replica that
 * reported it is asked for exactly that version (X-Simplekv-If-Version,
 * a GET of its own round, under the round deadline), and upstream.c's
 * copy filter writes its body to an unlinked temporary file under
 * client_body_temp_path (closed by the request pool's cleanup).  Once it
 * is there whole, the repair round PUTs it from that file (file buffers,
 * like a client's body) with its Repr-Digest, so each node checks what
 * it stores; the client is then answered from the file (reply.c's
 * headers and range, sendfile where enabled).  A holder that fails or no
 * longer holds the version is replaced by the next one; then the key is
 * read again, or the client gets a JSON 503.
 *
 * A large value that a replica answered after the client was answered
 * (late repair, decide.c) is not written back: its next read repairs it.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_spool_file(ngx_http_simplekv_ctx_t *ctx);


/*
 * The next replica of the last read that reported the newest version and
 * was not tried yet (marked tried now), in preference order;
 * NGX_HTTP_SIMPLEKV_ASKED_MAX if none is left.
 */
ngx_uint_t
ngx_http_simplekv_next_holder(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t  i;

    for (i = 0; i < ctx->nreplicas; i++) {
        if (ctx->holds[i] && !(ctx->tried & ((ngx_uint_t) 1 << i))) {
            ctx->tried |= (ngx_uint_t) 1 << i;
            return i;
        }
    }

    return NGX_HTTP_SIMPLEKV_ASKED_MAX;
}


/*
 * Start the spool round: the newest value from the next holder into the
 * temp file.  NGX_DECLINED: no holder is left to ask.
 */
ngx_int_t
ngx_http_simplekv_start_spool(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                    slot;
    ngx_http_simplekv_replica_t  *rep;

    slot = ngx_http_simplekv_next_holder(ctx);

    if (slot == NGX_HTTP_SIMPLEKV_ASKED_MAX) {
        return NGX_DECLINED;
    }

    if (ctx->spool == NULL && ngx_http_simplekv_spool_file(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->spooled = 0;
    ctx->bulk = 1;
    ctx->phase = NGX_HTTP_SIMPLEKV_PHASE_SPOOL;
    ctx->round++;
    ctx->expired = 0;
    ngx_memzero(ctx->slot, sizeof(ctx->slot));

    rep = ngx_http_simplekv_replica_start(ctx, slot, NGX_HTTP_SIMPLEKV_OP_GET,
                                          0, ctx->round,
                                          ngx_http_simplekv_replica_done);

    if (rep == NULL || ngx_http_simplekv_pin_version(ctx, rep) != NGX_OK) {
        return NGX_ERROR;
    }

    rep->spool = 1;
    ctx->slot[slot] = rep;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "simplekv spool from replica %ui for \"%V\"", rep->node,
                   &ctx->request->uri);

    ngx_http_simplekv_arm_deadline(ctx);

    return NGX_OK;
}


/* An unlinked temp file under the location's client_body_temp_path. */
static ngx_int_t
ngx_http_simplekv_spool_file(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_temp_file_t           *tf;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = ctx->request;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    tf = ngx_pcalloc(r->pool, sizeof(ngx_temp_file_t));
    if (tf == NULL) {
        return NGX_ERROR;
    }

    tf->file.fd = NGX_INVALID_FILE;
    tf->file.log = r->connection->log;
    tf->path = clcf->client_body_temp_path;
    tf->pool = r->pool;
    tf->log_level = NGX_LOG_INFO;
    tf->persistent = 0;
    tf->clean = 1;
    tf->access = 0600;

    if (ngx_create_temp_file(&tf->file, tf->path, tf->pool, tf->persistent,
                             tf->clean, tf->access)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->spool = tf;

    return NGX_OK;
}


/* upstream.c's copy filter: size more bytes of the spool's body. */
ngx_int_t
ngx_http_simplekv_spool_write(ngx_http_simplekv_replica_t *rep,
    u_char *data, size_t size)
{
    ngx_file_t  *file;

    file = &rep->ctx->spool->file;

    if (size == 0) {
        return NGX_OK;
    }

    if (ngx_write_file(file, data, size, rep->received - (off_t) size)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* decide.c, on every wake-up of the spool round. */
void
ngx_http_simplekv_decide_spool(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_str_t                     detail;
    ngx_uint_t                    i;
    ngx_http_simplekv_replica_t  *rep;

    rep = NULL;

    for (i = 0; i < ctx->nreplicas; i++) {
        if (ctx->slot[i]) {
            rep = ctx->slot[i];
        }
    }

    if (rep == NULL || !rep->done) {
        return;
    }

    if (rep->reply.kind == SKV_REPLY_FOUND
        && skv_version_cmp(&rep->reply.version, &ctx->newest->reply.version)
           == 0
        && rep->length == ctx->newest->length)
    {
        ctx->spooled = 1;

        if (ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_REPAIR)
            != NGX_OK)
        {
            ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "internal error", NULL);
        }

        return;
    }

    rc = ngx_http_simplekv_start_spool(ctx);

    if (rc == NGX_DECLINED && ctx->read_tries < NGX_HTTP_SIMPLEKV_READ_TRIES) {
        rc = ngx_http_simplekv_start_read(ctx);
    }

    if (rc == NGX_OK) {
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_str_set(&detail, "no replica holding the newest version of the "
                             "value could send it for its read repair");
        ngx_http_simplekv_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "quorum not reached", &detail);
        return;
    }

    ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                             "internal error", NULL);
}


/* The client's answer from the temp file, once the repair is done. */
ngx_int_t
ngx_http_simplekv_send_spooled(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_buf_t  *b;

    rc = ngx_http_simplekv_send_value_header(ctx, ctx->newest);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    b = ngx_calloc_buf(ctx->request->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->in_file = 1;
    b->file = &ctx->spool->file;
    b->file_pos = ctx->ranged ? ctx->range_start : 0;
    b->file_last = ctx->ranged ? ctx->range_end + 1 : ctx->newest->length;

    return ngx_http_simplekv_send_last_buf(ctx->request, b);
}
