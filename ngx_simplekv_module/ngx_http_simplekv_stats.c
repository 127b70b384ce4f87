/*
 * ngx_http_simplekv_stats.c - the router's counters, in the shared zone so
 * that every worker adds to the same numbers (atomic adds, no lock).
 *
 * Per node (its slot): whether it looked up at its last reply, successes,
 * failures, timeouts, skips and a latency histogram; per client method:
 * requests by final status, in all and per namespace; read repairs; write
 * retries; streamed values continued from another replica.  status.c
 * shows them.
 */

#include "ngx_http_simplekv_shm.h"


/* Histogram upper bounds in milliseconds, shared with status.c. */
ngx_uint_t  ngx_http_simplekv_buckets[NGX_HTTP_SIMPLEKV_NBUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500
};

/* The statuses counted one by one; the last column counts the others. */
ngx_uint_t  ngx_http_simplekv_codes[NGX_HTTP_SIMPLEKV_NCODES] = {
    200, 201, 204, 304, 400, 404, 405, 412, 413, 414, 431, 500, 502, 503,
    504, 507
};

const char  *ngx_http_simplekv_methods[NGX_HTTP_SIMPLEKV_NMETHODS] = {
    "GET", "HEAD", "PUT", "DELETE", "other"
};


void
ngx_http_simplekv_stats_replica(ngx_http_simplekv_node_t *node,
    const skv_reply_t *reply, ngx_msec_t ms)
{
    ngx_uint_t                     i;
    ngx_http_simplekv_shm_node_t  *ns;

    ns = node->shm;
    if (ns == NULL) {
        return;
    }

    switch (reply->kind) {

    case SKV_REPLY_TIMEDOUT:
        (void) ngx_atomic_fetch_add(&ns->timeouts, 1);
        ns->up = 0;
        return;

    case SKV_REPLY_FAILED:
    case SKV_REPLY_REFUSED:
        (void) ngx_atomic_fetch_add(&ns->failures, 1);
        ns->up = ngx_http_simplekv_node_answered(reply);
        return;

    default:
        break;
    }

    (void) ngx_atomic_fetch_add(&ns->successes, 1);
    ns->up = 1;

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
ngx_http_simplekv_stats_skipped(ngx_http_simplekv_node_t *node)
{
    if (node->shm) {
        (void) ngx_atomic_fetch_add(&node->shm->skipped, 1);
    }
}


void
ngx_http_simplekv_stats_read_repair(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->read_repairs, 1);
    }
}


void
ngx_http_simplekv_stats_read_hedge(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->read_hedges, 1);
    }
}


void
ngx_http_simplekv_stats_write_retry(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->write_retries, 1);
    }
}


void
ngx_http_simplekv_stats_write_query(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->write_queries, 1);
    }
}


void
ngx_http_simplekv_stats_stream_resume(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    if (sh) {
        (void) ngx_atomic_fetch_add(&sh->stream_resumes, 1);
    }
}


static ngx_uint_t
ngx_http_simplekv_method_index(ngx_uint_t method)
{
    switch (method) {
    case NGX_HTTP_GET:
        return 0;
    case NGX_HTTP_HEAD:
        return 1;
    case NGX_HTTP_PUT:
        return 2;
    case NGX_HTTP_DELETE:
        return 3;
    default:
        return 4;
    }
}


/* Log phase: count the final status of every client request that a
 * simplekv location handled (errors nginx itself produced included). */
ngx_int_t
ngx_http_simplekv_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                      m, s, status;
    ngx_http_simplekv_shm_t        *sh;
    ngx_http_simplekv_loc_conf_t   *lcf;

    if (r != r->main) {
        return NGX_OK;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_simplekv_module);
    if (lcf == NULL || !lcf->enable) {
        return NGX_OK;
    }

    sh = ngx_http_simplekv_shm(ngx_http_get_module_main_conf(r,
                                                  ngx_http_simplekv_module));
    if (sh == NULL) {
        return NGX_OK;
    }

    m = ngx_http_simplekv_method_index(r->method);
    status = r->err_status ? r->err_status : r->headers_out.status;

    for (s = 0; s < NGX_HTTP_SIMPLEKV_NCODES; s++) {
        if (ngx_http_simplekv_codes[s] == status) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&sh->requests[m][s], 1);

    if (lcf->ns && lcf->ns->shm) {
        (void) ngx_atomic_fetch_add(&lcf->ns->shm->requests[m][s], 1);
    }

    return NGX_OK;
}
