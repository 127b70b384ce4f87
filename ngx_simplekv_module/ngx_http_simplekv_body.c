/*
 * ngx_http_simplekv_body.c - the hard cap on a PUT's value.
 *
 * A Content-Length over simplekv_max_value_size is refused before the
 * body is read (handler.c).  A body whose size is not known up front
 * (chunked) is counted here as it arrives: as soon as it passes the limit
 * the read fails with 413, nginx closes the connection after the answer
 * (after a lingering close bounded by lingering_time, so that the client
 * can read it),
 * and the error_page of conf/simplekv_proxy.conf turns the 413 into the
 * API's JSON error.  Nothing more of the body is read, so an endless
 * upload cannot hold a connection.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_request_body_filter_pt  ngx_http_simplekv_next_body_filter;


ngx_int_t
ngx_http_simplekv_init_body_filter(void)
{
    ngx_http_simplekv_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_simplekv_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t              *cl;
    ngx_http_simplekv_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_simplekv_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_simplekv_module);

    if (ctx == NULL || ctx->op != NGX_HTTP_SIMPLEKV_OP_PUT) {
        return ngx_http_simplekv_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        ctx->received += ngx_buf_size(cl->buf);
    }

    if (ctx->received > ctx->lcf->max_value_size) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "simplekv: a value of more than %O bytes "
                      "(simplekv_max_value_size) refused while reading it",
                      ctx->lcf->max_value_size);

        ctx->too_large = 1;
        r->keepalive = 0;

        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    return ngx_http_simplekv_next_body_filter(r, in);
}
