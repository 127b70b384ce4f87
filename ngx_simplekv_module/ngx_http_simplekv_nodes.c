/*
 * ngx_http_simplekv_nodes.c - the node set: simplekv_node (weights, and
 * previous weights in a membership transition), the placement built from
 * it, each node's upstream block and address, and simplekv_token_file.
 */

#include "ngx_http_simplekv_module.h"
#include "skv_token.h"


static ngx_int_t ngx_http_simplekv_node_param(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *param, ngx_http_simplekv_node_t *node);
static void ngx_http_simplekv_node_address(ngx_http_upstream_srv_conf_t *us,
    ngx_http_simplekv_node_t *node);


/*
 * The placement over the weights, and in a transition over the previous
 * weights too (the old owners).  Nodes of weight 0 score 0 and are never
 * among a key's top N as long as N nodes have a weight (checked with the
 * quorums).
 */
ngx_int_t
ngx_http_simplekv_build_placement(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                 i;
    ngx_http_simplekv_node_t  *nodes;

    mcf->placement = ngx_pcalloc(cf->pool,
                                 mcf->nodes.nelts * sizeof(skv_node_t));
    mcf->previous = ngx_pcalloc(cf->pool,
                                mcf->nodes.nelts * sizeof(skv_node_t));
    if (mcf->placement == NULL || mcf->previous == NULL) {
        return NGX_ERROR;
    }

    nodes = mcf->nodes.elts;
    mcf->weighted = 0;
    mcf->previously_weighted = 0;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        skv_node_init(&mcf->placement[i], (const char *) nodes[i].name.data,
                      nodes[i].name.len, (uint32_t) nodes[i].weight);
        skv_node_init(&mcf->previous[i], (const char *) nodes[i].name.data,
                      nodes[i].name.len,
                      (uint32_t) nodes[i].previous_weight);

        mcf->weighted += (nodes[i].weight > 0);
        mcf->previously_weighted += (nodes[i].previous_weight > 0);
    }

    return NGX_OK;
}



/*
 * simplekv_node NAME UPSTREAM [weight=N] [previous_weight=N];
 * previous_weight describes a transition (docs/membership.md): the node's
 * weight in the configuration before; 0 for a joining node.  A leaving
 * node has weight=0.
 */
char *
ngx_http_simplekv_node(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_simplekv_main_conf_t *mcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_simplekv_node_t  *node, *nodes;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty node name";
    }

    nodes = mcf->nodes.elts;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        if (nodes[i].name.len == value[1].len
            && ngx_strncmp(nodes[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate simplekv_node name \"%V\": node "
                               "names decide placement and must be unique",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (mcf->nodes.nelts >= SKV_PLACE_MAX) {
        return "lists too many nodes (at most 64)";
    }

    node = ngx_array_push(&mcf->nodes);
    if (node == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(node, sizeof(ngx_http_simplekv_node_t));
    node->name = value[1];
    node->upstream = value[2];
    node->weight = 1;
    node->previous_weight = NGX_CONF_UNSET_UINT;

    if (cf->args->nelts > 5) {
        return "takes at most weight= and previous_weight=";
    }

    for (i = 3; i < cf->args->nelts; i++) {
        if (ngx_http_simplekv_node_param(cf, cmd, &value[i], node)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (node->previous_weight == NGX_CONF_UNSET_UINT) {
        if (node->weight == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid weight \"weight=0\" in \"%V\" "
                               "directive, must be 1..%d (0 only for a node "
                               "leaving in a transition, with "
                               "previous_weight=)", &cmd->name,
                               SKV_NODE_WEIGHT_MAX);
            return NGX_CONF_ERROR;
        }

        node->previous_weight = node->weight;

    } else {
        mcf->transition = 1;
    }

    if (node->weight == 0 && node->previous_weight == 0) {
        return "has weight=0 and previous_weight=0: such a node owns nothing "
               "before or after; remove it";
    }

    return NGX_CONF_OK;
}


/* weight=N or previous_weight=N (0 allowed, see above; checked later) */
static ngx_int_t
ngx_http_simplekv_node_param(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *param, ngx_http_simplekv_node_t *node)
{
    ngx_int_t    n;
    ngx_str_t    v;
    ngx_uint_t  *field;

    if (param->len > 7 && ngx_strncmp(param->data, "weight=", 7) == 0) {
        field = &node->weight;
        v.data = param->data + 7;
        v.len = param->len - 7;

    } else if (param->len > 16
               && ngx_strncmp(param->data, "previous_weight=", 16) == 0)
    {
        field = &node->previous_weight;
        v.data = param->data + 16;
        v.len = param->len - 16;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"weight=N\" or \"previous_weight=N\"",
                           param, &cmd->name);
        return NGX_ERROR;
    }

    n = ngx_atoi(v.data, v.len);

    if (n < 0 || n > SKV_NODE_WEIGHT_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid weight \"%V\" in \"%V\" directive, "
                           "must be 0..%d", param, &cmd->name,
                           SKV_NODE_WEIGHT_MAX);
        return NGX_ERROR;
    }

    *field = (ngx_uint_t) n;

    return NGX_OK;
}


/*
 * simplekv_token_file PATH;  The shared secret storaged requires.  Read
 * once at configuration time (a reload re-reads it) the way storaged reads
 * its --token-file (core/skv_token.c): the first line, trimmed.
 */
char *
ngx_http_simplekv_token_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_simplekv_main_conf_t *mcf = conf;

    u_char           *buf;
    size_t            size, start, len;
    ssize_t           n;
    ngx_str_t        *value, path;
    ngx_file_t        file;
    skv_status_t      st;
    ngx_file_info_t   fi;

    if (mcf->authorization.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = path;
    file.log = cf->log;

    file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &path);
        return NGX_CONF_ERROR;
    }

    n = -1;
    buf = NULL;
    size = 0;

    if (ngx_fd_info(file.fd, &fi) != NGX_FILE_ERROR) {
        size = (size_t) ngx_file_size(&fi);
        buf = (size > 0 && size <= 4096) ? ngx_pnalloc(cf->pool, size)
                                         : NULL;
        n = buf ? ngx_read_file(&file, buf, size, 0) : -1;
    }

    ngx_close_file(file.fd);

    if (n != (ssize_t) size || buf == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "could not read token file \"%V\" (it must hold "
                           "1..4096 bytes)", &path);
        return NGX_CONF_ERROR;
    }

    st = skv_token_parse((const char *) buf, size, &start, &len);
    if (st != SKV_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "token file \"%V\": %s",
                           &path, skv_strerror(st));
        return NGX_CONF_ERROR;
    }

    mcf->authorization.len = sizeof("Bearer ") - 1 + len;
    mcf->authorization.data = ngx_pnalloc(cf->pool, mcf->authorization.len);
    if (mcf->authorization.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(mcf->authorization.data, "Bearer ",
                          sizeof("Bearer ") - 1),
               buf + start, len);

    return NGX_CONF_OK;
}



/*
 * Every simplekv_node must name an upstream{} block: implicit upstreams
 * (a bare host name) have no keepalive pool and would hide a typo until
 * the first request.  Runs at postconfiguration, when all upstream blocks
 * are known.
 */
ngx_int_t
ngx_http_simplekv_check_upstreams(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                      i, j, found;
    ngx_http_simplekv_node_t       *nodes;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);

    nodes = mcf->nodes.elts;
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        found = 0;

        for (j = 0; j < umcf->upstreams.nelts; j++) {
            if (uscfp[j]->host.len == nodes[i].upstream.len
                && (uscfp[j]->flags & NGX_HTTP_UPSTREAM_CREATE)
                && ngx_strncasecmp(uscfp[j]->host.data,
                                   nodes[i].upstream.data,
                                   nodes[i].upstream.len)
                   == 0)
            {
                found = 1;
                nodes[i].uscf = uscfp[j];
                ngx_http_simplekv_node_address(uscfp[j], &nodes[i]);
                break;
            }
        }

        if (!found) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "simplekv_node \"%V\" names upstream \"%V\", but "
                          "there is no \"upstream %V { ... }\" block",
                          &nodes[i].name, &nodes[i].upstream,
                          &nodes[i].upstream);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The node's address for tools (the status page): its upstream's first
 * server as written in the configuration. */
static void
ngx_http_simplekv_node_address(ngx_http_upstream_srv_conf_t *us,
    ngx_http_simplekv_node_t *node)
{
    ngx_http_upstream_server_t  *servers;

    if (us->servers == NULL || us->servers->nelts == 0) {
        return;
    }

    servers = us->servers->elts;
    node->address = servers[0].name;
}
