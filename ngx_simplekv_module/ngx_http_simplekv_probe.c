/*
 * ngx_http_simplekv_probe.c - the router's own health probe of suspect
 * nodes.
 *
 * A node that timed out is suspect (breaker.c) and reads leave it out.
 * Whether it is back used to be learnt from a client's read sent to it
 * every NGX_HTTP_SIMPLEKV_PROBE_MS: with a frozen node that read held its
 * client's connection until the round's deadline.  Instead each worker
 * runs a timer every NGX_HTTP_SIMPLEKV_PROBE_MS and, for each suspect node
 * (one probe per interval across all workers, the breaker's probe_after
 * slot), sends `GET /v1/health` (a read through storaged's database) on a
 * connection of its own to the first server of the node's upstream block:
 *
 *  - any HTTP status line back: the node answers again, its suspicion is
 *    cleared and reads ask it again;
 *  - no answer within NGX_HTTP_SIMPLEKV_PROBE_TIMEOUT_MS: it stays
 *    suspect (for NGX_HTTP_SIMPLEKV_SUSPECT_MS from now), so a node that
 *    only writes still reach is never asked by reads while frozen;
 *  - a refused or reset connection changes nothing (as for replica
 *    requests: it fails at once and costs a client nothing).
 *
 * No client request waits for a probe.  Probes are HTTP/1.0 (the node
 * closes the connection), carry the router's Authorization, and are not
 * counted in the node's replica statistics.
 */

#include "ngx_http_simplekv_shm.h"


#define NGX_HTTP_SIMPLEKV_PROBE_BUF  512


typedef struct {
    ngx_http_simplekv_node_t       *node;
    ngx_http_simplekv_main_conf_t  *mcf;
    ngx_pool_t                     *pool;
    ngx_peer_connection_t           peer;
    ngx_buf_t                      *out;
    ngx_buf_t                      *in;
    ngx_http_request_t             *scratch;   /* the parser's state */
    ngx_http_status_t               status;
    ngx_addr_t                     *addr;
    unsigned                        running:1;
} ngx_http_simplekv_probe_t;


static void ngx_http_simplekv_probe_tick(ngx_event_t *ev);
static void ngx_http_simplekv_probe_start(ngx_http_simplekv_probe_t *p,
    ngx_log_t *log);
static ngx_int_t ngx_http_simplekv_probe_request(
    ngx_http_simplekv_probe_t *p);
static void ngx_http_simplekv_probe_write(ngx_event_t *wev);
static void ngx_http_simplekv_probe_read(ngx_event_t *rev);
static void ngx_http_simplekv_probe_done(ngx_http_simplekv_probe_t *p,
    ngx_int_t result);


static ngx_event_t                 ngx_http_simplekv_probe_timer;
static ngx_http_simplekv_probe_t  *ngx_http_simplekv_probes;
static ngx_uint_t                  ngx_http_simplekv_nprobes;


/* init_process: one probe slot per node with an address, and the timer. */
ngx_int_t
ngx_http_simplekv_probe_init(ngx_cycle_t *cycle,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                   i;
    ngx_http_simplekv_node_t    *nodes;
    ngx_http_upstream_server_t  *servers;

    if (mcf == NULL || mcf->nodes.nelts == 0) {
        return NGX_OK;
    }

    ngx_http_simplekv_probes = ngx_pcalloc(cycle->pool,
                             mcf->nodes.nelts * sizeof(ngx_http_simplekv_probe_t));
    if (ngx_http_simplekv_probes == NULL) {
        return NGX_ERROR;
    }

    ngx_http_simplekv_nprobes = mcf->nodes.nelts;
    nodes = mcf->nodes.elts;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        ngx_http_simplekv_probes[i].node = &nodes[i];
        ngx_http_simplekv_probes[i].mcf = mcf;

        if (nodes[i].uscf == NULL || nodes[i].uscf->servers == NULL
            || nodes[i].uscf->servers->nelts == 0)
        {
            continue;
        }

        servers = nodes[i].uscf->servers->elts;

        if (servers[0].naddrs) {
            ngx_http_simplekv_probes[i].addr = &servers[0].addrs[0];
        }
    }

    ngx_http_simplekv_probe_timer.handler = ngx_http_simplekv_probe_tick;
    ngx_http_simplekv_probe_timer.data = mcf;
    ngx_http_simplekv_probe_timer.log = cycle->log;
    /* never holds up a graceful shutdown */
    ngx_http_simplekv_probe_timer.cancelable = 1;

    ngx_add_timer(&ngx_http_simplekv_probe_timer,
                  NGX_HTTP_SIMPLEKV_PROBE_MS);

    return NGX_OK;
}


/* exit_process: end the probes still running. */
void
ngx_http_simplekv_probe_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    if (ngx_http_simplekv_probe_timer.timer_set) {
        ngx_del_timer(&ngx_http_simplekv_probe_timer);
    }

    for (i = 0; i < ngx_http_simplekv_nprobes; i++) {
        if (ngx_http_simplekv_probes[i].running) {
            ngx_http_simplekv_probe_done(&ngx_http_simplekv_probes[i],
                                         NGX_ABORT);
        }
    }

    ngx_http_simplekv_nprobes = 0;
}


static void
ngx_http_simplekv_probe_tick(ngx_event_t *ev)
{
    ngx_uint_t                  i;
    ngx_http_simplekv_probe_t  *p;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    for (i = 0; i < ngx_http_simplekv_nprobes; i++) {
        p = &ngx_http_simplekv_probes[i];

        if (p->running || p->addr == NULL) {
            continue;
        }

        /* suspect, and this worker took the interval's probe slot */
        if (ngx_http_simplekv_breaker_check(p->node, 1)
            != NGX_HTTP_SIMPLEKV_PROBE)
        {
            continue;
        }

        ngx_http_simplekv_probe_start(p, ev->log);
    }

    ngx_add_timer(ev, NGX_HTTP_SIMPLEKV_PROBE_MS);
}


static void
ngx_http_simplekv_probe_start(ngx_http_simplekv_probe_t *p, ngx_log_t *log)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    p->pool = ngx_create_pool(1024, log);
    if (p->pool == NULL) {
        return;
    }

    p->running = 1;

    p->scratch = ngx_pcalloc(p->pool, sizeof(ngx_http_request_t));
    p->in = ngx_create_temp_buf(p->pool, NGX_HTTP_SIMPLEKV_PROBE_BUF);
    if (p->scratch == NULL || p->in == NULL
        || ngx_http_simplekv_probe_request(p) != NGX_OK)
    {
        ngx_http_simplekv_probe_done(p, NGX_ERROR);
        return;
    }

    ngx_memzero(&p->status, sizeof(ngx_http_status_t));
    ngx_memzero(&p->peer, sizeof(ngx_peer_connection_t));

    p->peer.sockaddr = p->addr->sockaddr;
    p->peer.socklen = p->addr->socklen;
    p->peer.name = &p->addr->name;
    p->peer.get = ngx_event_get_peer;
    p->peer.log = log;
    p->peer.log_error = NGX_ERROR_ERR;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "simplekv probe of node \"%V\"", &p->node->name);

    rc = ngx_event_connect_peer(&p->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_http_simplekv_probe_done(p, NGX_ERROR);
        return;
    }

    c = p->peer.connection;
    c->data = p;
    c->pool = p->pool;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_http_simplekv_probe_read;
    c->write->handler = ngx_http_simplekv_probe_write;

    ngx_add_timer(c->write, NGX_HTTP_SIMPLEKV_PROBE_TIMEOUT_MS);

    if (rc == NGX_OK) {
        ngx_http_simplekv_probe_write(c->write);
    }
}


static ngx_int_t
ngx_http_simplekv_probe_request(ngx_http_simplekv_probe_t *p)
{
    size_t      len;
    ngx_buf_t  *b;

    len = sizeof("GET /v1/health HTTP/1.0" CRLF "Host: " CRLF CRLF) - 1
          + p->node->upstream.len;

    if (p->mcf->authorization.len) {
        len += sizeof("Authorization: " CRLF) - 1
               + p->mcf->authorization.len;
    }

    b = ngx_create_temp_buf(p->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_sprintf(b->last, "GET /v1/health HTTP/1.0" CRLF
                          "Host: %V" CRLF, &p->node->upstream);

    if (p->mcf->authorization.len) {
        b->last = ngx_sprintf(b->last, "Authorization: %V" CRLF,
                              &p->mcf->authorization);
    }

    *b->last++ = CR; *b->last++ = LF;

    p->out = b;

    return NGX_OK;
}


static void
ngx_http_simplekv_probe_write(ngx_event_t *wev)
{
    ssize_t                     n;
    ngx_buf_t                  *b;
    ngx_connection_t           *c;
    ngx_http_simplekv_probe_t  *p;

    c = wev->data;
    p = c->data;
    b = p->out;

    if (wev->timedout) {
        ngx_http_simplekv_probe_done(p, NGX_HTTP_GATEWAY_TIME_OUT);
        return;
    }

    while (b->pos < b->last) {
        n = c->send(c, b->pos, b->last - b->pos);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_simplekv_probe_done(p, NGX_ERROR);
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_simplekv_probe_done(p, NGX_ERROR);
            return;
        }

        b->pos += n;
    }

    /* sent: now the answer */
    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->handler = ngx_http_empty_handler;
    ngx_add_timer(c->read, NGX_HTTP_SIMPLEKV_PROBE_TIMEOUT_MS);

    if (c->read->ready) {
        ngx_http_simplekv_probe_read(c->read);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_simplekv_probe_done(p, NGX_ERROR);
    }
}


static void
ngx_http_simplekv_probe_read(ngx_event_t *rev)
{
    ssize_t                     n;
    ngx_int_t                   rc;
    ngx_buf_t                  *b;
    ngx_connection_t           *c;
    ngx_http_simplekv_probe_t  *p;

    c = rev->data;
    p = c->data;
    b = p->in;

    if (rev->timedout) {
        ngx_http_simplekv_probe_done(p, NGX_HTTP_GATEWAY_TIME_OUT);
        return;
    }

    for ( ;; ) {
        if (b->last == b->end) {
            ngx_http_simplekv_probe_done(p, NGX_ERROR);
            return;
        }

        n = c->recv(c, b->last, b->end - b->last);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_simplekv_probe_done(p, NGX_ERROR);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_simplekv_probe_done(p, NGX_ERROR);
            return;
        }

        b->last += n;

        rc = ngx_http_parse_status_line(p->scratch, b, &p->status);

        if (rc == NGX_AGAIN) {
            continue;
        }

        ngx_http_simplekv_probe_done(p, rc == NGX_OK ? NGX_OK : NGX_ERROR);
        return;
    }
}


/*
 * The probe's result: NGX_OK (a status line: the node answers),
 * NGX_HTTP_GATEWAY_TIME_OUT (no answer in time), else nothing learnt.
 */
static void
ngx_http_simplekv_probe_done(ngx_http_simplekv_probe_t *p, ngx_int_t result)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "simplekv probe of node \"%V\": %i",
                   &p->node->name, result);

    if (result == NGX_OK) {
        ngx_http_simplekv_breaker_probed(p->node, 1);

    } else if (result == NGX_HTTP_GATEWAY_TIME_OUT) {
        ngx_http_simplekv_breaker_probed(p->node, 0);
    }

    if (p->peer.connection) {
        ngx_close_connection(p->peer.connection);
        p->peer.connection = NULL;
    }

    if (p->pool) {
        ngx_destroy_pool(p->pool);
        p->pool = NULL;
    }

    p->running = 0;
}
