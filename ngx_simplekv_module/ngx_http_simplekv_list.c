/*
 * ngx_http_simplekv_list.c - GET /<prefix>?list[&limit=N][&after=CURSOR]:
 * one page of the keys under a prefix, in byte order, deleted keys left out,
 * as {"keys": [...], "next": CURSOR-or-null}.  Keys and the cursor are
 * percent-encoded (JSON strings cannot carry arbitrary bytes); the cursor
 * is the last key the page covers, and comes back as `after`.
 *
 * Every node is asked for its sorted /v1/keys listing from the cursor, at
 * most a page of lines each, and the answers are merged: for each key the
 * newest version wins (so a key deleted on a quorum stays out however many
 * stale copies exist), and the page ends at the smallest last key of any
 * node that returned a full page - past it such a node may hold keys not
 * fetched yet.  Memory is bounded by nodes x page size, never by the
 * number of keys.  The listing fails (503) when W or more nodes do not
 * answer, since it could then miss acknowledged writes (decide.c).
 */

#include "ngx_http_simplekv_module.h"
#include "skv_keyline.h"


#define NGX_HTTP_SIMPLEKV_LIST_DEFAULT  1000
#define NGX_HTTP_SIMPLEKV_LIST_MAX      10000
/* lines asked of one node: a page of the longest keys must fit the
 * snippet's 16m subrequest_output_buffer_size */
#define NGX_HTTP_SIMPLEKV_NODE_LINES    4096


typedef struct {
    u_char          *key;      /* decoded */
    size_t           key_len;
    skv_version_t    version;
    unsigned         tombstone:1;
} ngx_http_simplekv_entry_t;


static ngx_int_t ngx_http_simplekv_decode_arg(ngx_http_request_t *r,
    ngx_str_t *enc, u_char *out, size_t *out_len, ngx_uint_t allow_empty);
static int ngx_libc_cdecl ngx_http_simplekv_entry_cmp(const void *one,
    const void *two);
static int ngx_http_simplekv_key_cmp(const u_char *a, size_t alen,
    const u_char *b, size_t blen);
static ngx_int_t ngx_http_simplekv_list_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value, ngx_uint_t *present,
    ngx_str_t *detail);
static ngx_int_t ngx_http_simplekv_list_uri(ngx_http_simplekv_ctx_t *ctx,
    u_char *prefix, size_t prefix_len, u_char *after, size_t after_len);
static ngx_int_t ngx_http_simplekv_list_collect(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep, ngx_array_t *entries,
    ngx_http_simplekv_entry_t **full);
static ngx_int_t ngx_http_simplekv_list_reply(ngx_http_simplekv_ctx_t *ctx,
    ngx_array_t *entries, u_char *bound, size_t bound_len,
    ngx_uint_t bounded);


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
    u_char                       *bound;
    size_t                        bound_len;
    ngx_uint_t                    i, bounded;
    ngx_array_t                   entries;
    ngx_http_simplekv_entry_t    *last;
    ngx_http_simplekv_replica_t  *rep;

    if (ngx_array_init(&entries, ctx->request->pool, 64,
                       sizeof(ngx_http_simplekv_entry_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bound = NULL;
    bound_len = 0;
    bounded = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL || !rep->done
            || rep->reply.kind != SKV_REPLY_LISTED)
        {
            continue;
        }

        if (ngx_http_simplekv_list_collect(ctx, rep, &entries, &last)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* a full page: this node may have more keys after its last one */
        if (last == NULL) {
            continue;
        }

        if (!bounded
            || ngx_http_simplekv_key_cmp(last->key, last->key_len, bound,
                                         bound_len) < 0)
        {
            bound = last->key;
            bound_len = last->key_len;
        }

        bounded = 1;
    }

    return ngx_http_simplekv_list_reply(ctx, &entries, bound, bound_len,
                                        bounded);
}


/*
 * Add one node's key lines to the entries.  *full is its last entry when
 * the node returned a full page (it may hold more keys past it), else
 * NULL.
 */
static ngx_int_t
ngx_http_simplekv_list_collect(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep, ngx_array_t *entries,
    ngx_http_simplekv_entry_t **full)
{
    u_char                     *p, *last, *eol;
    ngx_uint_t                  lines;
    skv_keyline_t               kl;
    ngx_http_simplekv_entry_t  *e;

    p = rep->body.data;
    last = p + rep->body.len;
    lines = 0;
    e = NULL;
    *full = NULL;

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

        e->key = ngx_pnalloc(ctx->request->pool, kl.key_len + 1);
        if (e->key == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(e->key, kl.key, kl.key_len);
        e->key_len = kl.key_len;
        e->version = kl.version;
        e->tombstone = kl.tombstone;

        lines++;
        p = eol + 1;
    }

    if (lines >= ctx->list_node_limit) {
        *full = e;
    }

    return NGX_OK;
}


static int
ngx_http_simplekv_key_cmp(const u_char *a, size_t alen, const u_char *b,
    size_t blen)
{
    int  rc;

    rc = ngx_memcmp(a, b, ngx_min(alen, blen));

    if (rc != 0) {
        return rc;
    }

    return (alen < blen) ? -1 : (alen > blen) ? 1 : 0;
}


/* by key, then newest version first */
static int ngx_libc_cdecl
ngx_http_simplekv_entry_cmp(const void *one, const void *two)
{
    int                               rc;
    const ngx_http_simplekv_entry_t  *a = one, *b = two;

    rc = ngx_http_simplekv_key_cmp(a->key, a->key_len, b->key, b->key_len);

    if (rc != 0) {
        return rc;
    }

    return -skv_version_cmp(&a->version, &b->version);
}


static ngx_int_t
ngx_http_simplekv_list_reply(ngx_http_simplekv_ctx_t *ctx,
    ngx_array_t *entries, u_char *bound, size_t bound_len, ngx_uint_t bounded)
{
    u_char                     *p, *cursor;
    size_t                      size, cursor_len;
    ngx_buf_t                  *b;
    ngx_uint_t                  i, count, more;
    ngx_http_request_t         *r;
    ngx_http_simplekv_entry_t  *e, *prev;

    r = ctx->request;
    e = entries->elts;

    ngx_qsort(e, entries->nelts, sizeof(ngx_http_simplekv_entry_t),
              ngx_http_simplekv_entry_cmp);

    /* every key is at most 3 KiB encoded; quotes, commas, new lines */
    size = sizeof("{\"keys\": [\n],\n \"next\": null}\n") + 16
           + (ngx_min(entries->nelts, ctx->list_limit) + 1)
             * (SKV_KEY_ENCODED_MAX + 8);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"keys\": [", sizeof("{\"keys\": [") - 1);

    count = 0;
    more = bounded;
    cursor = NULL;
    cursor_len = 0;
    prev = NULL;

    for (i = 0; i < entries->nelts; i++) {

        /* older copies of the same key: the first (newest) one decided */
        if (prev && ngx_http_simplekv_key_cmp(prev->key, prev->key_len,
                                              e[i].key, e[i].key_len) == 0)
        {
            continue;
        }

        prev = &e[i];

        if (bounded
            && ngx_http_simplekv_key_cmp(e[i].key, e[i].key_len, bound,
                                         bound_len) > 0)
        {
            break;
        }

        if (count == ctx->list_limit) {
            more = 1;
            break;
        }

        /* the page covers this key, shown or not */
        cursor = e[i].key;
        cursor_len = e[i].key_len;

        if (e[i].tombstone) {
            continue;
        }

        p = ngx_sprintf(p, "%s\n  \"", count ? "," : "");
        p += skv_key_encode(e[i].key, e[i].key_len, (char *) p,
                            SKV_KEY_ENCODED_MAX);
        *p++ = '"';
        count++;
    }

    if (more && cursor == NULL && bounded) {
        /* cannot happen (the bound is a listed key), but never loop */
        cursor = bound;
        cursor_len = bound_len;
    }

    if (count) {
        p = ngx_cpymem(p, "\n ", 2);
    }

    if (more && cursor) {
        p = ngx_cpymem(p, "],\n \"next\": \"", sizeof("],\n \"next\": \"") - 1);
        p += skv_key_encode(cursor, cursor_len, (char *) p,
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
