/*
 * ngx_http_simplekv_handler.c - the life of a client request to the
 * simplekv router: method and key checks, reading a PUT body, handing the
 * work to the replica fan-out (ngx_http_simplekv_replica.c), and sending the
 * final answer or a JSON error.
 *
 * Reference counting: the content handler returns NGX_DONE, which releases
 * one reference of r->main->count.  For PUT the body reader took that
 * reference; for the other methods the handler takes it itself.  The
 * remaining original reference is released by the final
 * ngx_http_finalize_request() in ngx_http_simplekv_answer*().  Each replica
 * subrequest holds its own reference, so the request outlives stragglers.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_parse_key(ngx_http_request_t *r,
    ngx_http_simplekv_ctx_t *ctx, ngx_int_t *rc);
static void ngx_http_simplekv_body_handler(ngx_http_request_t *r);
static ngx_http_simplekv_ctx_t *ngx_http_simplekv_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_simplekv_cleanup(void *data);
static ngx_int_t ngx_http_simplekv_send_etag(ngx_http_request_t *r,
    ngx_http_simplekv_ctx_t *ctx, const skv_version_t *version);


static ngx_int_t ngx_http_simplekv_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_str_t  ngx_http_simplekv_allow =
    ngx_string("GET, HEAD, PUT, DELETE");

static ngx_http_request_body_filter_pt  ngx_http_simplekv_next_body_filter;


ngx_int_t
ngx_http_simplekv_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      detail;
    ngx_table_elt_t               *allow;
    ngx_http_simplekv_ctx_t       *ctx;
    ngx_http_simplekv_loc_conf_t  *lcf;

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

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_simplekv_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT
                       |NGX_HTTP_DELETE)))
    {
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

    ctx = ngx_http_simplekv_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if ((r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && ngx_http_simplekv_is_list(r))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->op = NGX_HTTP_SIMPLEKV_OP_LIST;

        rc = ngx_http_simplekv_start_list(ctx);
        if (rc != NGX_DONE) {
            /* an error answer was sent, or could not be */
            return rc;
        }

        r->write_event_handler = ngx_http_request_empty_handler;
        r->main->count++;

        return NGX_DONE;
    }

    if (ngx_http_simplekv_parse_key(r, ctx, &rc) != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            r->keepalive = 0;
        }

        return rc;
    }

    if (r->method == NGX_HTTP_PUT) {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_PUT;

        if (r->headers_in.content_length_n > (off_t) lcf->max_value_size) {
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
            if (ngx_http_discard_request_body(r) != NGX_OK) {
                r->keepalive = 0;
            }

            return ngx_http_simplekv_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                "bad content type", &detail);
        }

        /* storaged takes a Content-Length: keep the body whole */
        r->request_body_in_single_buf = 0;
        r->request_body_in_persistent_file = 1;
        r->request_body_in_clean_file = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_simplekv_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the subrequests must not re-enter the phases on a write event */
    r->write_event_handler = ngx_http_request_empty_handler;

    if (r->method == NGX_HTTP_DELETE) {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_DELETE;
        rc = ngx_http_simplekv_start_write(ctx);

    } else {
        ctx->op = NGX_HTTP_SIMPLEKV_OP_GET;
        rc = ngx_http_simplekv_start_read(ctx);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
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


static void
ngx_http_simplekv_cleanup(void *data)
{
    ngx_http_simplekv_ctx_t  *ctx = data;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
}


/*
 * The raw (still percent-encoded) request path after the location prefix,
 * without the query string.  r->uri is already decoded and has merged
 * slashes, so it cannot carry arbitrary key bytes: keys come from the
 * request line.
 */
ngx_int_t
ngx_http_simplekv_raw_key(ngx_http_request_t *r, ngx_str_t *raw)
{
    u_char                    *p, *last, *q;
    size_t                     len;
    ngx_http_core_loc_conf_t  *clcf;

    p = r->unparsed_uri.data;
    last = p + r->unparsed_uri.len;

    q = ngx_strlchr(p, last, '?');
    if (q) {
        last = q;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    len = clcf->name.len;

    if (!clcf->exact_match
#if (NGX_PCRE)
        && clcf->regex == NULL
#endif
        && len > 0 && (size_t) (last - p) >= len
        && ngx_strncmp(p, clcf->name.data, len) == 0)
    {
        p += len;

    } else if (p < last && *p == '/') {
        p++;
    }

    raw->data = p;
    raw->len = last - p;

    return NGX_OK;
}


/*
 * Decode and validate the key (the shared core decides what a key is),
 * encode it canonically for storaged and place it.  On a bad key the JSON
 * error is sent, *rc is what the handler returns, and NGX_DECLINED.
 */
static ngx_int_t
ngx_http_simplekv_parse_key(ngx_http_request_t *r,
    ngx_http_simplekv_ctx_t *ctx, ngx_int_t *rc)
{
    u_char        *p;
    size_t         len, key_len, enc_len;
    ngx_str_t      raw, detail, arg;
    ngx_uint_t     present;
    skv_status_t   st;

    (void) ngx_http_simplekv_raw_key(r, &raw);

    /*
     * ?key=<percent-encoded key> names the key instead of the path (which
     * must then be empty): nginx refuses some keys in a path before the
     * module sees them (%00, a path above "/"), never in the query string.
     */
    if (r->args.len
        && ngx_http_simplekv_list_arg(&r->args, "key", &arg, &present)
           == NGX_OK
        && present)
    {
        if (raw.len) {
            ngx_str_set(&detail, "name the key either in the path or in "
                                 "?key=, not both");
            *rc = ngx_http_simplekv_send_error(r, NGX_HTTP_BAD_REQUEST,
                                               "bad key", &detail);
            return NGX_DECLINED;
        }

        raw = arg;
    }

    p = raw.data;
    len = raw.len;

    if (len == 0) {
        ngx_str_set(&detail, "the request path names no key");
        *rc = ngx_http_simplekv_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "bad key", &detail);
        return NGX_DECLINED;
    }

    if (len > SKV_KEY_ENCODED_MAX) {
        ngx_str_set(&detail, "keys are at most 1024 bytes");
        *rc = ngx_http_simplekv_send_error(r, NGX_HTTP_REQUEST_URI_TOO_LARGE,
                                           "key too long", &detail);
        return NGX_DECLINED;
    }

    ctx->key = ngx_pnalloc(r->pool, SKV_KEY_MAX);
    if (ctx->key == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    st = skv_key_decode((const char *) p, len, ctx->key, &key_len);

    switch (st) {

    case SKV_OK:
        break;

    case SKV_ERR_KEY_TOO_LONG:
        ngx_str_set(&detail, "keys are at most 1024 bytes");
        *rc = ngx_http_simplekv_send_error(r, NGX_HTTP_REQUEST_URI_TOO_LARGE,
                                           "key too long", &detail);
        return NGX_DECLINED;

    default:
        detail.data = (u_char *) skv_strerror(st);
        detail.len = ngx_strlen(detail.data);
        *rc = ngx_http_simplekv_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "bad key", &detail);
        return NGX_DECLINED;
    }

    ctx->key_len = key_len;

    /* the canonical encoding: every router sends storaged the same URI */
    enc_len = skv_key_encode(ctx->key, key_len, NULL, 0);

    ctx->storage_uri.data = ngx_pnalloc(r->pool,
                            sizeof(NGX_HTTP_SIMPLEKV_STORAGE_PREFIX) - 1
                            + enc_len);
    if (ctx->storage_uri.data == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    p = ngx_cpymem(ctx->storage_uri.data, NGX_HTTP_SIMPLEKV_STORAGE_PREFIX,
                   sizeof(NGX_HTTP_SIMPLEKV_STORAGE_PREFIX) - 1);
    (void) skv_key_encode(ctx->key, key_len, (char *) p, enc_len);

    ctx->storage_uri.len = sizeof(NGX_HTTP_SIMPLEKV_STORAGE_PREFIX) - 1
                           + enc_len;

    ctx->nreplicas = skv_place(ctx->mcf->placement, ctx->mcf->nodes.nelts,
                               ctx->key, key_len, ctx->order,
                               ctx->lcf->replicas);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv key of %uz bytes, %ui replicas",
                   key_len, ctx->nreplicas);

    return NGX_OK;
}


ngx_int_t
ngx_http_simplekv_init_body_filter(void)
{
    ngx_http_simplekv_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_simplekv_body_filter;

    return NGX_OK;
}


/*
 * Bounds a PUT body whose size is not known up front (chunked): past
 * simplekv_max_value_size nothing more is stored, the rest is read and
 * dropped, and the body handler answers a JSON 413.  Reading on (rather
 * than failing the read) keeps the error in the module's JSON form and
 * the connection usable.
 */
static ngx_int_t
ngx_http_simplekv_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_uint_t                last;
    ngx_chain_t              *cl;
    ngx_http_simplekv_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_simplekv_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_simplekv_module);

    if (ctx == NULL || ctx->op != NGX_HTTP_SIMPLEKV_OP_PUT) {
        return ngx_http_simplekv_next_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        ctx->received += ngx_buf_size(cl->buf);

        if (cl->buf->last_buf) {
            last = 1;
        }
    }

    if (!ctx->too_large && ctx->received <= (off_t) ctx->lcf->max_value_size)
    {
        return ngx_http_simplekv_next_body_filter(r, in);
    }

    if (!ctx->too_large) {
        ctx->too_large = 1;

        /*
         * What was kept so far is dropped too: those buffers still point
         * into the reader's buffer, which it reuses only once they are
         * consumed (else "busy buffers after request body flush").
         */
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (ngx_buf_in_memory(cl->buf)) {
                cl->buf->pos = cl->buf->last;
            }
        }

        r->request_body->bufs = NULL;
    }

    /* dropped, but consumed: the reader reuses its buffer only then */
    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
    }

    if (!last) {
        return NGX_OK;
    }

    /* only the end-of-body mark goes on, so that reading completes */
    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = 1;
    cl->buf = b;
    cl->next = NULL;

    return ngx_http_simplekv_next_body_filter(r, cl);
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
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    /* a chunked body has no Content-Length to check up front */
    if (ctx->too_large || len > (off_t) ctx->lcf->max_value_size) {
        ngx_str_set(&detail, "the value is larger than "
                             "simplekv_max_value_size");
        ngx_http_finalize_request(r,
            ngx_http_simplekv_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "value too large", &detail));
        return;
    }

    ctx->body = r->request_body->bufs;
    ctx->body_len = len;

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ngx_http_simplekv_start_write(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
}


static ngx_int_t
ngx_http_simplekv_send_etag(ngx_http_request_t *r,
    ngx_http_simplekv_ctx_t *ctx, const skv_version_t *version)
{
    u_char           *p;
    ngx_table_elt_t  *etag;

    etag = ngx_list_push(&r->headers_out.headers);
    if (etag == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, SKV_VERSION_TEXT_LEN + 3);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0] = '"';
    skv_version_format(version, (char *) p + 1);
    p[SKV_VERSION_TEXT_LEN + 1] = '"';

    etag->hash = 1;
    ngx_str_set(&etag->key, "ETag");
    etag->value.data = p;
    etag->value.len = SKV_VERSION_TEXT_LEN + 2;

    r->headers_out.etag = etag;

    return NGX_OK;
}


/* Send the successful answer; called once, from the parent's posted
 * write handler. */
void
ngx_http_simplekv_answer(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out;
    ngx_http_request_t           *r;
    ngx_http_simplekv_replica_t  *rep;

    r = ctx->request;
    ngx_http_simplekv_answering(ctx);

    if (ctx->op != NGX_HTTP_SIMPLEKV_OP_GET) {
        if (ngx_http_simplekv_send_etag(r, ctx, &ctx->version) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        r->headers_out.status = (ctx->op == NGX_HTTP_SIMPLEKV_OP_PUT)
                                ? NGX_HTTP_CREATED : NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

        ngx_http_finalize_request(r, ngx_http_send_header(r));
        return;
    }

    rep = ctx->newest;

    if (rep == NULL || rep->outcome != NGX_HTTP_SIMPLEKV_FOUND) {
        ngx_http_simplekv_answer_error(ctx, NGX_HTTP_NOT_FOUND, "not found",
                                       NULL);
        return;
    }

    if (ngx_http_simplekv_send_etag(r, ctx, &rep->version) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = rep->body.len;

    if (rep->body_type.len) {
        r->headers_out.content_type = rep->body_type;

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    NGX_HTTP_SIMPLEKV_DEFAULT_CTYPE);
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (rep->body.len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->pos = rep->body.data;
    b->last = rep->body.data + rep->body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
}


void
ngx_http_simplekv_answer_error(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t status, const char *error, ngx_str_t *detail)
{
    ngx_http_simplekv_answering(ctx);

    ngx_http_finalize_request(ctx->request,
        ngx_http_simplekv_send_error(ctx->request, status, error, detail));
}


/*
 * A JSON error: {"error": "...", "detail": "..."}.  The detail is escaped
 * with nginx's own JSON string escaping.
 */
ngx_int_t
ngx_http_simplekv_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, ngx_str_t *detail)
{
    u_char     *p;
    size_t      len, elen, dlen;
    ngx_buf_t  *b;
    ngx_str_t   none = ngx_null_string;

    if (detail == NULL) {
        detail = &none;
    }

    elen = ngx_strlen(error);
    dlen = detail->len + ngx_escape_json(NULL, detail->data, detail->len);

    len = sizeof("{\"error\": \"\", \"detail\": \"\"}\n") - 1 + elen + dlen;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"error\": \"", sizeof("{\"error\": \"") - 1);
    p = ngx_cpymem(p, error, elen);
    p = ngx_cpymem(p, "\", \"detail\": \"", sizeof("\", \"detail\": \"") - 1);
    p = (u_char *) ngx_escape_json(p, detail->data, detail->len);
    p = ngx_cpymem(p, "\"}\n", sizeof("\"}\n") - 1);
    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    /* a 404 must not keep an ETag meant for a value */
    r->headers_out.etag = NULL;

    return ngx_http_simplekv_send_body(r, b, status, "application/json");
}


ngx_int_t
ngx_http_simplekv_send_body(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_uint_t status, const char *type)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
