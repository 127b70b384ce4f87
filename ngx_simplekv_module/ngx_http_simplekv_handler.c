/*
 * ngx_http_simplekv_handler.c - a client request to the simplekv router,
 * up to its first round of replica requests.
 *
 * The content handler checks the method, the key (key.c) or the listing's
 * arguments (list.c), reads a PUT's body and hands the request to
 * decide.c, which starts the first round and decides everything after.
 *
 * Reference counting: the content handler returns NGX_DONE, which releases
 * one reference of r->main->count.  For PUT the body reader took that
 * reference; for the other methods the handler takes it itself.  The
 * remaining original reference is released by the final
 * ngx_http_finalize_request() of the answer.  Each replica subrequest holds
 * its own reference, so the request outlives stragglers.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_not_allowed(ngx_http_request_t *r);
static ngx_http_simplekv_ctx_t *ngx_http_simplekv_create_ctx(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_refuse_request(ngx_http_request_t *r,
    ngx_int_t rc, ngx_uint_t status, const char *error, ngx_str_t *detail);
static ngx_int_t ngx_http_simplekv_put(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_begin(ngx_http_simplekv_ctx_t *ctx);
static ngx_int_t ngx_http_simplekv_digests(ngx_http_simplekv_ctx_t *ctx);


static ngx_str_t  ngx_http_simplekv_allow =
    ngx_string("GET, HEAD, PUT, DELETE");


ngx_int_t
ngx_http_simplekv_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 detail;
    ngx_uint_t                status;
    const char               *error;
    ngx_http_simplekv_ctx_t  *ctx;

    if (r != r->main) {
        if (ngx_http_simplekv_replica_ctx(r)) {
            /* a replica subrequest landed here instead of the snippet's
             * internal location */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "simplekv: no \"location = "
                          NGX_HTTP_SIMPLEKV_PROXY_URI "\" in this server: "
                          "include conf/simplekv_proxy.conf");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT
                       |NGX_HTTP_DELETE)))
    {
        return ngx_http_simplekv_not_allowed(r);
    }

    ctx = ngx_http_simplekv_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if ((r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && ngx_http_simplekv_is_list(r))
    {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_LIST;
        rc = ngx_http_simplekv_list_parse(ctx, &status, &error, &detail);

    } else {
        rc = ngx_http_simplekv_parse_key(ctx, &status, &error, &detail);
    }

    if (rc != NGX_OK) {
        return ngx_http_simplekv_refuse_request(r, rc, status, error,
                                                &detail);
    }

    if (r->method == NGX_HTTP_PUT) {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_PUT;
        return ngx_http_simplekv_put(ctx);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->method == NGX_HTTP_DELETE) {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_DELETE;

    } else if (ctx->op != NGX_HTTP_SIMPLEKV_OP_LIST) {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_GET;
    }

    /* the handler's own reference; NGX_DONE releases the original one */
    r->main->count++;

    return ngx_http_simplekv_begin(ctx);
}


static ngx_int_t
ngx_http_simplekv_not_allowed(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    ngx_str_t         detail;
    ngx_table_elt_t  *allow;

    allow = ngx_list_push(&r->headers_out.headers);
    if (allow == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    allow->hash = 1;
    ngx_str_set(&allow->key, "Allow");
    allow->value = ngx_http_simplekv_allow;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_str_set(&detail, "use GET, HEAD, PUT or DELETE");

    return ngx_http_simplekv_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method not allowed", &detail);
}


static ngx_http_simplekv_ctx_t *
ngx_http_simplekv_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_simplekv_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_simplekv_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;
    ctx->mcf = ngx_http_get_module_main_conf(r, ngx_http_simplekv_module);
    ctx->lcf = ngx_http_get_module_loc_conf(r, ngx_http_simplekv_module);
    /* a transition's quorums need both owner sets: no node is left out */
    ctx->no_skip = ctx->mcf->transition ? 1 : 0;
    ctx->decide = ngx_http_simplekv_decide;
    ctx->late = ngx_http_simplekv_decide_late;

    if (ngx_array_init(&ctx->all, r->pool, 8,
                       sizeof(ngx_http_simplekv_replica_t *))
        != NGX_OK)
    {
        return NULL;
    }

    /* the deadline timer must never outlive the request's memory */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_simplekv_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_simplekv_module);

    return ctx;
}


/* A request refused before any replica is asked (bad key, bad listing
 * arguments): its body is not wanted. */
static ngx_int_t
ngx_http_simplekv_refuse_request(ngx_http_request_t *r, ngx_int_t rc,
    ngx_uint_t status, const char *error, ngx_str_t *detail)
{
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    return ngx_http_simplekv_send_error(r, status, error, detail);
}


static ngx_int_t
ngx_http_simplekv_put(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_str_t            detail;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (r->headers_in.content_length_n > ctx->lcf->max_value_size) {
        ngx_str_set(&detail, "the value is larger than "
                             "simplekv_max_value_size");
        /* refused unread: no "100 Continue", the connection closes */
        r->keepalive = 0;
        r->lingering_close = 1;

        return ngx_http_simplekv_send_error(r,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            "value too large", &detail);
    }

    if (r->headers_in.content_type) {
        ctx->content_type = r->headers_in.content_type->value;

    } else {
        ngx_str_set(&ctx->content_type, NGX_HTTP_SIMPLEKV_DEFAULT_CTYPE);
    }

    if (ctx->content_type.len == 0
        || ctx->content_type.len > SKV_CONTENT_TYPE_MAX)
    {
        ngx_str_set(&detail, "Content-Type must be 1..255 bytes");
        return ngx_http_simplekv_refuse_request(r, NGX_DECLINED,
                                                NGX_HTTP_BAD_REQUEST,
                                                "bad content type", &detail);
    }

    if (ngx_http_simplekv_digests(ctx) != NGX_OK) {
        ngx_str_set(&detail, "send at most one Content-Digest and one "
                             "Repr-Digest header");
        return ngx_http_simplekv_refuse_request(r, NGX_DECLINED,
                                                NGX_HTTP_BAD_REQUEST,
                                                "bad digest", &detail);
    }

    /* storaged takes a Content-Length: keep the body whole */
    r->request_body_in_single_buf = 0;
    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_simplekv_body_handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_simplekv_body_handler(ngx_http_request_t *r)
{
    off_t                     len;
    ngx_str_t                 detail;
    ngx_chain_t              *cl;
    ngx_http_simplekv_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_simplekv_module);

    if (r->request_body == NULL) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    /* body.c fails the read first; this is the last line of defence */
    if (ctx->too_large || len > ctx->lcf->max_value_size) {
        ngx_str_set(&detail, "the value is larger than "
                             "simplekv_max_value_size");
        ngx_http_simplekv_finish(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                 "value too large", &detail);
        return;
    }

    ctx->body = r->request_body->bufs;
    ctx->body_len = len;

    (void) ngx_http_simplekv_begin(ctx);
}


/*
 * The PUT's Content-Digest and Repr-Digest (RFC 9530), forwarded as they
 * are to every replica: storaged checks the value against them and
 * refuses a mismatch (400), so that nothing is stored anywhere.
 * NGX_DECLINED: one of them sent twice.
 */
static ngx_int_t
ngx_http_simplekv_digests(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_str_t        *dst;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    for (part = &ctx->request->headers_in.headers.part;
         part;
         part = part->next)
    {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == sizeof("Content-Digest") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Digest",
                                   sizeof("Content-Digest") - 1) == 0)
            {
                dst = &ctx->content_digest;

            } else if (h[i].key.len == sizeof("Repr-Digest") - 1
                       && ngx_strncasecmp(h[i].key.data,
                                          (u_char *) "Repr-Digest",
                                          sizeof("Repr-Digest") - 1) == 0)
            {
                dst = &ctx->repr_digest;

            } else {
                continue;
            }

            if (dst->data) {
                return NGX_DECLINED;
            }

            *dst = h[i].value;
        }
    }

    return NGX_OK;
}


/* Start the first round; the request holds a reference for it. */
static ngx_int_t
ngx_http_simplekv_begin(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    /* the subrequests must not re-enter the phases on a write event */
    r->write_event_handler = ngx_http_request_empty_handler;

    switch (ctx->op) {
    case NGX_HTTP_SIMPLEKV_OP_GET:
        rc = ngx_http_simplekv_start_read(ctx);
        break;
    case NGX_HTTP_SIMPLEKV_OP_LIST:
        rc = ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_LIST);
        break;
    default:
        rc = ngx_http_simplekv_start_write(ctx);
        break;
    }

    if (rc != NGX_OK) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
    }

    return NGX_DONE;
}
