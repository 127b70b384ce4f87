/*
 * ngx_http_simplekv_key.c - which key a request names.
 *
 * A key is any bytes, percent-encoded in the path after the location's
 * prefix, or in ?key= (for keys nginx refuses in a path: %00, a path
 * above "/").  r->uri is already decoded and has merged slashes, so it
 * cannot carry arbitrary key bytes: keys come from the raw request line.
 * The location prefix is matched against the raw path the way nginx
 * matched r->uri (percent-decoded, slashes merged), so /k%76/a and //kv/a
 * under `location /kv/` both name the key "a".
 */

#include "ngx_http_simplekv_module.h"


static u_char ngx_http_simplekv_decode_char(u_char **pp, u_char *last);
static void ngx_http_simplekv_place(ngx_http_simplekv_ctx_t *ctx);


/*
 * Find name or name=value among &-separated arguments: *count is how many
 * times it occurs, *value the first one's value.  NGX_OK if present.
 */
ngx_int_t
ngx_http_simplekv_arg(ngx_str_t *args, const char *name, ngx_str_t *value,
    ngx_uint_t *count)
{
    u_char  *p, *last, *end, *eq;
    size_t   len;

    *count = 0;
    value->len = 0;
    value->data = NULL;

    len = ngx_strlen(name);
    p = args->data;
    last = p + args->len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        eq = ngx_strlchr(p, end, '=');

        if ((size_t) ((eq ? eq : end) - p) == len
            && ngx_strncmp(p, name, len) == 0)
        {
            if ((*count)++ == 0 && eq) {
                value->data = eq + 1;
                value->len = end - (eq + 1);
            }
        }

        p = end + 1;
    }

    return *count ? NGX_OK : NGX_DECLINED;
}


/* Is this a listing: does the query string have a `list` argument? */
ngx_int_t
ngx_http_simplekv_is_list(ngx_http_request_t *r)
{
    ngx_str_t   value;
    ngx_uint_t  count;

    if (r->args.len == 0) {
        return 0;
    }

    return ngx_http_simplekv_arg(&r->args, "list", &value, &count) == NGX_OK;
}


/* One byte of a path as nginx decodes it: a valid %XX escape or itself. */
static u_char
ngx_http_simplekv_decode_char(u_char **pp, u_char *last)
{
    u_char     *p;
    ngx_int_t   hi, lo;

    p = *pp;

    if (*p == '%' && last - p >= 3) {
        hi = ngx_hextoi(p + 1, 1);
        lo = ngx_hextoi(p + 2, 1);

        if (hi != NGX_ERROR && lo != NGX_ERROR) {
            *pp = p + 3;
            return (u_char) (hi * 16 + lo);
        }
    }

    *pp = p + 1;

    return *p;
}


/*
 * The raw (still percent-encoded) request path after the location prefix,
 * without the query string.  NGX_DECLINED when the raw path does not
 * spell out the prefix (a "." or ".." segment, say).
 */
ngx_int_t
ngx_http_simplekv_path_key(ngx_http_request_t *r, ngx_str_t *raw)
{
    u_char                    *p, *last, *q, c, prev;
    size_t                     n;
    ngx_http_core_srv_conf_t  *cscf;
    ngx_http_core_loc_conf_t  *clcf;

    p = r->unparsed_uri.data;
    last = p + r->unparsed_uri.len;

    q = ngx_strlchr(p, last, '?');
    if (q) {
        last = q;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

    if (clcf->exact_match || clcf->name.len == 0
#if (NGX_PCRE)
        || clcf->regex
#endif
       )
    {
        /* no prefix to strip: the key is the path after its "/" */
        if (p < last && *p == '/') {
            p++;
        }

        raw->data = p;
        raw->len = last - p;
        return NGX_OK;
    }

    n = 0;
    prev = '\0';

    while (n < clcf->name.len && p < last) {
        c = ngx_http_simplekv_decode_char(&p, last);

        if (c == '/' && prev == '/' && cscf->merge_slashes) {
            continue;
        }

        if (c != clcf->name.data[n]) {
            return NGX_DECLINED;
        }

        prev = c;
        n++;
    }

    if (n < clcf->name.len) {
        return NGX_DECLINED;
    }

    raw->data = p;
    raw->len = last - p;

    return NGX_OK;
}


/* The key named in ?key= or in the path (not both). */
static ngx_int_t
ngx_http_simplekv_named_key(ngx_http_simplekv_ctx_t *ctx, ngx_str_t *raw,
    ngx_str_t *detail)
{
    ngx_str_t            arg;
    ngx_uint_t           count;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ngx_http_simplekv_path_key(r, raw) != NGX_OK) {
        ngx_str_set(detail, "the request path does not begin with this "
                            "location's prefix as written (a \".\" or "
                            "\"..\" segment?); name the key in ?key=");
        return NGX_DECLINED;
    }

    if (r->args.len == 0
        || ngx_http_simplekv_arg(&r->args, "key", &arg, &count) != NGX_OK)
    {
        if (r->uri.len >= sizeof(NGX_HTTP_SIMPLEKV_RESERVED) - 1
            && ngx_strncmp(r->uri.data, NGX_HTTP_SIMPLEKV_RESERVED,
                           sizeof(NGX_HTTP_SIMPLEKV_RESERVED) - 1) == 0)
        {
            ngx_str_set(detail, "paths under /_simplekv/ are the router's "
                                "own; name such a key in ?key=");
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (count > 1) {
        ngx_str_set(detail, "?key= is given more than once");
        return NGX_DECLINED;
    }

    if (raw->len) {
        ngx_str_set(detail, "name the key either in the path or in ?key=, "
                            "not both");
        return NGX_DECLINED;
    }

    *raw = arg;

    return NGX_OK;
}


/*
 * Decode and validate the key (the shared core decides what a key is),
 * encode it canonically for storaged and place it.  NGX_DECLINED: a bad
 * key, with the client's status, error and detail set; NGX_ERROR: no
 * memory.
 */
ngx_int_t
ngx_http_simplekv_parse_key(ngx_http_simplekv_ctx_t *ctx, ngx_uint_t *status,
    const char **error, ngx_str_t *detail)
{
    u_char              *p;
    size_t               enc_len, prefix_len;
    ngx_str_t            raw;
    skv_status_t         st;
    ngx_http_request_t  *r;

    r = ctx->request;
    *status = NGX_HTTP_BAD_REQUEST;
    *error = "bad key";

    if (ngx_http_simplekv_named_key(ctx, &raw, detail) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (raw.len == 0) {
        ngx_str_set(detail, "the request path names no key");
        return NGX_DECLINED;
    }

    ctx->key = ngx_pnalloc(r->pool, SKV_KEY_MAX);
    if (ctx->key == NULL) {
        return NGX_ERROR;
    }

    st = (raw.len > SKV_KEY_ENCODED_MAX) ? SKV_ERR_KEY_TOO_LONG
         : skv_key_decode((const char *) raw.data, raw.len, ctx->key,
                          &ctx->key_len);

    if (st == SKV_ERR_KEY_TOO_LONG) {
        *status = NGX_HTTP_REQUEST_URI_TOO_LARGE;
        *error = "key too long";
        ngx_str_set(detail, "keys are at most 1024 bytes");
        return NGX_DECLINED;
    }

    if (st != SKV_OK) {
        detail->data = (u_char *) skv_strerror(st);
        detail->len = ngx_strlen(detail->data);
        return NGX_DECLINED;
    }

    /* the canonical encoding: every router sends storaged the same URI,
     * under the location's namespace (namespace.c) */
    enc_len = skv_key_encode(ctx->key, ctx->key_len, NULL, 0);
    prefix_len = ctx->lcf->ns_kv_prefix.len;

    ctx->storage_uri.data = ngx_pnalloc(r->pool, prefix_len + enc_len);
    if (ctx->storage_uri.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(ctx->storage_uri.data, ctx->lcf->ns_kv_prefix.data,
                   prefix_len);
    (void) skv_key_encode(ctx->key, ctx->key_len, (char *) p, enc_len);
    ctx->storage_uri.len = prefix_len + enc_len;

    ngx_http_simplekv_place(ctx);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv key of %uz bytes, %ui replicas",
                   ctx->key_len, ctx->nreplicas);

    return NGX_OK;
}


/*
 * The key's replicas: its N owners, best first.  In a transition, the
 * owners under the weights (new) and then those under the previous
 * weights (old) that are not new owners too; member[] says which set
 * each belongs to (docs/membership.md).
 */
static void
ngx_http_simplekv_place(ngx_http_simplekv_ctx_t *ctx)
{
    size_t                          old[SKV_PLACE_MAX], nold, i, j;
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = ctx->mcf;

    ctx->nreplicas = skv_place(mcf->placement, mcf->nodes.nelts, ctx->key,
                               ctx->key_len, ctx->order, ctx->lcf->replicas);

    ctx->sets.member = ctx->member;
    ctx->sets.transition = mcf->transition ? true : false;

    for (i = 0; i < ctx->nreplicas; i++) {
        ctx->member[i] = SKV_SET_NEW | (mcf->transition ? 0 : SKV_SET_OLD);
    }

    if (!mcf->transition) {
        return;
    }

    nold = skv_place(mcf->previous, mcf->nodes.nelts, ctx->key, ctx->key_len,
                     old, ctx->lcf->replicas);

    for (j = 0; j < nold; j++) {
        for (i = 0; i < ctx->nreplicas; i++) {
            if (ctx->order[i] == old[j]) {
                break;
            }
        }

        if (i == ctx->nreplicas) {
            ctx->order[ctx->nreplicas++] = old[j];
        }

        ctx->member[i] |= SKV_SET_OLD;
    }
}
