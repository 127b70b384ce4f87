/*
 * ngx_http_simplekv_dashboard.c - simplekv_dashboard: a status page of
 * the router, served from memory.  The page (HTML, its script and its
 * style sheet) polls the status JSON of simplekv_status and draws the
 * nodes, request and error rates, read repairs and retries, and the
 * state of a membership transition.
 *
 * The page's files live in dashboard/ and are compiled in through the
 * generated header ngx_http_simplekv_dashboard_page.h, which is
 * committed: nginx's `config` (./configure --add-dynamic-module) has no
 * place for a generation step, so both builds compile the same header,
 * and the build needs nothing but a C compiler.  After editing a page
 * file, run dashboard/gen-page-header.sh and commit both; the project
 * Makefile refuses to build the module with a stale header, and make
 * test-dashboard checks it too.
 *
 * One location serves four resources: the page itself, "?js", "?css"
 * and "?icon" (relative URLs in the page, so any location works).  A
 * separate script and style sheet let the Content-Security-Policy allow
 * 'self' only, with no inline code; the icon keeps the browser from
 * asking the key-value API for /favicon.ico.  The page finds the status
 * JSON at the directive's argument (default /_simplekv/status), written
 * into the page once, when the configuration is read.
 */

#include "ngx_http_simplekv_module.h"
#include "ngx_http_simplekv_dashboard_page.h"


#define NGX_HTTP_SIMPLEKV_DASHBOARD_STATUS  "/_simplekv/status"
#define NGX_HTTP_SIMPLEKV_DASHBOARD_MARK    "@SIMPLEKV_STATUS_URI@"

#define NGX_HTTP_SIMPLEKV_DASHBOARD_CSP                                      \
    "default-src 'none'; script-src 'self'; style-src 'self'; "              \
    "connect-src 'self'; img-src 'self'; base-uri 'none'; "                  \
    "form-action 'none'; frame-ancestors 'none'"


typedef struct {
    ngx_str_t                       body;
    ngx_str_t                       type;
    ngx_str_t                       etag;
} ngx_http_simplekv_asset_t;


enum {
    NGX_HTTP_SIMPLEKV_ASSET_HTML = 0,
    NGX_HTTP_SIMPLEKV_ASSET_JS,
    NGX_HTTP_SIMPLEKV_ASSET_CSS,
    NGX_HTTP_SIMPLEKV_ASSET_ICON,
    NGX_HTTP_SIMPLEKV_NASSETS
};


typedef struct {
    ngx_http_simplekv_asset_t       asset[NGX_HTTP_SIMPLEKV_NASSETS];
} ngx_http_simplekv_dashboard_t;


static ngx_int_t ngx_http_simplekv_dashboard_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_dashboard_asset(ngx_conf_t *cf,
    ngx_http_simplekv_asset_t *asset, u_char *data, size_t len,
    const char *type);
static u_char *ngx_http_simplekv_dashboard_page(ngx_conf_t *cf,
    ngx_str_t *status, size_t *len);


static ngx_str_t  ngx_http_simplekv_dashboard_allow =
    ngx_string("GET, HEAD");

static ngx_str_t  ngx_http_simplekv_dashboard_csp =
    ngx_string(NGX_HTTP_SIMPLEKV_DASHBOARD_CSP);


/*
 * simplekv_dashboard [STATUS_URI];
 *
 * STATUS_URI is where the page fetches the status JSON (a path on this
 * server: the page may connect to its own origin only).  It goes into
 * an HTML attribute as it is, so it must be a plain path.
 */
char *
ngx_http_simplekv_dashboard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_simplekv_loc_conf_t *lcf = conf;

    u_char                         *page;
    size_t                          len, i;
    ngx_str_t                      *value, status;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_simplekv_dashboard_t  *dash;

    if (lcf->dashboard != NULL) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot share a location with another "
                           "handler (simplekv, simplekv_status, proxy_pass, "
                           "...)", &cmd->name);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&status, NGX_HTTP_SIMPLEKV_DASHBOARD_STATUS);

    if (cf->args->nelts > 1) {
        value = cf->args->elts;
        status = value[1];

        if (status.len == 0 || status.data[0] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": the status URI \"%V\" must be a "
                               "path on this server, starting with \"/\"",
                               &cmd->name, &status);
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < status.len; i++) {
            if (!((status.data[i] >= 'a' && status.data[i] <= 'z')
                  || (status.data[i] >= 'A' && status.data[i] <= 'Z')
                  || (status.data[i] >= '0' && status.data[i] <= '9')
                  || ngx_strchr("/_-.~%", status.data[i]) != NULL))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": the status URI \"%V\" may hold "
                                   "letters, digits and / _ - . ~ %% only",
                                   &cmd->name, &status);
                return NGX_CONF_ERROR;
            }
        }
    }

    dash = ngx_pcalloc(cf->pool, sizeof(ngx_http_simplekv_dashboard_t));
    if (dash == NULL) {
        return NGX_CONF_ERROR;
    }

    page = ngx_http_simplekv_dashboard_page(cf, &status, &len);
    if (page == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_simplekv_dashboard_asset(cf,
            &dash->asset[NGX_HTTP_SIMPLEKV_ASSET_HTML], page, len,
            "text/html; charset=utf-8") != NGX_OK
        || ngx_http_simplekv_dashboard_asset(cf,
            &dash->asset[NGX_HTTP_SIMPLEKV_ASSET_JS],
            (u_char *) ngx_http_simplekv_dashboard_js,
            sizeof(ngx_http_simplekv_dashboard_js) - 1,
            "text/javascript; charset=utf-8") != NGX_OK
        || ngx_http_simplekv_dashboard_asset(cf,
            &dash->asset[NGX_HTTP_SIMPLEKV_ASSET_CSS],
            (u_char *) ngx_http_simplekv_dashboard_css,
            sizeof(ngx_http_simplekv_dashboard_css) - 1,
            "text/css; charset=utf-8") != NGX_OK
        || ngx_http_simplekv_dashboard_asset(cf,
            &dash->asset[NGX_HTTP_SIMPLEKV_ASSET_ICON],
            (u_char *) ngx_http_simplekv_dashboard_svg,
            sizeof(ngx_http_simplekv_dashboard_svg) - 1,
            "image/svg+xml") != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    lcf->dashboard = dash;
    clcf->handler = ngx_http_simplekv_dashboard_handler;

    return NGX_CONF_OK;
}


/* The page with the status URI in place of its one mark. */
static u_char *
ngx_http_simplekv_dashboard_page(ngx_conf_t *cf, ngx_str_t *status,
    size_t *len)
{
    u_char        *page, *p, *mark, *html;
    size_t         size, mlen;

    html = (u_char *) ngx_http_simplekv_dashboard_html;
    size = sizeof(ngx_http_simplekv_dashboard_html) - 1;
    mlen = sizeof(NGX_HTTP_SIMPLEKV_DASHBOARD_MARK) - 1;

    mark = ngx_strlcasestrn(html, html + size,
                            (u_char *) NGX_HTTP_SIMPLEKV_DASHBOARD_MARK,
                            mlen - 1);
    if (mark == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the compiled-in dashboard page has no status "
                           "URI mark");
        return NULL;
    }

    page = ngx_pnalloc(cf->pool, size - mlen + status->len);
    if (page == NULL) {
        return NULL;
    }

    p = ngx_cpymem(page, html, mark - html);
    p = ngx_cpymem(p, status->data, status->len);
    p = ngx_cpymem(p, mark + mlen, size - (mark - html) - mlen);

    *len = p - page;

    return page;
}


/* An asset with a strong ETag (CRC32 of its bytes and its length), so
 * that a reload revalidates with a 304 rather than fetching again. */
static ngx_int_t
ngx_http_simplekv_dashboard_asset(ngx_conf_t *cf,
    ngx_http_simplekv_asset_t *asset, u_char *data, size_t len,
    const char *type)
{
    u_char  *p;

    asset->body.data = data;
    asset->body.len = len;
    asset->type.data = (u_char *) type;
    asset->type.len = ngx_strlen(type);

    p = ngx_pnalloc(cf->pool, NGX_INT32_LEN + NGX_SIZE_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    asset->etag.data = p;
    asset->etag.len = ngx_sprintf(p, "\"%08xD-%uz\"",
                                  ngx_crc32_long(data, len), len) - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_dashboard_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_str_t                       detail, cache;
    ngx_uint_t                      which;
    ngx_table_elt_t                *etag;
    ngx_http_simplekv_asset_t      *asset;
    ngx_http_simplekv_loc_conf_t   *lcf;
    ngx_http_simplekv_dashboard_t  *dash;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_simplekv_add_header(r, "Allow",
                &ngx_http_simplekv_dashboard_allow) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&detail, "the dashboard is read with GET or HEAD");

        return ngx_http_simplekv_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                            "method not allowed", &detail);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->args.len == 0) {
        which = NGX_HTTP_SIMPLEKV_ASSET_HTML;

    } else if (r->args.len == 2 && ngx_strncmp(r->args.data, "js", 2) == 0) {
        which = NGX_HTTP_SIMPLEKV_ASSET_JS;

    } else if (r->args.len == 3 && ngx_strncmp(r->args.data, "css", 3) == 0) {
        which = NGX_HTTP_SIMPLEKV_ASSET_CSS;

    } else if (r->args.len == 4 && ngx_strncmp(r->args.data, "icon", 4) == 0) {
        which = NGX_HTTP_SIMPLEKV_ASSET_ICON;

    } else {
        ngx_str_set(&detail, "the dashboard serves its page, ?js, ?css "
                             "and ?icon");
        return ngx_http_simplekv_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "not found", &detail);
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_simplekv_module);
    dash = lcf->dashboard;
    asset = &dash->asset[which];

    ngx_str_set(&cache, "no-cache");

    if (ngx_http_simplekv_add_header(r, "Cache-Control", &cache)
        != NGX_OK
        || ngx_http_simplekv_add_header(r, "Content-Security-Policy",
               &ngx_http_simplekv_dashboard_csp) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&cache, "nosniff");

    if (ngx_http_simplekv_add_header(r, "X-Content-Type-Options",
                                           &cache) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&cache, "no-referrer");

    if (ngx_http_simplekv_add_header(r, "Referrer-Policy", &cache)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    etag = ngx_list_push(&r->headers_out.headers);
    if (etag == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    etag->hash = 1;
    ngx_str_set(&etag->key, "ETag");
    etag->value = asset->etag;

    /* nginx's not_modified filter answers If-None-Match with 304 */
    r->headers_out.etag = etag;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = asset->body.data;
    b->last = asset->body.data + asset->body.len;
    b->memory = 1;

    return ngx_http_simplekv_send_body(r, b, NGX_HTTP_OK,
                                       (const char *) asset->type.data);
}
