/*
 * ngx_http_simplekv_fanout.c - rounds of replica subrequests.
 *
 * A round asks some or all of a key's replicas at once (replica.c starts
 * each request: an in-memory, background subrequest, so nginx's upstream
 * machinery and keepalive pools carry it and the client can be answered
 * while stragglers are still running).
 *
 * The post_subrequest handler only records the replica's outcome and
 * wakes the parent (a posted request before the answer, a posted event
 * after it); every decision, retry and repair is made by the parent's
 * wake-up function (ctx->decide, ctx->late: handler.c), never inside a
 * subrequest's finalization.
 *
 * A per-request deadline (simplekv_replica_timeout, re-armed per round)
 * bounds how long any replica subrequest may hold the client connection:
 * when it fires, stragglers are ended as if their upstream timed out.  A
 * round that moves a large value (ctx->bulk: a PUT or repair over
 * simplekv_stream_threshold, spool.c's GET) cannot be done in a fixed
 * time: its deadline is re-armed as long as some replica request sent or
 * received bytes since the last time it fired, so it ends a replica that
 * stalls, not one that is busy.
 */

#include "ngx_http_simplekv_module.h"


static ngx_uint_t ngx_http_simplekv_round_plan(ngx_http_simplekv_ctx_t *ctx,
    u_char *ask, u_char *probe);
static ngx_uint_t ngx_http_simplekv_round_op(ngx_http_simplekv_ctx_t *ctx);
static ngx_uint_t ngx_http_simplekv_flowing(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_post_parent(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_post_late(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_wake(ngx_http_request_t *r);
static void ngx_http_simplekv_late_handler(ngx_event_t *ev);
static void ngx_http_simplekv_deadline_handler(ngx_event_t *ev);
static void ngx_http_simplekv_hedge_handler(ngx_event_t *ev);
static void ngx_http_simplekv_abort(ngx_http_simplekv_replica_t *rep);


/*
 * Start a round of the given phase: a subrequest to every replica the
 * plan asks.  On NGX_ERROR some may have started; the caller fails the
 * request (which marks it answered, so their outcomes are ignored).
 */
ngx_int_t
ngx_http_simplekv_start_round(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_phase_e phase)
{
    u_char                        ask[NGX_HTTP_SIMPLEKV_ASKED_MAX],
                                  probe[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    ngx_uint_t                    i, op, asked;
    ngx_http_request_t           *r;
    ngx_http_simplekv_replica_t  *rep;

    r = ctx->request;

    ctx->phase = phase;
    ctx->round++;
    ctx->expired = 0;
    ngx_memzero(ctx->slot, sizeof(ctx->slot));
    ngx_memzero(ctx->held, sizeof(ctx->held));

    if (ctx->hedge.timer_set) {
        ngx_del_timer(&ctx->hedge);
    }

    ctx->bulk = (phase == NGX_HTTP_SIMPLEKV_PHASE_WRITE
                 && ctx->body_len > (off_t) ctx->lcf->stream_threshold)
                || (phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR
                    && ctx->newest->large);

    op = ngx_http_simplekv_round_op(ctx);
    asked = ngx_http_simplekv_round_plan(ctx, ask, probe);

    for (i = 0; i < ctx->nreplicas; i++) {
        if (!ask[i]) {
            continue;
        }

        rep = ngx_http_simplekv_replica_start(ctx, i, op,
                                  phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR,
                                  ctx->round, ngx_http_simplekv_replica_done);
        if (rep == NULL) {
            return NGX_ERROR;
        }

        rep->probe = probe[i];
        ctx->slot[i] = rep;
    }

    ngx_http_simplekv_arm_deadline(ctx);

    if (ctx->held_back && ctx->lcf->read_hedge
        && ctx->lcf->read_hedge < ctx->lcf->replica_timeout)
    {
        ctx->hedge.handler = ngx_http_simplekv_hedge_handler;
        ctx->hedge.data = ctx;
        ctx->hedge.log = r->connection->log;

        ngx_add_timer(&ctx->hedge, ctx->lcf->read_hedge);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv round %ui phase %d: %ui replicas asked",
                   ctx->round, (int) phase, asked);

    return NGX_OK;
}


/* The deadline of the round just started (spool.c's too). */
void
ngx_http_simplekv_arm_deadline(ngx_http_simplekv_ctx_t *ctx)
{
    ctx->deadline.handler = ngx_http_simplekv_deadline_handler;
    ctx->deadline.data = ctx;
    ctx->deadline.log = ctx->request->connection->log;

    ngx_add_timer(&ctx->deadline, ctx->lcf->replica_timeout);
}


static ngx_uint_t
ngx_http_simplekv_round_op(ngx_http_simplekv_ctx_t *ctx)
{
    switch (ctx->phase) {

    case NGX_HTTP_SIMPLEKV_PHASE_READ:
        return NGX_HTTP_SIMPLEKV_OP_GET;

    case NGX_HTTP_SIMPLEKV_PHASE_LIST:
        return NGX_HTTP_SIMPLEKV_OP_LIST;

    case NGX_HTTP_SIMPLEKV_PHASE_QUERY:
        return NGX_HTTP_SIMPLEKV_OP_HEAD;

    case NGX_HTTP_SIMPLEKV_PHASE_REPAIR:
        return (ctx->newest->reply.kind == SKV_REPLY_TOMBSTONE)
               ? NGX_HTTP_SIMPLEKV_OP_DELETE : NGX_HTTP_SIMPLEKV_OP_PUT;

    default:
        return ctx->op;
    }
}


/*
 * Whom this round asks.  A repair goes only to replicas not known to hold
 * the value.  Writes go to every replica (a node that was suspect misses
 * nothing once back).  Reads and listings leave out suspect nodes while
 * the others can still make the quorum, and with simplekv_read_fanout
 * quorum a read asks only the first max(R, W) replicas in preference
 * order: enough to answer at once when they agree.  The others are asked
 * if those fail or time out (handler.c), and written to if they disagree.
 */
static ngx_uint_t
ngx_http_simplekv_round_plan(ngx_http_simplekv_ctx_t *ctx, u_char *ask,
    u_char *probe)
{
    ngx_uint_t                 i, needed, candidates, check, asked, reads;
    ngx_http_simplekv_node_t  *nodes;

    nodes = ctx->mcf->nodes.elts;
    reads = (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_READ
             || ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_LIST
             || ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_QUERY);

    needed = (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_READ)
             ? ctx->lcf->read_quorum
             : skv_list_needed(ctx->nreplicas, ctx->lcf->write_quorum);

    candidates = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        ask[i] = !(ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR
                   && ctx->holds[i]);
        probe[i] = 0;
        candidates += ask[i];
    }

    ctx->skipped = 0;
    ctx->suspect_skipped = 0;
    ctx->held_back = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        if (!ask[i]) {
            continue;
        }

        if (!reads) {
            probe[i] = ngx_http_simplekv_breaker_suspect(
                                                &nodes[ctx->order[i]]);
            continue;
        }

        if (candidates <= needed || ctx->no_skip) {
            continue;
        }

        /* a suspect node is probed by the router itself (probe.c),
         * never with a client's read: without take_probe the answer is
         * ASK or SKIP */
        check = ngx_http_simplekv_breaker_check(&nodes[ctx->order[i]], 0);

        if (check == NGX_HTTP_SIMPLEKV_SKIP) {
            ask[i] = 0;
            ctx->skipped = 1;
            ctx->suspect_skipped = 1;
            candidates--;
            ngx_http_simplekv_stats_skipped(&nodes[ctx->order[i]]);
        }
    }

    if (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_READ && !ctx->no_skip
        && ctx->lcf->read_fanout == NGX_HTTP_SIMPLEKV_FANOUT_QUORUM)
    {
        needed = ngx_max(ctx->lcf->read_quorum, ctx->lcf->write_quorum);

        for (i = 0; i < ctx->nreplicas; i++) {
            if (!ask[i]) {
                continue;
            }

            if (needed) {
                needed--;
                continue;
            }

            ask[i] = 0;
            ctx->held[i] = 1;
            ctx->skipped = 1;
            ctx->held_back = 1;
        }
    }

    asked = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        asked += ask[i];
    }

    return asked;
}


/* Write the newest version back to a replica that answered a read late
 * (after the client was answered) with an older one. */
ngx_int_t
ngx_http_simplekv_late_write_back(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep)
{
    ngx_uint_t  op;

    op = (ctx->newest->reply.kind == SKV_REPLY_TOMBSTONE)
         ? NGX_HTTP_SIMPLEKV_OP_DELETE : NGX_HTTP_SIMPLEKV_OP_PUT;

    if (ngx_http_simplekv_replica_start(ctx, rep->slot, op, 1, 0,
                                        ngx_http_simplekv_replica_done)
        == NULL)
    {
        return NGX_ERROR;
    }

    if (!ctx->deadline.timer_set) {
        ngx_add_timer(&ctx->deadline, ctx->lcf->replica_timeout);
    }

    ngx_http_simplekv_detach_arm(ctx);

    return NGX_OK;
}


/*
 * post_subrequest handler: record the outcome, wake the parent.  nginx may
 * call it more than once for one subrequest (the upstream's finalization,
 * then the special response): only the first call counts.  It returns
 * NGX_OK so that an upstream error ends this subrequest quietly instead of
 * producing an error page or terminating the client's request.
 */
ngx_int_t
ngx_http_simplekv_replica_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_simplekv_replica_t *rep = data;

    ngx_http_simplekv_ctx_t   *ctx;
    ngx_http_simplekv_node_t  *node;

    if (rep->done) {
        return NGX_OK;
    }

    rep->done = 1;
    ctx = rep->ctx;
    ctx->running--;

    ngx_http_simplekv_outcome(rep, sr, rc);

    node = ngx_http_simplekv_replica_node(rep);
    ngx_http_simplekv_stats_replica(node, &rep->reply,
                                    ngx_current_msec - rep->start);
    ngx_http_simplekv_breaker_record(node, &rep->reply);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "simplekv replica %ui round %ui: rc %i outcome %d",
                   rep->node, rep->round, rc, (int) rep->reply.kind);

    if (ctx->running == 0 && ctx->answered && ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (rep->round != ctx->round) {
        return NGX_OK;
    }

    if (ctx->answered) {
        if (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_READ) {
            ngx_http_simplekv_post_late(ctx);
        }

        return NGX_OK;
    }

    ngx_http_simplekv_post_parent(ctx);

    return NGX_OK;
}


/* Let the parent decide, from its own event context, once per event. */
static void
ngx_http_simplekv_post_parent(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    /* stream.c's subrequest owns the parent's wake-up until it ends */
    if (ctx->posted || ctx->answered || ctx->streaming) {
        return;
    }

    r = ctx->request;

    ctx->posted = 1;
    r->write_event_handler = ngx_http_simplekv_wake;

    if (ngx_http_post_request(r, NULL) != NGX_OK) {
        ctx->posted = 0;
    }
}


static void
ngx_http_simplekv_wake(ngx_http_request_t *r)
{
    ngx_http_simplekv_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_simplekv_module);

    /* once answered, the write handler belongs to nginx's writer */
    if (ctx == NULL || ctx->answered) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;
    ctx->posted = 0;

    /* the decision may answer and free the request: ctx is not touched
     * after it */
    ctx->decide(ctx);
}


/*
 * After the answer the parent's write handler is nginx's: a late read
 * answer wakes the parent through a posted event instead, holding a
 * reference to the request until the event has run.
 */
static void
ngx_http_simplekv_post_late(ngx_http_simplekv_ctx_t *ctx)
{
    if (ctx->late_posted || ctx->late == NULL) {
        return;
    }

    ctx->late_posted = 1;
    ctx->request->main->count++;

    ctx->late_event.handler = ngx_http_simplekv_late_handler;
    ctx->late_event.data = ctx;
    ctx->late_event.log = ctx->request->connection->log;

    ngx_post_event(&ctx->late_event, &ngx_posted_events);
}


static void
ngx_http_simplekv_late_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_simplekv_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ctx->late_posted = 0;
    ctx->late(ctx);

    ngx_http_simplekv_release(r);
    ngx_http_run_posted_requests(c);
}


/*
 * Called when the client is answered.  Stragglers keep the client's
 * connection (and its next request) waiting: those whose request is sent
 * are detached after simplekv_straggler_grace (detach.c); when all that
 * still runs are requests to suspect nodes, which most likely will not
 * answer, the others get only a short grace instead of the rest of
 * simplekv_replica_timeout.
 */
void
ngx_http_simplekv_answering(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                     i;
    ngx_http_simplekv_replica_t  **all;

    ctx->answered = 1;

    if (ctx->hedge.timer_set) {
        ngx_del_timer(&ctx->hedge);
    }

    ngx_http_simplekv_detach_arm(ctx);

    if (ctx->running == 0 || !ctx->deadline.timer_set) {
        return;
    }

    all = ctx->all.elts;

    for (i = 0; i < ctx->all.nelts; i++) {
        if (!all[i]->done && !all[i]->probe) {
            return;
        }
    }

    if (ctx->deadline.timer.key
        > ngx_current_msec + NGX_HTTP_SIMPLEKV_PROBE_GRACE_MS)
    {
        ngx_add_timer(&ctx->deadline, NGX_HTTP_SIMPLEKV_PROBE_GRACE_MS);
    }
}


/*
 * simplekv_read_hedge: the first max(R, W) replicas of a quorum read have
 * not settled it in time (one may have frozen before the breaker knew, or
 * be slow): ask the replicas held back now, in the same round, instead of
 * waiting for the round's deadline.  Costs one more replica request for
 * such reads only.
 */
static void
ngx_http_simplekv_hedge_handler(ngx_event_t *ev)
{
    ngx_uint_t                    i;
    ngx_http_request_t           *r;
    ngx_http_simplekv_ctx_t      *ctx;
    ngx_http_simplekv_replica_t  *rep;

    ctx = ev->data;
    r = ctx->request;

    if (ctx->answered || ctx->phase != NGX_HTTP_SIMPLEKV_PHASE_READ
        || !ctx->held_back)
    {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv read hedge, round %ui", ctx->round);

    ctx->held_back = 0;
    ctx->skipped = ctx->suspect_skipped;

    for (i = 0; i < ctx->nreplicas; i++) {
        if (!ctx->held[i] || ctx->slot[i] != NULL) {
            continue;
        }

        ctx->held[i] = 0;

        rep = ngx_http_simplekv_replica_start(ctx, i,
                                              NGX_HTTP_SIMPLEKV_OP_GET, 0,
                                              ctx->round,
                                              ngx_http_simplekv_replica_done);
        if (rep == NULL) {
            /* the round's deadline still ends the read */
            break;
        }

        ctx->slot[i] = rep;
    }

    ngx_http_simplekv_stats_read_hedge(ctx->mcf);

    /* the new subrequests are posted requests of the client's connection */
    ngx_http_run_posted_requests(r->connection);
}


/*
 * The round's deadline: undecided requests are decided with what has
 * arrived, and every replica subrequest still running is ended the way
 * its upstream would end it on a read timeout (after the answer, one
 * whose request is sent is detached instead: detach.c), so a straggler
 * never holds the client connection longer than simplekv_replica_timeout.
 */
static void
ngx_http_simplekv_deadline_handler(ngx_event_t *ev)
{
    ngx_uint_t                     i, n;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_simplekv_ctx_t       *ctx;
    ngx_http_simplekv_replica_t  **all;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "simplekv deadline, %ui subrequests running",
                   ctx->running);

    if (ctx->bulk && ngx_http_simplekv_flowing(ctx)) {
        ngx_add_timer(&ctx->deadline, ctx->lcf->replica_timeout);
        return;
    }

    if (!ctx->answered) {
        ctx->expired = 1;
        ngx_http_simplekv_post_parent(ctx);
    }

    /*
     * Ending a subrequest runs posted requests, which may start a new round
     * (and grow ctx->all): only the subrequests that existed when the
     * deadline fired are ended, and the array is re-read each time.
     */
    n = ctx->all.nelts;

    /* ending the last straggler must not free the request under us */
    r->main->count++;

    for (i = 0; i < n; i++) {
        all = ctx->all.elts;

        if (all[i]->done || all[i]->aborted) {
            continue;
        }

        if (!ctx->answered || ngx_http_simplekv_detach(all[i]) != NGX_OK) {
            ngx_http_simplekv_abort(all[i]);
        }
    }

    ngx_http_simplekv_release(r);
    ngx_http_run_posted_requests(c);
}


/*
 * A bulk round's replica requests: did any of them send or receive bytes
 * since the deadline last fired?  (A connection's sent count also holds
 * what earlier requests on it sent: only its change matters.)
 */
static ngx_uint_t
ngx_http_simplekv_flowing(ngx_http_simplekv_ctx_t *ctx)
{
    off_t                          moved;
    ngx_uint_t                     i, flowing;
    ngx_http_upstream_t           *u;
    ngx_http_simplekv_replica_t  **all;

    all = ctx->all.elts;
    flowing = 0;

    for (i = 0; i < ctx->all.nelts; i++) {
        if (all[i]->done || all[i]->aborted) {
            continue;
        }

        u = all[i]->request->upstream;
        moved = all[i]->received;

        if (u && u->peer.connection) {
            moved += u->peer.connection->sent;
        }

        if (moved != all[i]->progress) {
            all[i]->progress = moved;
            flowing = 1;
        }
    }

    return flowing;
}


/* Drop a reference taken with r->main->count++; the last one ends the
 * request as a finishing straggler would. */
void
ngx_http_simplekv_release(ngx_http_request_t *r)
{
    if (r->main->count > 1) {
        r->main->count--;

    } else {
        ngx_http_finalize_request(r, NGX_DONE);
    }
}


static void
ngx_http_simplekv_abort(ngx_http_simplekv_replica_t *rep)
{
    ngx_connection_t     *pc;
    ngx_http_upstream_t  *u;

    u = rep->request->upstream;

    if (u == NULL || u->peer.connection == NULL) {
        return;
    }

    pc = u->peer.connection;
    rep->aborted = 1;

    /* the upstream's own handlers treat this exactly as a read timeout */
    pc->read->timedout = 1;
    pc->read->handler(pc->read);
}


/* Pool cleanup: no timer or posted event may outlive the request. */
void
ngx_http_simplekv_cleanup(void *data)
{
    ngx_http_simplekv_ctx_t  *ctx = data;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->hedge.timer_set) {
        ngx_del_timer(&ctx->hedge);
    }

    if (ctx->detach.timer_set) {
        ngx_del_timer(&ctx->detach);
    }

    if (ctx->late_event.posted) {
        ngx_delete_posted_event(&ctx->late_event);
    }
}
