/*
 * ngx_http_simplekv_reply.c - what a client receives: a value with its
 * ETag, Repr-Digest and (range.c) the range asked for, from memory (this
 * file), a temp file (spool.c) or a replica (stream.c), all with the same
 * headers and preconditions; a write's acknowledgement; or a JSON error
 * {"error": "...", "detail": "..."}, including for requests that nginx
 * itself refused before the module saw them (simplekv_error, used by the
 * error_page lines of conf/simplekv_proxy.conf; a header too large comes
 * as 431, see there).
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_set_etag(ngx_http_request_t *r,
    const skv_version_t *version);
static ngx_int_t ngx_http_simplekv_etag_listed(ngx_table_elt_t *h,
    ngx_str_t *etag, ngx_uint_t weak);


/* 201 (PUT) or 204 (DELETE), with the write's version as ETag. */
ngx_int_t
ngx_http_simplekv_send_written(ngx_http_request_t *r, ngx_uint_t op,
    const skv_version_t *version)
{
    if (ngx_http_simplekv_set_etag(r, version) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = (op == NGX_HTTP_SIMPLEKV_OP_PUT)
                            ? NGX_HTTP_CREATED : NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/*
 * 200 (or 206, range.c) with a value held in memory (rep->body); If-Match,
 * If-None-Match and Range are answered first (preconditions()).
 */
ngx_int_t
ngx_http_simplekv_send_value(ngx_http_request_t *r,
    ngx_http_simplekv_replica_t *rep)
{
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_http_simplekv_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_simplekv_module);

    rc = ngx_http_simplekv_send_value_header(ctx, rep);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = rep->body.data;
    b->last = rep->body.data + rep->body.len;

    if (ctx->ranged) {
        b->pos = rep->body.data + ctx->range_start;
        b->last = rep->body.data + ctx->range_end + 1;
    }

    b->memory = 1;

    return ngx_http_simplekv_send_last_buf(r, b);
}


/*
 * A value's answer up to its body (send_value(), spool.c): If-Match,
 * If-None-Match and Range first (preconditions()), then the value's
 * headers, sent.  NGX_DECLINED: the body is to follow; anything else is
 * the request's result.
 */
ngx_int_t
ngx_http_simplekv_send_value_header(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    rc = ngx_http_simplekv_preconditions(ctx, rep);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_simplekv_value_headers(ctx, rep) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return NGX_DECLINED;
}


/* The whole body in one buffer, the answer's last. */
ngx_int_t
ngx_http_simplekv_send_last_buf(ngx_http_request_t *r, ngx_buf_t *b)
{
    ngx_chain_t  out;

    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * Before a value is sent: its ETag; If-Match (a JSON 412) and
 * If-None-Match (304) against it; for a GET, the Range (range.c: ctx->
 * ranged and the range, or a JSON 416).  NGX_DECLINED: send the value;
 * else what was answered instead (for ngx_http_finalize_request()).
 */
ngx_int_t
ngx_http_simplekv_preconditions(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep)
{
    ngx_int_t            rc;
    ngx_str_t            detail;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->ranged = 0;

    if (ngx_http_simplekv_set_etag(r, &rep->reply.version) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->headers_in.if_match
        && ngx_http_simplekv_etag_listed(r->headers_in.if_match,
                                         &r->headers_out.etag->value, 0)
           != NGX_OK)
    {
        ngx_str_set(&detail, "If-Match names no current version of the "
                             "key");
        return ngx_http_simplekv_send_error(r, NGX_HTTP_PRECONDITION_FAILED,
                                            "precondition failed", &detail);
    }

    if (r->headers_in.if_none_match
        && ngx_http_simplekv_etag_listed(r->headers_in.if_none_match,
                                         &r->headers_out.etag->value, 1)
           == NGX_OK)
    {
        r->headers_out.status = NGX_HTTP_NOT_MODIFIED;
        r->headers_out.content_length_n = -1;
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    rc = ngx_http_simplekv_range(r, rep->length, &ctx->range_start,
                                 &ctx->range_end);

    if (rc == NGX_HTTP_RANGE_NOT_SATISFIABLE) {
        return ngx_http_simplekv_send_unsatisfiable(r, rep->length);
    }

    ctx->ranged = (rc == NGX_OK);

    return NGX_DECLINED;
}


/*
 * The headers of a value (after preconditions()): 200 or 206 with
 * Content-Range, Content-Length, Content-Type, the ETag already set,
 * Repr-Digest (of the whole value, also on a 206) and Accept-Ranges.  A
 * HEAD or an empty value is header only.
 */
ngx_int_t
ngx_http_simplekv_value_headers(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep)
{
    u_char              *p;
    ngx_str_t            value;
    ngx_http_request_t  *r;

    r = ctx->request;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = rep->length;

    if (rep->body_type.len) {
        r->headers_out.content_type = rep->body_type;

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    NGX_HTTP_SIMPLEKV_DEFAULT_CTYPE);
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (rep->digest.len
        && ngx_http_simplekv_add_header(r, "Repr-Digest", &rep->digest)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&value, "bytes");

    if (ngx_http_simplekv_add_header(r, "Accept-Ranges", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->ranged) {
        p = ngx_pnalloc(r->pool, sizeof("bytes --/") - 1 + 3 * NGX_OFF_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "bytes %O-%O/%O", ctx->range_start,
                                ctx->range_end, rep->length)
                    - p;

        if (ngx_http_simplekv_add_header(r, "Content-Range", &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        r->headers_out.status = NGX_HTTP_PARTIAL_CONTENT;
        r->headers_out.content_length_n = ctx->range_end - ctx->range_start
                                          + 1;
    }

    if (r->headers_out.content_length_n == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    return NGX_OK;
}


/* 416 with Content-Range: bytes * / <length>, a JSON error. */
ngx_int_t
ngx_http_simplekv_send_unsatisfiable(ngx_http_request_t *r, off_t length)
{
    u_char     *p;
    ngx_str_t   value, detail;

    p = ngx_pnalloc(r->pool, sizeof("bytes */") - 1 + NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = p;
    value.len = ngx_sprintf(p, "bytes */%O", length) - p;

    if (ngx_http_simplekv_add_header(r, "Content-Range", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&detail, "the Range starts at or after the end of the "
                         "value (or asks for none of it)");

    return ngx_http_simplekv_send_error(r, NGX_HTTP_RANGE_NOT_SATISFIABLE,
                                        "range not satisfiable", &detail);
}


/* A response header whose name and value outlive the request. */
ngx_int_t
ngx_http_simplekv_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_set_etag(ngx_http_request_t *r,
    const skv_version_t *version)
{
    u_char           *p;
    ngx_table_elt_t  *etag;

    etag = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, SKV_VERSION_TEXT_LEN + 3);

    if (etag == NULL || p == NULL) {
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


/*
 * Does the If-Match or If-None-Match header h name this ETag, or "*"?
 * If-Match compares strongly; If-None-Match weakly (a W/ prefix is
 * ignored).  NGX_OK: it does.
 */
static ngx_int_t
ngx_http_simplekv_etag_listed(ngx_table_elt_t *h, ngx_str_t *etag,
    ngx_uint_t weak)
{
    u_char  *p, *last, *start;

    p = h->value.data;
    last = p + h->value.len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',' && *p != ' ' && *p != '\t') {
            p++;
        }

        if (p - start == 1 && *start == '*') {
            return NGX_OK;
        }

        if (weak && p - start > 2 && start[0] == 'W' && start[1] == '/') {
            start += 2;
        }

        if ((size_t) (p - start) == etag->len
            && ngx_strncmp(start, etag->data, etag->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
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

    /* an error must not keep an ETag meant for a value */
    if (r->headers_out.etag) {
        r->headers_out.etag->hash = 0;
        r->headers_out.etag = NULL;
    }

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

    /* generated answers change between requests */
    r->headers_out.last_modified_time = -1;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (b->last == b->pos) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * simplekv_error: the JSON form of what nginx refused before any location
 * handler ran (error_page 400 405 413 414 494 501 505 in
 * conf/simplekv_proxy.conf).
 * nginx keeps the reason in its error log only; the detail names the
 * possibilities.
 */
ngx_int_t
ngx_http_simplekv_error_handler(ngx_http_request_t *r)
{
    ngx_str_t         detail;
    ngx_table_elt_t  *h;

    switch (r->err_status) {

    case NGX_HTTP_BAD_REQUEST:
        if (r->headers_in.chunked) {
            ngx_str_set(&detail, "nginx refused the chunked request body: "
                                 "malformed chunk framing");

        } else {
            ngx_str_set(&detail, "nginx refused the request line or its "
                                 "headers: a malformed percent-escape, an "
                                 "encoded NUL byte, a path above /, or a "
                                 "duplicate or conflicting header such as "
                                 "two Content-Lengths (the error log says "
                                 "which)");
        }

        return ngx_http_simplekv_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "bad request", &detail);

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        ngx_str_set(&detail, "the value is larger than "
                             "simplekv_max_value_size");
        return ngx_http_simplekv_send_error(r,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            "value too large", &detail);

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        ngx_str_set(&detail, "the request line is longer than nginx's "
                             "large_client_header_buffers allow; keys are "
                             "at most 1024 bytes");
        return ngx_http_simplekv_send_error(r,
                                            NGX_HTTP_REQUEST_URI_TOO_LARGE,
                                            "key too long", &detail);

    case NGX_HTTP_REQUEST_HEADER_TOO_LARGE:
    case 431:
        ngx_str_set(&detail, "a request header is longer than nginx's "
                             "large_client_header_buffers allow");
        ngx_str_set(&r->headers_out.status_line,
                    "431 Request Header Fields Too Large");
        return ngx_http_simplekv_send_error(r, 431,
                                            "request header too large",
                                            &detail);

    case NGX_HTTP_NOT_ALLOWED:
        /* TRACE: nginx refuses it before any location runs */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, HEAD, PUT, DELETE");

        ngx_str_set(&detail, "use GET, HEAD, PUT or DELETE");
        return ngx_http_simplekv_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                            "method not allowed", &detail);

    case NGX_HTTP_NOT_IMPLEMENTED:
        ngx_str_set(&detail, "nginx takes no Transfer-Encoding but "
                             "chunked");
        return ngx_http_simplekv_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                                            "not implemented", &detail);

    case NGX_HTTP_VERSION_NOT_SUPPORTED:
        ngx_str_set(&detail, "use HTTP/1.0 or HTTP/1.1");
        return ngx_http_simplekv_send_error(r,
                                            NGX_HTTP_VERSION_NOT_SUPPORTED,
                                            "http version not supported",
                                            &detail);

    default:
        ngx_str_set(&detail, "nginx refused the request");
        return ngx_http_simplekv_send_error(r,
                   r->err_status ? r->err_status : NGX_HTTP_BAD_REQUEST,
                   "bad request", &detail);
    }
}
