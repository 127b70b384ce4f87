/*
 * ngx_http_simplekv_breaker.c - the circuit breaker for slow and frozen
 * nodes.
 *
 * A node that timed out is "suspect" for NGX_HTTP_SIMPLEKV_SUSPECT_MS:
 * reads and listings skip it (when the quorum can be met without it);
 * the router's own health probe (probe.c, one every
 * NGX_HTTP_SIMPLEKV_PROBE_MS, never a client's request) finds out when it
 * is back, and keeps it suspect while it stays silent; writes still go to
 * it (so it misses nothing once it is back) but may hold the client's
 * connection only briefly after the answer.  Any answer from the node
 * clears it.  Without this a frozen node would hold every
 * keep-alive client's connection for simplekv_replica_timeout after each
 * answer (subrequests run on the client's connection).  Timeouts only: a
 * refused connection fails at once and costs nothing.
 *
 * The state is in the node's shared slot, so all workers agree.
 */

#include "ngx_http_simplekv_shm.h"


ngx_msec_t
ngx_http_simplekv_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) tp->sec * 1000 + tp->msec;
}


/*
 * Should a read ask this node now?  NGX_HTTP_SIMPLEKV_ASK, _SKIP, or
 * _PROBE (ask it: this request is the one probe of the interval; only
 * when take_probe is set).
 */
ngx_uint_t
ngx_http_simplekv_breaker_check(ngx_http_simplekv_node_t *node,
    ngx_uint_t take_probe)
{
    ngx_atomic_uint_t              now, probe;
    ngx_http_simplekv_shm_node_t  *ns;

    ns = node->shm;
    if (ns == NULL) {
        return NGX_HTTP_SIMPLEKV_ASK;
    }

    now = ngx_http_simplekv_now_ms();

    if (ns->suspect_until <= now) {
        return NGX_HTTP_SIMPLEKV_ASK;
    }

    probe = ns->probe_after;

    if (take_probe && probe <= now
        && ngx_atomic_cmp_set(&ns->probe_after, probe,
                              now + NGX_HTTP_SIMPLEKV_PROBE_MS))
    {
        return NGX_HTTP_SIMPLEKV_PROBE;
    }

    return NGX_HTTP_SIMPLEKV_SKIP;
}


ngx_uint_t
ngx_http_simplekv_breaker_suspect(ngx_http_simplekv_node_t *node)
{
    if (node->shm == NULL) {
        return 0;
    }

    return node->shm->suspect_until > ngx_http_simplekv_now_ms();
}


void
ngx_http_simplekv_breaker_record(ngx_http_simplekv_node_t *node,
    const skv_reply_t *reply)
{
    ngx_http_simplekv_shm_node_t  *ns;

    ns = node->shm;
    if (ns == NULL) {
        return;
    }

    if (reply->kind == SKV_REPLY_TIMEDOUT) {
        ns->suspect_until = ngx_http_simplekv_now_ms()
                            + NGX_HTTP_SIMPLEKV_SUSPECT_MS;
        return;
    }

    /* an answer from the node, even a refusal, shows it is responsive */
    if (ngx_http_simplekv_node_answered(reply) && ns->suspect_until) {
        ns->suspect_until = 0;
    }
}


/* The health probe's result (probe.c): an answer clears the suspicion,
 * silence keeps the node suspect from now on. */
void
ngx_http_simplekv_breaker_probed(ngx_http_simplekv_node_t *node,
    ngx_uint_t answered)
{
    ngx_http_simplekv_shm_node_t  *ns;

    ns = node->shm;
    if (ns == NULL) {
        return;
    }

    if (answered) {
        if (ns->suspect_until) {
            ns->suspect_until = 0;
        }

        return;
    }

    ns->suspect_until = ngx_http_simplekv_now_ms()
                        + NGX_HTTP_SIMPLEKV_SUSPECT_MS;
}
