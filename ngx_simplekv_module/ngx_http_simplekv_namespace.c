/*
 * ngx_http_simplekv_namespace.c - which key space a simplekv location reads
 * and writes.
 *
 * Every simplekv location is in one namespace: the one simplekv_namespace
 * names, at its own level or an enclosing one, else "default", which holds
 * the keys of every location from before namespaces existed.  storaged
 * keeps each namespace in databases of its own (docs/protocol.md), and the
 * namespace is part of the storaged path: /v1/kv/<key> for "default",
 * /v1/ns/<name>/kv/<key> for the others.  A path, not a header or a query
 * argument, so that neither a replica location edited by hand nor a
 * storaged too old to know namespaces can drop it and mix key spaces: the
 * old storaged answers 404 to the unknown path.
 *
 * `nginx -t` refuses
 *   - two locations in one namespace with different N, W or R: a key
 *     written under one N would be read under another's quorums;
 *   - two locations in "default" of which neither names it: sharing keys
 *     must be asked for (`simplekv_namespace default;` in both, or once at
 *     the http level).
 */

#include <xxhash.h>

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_ns_path(ngx_conf_t *cf, ngx_str_t *name,
    const char *suffix, ngx_str_t *path);
static ngx_int_t ngx_http_simplekv_ns_paths(ngx_conf_t *cf,
    ngx_http_simplekv_loc_conf_t *conf);
static ngx_http_simplekv_namespace_t *ngx_http_simplekv_ns_find(
    ngx_http_simplekv_main_conf_t *mcf, ngx_str_t *name);


static ngx_str_t  ngx_http_simplekv_ns_default =
    ngx_string(NGX_HTTP_SIMPLEKV_NS_DEFAULT);


/* simplekv_namespace NAME;  at the http, server or location level */
char *
ngx_http_simplekv_namespace(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_simplekv_loc_conf_t *lcf = conf;

    u_char     c;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (lcf->ns_name.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > NGX_HTTP_SIMPLEKV_NS_NAME_MAX) {
        return "needs a name of 1 to 64 characters";
    }

    for (i = 0; i < value[1].len; i++) {
        c = value[1].data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid namespace \"%V\": a name is made of "
                               "letters, digits, \"-\" and \"_\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    lcf->ns_name = value[1];

    return NGX_CONF_OK;
}


/*
 * Inherit the name, and set the storaged paths: in every location, not
 * only where `simplekv` is, because an `if` block inside a simplekv
 * location has a configuration of its own that the handler then reads.
 */
ngx_int_t
ngx_http_simplekv_merge_namespace(ngx_conf_t *cf,
    ngx_http_simplekv_loc_conf_t *prev, ngx_http_simplekv_loc_conf_t *conf)
{
    if (conf->ns_name.data == NULL) {
        conf->ns_name = prev->ns_name;
    }

    if (conf->ns_name.len && prev->ns_name.data == conf->ns_name.data
        && prev->ns_kv_prefix.len)
    {
        conf->ns_kv_prefix = prev->ns_kv_prefix;
        conf->ns_list_path = prev->ns_list_path;
        conf->ns_seed = prev->ns_seed;
        return NGX_OK;
    }

    return ngx_http_simplekv_ns_paths(cf, conf);
}


/* /v1/ns/<name><suffix> */
static ngx_int_t
ngx_http_simplekv_ns_path(ngx_conf_t *cf, ngx_str_t *name, const char *suffix,
    ngx_str_t *path)
{
    u_char  *p;

    p = ngx_pnalloc(cf->pool, sizeof("/v1/ns/") - 1 + name->len
                              + ngx_strlen(suffix));
    if (p == NULL) {
        return NGX_ERROR;
    }

    path->data = p;
    path->len = ngx_sprintf(p, "/v1/ns/%V%s", name, suffix) - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_ns_paths(ngx_conf_t *cf, ngx_http_simplekv_loc_conf_t *conf)
{
    if (conf->ns_name.len == 0
        || (conf->ns_name.len == ngx_http_simplekv_ns_default.len
            && ngx_strncmp(conf->ns_name.data,
                           ngx_http_simplekv_ns_default.data,
                           conf->ns_name.len) == 0))
    {
        ngx_str_set(&conf->ns_kv_prefix, NGX_HTTP_SIMPLEKV_STORAGE_PREFIX);
        ngx_str_set(&conf->ns_list_path, NGX_HTTP_SIMPLEKV_LIST_PATH);
        conf->ns_seed = 0;
        return NGX_OK;
    }

    if (ngx_http_simplekv_ns_path(cf, &conf->ns_name, "/kv/",
                                  &conf->ns_kv_prefix)
        != NGX_OK
        || ngx_http_simplekv_ns_path(cf, &conf->ns_name, "/keys",
                                     &conf->ns_list_path)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* so that one key name in two namespaces is two keys to the
     * contention table too */
    conf->ns_seed = XXH3_64bits(conf->ns_name.data, conf->ns_name.len);

    return NGX_OK;
}


/*
 * At postconfiguration, every simplekv location merged: the namespaces of
 * this configuration, each with the quorums all its locations must agree
 * on, and each location's lcf->ns.
 */
ngx_int_t
ngx_http_simplekv_check_namespaces(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_str_t                      *name;
    ngx_uint_t                      i;
    ngx_http_simplekv_site_t       *site, *implicit;
    ngx_http_simplekv_loc_conf_t   *lcf;
    ngx_http_simplekv_namespace_t  *ns;

    site = mcf->locations.elts;
    implicit = NULL;

    if (ngx_array_init(&mcf->namespaces, cf->pool, 4,
                       sizeof(ngx_http_simplekv_namespace_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < mcf->locations.nelts; i++) {
        lcf = site[i].lcf;
        name = lcf->ns_name.len ? &lcf->ns_name : &ngx_http_simplekv_ns_default;

        if (lcf->ns_name.len == 0) {
            if (implicit) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "simplekv locations \"%V\" and \"%V\" would "
                              "share the keys of the namespace \"default\" "
                              "without naming it: give each location its "
                              "own \"simplekv_namespace\", or name "
                              "\"default\" where they are meant to share",
                              &implicit->clcf->name, &site[i].clcf->name);
                return NGX_ERROR;
            }

            implicit = &site[i];
        }

        ns = ngx_http_simplekv_ns_find(mcf, name);

        if (ns == NULL) {
            ns = ngx_array_push(&mcf->namespaces);
            if (ns == NULL) {
                return NGX_ERROR;
            }

            ns->name = *name;
            ns->replicas = lcf->replicas;
            ns->write_quorum = lcf->write_quorum;
            ns->read_quorum = lcf->read_quorum;
            ns->first = site[i].clcf;
            ns->shm = NULL;
            continue;
        }

        if (ns->replicas != lcf->replicas
            || ns->write_quorum != lcf->write_quorum
            || ns->read_quorum != lcf->read_quorum)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "simplekv namespace \"%V\" has N=%ui W=%ui R=%ui "
                          "in location \"%V\" but N=%ui W=%ui R=%ui in "
                          "location \"%V\": keys written under one would be "
                          "read under the other's quorums; give the "
                          "locations the same simplekv_replicas, "
                          "simplekv_write_quorum and simplekv_read_quorum, "
                          "or namespaces of their own",
                          name, ns->replicas, ns->write_quorum,
                          ns->read_quorum, &ns->first->name, lcf->replicas,
                          lcf->write_quorum, lcf->read_quorum,
                          &site[i].clcf->name);
            return NGX_ERROR;
        }
    }

    /* the array no longer moves: point each location at its namespace */
    for (i = 0; i < mcf->locations.nelts; i++) {
        lcf = site[i].lcf;
        name = lcf->ns_name.len ? &lcf->ns_name : &ngx_http_simplekv_ns_default;
        lcf->ns = ngx_http_simplekv_ns_find(mcf, name);
    }

    return NGX_OK;
}


static ngx_http_simplekv_namespace_t *
ngx_http_simplekv_ns_find(ngx_http_simplekv_main_conf_t *mcf, ngx_str_t *name)
{
    ngx_uint_t                      i;
    ngx_http_simplekv_namespace_t  *ns;

    ns = mcf->namespaces.elts;

    for (i = 0; i < mcf->namespaces.nelts; i++) {
        if (ns[i].name.len == name->len
            && ngx_strncmp(ns[i].name.data, name->data, name->len) == 0)
        {
            return &ns[i];
        }
    }

    return NULL;
}
