/*
 * ngx_http_simplekv_range.c - a GET's Range and If-Range (RFC 9110 14.2,
 * 13.1.5), decided against the value's length and the ETag being sent.
 *
 * The same rules as storaged's (docs/protocol.md), so that a value read
 * from memory, from a temp file or streamed from a replica answers alike:
 * one byte range `bytes=a-b`, `a-` or `-n` (unit case-insensitive); `b`
 * past the end is cut to the end, `-n` longer than the value is all of
 * it; `a` at or past the end, `-0`, or any range of an empty value is not
 * satisfiable (416).  A Range that is not one well-formed byte range
 * (another unit, several ranges, a > b, garbage) is ignored: the whole
 * value, 200.  If-Range must name the ETag exactly (strong comparison);
 * anything else (a weak tag, another version, a date) gives the whole
 * value.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_range_number(u_char **pp, u_char *last,
    off_t *n);


/*
 * NGX_DECLINED: send the whole value; NGX_OK: send bytes *start..*end
 * (inclusive) as a 206; NGX_HTTP_RANGE_NOT_SATISFIABLE: 416.  The ETag
 * (r->headers_out.etag) must be set.
 */
ngx_int_t
ngx_http_simplekv_range(ngx_http_request_t *r, off_t length, off_t *start,
    off_t *end)
{
    u_char           *p, *last;
    off_t             a, b;
    ngx_str_t        *v, *etag;
    ngx_uint_t        suffix;

    if (r->headers_in.range == NULL || r->method != NGX_HTTP_GET) {
        return NGX_DECLINED;
    }

    if (r->headers_in.if_range) {
        v = &r->headers_in.if_range->value;
        etag = r->headers_out.etag ? &r->headers_out.etag->value : NULL;

        if (etag == NULL || v->len != etag->len
            || ngx_strncmp(v->data, etag->data, v->len) != 0)
        {
            return NGX_DECLINED;
        }
    }

    v = &r->headers_in.range->value;
    p = v->data;
    last = p + v->len;

    if (v->len < sizeof("bytes=") - 1
        || ngx_strncasecmp(p, (u_char *) "bytes=", sizeof("bytes=") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof("bytes=") - 1;

    suffix = 0;
    a = 0;
    b = -1;

    if (p < last && *p == '-') {
        suffix = 1;
        p++;

        if (ngx_http_simplekv_range_number(&p, last, &b) != NGX_OK) {
            return NGX_DECLINED;
        }

    } else {
        if (ngx_http_simplekv_range_number(&p, last, &a) != NGX_OK
            || p == last || *p++ != '-')
        {
            return NGX_DECLINED;
        }

        if (p < last
            && ngx_http_simplekv_range_number(&p, last, &b) != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (b != -1 && a > b) {
            return NGX_DECLINED;
        }
    }

    if (p != last) {
        return NGX_DECLINED;        /* several ranges, spaces, garbage */
    }

    if (length == 0) {
        return NGX_HTTP_RANGE_NOT_SATISFIABLE;
    }

    if (suffix) {
        if (b == 0) {
            return NGX_HTTP_RANGE_NOT_SATISFIABLE;
        }

        *start = (b >= length) ? 0 : length - b;
        *end = length - 1;
        return NGX_OK;
    }

    if (a >= length) {
        return NGX_HTTP_RANGE_NOT_SATISFIABLE;
    }

    *start = a;
    *end = (b == -1 || b >= length) ? length - 1 : b;

    return NGX_OK;
}


/* Decimal digits at *pp (at least one), without overflow. */
static ngx_int_t
ngx_http_simplekv_range_number(u_char **pp, u_char *last, off_t *n)
{
    u_char  *p;
    off_t    v;

    p = *pp;
    v = 0;

    if (p == last || *p < '0' || *p > '9') {
        return NGX_ERROR;
    }

    while (p < last && *p >= '0' && *p <= '9') {
        if (v >= (NGX_MAX_OFF_T_VALUE - 9) / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + (*p++ - '0');
    }

    *pp = p;
    *n = v;

    return NGX_OK;
}
