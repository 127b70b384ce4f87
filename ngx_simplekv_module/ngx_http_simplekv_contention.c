/*
 * ngx_http_simplekv_contention.c - which writes ask the replicas for their
 * versions before choosing their own (multi-writer ABD).
 *
 * A version query costs a round of replica requests, so a write skips it
 * while it cannot change the outcome: when the key has not recently met a
 * newer version from another router and every replica of the key looks
 * healthy.  Such a write, should it meet newer versions, is still decided
 * correctly from what the replicas say (core/skv_quorum.c): complete,
 * never visible (retried, now with a query), or unknown (503).  A key that
 * met another router's version is remembered for
 * NGX_HTTP_SIMPLEKV_CONTENDED_MS in a small table shared by the workers:
 * when a write meets a newer version of another router's (queried or not),
 * and when a read or a query finds a version another router wrote within
 * that time, so that the mark lasts as long as another router keeps
 * writing the key, and a key another router writes is marked before this
 * router's first write of it can conflict; a replica that is down or
 * suspect makes every write of its keys query, because its silence would
 * leave a conflicting write undecidable.
 */

#include <xxhash.h>

#include "ngx_http_simplekv_shm.h"


static ngx_uint_t ngx_http_simplekv_replica_unhealthy(
    ngx_http_simplekv_ctx_t *ctx);


ngx_uint_t
ngx_http_simplekv_contended(ngx_http_simplekv_ctx_t *ctx)
{
    uint64_t                  hash;
    ngx_uint_t                slot;
    ngx_http_simplekv_shm_t  *sh;

    /* in a transition every write asks first (docs/membership.md) */
    if (ctx->mcf->transition || ngx_http_simplekv_replica_unhealthy(ctx)) {
        return 1;
    }

    sh = ngx_http_simplekv_shm(ctx->mcf);
    if (sh == NULL) {
        return 1;
    }

    hash = XXH3_64bits_withSeed(ctx->key, ctx->key_len,
                                ctx->lcf->ns_seed);
    slot = hash % NGX_HTTP_SIMPLEKV_CONTENTION_SLOTS;

    /* the two words are not written atomically together: a torn pair only
     * costs a needless query or skips one (which is still correct) */
    return sh->contended_key[slot] == (ngx_atomic_uint_t) hash
           && sh->contended_until[slot] > ngx_http_simplekv_now_ms();
}


void
ngx_http_simplekv_contention_note(ngx_http_simplekv_ctx_t *ctx)
{
    uint64_t                  hash;
    ngx_uint_t                slot;
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(ctx->mcf);
    if (sh == NULL) {
        return;
    }

    hash = XXH3_64bits_withSeed(ctx->key, ctx->key_len,
                                ctx->lcf->ns_seed);
    slot = hash % NGX_HTTP_SIMPLEKV_CONTENTION_SLOTS;

    sh->contended_key[slot] = (ngx_atomic_uint_t) hash;
    sh->contended_until[slot] = ngx_http_simplekv_now_ms()
                                + NGX_HTTP_SIMPLEKV_CONTENDED_MS;
}


/* Replies of a read or a version query: a version another router wrote
 * recently marks the key. */
void
ngx_http_simplekv_contention_seen(ngx_http_simplekv_ctx_t *ctx,
    const skv_reply_t *replies, ngx_uint_t n)
{
    uint64_t    origin, now;
    ngx_uint_t  i;

    origin = ngx_http_simplekv_clock_origin();
    now = skv_clock_now_ms();

    for (i = 0; i < n; i++) {
        if (replies[i].kind != SKV_REPLY_FOUND
            && replies[i].kind != SKV_REPLY_TOMBSTONE
            && replies[i].kind != SKV_REPLY_TOO_LARGE)
        {
            continue;
        }

        if (replies[i].version.origin != origin
            && skv_version_ms(&replies[i].version)
               + NGX_HTTP_SIMPLEKV_CONTENDED_MS > now)
        {
            ngx_http_simplekv_contention_note(ctx);
            return;
        }
    }
}


static ngx_uint_t
ngx_http_simplekv_replica_unhealthy(ngx_http_simplekv_ctx_t *ctx)
{
    ngx_uint_t                 i;
    ngx_http_simplekv_node_t  *nodes, *node;

    nodes = ctx->mcf->nodes.elts;

    for (i = 0; i < ctx->nreplicas; i++) {
        node = &nodes[ctx->order[i]];

        if (node->shm == NULL || !node->shm->up
            || ngx_http_simplekv_breaker_suspect(node))
        {
            return 1;
        }
    }

    return 0;
}
