/*
 * ngx_http_simplekv_upstream.c - the replica location's own handler: one
 * replica request to storaged over nginx's upstream machinery, without
 * proxy_pass.
 *
 * `simplekv_replica_location;` installs ngx_http_simplekv_upstream_handler
 * as the content handler of the internal location every replica
 * subrequest goes to (replica.c).  Like nginx's memcached module it gives
 * nginx's upstream core its own create_request / reinit_request /
 * process_header / input filter callbacks, so that a replica request
 * costs no variable evaluation, no proxy_pass URL evaluation and no
 * generic proxy header processing:
 *
 *  - the node's upstream{} block (its servers, keepalive pool, balancer)
 *    is chosen per replica from rep->node: each replica location holds one
 *    ngx_http_upstream_conf_t per node (built at postconfiguration), so
 *    there is no lookup by name per request;
 *  - the request is written from the replica's ctx only: request line
 *    `METHOD <storage_uri> HTTP/1.1`, Host (the upstream's name),
 *    Content-Length and the body (PUT), Content-Type, X-Simplekv-Version,
 *    a PUT's Content-Digest/Repr-Digest (the client's, or the repaired
 *    value's), X-Simplekv-If-Version and Range (a GET pinned to one
 *    version: stream.c, spool.c), Authorization, X-Simplekv-Epoch.  The
 *    client's digests and range are the only things of its request sent,
 *    and only as the module checked them;
 *  - the answer is parsed with nginx's own parsers (status line, header
 *    lines, chunked framing).  Only what outcome.c and stream.c read is
 *    kept: the status, Content-Type (headers_out.content_type), the
 *    X-Simplekv-* headers, Repr-Digest and Content-Range
 *    (headers_out.headers) and Content-Length; the body goes through the
 *    output filters: into the subrequest's in-memory buffer
 *    (subrequest_output_buffer_size) for a replica of a round, to the
 *    client for stream.c's subrequest, or into spool.c's temp file (the
 *    copy filter writes it there and passes nothing on).  A pinned GET
 *    uses a second upstream conf per node with a larger buffer
 *    (NGX_HTTP_SIMPLEKV_BULK_BUFFER): the value flows through it;
 *  - the connection is offered to the keepalive pool (u->keepalive) only
 *    once the answer has been read completely, with no Connection: close
 *    and from an HTTP/1.1 server.
 *
 * Connect failures, resets, timeouts and bad answers are left to the
 * upstream core exactly as behind proxy_pass (next upstream off): 502 or
 * 504 to the post_subrequest handler, with u->request_sent telling outcome.c
 * whether the request may have been applied.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_upstream_create_request(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_upstream_reinit_request(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_upstream_status_line(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_upstream_process_header(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_upstream_header_line(
    ngx_http_request_t *r, ngx_http_simplekv_replica_t *rep);
static ngx_int_t ngx_http_simplekv_upstream_filter_init(void *data);
static ngx_int_t ngx_http_simplekv_upstream_copy_filter(void *data,
    ssize_t bytes);
static ngx_int_t ngx_http_simplekv_upstream_chunked_filter(void *data,
    ssize_t bytes);
static ngx_chain_t *ngx_http_simplekv_upstream_out_buf(ngx_http_request_t *r,
    ngx_http_upstream_t *u, ngx_chain_t ***ll);
static void ngx_http_simplekv_upstream_abort_request(ngx_http_request_t *r);
static void ngx_http_simplekv_upstream_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc);


#define ngx_http_simplekv_header_is(name, literal)                           \
    ((name)->len == sizeof(literal) - 1                                      \
     && ngx_strncasecmp((name)->data, (u_char *) literal,                    \
                        sizeof(literal) - 1) == 0)

#define NGX_HTTP_SIMPLEKV_HEADER_PREFIX  "X-Simplekv-"

/* the upstream buffer of a streamed or spooled value */
#define NGX_HTTP_SIMPLEKV_BULK_BUFFER    (64 * 1024)


ngx_int_t
ngx_http_simplekv_upstream_handler(ngx_http_request_t *r)
{
    ngx_http_upstream_t           *u;
    ngx_http_simplekv_replica_t   *rep;
    ngx_http_simplekv_loc_conf_t  *lcf;

    rep = ngx_http_simplekv_replica_ctx(r);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_simplekv_module);

    /* only the module's own replica subrequests come here */
    if (rep == NULL || lcf->upstreams == NULL
        || rep->node >= rep->ctx->mcf->nodes.nelts)
    {
        return NGX_HTTP_NOT_FOUND;
    }

    if (ngx_http_upstream_create(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u = r->upstream;

    ngx_str_set(&u->schema, "http://");
    u->output.tag = (ngx_buf_tag_t) &ngx_http_simplekv_module;

    u->conf = &lcf->upstreams[rep->node];

    if (rep->stream || rep->spool) {
        u->conf = &lcf->upstreams[rep->ctx->mcf->nodes.nelts + rep->node];
    }

    u->create_request = ngx_http_simplekv_upstream_create_request;
    u->reinit_request = ngx_http_simplekv_upstream_reinit_request;
    u->process_header = ngx_http_simplekv_upstream_status_line;
    u->abort_request = ngx_http_simplekv_upstream_abort_request;
    u->finalize_request = ngx_http_simplekv_upstream_finalize_request;

    u->input_filter_init = ngx_http_simplekv_upstream_filter_init;
    u->input_filter = ngx_http_simplekv_upstream_copy_filter;
    u->input_filter_ctx = r;

    r->main->count++;

    ngx_http_upstream_init(r);

    return NGX_DONE;
}


/*
 * The request to storaged, from the replica's ctx alone.  The body (the
 * client's value, or a write-back: replica.c put it in r->request_body)
 * follows as copies of its buffer headers, so that the replicas of one
 * write each send the same memory or file from their own position.
 */
static ngx_int_t
ngx_http_simplekv_upstream_create_request(ngx_http_request_t *r)
{
    size_t                          len;
    ngx_buf_t                      *b, *nb;
    ngx_uint_t                      put;
    ngx_chain_t                    *cl, *body;
    ngx_str_t                      *uri, *cdigest, *rdigest;
    ngx_http_upstream_t            *u;
    ngx_http_simplekv_node_t       *node;
    ngx_http_simplekv_replica_t    *rep;
    ngx_http_simplekv_main_conf_t  *mcf;

    static ngx_str_t                none = ngx_null_string;

    u = r->upstream;
    rep = ngx_http_simplekv_replica_ctx(r);
    mcf = rep->ctx->mcf;
    node = ngx_http_simplekv_replica_node(rep);
    uri = &rep->ctx->storage_uri;
    put = (r->method == NGX_HTTP_PUT);

    /* a client's write carries its digests; a repair the value's own */
    cdigest = &none;
    rdigest = &none;

    if (put) {
        if (rep->repair) {
            rdigest = &rep->digest;

        } else {
            cdigest = &rep->ctx->content_digest;
            rdigest = &rep->ctx->repr_digest;
        }
    }

    len = r->method_name.len + 1 + uri->len + sizeof(" HTTP/1.1" CRLF) - 1
          + sizeof("Host: " CRLF) - 1 + node->upstream.len
          + sizeof("X-Simplekv-Epoch: " CRLF) - 1 + mcf->epoch_text.len
          + sizeof(CRLF) - 1;

    if (put) {
        len += sizeof("Content-Length: " CRLF) - 1 + NGX_OFF_T_LEN;
    }

    if (rep->content_type.len) {
        len += sizeof("Content-Type: " CRLF) - 1 + rep->content_type.len;
    }

    if (rep->version_text.len) {
        len += sizeof("X-Simplekv-Version: " CRLF) - 1
               + rep->version_text.len;
    }

    if (cdigest->len) {
        len += sizeof("Content-Digest: " CRLF) - 1 + cdigest->len;
    }

    if (rdigest->len) {
        len += sizeof("Repr-Digest: " CRLF) - 1 + rdigest->len;
    }

    if (rep->if_version.len) {
        len += sizeof("X-Simplekv-If-Version: " CRLF) - 1
               + rep->if_version.len;
    }

    if (rep->range.len) {
        len += sizeof("Range: " CRLF) - 1 + rep->range.len;
    }

    if (mcf->authorization.len) {
        len += sizeof("Authorization: " CRLF) - 1 + mcf->authorization.len;
    }

    b = ngx_create_temp_buf(r->pool, len);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_copy(b->last, r->method_name.data, r->method_name.len);
    *b->last++ = ' ';
    b->last = ngx_copy(b->last, uri->data, uri->len);
    b->last = ngx_cpymem(b->last, " HTTP/1.1" CRLF "Host: ",
                         sizeof(" HTTP/1.1" CRLF "Host: ") - 1);
    b->last = ngx_copy(b->last, node->upstream.data, node->upstream.len);
    *b->last++ = CR; *b->last++ = LF;

    if (put) {
        b->last = ngx_sprintf(b->last, "Content-Length: %O" CRLF,
                              ngx_max(r->headers_in.content_length_n, 0));
    }

    if (rep->content_type.len) {
        b->last = ngx_sprintf(b->last, "Content-Type: %V" CRLF,
                              &rep->content_type);
    }

    if (rep->version_text.len) {
        b->last = ngx_sprintf(b->last, "X-Simplekv-Version: %V" CRLF,
                              &rep->version_text);
    }

    if (cdigest->len) {
        b->last = ngx_sprintf(b->last, "Content-Digest: %V" CRLF, cdigest);
    }

    if (rdigest->len) {
        b->last = ngx_sprintf(b->last, "Repr-Digest: %V" CRLF, rdigest);
    }

    if (rep->if_version.len) {
        b->last = ngx_sprintf(b->last, "X-Simplekv-If-Version: %V" CRLF,
                              &rep->if_version);
    }

    if (rep->range.len) {
        b->last = ngx_sprintf(b->last, "Range: %V" CRLF, &rep->range);
    }

    if (mcf->authorization.len) {
        b->last = ngx_sprintf(b->last, "Authorization: %V" CRLF,
                              &mcf->authorization);
    }

    b->last = ngx_sprintf(b->last, "X-Simplekv-Epoch: %V" CRLF CRLF,
                          &mcf->epoch_text);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv replica request to \"%V\": \"%V\"",
                   &node->name, &r->method_name);

    body = put ? u->request_bufs : NULL;

    cl->buf = b;
    u->request_bufs = cl;

    for ( /* void */ ; body; body = body->next) {
        nb = ngx_alloc_buf(r->pool);
        if (nb == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(nb, body->buf, sizeof(ngx_buf_t));

        cl->next = ngx_alloc_chain_link(r->pool);
        if (cl->next == NULL) {
            return NGX_ERROR;
        }

        cl = cl->next;
        cl->buf = nb;
    }

    cl->next = NULL;

    return NGX_OK;
}


/* Before another attempt (nginx's upstream core asks; with next upstream
 * off there is none today): parse the answer from its start. */
static ngx_int_t
ngx_http_simplekv_upstream_reinit_request(ngx_http_request_t *r)
{
    ngx_http_upstream_t          *u;
    ngx_http_simplekv_replica_t  *rep;

    rep = ngx_http_simplekv_replica_ctx(r);
    u = r->upstream;

    ngx_memzero(&rep->status, sizeof(ngx_http_status_t));
    ngx_memzero(&rep->chunked, sizeof(ngx_http_chunked_t));
    rep->has_length = 0;
    rep->received = 0;
    r->state = 0;

    u->process_header = ngx_http_simplekv_upstream_status_line;
    u->input_filter = ngx_http_simplekv_upstream_copy_filter;

    /* what the first attempt's headers left in the answer */
    if (ngx_list_init(&r->headers_out.headers, r->pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_null(&r->headers_out.content_type);
    r->headers_out.content_type_len = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_upstream_status_line(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_upstream_t          *u;
    ngx_http_simplekv_replica_t  *rep;

    rep = ngx_http_simplekv_replica_ctx(r);
    u = r->upstream;

    rc = ngx_http_parse_status_line(r, &u->buffer, &rep->status);

    if (rc == NGX_AGAIN) {
        return rc;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "simplekv: storage node sent no valid HTTP/1.x "
                      "status line");
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (u->state && u->state->status == 0) {
        u->state->status = rep->status.code;
    }

    u->headers_in.status_n = rep->status.code;

    if (rep->status.http_version < NGX_HTTP_VERSION_11) {
        u->headers_in.connection_close = 1;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv replica status %ui", rep->status.code);

    u->process_header = ngx_http_simplekv_upstream_process_header;

    return ngx_http_simplekv_upstream_process_header(r);
}


static ngx_int_t
ngx_http_simplekv_upstream_process_header(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_uint_t                    status;
    ngx_http_upstream_t          *u;
    ngx_http_simplekv_replica_t  *rep;

    rep = ngx_http_simplekv_replica_ctx(r);
    u = r->upstream;

    for ( ;; ) {

        rc = ngx_http_parse_header_line(r, &u->buffer, 1);

        if (rc == NGX_OK) {
            rc = ngx_http_simplekv_upstream_header_line(r, rep);

            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc != NGX_HTTP_PARSE_HEADER_DONE) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "simplekv: storage node sent an invalid header "
                          "line");
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }

        break;
    }

    status = u->headers_in.status_n;

    if (u->headers_in.chunked) {
        if (rep->has_length) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "simplekv: storage node sent both "
                          "\"Content-Length\" and \"Transfer-Encoding\"");
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }

        u->headers_in.content_length_n = -1;
    }

    if (status == NGX_HTTP_NO_CONTENT || status == NGX_HTTP_NOT_MODIFIED) {
        u->headers_in.content_length_n = 0;
        u->headers_in.chunked = 0;
    }

    /* an answer without a body can go back to the pool right away (also
     * when the subrequest takes its headers only: HEAD, a value too
     * large) */
    if (r->method == NGX_HTTP_HEAD
        || (!u->headers_in.chunked && u->headers_in.content_length_n == 0))
    {
        u->keepalive = !u->headers_in.connection_close;
    }

    return NGX_OK;
}


/*
 * One header line of the answer.  Content-Length, Transfer-Encoding and
 * Connection set the framing; Content-Type, the X-Simplekv-* headers,
 * Repr-Digest and Content-Range are kept for outcome.c and stream.c
 * (copied: the buffer is reused for the body); everything else is
 * ignored.
 */
static ngx_int_t
ngx_http_simplekv_upstream_header_line(ngx_http_request_t *r,
    ngx_http_simplekv_replica_t *rep)
{
    off_t                 n;
    u_char               *p;
    ngx_str_t             name, value;
    ngx_table_elt_t      *h;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    name.data = r->header_name_start;
    name.len = r->header_name_end - r->header_name_start;
    value.data = r->header_start;
    value.len = r->header_end - r->header_start;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv replica header: \"%V: %V\"", &name, &value);

    if ((name.len > sizeof(NGX_HTTP_SIMPLEKV_HEADER_PREFIX) - 1
         && ngx_strncasecmp(name.data,
                            (u_char *) NGX_HTTP_SIMPLEKV_HEADER_PREFIX,
                            sizeof(NGX_HTTP_SIMPLEKV_HEADER_PREFIX) - 1)
            == 0)
        || ngx_http_simplekv_header_is(&name, "Repr-Digest")
        || ngx_http_simplekv_header_is(&name, "Content-Range"))
    {
        h = ngx_list_push(&r->headers_out.headers);
        p = ngx_pnalloc(r->pool, 2 * name.len + value.len + 3);
        if (h == NULL || p == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key.len = name.len;
        h->key.data = p;
        p = ngx_cpymem(p, name.data, name.len);
        *p++ = '\0';
        h->value.len = value.len;
        h->value.data = p;
        p = ngx_cpymem(p, value.data, value.len);
        *p++ = '\0';
        h->lowcase_key = p;
        ngx_strlow(p, name.data, name.len);
        p[name.len] = '\0';

        return NGX_OK;
    }

    if (ngx_http_simplekv_header_is(&name, "Content-Length")) {
        n = ngx_atoof(value.data, value.len);

        if (n == NGX_ERROR || rep->has_length) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "simplekv: storage node sent an invalid or "
                          "duplicate \"Content-Length\"");
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }

        rep->has_length = 1;
        u->headers_in.content_length_n = n;
        return NGX_OK;
    }

    if (ngx_http_simplekv_header_is(&name, "Transfer-Encoding")) {
        if (value.len != sizeof("chunked") - 1
            || ngx_strncasecmp(value.data, (u_char *) "chunked",
                               sizeof("chunked") - 1)
               != 0
            || u->headers_in.chunked)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "simplekv: storage node sent an unsupported "
                          "\"Transfer-Encoding\"");
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }

        u->headers_in.chunked = 1;
        return NGX_OK;
    }

    if (ngx_http_simplekv_header_is(&name, "Connection")) {
        if (ngx_strlcasestrn(value.data, value.data + value.len,
                             (u_char *) "close", sizeof("close") - 2)
            != NULL)
        {
            u->headers_in.connection_close = 1;
        }

        return NGX_OK;
    }

    if (ngx_http_simplekv_header_is(&name, "Content-Type")) {
        p = ngx_pnalloc(r->pool, value.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, value.data, value.len);

        r->headers_out.content_type.data = p;
        r->headers_out.content_type.len = value.len;
        r->headers_out.content_type_len = value.len;
        r->headers_out.content_type_lowcase = NULL;
    }

    return NGX_OK;
}


/*
 * The body's framing (RFC 9112 6.3): none after 204, 304 or a HEAD;
 * chunked; Content-Length; else until the node closes (never reused).
 */
static ngx_int_t
ngx_http_simplekv_upstream_filter_init(void *data)
{
    ngx_http_request_t  *r = data;

    ngx_uint_t            status;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    status = u->headers_in.status_n;

    if (status == NGX_HTTP_NO_CONTENT || status == NGX_HTTP_NOT_MODIFIED
        || r->method == NGX_HTTP_HEAD
        || (!u->headers_in.chunked && u->headers_in.content_length_n == 0))
    {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else if (u->headers_in.chunked) {
        u->input_filter = ngx_http_simplekv_upstream_chunked_filter;
        u->length = 1;   /* until the last chunk */

    } else {
        u->length = u->headers_in.content_length_n;
    }

    return NGX_OK;
}


/*
 * A body with a Content-Length (or none: until the connection closes).
 * spool.c's subrequest writes it to its temp file instead of passing it
 * on.
 */
static ngx_int_t
ngx_http_simplekv_upstream_copy_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t  *r = data;

    u_char                       *data_start;
    ssize_t                       n;
    ngx_buf_t                    *b;
    ngx_chain_t                  *cl, **ll;
    ngx_http_upstream_t          *u;
    ngx_http_simplekv_replica_t  *rep;

    u = r->upstream;
    rep = ngx_http_simplekv_replica_ctx(r);

    if (u->length == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "simplekv: storage node sent more than its "
                      "\"Content-Length\"");
        u->keepalive = 0;
        return NGX_OK;
    }

    data_start = u->buffer.last;
    u->buffer.last += bytes;
    n = bytes;

    if (u->length != -1) {
        if (n > u->length) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "simplekv: storage node sent more than its "
                          "\"Content-Length\"");
            n = (ssize_t) u->length;
        }

        u->length -= n;

        if (u->length == 0) {
            u->keepalive = (n == bytes) && !u->headers_in.connection_close;
        }
    }

    rep->received += n;

    if (rep->spool) {
        return ngx_http_simplekv_spool_write(rep, data_start, n);
    }

    ll = NULL;

    cl = ngx_http_simplekv_upstream_out_buf(r, u, &ll);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;
    b->pos = data_start;
    b->last = data_start + n;

    return NGX_OK;
}


/* A chunked body (storaged's listings), decoded with nginx's parser. */
static ngx_int_t
ngx_http_simplekv_upstream_chunked_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t  *r = data;

    off_t                         avail;
    ngx_int_t                     rc;
    ngx_buf_t                    *in, *b;
    ngx_chain_t                  *cl, **ll;
    ngx_http_upstream_t          *u;
    ngx_http_simplekv_replica_t  *rep;

    rep = ngx_http_simplekv_replica_ctx(r);
    u = r->upstream;
    in = &u->buffer;

    in->pos = in->last;
    in->last += bytes;

    ll = NULL;

    for ( ;; ) {

        rc = ngx_http_parse_chunked(r, in, &rep->chunked);

        if (rc == NGX_OK) {
            /* data of a chunk: as much of it as this read holds */

            cl = ngx_http_simplekv_upstream_out_buf(r, u, &ll);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            b = cl->buf;
            b->pos = in->pos;

            avail = in->last - in->pos;

            if (avail >= rep->chunked.size) {
                in->pos += (size_t) rep->chunked.size;
                rep->chunked.size = 0;

            } else {
                rep->chunked.size -= avail;
                in->pos = in->last;
            }

            b->last = in->pos;

            continue;
        }

        if (rc == NGX_DONE) {
            u->length = 0;
            u->keepalive = !u->headers_in.connection_close;

            if (in->pos != in->last) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "simplekv: storage node sent data after the "
                              "last chunk");
                u->keepalive = 0;
            }

            return NGX_OK;
        }

        if (rc == NGX_AGAIN) {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "simplekv: storage node sent an invalid chunked "
                      "body");

        return NGX_ERROR;
    }
}


/*
 * A free buffer header appended to u->out_bufs, pointing into u->buffer
 * (the caller sets pos and last).  *ll is where to append (NULL: at the
 * end of the chain); it is left after the new link.
 */
static ngx_chain_t *
ngx_http_simplekv_upstream_out_buf(ngx_http_request_t *r,
    ngx_http_upstream_t *u, ngx_chain_t ***ll)
{
    ngx_chain_t  *cl;

    if (*ll == NULL) {
        for (*ll = &u->out_bufs; **ll; *ll = &(**ll)->next) {
            /* void */
        }
    }

    cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
    if (cl == NULL) {
        return NULL;
    }

    **ll = cl;
    *ll = &cl->next;

    cl->buf->flush = 1;
    cl->buf->memory = 1;
    cl->buf->tag = u->output.tag;

    return cl;
}


static void
ngx_http_simplekv_upstream_abort_request(ngx_http_request_t *r)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv replica request aborted");
}


/*
 * A PUT that failed while its body was being sent: storaged refuses a
 * value over its --max-value-size (413) or a full disk (507) before
 * reading the body, then closes, and nginx meets the closed connection
 * (EPIPE, reset) before it reads the answer.  The answer is usually in
 * the socket already: its status line is read here (the connection is
 * still open), so that outcome.c sees the refusal instead of an unknown
 * failure.
 */
static void
ngx_http_simplekv_upstream_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc)
{
    u_char                        buf[64];
    ssize_t                       n;
    ngx_uint_t                    status;
    ngx_http_upstream_t          *u;
    ngx_http_simplekv_replica_t  *rep;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv replica request finalized: %i", rc);

    u = r->upstream;
    rep = ngx_http_simplekv_replica_ctx(r);

    if (rc != NGX_HTTP_BAD_GATEWAY || r->method != NGX_HTTP_PUT
        || rep == NULL || u->headers_in.status_n != 0
        || u->peer.connection == NULL)
    {
        return;
    }

    n = recv(u->peer.connection->fd, buf, sizeof(buf), 0);

    if (n < (ssize_t) sizeof("HTTP/1.1 413") - 1
        || ngx_strncmp(buf, "HTTP/1.", sizeof("HTTP/1.") - 1) != 0
        || buf[sizeof("HTTP/1.1") - 1] != ' ')
    {
        return;
    }

    status = ngx_atoi(&buf[sizeof("HTTP/1.1 ") - 1], 3);

    if (status == (ngx_uint_t) NGX_ERROR || !skv_status_is_refusal(status)) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "simplekv: the storage node refused the value with %ui "
                  "before reading it", status);

    rep->early_status = status;
}


/*
 * At postconfiguration: the replica location's upstream settings, one copy
 * per node naming that node's upstream block, then a second copy per node
 * for pinned GETs (stream.c, spool.c) with a larger buffer.  next upstream is off (a
 * failed replica is the module's to judge, never retried elsewhere),
 * unbuffered (each read goes straight into the in-memory answer), errors
 * are not intercepted; the timeouts are backstops under
 * simplekv_replica_timeout.
 */
ngx_int_t
ngx_http_simplekv_upstream_init_location(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf, ngx_http_simplekv_site_t *site)
{
    ngx_uint_t                     i;
    ngx_http_upstream_conf_t      *ucf;
    ngx_http_simplekv_node_t      *nodes;
    ngx_http_simplekv_loc_conf_t  *lcf;

    lcf = site->lcf;

    if (site->clcf->handler != ngx_http_simplekv_upstream_handler) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the replica location \"%V\" has another handler "
                      "(proxy_pass?): simplekv_replica_location now sends "
                      "replica requests itself; remove proxy_pass and the "
                      "proxy_* directives from it (see conf/"
                      "simplekv_proxy.conf)", &site->clcf->name);
        return NGX_ERROR;
    }

    nodes = mcf->nodes.elts;

    ucf = ngx_pcalloc(cf->pool,
                      2 * mcf->nodes.nelts * sizeof(ngx_http_upstream_conf_t));
    if (ucf == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < 2 * mcf->nodes.nelts; i++) {
        /*
         * set by ngx_pcalloc(): buffering, intercept_errors,
         * ignore_client_abort, store, cache, pass_trailers, local, ...
         */

        ucf[i].upstream = nodes[i % mcf->nodes.nelts].uscf;
        ucf[i].connect_timeout = lcf->storage_connect_timeout;
        ucf[i].send_timeout = lcf->storage_send_timeout;
        ucf[i].read_timeout = lcf->storage_read_timeout;
        ucf[i].buffer_size = (i < mcf->nodes.nelts)
                             ? lcf->storage_buffer_size
                             : ngx_max(lcf->storage_buffer_size,
                                       NGX_HTTP_SIMPLEKV_BULK_BUFFER);
        ucf[i].next_upstream = NGX_CONF_BITMASK_SET
                               |NGX_HTTP_UPSTREAM_FT_OFF;
        ucf[i].next_upstream_tries = 0;
        ucf[i].next_upstream_timeout = 0;
        ucf[i].socket_keepalive = 0;
        ngx_str_set(&ucf[i].module, "simplekv");
    }

    lcf->upstreams = ucf;

    return NGX_OK;
}
