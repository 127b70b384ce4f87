/*
 * ngx_http_simplekv_replica.c - the fan-out of one client request to its
 * replicas and the quorum decisions (ABD-style):
 *
 *   write  PUT/DELETE with a fresh version to all N; answer once W
 *          acknowledge; if too few can acknowledge because replicas hold a
 *          newer version (409), retry with a version newer than that
 *          (bounded); otherwise 503 or 504.
 *   read   GET from all N; once R have answered take the newest version;
 *          if fewer than W replicas are known to hold it, write it back
 *          (read repair) until W do, and only then answer.
 *
 * Each replica request is an in-memory, background subrequest to the
 * internal location of conf/simplekv_proxy.conf, so nginx's upstream
 * machinery (keepalive pools) carries it and the client can be answered
 * while stragglers are still running.  The post_subrequest handler only
 * records the outcome and posts the parent; all decisions run in the
 * parent's write_event_handler, never inside a subrequest's finalization.
 *
 * A per-request deadline (simplekv_replica_timeout, re-armed per round)
 * bounds how long any replica subrequest may hold the client connection:
 * when it fires, stragglers are ended as if their upstream timed out.
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_subrequest(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t slot, ngx_uint_t op, ngx_uint_t repair, ngx_uint_t late);
static void ngx_http_simplekv_late_repair(ngx_http_simplekv_replica_t *rep);
static ngx_int_t ngx_http_simplekv_replica_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_simplekv_classify(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_int_t rc);
static ngx_table_elt_t *ngx_http_simplekv_find_header(ngx_list_t *headers,
    const char *name, size_t len);
static void ngx_http_simplekv_post_parent(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_wake(ngx_http_request_t *r);
static void ngx_http_simplekv_decide_write(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_read(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_repair(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_deadline_handler(ngx_event_t *ev);
static void ngx_http_simplekv_abort(ngx_http_simplekv_replica_t *rep);


static ngx_int_t ngx_http_simplekv_replica_header_filter(
    ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_simplekv_next_header_filter;

static ngx_str_t  ngx_http_simplekv_proxy_uri =
    ngx_string(NGX_HTTP_SIMPLEKV_PROXY_URI);
static ngx_str_t  ngx_http_simplekv_get = ngx_string("GET");
static ngx_str_t  ngx_http_simplekv_put = ngx_string("PUT");
static ngx_str_t  ngx_http_simplekv_delete = ngx_string("DELETE");


ngx_int_t
ngx_http_simplekv_init_replica_filter(void)
{
    ngx_http_simplekv_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_simplekv_replica_header_filter;

    return NGX_OK;
}


/*
 * storaged's 204 (a tombstone stored) carries no Content-Length, as HTTP
 * requires.  Without a length nginx sizes an in-memory subrequest answer at
 * subrequest_output_buffer_size (16m in the snippet): 48m for every client
 * DELETE.  The answer has no body, so say so.
 */
static ngx_int_t
ngx_http_simplekv_replica_header_filter(ngx_http_request_t *r)
{
    if (r != r->main
        && r->headers_out.status == NGX_HTTP_NO_CONTENT
        && r->headers_out.content_length_n == -1
        && ngx_http_simplekv_replica_ctx(r) != NULL)
    {
        r->headers_out.content_length_n = 0;
    }

    return ngx_http_simplekv_next_header_filter(r);
}


ngx_http_simplekv_replica_t *
ngx_http_simplekv_replica_ctx(ngx_http_request_t *r)
{
    if (r == r->main) {
        return NULL;
    }

    return ngx_http_get_module_ctx(r, ngx_http_simplekv_module);
}


ngx_int_t
ngx_http_simplekv_start_write(ngx_http_simplekv_ctx_t *ctx)
{
    ctx->version = ngx_http_simplekv_next_version();
    ctx->write_tries++;

    return ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_WRITE);
}


ngx_int_t
ngx_http_simplekv_start_read(ngx_http_simplekv_ctx_t *ctx)
{
    ctx->read_tries++;
    ctx->newest = NULL;
    ctx->holders = 0;
    ngx_memzero(ctx->holds, sizeof(ctx->holds));

    return ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_READ);
}


ngx_int_t
ngx_http_simplekv_start_round(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_phase_e phase)
{
    u_char               ask[SKV_PLACE_MAX], skip[SKV_PLACE_MAX],
                         probe[SKV_PLACE_MAX];
    ngx_uint_t           i, op, needed, candidates, suspect;
    ngx_http_request_t  *r;

    r = ctx->request;

    ctx->phase = phase;
    ctx->round++;
    ctx->asked = 0;
    ctx->pending = 0;
    ctx->expired = 0;
    ngx_memzero(ctx->slot, sizeof(ctx->slot));

    if (phase == NGX_HTTP_SIMPLEKV_PHASE_READ) {
        op = NGX_HTTP_SIMPLEKV_OP_GET;

    } else if (phase == NGX_HTTP_SIMPLEKV_PHASE_LIST) {
        op = NGX_HTTP_SIMPLEKV_OP_LIST;

    } else if (phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR) {
        op = (ctx->newest->outcome == NGX_HTTP_SIMPLEKV_TOMBSTONE)
             ? NGX_HTTP_SIMPLEKV_OP_DELETE : NGX_HTTP_SIMPLEKV_OP_PUT;

    } else {
        op = ctx->op;
    }

    /* how many answers this round needs at least */
    switch (phase) {
    case NGX_HTTP_SIMPLEKV_PHASE_READ:
        needed = ctx->lcf->read_quorum;
        break;
    case NGX_HTTP_SIMPLEKV_PHASE_REPAIR:
        needed = ctx->lcf->write_quorum > ctx->holders
                 ? ctx->lcf->write_quorum - ctx->holders : 0;
        break;
    case NGX_HTTP_SIMPLEKV_PHASE_LIST:
        needed = ctx->nreplicas - ctx->lcf->write_quorum + 1;
        break;
    default:
        needed = ctx->lcf->write_quorum;
        break;
    }

    candidates = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        /* a repair goes only to the replicas not known to hold the value */
        ask[i] = !(phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR && ctx->holds[i]);
        skip[i] = 0;
        probe[i] = 0;

        if (ask[i]) {
            candidates++;
        }
    }

    /* reads leave out suspect nodes while the others can still make the
     * quorum */
    ctx->skipped = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        if (!ask[i]) {
            continue;
        }

        if (phase == NGX_HTTP_SIMPLEKV_PHASE_WRITE
            || phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR)
        {
            /* writes are not skipped: the node misses nothing once back */
            probe[i] = ngx_http_simplekv_node_is_suspect(ctx->mcf,
                                                         ctx->order[i]);
            continue;
        }

        if (candidates <= needed || ctx->no_skip) {
            continue;
        }

        suspect = ngx_http_simplekv_node_suspect(ctx->mcf, ctx->order[i]);

        if (suspect == NGX_HTTP_SIMPLEKV_PROBE) {
            probe[i] = 1;

        } else if (suspect == NGX_HTTP_SIMPLEKV_SKIP) {
            skip[i] = 1;
            ctx->skipped = 1;
            candidates--;
            ngx_http_simplekv_stats_skipped(ctx->mcf, ctx->order[i]);
        }
    }

    /*
     * With simplekv_read_fanout quorum a read asks only the first max(R, W)
     * replicas it would ask, in preference order: enough to answer at once
     * when they agree.  The others are asked too if those fail or time out
     * (ngx_http_simplekv_fail), and written to if they disagree (repair).
     */
    ctx->held_back = 0;

    if (phase == NGX_HTTP_SIMPLEKV_PHASE_READ && !ctx->no_skip
        && ctx->lcf->read_fanout == NGX_HTTP_SIMPLEKV_FANOUT_QUORUM)
    {
        needed = ngx_max(ctx->lcf->read_quorum, ctx->lcf->write_quorum);

        for (i = 0; i < ctx->nreplicas; i++) {
            if (!ask[i] || skip[i]) {
                continue;
            }

            if (needed) {
                needed--;
                continue;
            }

            skip[i] = 1;
            ctx->skipped = 1;
            ctx->held_back = 1;
        }
    }

    for (i = 0; i < ctx->nreplicas; i++) {

        if (!ask[i] || skip[i]) {
            continue;
        }

        if (ngx_http_simplekv_subrequest(ctx, i, op,
                                  phase == NGX_HTTP_SIMPLEKV_PHASE_REPAIR, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->slot[i]->probe = probe[i];
    }

    ctx->deadline.handler = ngx_http_simplekv_deadline_handler;
    ctx->deadline.data = ctx;
    ctx->deadline.log = r->connection->log;

    ngx_add_timer(&ctx->deadline, ctx->lcf->replica_timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "simplekv round %ui phase %d: %ui replicas asked",
                   ctx->round, (int) phase, ctx->asked);

    return NGX_OK;
}


/*
 * Start one replica subrequest for ctx->order[slot].  repair: send the
 * newest value read (ctx->newest) instead of the client's write.  late: a
 * write-back after the answer, outside any round's bookkeeping.
 */
static ngx_int_t
ngx_http_simplekv_subrequest(ngx_http_simplekv_ctx_t *ctx, ngx_uint_t slot,
    ngx_uint_t op, ngx_uint_t repair, ngx_uint_t late)
{
    u_char                        *p;
    ngx_buf_t                     *b;
    ngx_chain_t                   *cl;
    ngx_http_request_t            *r, *sr;
    ngx_http_request_body_t       *rb;
    ngx_http_post_subrequest_t    *ps;
    ngx_http_simplekv_replica_t   *rep, **all;

    r = ctx->request;

    rep = ngx_pcalloc(r->pool, sizeof(ngx_http_simplekv_replica_t));
    if (rep == NULL) {
        return NGX_ERROR;
    }

    rep->ctx = ctx;
    rep->node = ctx->order[slot];
    rep->round = late ? 0 : ctx->round;
    rep->op = op;
    rep->start = ngx_current_msec;

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    if (op != NGX_HTTP_SIMPLEKV_OP_GET) {
        p = ngx_pnalloc(r->pool, SKV_VERSION_TEXT_LEN + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (repair) {
            skv_version_format(&ctx->newest->version, (char *) p);

        } else {
            skv_version_format(&ctx->version, (char *) p);
        }

        rep->version_text.data = p;
        rep->version_text.len = SKV_VERSION_TEXT_LEN;
    }

    if (op == NGX_HTTP_SIMPLEKV_OP_PUT) {

        if (repair) {
            /* write back the newest value exactly as it was read */
            rep->content_type = ctx->newest->body_type;

            if (ctx->newest->body.len) {
                b = ngx_calloc_buf(r->pool);
                cl = ngx_alloc_chain_link(r->pool);
                if (b == NULL || cl == NULL) {
                    return NGX_ERROR;
                }

                b->pos = ctx->newest->body.data;
                b->last = b->pos + ctx->newest->body.len;
                b->memory = 1;
                b->last_buf = 1;
                cl->buf = b;
                cl->next = NULL;
                rb->bufs = cl;
            }

        } else {
            rep->content_type = ctx->content_type;
            rb->bufs = ctx->body;
        }
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_simplekv_replica_done;
    ps->data = rep;

    if (ngx_http_subrequest(r, &ngx_http_simplekv_proxy_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rep->request = sr;
    ngx_http_set_ctx(sr, rep, ngx_http_simplekv_module);

    /* the subrequest inherited the client's body and headers: replace
     * what the proxy module derives the request line and body from */
    sr->request_body = rb;
    sr->headers_in.chunked = 0;
    sr->headers_in.transfer_encoding = NULL;

    switch (op) {

    case NGX_HTTP_SIMPLEKV_OP_PUT:
        sr->method = NGX_HTTP_PUT;
        sr->method_name = ngx_http_simplekv_put;
        sr->headers_in.content_length_n = repair
                                          ? (off_t) ctx->newest->body.len
                                          : ctx->body_len;
        break;

    case NGX_HTTP_SIMPLEKV_OP_DELETE:
        sr->method = NGX_HTTP_DELETE;
        sr->method_name = ngx_http_simplekv_delete;
        sr->headers_in.content_length_n = -1;
        break;

    default: /* GET, LIST */
        sr->method = NGX_HTTP_GET;
        sr->method_name = ngx_http_simplekv_get;
        sr->headers_in.content_length_n = -1;
        break;
    }

    /* a client HEAD still needs the replicas' bodies */
    sr->header_only = 0;

    all = ngx_array_push(&ctx->all);
    if (all == NULL) {
        return NGX_ERROR;
    }

    *all = rep;
    ctx->running++;

    if (late) {
        return NGX_OK;
    }

    ctx->slot[slot] = rep;
    ctx->asked++;
    ctx->pending++;

    return NGX_OK;
}


/*
 * post_subrequest handler.  nginx may call it more than once for one
 * subrequest (the upstream's finalization, then the special response):
 * only the first call counts.  It returns NGX_OK so that an upstream error
 * ends this subrequest quietly instead of producing an error page or
 * terminating the client's request.
 */
static ngx_int_t
ngx_http_simplekv_replica_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_simplekv_replica_t *rep = data;

    ngx_http_simplekv_ctx_t  *ctx;

    if (rep->done) {
        return NGX_OK;
    }

    rep->done = 1;
    ctx = rep->ctx;
    ctx->running--;

    ngx_http_simplekv_classify(rep, sr, rc);

    ngx_http_simplekv_stats_replica(ctx->mcf, rep->node, rep->outcome,
                                    ngx_current_msec - rep->start);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "simplekv replica %ui round %ui: rc %i outcome %d",
                   rep->node, rep->round, rc, (int) rep->outcome);

    if (ctx->running == 0 && ctx->answered && ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->answered && rep->round == ctx->round
        && ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_READ)
    {
        ngx_http_simplekv_late_repair(rep);
    }

    if (rep->round != ctx->round || ctx->answered) {
        return NGX_OK;
    }

    ctx->pending--;

    ngx_http_simplekv_post_parent(ctx);

    return NGX_OK;
}


static void
ngx_http_simplekv_classify(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_int_t rc)
{
    ngx_buf_t                 *b;
    ngx_uint_t                 status;
    ngx_table_elt_t           *h;
    ngx_http_simplekv_node_t  *nodes;

    nodes = rep->ctx->mcf->nodes.elts;

    if (rep->aborted || rc == NGX_HTTP_GATEWAY_TIME_OUT) {
        rep->outcome = NGX_HTTP_SIMPLEKV_TIMEDOUT;
        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "simplekv: node \"%V\" timed out for a key of %uz "
                      "bytes", &nodes[rep->node].name, rep->ctx->key_len);
        return;
    }

    status = sr->headers_out.status;
    rep->status = status;

    if (rc != NGX_OK || status == 0) {
        rep->outcome = NGX_HTTP_SIMPLEKV_FAILED;

        /* a write that never reached the node certainly was not applied */
        rep->unsent = (sr->upstream == NULL || !sr->upstream->request_sent);

        ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                      "simplekv: node \"%V\" failed (%i) for a key of %uz "
                      "bytes", &nodes[rep->node].name, rc, rep->ctx->key_len);
        return;
    }

    h = ngx_http_simplekv_find_header(&sr->headers_out.headers,
                                      "X-Simplekv-Version",
                                      sizeof("X-Simplekv-Version") - 1);

    if (h && skv_version_parse((const char *) h->value.data, h->value.len,
                               &rep->version)
             != SKV_OK)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" sent a malformed version",
                      &nodes[rep->node].name);
        rep->outcome = NGX_HTTP_SIMPLEKV_FAILED;
        return;
    }

    ngx_http_simplekv_observe_version(&rep->version);

    if (rep->op == NGX_HTTP_SIMPLEKV_OP_LIST) {
        if (status != NGX_HTTP_OK) {
            rep->outcome = NGX_HTTP_SIMPLEKV_FAILED;
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "simplekv: node \"%V\" answered %ui to a key "
                          "listing", &nodes[rep->node].name, status);
            return;
        }

        if (sr->out && sr->out->buf) {
            b = sr->out->buf;
            rep->body.data = b->pos;
            rep->body.len = b->last - b->pos;
        }

        rep->outcome = NGX_HTTP_SIMPLEKV_LISTED;
        return;
    }

    if (rep->op != NGX_HTTP_SIMPLEKV_OP_GET) {
        if (status == NGX_HTTP_OK || status == NGX_HTTP_CREATED
            || status == NGX_HTTP_NO_CONTENT)
        {
            rep->outcome = NGX_HTTP_SIMPLEKV_ACK;

        } else if (status == NGX_HTTP_CONFLICT && h) {
            rep->outcome = NGX_HTTP_SIMPLEKV_CONFLICT;

        } else {
            rep->outcome = NGX_HTTP_SIMPLEKV_FAILED;
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "simplekv: node \"%V\" answered %ui to a write of "
                          "a key of %uz bytes", &nodes[rep->node].name,
                          status, rep->ctx->key_len);
        }

        return;
    }

    if (status == NGX_HTTP_NOT_FOUND) {
        if (h == NULL) {
            rep->outcome = NGX_HTTP_SIMPLEKV_MISSING;
            return;
        }

        rep->outcome = NGX_HTTP_SIMPLEKV_TOMBSTONE;
        return;
    }

    if (status != NGX_HTTP_OK || h == NULL) {
        rep->outcome = NGX_HTTP_SIMPLEKV_FAILED;
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" answered %ui to a read of a "
                      "key of %uz bytes", &nodes[rep->node].name, status,
                      rep->ctx->key_len);
        return;
    }

    if (sr->out && sr->out->buf) {
        b = sr->out->buf;
        rep->body.data = b->pos;
        rep->body.len = b->last - b->pos;
    }

    /* a connection cut short can end "successfully" with less data */
    if (sr->headers_out.content_length_n >= 0
        && (off_t) rep->body.len != sr->headers_out.content_length_n)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "simplekv: node \"%V\" sent a truncated value for a "
                      "key of %uz bytes", &nodes[rep->node].name,
                      rep->ctx->key_len);
        rep->outcome = NGX_HTTP_SIMPLEKV_FAILED;
        return;
    }

    if (sr->headers_out.content_type.len) {
        rep->body_type = sr->headers_out.content_type;
    }

    rep->outcome = NGX_HTTP_SIMPLEKV_FOUND;
}


/*
 * A replica that answered a read after the client was answered, with an
 * older version than the one returned: write the newest back to it too.
 * The quorum did not need it, but otherwise a replica that is always the
 * slowest (e.g. just restarted, cold cache) would never be repaired by
 * reads.  Bounded by the deadline like every other straggler.
 */
static void
ngx_http_simplekv_late_repair(ngx_http_simplekv_replica_t *rep)
{
    ngx_uint_t                i;
    ngx_http_simplekv_ctx_t  *ctx;

    ctx = rep->ctx;

    if (ctx->newest == NULL || skv_version_is_zero(&ctx->newest->version)
        || (rep->outcome != NGX_HTTP_SIMPLEKV_FOUND
            && rep->outcome != NGX_HTTP_SIMPLEKV_TOMBSTONE
            && rep->outcome != NGX_HTTP_SIMPLEKV_MISSING)
        || skv_version_cmp(&rep->version, &ctx->newest->version) >= 0)
    {
        return;
    }

    for (i = 0; i < ctx->nreplicas; i++) {
        if (ctx->order[i] == rep->node) {
            break;
        }
    }

    if (i == ctx->nreplicas) {
        return;
    }

    ngx_http_simplekv_stats_read_repair(ctx->mcf);

    if (ngx_http_simplekv_subrequest(ctx, i,
            (ctx->newest->outcome == NGX_HTTP_SIMPLEKV_TOMBSTONE)
            ? NGX_HTTP_SIMPLEKV_OP_DELETE : NGX_HTTP_SIMPLEKV_OP_PUT, 1, 1)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "simplekv: could not start a late read repair");
        return;
    }

    if (!ctx->deadline.timer_set) {
        ngx_add_timer(&ctx->deadline, ctx->lcf->replica_timeout);
    }
}


static ngx_table_elt_t *
ngx_http_simplekv_find_header(ngx_list_t *headers, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash != 0 && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * Called just before the client is answered.  Stragglers keep the client's
 * connection (and its next request) waiting: when all that still runs are
 * requests to suspect nodes, which most likely will not answer, they get
 * only a short grace instead of the rest of simplekv_replica_timeout.
 */
void
ngx_http_simplekv_answering(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                     i;
    ngx_http_simplekv_replica_t  **all;

    ctx->answered = 1;

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


/* Let the parent decide, from its own event context, once per event. */
static void
ngx_http_simplekv_post_parent(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    if (ctx->posted || ctx->answered) {
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

    switch (ctx->phase) {

    case NGX_HTTP_SIMPLEKV_PHASE_WRITE:
        ngx_http_simplekv_decide_write(ctx);
        break;

    case NGX_HTTP_SIMPLEKV_PHASE_READ:
        ngx_http_simplekv_decide_read(ctx);
        break;

    case NGX_HTTP_SIMPLEKV_PHASE_LIST:
        ngx_http_simplekv_decide_list(ctx);
        break;

    default:
        ngx_http_simplekv_decide_repair(ctx);
        break;
    }

    /* the answer may have freed the request: ctx must not be touched */
}


static void
ngx_http_simplekv_decide_write(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                    i, acks, superseded, conflicts, unknown,
                                  timedout, w;
    ngx_http_simplekv_replica_t  *rep;

    acks = 0;
    superseded = 0;
    conflicts = 0;
    unknown = 0;
    timedout = 0;
    w = ctx->lcf->write_quorum;

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL) {
            continue;
        }

        if (!rep->done) {
            if (ctx->expired) {
                timedout++;
                unknown++;
            }
            continue;
        }

        switch (rep->outcome) {
        case NGX_HTTP_SIMPLEKV_ACK:
            acks++;
            break;

        case NGX_HTTP_SIMPLEKV_CONFLICT:
            conflicts++;

            /*
             * A newer version from this router's own clock was issued
             * after this write's: that write began after this one did, so
             * this one can take effect just before it.
             */
            if (rep->version.origin == ctx->version.origin) {
                superseded++;
            }

            break;

        case NGX_HTTP_SIMPLEKV_TIMEDOUT:
            timedout++;
            unknown++;
            break;

        default:
            if (!rep->unsent) {
                unknown++;
            }
            break;
        }
    }

    /*
     * The write is complete once W replicas hold its version or a newer
     * one written after it began (W > N/2, checked at nginx -t, so two
     * write quorums always share a replica: a write that completed before
     * this one began would have refused it there).
     */
    if (acks + superseded >= w) {
        ngx_http_simplekv_answer(ctx);
        return;
    }

    if (!ctx->expired && ctx->pending) {

        /* the replicas still running can make up the quorum */
        if (acks + superseded + ctx->pending >= w) {
            return;
        }

        /* wait to learn whether a retry is safe */
        if (conflicts && acks == 0 && unknown == 0) {
            return;
        }
    }

    /*
     * Refused by a newer version that may have completed before this write
     * began (another router's clock runs ahead): retry with a version newer
     * than every one seen, but only if no replica can have applied this
     * one.  Applied once and possibly read, a retry would make the value
     * take effect twice, around a newer write.
     */
    if (conflicts && acks == 0 && unknown == 0 && ctx->pending == 0
        && ctx->write_tries < NGX_HTTP_SIMPLEKV_WRITE_TRIES)
    {
        ngx_http_simplekv_stats_write_retry(ctx->mcf);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "simplekv write retry after %ui conflicts", conflicts);

        if (ngx_http_simplekv_start_write(ctx) != NGX_OK) {
            ngx_http_simplekv_answering(ctx);
            ngx_http_finalize_request(ctx->request,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    ngx_http_simplekv_fail(ctx, acks + superseded, w, timedout, "write");
}


/*
 * Reads: wait for R answers.  If they all agree and enough replicas hold
 * the newest version, answer; else write the newest back to every replica
 * not known to hold it (read repair) and answer once W hold it.
 */
static void
ngx_http_simplekv_decide_read(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t                     cmp;
    ngx_uint_t                    i, answered, timedout, r, w;
    ngx_http_simplekv_replica_t  *rep, *newest;

    answered = 0;
    timedout = 0;
    newest = NULL;
    r = ctx->lcf->read_quorum;
    w = ctx->lcf->write_quorum;

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL || !rep->done) {
            if (rep && ctx->expired) {
                timedout++;
            }
            continue;
        }

        switch (rep->outcome) {

        case NGX_HTTP_SIMPLEKV_FOUND:
        case NGX_HTTP_SIMPLEKV_TOMBSTONE:
        case NGX_HTTP_SIMPLEKV_MISSING:
            answered++;

            if (newest == NULL) {
                newest = rep;
                break;
            }

            cmp = skv_version_cmp(&rep->version, &newest->version);

            if (cmp > 0) {
                newest = rep;
            }

            break;

        case NGX_HTTP_SIMPLEKV_TIMEDOUT:
            timedout++;
            break;

        default:
            break;
        }
    }

    if (answered < r) {
        if (!ctx->expired && answered + ctx->pending >= r) {
            return;
        }

        ngx_http_simplekv_fail(ctx, answered, r, timedout, "read");
        return;
    }

    ctx->newest = newest;
    ctx->holders = 0;

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];
        ctx->holds[i] = 0;

        if (rep && rep->done
            && (rep->outcome == NGX_HTTP_SIMPLEKV_FOUND
                || rep->outcome == NGX_HTTP_SIMPLEKV_TOMBSTONE
                || rep->outcome == NGX_HTTP_SIMPLEKV_MISSING)
            && skv_version_cmp(&rep->version, &newest->version) == 0)
        {
            ctx->holds[i] = 1;
            ctx->holders++;
        }
    }

    /* nothing was ever written, or every answer agrees */
    if (skv_version_is_zero(&newest->version)
        || (ctx->holders == answered && ctx->holders >= w))
    {
        ngx_http_simplekv_answer(ctx);
        return;
    }

    if (ctx->holders == answered && ctx->pending && !ctx->expired) {
        /* agreeing so far but short of W holders: the rest may agree too */
        return;
    }

    ngx_http_simplekv_stats_read_repair(ctx->mcf);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "simplekv read repair: %ui of %ui answers hold the newest",
                   ctx->holders, answered);

    if (ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_REPAIR)
        != NGX_OK)
    {
        ngx_http_simplekv_answering(ctx);
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_simplekv_decide_repair(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                    i, holders, conflicts, timedout, w;
    ngx_http_simplekv_replica_t  *rep;

    holders = ctx->holders;
    conflicts = 0;
    timedout = 0;
    w = ctx->lcf->write_quorum;

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL || !rep->done) {
            if (rep && ctx->expired) {
                timedout++;
            }
            continue;
        }

        switch (rep->outcome) {
        case NGX_HTTP_SIMPLEKV_ACK:
            holders++;
            break;
        case NGX_HTTP_SIMPLEKV_CONFLICT:
            conflicts++;
            break;
        case NGX_HTTP_SIMPLEKV_TIMEDOUT:
            timedout++;
            break;
        default:
            break;
        }
    }

    if (holders >= w) {
        ngx_http_simplekv_answer(ctx);
        return;
    }

    if (!ctx->expired && holders + ctx->pending >= w) {
        return;
    }

    /* a newer write overtook the value being repaired: read again */
    if (conflicts && ctx->read_tries < NGX_HTTP_SIMPLEKV_READ_TRIES) {
        if (ngx_http_simplekv_start_read(ctx) != NGX_OK) {
            ngx_http_simplekv_answering(ctx);
            ngx_http_finalize_request(ctx->request,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    ngx_http_simplekv_fail(ctx, holders, w, timedout, "read repair");
}


void
ngx_http_simplekv_fail(ngx_http_simplekv_ctx_t *ctx, ngx_uint_t answered,
    ngx_uint_t needed, ngx_uint_t timedout, const char *what)
{
    u_char      *p;
    ngx_str_t    detail;
    ngx_int_t    rc;
    ngx_uint_t   status;

    /*
     * The nodes left out may be needed after all: ask every node again,
     * unless this round already used up its time on suspect nodes (a retry
     * would double the wait for an answer that is most likely the same).
     * Healthy replicas held back by the read fan-out are always asked: a
     * replica that froze before the circuit breaker knew must not fail a
     * read the others can answer.
     */
    if (ctx->skipped && !ctx->no_skip && (!ctx->expired || ctx->held_back)) {
        ctx->no_skip = 1;

        switch (ctx->phase) {
        case NGX_HTTP_SIMPLEKV_PHASE_WRITE:
            rc = ngx_http_simplekv_start_write(ctx);
            break;
        case NGX_HTTP_SIMPLEKV_PHASE_READ:
            rc = ngx_http_simplekv_start_read(ctx);
            break;
        default:
            rc = ngx_http_simplekv_start_round(ctx, ctx->phase);
            break;
        }

        if (rc == NGX_OK) {
            return;
        }
    }

    p = ngx_pnalloc(ctx->request->pool, 256);
    if (p == NULL) {
        ngx_http_simplekv_answering(ctx);
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = timedout ? NGX_HTTP_GATEWAY_TIME_OUT
                      : NGX_HTTP_SERVICE_UNAVAILABLE;

    if (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_WRITE) {
        detail.data = p;
        detail.len = ngx_snprintf(p, 256,
                                  "%ui of %ui replicas acknowledged the %s, "
                                  "%ui needed (%ui timed out); the write may "
                                  "or may not have been applied",
                                  answered, ctx->nreplicas, what, needed,
                                  timedout)
                     - p;

    } else {
        detail.data = p;
        detail.len = ngx_snprintf(p, 256,
                                  "%ui of %ui replicas answered the %s, "
                                  "%ui needed (%ui timed out)",
                                  answered, ctx->nreplicas, what, needed,
                                  timedout)
                     - p;
    }

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "simplekv: quorum not reached for a key of %uz bytes: %V",
                  ctx->key_len, &detail);

    ngx_http_simplekv_answer_error(ctx, status,
                                   timedout ? "replica timeout"
                                            : "quorum not reached",
                                   &detail);
}


/*
 * The round's deadline: undecided requests are decided with what has
 * arrived, and every replica subrequest still running is ended the way
 * its upstream would end it on a read timeout, so a straggler never holds
 * the client connection longer than simplekv_replica_timeout.
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
    c = ctx->request->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "simplekv deadline, %ui subrequests running",
                   ctx->running);

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
    r = ctx->request;

    /* ending the last straggler must not free the request under us */
    r->main->count++;

    for (i = 0; i < n; i++) {
        all = ctx->all.elts;

        if (!all[i]->done && !all[i]->aborted) {
            ngx_http_simplekv_abort(all[i]);
        }
    }

    if (r->main->count > 1) {
        r->main->count--;

    } else {
        /* everything else is over: end the request as a straggler would */
        ngx_http_finalize_request(r, NGX_DONE);
    }

    ngx_http_run_posted_requests(c);
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
