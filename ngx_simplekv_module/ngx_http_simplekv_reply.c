/*
 * ngx_http_simplekv_reply.c - what a client receives: a value with its
 * ETag, a write's acknowledgement, or a JSON error
 * {"error": "...", "detail": "..."}, including for requests that nginx
 * itself refused before the module saw them (simplekv_error, used by the
 * error_page lines of conf/simplekv_proxy.conf; a header too large comes
 * as 431, see there).
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_set_etag(ngx_http_request_t *r,
    const skv_version_t *version);
static ngx_int_t ngx_http_simplekv_if_match(ngx_http_request_t *r);


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


/* 200 with the value read from rep; If-None-Match is nginx's (304),
 * If-Match is checked here so that a failure is a JSON 412. */
ngx_int_t
ngx_http_simplekv_send_value(ngx_http_request_t *r,
    ngx_http_simplekv_replica_t *rep)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_str_t    detail;
    ngx_chain_t  out;

    if (ngx_http_simplekv_set_etag(r, &rep->reply.version) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_simplekv_if_match(r) != NGX_OK) {
        ngx_str_set(&detail, "If-Match names no current version of the "
                             "key");
        return ngx_http_simplekv_send_error(r, NGX_HTTP_PRECONDITION_FAILED,
                                            "precondition failed", &detail);
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
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = rep->body.data;
    b->last = rep->body.data + rep->body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
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


/* Strong comparison of If-Match's entity tags with the ETag just set:
 * NGX_OK when there is no If-Match, or "*", or one tag equals it. */
static ngx_int_t
ngx_http_simplekv_if_match(ngx_http_request_t *r)
{
    u_char     *p, *last, *start;
    ngx_str_t  *etag;

    if (r->headers_in.if_match == NULL) {
        return NGX_OK;
    }

    p = r->headers_in.if_match->value.data;
    last = p + r->headers_in.if_match->value.len;
    etag = &r->headers_out.etag->value;

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
