/*
 * ngx_http_simplekv_list.c - GET /<prefix>?list[&limit=N][&after=CURSOR]:
 * one page of the keys under a prefix, in byte order, deleted keys left out,
 * as {"keys": [...], "next": CURSOR-or-null}.  Keys and the cursor are
 * percent-encoded (JSON strings cannot carry arbitrary bytes); the cursor
 * is the last key the page covers, and comes back as `after`.
 *
 * Every node is asked for its sorted /v1/keys listing from the cursor, at
 * most a page of lines each, and the answers are merged by the core's
 * skv_listmerge (core/skv_listmerge.h, fuzzed): for each key the newest
 * version wins (so a key deleted on a quorum stays out however many stale
 * copies exist), and the page ends at the smallest last key of any node
 * that returned a full page - past it such a node may hold keys not
 * fetched yet.  Memory is bounded by nodes x page size, never by the
 * number of keys.  The listing fails (503) when W or more nodes do not
 * answer, since it could then miss acknowledged writes (decide.c).
 */

#include "ngx_http_simplekv_module.h"
#include "skv_keyline.h"
#include "skv_listmerge.h"


#define NGX_HTTP_SIMPLEKV_LIST_DEFAULT  1000
#define NGX_HTTP_SIMPLEKV_LIST_MAX      10000
/* lines asked of one node: a page of the longest keys must fit the
 * snippet's 16m subrequest_output_buffer_size */
#define NGX_HTTP_SIMPLEKV_NODE_LINES    4096


static ngx_int_t ngx_http_simplekv_decode_arg(ngx_http_request_t *r,
    ngx_str_t *enc, u_char *out, size_t *out_len, ngx_uint_t allow_empty);
static ngx_int_t ngx_http_simplekv_list_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value, ngx_uint_t *present,
    ngx_str_t *detail);
static ngx_int_t ngx_http_simplekv_list_uri(ngx_http_simplekv_ctx_t *ctx,
    u_char *prefix, size_t prefix_len, u_char *after, size_t after_len);
static ngx_int_t ngx_http_simplekv_list_collect(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep, ngx_array_t *entries,
    skv_listmerge_t *merge);
static ngx_int_t ngx_http_simplekv_list_reply(ngx_http_simplekv_ctx_t *ctx,
    skv_listentry_t *e, skv_listpage_t *page);


static ngx_int_t
ngx_http_simplekv_decode_arg(ngx_http_request_t *r, ngx_str_t *enc,
    u_char *out, size_t *out_len, ngx_uint_t allow_empty)
{
    if (enc->len == 0 && allow_empty) {
        *out_len = 0;
        return NGX_OK;
    }

    if (enc->len > SKV_KEY_ENCODED_MAX) {
        return NGX_DECLINED;
    }

    return skv_key_decode((const char *) enc->data, enc->len, out, out_len)
           == SKV_OK ? NGX_OK : NGX_DECLINED;
}


/* The value of a listing argument given at most once. */
static ngx_int_t
ngx_http_simplekv_list_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value, ngx_uint_t *present, ngx_str_t *detail)
{
    ngx_uint_t  count;

    (void) ngx_http_simplekv_arg(&r->args, name, value, &count);

    *present = (count > 0);

    if (count > 1) {
        detail->data = ngx_pnalloc(r->pool, 64);
        if (detail->data == NULL) {
            return NGX_ERROR;
        }

        detail->len = ngx_sprintf(detail->data, "%s= is given more than "
                                  "once", name) - detail->data;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Parse the prefix, limit and cursor, and aim the listing at every node.
 * NGX_DECLINED: bad arguments, with the client's status, error and detail
 * set; NGX_ERROR: no memory.
 */
ngx_int_t
ngx_http_simplekv_list_parse(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t *status, const char **error, ngx_str_t *detail)
{
    u_char              *prefix, *after;
    size_t               prefix_len, after_len;
    ngx_int_t            n, rc;
    ngx_str_t            raw, value;
    ngx_uint_t           i, present;
    ngx_http_request_t  *r;

    r = ctx->request;
    *status = NGX_HTTP_BAD_REQUEST;
    *error = "bad key";

    prefix = ngx_pnalloc(r->pool, 2 * SKV_KEY_MAX);
    if (prefix == NULL) {
        return NGX_ERROR;
    }

    after = prefix + SKV_KEY_MAX;

    if (ngx_http_simplekv_path_key(r, &raw) != NGX_OK) {
        ngx_str_set(detail, "the request path does not begin with this "
                            "location's prefix as written; use ?prefix=");
        return NGX_DECLINED;
    }

    /* prefix= may carry bytes nginx refuses in a path (%00) */
    rc = ngx_http_simplekv_list_arg(r, "prefix", &value, &present, detail);
    if (rc != NGX_OK) {
        return rc;
    }

    if (present) {
        raw = value;
    }

    if (ngx_http_simplekv_decode_arg(r, &raw, prefix, &prefix_len, 1)
        != NGX_OK)
    {
        ngx_str_set(detail, "the prefix is not a valid percent-encoded key "
                            "prefix of at most 1024 bytes");
        return NGX_DECLINED;
    }

    *error = "bad limit";
    ctx->list_limit = NGX_HTTP_SIMPLEKV_LIST_DEFAULT;

    rc = ngx_http_simplekv_list_arg(r, "limit", &value, &present, detail);
    if (rc != NGX_OK) {
        return rc;
    }

    if (present) {
        n = ngx_atoi(value.data, value.len);

        if (n < 1 || n > NGX_HTTP_SIMPLEKV_LIST_MAX) {
            ngx_str_set(detail, "limit must be 1..10000");
            return NGX_DECLINED;
        }

        ctx->list_limit = (ngx_uint_t) n;
    }

    ctx->list_node_limit = ngx_min(ctx->list_limit,
                                   NGX_HTTP_SIMPLEKV_NODE_LINES);

    *error = "bad cursor";
    after_len = 0;

    rc = ngx_http_simplekv_list_arg(r, "after", &value, &present, detail);
    if (rc != NGX_OK) {
        return rc;
    }

    if (present
        && ngx_http_simplekv_decode_arg(r, &value, after, &after_len, 1)
           != NGX_OK)
    {
        ngx_str_set(detail, "after must be a cursor from a previous page");
        return NGX_DECLINED;
    }

    ctx->list_after = after;
    ctx->list_after_len = after_len;

    if (ngx_http_simplekv_list_uri(ctx, prefix, prefix_len, after,
                                   after_len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* every node holds part of the key space */
    ctx->nreplicas = ctx->mcf->nodes.nelts;

    for (i = 0; i < ctx->nreplicas; i++) {
        ctx->order[i] = i;
    }

    return NGX_OK;
}


/* /v1/keys?prefix=<enc>&after=<enc>&limit=<n>, in canonical encoding
 * (/v1/ns/<name>/keys?... in a namespace other than "default") */
static ngx_int_t
ngx_http_simplekv_list_uri(ngx_http_simplekv_ctx_t *ctx, u_char *prefix,
    size_t prefix_len, u_char *after, size_t after_len)
{
    u_char  *p;
    size_t   len;

    len = ctx->lcf->ns_list_path.len
          + sizeof("?prefix=&after=&limit=") - 1 + NGX_INT_T_LEN
          + skv_key_encode(prefix, prefix_len, NULL, 0)
          + skv_key_encode(after, after_len, NULL, 0);

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->storage_uri.data = p;

    p = ngx_cpymem(p, ctx->lcf->ns_list_path.data,
                   ctx->lcf->ns_list_path.len);
    p = ngx_cpymem(p, "?prefix=", sizeof("?prefix=") - 1);
    p += skv_key_encode(prefix, prefix_len, (char *) p, SKV_KEY_ENCODED_MAX);
    p = ngx_cpymem(p, "&after=", sizeof("&after=") - 1);
    p += skv_key_encode(after, after_len, (char *) p, SKV_KEY_ENCODED_MAX);
    p = ngx_sprintf(p, "&limit=%ui", ctx->list_node_limit);

    ctx->storage_uri.len = p - ctx->storage_uri.data;

    return NGX_OK;
}


/* Merge the nodes' listings into the page and send it (decide.c calls
 * this once enough nodes answered); returns what to finalize with. */
ngx_int_t
ngx_http_simplekv_list_answer(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                    i;
    ngx_array_t                   entries;
    skv_listpage_t                page;
    skv_listmerge_t               merge;
    ngx_http_simplekv_replica_t  *rep;

    if (ngx_array_init(&entries, ctx->request->pool, 64,
                       sizeof(skv_listentry_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    skv_listmerge_init(&merge, ctx->list_after, ctx->list_after_len,
                       ctx->list_limit);

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL || !rep->done
            || rep->reply.kind != SKV_REPLY_LISTED)
        {
            continue;
        }

        if (ngx_http_simplekv_list_collect(ctx, rep, &entries, &merge)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    skv_listmerge_page(&merge, entries.elts, entries.nelts, &page);

    return ngx_http_simplekv_list_reply(ctx, entries.elts, &page);
}


/* Add one node's key lines to the entries and to the merge's bound. */
static ngx_int_t
ngx_http_simplekv_list_collect(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep, ngx_array_t *entries,
    skv_listmerge_t *merge)
{
    u_char           *p, *last, *eol, *key;
    ngx_uint_t        first;
    skv_keyline_t     kl;
    skv_listentry_t  *e;

    p = rep->body.data;
    last = p + rep->body.len;
    first = entries->nelts;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if (skv_keyline_parse((const char *) p, eol - p, &kl) != SKV_OK) {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "simplekv: a malformed key listing line from "
                          "a node");
            return NGX_ERROR;
        }

        e = ngx_array_push(entries);
        if (e == NULL) {
            return NGX_ERROR;
        }

        key = ngx_pnalloc(ctx->request->pool, kl.key_len + 1);
        if (key == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(key, kl.key, kl.key_len);
        e->key = key;
        e->key_len = kl.key_len;
        e->version = kl.version;
        e->tombstone = kl.tombstone;

        p = eol + 1;
    }

    /* the array may have moved: the node's lines from their index */
    e = entries->elts;
    skv_listmerge_node(merge, e + first, entries->nelts - first,
                       entries->nelts - first >= ctx->list_node_limit);

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_list_reply(ngx_http_simplekv_ctx_t *ctx,
    skv_listentry_t *e, skv_listpage_t *page)
{
    u_char              *p;
    size_t               size;
    ngx_buf_t           *b;
    ngx_uint_t           i;
    ngx_http_request_t  *r;

    r = ctx->request;

    /* every key is at most 3 KiB encoded; quotes, commas, new lines */
    size = sizeof("{\"keys\": [\n],\n \"next\": null}\n") + 16
           + (page->shown + 1) * (SKV_KEY_ENCODED_MAX + 8);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"keys\": [", sizeof("{\"keys\": [") - 1);

    for (i = 0; i < page->shown; i++) {
        p = ngx_sprintf(p, "%s\n  \"", i ? "," : "");
        p += skv_key_encode(e[i].key, e[i].key_len, (char *) p,
                            SKV_KEY_ENCODED_MAX);
        *p++ = '"';
    }

    if (page->shown) {
        p = ngx_cpymem(p, "\n ", 2);
    }

    if (page->more && page->cursor) {
        p = ngx_cpymem(p, "],\n \"next\": \"",
                       sizeof("],\n \"next\": \"") - 1);
        p += skv_key_encode(page->cursor, page->cursor_len, (char *) p,
                            SKV_KEY_ENCODED_MAX);
        p = ngx_cpymem(p, "\"}\n", 3);

    } else {
        p = ngx_cpymem(p, "],\n \"next\": null}\n",
                       sizeof("],\n \"next\": null}\n") - 1);
    }

    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    return ngx_http_simplekv_send_body(r, b, NGX_HTTP_OK, "application/json");
}
