/*
 * ngx_http_simplekv_decide.c - what a request does each time its replicas
 * answer.
 *
 * fanout.c wakes the request (ctx->decide before the answer, ctx->late
 * after it); this file counts the current round's replies, asks the quorum
 * decisions (core/skv_quorum.c) what to do, and does it: wait, answer
 * (reply.c), retry a write with a newer version, write the newest value
 * back (read repair), read again, or fail.  Every request that does not
 * succeed ends in ngx_http_simplekv_finish(), once.  A large newest value
 * (metadata only) is streamed to the client (stream.c) or, when it needs
 * a repair, first read into a temp file (spool.c).
 */

#include "ngx_http_simplekv_module.h"


static void ngx_http_simplekv_next_round(ngx_http_simplekv_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_http_simplekv_tally(ngx_http_simplekv_ctx_t *ctx,
    skv_reply_t *replies, skv_tally_t *t, skv_quorum_t *q);
static void ngx_http_simplekv_decide_query(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_write(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_read(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_repair(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_list(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_answer(ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_decide_spool_start(
    ngx_http_simplekv_ctx_t *ctx);
static void ngx_http_simplekv_refuse(ngx_http_simplekv_ctx_t *ctx,
    skv_tally_t *t);
static void ngx_http_simplekv_fail(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t answered, ngx_uint_t needed, skv_tally_t *t,
    const char *what);


ngx_int_t
ngx_http_simplekv_start_write(ngx_http_simplekv_ctx_t *ctx)
{
    ctx->write_tries++;

    /* contention.c decides whether the replicas' versions are asked
     * first; a retry always asks */
    if (ctx->query || ngx_http_simplekv_contended(ctx)) {
        ctx->query = 0;
        ngx_http_simplekv_stats_write_query(ctx->mcf);

        return ngx_http_simplekv_start_round(ctx,
                                             NGX_HTTP_SIMPLEKV_PHASE_QUERY);
    }

    ctx->versions_known = 0;
    ctx->version = ngx_http_simplekv_next_version();

    return ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_WRITE);
}


/*
 * The version query answered: the clock has observed every version it
 * reported (outcome.c), so the next version is above all of them, and so
 * above every write that completed before this one began.
 */
static void
ngx_http_simplekv_decide_query(ngx_http_simplekv_ctx_t *ctx)
{
    skv_reply_t   replies[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    skv_tally_t   t;
    skv_quorum_t  q;

    ngx_http_simplekv_tally(ctx, replies, &t, &q);
    ngx_http_simplekv_contention_seen(ctx, replies, ctx->nreplicas);

    switch (skv_decide_query_sets(replies, ctx->nreplicas, &ctx->sets, &q,
                                  &t))
    {

    case SKV_WAIT:
        return;

    case SKV_ANSWER:
        ctx->versions_known = 1;
        ctx->version = ngx_http_simplekv_next_version();

        ngx_http_simplekv_next_round(ctx,
            ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_WRITE));

        return;

    default:
        ngx_http_simplekv_fail(ctx, t.answered,
                               skv_list_needed(ctx->nreplicas, q.w), &t,
                               "version query of the write");
        return;
    }
}


ngx_int_t
ngx_http_simplekv_start_read(ngx_http_simplekv_ctx_t *ctx)
{
    ctx->read_tries++;
    ctx->newest = NULL;
    ctx->holders = 0;
    ngx_memzero(ctx->holds, sizeof(ctx->holds));
    ctx->tried = 0;
    ctx->spooled = 0;
    ctx->stream = NULL;
    ctx->streamed = 0;

    return ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_READ);
}


/* The parent's wake-up (fanout.c): decide with what has arrived. */
void
ngx_http_simplekv_decide(ngx_http_simplekv_ctx_t *ctx)
{
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

    case NGX_HTTP_SIMPLEKV_PHASE_QUERY:
        ngx_http_simplekv_decide_query(ctx);
        break;

    case NGX_HTTP_SIMPLEKV_PHASE_SPOOL:
        ngx_http_simplekv_decide_spool(ctx);
        break;

    default:
        ngx_http_simplekv_decide_repair(ctx);
        break;
    }

    /* the answer may have freed the request: ctx must not be touched */
}


/* The current round's replies, counted, and the quorum settings. */
static void
ngx_http_simplekv_tally(ngx_http_simplekv_ctx_t *ctx, skv_reply_t *replies,
    skv_tally_t *t, skv_quorum_t *q)
{
    ngx_uint_t                    i;
    ngx_http_simplekv_replica_t  *rep;

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL) {
            ngx_memzero(&replies[i], sizeof(skv_reply_t));

        } else if (!rep->done) {
            ngx_memzero(&replies[i], sizeof(skv_reply_t));
            replies[i].kind = SKV_REPLY_PENDING;

        } else {
            replies[i] = rep->reply;
        }
    }

    skv_tally(replies, ctx->nreplicas, ctx->expired, ctx->version.origin, t);

    ngx_memzero(q, sizeof(skv_quorum_t));
    q->n = ctx->lcf->replicas;
    q->w = ctx->lcf->write_quorum;
    q->r = ctx->lcf->read_quorum;
    q->expired = ctx->expired;
}


static void
ngx_http_simplekv_decide_write(ngx_http_simplekv_ctx_t *ctx)
{
    skv_reply_t   replies[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    skv_tally_t   t;
    skv_quorum_t  q;

    ngx_http_simplekv_tally(ctx, replies, &t, &q);
    q.tries_left = (ctx->write_tries < NGX_HTTP_SIMPLEKV_WRITE_TRIES);
    q.versions_known = ctx->versions_known;

    /* another router's newer version: this key's next writes query (also
     * after a query: the mark lasts while the other router writes) */
    if (t.conflicts > t.superseded) {
        ngx_http_simplekv_contention_note(ctx);
    }

    switch (skv_decide_write_sets(replies, ctx->nreplicas, &ctx->sets, &q,
                                  ctx->version.origin, &t))
    {

    case SKV_WAIT:
        return;

    case SKV_ANSWER:
        ngx_http_simplekv_answer(ctx);
        return;

    case SKV_RETRY_WRITE:
        ngx_http_simplekv_stats_write_retry(ctx->mcf);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "simplekv write retry after %uz conflicts",
                       t.conflicts);

        ctx->query = 1;

        ngx_http_simplekv_next_round(ctx, ngx_http_simplekv_start_write(ctx));

        return;

    case SKV_REFUSE:
        ngx_http_simplekv_refuse(ctx, &t);
        return;

    default:
        ngx_http_simplekv_fail(ctx, t.acks + t.superseded, q.w, &t, "write");
        return;
    }
}


static void
ngx_http_simplekv_decide_read(ngx_http_simplekv_ctx_t *ctx)
{
    long          newest;
    ngx_uint_t    i;
    skv_reply_t   replies[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    skv_tally_t   t;
    skv_quorum_t  q;
    skv_action_t  action;

    ngx_http_simplekv_tally(ctx, replies, &t, &q);

    action = skv_decide_read_sets(replies, ctx->nreplicas, &ctx->sets, &q,
                                  &t, &newest);

    if (action == SKV_WAIT) {
        return;
    }

    if (action == SKV_FAIL) {
        if (t.answered == 0 && t.unknown == 0 && t.refused
            && t.refusal != 0)
        {
            /* every node that answered refused: say why */
            ngx_http_simplekv_refuse(ctx, &t);
            return;
        }

        ngx_http_simplekv_fail(ctx, t.answered, q.r, &t, "read");
        return;
    }

    /* the newest version and who holds it, kept for the repair round */
    ctx->newest = ctx->slot[newest];
    ngx_http_simplekv_contention_seen(ctx, &replies[newest], 1);
    ctx->holders = t.holders;

    for (i = 0; i < ctx->nreplicas; i++) {
        ctx->holds[i] = skv_reply_is_read_answer(replies[i].kind)
                        && skv_version_cmp(&replies[i].version,
                                           &ctx->newest->reply.version) == 0;
    }

    /* per set of a transition; outside one, set 0 is every replica */
    ctx->prior[0] = skv_holders_set(replies, ctx->nreplicas,
                                    ctx->sets.transition ? ctx->member : NULL,
                                    SKV_SET_NEW,
                                    &ctx->newest->reply.version);
    ctx->prior[1] = skv_holders_set(replies, ctx->nreplicas, ctx->member,
                                    SKV_SET_OLD,
                                    &ctx->newest->reply.version);

    if (action == SKV_ANSWER) {
        ngx_http_simplekv_answer(ctx);
        return;
    }

    ngx_http_simplekv_stats_read_repair(ctx->mcf);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "simplekv read repair: %uz of %uz answers hold the newest",
                   t.holders, t.answered);

    /* a large value is written back from a temp file (spool.c) */
    if (ctx->newest->reply.kind == SKV_REPLY_FOUND && ctx->newest->large) {
        ngx_http_simplekv_decide_spool_start(ctx);
        return;
    }

    ngx_http_simplekv_next_round(ctx,
        ngx_http_simplekv_start_round(ctx, NGX_HTTP_SIMPLEKV_PHASE_REPAIR));
}


static void
ngx_http_simplekv_decide_repair(ngx_http_simplekv_ctx_t *ctx)
{
    skv_reply_t   replies[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    skv_tally_t   t;
    skv_quorum_t  q;

    ngx_http_simplekv_tally(ctx, replies, &t, &q);
    q.prior = ctx->holders;
    q.tries_left = (ctx->read_tries < NGX_HTTP_SIMPLEKV_READ_TRIES);

    switch (skv_decide_repair_sets(replies, ctx->nreplicas, &ctx->sets,
                                   ctx->prior, &q, &t))
    {

    case SKV_WAIT:
        return;

    case SKV_ANSWER:
        ngx_http_simplekv_answer(ctx);
        return;

    case SKV_REREAD:
        ngx_http_simplekv_next_round(ctx, ngx_http_simplekv_start_read(ctx));

        return;

    default:
        ngx_http_simplekv_fail(ctx, q.prior + t.acks, q.w, &t,
                               "read repair");
        return;
    }
}


static void
ngx_http_simplekv_decide_list(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t     rc;
    skv_reply_t   replies[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    skv_tally_t   t;
    skv_quorum_t  q;

    ngx_http_simplekv_tally(ctx, replies, &t, &q);

    switch (skv_decide_list(&t, ctx->nreplicas, &q)) {

    case SKV_WAIT:
        return;

    case SKV_ANSWER:
        ngx_http_simplekv_answering(ctx);
        rc = ngx_http_simplekv_list_answer(ctx);
        ngx_http_finalize_request(ctx->request, rc);
        return;

    default:
        ngx_http_simplekv_fail(ctx, t.answered,
                               skv_list_needed(ctx->nreplicas, q.w), &t,
                               "listing");
        return;
    }
}


/*
 * Replies of the read round that came after the answer (fanout.c posts
 * this): a replica that answered with an older version gets the newest
 * written back, outside any quorum.
 */
void
ngx_http_simplekv_decide_late(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                    i;
    ngx_http_simplekv_replica_t  *rep;

    /* a large value is not written back after the answer (spool.c) */
    if (ctx->newest == NULL || ctx->phase != NGX_HTTP_SIMPLEKV_PHASE_READ
        || ctx->newest->large)
    {
        return;
    }

    for (i = 0; i < ctx->nreplicas; i++) {
        rep = ctx->slot[i];

        if (rep == NULL || !rep->done || rep->late_seen) {
            continue;
        }

        rep->late_seen = 1;

        if (!skv_needs_late_repair(&rep->reply, &ctx->newest->reply)) {
            continue;
        }

        ngx_http_simplekv_stats_read_repair(ctx->mcf);

        if (ngx_http_simplekv_late_write_back(ctx, rep) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "simplekv: could not start a late read repair");
        }
    }
}


/* Success: the write's acknowledgement, or what the read found. */
static void
ngx_http_simplekv_answer(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_http_request_t           *r;
    ngx_http_simplekv_replica_t  *rep;

    r = ctx->request;

    if (ctx->op != NGX_HTTP_SIMPLEKV_OP_GET) {
        ngx_http_simplekv_answering(ctx);
        ngx_http_finalize_request(r,
            ngx_http_simplekv_send_written(r, ctx->op, &ctx->version));
        return;
    }

    rep = ctx->newest;

    if (rep == NULL || rep->reply.kind != SKV_REPLY_FOUND) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_NOT_FOUND, "not found", NULL);
        return;
    }

    if (rep->large) {
        if (!ctx->spooled) {
            ngx_http_simplekv_stream(ctx);
            return;
        }

        ngx_http_simplekv_answering(ctx);
        ngx_http_finalize_request(r, ngx_http_simplekv_send_spooled(ctx));
        return;
    }

    ngx_http_simplekv_answering(ctx);
    ngx_http_finalize_request(r,
                       ngx_http_simplekv_send_value(r, ctx->newest));
}


/* Every replica that answered refused the request: a write was not
 * applied. */
static void
ngx_http_simplekv_refuse(ngx_http_simplekv_ctx_t *ctx, skv_tally_t *t)
{
    u_char      *p;
    ngx_str_t    detail;
    ngx_uint_t   status;
    const char  *error;

    p = ngx_pnalloc(ctx->request->pool, 256);
    if (p == NULL) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
        return;
    }

    detail.data = p;

    switch (t->refusal) {

    case NGX_HTTP_INSUFFICIENT_STORAGE:
        status = NGX_HTTP_INSUFFICIENT_STORAGE;
        error = "insufficient storage";
        p = ngx_sprintf(p, "storage nodes are out of disk space");
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        error = "value too large";
        p = ngx_sprintf(p, "storage nodes refuse values this large (their "
                        "--max-value-size is below simplekv_max_value_size)");
        break;

    case NGX_HTTP_BAD_REQUEST:
        if (ctx->content_digest.len == 0 && ctx->repr_digest.len == 0) {
            goto other;
        }

        /* every node checked the value against the client's digest */
        status = NGX_HTTP_BAD_REQUEST;
        error = "digest mismatch";
        p = ngx_sprintf(p, "storage nodes refused the value: it does not "
                        "match its Content-Digest or Repr-Digest, or the "
                        "digest is malformed (sha-256 is checked)");
        break;

    case NGX_HTTP_UNAUTHORIZED:
    case NGX_HTTP_FORBIDDEN:
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        error = "storage refused the router";
        p = ngx_sprintf(p, "storage nodes refused this router's token "
                        "(simplekv_token_file and storaged --token-file "
                        "differ)");
        break;

    case NGX_HTTP_MISDIRECTED_REQUEST:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        error = "epoch refused";
        p = ngx_sprintf(p, "the storage nodes no longer accept this "
                        "router's configuration (simplekv_epoch %ui): "
                        "reload it with the current node set",
                        ctx->mcf->epoch);
        break;

    case 0:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        error = "quorum not reached";
        p = ngx_sprintf(p, "%uz of %ui replicas could not be reached, "
                        "%ui acknowledgements needed", t->refused,
                        ctx->nreplicas, ctx->lcf->write_quorum);
        break;

    default:
    other:
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        error = "storage refused the request";
        p = ngx_sprintf(p, "storage nodes answered %ui (see their logs)",
                        t->refusal);
        break;
    }

    if (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_WRITE) {
        p = ngx_sprintf(p, "; the write was not applied");
    }

    detail.len = p - detail.data;

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "simplekv: request for a key of %uz bytes refused: %V",
                  ctx->key_len, &detail);

    ngx_http_simplekv_finish(ctx, status, error, &detail);
}


/*
 * Too few replicas answered.  The nodes left out may be needed after all:
 * ask every node again, unless this round already used up its time on
 * suspect nodes (a retry would double the wait for an answer that is most
 * likely the same).  Healthy replicas held back by the read fan-out are
 * always asked: a replica that froze before the circuit breaker knew must
 * not fail a read the others can answer.
 */
static void
ngx_http_simplekv_fail(ngx_http_simplekv_ctx_t *ctx, ngx_uint_t answered,
    ngx_uint_t needed, skv_tally_t *t, const char *what)
{
    u_char        *p;
    ngx_int_t      rc;
    ngx_str_t      detail;
    skv_quorum_t   q;

    if (ctx->skipped && !ctx->no_skip && (!ctx->expired || ctx->held_back)) {
        ctx->no_skip = 1;

        rc = (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_READ)
             ? ngx_http_simplekv_start_read(ctx)
             : ngx_http_simplekv_start_round(ctx, ctx->phase);

        if (rc == NGX_OK) {
            return;
        }
    }

    p = ngx_pnalloc(ctx->request->pool, 256);
    if (p == NULL) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
        return;
    }

    detail.data = p;
    p = ngx_snprintf(p, 200, "%ui of %ui replicas %s the %s, %ui needed "
                     "(%uz timed out)", answered, ctx->nreplicas,
                     ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_WRITE
                     ? "acknowledged" : "answered",
                     what, needed, t->timedout);

    ngx_memzero(&q, sizeof(skv_quorum_t));
    q.n = ctx->nreplicas;
    q.w = ctx->lcf->write_quorum;
    q.r = ctx->lcf->read_quorum;

    if (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_QUERY) {
        p = ngx_sprintf(p, "; the write was not applied");

    } else if (ctx->phase == NGX_HTTP_SIMPLEKV_PHASE_WRITE) {
        p = ngx_sprintf(p, skv_write_never_visible(t, &q)
                           ? "; the write was not applied"
                           : "; the write may or may not have been applied");
    }

    detail.len = p - detail.data;

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "simplekv: quorum not reached for a key of %uz bytes: %V",
                  ctx->key_len, &detail);

    ngx_http_simplekv_finish(ctx, t->timedout ? NGX_HTTP_GATEWAY_TIME_OUT
                                              : NGX_HTTP_SERVICE_UNAVAILABLE,
                             t->timedout ? "replica timeout"
                                         : "quorum not reached",
                             &detail);
}


/* The one way a request ends without success: a JSON error, once. */
void
ngx_http_simplekv_finish(ngx_http_simplekv_ctx_t *ctx, ngx_uint_t status,
    const char *error, ngx_str_t *detail)
{
    if (ctx->answered) {
        return;
    }

    ngx_http_simplekv_answering(ctx);

    ngx_http_finalize_request(ctx->request,
        ngx_http_simplekv_send_error(ctx->request, status, error, detail));
}


/* A read repair of a large value: read it into a temp file first. */
static void
ngx_http_simplekv_decide_spool_start(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  detail;

    rc = ngx_http_simplekv_start_spool(ctx);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&detail, "no replica holds the newest version of the "
                             "value for its read repair");
        ngx_http_simplekv_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "quorum not reached", &detail);
        return;
    }

    ngx_http_simplekv_next_round(ctx, rc);
}


/* A decision started the next round: if it could not, that is the end. */
static void
ngx_http_simplekv_next_round(ngx_http_simplekv_ctx_t *ctx, ngx_int_t rc)
{
    if (rc != NGX_OK) {
        ngx_http_simplekv_finish(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "internal error", NULL);
    }
}
