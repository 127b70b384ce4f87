/*
 * ngx_http_simplekv_conf.c - configuration of the simplekv router: the
 * http-level node list and token, the per-location quorum settings, and the
 * checks that make `nginx -t` refuse a configuration that cannot keep the
 * consistency promise (W + R <= N, N larger than the node set, a quorum of
 * 0 or above N, unknown upstreams, duplicate node names; namespace.c adds
 * the namespace rules).
 */

#include "ngx_http_simplekv_module.h"


static char *ngx_http_simplekv_check_quorums(ngx_conf_t *cf,
    ngx_http_simplekv_loc_conf_t *conf, ngx_uint_t nnodes);
static ngx_int_t ngx_http_simplekv_check_sites(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf);


void *
ngx_http_simplekv_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_simplekv_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->placement = NULL;
     *     mcf->authorization = { 0, NULL };
     *     mcf->shm_zone = NULL;
     */

    if (ngx_array_init(&mcf->nodes, cf->pool, 4,
                       sizeof(ngx_http_simplekv_node_t))
        != NGX_OK
        || ngx_array_init(&mcf->locations, cf->pool, 4,
                          sizeof(ngx_http_simplekv_site_t))
           != NGX_OK
        || ngx_array_init(&mcf->replica_locations, cf->pool, 2,
                          sizeof(ngx_http_simplekv_site_t))
           != NGX_OK)
    {
        return NULL;
    }

    mcf->max_clock_skew = NGX_CONF_UNSET_MSEC;
    mcf->epoch = NGX_CONF_UNSET_UINT;

    return mcf;
}


char *
ngx_http_simplekv_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_simplekv_main_conf_t  *mcf = conf;

    ngx_conf_init_msec_value(mcf->max_clock_skew, 60000);

    if (mcf->epoch == NGX_CONF_UNSET_UINT) {
        mcf->epoch = 0;
    }

    /* sent on every replica request (X-Simplekv-Epoch: the fence) */
    mcf->epoch_text.data = ngx_pnalloc(cf->pool, NGX_INT_T_LEN);
    if (mcf->epoch_text.data == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->epoch_text.len = ngx_sprintf(mcf->epoch_text.data, "%ui",
                                      mcf->epoch)
                          - mcf->epoch_text.data;

    if (mcf->nodes.nelts == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_http_simplekv_build_placement(cf, mcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void *
ngx_http_simplekv_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_simplekv_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_simplekv_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->replicas = NGX_CONF_UNSET_UINT;
    conf->write_quorum = NGX_CONF_UNSET_UINT;
    conf->read_quorum = NGX_CONF_UNSET_UINT;
    conf->max_value_size = NGX_CONF_UNSET;
    conf->stream_threshold = NGX_CONF_UNSET_SIZE;
    conf->replica_timeout = NGX_CONF_UNSET_MSEC;
    conf->straggler_grace = NGX_CONF_UNSET_MSEC;
    conf->read_fanout = NGX_CONF_UNSET_UINT;
    conf->read_hedge = NGX_CONF_UNSET_MSEC;
    conf->storage_connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->storage_send_timeout = NGX_CONF_UNSET_MSEC;
    conf->storage_read_timeout = NGX_CONF_UNSET_MSEC;
    conf->storage_buffer_size = NGX_CONF_UNSET_SIZE;

    /*
     * set by ngx_pcalloc():
     *
     *     conf->replica_location = 0;
     *     conf->upstreams = NULL;
     */

    return conf;
}


char *
ngx_http_simplekv_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_simplekv_loc_conf_t *prev = parent;
    ngx_http_simplekv_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_simplekv_site_t       *site;
    ngx_http_simplekv_main_conf_t  *mcf;

    /* not inherited: `simplekv` installs a content handler in its own
     * location only */
    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = 0;
    }

    ngx_conf_merge_uint_value(conf->replicas, prev->replicas, 3);
    ngx_conf_merge_uint_value(conf->write_quorum, prev->write_quorum,
                              conf->replicas / 2 + 1);
    ngx_conf_merge_uint_value(conf->read_quorum, prev->read_quorum,
                              conf->replicas / 2 + 1);
    ngx_conf_merge_off_value(conf->max_value_size, prev->max_value_size,
                              NGX_HTTP_SIMPLEKV_MAX_VALUE);
    ngx_conf_merge_size_value(conf->stream_threshold, prev->stream_threshold,
                              NGX_HTTP_SIMPLEKV_STREAM_THRESHOLD);
    ngx_conf_merge_msec_value(conf->replica_timeout, prev->replica_timeout,
                              1000);
    ngx_conf_merge_msec_value(conf->straggler_grace, prev->straggler_grace,
                              10);
    ngx_conf_merge_uint_value(conf->read_fanout, prev->read_fanout,
                              NGX_HTTP_SIMPLEKV_FANOUT_QUORUM);
    ngx_conf_merge_msec_value(conf->read_hedge, prev->read_hedge,
                              NGX_HTTP_SIMPLEKV_READ_HEDGE_MS);

    /* backstops under simplekv_replica_timeout (the values the proxy
     * snippet of earlier versions set) */
    ngx_conf_merge_msec_value(conf->storage_connect_timeout,
                              prev->storage_connect_timeout, 5000);
    ngx_conf_merge_msec_value(conf->storage_send_timeout,
                              prev->storage_send_timeout, 10000);
    ngx_conf_merge_msec_value(conf->storage_read_timeout,
                              prev->storage_read_timeout, 10000);
    ngx_conf_merge_size_value(conf->storage_buffer_size,
                              prev->storage_buffer_size, 8192);

    if (ngx_http_simplekv_merge_namespace(cf, prev, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->replica_location) {
        /*
         * Replica requests share the client request's headers, so nginx
         * would hold a PUT's Content-Length against this location's
         * client_max_body_size (default 1m); the simplekv location has
         * enforced simplekv_max_value_size already.
         */
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->client_max_body_size = 0;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    /*
     * simplekv_max_value_size replaces client_max_body_size here: the core
     * check would answer an HTML 413 before the module could refuse the
     * value with its JSON error (ngx_http_simplekv_body_filter() bounds
     * chunked bodies instead).  The core module merged first, so this is
     * final.
     */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->client_max_body_size = 0;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_simplekv_module);

    if (mcf->nodes.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"simplekv\" needs at least one \"simplekv_node\" "
                           "at the http level");
        return NGX_CONF_ERROR;
    }

    /* checked against its server's replica location at postconfiguration */
    site = ngx_array_push(&mcf->locations);
    if (site == NULL) {
        return NGX_CONF_ERROR;
    }

    site->server = ngx_http_conf_get_module_srv_conf(cf,
                                                     ngx_http_core_module);
    site->clcf = clcf;
    site->lcf = conf;

    return ngx_http_simplekv_check_quorums(cf, conf,
                                           ngx_min(mcf->weighted,
                                                   mcf->previously_weighted));
}


/*
 * The promises N, W and R must keep, checked where the location is merged
 * so that nginx -t names the file and line.
 */
static char *
ngx_http_simplekv_check_quorums(ngx_conf_t *cf,
    ngx_http_simplekv_loc_conf_t *conf, ngx_uint_t nnodes)
{
    if (conf->replicas > nnodes) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "simplekv_replicas %ui is larger than the %ui "
                           "configured simplekv_node(s) with a weight: every "
                           "key needs %ui distinct nodes",
                           conf->replicas, nnodes, conf->replicas);
        return NGX_CONF_ERROR;
    }

    if (conf->write_quorum > conf->replicas) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "simplekv_write_quorum %ui is larger than "
                           "simplekv_replicas %ui: no write could succeed",
                           conf->write_quorum, conf->replicas);
        return NGX_CONF_ERROR;
    }

    if (conf->read_quorum > conf->replicas) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "simplekv_read_quorum %ui is larger than "
                           "simplekv_replicas %ui: no read could succeed",
                           conf->read_quorum, conf->replicas);
        return NGX_CONF_ERROR;
    }

    if (conf->write_quorum + conf->read_quorum <= conf->replicas) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "simplekv_write_quorum %ui + simplekv_read_quorum "
                           "%ui must be larger than simplekv_replicas %ui, "
                           "else a read may miss an acknowledged write",
                           conf->write_quorum, conf->read_quorum,
                           conf->replicas);
        return NGX_CONF_ERROR;
    }

    /*
     * Versions come from each router's own clock, not from a quorum read
     * before every write, so a write learns that a newer write completed
     * before it only from a replica both wrote to: any two write quorums
     * must overlap.
     */
    if (2 * conf->write_quorum <= conf->replicas) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "simplekv_write_quorum %ui must be more than half "
                           "of simplekv_replicas %ui, else a write could be "
                           "ordered before one that completed earlier",
                           conf->write_quorum, conf->replicas);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_simplekv(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_simplekv_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (lcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_simplekv_handler;

    return NGX_CONF_OK;
}


/*
 * simplekv_replica_location;  The internal location replica requests go
 * through (conf/simplekv_proxy.conf): installs the module's own upstream
 * handler (upstream.c), and marks the location so that `nginx -t` can
 * check that every server with a simplekv location has one, with a buffer
 * that holds the largest value.
 */
char *
ngx_http_simplekv_replica_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_simplekv_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_simplekv_site_t       *site;
    ngx_http_simplekv_main_conf_t  *mcf;

    if (lcf->replica_location) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "cannot share a location with another handler (proxy_pass?): "
               "the replica location sends replica requests itself; remove "
               "proxy_pass and the proxy_* directives from it (see "
               "conf/simplekv_proxy.conf)";
    }

    clcf->handler = ngx_http_simplekv_upstream_handler;
    lcf->replica_location = 1;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_simplekv_module);

    site = ngx_array_push(&mcf->replica_locations);
    if (site == NULL) {
        return NGX_CONF_ERROR;
    }

    site->server = ngx_http_conf_get_module_srv_conf(cf,
                                                     ngx_http_core_module);
    site->clcf = clcf;
    site->lcf = conf;

    return NGX_CONF_OK;
}


/* simplekv_error;  The JSON error page for what nginx itself refuses. */
char *
ngx_http_simplekv_error_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_simplekv_error_handler;

    return NGX_CONF_OK;
}


/*
 * At postconfiguration, when every location is merged: each simplekv
 * location's server has the replica location, and its
 * subrequest_output_buffer_size holds simplekv_stream_threshold (a replica's
 * answer up to that size is kept in that buffer; larger values stream).
 */
static ngx_int_t
ngx_http_simplekv_check_sites(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                 i, j;
    ngx_http_simplekv_site_t  *site, *replica, *rsites;

    site = mcf->locations.elts;
    rsites = mcf->replica_locations.elts;

    for (j = 0; j < mcf->replica_locations.nelts; j++) {
        if (ngx_http_simplekv_upstream_init_location(cf, mcf, &rsites[j])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < mcf->locations.nelts; i++) {
        replica = NULL;

        for (j = 0; j < mcf->replica_locations.nelts; j++) {
            if (rsites[j].server == site[i].server) {
                replica = &rsites[j];
                break;
            }
        }

        if (replica == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "simplekv location \"%V\" is in a server without "
                          "the replica location: include "
                          "conf/simplekv_proxy.conf in that server{}",
                          &site[i].clcf->name);
            return NGX_ERROR;
        }

        if (site[i].lcf->stream_threshold
            > replica->clcf->subrequest_output_buffer_size)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "simplekv_stream_threshold %uz of location \"%V\" "
                          "is larger than the subrequest_output_buffer_size "
                          "%uz of the replica location, which holds every "
                          "value up to that size: raise it there (conf/"
                          "simplekv_proxy.conf) or lower the threshold",
                          site[i].lcf->stream_threshold, &site[i].clcf->name,
                          replica->clcf->subrequest_output_buffer_size);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_simplekv_check_conf(ngx_conf_t *cf)
{
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_simplekv_module);

    if (ngx_http_simplekv_check_upstreams(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_simplekv_check_namespaces(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_simplekv_check_sites(cf, mcf);
}
