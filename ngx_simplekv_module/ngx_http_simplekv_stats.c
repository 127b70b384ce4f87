/*
 * ngx_http_simplekv_stats.c - router counters and their two views.
 *
 * Counters live in a shared memory zone so that every worker adds to the
 * same numbers (atomic adds, no lock).  Per node: whether it looked up at
 * its last reply, successes, failures, timeouts and a latency histogram;
 * per client method: requests by final status; read repairs; write retries.
 * simplekv_status serves them as JSON, simplekv_metrics in the Prometheus
 * text format.
 */

#include "ngx_http_simplekv_module.h"


/* Histogram upper bounds in milliseconds (+Inf is the count). */
static ngx_uint_t  ngx_http_simplekv_buckets[] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500
};

#define NGX_HTTP_SIMPLEKV_NBUCKETS                                           \
    (sizeof(ngx_http_simplekv_buckets) / sizeof(ngx_uint_t))


static ngx_uint_t  ngx_http_simplekv_codes[] = {
    200, 201, 204, 304, 400, 404, 405, 412, 413, 414, 500, 502, 503, 504
};

#define NGX_HTTP_SIMPLEKV_NCODES                                             \
    (sizeof(ngx_http_simplekv_codes) / sizeof(ngx_uint_t))

/* the last column counts every other status */
#define NGX_HTTP_SIMPLEKV_NSTATUS  (NGX_HTTP_SIMPLEKV_NCODES + 1)


static const char  *ngx_http_simplekv_methods[] = {
    "GET", "HEAD", "PUT", "DELETE", "other"
};

#define NGX_HTTP_SIMPLEKV_NMETHODS  5


typedef struct {
    ngx_atomic_t             up;
    ngx_atomic_t             successes;
    ngx_atomic_t             failures;
    ngx_atomic_t             timeouts;
    ngx_atomic_t             latency_ms_sum;
    ngx_atomic_t             latency_count;
    ngx_atomic_t             latency_bucket[NGX_HTTP_SIMPLEKV_NBUCKETS];

    /* the circuit breaker (wall-clock ms, shared by all workers) */
    ngx_atomic_t             suspect_until;
    ngx_atomic_t             probe_after;
    ngx_atomic_t             skipped;
} ngx_http_simplekv_node_stats_t;


typedef struct {
    ngx_uint_t               nnodes;
    ngx_atomic_t             requests[NGX_HTTP_SIMPLEKV_NMETHODS]
                                     [NGX_HTTP_SIMPLEKV_NSTATUS];
    ngx_atomic_t             read_repairs;
    ngx_atomic_t             write_retries;

    /* the version clock all workers share (ngx_http_simplekv_module.c) */
    ngx_atomic_t             clock_last_hlc;
    uint64_t                 clock_origin;

    ngx_http_simplekv_node_stats_t  nodes[1];
} ngx_http_simplekv_stats_t;


static ngx_int_t ngx_http_simplekv_init_shm(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_simplekv_stats_t *ngx_http_simplekv_stats_get(
    ngx_http_simplekv_main_conf_t *mcf);
static ngx_int_t ngx_http_simplekv_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_simplekv_send_text(ngx_http_request_t *r,
    ngx_buf_t *b, const char *type);


static ngx_str_t  ngx_http_simplekv_zone_name = ngx_string("simplekv_stats");


ngx_int_t
ngx_http_simplekv_stats_init_zone(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf)
{
    size_t  size;

    size = sizeof(ngx_http_simplekv_stats_t)
           + mcf->nodes.nelts * sizeof(ngx_http_simplekv_node_stats_t);

    /* room for the slab allocator's own pages and bookkeeping */
    size = ngx_align(size, ngx_pagesize) + 8 * ngx_pagesize;

    mcf->shm_zone = ngx_shared_memory_add(cf, &ngx_http_simplekv_zone_name,
                                          size, &ngx_http_simplekv_module);
    if (mcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    mcf->shm_zone->init = ngx_http_simplekv_init_shm;
    mcf->shm_zone->data = mcf;

    return NGX_OK;
}


/*
 * On reload the zone is reused when its size is unchanged: keep the
 * counters if the node list has the same length (the usual reload),
 * else start over.
 */
static ngx_int_t
ngx_http_simplekv_init_shm(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_simplekv_main_conf_t  *omcf = data;

    size_t                          size;
    ngx_uint_t                      i;
    ngx_slab_pool_t                *shpool;
    ngx_http_simplekv_stats_t      *st;
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (omcf && shpool->data) {
        st = shpool->data;

        if (st->nnodes == mcf->nodes.nelts) {
            return NGX_OK;
        }
    }

    size = sizeof(ngx_http_simplekv_stats_t)
           + mcf->nodes.nelts * sizeof(ngx_http_simplekv_node_stats_t);

    if (shpool->data) {
        ngx_slab_free(shpool, shpool->data);
    }

    st = ngx_slab_calloc(shpool, size);
    if (st == NULL) {
        return NGX_ERROR;
    }

    st->nnodes = mcf->nodes.nelts;
    st->clock_origin = skv_origin_random();

    for (i = 0; i < st->nnodes; i++) {
        /* a node is presumed up until a reply says otherwise */
        st->nodes[i].up = 1;
    }

    shpool->data = st;

    return NGX_OK;
}


static ngx_http_simplekv_stats_t *
ngx_http_simplekv_stats_get(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_slab_pool_t  *shpool;

    if (mcf->shm_zone == NULL) {
        return NULL;
    }

    shpool = (ngx_slab_pool_t *) mcf->shm_zone->shm.addr;

    return shpool->data;
}


/*
 * The shared version clock: its last hlc, advanced with compare-and-swap,
 * and the origin id of this nginx instance.  NULL before the zone exists.
 */
ngx_atomic_t *
ngx_http_simplekv_stats_clock(ngx_http_simplekv_main_conf_t *mcf,
    uint64_t *origin)
{
    ngx_http_simplekv_stats_t  *st;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st == NULL) {
        return NULL;
    }

    *origin = st->clock_origin;

    return &st->clock_last_hlc;
}


static ngx_atomic_uint_t
ngx_http_simplekv_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_atomic_uint_t) tp->sec * 1000 + tp->msec;
}


/*
 * The circuit breaker.  A node that timed out is "suspect" for a while:
 * reads and listings skip it (when the quorum can be met without it),
 * except one probe at a time every NGX_HTTP_SIMPLEKV_PROBE_MS; writes still
 * go to it (so it misses nothing once it is back) but, like probes, may
 * hold the client's connection only briefly after the answer.  Any answer
 * from the node clears it.  Without this a frozen node would hold every
 * keep-alive client's connection for simplekv_replica_timeout after each
 * answer (subrequests run on the client's connection).  Timeouts only: a
 * refused connection fails at once and costs nothing.
 */
ngx_uint_t
ngx_http_simplekv_node_suspect(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node)
{
    ngx_atomic_uint_t                now, probe;
    ngx_http_simplekv_stats_t       *st;
    ngx_http_simplekv_node_stats_t  *ns;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st == NULL || node >= st->nnodes) {
        return 0;
    }

    ns = &st->nodes[node];
    now = ngx_http_simplekv_now_ms();

    if (ns->suspect_until <= now) {
        return 0;
    }

    probe = ns->probe_after;

    if (probe <= now
        && ngx_atomic_cmp_set(&ns->probe_after, probe,
                              now + NGX_HTTP_SIMPLEKV_PROBE_MS))
    {
        /* this request is the probe */
        return NGX_HTTP_SIMPLEKV_PROBE;
    }

    return NGX_HTTP_SIMPLEKV_SKIP;
}


/* Suspect now, without taking a probe slot (writes go to suspects too). */
ngx_uint_t
ngx_http_simplekv_node_is_suspect(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node)
{
    ngx_http_simplekv_stats_t  *st;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st == NULL || node >= st->nnodes) {
        return 0;
    }

    return st->nodes[node].suspect_until > ngx_http_simplekv_now_ms();
}


void
ngx_http_simplekv_stats_skipped(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node)
{
    ngx_http_simplekv_stats_t  *st;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st && node < st->nnodes) {
        (void) ngx_atomic_fetch_add(&st->nodes[node].skipped, 1);
    }
}


void
ngx_http_simplekv_stats_replica(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node, ngx_http_simplekv_outcome_e outcome, ngx_msec_t ms)
{
    ngx_uint_t                       i;
    ngx_http_simplekv_stats_t       *st;
    ngx_http_simplekv_node_stats_t  *ns;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st == NULL || node >= st->nnodes) {
        return;
    }

    ns = &st->nodes[node];

    switch (outcome) {

    case NGX_HTTP_SIMPLEKV_FAILED:
        (void) ngx_atomic_fetch_add(&ns->failures, 1);
        ns->up = 0;
        return;

    case NGX_HTTP_SIMPLEKV_TIMEDOUT:
        (void) ngx_atomic_fetch_add(&ns->timeouts, 1);
        ns->up = 0;
        ns->suspect_until = ngx_http_simplekv_now_ms()
                            + NGX_HTTP_SIMPLEKV_SUSPECT_MS;
        return;

    default:
        break;
    }

    (void) ngx_atomic_fetch_add(&ns->successes, 1);
    ns->up = 1;

    if (ns->suspect_until) {
        ns->suspect_until = 0;
    }

    (void) ngx_atomic_fetch_add(&ns->latency_ms_sum, ms);
    (void) ngx_atomic_fetch_add(&ns->latency_count, 1);

    for (i = 0; i < NGX_HTTP_SIMPLEKV_NBUCKETS; i++) {
        if (ms <= ngx_http_simplekv_buckets[i]) {
            (void) ngx_atomic_fetch_add(&ns->latency_bucket[i], 1);
            break;
        }
    }
}


void
ngx_http_simplekv_stats_read_repair(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_stats_t  *st;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st) {
        (void) ngx_atomic_fetch_add(&st->read_repairs, 1);
    }
}


void
ngx_http_simplekv_stats_write_retry(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_stats_t  *st;

    st = ngx_http_simplekv_stats_get(mcf);
    if (st) {
        (void) ngx_atomic_fetch_add(&st->write_retries, 1);
    }
}


/* Log phase: count the final status of every client request that a
 * simplekv location handled (errors nginx itself produced included). */
ngx_int_t
ngx_http_simplekv_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                      m, s, status;
    ngx_http_simplekv_stats_t      *st;
    ngx_http_simplekv_loc_conf_t   *lcf;
    ngx_http_simplekv_main_conf_t  *mcf;

    if (r != r->main) {
        return NGX_OK;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_simplekv_module);
    if (lcf == NULL || !lcf->enable) {
        return NGX_OK;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_simplekv_module);

    st = ngx_http_simplekv_stats_get(mcf);
    if (st == NULL) {
        return NGX_OK;
    }

    switch (r->method) {
    case NGX_HTTP_GET:
        m = 0;
        break;
    case NGX_HTTP_HEAD:
        m = 1;
        break;
    case NGX_HTTP_PUT:
        m = 2;
        break;
    case NGX_HTTP_DELETE:
        m = 3;
        break;
    default:
        m = 4;
        break;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    for (s = 0; s < NGX_HTTP_SIMPLEKV_NCODES; s++) {
        if (ngx_http_simplekv_codes[s] == status) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&st->requests[m][s], 1);

    return NGX_OK;
}


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


/* An upper bound of the text needed for one node / for the rest; names
 * are escaped, which may at most sextuple them (\u00XX). */
#define NGX_HTTP_SIMPLEKV_NODE_TEXT   (2048 + NGX_HTTP_SIMPLEKV_NBUCKETS * 160)
#define NGX_HTTP_SIMPLEKV_OTHER_TEXT  (NGX_HTTP_SIMPLEKV_NMETHODS          \
                                       * NGX_HTTP_SIMPLEKV_NSTATUS * 96     \
                                       + 1024)


static ngx_int_t
ngx_http_simplekv_status_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           size;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, m, s, first;
    ngx_http_simplekv_node_t        *nodes;
    ngx_http_simplekv_stats_t       *st;
    ngx_http_simplekv_node_stats_t  *ns;
    ngx_http_simplekv_main_conf_t   *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_simplekv_module);
    st = ngx_http_simplekv_stats_get(mcf);
    nodes = mcf->nodes.elts;

    size = NGX_HTTP_SIMPLEKV_OTHER_TEXT;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        size += NGX_HTTP_SIMPLEKV_NODE_TEXT
                + 6 * (nodes[i].name.len + nodes[i].upstream.len);
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;
    p = ngx_sprintf(p, "{\"nodes\": [");

    for (i = 0; st && i < mcf->nodes.nelts && i < st->nnodes; i++) {
        ns = &st->nodes[i];

        p = ngx_sprintf(p, "%s\n  {\"name\": \"", i ? "," : "");
        p = (u_char *) ngx_escape_json(p, nodes[i].name.data,
                                       nodes[i].name.len);
        p = ngx_sprintf(p, "\", \"upstream\": \"");
        p = (u_char *) ngx_escape_json(p, nodes[i].upstream.data,
                                       nodes[i].upstream.len);
        p = ngx_sprintf(p, "\", \"weight\": %ui, \"up\": %s, "
                        "\"suspect\": %s, "
                        "\"successes\": %uA, \"failures\": %uA, "
                        "\"timeouts\": %uA, \"skipped\": %uA, "
                        "\"latency_ms_sum\": %uA, "
                        "\"latency_count\": %uA}",
                        nodes[i].weight, ns->up ? "true" : "false",
                        ns->suspect_until > ngx_http_simplekv_now_ms()
                        ? "true" : "false",
                        ns->successes, ns->failures, ns->timeouts,
                        ns->skipped, ns->latency_ms_sum, ns->latency_count);
    }

    p = ngx_sprintf(p, "\n ],\n \"requests\": {");

    for (m = 0; st && m < NGX_HTTP_SIMPLEKV_NMETHODS; m++) {
        p = ngx_sprintf(p, "%s\n  \"%s\": {", m ? "," : "",
                        ngx_http_simplekv_methods[m]);
        first = 1;

        for (s = 0; s < NGX_HTTP_SIMPLEKV_NSTATUS; s++) {
            if (st->requests[m][s] == 0) {
                continue;
            }

            if (s < NGX_HTTP_SIMPLEKV_NCODES) {
                p = ngx_sprintf(p, "%s\"%ui\": %uA", first ? "" : ", ",
                                ngx_http_simplekv_codes[s],
                                st->requests[m][s]);

            } else {
                p = ngx_sprintf(p, "%s\"other\": %uA", first ? "" : ", ",
                                st->requests[m][s]);
            }

            first = 0;
        }

        p = ngx_sprintf(p, "}");
    }

    p = ngx_sprintf(p, "\n },\n \"read_repairs\": %uA,\n"
                    " \"write_retries\": %uA\n}\n",
                    st ? st->read_repairs : 0,
                    st ? st->write_retries : 0);

    b->last = p;

    return ngx_http_simplekv_send_text(r, b, "application/json");
}


static ngx_int_t
ngx_http_simplekv_metrics_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           size;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, j, m, s;
    ngx_atomic_uint_t                cum;
    ngx_http_simplekv_node_t        *nodes;
    ngx_http_simplekv_stats_t       *st;
    ngx_http_simplekv_node_stats_t  *ns;
    ngx_http_simplekv_main_conf_t   *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_simplekv_module);
    st = ngx_http_simplekv_stats_get(mcf);
    nodes = mcf->nodes.elts;

    size = NGX_HTTP_SIMPLEKV_OTHER_TEXT + 2048;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        size += NGX_HTTP_SIMPLEKV_NODE_TEXT
                + (NGX_HTTP_SIMPLEKV_NBUCKETS + 8) * 2 * nodes[i].name.len;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    if (st == NULL) {
        b->last = p;
        return ngx_http_simplekv_send_text(r, b,
                                           "text/plain; version=0.0.4");
    }

    /*
     * Node names go into label values as configured: nginx's
     * configuration parser already refuses the characters that would need
     * escaping there (a quote, a backslash, a newline end the token).
     */

    p = ngx_sprintf(p, "# HELP simplekv_node_up Whether the node's last "
                    "reply came in time (1) or not (0).\n"
                    "# TYPE simplekv_node_up gauge\n");

    for (i = 0; i < st->nnodes; i++) {
        p = ngx_sprintf(p, "simplekv_node_up{node=\"%V\"} %d\n",
                        &nodes[i].name, st->nodes[i].up ? 1 : 0);
    }

    p = ngx_sprintf(p, "# HELP simplekv_node_requests_total Replica "
                    "requests by outcome.\n"
                    "# TYPE simplekv_node_requests_total counter\n");

    for (i = 0; i < st->nnodes; i++) {
        ns = &st->nodes[i];
        p = ngx_sprintf(p,
                "simplekv_node_requests_total{node=\"%V\",outcome=\"success\"}"
                " %uA\n"
                "simplekv_node_requests_total{node=\"%V\",outcome=\"failure\"}"
                " %uA\n"
                "simplekv_node_requests_total{node=\"%V\",outcome=\"timeout\"}"
                " %uA\n"
                "simplekv_node_requests_total{node=\"%V\",outcome=\"skipped\"}"
                " %uA\n",
                &nodes[i].name, ns->successes, &nodes[i].name, ns->failures,
                &nodes[i].name, ns->timeouts, &nodes[i].name, ns->skipped);
    }

    p = ngx_sprintf(p, "# HELP simplekv_node_latency_seconds Latency of "
                    "answered replica requests.\n"
                    "# TYPE simplekv_node_latency_seconds histogram\n");

    for (i = 0; i < st->nnodes; i++) {
        ns = &st->nodes[i];
        cum = 0;

        for (j = 0; j < NGX_HTTP_SIMPLEKV_NBUCKETS; j++) {
            cum += ns->latency_bucket[j];
            p = ngx_sprintf(p, "simplekv_node_latency_seconds_bucket"
                            "{node=\"%V\",le=\"%ui.%03ui\"} %uA\n",
                            &nodes[i].name,
                            ngx_http_simplekv_buckets[j] / 1000,
                            ngx_http_simplekv_buckets[j] % 1000, cum);
        }

        p = ngx_sprintf(p, "simplekv_node_latency_seconds_bucket"
                        "{node=\"%V\",le=\"+Inf\"} %uA\n"
                        "simplekv_node_latency_seconds_sum{node=\"%V\"} "
                        "%uA.%03uA\n"
                        "simplekv_node_latency_seconds_count{node=\"%V\"} "
                        "%uA\n",
                        &nodes[i].name, ns->latency_count,
                        &nodes[i].name, ns->latency_ms_sum / 1000,
                        ns->latency_ms_sum % 1000,
                        &nodes[i].name, ns->latency_count);
    }

    p = ngx_sprintf(p, "# HELP simplekv_requests_total Client requests by "
                    "method and final status.\n"
                    "# TYPE simplekv_requests_total counter\n");

    for (m = 0; m < NGX_HTTP_SIMPLEKV_NMETHODS; m++) {
        for (s = 0; s < NGX_HTTP_SIMPLEKV_NSTATUS; s++) {
            if (st->requests[m][s] == 0) {
                continue;
            }

            if (s < NGX_HTTP_SIMPLEKV_NCODES) {
                p = ngx_sprintf(p, "simplekv_requests_total{method=\"%s\","
                                "status=\"%ui\"} %uA\n",
                                ngx_http_simplekv_methods[m],
                                ngx_http_simplekv_codes[s],
                                st->requests[m][s]);

            } else {
                p = ngx_sprintf(p, "simplekv_requests_total{method=\"%s\","
                                "status=\"other\"} %uA\n",
                                ngx_http_simplekv_methods[m],
                                st->requests[m][s]);
            }
        }
    }

    p = ngx_sprintf(p, "# HELP simplekv_read_repairs_total Reads that wrote "
                    "the newest version back.\n"
                    "# TYPE simplekv_read_repairs_total counter\n"
                    "simplekv_read_repairs_total %uA\n"
                    "# HELP simplekv_write_retries_total Writes retried with "
                    "a newer version after a 409.\n"
                    "# TYPE simplekv_write_retries_total counter\n"
                    "simplekv_write_retries_total %uA\n",
                    st->read_repairs, st->write_retries);

    b->last = p;

    return ngx_http_simplekv_send_text(r, b, "text/plain; version=0.0.4");
}


static ngx_int_t
ngx_http_simplekv_send_text(ngx_http_request_t *r, ngx_buf_t *b,
    const char *type)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    /* counters change between requests */
    r->headers_out.last_modified_time = -1;

    b->last_buf = 1;
    b->last_in_chain = 1;

    if (b->last == b->pos) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
