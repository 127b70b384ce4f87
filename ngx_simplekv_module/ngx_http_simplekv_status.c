/*
 * ngx_http_simplekv_status.c - the two views of the router's counters:
 * simplekv_status (JSON) and simplekv_metrics (Prometheus text format).
 *
 * Each view walks the nodes of the worker's own configuration and reads
 * their slots in the shared zone (shm.c), so a worker of an older
 * configuration still finishing requests after a reload shows its own
 * nodes and never reads past what it knows.
 */

#include "ngx_http_simplekv_shm.h"


extern ngx_uint_t   ngx_http_simplekv_buckets[NGX_HTTP_SIMPLEKV_NBUCKETS];
extern ngx_uint_t   ngx_http_simplekv_codes[NGX_HTTP_SIMPLEKV_NCODES];
extern const char  *ngx_http_simplekv_methods[NGX_HTTP_SIMPLEKV_NMETHODS];


/* Upper bounds of the text for one node (plus its escaped names, counted
 * separately) and for everything else. */
#define NGX_HTTP_SIMPLEKV_NODE_TEXT   (2048 + NGX_HTTP_SIMPLEKV_NBUCKETS * 160)
#define NGX_HTTP_SIMPLEKV_NAME_USES   (NGX_HTTP_SIMPLEKV_NBUCKETS + 8)
#define NGX_HTTP_SIMPLEKV_NS_TEXT     (NGX_HTTP_SIMPLEKV_NMETHODS          \
                                       * NGX_HTTP_SIMPLEKV_NSTATUS * 160    \
                                       + 512)
#define NGX_HTTP_SIMPLEKV_OTHER_TEXT  (NGX_HTTP_SIMPLEKV_NMETHODS          \
                                       * NGX_HTTP_SIMPLEKV_NSTATUS * 96     \
                                       + NGX_HTTP_SIMPLEKV_LIVE_MAX * 48    \
                                       + 8192)


static ngx_int_t ngx_http_simplekv_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_view_start(ngx_http_request_t *r,
    ngx_uint_t escape_factor, ngx_http_simplekv_main_conf_t **mcfp,
    ngx_http_simplekv_shm_t **sh, ngx_buf_t **b);
static u_char *ngx_http_simplekv_json_node(u_char *p,
    ngx_http_simplekv_node_t *node);
static u_char *ngx_http_simplekv_json_requests(u_char *p,
    ngx_atomic_t (*requests)[NGX_HTTP_SIMPLEKV_NSTATUS]);
static u_char *ngx_http_simplekv_json_namespaces(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf);
static u_char *ngx_http_simplekv_json_replicas(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf);
static u_char *ngx_http_simplekv_prom_nodes(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf);
static u_char *ngx_http_simplekv_prom_latency(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf);
static u_char *ngx_http_simplekv_prom_requests(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf, ngx_http_simplekv_shm_t *sh);
static u_char *ngx_http_simplekv_prom_label(u_char *p, ngx_str_t *value);


char *
ngx_http_simplekv_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_simplekv_status_handler;

    return NGX_CONF_OK;
}


char *
ngx_http_simplekv_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_simplekv_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_simplekv_status_handler(ngx_http_request_t *r)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_uint_t                      i;
    ngx_http_simplekv_node_t       *nodes;
    ngx_http_simplekv_shm_t        *sh;
    ngx_http_simplekv_main_conf_t  *mcf;

    /* JSON escaping may make a name six times longer (\u00XX) */
    rc = ngx_http_simplekv_view_start(r, 6, &mcf, &sh, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    nodes = mcf->nodes.elts;
    p = ngx_sprintf(b->last, "{\"epoch\": %ui, \"transition\": %s,\n"
                    " \"live_epochs\": ", mcf->epoch,
                    mcf->transition ? "true" : "false");
    p = ngx_http_simplekv_epoch_json(p, mcf);
    p = ngx_http_simplekv_json_replicas(p, mcf);
    p = ngx_sprintf(p, ",\n \"nodes\": [");

    for (i = 0; i < mcf->nodes.nelts; i++) {
        p = ngx_sprintf(p, "%s\n  ", i ? "," : "");
        p = ngx_http_simplekv_json_node(p, &nodes[i]);
    }

    p = ngx_sprintf(p, "\n ],\n \"namespaces\": [");
    p = ngx_http_simplekv_json_namespaces(p, mcf);
    p = ngx_sprintf(p, "\n ],\n \"requests\": {");
    p = ngx_http_simplekv_json_requests(p, sh ? sh->requests : NULL);
    p = ngx_sprintf(p, "\n },\n \"read_repairs\": %uA,\n"
                    " \"read_hedges\": %uA,\n"
                    " \"stream_resumes\": %uA,\n"
                    " \"write_retries\": %uA,\n"
                    " \"write_version_queries\": %uA,\n"
                    " \"versions_not_adopted\": %uA\n}\n",
                    sh ? sh->read_repairs : 0,
                    sh ? sh->read_hedges : 0,
                    sh ? sh->stream_resumes : 0,
                    sh ? sh->write_retries : 0,
                    sh ? sh->write_queries : 0,
                    sh ? sh->clock_refused : 0);

    b->last = p;

    return ngx_http_simplekv_send_body(r, b, NGX_HTTP_OK, "application/json");
}


/* What both views do first: GET or HEAD only, no body, the counters and
 * a buffer large enough for every node's names escaped. */
static ngx_int_t
ngx_http_simplekv_view_start(ngx_http_request_t *r,
    ngx_uint_t escape_factor, ngx_http_simplekv_main_conf_t **mcfp,
    ngx_http_simplekv_shm_t **sh, ngx_buf_t **b)
{
    size_t                          size;
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    ngx_http_simplekv_node_t       *nodes;
    ngx_http_simplekv_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_simplekv_module);
    nodes = mcf->nodes.elts;
    size = NGX_HTTP_SIMPLEKV_OTHER_TEXT
           + mcf->namespaces.nelts * NGX_HTTP_SIMPLEKV_NS_TEXT;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        size += NGX_HTTP_SIMPLEKV_NODE_TEXT
                + escape_factor * NGX_HTTP_SIMPLEKV_NAME_USES
                  * (nodes[i].name.len + nodes[i].upstream.len
                     + nodes[i].address.len);
    }

    *b = ngx_create_temp_buf(r->pool, size);
    if (*b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *mcfp = mcf;
    *sh = ngx_http_simplekv_shm(mcf);

    return NGX_OK;
}


static u_char *
ngx_http_simplekv_json_node(u_char *p, ngx_http_simplekv_node_t *node)
{
    ngx_http_simplekv_shm_node_t  *ns, none;

    ns = node->shm;

    if (ns == NULL) {
        ngx_memzero(&none, sizeof(none));
        none.up = 1;
        ns = &none;
    }

    p = ngx_sprintf(p, "{\"name\": \"");
    p = (u_char *) ngx_escape_json(p, node->name.data, node->name.len);
    p = ngx_sprintf(p, "\", \"upstream\": \"");
    p = (u_char *) ngx_escape_json(p, node->upstream.data,
                                   node->upstream.len);
    p = ngx_sprintf(p, "\", \"address\": \"");
    p = (u_char *) ngx_escape_json(p, node->address.data,
                                   node->address.len);

    return ngx_sprintf(p, "\", \"weight\": %ui, \"previous_weight\": %ui, "
                       "\"up\": %s, \"suspect\": %s, "
                       "\"successes\": %uA, \"failures\": %uA, "
                       "\"timeouts\": %uA, \"skipped\": %uA, "
                       "\"latency_ms_sum\": %uA, "
                       "\"latency_count\": %uA}",
                       node->weight, node->previous_weight,
                       ns->up ? "true" : "false",
                       ngx_http_simplekv_breaker_suspect(node)
                       ? "true" : "false",
                       ns->successes, ns->failures, ns->timeouts,
                       ns->skipped, ns->latency_ms_sum, ns->latency_count);
}


/* ,\n "replicas": [the distinct N of the simplekv locations] */
static u_char *
ngx_http_simplekv_json_replicas(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                 i, j, n;
    ngx_http_simplekv_site_t  *site;

    site = mcf->locations.elts;
    p = ngx_sprintf(p, ",\n \"replicas\": [");
    n = 0;

    for (i = 0; i < mcf->locations.nelts; i++) {
        for (j = 0; j < i; j++) {
            if (site[j].lcf->replicas == site[i].lcf->replicas) {
                break;
            }
        }

        if (j == i) {
            p = ngx_sprintf(p, "%s%ui", n++ ? ", " : "",
                            site[i].lcf->replicas);
        }
    }

    return ngx_sprintf(p, "]");
}


static u_char *
ngx_http_simplekv_json_requests(u_char *p,
    ngx_atomic_t (*requests)[NGX_HTTP_SIMPLEKV_NSTATUS])
{
    ngx_uint_t  m, s, first;

    for (m = 0; requests && m < NGX_HTTP_SIMPLEKV_NMETHODS; m++) {
        p = ngx_sprintf(p, "%s\n  \"%s\": {", m ? "," : "",
                        ngx_http_simplekv_methods[m]);
        first = 1;

        for (s = 0; s < NGX_HTTP_SIMPLEKV_NSTATUS; s++) {
            if (requests[m][s] == 0) {
                continue;
            }

            if (s < NGX_HTTP_SIMPLEKV_NCODES) {
                p = ngx_sprintf(p, "%s\"%ui\": %uA", first ? "" : ", ",
                                ngx_http_simplekv_codes[s],
                                requests[m][s]);

            } else {
                p = ngx_sprintf(p, "%s\"other\": %uA", first ? "" : ", ",
                                requests[m][s]);
            }

            first = 0;
        }

        p = ngx_sprintf(p, "}");
    }

    return p;
}


/* Each namespace with its quorums and its own request counts (names are
 * letters, digits, "-" and "_": nothing to escape). */
static u_char *
ngx_http_simplekv_json_namespaces(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                      i;
    ngx_http_simplekv_namespace_t  *ns;

    ns = mcf->namespaces.elts;

    for (i = 0; i < mcf->namespaces.nelts; i++) {
        p = ngx_sprintf(p, "%s\n  {\"name\": \"%V\", \"replicas\": %ui, "
                        "\"write_quorum\": %ui, \"read_quorum\": %ui,\n"
                        "   \"requests\": {", i ? "," : "", &ns[i].name,
                        ns[i].replicas, ns[i].write_quorum,
                        ns[i].read_quorum);
        p = ngx_http_simplekv_json_requests(p,
                                 ns[i].shm ? ns[i].shm->requests : NULL);
        p = ngx_sprintf(p, "}}");
    }

    return p;
}


static ngx_int_t
ngx_http_simplekv_metrics_handler(ngx_http_request_t *r)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_http_simplekv_shm_t        *sh;
    ngx_http_simplekv_main_conf_t  *mcf;

    /* label escaping at most doubles a name */
    rc = ngx_http_simplekv_view_start(r, 2, &mcf, &sh, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    p = b->last;

    if (sh) {
        p = ngx_http_simplekv_prom_nodes(p, mcf);
        p = ngx_http_simplekv_prom_latency(p, mcf);
        p = ngx_http_simplekv_prom_requests(p, mcf, sh);
    }

    b->last = p;

    return ngx_http_simplekv_send_body(r, b, NGX_HTTP_OK,
                                       "text/plain; version=0.0.4");
}


static u_char *
ngx_http_simplekv_prom_nodes(u_char *p, ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                     i, k;
    ngx_atomic_uint_t              value;
    ngx_http_simplekv_node_t      *nodes;
    ngx_http_simplekv_shm_node_t  *ns;

    static const char  *outcomes[] = {
        "success", "failure", "timeout", "skipped"
    };

    nodes = mcf->nodes.elts;

    p = ngx_sprintf(p, "# HELP simplekv_node_up Whether the node's last "
                    "reply came in time (1) or not (0).\n"
                    "# TYPE simplekv_node_up gauge\n");

    for (i = 0; i < mcf->nodes.nelts; i++) {
        ns = nodes[i].shm;
        p = ngx_sprintf(p, "simplekv_node_up{node=\"");
        p = ngx_http_simplekv_prom_label(p, &nodes[i].name);
        p = ngx_sprintf(p, "\"} %d\n", (ns == NULL || ns->up) ? 1 : 0);
    }

    p = ngx_sprintf(p, "# HELP simplekv_node_requests_total Replica "
                    "requests by outcome.\n"
                    "# TYPE simplekv_node_requests_total counter\n");

    for (i = 0; i < mcf->nodes.nelts; i++) {
        ns = nodes[i].shm;

        for (k = 0; ns && k < 4; k++) {
            value = (k == 0) ? ns->successes : (k == 1) ? ns->failures
                    : (k == 2) ? ns->timeouts : ns->skipped;

            p = ngx_sprintf(p, "simplekv_node_requests_total{node=\"");
            p = ngx_http_simplekv_prom_label(p, &nodes[i].name);
            p = ngx_sprintf(p, "\",outcome=\"%s\"} %uA\n", outcomes[k],
                            value);
        }
    }

    return p;
}


static u_char *
ngx_http_simplekv_prom_latency(u_char *p, ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                     i, j;
    ngx_atomic_uint_t              cum;
    ngx_http_simplekv_node_t      *nodes;
    ngx_http_simplekv_shm_node_t  *ns;

    nodes = mcf->nodes.elts;

    p = ngx_sprintf(p, "# HELP simplekv_node_latency_seconds Latency of "
                    "answered replica requests.\n"
                    "# TYPE simplekv_node_latency_seconds histogram\n");

    for (i = 0; i < mcf->nodes.nelts; i++) {
        ns = nodes[i].shm;
        if (ns == NULL) {
            continue;
        }

        cum = 0;

        for (j = 0; j < NGX_HTTP_SIMPLEKV_NBUCKETS; j++) {
            cum += ns->latency_bucket[j];
            p = ngx_sprintf(p, "simplekv_node_latency_seconds_bucket"
                            "{node=\"");
            p = ngx_http_simplekv_prom_label(p, &nodes[i].name);
            p = ngx_sprintf(p, "\",le=\"%ui.%03ui\"} %uA\n",
                            ngx_http_simplekv_buckets[j] / 1000,
                            ngx_http_simplekv_buckets[j] % 1000, cum);
        }

        p = ngx_sprintf(p, "simplekv_node_latency_seconds_bucket{node=\"");
        p = ngx_http_simplekv_prom_label(p, &nodes[i].name);
        p = ngx_sprintf(p, "\",le=\"+Inf\"} %uA\n"
                        "simplekv_node_latency_seconds_sum{node=\"",
                        ns->latency_count);
        p = ngx_http_simplekv_prom_label(p, &nodes[i].name);
        p = ngx_sprintf(p, "\"} %uA.%03uA\n"
                        "simplekv_node_latency_seconds_count{node=\"",
                        ns->latency_ms_sum / 1000, ns->latency_ms_sum % 1000);
        p = ngx_http_simplekv_prom_label(p, &nodes[i].name);
        p = ngx_sprintf(p, "\"} %uA\n", ns->latency_count);
    }

    return p;
}


static u_char *
ngx_http_simplekv_prom_requests(u_char *p, ngx_http_simplekv_main_conf_t *mcf,
    ngx_http_simplekv_shm_t *sh)
{
    ngx_uint_t                      i, m, s;
    ngx_atomic_t                  (*requests)[NGX_HTTP_SIMPLEKV_NSTATUS];
    ngx_http_simplekv_namespace_t  *ns;

    p = ngx_sprintf(p, "# HELP simplekv_requests_total Client requests by "
                    "namespace, method and final status.\n"
                    "# TYPE simplekv_requests_total counter\n");

    ns = mcf->namespaces.elts;

    for (i = 0; i < mcf->namespaces.nelts; i++) {
        if (ns[i].shm == NULL) {
            continue;
        }

        requests = ns[i].shm->requests;

        for (m = 0; m < NGX_HTTP_SIMPLEKV_NMETHODS; m++) {
            for (s = 0; s < NGX_HTTP_SIMPLEKV_NSTATUS; s++) {
                if (requests[m][s] == 0) {
                    continue;
                }

                p = ngx_sprintf(p, "simplekv_requests_total{namespace="
                                "\"%V\",method=\"%s\",", &ns[i].name,
                                ngx_http_simplekv_methods[m]);

                if (s < NGX_HTTP_SIMPLEKV_NCODES) {
                    p = ngx_sprintf(p, "status=\"%ui\"} %uA\n",
                                    ngx_http_simplekv_codes[s],
                                    requests[m][s]);

                } else {
                    p = ngx_sprintf(p, "status=\"other\"} %uA\n",
                                    requests[m][s]);
                }
            }
        }
    }

    return ngx_sprintf(p, "# HELP simplekv_read_repairs_total Reads that "
                       "wrote the newest version back.\n"
                       "# TYPE simplekv_read_repairs_total counter\n"
                       "simplekv_read_repairs_total %uA\n"
                       "# HELP simplekv_read_hedges_total Quorum reads that "
                       "asked the held-back replicas after "
                       "simplekv_read_hedge.\n"
                       "# TYPE simplekv_read_hedges_total counter\n"
                       "simplekv_read_hedges_total %uA\n"
                       "# HELP simplekv_stream_resumes_total Streamed values "
                       "cut short that another replica continued.\n"
                       "# TYPE simplekv_stream_resumes_total counter\n"
                       "simplekv_stream_resumes_total %uA\n"
                       "# HELP simplekv_write_retries_total Writes retried "
                       "with a newer version after a 409.\n"
                       "# TYPE simplekv_write_retries_total counter\n"
                       "simplekv_write_retries_total %uA\n"
                       "# HELP simplekv_write_version_queries_total Writes "
                       "that asked the replicas' versions first.\n"
                       "# TYPE simplekv_write_version_queries_total "
                       "counter\n"
                       "simplekv_write_version_queries_total %uA\n"
                       "# HELP simplekv_versions_not_adopted_total Versions "
                       "from replicas too far ahead of this router's clock."
                       "\n# TYPE simplekv_versions_not_adopted_total "
                       "counter\n"
                       "simplekv_versions_not_adopted_total %uA\n",
                       sh->read_repairs, sh->read_hedges, sh->stream_resumes,
                       sh->write_retries,
                       sh->write_queries, sh->clock_refused);
}


/* A label value in the text format: backslash, quote and new line are
 * escaped (node names come from nginx.conf and may hold any of them). */
static u_char *
ngx_http_simplekv_prom_label(u_char *p, ngx_str_t *value)
{
    size_t  i;

    for (i = 0; i < value->len; i++) {
        switch (value->data[i]) {
        case '\\':
            *p++ = '\\';
            *p++ = '\\';
            break;
        case '"':
            *p++ = '\\';
            *p++ = '"';
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        default:
            *p++ = value->data[i];
            break;
        }
    }

    return p;
}
