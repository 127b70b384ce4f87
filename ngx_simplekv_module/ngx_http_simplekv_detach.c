/*
 * ngx_http_simplekv_detach.c - stragglers let go of the client's
 * connection.
 *
 * Replica requests are background subrequests of the client's request:
 * each one still running holds a reference (r->main->count), and nginx
 * reads the client's next keep-alive request only when the last one has
 * ended.  After the answer, a node that is slow but within
 * simplekv_replica_timeout would so hold every keep-alive client of the
 * router for its round trip, although the quorum was made without it.
 *
 * So simplekv_straggler_grace (10 ms by default) after the answer, every
 * straggler whose request has been sent completely (u->request_sent and
 * u->request_body_sent: the node has the whole write, and applies it
 * whether or not anybody reads its answer) is detached:
 *
 *  - its connection to the node goes to an orphan reader owned by the
 *    worker (its handlers, log and pool log re-pointed, the client's log
 *    dies with the client's request), which waits up to
 *    simplekv_replica_timeout for the node's status line, records it in
 *    the node's statistics and circuit breaker as a straggler's outcome
 *    would have been recorded (a timeout makes the node suspect), and
 *    closes the connection;
 *  - the upstream forgets that connection and frees its peer with the
 *    balancer (not for the keepalive cache: the answer was not read), then
 *    ends through its own cleanup (ngx_http_upstream_cleanup: NGX_DONE),
 *    which drops the subrequest's reference to the client's request
 *    without calling the post_subrequest handler; the replica is marked
 *    done here instead, its outcome unknown to the request.
 *
 * A straggler whose answer has begun to arrive is closed instead: the
 * node has applied the request.  A worker keeps at most a quarter of its
 * worker_connections as orphans (a frozen node under heavy writes would
 * otherwise take one connection per write for the replica timeout): past
 * that, stragglers are not detached and hold their client as before.  So
 * that a frozen node does not get there, a node that leaves
 * NGX_HTTP_SIMPLEKV_ORPHANS_SUSPECT of one worker's detached requests
 * unanswered is made suspect at once (reads stop asking it) instead of at
 * its first timeout; any answer from it clears that, as for a timeout.
 * One whose request is still being sent is never detached (the write
 * must reach the node); it is looked at again every
 * NGX_HTTP_SIMPLEKV_DETACH_POLL_MS, and the round's deadline
 * still bounds it.  A detached read loses its late read repair.
 */

#include "ngx_http_simplekv_module.h"


#define NGX_HTTP_SIMPLEKV_DETACH_POLL_MS  10
/* "HTTP/1.1 200": enough of the status line for the status */
#define NGX_HTTP_SIMPLEKV_ORPHAN_HEAD     12


typedef struct {
    ngx_http_simplekv_node_t      *node;
    ngx_msec_t                     start;
    size_t                         head_len;
    u_char                         head[NGX_HTTP_SIMPLEKV_ORPHAN_HEAD];
} ngx_http_simplekv_orphan_t;


/* this worker's orphan readers */
static ngx_uint_t  ngx_http_simplekv_orphans;


static void ngx_http_simplekv_detach_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_simplekv_orphan_adopt(
    ngx_http_simplekv_replica_t *rep, ngx_connection_t *pc);
static void ngx_http_simplekv_orphan_read(ngx_event_t *rev);
static void ngx_http_simplekv_orphan_write(ngx_event_t *wev);
static void ngx_http_simplekv_orphan_close(ngx_connection_t *c,
    skv_reply_kind_t kind, ngx_uint_t status);


/*
 * The client is answered (fanout.c) or a late repair started: let the
 * stragglers go after the grace.
 */
void
ngx_http_simplekv_detach_arm(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_event_t  *ev;

    ev = &ctx->detach;

    if (!ctx->answered || ctx->running == 0 || ev->timer_set) {
        return;
    }

    ev->handler = ngx_http_simplekv_detach_handler;
    ev->data = ctx;
    ev->log = ctx->request->connection->log;

    ngx_add_timer(ev, ctx->lcf->straggler_grace);
}


static void
ngx_http_simplekv_detach_handler(ngx_event_t *ev)
{
    ngx_uint_t                     i, n, waiting;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_simplekv_ctx_t       *ctx;
    ngx_http_simplekv_replica_t  **all;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    /* detaching the last straggler must not free the request under us */
    r->main->count++;

    n = ctx->all.nelts;
    waiting = 0;

    for (i = 0; i < n; i++) {
        all = ctx->all.elts;

        if (all[i]->done || all[i]->aborted) {
            continue;
        }

        if (ngx_http_simplekv_detach(all[i]) != NGX_OK) {
            waiting++;
        }
    }

    if (ctx->running == 0 && ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (waiting) {
        /* still sending: look again, under the round's deadline */
        ngx_add_timer(ev, NGX_HTTP_SIMPLEKV_DETACH_POLL_MS);
    }

    ngx_http_simplekv_release(r);
    ngx_http_run_posted_requests(c);
}


/*
 * Detach one straggler (after the answer; the caller holds a reference to
 * the request); NGX_DECLINED while its request is being sent.
 */
ngx_int_t
ngx_http_simplekv_detach(ngx_http_simplekv_replica_t *rep)
{
    ngx_connection_t         *pc;
    ngx_http_request_t       *sr;
    ngx_http_upstream_t      *u;
    ngx_http_simplekv_ctx_t  *ctx;

    sr = rep->request;
    u = sr->upstream;

    if (u == NULL || u->cleanup == NULL || u->peer.connection == NULL
        || !u->request_sent || !u->request_body_sent)
    {
        return NGX_DECLINED;
    }

    pc = u->peer.connection;

#if (NGX_HTTP_SSL)
    if (pc->ssl) {
        return NGX_DECLINED;
    }
#endif

    if (pc->read->eof || pc->read->error || pc->read->timedout
        || pc->write->error || pc->write->timedout)
    {
        /* the upstream's own handlers are about to end it */
        return NGX_DECLINED;
    }

    if (rep->status.code == 0
        && (u->buffer.start == NULL || u->buffer.last == u->buffer.start))
    {
        /* no byte of the answer yet: the orphan reader waits for it */
        if (ngx_http_simplekv_orphan_adopt(rep, pc) != NGX_OK) {
            return NGX_DECLINED;
        }

        u->peer.connection = NULL;
    }

    /* else the node is answering: it has applied the request, and the
     * upstream's cleanup below closes the connection */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "simplekv replica %ui detached%s", rep->node,
                   u->peer.connection ? " (answering: closed)" : "");

    /* the balancer's accounting, never the keepalive cache */
    u->keepalive = 0;

    if (u->peer.free && u->peer.sockaddr) {
        u->peer.free(&u->peer, u->peer.data, 0);
        u->peer.sockaddr = NULL;
    }

    ctx = rep->ctx;
    rep->done = 1;
    rep->late_seen = 1;
    ctx->running--;

    /* ngx_http_upstream_cleanup(): finalizes the upstream with NGX_DONE,
     * which ends the subrequest and drops its reference to the client's
     * request; the post_subrequest handler is not called */
    (*u->cleanup)(sr);

    return NGX_OK;
}


/* The node's connection becomes the worker's, until the node answers. */
static ngx_int_t
ngx_http_simplekv_orphan_adopt(ngx_http_simplekv_replica_t *rep,
    ngx_connection_t *pc)
{
    ngx_http_simplekv_orphan_t  *o;

    if (pc->pool == NULL
        || ngx_http_simplekv_orphans >= ngx_cycle->connection_n / 4)
    {
        return NGX_DECLINED;
    }

    o = ngx_pcalloc(pc->pool, sizeof(ngx_http_simplekv_orphan_t));
    if (o == NULL) {
        return NGX_ERROR;
    }

    o->node = ngx_http_simplekv_replica_node(rep);
    o->start = rep->start;
    ngx_http_simplekv_orphans++;

    /*
     * A node that leaves this many requests unanswered is most likely
     * frozen: suspect it now rather than at the first timeout, so that
     * reads stop asking it before the orphan cap is reached and
     * stragglers hold their clients again.  Its first answer clears it.
     */
    if (++o->node->orphans >= NGX_HTTP_SIMPLEKV_ORPHANS_SUSPECT
        && !ngx_http_simplekv_breaker_suspect(o->node))
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "simplekv: node \"%V\" leaves %ui detached requests "
                      "unanswered: suspect", &o->node->name,
                      o->node->orphans);
        ngx_http_simplekv_breaker_probed(o->node, 0);
    }

    pc->data = o;
    pc->log = ngx_cycle->log;
    pc->pool->log = pc->log;
    pc->read->log = pc->log;
    pc->write->log = pc->log;

    pc->read->handler = ngx_http_simplekv_orphan_read;
    pc->write->handler = ngx_http_simplekv_orphan_write;

    if (pc->write->timer_set) {
        ngx_del_timer(pc->write);
    }

    ngx_add_timer(pc->read, rep->ctx->lcf->replica_timeout);

    if (pc->read->ready) {
        ngx_post_event(pc->read, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_http_simplekv_orphan_read(ngx_event_t *rev)
{
    u_char                       buf[4096];
    size_t                       take;
    ssize_t                      n;
    ngx_uint_t                   status;
    ngx_connection_t            *c;
    ngx_http_simplekv_orphan_t  *o;

    c = rev->data;
    o = c->data;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "simplekv: a detached replica request got no answer "
                      "within simplekv_replica_timeout");
        ngx_http_simplekv_orphan_close(c, SKV_REPLY_TIMEDOUT, 0);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_simplekv_orphan_close(c, SKV_REPLY_FAILED, 0);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_simplekv_orphan_close(c, SKV_REPLY_FAILED, 0);
            return;
        }

        take = ngx_min((size_t) n, sizeof(o->head) - o->head_len);
        ngx_memcpy(o->head + o->head_len, buf, take);
        o->head_len += take;

        if (o->head_len < sizeof(o->head)) {
            continue;
        }

        /* "HTTP/1.x NNN": the node has answered; the rest is not needed */
        status = 0;

        if (ngx_strncmp(o->head, "HTTP/1.", 7) == 0 && o->head[8] == ' ') {
            status = ngx_atoi(o->head + 9, 3);
            status = (status == (ngx_uint_t) NGX_ERROR) ? 0 : status;
        }

        if (status >= 500 || status == 0) {
            ngx_http_simplekv_orphan_close(c, SKV_REPLY_FAILED, status);

        } else if (status == NGX_HTTP_CONFLICT) {
            ngx_http_simplekv_orphan_close(c, SKV_REPLY_CONFLICT, status);

        } else if (status >= 400 && status != NGX_HTTP_NOT_FOUND) {
            ngx_http_simplekv_orphan_close(c, SKV_REPLY_REFUSED, status);

        } else {
            ngx_http_simplekv_orphan_close(c, SKV_REPLY_ACK, status);
        }

        return;
    }
}


static void
ngx_http_simplekv_orphan_write(ngx_event_t *wev)
{
    /* the request is sent: nothing more to write */
}


/* Record what the node did, as replica_done() would have, and close. */
static void
ngx_http_simplekv_orphan_close(ngx_connection_t *c, skv_reply_kind_t kind,
    ngx_uint_t status)
{
    ngx_pool_t                  *pool;
    skv_reply_t                  reply;
    ngx_http_simplekv_orphan_t  *o;

    o = c->data;

    ngx_memzero(&reply, sizeof(skv_reply_t));
    reply.kind = kind;
    reply.status = status;

    ngx_http_simplekv_stats_replica(o->node, &reply,
                                    ngx_current_msec - o->start);
    ngx_http_simplekv_breaker_record(o->node, &reply);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "simplekv detached replica closed: kind %d status %ui",
                   (int) kind, status);

    ngx_http_simplekv_orphans--;
    o->node->orphans--;
    pool = c->pool;

    ngx_close_connection(c);
    ngx_destroy_pool(pool);
}
